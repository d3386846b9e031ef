//! The generator on *windows* of a larger image as Burn ops, computing there what
//! the whole-image pass computes: the counterpart of [`super::cpu`]'s window mode
//! for every other device (wgpu), so tiling is seam-free on GPUs too (see
//! [`crate::convert::tiles`]). Upsampling samples the whole image's grid (two
//! matmuls with the window's rows of the interpolation matrices), and every
//! GroupNorm uses whole-image statistics.
//!
//! The network is a straight program of [`Step`]s, and each window's pass
//! ([`WindowPass`]) can pause at the input of a norm layer and resume there. The
//! tiles advance in lockstep: all run to norm layer `k`, their moments over their
//! shares of the image (a partition) give the whole image's statistics of layer
//! `k`, and all continue with them. Every layer thus runs once per tile — about one
//! whole-image pass plus the overlaps — instead of once per norm layer after it
//! (the CPU's window mode re-runs prefixes to keep only one tile in memory; on a
//! GPU the tiles' activations stay on the device, each buffer one tile's size,
//! which is what the adapter's buffer limit bounds).

use burn::tensor::activation::{leaky_relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};

use burn::nn::conv::Conv2d;

use super::blocks::{ConvNormLReLU, LEAKY_SLOPE, LayerNorm2d, Padding};
use super::cpu::kernels::{Moments, Tap};
use super::cpu::taps;
use super::fast_conv;
use super::fast_norm::layer_norm_ops;
use super::generator::Generator;
use crate::tensor_image::ReadbackError;

/// `[rows, in_len]` weights of the 1-D taps `t` (each row sums to 1).
fn tap_matrix(t: &[Tap], in_len: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0f32; t.len() * in_len];
    for (i, &(i0, i1, frac)) in t.iter().enumerate() {
        m[i * in_len + i0] += 1.0 - frac;
        m[i * in_len + i1] += frac;
    }
    Tensor::from_data(TensorData::new(m, [t.len(), in_len]), device)
}

/// `[1, C, H, W]` -> `[1, C, rows.len(), cols.len()]`: bilinear resampling with
/// the given taps, as `Wy · X · Wxᵀ` (exact, and only small reductions).
fn resample(x: Tensor<4>, rows: &[Tap], cols: &[Tap]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let (oh, ow) = (rows.len(), cols.len());
    let wx_t = tap_matrix(cols, w, &device).transpose(); // [W, OW]
    let wy_t = tap_matrix(rows, h, &device).transpose(); // [H, OH]
    let x = x.reshape([b * c * h, w]).matmul(wx_t); // [B*C*H, OW]
    let x = x
        .reshape([b, c, h, ow])
        .swap_dims(2, 3)
        .reshape([b * c * ow, h]);
    x.matmul(wy_t).reshape([b, c, ow, oh]).swap_dims(2, 3) // [B, C, OH, OW]
}

/// Moments of every value of `region` (`[1, C, h, w]`), read back as one pair.
/// Nested per-axis means: one large reduction lost accuracy on wgpu (see
/// [`layer_norm_ops`]).
fn moments(region: Tensor<4>) -> Result<Moments, ReadbackError> {
    let [_, c, h, w] = region.dims();
    let n = (c * h * w) as f64;
    if n == 0.0 {
        return Ok(Moments::default());
    }
    let mean = region.clone().mean_dim(3).mean_dim(2).mean_dim(1); // [1, 1, 1, 1]
    let var = (region - mean.clone())
        .square()
        .mean_dim(3)
        .mean_dim(2)
        .mean_dim(1);
    let pair = Tensor::cat(vec![mean.reshape([1]), var.reshape([1])], 0)
        .try_into_data()
        .map_err(|e| ReadbackError(format!("{e:?}")))?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ReadbackError(format!("{e:?}")))?;
    match pair.as_slice() {
        [mean, var] => Ok(Moments {
            n,
            mean: *mean as f64,
            m2: *var as f64 * n,
        }),
        other => Err(ReadbackError(format!(
            "moments: {} values instead of 2",
            other.len()
        ))),
    }
}

