//! Zero-padded, strided 2-D convolution on NCHW `f32` batches — forward, input
//! gradient, weight gradient and bias gradient — for training on the CPU
//! ([`crate::model::fast_conv`] wires them into Burn's autodiff).
//!
//! Why not Flex's own convolution: its weight gradient is a convolution whose
//! *kernel* is the whole output-gradient image (GEMMs of width 9, the narrow `x1x6`
//! kernels that topped the training profile), its input gradient goes through a
//! transposed convolution, and every input is first converted to NHWC on one
//! thread. Here all three are one im2col + GEMM per band of output rows, on every
//! core, with no full-size intermediate:
//!
//! - forward:  `out[b][:, band] = W · col(x[b], band) + bias`
//! - weight:   `dW += dOut[b][:, band] · col(x[b], band)ᵀ` (one accumulator per worker)
//! - input:    `dx[b] += col2im(Wᵀ · dOut[b][:, band])`, even bands then odd bands, so
//!   no two workers ever add into the same input rows.

use rayon::prelude::*;

use super::kernels::{SendPtr, gemm_strided};

/// Shape of one convolution (groups 1, dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Zero rows added at the top (the bottom follows from the output height).
    pub pad_top: usize,
    /// Zero columns added on the left.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// Output pixels per GEMM, rounded up to whole output rows: the size the
/// inference engine measured best (256-512 within 3%).
const BAND_PIXELS: usize = 384;

thread_local! {
    /// Each worker's im2col (or column-gradient) buffer, kept between calls so a
    /// training step does not page-fault fresh buffers in for every conv.
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ConvShape {
    /// Rows of the im2col matrix: `cin * kh * kw`.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Output rows per band: about [`BAND_PIXELS`] pixels, and at least `kh / sh`
    /// rows so that bands two apart never touch the same input rows.
    fn band_rows(&self) -> usize {
        BAND_PIXELS
            .div_ceil(self.ow.max(1))
            .max(self.kh.div_ceil(self.sh))
            .clamp(1, self.oh.max(1))
    }

    /// `(image, first row, end row)` of every band, image-major.
    fn bands(&self) -> Vec<(usize, usize, usize)> {
        let rows = self.band_rows();
        (0..self.batch)
            .flat_map(|b| {
                (0..self.oh.div_ceil(rows))
                    .map(move |i| (b, i * rows, ((i + 1) * rows).min(self.oh)))
            })
            .collect()
    }

    /// Output columns `lo..hi` whose tap `kx` lands inside the input (the rest read padding).
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        valid_range(kx, self.pad_left, self.sw, self.w, self.ow)
    }

    /// Input row of output row `oy` at tap `ky`, or `None` in the padding.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky)
            .checked_sub(self.pad_top)
            .filter(|&iy| iy < self.h)
    }
}

/// Outputs `o` in `0..n_out` with `0 <= o * stride + k - pad < n_in`, as a range.
fn valid_range(k: usize, pad: usize, stride: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(k).div_ceil(stride).min(n_out);
    let hi = (n_in + pad)
        .saturating_sub(k)
        .div_ceil(stride)
        .clamp(lo, n_out);
    (lo, hi)
}

