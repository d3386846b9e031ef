//! The generator's CPU inference engine: the same network as
//! [`Generator::forward_ops`](crate::model::Generator::forward_ops), run on plain
//! `f32` planes with the kernels in [`kernels`] instead of one Burn op per step.
//! [`Generator::forward`](crate::model::Generator::forward) uses it on Flex
//! without autodiff; outputs agree with the op-by-op path to float rounding
//! (`tests/model.rs`, and the PyTorch fixture in `tests/import.rs`).
//!
//! It also runs *windows* of a larger image exactly as the whole-image pass would
//! ([`Window`]): bilinear upsampling on the whole image's sampling grid and
//! GroupNorm with statistics given from outside — what seam-free tiling needs
//! (see [`crate::convert`]).
//!
//! Submodules: [`kernels`] (the inference kernels on one image's [`kernels::Map`]),
//! [`conv`] and [`norm`] (the training kernels on NCHW batches), [`matmul`] (the
//! bounds-checked GEMM and the [`matmul::SendPtr`] for disjoint parallel writes;
//! with [`winograd_gemm`]'s vector loads and stores, the only raw-pointer code
//! here), [`streamed`] (the whole-image pass in bands of
//! rows, for photos too large to run whole), [`winograd`] (the 3x3 stride-1
//! convs by Winograd F(4x4, 3x3), the wide 7x7 one by F(3x3, 3x3) on 3x3
//! pieces; [`winograd_gemm`] their products on pre-packed weights), and [`flex`] (Flex tensors in and out of the training kernels, for [`crate::model::fast_conv`] / [`crate::model::fast_norm`]).
//! Only `flex`, `conv` and `norm` are used from outside, and none of them uses
//! this file, so the training extensions do not depend on the generator.
//!
//! Functions holding a kernel's loops carry `#[multiversion(targets = "simd")]`:
//! compiled again for AVX-512 and AVX2 + FMA (NEON elsewhere) and picked at run
//! time for the CPU at hand, since the crate itself is built for baseline x86-64
//! (SSE2, 4 lanes). Closures inside them (the rayon tasks) inherit those target
//! features. The arithmetic is the same in every version (no reassociation, no
//! FMA contraction), so the results are too — except in [`winograd_gemm`], which
//! fuses its multiply-adds where the CPU has FMA, as the `gemm` crate's kernels do
//! for every other GEMM (so inference results already differed in the last bits
//! between CPUs with and without FMA).

pub(crate) mod conv;
pub(crate) mod conv_taps;
pub(crate) mod conv_winograd;
pub(crate) mod depthwise;
pub(crate) mod flex;
pub(crate) mod kernels;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod resize;
pub(crate) mod streamed;
pub(crate) mod winograd;
pub(crate) mod winograd_gemm;

use burn::tensor::{Tensor, TensorReadError};

use super::Generator;
use super::blocks::{ConvNormLReLU, InvertedResBlock, LEAKY_SLOPE, LayerNorm2d};
use super::upsample::UpsampleMode;
use kernels::{ConvGeom, Map, Moments, Tap};

/// Why the CPU engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A weight or input tensor could not be read back into host memory (a
    /// failed device readback, or a dtype that does not convert to `f32`).
    #[error("cannot read the {what} into host memory: {source}")]
    Readback {
        /// Which tensor.
        what: &'static str,
        /// Burn's error.
        #[source]
        source: TensorReadError,
    },
    /// The input is not a batch of RGB images.
    #[error("the CPU engine takes [B, 3, H, W] images, got {dims:?}")]
    Input {
        /// The input's dims.
        dims: [usize; 4],
    },
}

/// The values of `t` as `f32`, in row-major order. A failed readback is an
/// error, never an empty vector (which used to come out as a grey image).
fn values<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f32>, EngineError> {
    t.try_into_vec_as::<f32>()
        .map_err(|source| EngineError::Readback { what, source })
}

#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f64,
}

impl Norm {
    fn new(n: &LayerNorm2d) -> Result<Self, EngineError> {
        Ok(Self {
            gamma: values(n.gamma.val(), "norm gamma")?,
            beta: values(n.beta.val(), "norm beta")?,
            eps: n.epsilon,
        })
    }
}