/// One operation of the generator's forward pass, in order.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// `pad` (if any), then the convolution.
    Conv(&'a Conv2d, Option<&'a Padding>),
    /// GroupNorm(1, C), then LeakyReLU with this slope if any.
    Norm(&'a LayerNorm2d, Option<f64>),
    /// Remember the current map's size as the 1/2-resolution size (after block A).
    MarkHalf,
    /// Keep the current map for an inverted residual block's skip connection.
    Keep,
    /// End of an inverted residual block: add the kept map if the block has a skip.
    Residual(bool),
    /// Upsample 1/4 → 1/2 (`false`) or 1/2 → full resolution (`true`).
    Up(bool),
    /// The output conv and tanh.
    Out,
}

/// The generator as a straight list of steps (same order as `forward_ops`).
fn program(g: &Generator) -> Vec<Step<'_>> {
    fn push_cnl<'a>(p: &mut Vec<Step<'a>>, l: &'a ConvNormLReLU) {
        p.push(Step::Conv(&l.conv, Some(&l.pad)));
        p.push(Step::Norm(&l.norm, Some(LEAKY_SLOPE)));
    }
    let mut p = Vec::new();
    for l in &g.block_a {
        push_cnl(&mut p, l);
    }
    p.push(Step::MarkHalf);
    for l in &g.block_b {
        push_cnl(&mut p, l);
    }
    push_cnl(&mut p, &g.block_c.head);
    for b in &g.block_c.irbs {
        p.push(Step::Keep);
        push_cnl(&mut p, &b.expand);
        push_cnl(&mut p, &b.depthwise);
        p.push(Step::Conv(&b.project, None));
        p.push(Step::Norm(&b.norm, None));
        p.push(Step::Residual(b.residual));
    }
    push_cnl(&mut p, &g.block_c.tail);
    p.push(Step::Up(false));
    for l in &g.block_d {
        push_cnl(&mut p, l);
    }
    p.push(Step::Up(true));
    for l in &g.block_e {
        push_cnl(&mut p, l);
    }
    p.push(Step::Out);
    p
}

/// A map of a paused pass: on the device, or moved to host memory so that other
/// tiles' maps fit on the device.
enum Stored {
    /// On the device.
    Device(Tensor<4>),
    /// In host memory, uploaded again on resume.
    Host(TensorData),
}

impl Stored {
    /// Device memory it holds.
    fn device_bytes(&self) -> usize {
        match self {
            Self::Device(t) => t.shape().num_elements() * size_of::<f32>(),
            Self::Host(_) => 0,
        }
    }

    fn on_device(self, device: &Device) -> Tensor<4> {
        match self {
            Self::Device(t) => t,
            Self::Host(d) => Tensor::from_data(d, device),
        }
    }

    fn into_host(self) -> Result<Self, ReadbackError> {
        match self {
            Self::Device(t) => Ok(Self::Host(read_back(t)?)),
            host @ Self::Host(_) => Ok(host),
        }
    }
}

/// One window's pass through the generator, paused between steps.
pub(crate) struct WindowPass {
    /// The current map: `[1, C, h', w']` of the window at the current resolution;
    /// at the end, `[1, 3, h, w]` in [-1, 1]. `None` only while [`Self::advance`] runs.
    map: Option<Stored>,
    /// The skip connection of the inverted residual block being run.
    kept: Option<Stored>,
    /// Where the pass computes.
    device: Device,
    /// The next step to run.
    pc: usize,
    /// Norm layers run so far.
    layer: usize,
    /// The window's full-resolution size `[h, w]`.
    size: [usize; 2],
    /// Its size at 1/2 resolution, once known.
    half: [usize; 2],
    /// The whole image's size `[h, w]` (after conversion padding).
    full: [usize; 2],
    /// The window's origin `[y, x]` in the whole image; multiples of 4.
    origin: [usize; 2],
    /// Full-resolution window rows/cols `[y0, y1, x0, x1)` of its share of the image.
    interior: [usize; 4],
}