/// im2col of output rows `r0..r1` of one image `x` (`[cin, h, w]`) into
/// `col` (`[k, (r1 - r0) * ow]`), zeros where a tap reads padding.
fn im2col(s: &ConvShape, x: &[f32], r0: usize, r1: usize, col: &mut [f32]) {
    let nb = (r1 - r0) * s.ow;
    for ci in 0..s.cin {
        let plane = &x[ci * s.in_plane()..(ci + 1) * s.in_plane()];
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let row = &mut col[((ci * s.kh + ky) * s.kw + kx) * nb..][..nb];
                let (lo, hi) = s.valid_cols(kx);
                for (r, oy) in (r0..r1).enumerate() {
                    let dst = &mut row[r * s.ow..(r + 1) * s.ow];
                    let Some(iy) = s.input_row(oy, ky) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * s.w..(iy + 1) * s.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if s.sw == 1 {
                        let s0 = lo + kx - s.pad_left;
                        dst[lo..hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                            *d = src[ox * s.sw + kx - s.pad_left];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back onto the input pixel
/// it was read from (`dx`: one image `[cin, h, w]`).
fn col2im_add(s: &ConvShape, col: &[f32], r0: usize, r1: usize, dx: &mut [f32]) {
    let nb = (r1 - r0) * s.ow;
    for ci in 0..s.cin {
        let plane = &mut dx[ci * s.in_plane()..(ci + 1) * s.in_plane()];
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let row = &col[((ci * s.kh + ky) * s.kw + kx) * nb..][..nb];
                let (lo, hi) = s.valid_cols(kx);
                for (r, oy) in (r0..r1).enumerate() {
                    let Some(iy) = s.input_row(oy, ky) else {
                        continue;
                    };
                    let src = &row[r * s.ow..(r + 1) * s.ow];
                    let dst = &mut plane[iy * s.w..(iy + 1) * s.w];
                    if s.sw == 1 {
                        let d0 = lo + kx - s.pad_left;
                        for (d, v) in dst[d0..d0 + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (ox, v) in src.iter().enumerate().take(hi).skip(lo) {
                            dst[ox * s.sw + kx - s.pad_left] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f` with this worker's scratch buffer of at least `len` values.
fn with_col<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COL.with_borrow_mut(|col| {
        if col.len() < len {
            col.resize(len, 0.0);
        }
        f(&mut col[..len])
    })
}

/// Forward: `x` `[batch, cin, h, w]`, `weight` `[cout, cin, kh, kw]`, `bias`
/// `[cout]` → `[batch, cout, oh, ow]`.
pub fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (k, p_out) = (s.k(), s.out_plane());
    let mut out = vec![0f32; s.batch * s.cout * p_out];
    let dst = SendPtr::new(out.as_mut_ptr());
    s.bands().into_par_iter().for_each(|(b, r0, r1)| {
        let nb = (r1 - r0) * s.ow;
        let img = &x[b * s.cin * s.in_plane()..(b + 1) * s.cin * s.in_plane()];
        with_col(k * nb, |col| {
            im2col(s, img, r0, r1, col);
            // SAFETY: this band owns columns r0*ow..r1*ow of image b's output rows.
            unsafe {
                let base = dst.get().add(b * s.cout * p_out + r0 * s.ow);
                gemm_strided(
                    (s.cout, nb, k),
                    (base, p_out as isize, 1, false),
                    (weight.as_ptr(), k as isize, 1),
                    (col.as_ptr(), nb as isize, 1),
                );
                for (co, &bv) in bias.iter().enumerate() {
                    let row = std::slice::from_raw_parts_mut(base.add(co * p_out), nb);
                    row.iter_mut().for_each(|v| *v += bv);
                }
            }
        });
    });
    out
}

/// Input gradient: `grad` `[batch, cout, oh, ow]` → `[batch, cin, h, w]`.
pub fn input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    let (k, p_out, p_in) = (s.k(), s.out_plane(), s.in_plane());
    let mut dx = vec![0f32; s.batch * s.cin * p_in];
    let dst = SendPtr::new(dx.as_mut_ptr());
    let bands = s.bands();
    let rows = s.band_rows();
    // Bands two apart never share input rows (band_rows), so each parity runs in parallel.
    for parity in 0..2 {
        bands
            .par_iter()
            .filter(|(_, r0, _)| (r0 / rows) % 2 == parity)
            .for_each(|&(b, r0, r1)| {
                let nb = (r1 - r0) * s.ow;
                with_col(k * nb, |col| {
                    // SAFETY: `grad` is only read; the column buffer is this worker's.
                    unsafe {
                        gemm_strided(
                            (k, nb, s.cout),
                            (col.as_mut_ptr(), nb as isize, 1, false),
                            (weight.as_ptr(), 1, k as isize), // Wᵀ
                            (
                                grad.as_ptr().add(b * s.cout * p_out + r0 * s.ow),
                                p_out as isize,
                                1,
                            ),
                        );
                    }
                    // SAFETY: in this parity no other band adds into these rows of image b.
                    let img = unsafe {
                        std::slice::from_raw_parts_mut(
                            dst.get().add(b * s.cin * p_in),
                            s.cin * p_in,
                        )
                    };
                    col2im_add(s, col, r0, r1, img);
                });
            });
    }
    dx
}

/// Weight gradient: `x` `[batch, cin, h, w]`, `grad` `[batch, cout, oh, ow]` →
/// `[cout, cin, kh, kw]`. Each worker sums a contiguous run of bands into its
/// own accumulator; the accumulators are added in a fixed order (deterministic).
pub fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (k, p_out, p_in) = (s.k(), s.out_plane(), s.in_plane());
    let bands = s.bands();
    let workers = rayon::current_num_threads().clamp(1, bands.len().max(1));
    let per = bands.len().div_ceil(workers);
    let partials: Vec<Vec<f32>> = bands
        .par_chunks(per.max(1))
        .map(|chunk| {
            let mut acc = vec![0f32; s.cout * k];
            for &(b, r0, r1) in chunk {
                let nb = (r1 - r0) * s.ow;
                let img = &x[b * s.cin * p_in..(b + 1) * s.cin * p_in];
                with_col(k * nb, |col| {
                    im2col(s, img, r0, r1, col);
                    // SAFETY: `acc` is this worker's; `grad` and `col` are only read.
                    unsafe {
                        gemm_strided(
                            (s.cout, k, nb),
                            (acc.as_mut_ptr(), k as isize, 1, true),
                            (
                                grad.as_ptr().add(b * s.cout * p_out + r0 * s.ow),
                                p_out as isize,
                                1,
                            ),
                            (col.as_ptr(), 1, nb as isize), // colᵀ
                        );
                    }
                });
            }
            acc
        })
        .collect();
    let mut total = vec![0f32; s.cout * k];
    for p in partials {
        total.iter_mut().zip(&p).for_each(|(t, v)| *t += v);
    }
    total
}

/// Bias gradient: `grad` `[batch, cout, oh, ow]` → `[cout]` (sums in f64).
pub fn bias_grad(s: &ConvShape, grad: &[f32]) -> Vec<f32> {
    let p_out = s.out_plane();
    (0..s.cout)
        .into_par_iter()
        .map(|co| {
            (0..s.batch)
                .map(|b| {
                    let start = (b * s.cout + co) * p_out;
                    grad[start..start + p_out]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>()
                })
                .sum::<f64>() as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for (k, pad, stride, n_in) in [
            (0, 1, 1, 5),
            (2, 1, 1, 5),
            (0, 3, 2, 9),
            (6, 3, 2, 9),
            (1, 0, 2, 4),
        ] {
            let n_out = (n_in + 2 * pad - 3) / stride + 1;
            let (lo, hi) = valid_range(k, pad, stride, n_in, n_out);
            for o in 0..n_out {
                let i = (o * stride + k) as isize - pad as isize;
                assert_eq!(
                    (lo..hi).contains(&o),
                    i >= 0 && i < n_in as isize,
                    "{k} {pad} {stride} {n_in} {o}"
                );
            }
        }
    }
}
