//! Stride-1 convolutions as one GEMM per kernel tap over a padded band of rows:
//! the training path of [`super::conv`] for stride-1 convs with enough input
//! channels to fill a GEMM's inner dimension — VGG's and the discriminator's
//! zero-padded convs in all three directions, the generator's reflect-padded ones
//! for their weight and input gradients (see [`takes_forward`] for why not their
//! forward) — and for the input gradient of every stride-1 conv.
//!
//! Why: im2col writes every input pixel `kh * kw` times (9x for a 3x3 conv) and
//! its adjoint adds them back: 16% of a full training step on the Intel Xeon
//! measured (`perf`, im2col and col2im with their callees). With
//! stride 1, tap `(ky, kx)` of every output pixel reads the padded input shifted by
//! `ky` rows and `kx` columns; if the output is computed `wp` columns wide (the
//! padded width, the last `kw - 1` columns of each row being discarded), that shift
//! is one constant offset `ky * wp + kx` in the flattened band, so the band's input
//! padded **once** is the right-hand side of all `kh * kw` GEMMs:
//!
//! - forward:  `out[:, band] = Σ_tap W_tap · xpad[:, band + off(tap)] + bias`
//! - weight:   `dW_tap += dOut[:, band] · xpad[:, band + off(tap)]ᵀ` (the discarded
//!   columns of `dOut` are zeros, so they add nothing)
//! - input:    `dx = Σ_tap W_tapᵀ · dOutpad[:, band + off'(tap)]`, the full correlation
//!   of `dOut` zero-padded by `k - 1` with the flipped kernel; each band writes only
//!   its own input rows (zero padding), or its padded rows, which a second pass
//!   folds onto the pixels they mirror (reflect padding).
//!
//! Every product is still one f32 multiply of a weight by an input value, summed in
//! f32 (per tap over channels, then over taps): the same arithmetic as a direct
//! convolution in another order, not a transform (Winograd's rounding failed the
//! PyTorch reference step; see `BENCHMARKS.md`).

use multiversion::multiversion;
use rayon::prelude::*;

use super::conv::ConvShape;
use super::kernels::{assert_len, reflect};
use super::matmul::{SendPtr, View, gemm};

/// Channels below which a tap's GEMM is too thin to pay (its inner size is the
/// channels): the forward and weight gradient of such convs (an RGB input layer)
/// keep im2col; the input gradient with few output channels expands `dOut` per
/// tap instead.
const MIN_GEMM_CHANNELS: usize = 16;

/// Output pixels (padded width) per band.
const BAND_PIXELS: usize = 768;