/// Where [`WindowPass::advance`] stopped.
pub(crate) enum Paused {
    /// At the input of the next norm layer, whose whole-image statistics are needed:
    /// the moments of that input over the window's share.
    AtNorm(Moments),
    /// At the end: the pass holds its output.
    Done,
}

impl WindowPass {
    /// A pass over window `x` = `[1, 3, h, w]` in [-1, 1] at `origin` (multiples of 4)
    /// of a `full`-sized image, owning `interior` (`[y0, y1, x0, x1)` in window pixels).
    pub(crate) fn new(
        x: Tensor<4>,
        full: [usize; 2],
        origin: [usize; 2],
        interior: [usize; 4],
    ) -> Self {
        let [_, _, h, w] = x.dims();
        Self {
            device: x.device(),
            map: Some(Stored::Device(x)),
            kept: None,
            pc: 0,
            layer: 0,
            size: [h, w],
            half: [h, w],
            full,
            origin,
            interior,
        }
    }

    /// Device memory its maps hold while paused.
    pub(crate) fn device_bytes(&self) -> usize {
        self.map.as_ref().map_or(0, Stored::device_bytes)
            + self.kept.as_ref().map_or(0, Stored::device_bytes)
    }

    /// Moves its maps to host memory until it resumes (a read-back: the tile's work
    /// so far is done first).
    ///
    /// # Errors
    /// A map that cannot be read back from the device.
    pub(crate) fn park(&mut self) -> Result<(), ReadbackError> {
        self.map = self.map.take().map(Stored::into_host).transpose()?;
        self.kept = self.kept.take().map(Stored::into_host).transpose()?;
        Ok(())
    }

    /// Runs `g` from where this pass paused. Norm layer `k` normalises with
    /// `stats[k]` when given; the first layer past `stats` pauses the pass with its
    /// input's moments if it is one of the first `exact` layers, and otherwise uses
    /// the window's own statistics (the per-tile control of the tests).
    ///
    /// # Errors
    /// A moment that cannot be read back from the device.
    pub(crate) fn advance(
        &mut self,
        g: &Generator,
        stats: &[Moments],
        exact: usize,
    ) -> Result<Paused, ReadbackError> {
        let device = self.device.clone();
        let Some(map) = self.map.take() else {
            return Err(ReadbackError("a tile's pass lost its map".into()));
        };
        let mut y = map.on_device(&device);
        let mut kept = self.kept.take().map(|k| k.on_device(&device));
        let steps = program(g);
        let mut paused = Paused::Done;
        while let Some(step) = steps.get(self.pc) {
            match *step {
                Step::Conv(conv, pad) => {
                    let x = match pad {
                        Some(p) => p.apply(y),
                        None => y,
                    };
                    y = fast_conv::forward(conv, x);
                }
                Step::Norm(n, slope) => {
                    let normed = match stats.get(self.layer) {
                        Some(m) => {
                            let [_, c, _, _] = y.dims();
                            let scale = 1.0 / (m.var() + n.epsilon).sqrt();
                            y.sub_scalar(m.mean).mul_scalar(scale)
                                * n.gamma.val().reshape([1, c, 1, 1])
                                + n.beta.val().reshape([1, c, 1, 1])
                        }
                        None if self.layer < exact => {
                            paused = Paused::AtNorm(self.share_moments(&y)?);
                            break;
                        }
                        None => layer_norm_ops(y, n.gamma.val(), n.beta.val(), n.epsilon),
                    };
                    y = match slope {
                        Some(k) => leaky_relu(normed, k),
                        None => normed,
                    };
                    self.layer += 1;
                }
                Step::MarkHalf => {
                    let [_, _, h, w] = y.dims();
                    self.half = [h, w];
                }
                Step::Keep => kept = Some(y.clone()),
                Step::Residual(add) => {
                    let skip = kept.take();
                    if let (true, Some(skip)) = (add, skip) {
                        y = skip + y;
                    }
                }
                Step::Up(to_full) => {
                    // Whole-image sizes at 1/2 and 1/4 (stride-2 convs floor).
                    let full_half = [self.full[0] / 2, self.full[1] / 2];
                    let full_quarter = [full_half[0] / 2, full_half[1] / 2];
                    let origin_half = [self.origin[0] / 2, self.origin[1] / 2];
                    let (full_in, full_target, target, origin_out) = if to_full {
                        (full_half, self.full, self.size, self.origin)
                    } else {
                        (full_quarter, full_half, self.half, origin_half)
                    };
                    y = up_window(g, y, full_in, full_target, target, origin_out);
                }
                Step::Out => y = tanh(fast_conv::forward(&g.out_layer, y)),
            }
            self.pc += 1;
        }
        self.map = Some(Stored::Device(y));
        self.kept = kept.map(Stored::Device);
        Ok(paused)
    }