#[derive(Debug, Clone)]
struct Conv {
    /// `[cout, cin * k * k]`.
    w: Vec<f32>,
    cout: usize,
    k: usize,
    stride: usize,
    pad_left: usize,
    pad_top: usize,
    pad_right: usize,
    pad_bottom: usize,
    /// Depthwise convs (the only ones with a bias) keep it here.
    bias: Option<Vec<f32>>,
    /// Winograd-transformed weights ([`winograd`]) of a 3x3 stride-1 padding-1
    /// conv (36 instead of 144 multiplies per 4x4 outputs), or of a 7x7 stride-1
    /// padding-3 conv with many input channels (25 instead of 49 per output; the
    /// first layer's, with 3 input channels, stays on im2col: its GEMMs are too
    /// thin for the transforms to pay).
    winograd: Option<std::sync::Arc<winograd::WinogradWeights>>,
}

#[derive(Debug, Clone)]
struct Cnl {
    conv: Conv,
    norm: Norm,
}

impl Cnl {
    fn new(l: &ConvNormLReLU) -> Result<Self, EngineError> {
        let [cout, _, k, _] = l.conv.weight.val().dims();
        let bias = match &l.conv.bias {
            Some(b) => Some(values(b.val(), "conv bias")?),
            None => None,
        };
        let w = values(l.conv.weight.val(), "conv weight")?;
        let [_, cin, _, _] = l.conv.weight.val().dims();
        let pads = [l.pad.left, l.pad.top, l.pad.right, l.pad.bottom];
        let dense = l.conv.stride == [1, 1] && bias.is_none();
        let winograd = if dense && k == 3 && pads == [1; 4] {
            Some(winograd::WinogradWeights::recent_or_new(
                winograd::Variant::Conv3F4,
                &w,
                cout,
                cin,
            ))
        } else if dense && k == 7 && pads == [3; 4] && cin >= 16 {
            Some(winograd::WinogradWeights::recent_or_new(
                winograd::Variant::Conv7F3,
                &w,
                cout,
                cin,
            ))
        } else {
            None
        };
        Ok(Self {
            conv: Conv {
                w,
                cout,
                k,
                stride: l.conv.stride[0],
                pad_left: l.pad.left,
                pad_top: l.pad.top,
                pad_right: l.pad.right,
                pad_bottom: l.pad.bottom,
                bias,
                winograd,
            },
            norm: Norm::new(&l.norm)?,
        })
    }
}

#[derive(Debug, Clone)]
struct Irb {
    expand: Cnl,
    depthwise: Cnl,
    /// `[cout, hidden]`.
    project: Vec<f32>,
    cout: usize,
    norm: Norm,
    residual: bool,
}

impl Irb {
    fn new(b: &InvertedResBlock) -> Result<Self, EngineError> {
        let [cout, _, _, _] = b.project.weight.val().dims();
        Ok(Self {
            expand: Cnl::new(&b.expand)?,
            depthwise: Cnl::new(&b.depthwise)?,
            project: values(b.project.weight.val(), "projection weight")?,
            cout,
            norm: Norm::new(&b.norm)?,
            residual: b.residual,
        })
    }
}

/// Where a window sits in the whole image, and the GroupNorm statistics to use.
///
/// A window with offsets that are multiples of 4 computes, away from its edges,
/// the whole image's values: strided convs sample the same grid, upsampling uses
/// the whole image's taps, and every norm uses `stats` instead of the window's own.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Whole image `[h, w]` (after conversion padding).
    pub full: [usize; 2],
    /// Window origin `[y, x]` in the whole image; multiples of 4.
    pub origin: [usize; 2],
    /// Whole-image statistics of the first `stats.len()` norm layers, in forward
    /// order; later layers use the window's own statistics.
    pub stats: Vec<Moments>,
    /// End the pass right after norm layer `j` has been recorded (its output and
    /// everything after it is not needed to gather its statistics).
    pub stop_after: Option<usize>,
    /// Full-resolution window rows/cols `[y0, y1, x0, x1)` whose values are
    /// accumulated into [`Window::record`] (the window's share of a partition).
    pub interior: [usize; 4],
    /// Moments of every norm layer's input over `interior`, in forward order.
    pub record: Vec<Moments>,
}

