//! 2x2 stride-2 max pooling (VGG's) on NCHW `f32` batches, forward and backward,
//! for training on the CPU ([`crate::model::fast_pool`] wires it into Burn's
//! autodiff).
//!
//! Why: Burn's pool on Flex ran on one thread and kept an `i64` index per output
//! (half the size of its input) until the backward. Here the backward finds
//! each window's maximum again from the input, which the ReLU before the pool
//! keeps anyway, so the pool adds nothing to a step's memory.
//!
//! The window's maximum is PyTorch's: the first of equal values in row-major
//! order, and a NaN wins over any number (the gradient goes where the NaN was).

use multiversion::multiversion;
use rayon::prelude::*;

use super::kernels::assert_len;

/// Shape of a pooled batch: `planes` = batch * channels planes of `h x w`
/// pooled to `h / 2 x w / 2` (a last odd row or column is dropped, as with
/// PyTorch's floor mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolShape {
    /// Batch size times channels.
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
}

impl PoolShape {
    fn out_plane(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }
}

/// Index (0..4, row-major in the window) of the maximum of a 2x2 window.
#[inline(always)]
fn arg_max(v: [f32; 4]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] || x.is_nan() {
            best = i;
        }
    }
    best
}

/// The four values of the window of output `(oy, ox)` in plane `p` (`w` wide).
#[inline(always)]
fn window(p: &[f32], w: usize, oy: usize, ox: usize) -> [f32; 4] {
    let (a, b) = (2 * oy * w + 2 * ox, (2 * oy + 1) * w + 2 * ox);
    [p[a], p[a + 1], p[b], p[b + 1]]
}

/// Forward: `x` `[planes, h, w]` → `[planes, h / 2, w / 2]`.
///
/// # Panics
/// If `x`'s length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn forward(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    let (p_in, p_out, ow) = (s.h * s.w, s.out_plane(), s.w / 2);
    assert_len("max pool forward", "x", x.len(), s.planes * p_in);
    let mut out = vec![0f32; s.planes * p_out];
    if p_out == 0 {
        return out;
    }
    out.par_chunks_mut(p_out)
        .zip(x.par_chunks(p_in))
        .for_each(|(o, p)| {
            for (i, v) in o.iter_mut().enumerate() {
                let win = window(p, s.w, i / ow, i % ow);
                *v = win[arg_max(win)];
            }
        });
    out
}

/// Input gradient: `x` (the forward's input) and `grad` `[planes, h / 2, w / 2]`
/// → `[planes, h, w]`, each output's gradient on its window's maximum.
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn backward(s: &PoolShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (p_in, p_out, ow) = (s.h * s.w, s.out_plane(), s.w / 2);
    assert_len("max pool backward", "x", x.len(), s.planes * p_in);
    assert_len("max pool backward", "grad", grad.len(), s.planes * p_out);
    let mut dx = vec![0f32; s.planes * p_in];
    if p_out == 0 {
        return dx;
    }
    dx.par_chunks_mut(p_in)
        .zip(x.par_chunks(p_in))
        .zip(grad.par_chunks(p_out))
        .for_each(|((d, p), g)| {
            for (i, &gv) in g.iter().enumerate() {
                let (oy, ox) = (i / ow, i % ow);
                let k = arg_max(window(p, s.w, oy, ox));
                d[(2 * oy + k / 2) * s.w + 2 * ox + k % 2] = gv;
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: PyTorch's `max_pool2d` on these windows (first of equal
    /// values, NaN wins) and where its backward puts each gradient.
    #[test]
    fn ties_go_to_the_first_and_nan_wins() {
        // One 4x6 plane: windows (0,0) all equal, (0,1) tie between 2nd and 4th,
        // (0,2) a NaN in the 3rd, (1,*) plain maxima; a 5th row and 7th
        // column would be dropped (here the shape is even).
        let nan = f32::NAN;
        #[rustfmt::skip]
        let x = [
            0.0, 0.0,   1.0, 5.0,   2.0, 9.0,
            0.0, 0.0,   3.0, 5.0,   nan, 1.0,
            1.0, 2.0,  -1.0, -3.0,  7.0, 6.0,
            4.0, 3.0,  -2.0, -0.5,  6.5, 6.9,
        ];
        let s = PoolShape {
            planes: 1,
            h: 4,
            w: 6,
        };
        let y = forward(&s, &x);
        assert_eq!(&y[..2], &[0.0, 5.0]);
        assert!(y[2].is_nan());
        assert_eq!(&y[3..], &[4.0, -0.5, 7.0]);
        let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let dx = backward(&s, &x, &g);
        #[rustfmt::skip]
        let want = [
            1.0, 0.0,   0.0, 2.0,   0.0, 0.0,
            0.0, 0.0,   0.0, 0.0,   3.0, 0.0,
            0.0, 0.0,   0.0, 0.0,   6.0, 0.0,
            4.0, 0.0,   0.0, 5.0,   0.0, 0.0,
        ];
        assert_eq!(dx, want);
    }

    #[test]
    fn odd_sides_drop_the_last_row_and_column() {
        let x: Vec<f32> = (0..2 * 5 * 3).map(|i| i as f32).collect();
        let s = PoolShape {
            planes: 2,
            h: 5,
            w: 3,
        };
        // Plane 0 rows 0-3, columns 0-1: maxima at (1, 1) and (3, 1).
        assert_eq!(forward(&s, &x), vec![4.0, 10.0, 19.0, 25.0]);
        let dx = backward(&s, &x, &[1.0, 1.0, 1.0, 1.0]);
        assert_eq!(dx.iter().filter(|&&v| v == 1.0).count(), 4);
        assert_eq!((dx[4], dx[10], dx[19], dx[25]), (1.0, 1.0, 1.0, 1.0));
    }
}
