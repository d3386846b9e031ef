//! Bilinear resizing of NCHW `f32` batches, forward and backward, for training
//! on the CPU ([`crate::model::fast_upsample`] wires it into Burn's autodiff).
//!
//! Why: the generator's two x2 upsamplings trained as two dense matmuls against
//! interpolation matrices (`Wy · X · Wxᵀ`, 2 non-zeros per row, plus a full
//! transposed copy between them), ~7 G multiply-adds a batch-4 step each way
//! and two kept intermediates. Here each output reads its four taps, and the
//! backward adds each output gradient onto them; nothing is kept for the backward.
//! Taps follow PyTorch's rule for either corner mode ([`source_taps`]).

use multiversion::multiversion;
use rayon::prelude::*;

use super::kernels::{Tap, assert_len, resample_planes};
use crate::model::upsample::source_taps;

/// Shape of one resize: `planes` (batch * channels) planes of `h x w` to `oh x ow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResizeShape {
    /// Batch size times channels.
    pub planes: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
    /// PyTorch's `align_corners`.
    pub align_corners: bool,
}

impl ResizeShape {
    /// Row taps and column taps.
    fn taps(&self) -> (Vec<Tap>, Vec<Tap>) {
        let axis = |input: usize, out: usize| -> Vec<Tap> {
            (0..out)
                .map(|i| source_taps(input, out, self.align_corners, i))
                .collect()
        };
        (axis(self.h, self.oh), axis(self.w, self.ow))
    }
}

/// Forward: `x` `[planes, h, w]` → `[planes, oh, ow]`.
///
/// # Panics
/// If `x`'s length disagrees with `s`, or an input side is 0 with a non-empty output.
#[multiversion(targets = "simd")]
pub(crate) fn forward(s: &ResizeShape, x: &[f32]) -> Vec<f32> {
    let (rows, cols) = s.taps();
    resample_planes(x, [s.planes, s.h, s.w], &rows, &cols)
}

/// Input gradient: `grad` `[planes, oh, ow]` → `[planes, h, w]`: each output
/// row's gradient is spread over input columns (the horizontal taps' adjoint),
/// then added onto its two input rows with the vertical weights.
///
/// # Panics
/// If `grad`'s length disagrees with `s`, or an input side is 0 with a non-empty output.
#[multiversion(targets = "simd")]
pub(crate) fn backward(s: &ResizeShape, grad: &[f32]) -> Vec<f32> {
    let (p_in, p_out) = (s.h * s.w, s.oh * s.ow);
    assert_len("resize backward", "grad", grad.len(), s.planes * p_out);
    let mut dx = vec![0f32; s.planes * p_in];
    if p_in == 0 || p_out == 0 {
        return dx;
    }
    let (rows, cols) = s.taps();
    dx.par_chunks_mut(p_in)
        .zip(grad.par_chunks(p_out))
        .for_each_init(
            || vec![0f32; s.w],
            |r, (d, g)| {
                for (oy, &(y0, y1, fy)) in rows.iter().enumerate() {
                    r.fill(0.0);
                    for (&gv, &(x0, x1, fx)) in g[oy * s.ow..(oy + 1) * s.ow].iter().zip(&cols) {
                        r[x0] += gv * (1.0 - fx);
                        r[x1] += gv * fx;
                    }
                    for (y, wy) in [(y0, 1.0 - fy), (y1, fy)] {
                        let dst = &mut d[y * s.w..(y + 1) * s.w];
                        dst.iter_mut().zip(&*r).for_each(|(a, v)| *a += wy * v);
                    }
                }
            },
        );
    dx
}