/// Norm layers of the generator, in forward order.
pub(crate) const NORM_LAYERS: usize = 24;

/// Chooses the statistics each GroupNorm of a whole-image pass normalises with,
/// given the moments of its own input: video smooths them over frames so that
/// brightness and colour do not pump ([`crate::video::temporal`]).
pub(crate) trait NormStatistics {
    /// The moments norm layer `layer` (in forward order) uses, its input's being `own`.
    fn choose(&mut self, layer: usize, own: Moments) -> Moments;
}

/// The generator's weights as plain vectors (≈8.6 MB), ready for [`CpuGenerator::forward`].
#[derive(Debug, Clone)]
pub struct CpuGenerator {
    block_a: Vec<Cnl>,
    block_b: Vec<Cnl>,
    c_head: Cnl,
    irbs: Vec<Irb>,
    c_tail: Cnl,
    block_d: Vec<Cnl>,
    block_e: Vec<Cnl>,
    /// `[3, 32]`.
    out: Vec<f32>,
    upsample: UpsampleMode,
}

/// The 1-D taps of bilinear resizing `input -> out` (PyTorch semantics, as
/// [`super::upsample::interpolation_matrix`]), for output indices
/// `out_offset..out_offset + len` of the whole axis, shifted by `-in_offset` and
/// clamped into `0..in_len` for a window.
pub(crate) fn taps(
    input: usize,
    out: usize,
    align_corners: bool,
    out_offset: usize,
    len: usize,
    in_offset: usize,
    in_len: usize,
) -> Vec<Tap> {
    (out_offset..out_offset + len)
        .map(|i| {
            let (i0, i1, frac) = super::upsample::source_taps(input, out, align_corners, i);
            let local = |g: usize| g.saturating_sub(in_offset).min(in_len - 1);
            (local(i0), local(i1), frac)
        })
        .collect()
}

/// Running state of one forward pass: the window and the norm-layer counter.
struct Pass<'a> {
    window: Option<&'a mut Window>,
    /// For a whole-image pass: the statistics policy (the input's own moments without one).
    policy: Option<&'a mut dyn NormStatistics>,
    layer: usize,
    /// Full-resolution window size, to find each map's scale.
    size: [usize; 2],
    /// Set once [`Window::stop_after`] is reached: the rest of the pass is skipped.
    stopped: bool,
}