    /// Moments of `y` over the window's share of the image, at the map's resolution
    /// (1, 1/2 or 1/4 of the window's).
    fn share_moments(&self, y: &Tensor<4>) -> Result<Moments, ReadbackError> {
        let [_, _, h, w] = y.dims();
        // The map's scale: 1, 2 or 4 (stride-2 sides are floor(side / 2)).
        let scale = if w == self.size[1] {
            1
        } else if w == self.size[1] / 2 {
            2
        } else {
            4
        };
        let [y0, y1, x0, x1] = self.interior;
        let end = |v: usize, full: usize, len: usize| {
            if v >= full { len } else { (v / scale).min(len) }
        };
        let (r0, r1) = (y0 / scale, end(y1, self.size[0], h));
        let (c0, c1) = (x0 / scale, end(x1, self.size[1], w));
        if r1 > r0 && c1 > c0 {
            moments(y.clone().narrow(2, r0, r1 - r0).narrow(3, c0, c1 - c0))
        } else {
            Ok(Moments::default())
        }
    }

    /// The output `[3, h, w]` floats in [-1, 1], once [`Paused::Done`].
    ///
    /// # Errors
    /// The output cannot be read back from the device.
    pub(crate) fn output(self) -> Result<Vec<f32>, ReadbackError> {
        let Some(map) = self.map else {
            return Err(ReadbackError("a tile's pass lost its map".into()));
        };
        let data = match map {
            Stored::Device(t) => read_back(t)?,
            Stored::Host(d) => d,
        };
        data.convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| ReadbackError(format!("{e:?}")))
    }
}

/// `t`'s values in host memory; a failed device read is an error, not a panic.
fn read_back(t: Tensor<4>) -> Result<TensorData, ReadbackError> {
    t.try_into_data()
        .map_err(|e| ReadbackError(format!("{e:?}")))
}

/// Upsamples `x` (a window of a whole-image map of size `full_in`) to the window of
/// the whole-image output `full_target` whose origin is `origin_out`.
fn up_window(
    g: &Generator,
    x: Tensor<4>,
    full_in: [usize; 2],
    full_target: [usize; 2],
    target: [usize; 2],
    origin_out: [usize; 2],
) -> Tensor<4> {
    let ac = g.upsample.align_corners();
    let [_, _, h, w] = x.dims();
    let [fo_h, fo_w] = g.upsample.output_size(full_in[0], full_in[1], full_target);
    let [o_h, o_w] = g.upsample.output_size(h, w, target);
    let (iy, ix) = (origin_out[0] / 2, origin_out[1] / 2);
    let rows = taps(full_in[0], fo_h, ac, origin_out[0], o_h, iy, h);
    let cols = taps(full_in[1], fo_w, ac, origin_out[1], o_w, ix, w);
    resample(x, &rows, &cols)
}
