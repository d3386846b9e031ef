//! Zero- or reflect-padded, strided 2-D convolution on NCHW `f32` batches —
//! forward, input gradient, weight gradient and bias gradient — for training on
//! the CPU ([`crate::model::fast_conv`] wires them into Burn's autodiff).
//!
//! Reflect padding (the generator's, PyTorch's `ReflectionPad2d`) is read through
//! reflected indices in im2col, and its adjoint adds the padding's gradient onto
//! the pixels it mirrors in col2im: no padded copy of the input exists. (Burn's
//! `pad` wrote one per conv and its backward cloned the whole gradient once per
//! side, all on one thread: ~10% of a training step.)
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
//!
//! Stride-1 convs with at least 16 channels on the GEMM's inner side skip im2col
//! altogether: zero-padded 3x3 "same" convs (VGG's, the discriminator's) run
//! their forward and input gradient by Winograd F(4x4, 3x3)
//! ([`super::conv_winograd`]); the rest, and every weight gradient,
//! [`super::conv_taps`] runs as one GEMM per kernel tap over a band padded once.
//! What stays here: strided convs, RGB input layers and the generator's
//! reflect-padded forward.
//!
//! Each public kernel checks its slices' lengths against the [`ConvShape`] at
//! entry (a wrong length panics there, in release builds too); the GEMMs check
//! their extents again ([`super::matmul`]).

use multiversion::multiversion;
use rayon::prelude::*;

use super::kernels::{assert_len, reflect};
use super::matmul::{SendPtr, View, gemm, gemm_shared};
use super::{conv_taps, conv_winograd};