thread_local! {
    /// Each worker's padded band and GEMM output, kept between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stride 1, a non-empty output, and `channels` at least [`MIN_GEMM_CHANNELS`].
fn stride_one_with(s: &ConvShape, channels: usize) -> bool {
    s.sh == 1 && s.sw == 1 && channels >= MIN_GEMM_CHANNELS && s.oh > 0 && s.ow > 0
}

/// Whether the forward of `s` runs here: zero-padded stride-1 convs (VGG's and
/// the discriminator's) that [`super::conv_winograd`] does not take (asked first).
///
/// The generator's reflect-padded forward keeps im2col's summation order. With
/// the tap order there, the PyTorch reference step (`tests/train_step.rs`) fails
/// its strictest bound (1e-3 relative on Adam's first update of early generator
/// layers; errors up to 3.2e-2, where PyTorch's own float32 step is at 4.9e-2):
/// near-tied values upstream of Adam's sign-like first step flip, not a loss of
/// accuracy (against an f64 convolution of 32-256 channels the tap order's
/// relative L2 error is 1.2-3.0e-7, im2col's 3.0-3.8e-7). Every weight and input
/// gradient, and the
/// zero-padded forwards, pass that bound in the tap order.
pub(crate) fn takes_forward(s: &ConvShape) -> bool {
    stride_one_with(s, s.cin) && !s.reflect
}

/// Whether the weight gradient of `s` runs here (its GEMMs are `cout x cin`).
pub(crate) fn takes_weight_grad(s: &ConvShape) -> bool {
    stride_one_with(s, s.cin)
}

/// Whether the input gradient of `s` runs here: every stride-1 conv that
/// [`super::conv_winograd`] does not take (with few output channels, as one GEMM
/// over `dOut` expanded per tap).
pub(crate) fn takes_input_grad(s: &ConvShape) -> bool {
    stride_one_with(s, MIN_GEMM_CHANNELS)
}

/// Runs `f` with this worker's scratch buffer of at least `len` values.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|buf| {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}

/// `(image, first row, end row)` of bands of `rows` rows of a `width`-wide
/// output, about [`BAND_PIXELS`] each, image-major.
fn bands(batch: usize, rows: usize, width: usize) -> Vec<(usize, usize, usize)> {
    let per = BAND_PIXELS.div_ceil(width.max(1)).clamp(1, rows.max(1));
    (0..batch)
        .flat_map(|b| (0..rows.div_ceil(per)).map(move |i| (b, i * per, ((i + 1) * per).min(rows))))
        .collect()
}

/// `weight` `[cout, cin, kh, kw]` regrouped per tap: `[taps, cout, cin]`, or with
/// `transpose` `[taps, cin, cout]`.
fn per_tap(s: &ConvShape, weight: &[f32], transpose: bool) -> Vec<f32> {
    let taps = s.kh * s.kw;
    let mut out = vec![0f32; weight.len()];
    for co in 0..s.cout {
        for ci in 0..s.cin {
            for tap in 0..taps {
                let at = if transpose {
                    (tap * s.cin + ci) * s.cout + co
                } else {
                    (tap * s.cout + co) * s.cin + ci
                };
                out[at] = weight[(co * s.cin + ci) * taps + tap];
            }
        }
    }
    out
}

/// `weight` `[cout, cin, kh, kw]` as `[cin, taps * cout]`, tap-major in each row:
/// the left-hand side of the input gradient's single GEMM over expanded `dOut`.
fn expanded_weights(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
    let taps = s.kh * s.kw;
    let mut out = vec![0f32; weight.len()];
    for co in 0..s.cout {
        for ci in 0..s.cin {
            for tap in 0..taps {
                out[(ci * taps + tap) * s.cout + co] = weight[(co * s.cin + ci) * taps + tap];
            }
        }
    }
    out
}

/// Input rows `r0 - pad_top .. r0 - pad_top + rows` of image `x` (`[cin, h, w]`)
/// padded to `wp` columns (`pad_left` on the left): `xb[ci * rows * wp + j * wp + px]`,
/// zeros (or mirrored pixels) where they fall in the padding, and `kw - 1` zeros
/// after the last plane (the last tap's GEMM reads that far into the discarded
/// columns).
#[multiversion(targets = "simd")]
fn pad_band(s: &ConvShape, x: &[f32], r0: usize, rows: usize, wp: usize, xb: &mut [f32]) {
    let plane = rows * wp;
    xb[s.cin * plane..].fill(0.0);
    // Columns px that read input column px - pad_left directly.
    let lo = s.pad_left.min(wp);
    let hi = (s.pad_left + s.w).clamp(lo, wp);
    for ci in 0..s.cin {
        let src_plane = &x[ci * s.in_plane()..(ci + 1) * s.in_plane()];
        for j in 0..rows {
            let dst = &mut xb[ci * plane + j * wp..][..wp];
            let Some(iy) = s.input_row(r0 + j, 0) else {
                dst.fill(0.0);
                continue;
            };
            let src = &src_plane[iy * s.w..(iy + 1) * s.w];
            if hi > lo {
                dst[lo..hi].copy_from_slice(&src[lo - s.pad_left..hi - s.pad_left]);
            }
            for px in (0..lo).chain(hi..wp) {
                let ix = px as isize - s.pad_left as isize;
                dst[px] = if s.reflect {
                    src[reflect(ix, s.w)]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Forward of a conv [`takes_forward`] accepts: `x` `[batch, cin, h, w]`,
/// `weight` `[cout, cin, kh, kw]`, `bias` `[cout]` → `[batch, cout, oh, ow]`.
#[multiversion(targets = "simd")]
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    assert!(
        takes_forward(s),
        "conv_taps forward: {s:?} is not for this path"
    );
    assert_len("conv forward", "x", x.len(), s.batch * s.cin * s.in_plane());
    assert_len("conv forward", "weight", weight.len(), s.cout * s.k());
    assert_len("conv forward", "bias", bias.len(), s.cout);
    let (taps, p_out, wp) = (s.kh * s.kw, s.out_plane(), s.ow + s.kw - 1);
    let wt = per_tap(s, weight, false);
    let mut out = vec![0f32; s.batch * s.cout * p_out];
    let dst = SendPtr::new(&mut out);
    bands(s.batch, s.oh, wp)
        .into_par_iter()
        .for_each(|(b, r0, r1)| {
            let rows = r1 - r0;
            let (plane, n) = ((rows + s.kh - 1) * wp, rows * wp);
            let x_len = s.cin * plane + s.kw - 1;
            let img = &x[b * s.cin * s.in_plane()..(b + 1) * s.cin * s.in_plane()];
            with_scratch(x_len + s.cout * n, |buf| {
                let (xb, ob) = buf.split_at_mut(x_len);
                pad_band(s, img, r0, rows + s.kh - 1, wp, xb);
                for tap in 0..taps {
                    let offset = (tap / s.kw) * wp + tap % s.kw;
                    gemm(
                        (s.cout, n, s.cin),
                        (&mut *ob, View::rows(0, n), tap > 0),
                        (&wt, View::rows(tap * s.cout * s.cin, s.cin)),
                        (
                            &*xb,
                            View {
                                offset,
                                rs: plane,
                                cs: 1,
                            },
                        ),
                    );
                }
                for (co, &bv) in bias.iter().enumerate() {
                    // SAFETY: this band writes only rows r0..r1 of image b's output
                    // planes; the bands partition every image's rows, so no other
                    // task touches them.
                    let row = unsafe {
                        dst.slice_mut((b * s.cout + co) * p_out + r0 * s.ow, rows * s.ow)
                    };
                    for (r, out_row) in row.chunks_exact_mut(s.ow).enumerate() {
                        let src = &ob[co * n + r * wp..][..s.ow];
                        out_row.iter_mut().zip(src).for_each(|(o, v)| *o = v + bv);
                    }
                }
            });
        });
    out
}

/// Weight gradient of a conv [`takes_weight_grad`] accepts: `x` `[batch, cin, h, w]`,
/// `grad` `[batch, cout, oh, ow]` → `[cout, cin, kh, kw]`. Each worker sums a
/// contiguous run of bands into its own accumulator; the accumulators are added
/// in a fixed order (deterministic).
#[multiversion(targets = "simd")]
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert!(
        takes_weight_grad(s),
        "conv_taps weight_grad: {s:?} is not for this path"
    );
    assert_len(
        "conv weight_grad",
        "x",
        x.len(),
        s.batch * s.cin * s.in_plane(),
    );
    let p_out = s.out_plane();
    assert_len(
        "conv weight_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let (taps, wp) = (s.kh * s.kw, s.ow + s.kw - 1);
    let all = bands(s.batch, s.oh, wp);
    let workers = rayon::current_num_threads().clamp(1, all.len().max(1));
    let partials: Vec<Vec<f32>> = all
        .par_chunks(all.len().div_ceil(workers).max(1))
        .map(|chunk| {
            // [taps, cout, cin]
            let mut acc = vec![0f32; taps * s.cout * s.cin];
            for &(b, r0, r1) in chunk {
                let rows = r1 - r0;
                let (plane, n) = ((rows + s.kh - 1) * wp, rows * wp);
                let x_len = s.cin * plane + s.kw - 1;
                let img = &x[b * s.cin * s.in_plane()..(b + 1) * s.cin * s.in_plane()];
                with_scratch(x_len + s.cout * n, |buf| {
                    let (xb, gb) = buf.split_at_mut(x_len);
                    pad_band(s, img, r0, rows + s.kh - 1, wp, xb);
                    // dOut's band at the padded width, zeros in the discarded columns.
                    for co in 0..s.cout {
                        let src = &grad[(b * s.cout + co) * p_out + r0 * s.ow..][..rows * s.ow];
                        let dst = &mut gb[co * n..(co + 1) * n];
                        for (d, g) in dst.chunks_exact_mut(wp).zip(src.chunks_exact(s.ow)) {
                            d[..s.ow].copy_from_slice(g);
                            d[s.ow..].fill(0.0);
                        }
                    }
                    for tap in 0..taps {
                        let offset = (tap / s.kw) * wp + tap % s.kw;
                        gemm(
                            (s.cout, s.cin, n),
                            (
                                acc.as_mut_slice(),
                                View::rows(tap * s.cout * s.cin, s.cin),
                                true,
                            ),
                            (&*gb, View::rows(0, n)),
                            (
                                &*xb,
                                View {
                                    offset,
                                    rs: 1,
                                    cs: plane,
                                },
                            ), // xpadᵀ
                        );
                    }
                });
            }
            acc
        })
        .collect();
    let mut total = vec![0f32; s.cout * s.k()];
    for p in partials {
        for tap in 0..taps {
            for co in 0..s.cout {
                for ci in 0..s.cin {
                    total[(co * s.cin + ci) * taps + tap] += p[(tap * s.cout + co) * s.cin + ci];
                }
            }
        }
    }
    total
}

/// Rows `y0 - (kh - 1) .. y0 + rows` of image `b`'s output gradient, columns from
/// `x0 - (kw - 1)`, `wq` wide, zeros outside the output: the band the input
/// gradient's tap GEMMs read, plus `kw - 1` trailing zeros.
#[multiversion(targets = "simd")]
fn pad_grad_band(
    s: &ConvShape,
    grad: &[f32],
    b: usize,
    (y0, rows): (usize, usize),
    (x0, wq): (usize, usize),
    db: &mut [f32],
) {
    let rows_in = rows + s.kh - 1;
    let plane = rows_in * wq;
    db.fill(0.0);
    let p_out = s.out_plane();
    // Column c of the band is output column x0 + c - (kw - 1).
    let c_lo = (s.kw - 1).saturating_sub(x0).min(wq);
    let c_hi = (s.ow + s.kw - 1).saturating_sub(x0).clamp(c_lo, wq);
    for co in 0..s.cout {
        let src_plane = &grad[(b * s.cout + co) * p_out..][..p_out];
        for j in 0..rows_in {
            let oy = (y0 + j) as isize - (s.kh - 1) as isize;
            if oy < 0 || oy >= s.oh as isize {
                continue;
            }
            let src = &src_plane[oy as usize * s.ow..][..s.ow];
            let ox0 = x0 + c_lo - (s.kw - 1);
            db[co * plane + j * wq + c_lo..][..c_hi - c_lo]
                .copy_from_slice(&src[ox0..ox0 + c_hi - c_lo]);
        }
    }
}

/// Input gradient of a conv [`takes_input_grad`] accepts: `weight`
/// `[cout, cin, kh, kw]`, `grad` `[batch, cout, oh, ow]` → `[batch, cin, h, w]`.
#[multiversion(targets = "simd")]
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    assert!(
        takes_input_grad(s),
        "conv_taps input_grad: {s:?} is not for this path"
    );
    assert_len("conv input_grad", "weight", weight.len(), s.cout * s.k());
    let p_out = s.out_plane();
    assert_len(
        "conv input_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let (taps, p_in) = (s.kh * s.kw, s.in_plane());
    let (hp, wp) = (s.oh + s.kh - 1, s.ow + s.kw - 1);
    // The padded-input rows and columns whose gradient is computed: with zero
    // padding only the input's own; with reflect padding all of them, folded
    // onto the pixels they mirror afterwards.
    let (y0, y1, x0, wx) = if s.reflect {
        (0, hp, 0, wp)
    } else {
        (s.pad_top, s.pad_top + s.h, s.pad_left, s.w)
    };
    let wq = wx + s.kw - 1;
    // Few output channels (the discriminator's 256 -> 1 head): one GEMM over all
    // taps at once, on `dOut` expanded per tap (`taps * cout` rows, cheap when
    // `cout` is small), instead of `taps` GEMMs of inner size `cout`.
    let expand = s.cout < MIN_GEMM_CHANNELS;
    let wt = if expand {
        expanded_weights(s, weight)
    } else {
        per_tap(s, weight, true)
    };
    let k_exp = if expand { taps * s.cout } else { 0 };
    // Zero padding: the gradient itself. Reflect: `[batch, cin, hp, wp]`.
    let mut target = vec![0f32; s.batch * s.cin * (y1 - y0) * wx];
    let plane_t = (y1 - y0) * wx;
    let dst = SendPtr::new(&mut target);
    bands(s.batch, y1 - y0, wq)
        .into_par_iter()
        .for_each(|(b, r0, r1)| {
            let rows = r1 - r0;
            let (plane, n) = ((rows + s.kh - 1) * wq, rows * wq);
            let d_len = s.cout * plane + s.kw - 1;
            with_scratch(d_len + k_exp * n + s.cin * n, |buf| {
                let (db, rest) = buf.split_at_mut(d_len);
                let (eb, gb) = rest.split_at_mut(k_exp * n);
                pad_grad_band(s, grad, b, (y0 + r0, rows), (x0, wq), db);
                if expand {
                    for tap in 0..taps {
                        let (ky, kx) = (tap / s.kw, tap % s.kw);
                        let offset = (s.kh - 1 - ky) * wq + (s.kw - 1 - kx);
                        for co in 0..s.cout {
                            eb[(tap * s.cout + co) * n..][..n]
                                .copy_from_slice(&db[co * plane + offset..][..n]);
                        }
                    }
                    gemm(
                        (s.cin, n, k_exp),
                        (&mut *gb, View::rows(0, n), false),
                        (&wt, View::rows(0, k_exp)),
                        (&*eb, View::rows(0, n)),
                    );
                }
                for tap in (0..taps).filter(|_| !expand) {
                    let (ky, kx) = (tap / s.kw, tap % s.kw);
                    let offset = (s.kh - 1 - ky) * wq + (s.kw - 1 - kx);
                    gemm(
                        (s.cin, n, s.cout),
                        (&mut *gb, View::rows(0, n), tap > 0),
                        (&wt, View::rows(tap * s.cin * s.cout, s.cout)),
                        (
                            &*db,
                            View {
                                offset,
                                rs: plane,
                                cs: 1,
                            },
                        ),
                    );
                }
                for ci in 0..s.cin {
                    // SAFETY: this band writes only rows r0..r1 of image b's target
                    // planes; the bands partition every image's rows.
                    let rows_out =
                        unsafe { dst.slice_mut((b * s.cin + ci) * plane_t + r0 * wx, rows * wx) };
                    for (r, out_row) in rows_out.chunks_exact_mut(wx).enumerate() {
                        out_row.copy_from_slice(&gb[ci * n + r * wq..][..wx]);
                    }
                }
            });
        });
    if !s.reflect {
        return target;
    }
    let mut dx = vec![0f32; s.batch * s.cin * p_in];
    dx.par_chunks_mut(p_in)
        .zip(target.par_chunks(plane_t))
        .for_each(|(d, g)| fold_reflect(s, g, wp, d));
    dx
}

/// Adds the gradient of a reflect-padded plane (`hp` rows of `wp`) onto the
/// `[h, w]` pixels its entries were read from: the adjoint of reflect padding.
#[multiversion(targets = "simd")]
fn fold_reflect(s: &ConvShape, padded: &[f32], wp: usize, dx: &mut [f32]) {
    let lo = s.pad_left.min(wp);
    let hi = (s.pad_left + s.w).clamp(lo, wp);
    for (py, src) in padded.chunks_exact(wp).enumerate() {
        let iy = reflect(py as isize - s.pad_top as isize, s.h);
        let dst = &mut dx[iy * s.w..(iy + 1) * s.w];
        if hi > lo {
            let interior = &mut dst[lo - s.pad_left..hi - s.pad_left];
            interior
                .iter_mut()
                .zip(&src[lo..hi])
                .for_each(|(d, v)| *d += v);
        }
        for px in (0..lo).chain(hi..wp) {
            dst[reflect(px as isize - s.pad_left as isize, s.w)] += src[px];
        }
    }
}