impl Pass<'_> {
    /// GroupNorm(1, C) (+ LeakyReLU) of `x` in place, recording/using window statistics.
    fn norm(&mut self, x: &mut Map, n: &Norm, slope: Option<f32>) {
        let layer = self.layer;
        self.layer += 1;
        let own = || kernels::moments(x, 0..x.h, 0..x.w);
        let m = match self.window.as_deref_mut() {
            None => match self.policy.as_deref_mut() {
                Some(p) => p.choose(layer, own()),
                None => own(),
            },
            Some(win) => {
                // The map's scale: 1, 2 or 4 (stride-2 sides are floor(side / 2)).
                let scale = if x.w == self.size[1] {
                    1
                } else if x.w == self.size[1] / 2 {
                    2
                } else {
                    4
                };
                let [y0, y1, x0, x1] = win.interior;
                let end = |v: usize, full: usize, len: usize| {
                    if v >= full { len } else { (v / scale).min(len) }
                };
                let rows = y0 / scale..end(y1, self.size[0], x.h);
                let cols = x0 / scale..end(x1, self.size[1], x.w);
                // A pass that stops early needs only its last layer's moments.
                if win.stop_after.is_none_or(|s| s == layer) {
                    let part = kernels::moments(x, rows, cols);
                    if let Some(r) = win.record.get_mut(layer) {
                        *r = r.merge(part);
                    }
                }
                if win.stop_after == Some(layer) {
                    self.stopped = true;
                    return;
                }
                win.stats.get(layer).copied().unwrap_or_else(own)
            }
        };
        kernels::norm_act(x, m, n.eps, &n.gamma, &n.beta, slope);
    }

    fn conv(&self, x: &Map, c: &Conv) -> Map {
        if c.k == 1 {
            return kernels::conv1x1(x, &c.w, c.cout);
        }
        if let Some(bias) = &c.bias {
            return kernels::depthwise3x3(x, &c.w, bias);
        }
        if let Some(u) = &c.winograd {
            return winograd::conv_band(x, u, x.h, kernels::RowBand::whole(x.h));
        }
        let ph = x.h + c.pad_top + c.pad_bottom;
        let pw = x.w + c.pad_left + c.pad_right;
        let g = ConvGeom {
            k: c.k,
            stride: c.stride,
            pad_left: c.pad_left,
            pad_top: c.pad_top,
            oh: (ph - c.k) / c.stride + 1,
            ow: (pw - c.k) / c.stride + 1,
        };
        kernels::conv_reflect(x, &c.w, c.cout, g)
    }

    fn cnl(&mut self, x: &Map, l: &Cnl) -> Map {
        if self.stopped {
            return Map::zeros(0, 0, 0);
        }
        let mut y = self.conv(x, &l.conv);
        self.norm(&mut y, &l.norm, Some(LEAKY_SLOPE as f32));
        y
    }

    fn irb(&mut self, x: &Map, b: &Irb) -> Map {
        let y = self.cnl(x, &b.expand);
        let y = self.cnl(&y, &b.depthwise);
        if self.stopped {
            return y;
        }
        let mut y = kernels::conv1x1(&y, &b.project, b.cout);
        self.norm(&mut y, &b.norm, None);
        if b.residual {
            y.data.iter_mut().zip(&x.data).for_each(|(a, b)| *a += b);
        }
        y
    }
}

