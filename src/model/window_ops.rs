//! The generator on a *window* of a larger image as Burn ops, computing there
//! what the whole-image pass computes: the counterpart of [`super::cpu`]'s window
//! mode for every other device (wgpu), so tiling is seam-free on GPUs too (see
//! [`crate::convert::tiles`]). Upsampling samples the whole image's grid (two
//! matmuls with the window's rows of the interpolation matrices), and every
//! GroupNorm uses whole-image statistics given from outside, gathered pass by
//! pass over the tiles' shares of the image.

use burn::tensor::activation::{leaky_relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};

use super::blocks::{ConvNormLReLU, InvertedResBlock, LEAKY_SLOPE, LayerNorm2d};
use super::cpu::kernels::{Moments, Tap};
use super::cpu::{Window, taps};
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
        .into_data()
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

/// One window pass: the window and the norm-layer counter.
struct Pass<'a> {
    win: &'a mut Window,
    layer: usize,
    /// Full-resolution window size, to find each map's scale.
    size: [usize; 2],
    /// Set once [`Window::stop_after`] is reached.
    stopped: bool,
}

impl Pass<'_> {
    /// GroupNorm(1, C) (+ LeakyReLU) of `x` with the whole-image statistics of
    /// this layer; on the pass that gathers them, records the moments of `x` over
    /// the window's share and stops.
    fn norm(
        &mut self,
        x: Tensor<4>,
        n: &LayerNorm2d,
        slope: Option<f64>,
    ) -> Result<Tensor<4>, ReadbackError> {
        let layer = self.layer;
        self.layer += 1;
        let [_, c, h, w] = x.dims();
        if self.win.stop_after == Some(layer) {
            // The map's scale: 1, 2 or 4 (stride-2 sides are floor(side / 2)).
            let scale = if w == self.size[1] {
                1
            } else if w == self.size[1] / 2 {
                2
            } else {
                4
            };
            let [y0, y1, x0, x1] = self.win.interior;
            let end = |v: usize, full: usize, len: usize| {
                if v >= full { len } else { (v / scale).min(len) }
            };
            let (r0, r1) = (y0 / scale, end(y1, self.size[0], h));
            let (c0, c1) = (x0 / scale, end(x1, self.size[1], w));
            if r1 > r0 && c1 > c0 {
                let part = moments(x.clone().narrow(2, r0, r1 - r0).narrow(3, c0, c1 - c0))?;
                if let Some(r) = self.win.record.get_mut(layer) {
                    *r = r.merge(part);
                }
            }
            self.stopped = true;
            return Ok(x);
        }
        let y = match self.win.stats.get(layer) {
            Some(m) => {
                let scale = 1.0 / (m.var() + n.epsilon).sqrt();
                let centred = x.sub_scalar(m.mean).mul_scalar(scale);
                centred * n.gamma.val().reshape([1, c, 1, 1]) + n.beta.val().reshape([1, c, 1, 1])
            }
            None => layer_norm_ops(x, n.gamma.val(), n.beta.val(), n.epsilon),
        };
        Ok(match slope {
            Some(k) => leaky_relu(y, k),
            None => y,
        })
    }

    fn cnl(&mut self, x: Tensor<4>, l: &ConvNormLReLU) -> Result<Tensor<4>, ReadbackError> {
        if self.stopped {
            return Ok(x);
        }
        let y = fast_conv::forward(&l.conv, l.pad.apply(x));
        self.norm(y, &l.norm, Some(LEAKY_SLOPE))
    }

    fn irb(&mut self, x: Tensor<4>, b: &InvertedResBlock) -> Result<Tensor<4>, ReadbackError> {
        let y = self.cnl(x.clone(), &b.expand)?;
        let y = self.cnl(y, &b.depthwise)?;
        if self.stopped {
            return Ok(y);
        }
        let y = self.norm(fast_conv::forward(&b.project, y), &b.norm, None)?;
        Ok(if b.residual { x + y } else { y })
    }
}

impl Generator {
    /// Window `win` of the whole image, `x` = `[1, 3, h, w]` in [-1, 1] (its origin
    /// a multiple of 4), -> `[1, 3, h, w]` as the whole-image forward computes it
    /// there (away from the window's cut edges), norms using `win.stats`. `None`
    /// when the pass stopped after gathering [`Window::stop_after`]'s moments.
    ///
    /// # Errors
    /// A statistic that cannot be read back from the device.
    pub(crate) fn forward_window(
        &self,
        x: Tensor<4>,
        win: &mut Window,
    ) -> Result<Option<Tensor<4>>, ReadbackError> {
        let [_, _, h, w] = x.dims();
        let (full, origin) = (win.full, win.origin);
        let mut pass = Pass {
            win,
            layer: 0,
            size: [h, w],
            stopped: false,
        };
        let mut y = x;
        for l in &self.block_a {
            y = pass.cnl(y, l)?;
        }
        let [_, _, half_h, half_w] = y.dims();
        for l in &self.block_b {
            y = pass.cnl(y, l)?;
        }
        y = pass.cnl(y, &self.block_c.head)?;
        for b in &self.block_c.irbs {
            y = pass.irb(y, b)?;
        }
        y = pass.cnl(y, &self.block_c.tail)?;
        if pass.stopped {
            return Ok(None);
        }
        // Whole-image sizes at 1/2 and 1/4 (stride-2 convs floor), for the sampling grid.
        let full_half = [full[0] / 2, full[1] / 2];
        let full_quarter = [full_half[0] / 2, full_half[1] / 2];
        let origin_half = [origin[0] / 2, origin[1] / 2];
        y = self.up_window(y, full_quarter, full_half, [half_h, half_w], origin_half);
        for l in &self.block_d {
            y = pass.cnl(y, l)?;
        }
        if pass.stopped {
            return Ok(None);
        }
        y = self.up_window(y, full_half, full, [h, w], origin);
        for l in &self.block_e {
            y = pass.cnl(y, l)?;
        }
        if pass.stopped {
            return Ok(None);
        }
        Ok(Some(tanh(fast_conv::forward(&self.out_layer, y))))
    }

    /// Upsamples `x` (a window of a whole-image map of size `full_in`) to the
    /// window of the whole-image output `full_target` whose origin is `origin_out`.
    fn up_window(
        &self,
        x: Tensor<4>,
        full_in: [usize; 2],
        full_target: [usize; 2],
        target: [usize; 2],
        origin_out: [usize; 2],
    ) -> Tensor<4> {
        let ac = self.upsample.align_corners();
        let [_, _, h, w] = x.dims();
        let [fo_h, fo_w] = self
            .upsample
            .output_size(full_in[0], full_in[1], full_target);
        let [o_h, o_w] = self.upsample.output_size(h, w, target);
        let (iy, ix) = (origin_out[0] / 2, origin_out[1] / 2);
        let rows = taps(full_in[0], fo_h, ac, origin_out[0], o_h, iy, h);
        let cols = taps(full_in[1], fo_w, ac, origin_out[1], o_w, ix, w);
        resample(x, &rows, &cols)
    }
}
