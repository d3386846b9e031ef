//! Depthwise convolution (groups = channels, one `kh x kw` filter per channel,
//! stride 1, zero or reflect padding) on NCHW `f32` batches, forward and backward, for
//! training on the CPU ([`crate::model::fast_conv`] routes the generator's
//! depthwise 3x3 convs here).
//!
//! Why not Flex's grouped convolution: its forward runs one tiny GEMM per group,
//! and its input gradient goes through a transposed convolution; both were
//! visible in the training profile. A depthwise conv is cheap arithmetic
//! (9 multiply-adds per output of a 3x3), so each plane is `kh * kw` row-wise
//! multiply-adds over contiguous rows, and the planes run in parallel:
//!
//! - forward:  `out[oy][lo..hi] += w[ky][kx] · x[oy + ky - pt][lo + kx - pl ..]`
//! - input:    `dx[oy + ky - pt][lo + kx - pl ..] += w[ky][kx] · dOut[oy][lo..hi]`
//! - weight:   `dw[ky][kx] = Σ dOut[oy][lo..hi] · x[oy + ky - pt][lo + kx - pl ..]`
//!   (per row in `f32`, rows summed in `f64`)
//!
//! The bias gradient is [`super::conv::bias_grad`]'s (per output channel either way).

use multiversion::multiversion;
use rayon::prelude::*;

use super::conv::ConvShape;
use super::kernels::assert_len;

/// Panics unless `s` is a depthwise stride-1 conv with `weight` `[c, 1, kh, kw]`.
fn check(s: &ConvShape, kernel: &str, weight_len: usize) {
    s.assert_valid(kernel);
    assert!(
        s.cin == s.cout && (s.sh, s.sw) == (1, 1),
        "{kernel}: needs cin == cout and stride 1, got {} -> {} stride ({}, {})",
        s.cin,
        s.cout,
        s.sh,
        s.sw
    );
    assert_len(kernel, "weight", weight_len, s.cout * s.kh * s.kw);
}

/// `(out, inp, n)` for one tap `(ky, kx)` of one plane: output pixels
/// `out..out + n` read input pixels `inp..inp + n` (row-major offsets in their
/// planes). One run per output row for the columns inside the input, and for
/// reflect padding one single-pixel run per mirrored edge column.
fn taps(s: &ConvShape, ky: usize, kx: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let (lo, hi) = s.valid_cols(kx);
    (0..s.oh).flat_map(move |oy| {
        let iy = s.input_row(oy, ky);
        let inside = iy
            .filter(|_| lo < hi)
            .map(|iy| (oy * s.ow + lo, iy * s.w + lo + kx - s.pad_left, hi - lo));
        let edges = (0..lo)
            .chain(hi..s.ow)
            .filter_map(move |ox| Some((oy * s.ow + ox, iy? * s.w + s.edge_col(ox, kx)?, 1)));
        inside.into_iter().chain(edges)
    })
}

/// `f(w[ky][kx], output range, input range)` for every tap and output row of one
/// plane: the output pixels `out` read the input pixels `inp` at that tap (the
/// forward adds `w · x[inp]` into `out`, the input gradient `w · dOut[out]`
/// into `inp`).
fn for_each_row(
    s: &ConvShape,
    w: &[f32],
    mut f: impl FnMut(f32, std::ops::Range<usize>, std::ops::Range<usize>),
) {
    for ky in 0..s.kh {
        for kx in 0..s.kw {
            let wv = w[ky * s.kw + kx];
            for (out, inp, n) in taps(s, ky, kx) {
                f(wv, out..out + n, inp..inp + n);
            }
        }
    }
}

/// Forward: `x` `[batch, c, h, w]`, `weight` `[c, 1, kh, kw]`, `bias` `[c]` →
/// `[batch, c, oh, ow]`.
///
/// # Panics
/// If `s` is not depthwise stride 1, or a slice's length disagrees with it.
#[multiversion(targets = "simd")]
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    check(s, "depthwise forward", weight.len());
    let (p_in, p_out, k) = (s.in_plane(), s.out_plane(), s.kh * s.kw);
    assert_len("depthwise forward", "x", x.len(), s.batch * s.cin * p_in);
    assert_len("depthwise forward", "bias", bias.len(), s.cout);
    let mut out = vec![0f32; s.batch * s.cout * p_out];
    out.par_chunks_mut(p_out.max(1))
        .zip(x.par_chunks(p_in.max(1)))
        .enumerate()
        .for_each(|(plane, (o, xp))| {
            let c = plane % s.cout;
            o.fill(bias[c]);
            let w = &weight[c * k..(c + 1) * k];
            for_each_row(s, w, |wv, out, inp| {
                let dst = &mut o[out];
                dst.iter_mut().zip(&xp[inp]).for_each(|(d, v)| *d += wv * v);
            });
        });
    out
}

/// Input gradient: `weight` `[c, 1, kh, kw]`, `grad` `[batch, c, oh, ow]` →
/// `[batch, c, h, w]`.
///
/// # Panics
/// If `s` is not depthwise stride 1, or a slice's length disagrees with it.
#[multiversion(targets = "simd")]
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    check(s, "depthwise input_grad", weight.len());
    let (p_in, p_out, k) = (s.in_plane(), s.out_plane(), s.kh * s.kw);
    assert_len(
        "depthwise input_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let mut dx = vec![0f32; s.batch * s.cin * p_in];
    dx.par_chunks_mut(p_in.max(1))
        .zip(grad.par_chunks(p_out.max(1)))
        .enumerate()
        .for_each(|(plane, (d, g))| {
            let c = plane % s.cout;
            let w = &weight[c * k..(c + 1) * k];
            for_each_row(s, w, |wv, out, inp| {
                let dst = &mut d[inp];
                dst.iter_mut().zip(&g[out]).for_each(|(d, v)| *d += wv * v);
            });
        });
    dx
}

/// Weight gradient: `x` `[batch, c, h, w]`, `grad` `[batch, c, oh, ow]` →
/// `[c, 1, kh, kw]`.
///
/// # Panics
/// If `s` is not depthwise stride 1, or a slice's length disagrees with it.
#[multiversion(targets = "simd")]
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let k = s.kh * s.kw;
    check(s, "depthwise weight_grad", s.cout * k);
    let (p_in, p_out) = (s.in_plane(), s.out_plane());
    assert_len(
        "depthwise weight_grad",
        "x",
        x.len(),
        s.batch * s.cin * p_in,
    );
    assert_len(
        "depthwise weight_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let mut dw = vec![0f32; s.cout * k];
    dw.par_chunks_mut(k).enumerate().for_each(|(c, dwc)| {
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let mut acc = 0f64;
                for b in 0..s.batch {
                    let plane = b * s.cout + c;
                    let xp = &x[plane * p_in..(plane + 1) * p_in];
                    let g = &grad[plane * p_out..(plane + 1) * p_out];
                    for (out, inp, n) in taps(s, ky, kx) {
                        acc += f64::from(dot(&g[out..out + n], &xp[inp..inp + n]));
                    }
                }
                dwc[ky * s.kw + kx] = acc as f32;
            }
        }
    });
    dw
}

/// `Σ a[i] b[i]` in eight `f32` lanes (so it vectorises), lanes summed at the end.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}