impl CpuGenerator {
    /// Copies `g`'s weights out of its tensors.
    ///
    /// # Errors
    /// [`EngineError::Readback`] if a weight cannot be read into host memory.
    pub fn new(g: &Generator) -> Result<Self, EngineError> {
        let cnls = |v: &[ConvNormLReLU]| v.iter().map(Cnl::new).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            block_a: cnls(&g.block_a)?,
            block_b: cnls(&g.block_b)?,
            c_head: Cnl::new(&g.block_c.head)?,
            irbs: g
                .block_c
                .irbs
                .iter()
                .map(Irb::new)
                .collect::<Result<_, _>>()?,
            c_tail: Cnl::new(&g.block_c.tail)?,
            block_d: cnls(&g.block_d)?,
            block_e: cnls(&g.block_e)?,
            out: values(g.out_layer.weight.val(), "output weight")?,
            upsample: g.upsample,
        })
    }

    /// One image `[3, H, W]` in [-1, 1] -> `[3, H', W']` (as the op-by-op forward).
    /// With a [`Window`], `x` is that window of the whole image; a window pass
    /// that stops early ([`Window::stop_after`]) returns an empty map.
    ///
    /// # Panics
    /// If `x` is not a valid 3-channel map (the kernels check their operands).
    pub(crate) fn forward(&self, x: Map, window: Option<&mut Window>) -> Map {
        self.forward_pass(x, window, None)
    }

    /// The whole-image pass of `x` (`[3, H, W]` in [-1, 1]) with every GroupNorm's
    /// statistics chosen by `policy` from its input's own.
    ///
    /// # Panics
    /// If `x` is not a valid 3-channel map.
    pub(crate) fn forward_with_statistics(&self, x: Map, policy: &mut dyn NormStatistics) -> Map {
        self.forward_pass(x, None, Some(policy))
    }

    fn forward_pass<'a>(
        &self,
        x: Map,
        window: Option<&'a mut Window>,
        policy: Option<&'a mut (dyn NormStatistics + 'a)>,
    ) -> Map {
        let size = [x.h, x.w];
        let (full, origin) = match &window {
            Some(w) => (w.full, w.origin),
            None => (size, [0, 0]),
        };
        let mut pass = Pass {
            window,
            policy,
            layer: 0,
            size,
            stopped: false,
        };
        let mut y = x;
        for l in &self.block_a {
            y = pass.cnl(&y, l);
        }
        let half = [y.h, y.w];
        for l in &self.block_b {
            y = pass.cnl(&y, l);
        }
        y = pass.cnl(&y, &self.c_head);
        for b in &self.irbs {
            y = pass.irb(&y, b);
        }
        y = pass.cnl(&y, &self.c_tail);
        if pass.stopped {
            return y;
        }
        // Whole-image sizes at 1/2 and 1/4 (stride-2 convs floor), for the sampling grid.
        let full_half = [full[0] / 2, full[1] / 2];
        let full_quarter = [full_half[0] / 2, full_half[1] / 2];
        y = self.up(
            &y,
            full_quarter,
            full_half,
            half,
            [origin[0] / 2, origin[1] / 2],
        );
        for l in &self.block_d {
            y = pass.cnl(&y, l);
        }
        if pass.stopped {
            return y;
        }
        y = self.up(&y, full_half, full, size, origin);
        for l in &self.block_e {
            y = pass.cnl(&y, l);
        }
        if pass.stopped {
            return y;
        }
        let mut out = kernels::conv1x1(&y, &self.out, 3);
        out.data.iter_mut().for_each(|v| *v = v.tanh());
        out
    }

    /// Upsamples `x` (a window of a whole-image map of size `full_in`) to the
    /// window of the whole-image output `full_target` whose origin is `origin_out`.
    fn up(
        &self,
        x: &Map,
        full_in: [usize; 2],
        full_target: [usize; 2],
        target: [usize; 2],
        origin_out: [usize; 2],
    ) -> Map {
        let ac = self.upsample.align_corners();
        // Whole-image output size, and this window's share of it.
        let [fo_h, fo_w] = self
            .upsample
            .output_size(full_in[0], full_in[1], full_target);
        let [o_h, o_w] = self.upsample.output_size(x.h, x.w, target);
        let (iy, ix) = (origin_out[0] / 2, origin_out[1] / 2);
        let rows = taps(full_in[0], fo_h, ac, origin_out[0], o_h, iy, x.h);
        let cols = taps(full_in[1], fo_w, ac, origin_out[1], o_w, ix, x.w);
        kernels::resample(x, &rows, &cols)
    }

    /// `[B, 3, H, W]` tensor in, `[B, 3, H', W']` tensor out (each image on its own).
    ///
    /// # Errors
    /// [`EngineError::Input`] unless `x` has 3 channels; [`EngineError::Readback`]
    /// if `x` cannot be read into host memory.
    pub(crate) fn forward_tensor(&self, x: Tensor<4>) -> Result<Tensor<4>, EngineError> {
        let device = x.device();
        let [b, c, h, w] = x.dims();
        if c != 3 {
            return Err(EngineError::Input { dims: [b, c, h, w] });
        }
        let data = values(x, "input image")?;
        let mut out = Vec::new();
        let mut dims = [b, 3, h, w];
        // `values` holds exactly b * c * h * w values, so the chunks are the images.
        for image in data.chunks_exact((c * h * w).max(1)) {
            let map = Map {
                c,
                h,
                w,
                data: image.to_vec(),
            };
            let y = self.forward(map, None);
            dims = [b, y.c, y.h, y.w];
            out.extend_from_slice(&y.data);
        }
        Ok(Tensor::from_data(
            burn::tensor::TensorData::new(out, dims),
            &device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::model::GeneratorConfig;

    /// A wrong input is an error the caller sees, not a panic inside a kernel
    /// (or, before the kernels checked their operands, a read past the weights).
    #[test]
    fn forward_tensor_rejects_a_non_rgb_input() {
        let device = Device::flex();
        let engine = CpuGenerator::new(&GeneratorConfig::new().init(&device)).unwrap();
        let x = Tensor::<4>::random([1, 4, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        match engine.forward_tensor(x) {
            Err(EngineError::Input { dims }) => assert_eq!(dims, [1, 4, 16, 16]),
            other => panic!("expected EngineError::Input, got {other:?}"),
        }
        let x = Tensor::<4>::random([2, 3, 16, 12], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(engine.forward_tensor(x).unwrap().dims(), [2, 3, 16, 12]);
    }
}