/// Shape of one convolution (groups 1, dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
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
    /// Rows added at the top (the bottom follows from the output height).
    pub pad_top: usize,
    /// Columns added on the left.
    pub pad_left: usize,
    /// Whether the padding reflects the edge (`x[-1] = x[1]`) instead of adding
    /// zeros; each side's padding must then be smaller than the input's side.
    pub reflect: bool,
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
    pub(crate) fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    pub(crate) fn in_plane(&self) -> usize {
        self.h * self.w
    }

    pub(crate) fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Output rows per band: about [`BAND_PIXELS`] pixels; with `disjoint`, at
    /// least `kh / sh` rows so that bands two apart never touch the same input
    /// rows (the input gradient's schedule). Without it a band of a 7x7 conv on a
    /// 256-wide map is one row, not seven: its im2col matrix (64 input channels:
    /// 3136 x 256) then stays near the L2 cache instead of 22 MiB.
    fn band_rows(&self, disjoint: bool) -> usize {
        let min_rows = if disjoint {
            self.kh.div_ceil(self.sh)
        } else {
            1
        };
        BAND_PIXELS
            .div_ceil(self.ow.max(1))
            .max(min_rows)
            .clamp(1, self.oh.max(1))
    }

    /// `(image, first row, end row)` of every band ([`Self::band_rows`]), image-major.
    fn bands(&self, disjoint: bool) -> Vec<(usize, usize, usize)> {
        let rows = self.band_rows(disjoint);
        (0..self.batch)
            .flat_map(|b| {
                (0..self.oh.div_ceil(rows))
                    .map(move |i| (b, i * rows, ((i + 1) * rows).min(self.oh)))
            })
            .collect()
    }

    /// Output columns `lo..hi` whose tap `kx` lands inside the input (the rest read padding).
    pub(crate) fn valid_cols(&self, kx: usize) -> (usize, usize) {
        valid_range(kx, self.pad_left, self.sw, self.w, self.ow)
    }

    /// Input row of output row `oy` at tap `ky`: `None` in zero padding, the
    /// mirrored row in reflect padding.
    pub(crate) fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.sh + ky) as isize - self.pad_top as isize;
        if (0..self.h as isize).contains(&iy) {
            Some(iy as usize)
        } else {
            self.reflect.then(|| reflect(iy, self.h))
        }
    }

    /// The input column output column `ox` reads at tap `kx` where it falls in
    /// the padding (outside [`Self::valid_cols`]): `None` for zeros, the
    /// mirrored column for reflect padding.
    pub(crate) fn edge_col(&self, ox: usize, kx: usize) -> Option<usize> {
        let ix = (ox * self.sw + kx) as isize - self.pad_left as isize;
        self.reflect.then(|| reflect(ix, self.w))
    }

    /// Input rows `lo..hi` that output rows `r0..r1` read (and that the input
    /// gradient of that band adds into); empty when they all fall in zero padding.
    fn input_rows(&self, r0: usize, r1: usize) -> (usize, usize) {
        if r0 >= r1 {
            return (0, 0);
        }
        if self.reflect {
            // Mirrored rows lie near the edge the band already reads past.
            let rows =
                (r0..r1).flat_map(|oy| (0..self.kh).filter_map(move |ky| self.input_row(oy, ky)));
            let (lo, hi) = rows.fold((usize::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r + 1)));
            return (lo.min(hi), hi);
        }
        let lo = (r0 * self.sh).saturating_sub(self.pad_top).min(self.h);
        let hi = ((r1 - 1) * self.sh + self.kh)
            .saturating_sub(self.pad_top)
            .clamp(lo, self.h);
        (lo, hi)
    }

    /// Panics unless strides and kernel sizes are positive: [`Self::band_rows`]
    /// divides by the stride, and the input gradient's band schedule relies on
    /// each band reading a bounded set of input rows.
    pub(crate) fn assert_valid(&self, kernel: &str) {
        assert!(
            self.sh > 0 && self.sw > 0 && self.kh > 0 && self.kw > 0,
            "{kernel}: zero stride or kernel size in {self:?}"
        );
        // Reflection maps padded index -p to p (and h - 1 + p to h - 1 - p): each
        // side's padding must stay inside the input, as PyTorch requires.
        let pad_bottom =
            ((self.oh.max(1) - 1) * self.sh + self.kh).saturating_sub(self.pad_top + self.h);
        let pad_right =
            ((self.ow.max(1) - 1) * self.sw + self.kw).saturating_sub(self.pad_left + self.w);
        assert!(
            !self.reflect
                || (self.pad_top.max(pad_bottom) < self.h && self.pad_left.max(pad_right) < self.w),
            "{kernel}: reflect padding as wide as the input in {self:?}"
        );
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
/// `col` (`[k, (r1 - r0) * ow]`): zeros where a tap reads zero padding, the
/// mirrored pixel where it reads reflect padding.
#[multiversion(targets = "simd")]
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
                    for ox in (0..lo).chain(hi..s.ow) {
                        dst[ox] = s.edge_col(ox, kx).map_or(0.0, |ix| src[ix]);
                    }
                    if s.sw == 1 {
                        let s0 = lo + kx - s.pad_left;
                        dst[lo..hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    } else {
                        // Strided gather; zip + step_by lets the compiler drop
                        // the per-element bounds checks an index expression keeps.
                        let s0 = lo * s.sw + kx - s.pad_left;
                        let taps = src[s0..].iter().step_by(s.sw);
                        dst[lo..hi].iter_mut().zip(taps).for_each(|(d, v)| *d = *v);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back onto the input pixel
/// it was read from. `dx` holds the whole batch's input gradient and `image` is
/// the offset of this band's image (`[cin, h, w]`) in it.
///
/// Only the rows [`ConvShape::input_rows`]`(r0, r1)` of each channel plane are
/// touched, one row slice at a time (never the whole image as one `&mut`, which
/// would overlap the slices of concurrent bands of the same image).
///
/// # Safety
/// While this runs, no other task reads or writes input rows
/// `s.input_rows(r0, r1)` of any channel of this image in `dx`.
#[multiversion(targets = "simd")]
unsafe fn col2im_add(
    s: &ConvShape,
    col: &[f32],
    r0: usize,
    r1: usize,
    dx: SendPtr<'_>,
    image: usize,
) {
    let nb = (r1 - r0) * s.ow;
    let (row_lo, row_hi) = s.input_rows(r0, r1);
    for ci in 0..s.cin {
        let plane = image + ci * s.in_plane();
        for ky in 0..s.kh {
            for kx in 0..s.kw {
                let row = &col[((ci * s.kh + ky) * s.kw + kx) * nb..][..nb];
                let (lo, hi) = s.valid_cols(kx);
                for (r, oy) in (r0..r1).enumerate() {
                    let Some(iy) = s.input_row(oy, ky) else {
                        continue;
                    };
                    let src = &row[r * s.ow..(r + 1) * s.ow];
                    debug_assert!((row_lo..row_hi).contains(&iy), "row {iy} outside the band");
                    // SAFETY: iy is one of `input_rows(r0, r1)` (oy in r0..r1), which
                    // the caller guarantees no other task touches meanwhile; the
                    // slice is bounds-checked and dropped before the next row's.
                    let dst = unsafe { dx.slice_mut(plane + iy * s.w, s.w) };
                    for ox in (0..lo).chain(hi..s.ow) {
                        if let Some(ix) = s.edge_col(ox, kx) {
                            dst[ix] += src[ox];
                        }
                    }
                    if s.sw == 1 {
                        let d0 = lo + kx - s.pad_left;
                        for (d, v) in dst[d0..d0 + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        let d0 = lo * s.sw + kx - s.pad_left;
                        let taps = dst[d0..].iter_mut().step_by(s.sw);
                        taps.zip(&src[lo..hi]).for_each(|(d, v)| *d += v);
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
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    s.assert_valid("conv forward");
    if conv_winograd::takes(s) {
        return conv_winograd::forward(s, x, weight, bias);
    }
    if conv_taps::takes_forward(s) {
        return conv_taps::forward(s, x, weight, bias);
    }
    let (k, p_out) = (s.k(), s.out_plane());
    assert_len("conv forward", "x", x.len(), s.batch * s.cin * s.in_plane());
    assert_len("conv forward", "weight", weight.len(), s.cout * k);
    // A longer bias would add into the next channel's (or image's) rows.
    assert_len("conv forward", "bias", bias.len(), s.cout);
    let mut out = vec![0f32; s.batch * s.cout * p_out];
    let dst = SendPtr::new(&mut out);
    s.bands(false).into_par_iter().for_each(|(b, r0, r1)| {
        let nb = (r1 - r0) * s.ow;
        let img = &x[b * s.cin * s.in_plane()..(b + 1) * s.cin * s.in_plane()];
        let base = b * s.cout * p_out + r0 * s.ow;
        with_col(k * nb, |col| {
            im2col(s, img, r0, r1, col);
            // SAFETY: this band writes only columns r0*ow..r1*ow of image b's
            // output rows; the bands partition every image's rows, so no other
            // task touches them.
            unsafe {
                gemm_shared(
                    (s.cout, nb, k),
                    (dst, View::rows(base, p_out), false),
                    (weight, View::rows(0, k)),
                    (&*col, View::rows(0, nb)),
                );
            }
            for (co, &bv) in bias.iter().enumerate() {
                // SAFETY: the same band-owned columns as the GEMM above, one
                // output row at a time (bounds-checked).
                let row = unsafe { dst.slice_mut(base + co * p_out, nb) };
                row.iter_mut().for_each(|v| *v += bv);
            }
        });
    });
    out
}

/// Input gradient: `weight` `[cout, cin, kh, kw]`, `grad` `[batch, cout, oh, ow]`
/// → `[batch, cin, h, w]`.
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    s.assert_valid("conv input_grad");
    if conv_winograd::takes(s) {
        return conv_winograd::input_grad(s, weight, grad);
    }
    if conv_taps::takes_input_grad(s) {
        return conv_taps::input_grad(s, weight, grad);
    }
    let (k, p_out, p_in) = (s.k(), s.out_plane(), s.in_plane());
    assert_len("conv input_grad", "weight", weight.len(), s.cout * k);
    assert_len(
        "conv input_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let mut dx = vec![0f32; s.batch * s.cin * p_in];
    let dst = SendPtr::new(&mut dx);
    let bands = s.bands(true);
    let rows = s.band_rows(true);
    // Bands two apart never share input rows (band_rows; `tests::
    // bands_two_apart_touch_disjoint_input_rows`), so each parity runs in parallel.
    for parity in 0..2 {
        bands
            .par_iter()
            .filter(|(_, r0, _)| (r0 / rows) % 2 == parity)
            .for_each(|&(b, r0, r1)| {
                let nb = (r1 - r0) * s.ow;
                with_col(k * nb, |col| {
                    gemm(
                        (k, nb, s.cout),
                        (&mut *col, View::rows(0, nb), false),
                        (weight, View::transposed(0, k)), // Wᵀ
                        (grad, View::rows(b * s.cout * p_out + r0 * s.ow, p_out)),
                    );
                    // SAFETY: the bands running now all have this parity, so any
                    // other band of image b is at least two bands away and adds
                    // into input rows disjoint from this band's; other images'
                    // bands touch other images.
                    unsafe { col2im_add(s, col, r0, r1, dst, b * s.cin * p_in) };
                });
            });
    }
    dx
}

/// Weight gradient: `x` `[batch, cin, h, w]`, `grad` `[batch, cout, oh, ow]` →
/// `[cout, cin, kh, kw]`. Each worker sums a contiguous run of bands into its
/// own accumulator; the accumulators are added in a fixed order (deterministic).
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    s.assert_valid("conv weight_grad");
    if conv_taps::takes_weight_grad(s) {
        return conv_taps::weight_grad(s, x, grad);
    }
    let (k, p_out, p_in) = (s.k(), s.out_plane(), s.in_plane());
    assert_len("conv weight_grad", "x", x.len(), s.batch * s.cin * p_in);
    assert_len(
        "conv weight_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
    let bands = s.bands(false);
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
                    gemm(
                        (s.cout, k, nb),
                        (acc.as_mut_slice(), View::rows(0, k), true),
                        (grad, View::rows(b * s.cout * p_out + r0 * s.ow, p_out)),
                        (&*col, View::transposed(0, nb)), // colᵀ
                    );
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
///
/// # Panics
/// If `grad`'s length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn bias_grad(s: &ConvShape, grad: &[f32]) -> Vec<f32> {
    let p_out = s.out_plane();
    assert_len(
        "conv bias_grad",
        "grad",
        grad.len(),
        s.batch * s.cout * p_out,
    );
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

    fn shape(kh: usize, sh: usize, pad: usize, h: usize, ow: usize) -> ConvShape {
        let oh = (h + 2 * pad - kh) / sh + 1;
        ConvShape {
            reflect: false,
            batch: 2,
            cin: 2,
            h,
            w: ow,
            cout: 3,
            kh,
            kw: kh,
            sh,
            sw: 1,
            pad_top: pad,
            pad_left: pad,
            oh,
            ow,
        }
    }

    /// The input gradient runs same-parity bands concurrently, each adding into
    /// its input rows through raw pointers: sound only if bands two or more
    /// apart never share an input row. `input_rows` is checked against the
    /// per-tap rows too, since the kernels' debug check relies on it.
    #[test]
    fn bands_two_apart_touch_disjoint_input_rows() {
        for (kh, sh, pad) in [
            (3, 1, 1),
            (3, 2, 1),
            (7, 1, 3),
            (1, 1, 0),
            (3, 1, 0),
            (4, 3, 2),
        ] {
            // Wide rows give bands of a few rows (down to kh / sh), where overlap
            // would show; reflect padding adds mirrored rows at both edges.
            for (h, ow, reflect) in [
                (40, 384, false),
                (97, 200, false),
                (23, 500, false),
                (64, 96, false),
                (40, 384, true),
                (23, 500, true),
            ] {
                if h + 2 * pad < kh {
                    continue;
                }
                let s = ConvShape {
                    reflect,
                    ..shape(kh, sh, pad, h, ow)
                };
                let bands: Vec<_> = s.bands(true).into_iter().filter(|b| b.0 == 0).collect();
                for (i, &(_, r0, r1)) in bands.iter().enumerate() {
                    let (lo, hi) = s.input_rows(r0, r1);
                    let touched: Vec<usize> = (r0..r1)
                        .flat_map(|oy| (0..kh).filter_map(move |ky| s.input_row(oy, ky)))
                        .collect();
                    assert!(
                        touched.iter().all(|r| (lo..hi).contains(r)),
                        "{s:?} band {i}"
                    );
                    for &(_, q0, q1) in bands.iter().skip(i + 2) {
                        let (qlo, qhi) = s.input_rows(q0, q1);
                        assert!(
                            hi <= qlo || qhi <= lo,
                            "{s:?}: bands {r0} and {q0} share rows"
                        );
                    }
                }
            }
        }
    }

    /// `<conv(x; W), g> = <x, input_grad(g)> = <W, weight_grad(x, g)>`: the three
    /// kernels agree with each other over many narrow bands (both parities of the
    /// input gradient's schedule), strides 1 and 2 and one-sided padding.
    #[test]
    fn gradients_are_the_adjoints_of_forward() {
        let fill = |n: usize, a: f32| (0..n).map(|i| (i as f32 * a).sin()).collect::<Vec<_>>();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p * q) as f64).sum::<f64>();
        // (kernel, stride, top/left pad, bottom/right pad, h, w): symmetric, the
        // discriminator's top/left only, the generator's bottom/right only.
        for (kh, sh, pad0, pad1, h, w, reflect) in [
            (3, 1, 1, 1, 21, 400, false),
            (3, 2, 1, 0, 25, 390, false),
            (3, 2, 0, 1, 16, 401, false),
            (3, 1, 1, 1, 21, 400, true),
            (7, 1, 3, 3, 30, 150, true),
            (3, 2, 0, 1, 16, 401, true),
        ] {
            let oh = (h + pad0 + pad1 - kh) / sh + 1;
            let ow = (w + pad0 + pad1 - kh) / sh + 1;
            let s = ConvShape {
                batch: 2,
                cin: 3,
                h,
                w,
                cout: 4,
                kh,
                kw: kh,
                sh,
                sw: sh,
                pad_top: pad0,
                pad_left: pad0,
                reflect,
                oh,
                ow,
            };
            assert!(s.bands(true).len() >= 3 * s.batch, "{s:?}: too few bands");
            let x = fill(s.batch * s.cin * h * w, 0.37);
            let wt = fill(s.cout * s.k(), 0.91);
            let g = fill(s.batch * s.cout * oh * ow, 0.53);
            let y = forward(&s, &x, &wt, &[0.0; 4]);
            let lhs = dot(&y, &g);
            let via_x = dot(&x, &input_grad(&s, &wt, &g));
            let via_w = dot(&wt, &weight_grad(&s, &x, &g));
            let tol = 1e-4 * lhs.abs().max(1.0);
            assert!((lhs - via_x).abs() < tol, "{s:?}: {lhs} vs {via_x}");
            assert!((lhs - via_w).abs() < tol, "{s:?}: {lhs} vs {via_w}");
            // The bias gradient is the sum of g per output channel.
            let db = bias_grad(&s, &g);
            let y1 = forward(&s, &x, &wt, &[1.0, 0.0, 0.0, 0.0]);
            assert!((dot(&y1, &g) - lhs - db[0] as f64).abs() < tol);
        }
    }

    #[test]
    #[should_panic(expected = "conv forward: bias has 4 values, expected 3")]
    fn forward_rejects_a_bias_longer_than_cout() {
        // The old kernel added every bias value into a row of the output, so a
        // fourth value was written past this band's output rows.
        let s = shape(3, 1, 1, 5, 5);
        let x = vec![0f32; s.batch * s.cin * s.h * s.w];
        let w = vec![0f32; s.cout * s.k()];
        let _ = forward(&s, &x, &w, &[0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "conv input_grad: weight has")]
    fn input_grad_rejects_a_short_weight() {
        let s = shape(3, 1, 1, 5, 5);
        let grad = vec![0f32; s.batch * s.cout * s.oh * s.ow];
        let weight = vec![0f32; s.cout * s.k() - 1];
        let _ = input_grad(&s, &weight, &grad);
    }

    #[test]
    #[should_panic(expected = "conv weight_grad: grad has")]
    fn weight_grad_rejects_a_short_grad() {
        let s = shape(3, 2, 1, 9, 6);
        let x = vec![0f32; s.batch * s.cin * s.h * s.w];
        // One image's gradient for a batch of two.
        let grad = vec![0f32; s.cout * s.oh * s.ow];
        let _ = weight_grad(&s, &x, &grad);
    }

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
