//! The CPU kernels of the inference engine, on one image's `[C, H, W]` row-major
//! planes: reflect-padded convolution (im2col blocks + GEMM), 1x1 convolution
//! (GEMM straight on the planes), depthwise 3x3, GroupNorm(1, C) fused with
//! LeakyReLU, and bilinear resampling by per-axis taps.
//!
//! Why not Flex's own ops: its conv converts every input to NHWC on one thread and
//! each elementwise op allocates a full-size tensor (page faults were ~15% of the
//! profile); here every big loop runs on all cores and norm + activation is one
//! in-place pass.

use multiversion::multiversion;
use rayon::prelude::*;

use super::matmul::{SendPtr, View, gemm_shared};

/// A feature map of one image: `[c, h, w]` row-major.
///
/// The fields are public (the tiler builds and reads maps), so every kernel
/// checks `data.len() == c * h * w` at its boundary ([`Map::assert_valid`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Map {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `c * h * w` values.
    pub data: Vec<f32>,
}

impl Map {
    /// A zero map `[c, h, w]`.
    pub(crate) fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    /// Pixels per channel.
    pub(crate) fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Panics unless `data` holds exactly `c * h * w` values: the kernels index
    /// (and hand GEMM) planes computed from `c`, `h` and `w`.
    pub(crate) fn assert_valid(&self, kernel: &str) {
        let want = self
            .c
            .checked_mul(self.h)
            .and_then(|v| v.checked_mul(self.w));
        assert!(
            want == Some(self.data.len()),
            "{kernel}: map [{}, {}, {}] holds {} values",
            self.c,
            self.h,
            self.w,
            self.data.len()
        );
    }
}

/// Panics with a clear message unless `what` has `want` values.
#[track_caller]
pub(crate) fn assert_len(kernel: &str, what: &str, len: usize, want: usize) {
    assert!(
        len == want,
        "{kernel}: {what} has {len} values, expected {want}"
    );
}

/// Reflect index `i` (may be negative or >= n) into `0..n` (PyTorch `ReflectionPad`,
/// edge not repeated). Needs `n >= 2` when `i` is outside.
#[inline]
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r.clamp(0, n - 1) as usize
}

/// Geometry of a padded convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvGeom {
    /// Square kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Reflect padding on the left and top (right/bottom follow from the output size).
    pub pad_left: usize,
    /// See `pad_left`.
    pub pad_top: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// Output pixels per GEMM call: big enough for GEMM efficiency (~240 GFLOP/s per
/// core at 512 measured with M=32..128, K=147..3136), small enough that one
/// block's im2col buffer stays in the core's cache.
/// (Measured at 512²: 256-512 within 3%; 128 and 1024 slower.)
const BLOCK: usize = 384;

thread_local! {
    /// Each worker's im2col buffer, kept between calls: a fresh multi-megabyte
    /// allocation per task is a fresh mmap, and its page faults showed in profiles.
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Which rows a band of a layer covers, for kernels that run on a band of a
/// taller map ([`super::streamed`]): the whole input has `full_h` rows, the
/// kernel's `x` holds rows `in_row0..in_row0 + x.h` of it, and the band's first
/// output row is `out_row0`. Reflect padding reflects at the whole map's edges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowBand {
    /// Rows of the whole input.
    pub full_h: usize,
    /// First input row the kernel's map holds.
    pub in_row0: usize,
    /// First output row of the band.
    pub out_row0: usize,
}

impl RowBand {
    /// The whole map: `x` holds all `h` rows, output starts at row 0.
    pub(crate) fn whole(h: usize) -> Self {
        Self {
            full_h: h,
            in_row0: 0,
            out_row0: 0,
        }
    }

    /// Local row of `x` for padded whole-map row `i` (reflected into the map).
    ///
    /// # Panics
    /// If that row is not among the rows `x` holds (`held`): the caller read too few.
    #[inline]
    pub(crate) fn local(&self, i: isize, held: usize) -> usize {
        let row = reflect(i, self.full_h);
        match row.checked_sub(self.in_row0).filter(|&r| r < held) {
            Some(r) => r,
            None => panic!(
                "band needs input row {row}, holds {}..{}",
                self.in_row0,
                self.in_row0 + held
            ),
        }
    }
}

/// `out[cout, oh*ow] = W[cout, cin*k*k] · im2col(x)`, reflect padding on the fly:
/// `x` `[cin, h, w]`, `w` `[cout, cin, k, k]` → `[cout, oh, ow]`.
///
/// # Panics
/// If `x` or `w` do not have the lengths their shapes say.
pub(crate) fn conv_reflect(x: &Map, w: &[f32], cout: usize, g: ConvGeom) -> Map {
    conv_reflect_band(x, w, cout, g, RowBand::whole(x.h))
}

/// [`conv_reflect`] for output rows `rows.out_row0..+g.oh` of a taller map, of
/// which `x` holds the rows they read ([`RowBand`]); `g.oh` is the band's height.
///
/// # Panics
/// If the lengths disagree with the shapes, or `x` lacks a row the band reads.
#[multiversion(targets = "simd")]
pub(crate) fn conv_reflect_band(
    x: &Map,
    w: &[f32],
    cout: usize,
    g: ConvGeom,
    rows: RowBand,
) -> Map {
    x.assert_valid("conv_reflect");
    let kk = g.k * g.k;
    let kdim = x.c * kk;
    assert_len("conv_reflect", "weight", w.len(), cout * kdim);
    let n = g.oh * g.ow;
    let mut out = Map::zeros(cout, g.oh, g.ow);
    // Column index tables per kernel column: reflected input x for every output x.
    let xs: Vec<Vec<usize>> = (0..g.k)
        .map(|kx| {
            (0..g.ow)
                .map(|ox| reflect((ox * g.stride + kx) as isize - g.pad_left as isize, x.w))
                .collect()
        })
        .collect();
    let dst = SendPtr::new(&mut out.data);
    let block = BLOCK;
    let blocks = n.div_ceil(block);
    (0..blocks).into_par_iter().for_each(|b| {
        COL.with_borrow_mut(|col| {
            if col.len() < kdim * block {
                col.resize(kdim * block, 0.0);
            }
            let p0 = b * block;
            let nb = block.min(n - p0);
            for ci in 0..x.c {
                let plane = &x.data[ci * x.plane()..(ci + 1) * x.plane()];
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let row = &mut col[((ci * g.k + ky) * g.k + kx) * nb..][..nb];
                        let tab = &xs[kx];
                        let mut j = 0;
                        while j < nb {
                            let p = p0 + j;
                            let (oy, ox0) = (p / g.ow, p % g.ow);
                            let run = (g.ow - ox0).min(nb - j);
                            let iy = rows.local(
                                ((rows.out_row0 + oy) * g.stride + ky) as isize
                                    - g.pad_top as isize,
                                x.h,
                            );
                            let src = &plane[iy * x.w..(iy + 1) * x.w];
                            let dst_run = &mut row[j..j + run];
                            if g.stride == 1 {
                                // Unpadded middle as one copy; reflected edges from the table.
                                let lo = g.pad_left.saturating_sub(kx).max(ox0).min(ox0 + run);
                                let hi = (x.w + g.pad_left).saturating_sub(kx).clamp(lo, ox0 + run);
                                for ox in (ox0..lo).chain(hi..ox0 + run) {
                                    dst_run[ox - ox0] = src[tab[ox]];
                                }
                                if hi > lo {
                                    let s0 = lo + kx - g.pad_left;
                                    dst_run[lo - ox0..hi - ox0]
                                        .copy_from_slice(&src[s0..s0 + hi - lo]);
                                }
                            } else {
                                for (d, &ix) in dst_run.iter_mut().zip(&tab[ox0..ox0 + run]) {
                                    *d = src[ix];
                                }
                            }
                            j += run;
                        }
                    }
                }
            }
            // SAFETY: block b writes only columns p0..p0+nb of each output row,
            // and the blocks partition 0..n, so no two tasks share an element.
            unsafe {
                gemm_shared(
                    (cout, nb, kdim),
                    (dst, View::rows(p0, n), false),
                    (w, View::rows(0, kdim)),
                    (&col[..kdim * nb], View::rows(0, nb)),
                );
            }
        })
    });
    out
}

/// 1x1 convolution without bias: `out[cout, hw] = W[cout, cin] · x[cin, hw]`
/// (`x` `[cin, h, w]` → `[cout, h, w]`).
///
/// # Panics
/// If `x` or `w` do not have the lengths their shapes say.
pub(crate) fn conv1x1(x: &Map, w: &[f32], cout: usize) -> Map {
    x.assert_valid("conv1x1");
    assert_len("conv1x1", "weight", w.len(), cout * x.c);
    let n = x.plane();
    let mut out = Map::zeros(cout, x.h, x.w);
    let dst = SendPtr::new(&mut out.data);
    let block = 2048;
    (0..n.div_ceil(block)).into_par_iter().for_each(|b| {
        let p0 = b * block;
        let nb = block.min(n - p0);
        // SAFETY: block b writes only columns p0..p0+nb of each output row, and
        // the blocks partition 0..n, so no two tasks share an element.
        unsafe {
            gemm_shared(
                (cout, nb, x.c),
                (dst, View::rows(p0, n), false),
                (w, View::rows(0, x.c)),
                (&x.data, View::rows(p0, n)),
            );
        }
    });
    out
}

/// Depthwise 3x3 convolution with reflect padding 1 and a bias: `x` `[c, h, w]`,
/// `w` `[c, 3, 3]`, `bias` `[c]` → `[c, h, w]`.
///
/// # Panics
/// If the lengths disagree with the shapes.
pub(crate) fn depthwise3x3(x: &Map, w: &[f32], bias: &[f32]) -> Map {
    depthwise3x3_band(x, w, bias, RowBand::whole(x.h), x.h)
}

/// [`depthwise3x3`] for `oh` output rows from `rows.out_row0` of a taller map,
/// of which `x` holds the rows they read ([`RowBand`]).
///
/// # Panics
/// If the lengths disagree with the shapes, or `x` lacks a row the band reads.
#[multiversion(targets = "simd")]
pub(crate) fn depthwise3x3_band(x: &Map, w: &[f32], bias: &[f32], rows: RowBand, oh: usize) -> Map {
    x.assert_valid("depthwise3x3");
    assert_len("depthwise3x3", "weight", w.len(), x.c * 9);
    assert_len("depthwise3x3", "bias", bias.len(), x.c);
    let (h, wd) = (oh, x.w);
    let mut out = Map::zeros(x.c, h, wd);
    out.data
        .par_chunks_mut((h * wd).max(1))
        .enumerate()
        .for_each_init(
            || vec![0f32; (h + 2) * (wd + 2)],
            |pad, (c, o)| {
                let plane = &x.data[c * x.plane()..(c + 1) * x.plane()];
                let pw = wd + 2;
                for py in 0..h + 2 {
                    let sy = rows.local((rows.out_row0 + py) as isize - 1, x.h);
                    let src = &plane[sy * wd..(sy + 1) * wd];
                    let row = &mut pad[py * pw..(py + 1) * pw];
                    row[1..=wd].copy_from_slice(src);
                    row[0] = src[reflect(-1, wd)];
                    row[wd + 1] = src[reflect(wd as isize, wd)];
                }
                let k = &w[c * 9..c * 9 + 9];
                for oy in 0..h {
                    let orow = &mut o[oy * wd..(oy + 1) * wd];
                    orow.fill(bias[c]);
                    for ky in 0..3 {
                        let prow = &pad[(oy + ky) * pw..(oy + ky + 1) * pw];
                        for kx in 0..3 {
                            let wk = k[ky * 3 + kx];
                            for (d, s) in orow.iter_mut().zip(&prow[kx..kx + wd]) {
                                *d += wk * s;
                            }
                        }
                    }
                }
            },
        );
    out
}

/// Mean and centred sum of squares (`M2`) of a set of values, for Chan's parallel
/// combination (`var = M2 / n`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Moments {
    /// Number of values.
    pub n: f64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// Merges two disjoint sets' moments (Chan et al.).
    pub(crate) fn merge(self, o: Moments) -> Moments {
        let n = self.n + o.n;
        if n == 0.0 {
            return self;
        }
        let d = o.mean - self.mean;
        Moments {
            n,
            mean: self.mean + d * o.n / n,
            m2: self.m2 + o.m2 + d * d * self.n * o.n / n,
        }
    }

    /// Population variance.
    pub(crate) fn var(&self) -> f64 {
        if self.n > 0.0 { self.m2 / self.n } else { 0.0 }
    }
}

/// Sum of `v` in f64, accumulated in 16 independent f32 lanes per 1024-value
/// chunk so that it vectorises (a plain f64 fold is one add per 4 cycles).
pub(crate) fn sum_f64(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut total = 0f64;
    for chunk in v.chunks(1024) {
        let mut acc = [0f32; 16];
        let mut it = chunk.chunks_exact(16);
        for c in &mut it {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a += f(x);
            }
        }
        let tail: f32 = it.remainder().iter().map(|&x| f(x)).sum();
        total += acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// Moments of `x` over the window `rows x cols` (in the map's own coordinates) of every channel.
#[multiversion(targets = "simd")]
pub(crate) fn moments(
    x: &Map,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Moments {
    let per_channel = |c: usize| -> (f64, usize) {
        let plane = &x.data[c * x.plane()..(c + 1) * x.plane()];
        let mut s = 0f64;
        for y in rows.clone() {
            s += sum_f64(&plane[y * x.w + cols.start..y * x.w + cols.end], |v| v);
        }
        (s, rows.len() * cols.len())
    };
    let (sum, count) = (0..x.c)
        .into_par_iter()
        .map(per_channel)
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    if count == 0 {
        return Moments::default();
    }
    let mean = sum / count as f64;
    let mean32 = mean as f32;
    // Second pass around the mean: exact where sum-of-squares would cancel.
    let m2 = (0..x.c)
        .into_par_iter()
        .map(|c| {
            let plane = &x.data[c * x.plane()..(c + 1) * x.plane()];
            let mut s = 0f64;
            for y in rows.clone() {
                s += sum_f64(&plane[y * x.w + cols.start..y * x.w + cols.end], |v| {
                    let d = v - mean32;
                    d * d
                });
            }
            s
        })
        .sum();
    Moments {
        n: count as f64,
        mean,
        m2,
    }
}

/// In place: `x = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]`, then
/// LeakyReLU(`slope`) when given — the norm and activation in one pass.
/// `x` `[c, h, w]`, `gamma` and `beta` `[c]`.
#[multiversion(targets = "simd")]
pub(crate) fn norm_act(
    x: &mut Map,
    m: Moments,
    eps: f64,
    gamma: &[f32],
    beta: &[f32],
    slope: Option<f32>,
) {
    x.assert_valid("norm_act");
    assert_len("norm_act", "gamma", gamma.len(), x.c);
    assert_len("norm_act", "beta", beta.len(), x.c);
    let (a, b) = norm_coefficients(m, eps, gamma, beta);
    // max(1): chunks of 0 panic; a map with an empty plane has no values anyway.
    let plane = x.plane().max(1);
    x.data
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(c, p)| affine_act(p, a[c], b[c], slope));
}

/// GroupNorm as a per-channel affine map: `(a[c], b[c])` with
/// `norm(v) = v * a[c] + b[c]` for moments `m` (computed in f64, as one formula
/// for the whole-image pass and the streamed one).
pub(crate) fn norm_coefficients(
    m: Moments,
    eps: f64,
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let inv = 1.0 / (m.var() + eps).sqrt();
    gamma
        .iter()
        .zip(beta)
        .map(|(&g, &b)| {
            (
                (g as f64 * inv) as f32,
                (b as f64 - m.mean * g as f64 * inv) as f32,
            )
        })
        .unzip()
}

/// In place: `v = v * a + b`, then LeakyReLU(`slope`) when given.
#[inline]
pub(crate) fn affine_act(p: &mut [f32], a: f32, b: f32, slope: Option<f32>) {
    match slope {
        Some(s) => p.iter_mut().for_each(|v| {
            let y = *v * a + b;
            *v = if y >= 0.0 { y } else { y * s };
        }),
        None => p.iter_mut().for_each(|v| *v = *v * a + b),
    }
}

/// One output coordinate of a 1-D linear interpolation: `(i0, i1, frac)`,
/// value `= x[i0] * (1 - frac) + x[i1] * frac`.
pub(crate) type Tap = (usize, usize, f32);

/// Bilinear resample of every channel with per-row and per-column taps:
/// `x` `[c, h, w]` → `[c, rows.len(), cols.len()]` (taps index inside `h`, `w`).
pub(crate) fn resample(x: &Map, rows: &[Tap], cols: &[Tap]) -> Map {
    x.assert_valid("resample");
    Map {
        c: x.c,
        h: rows.len(),
        w: cols.len(),
        data: resample_planes(&x.data, [x.c, x.h, x.w], rows, cols),
    }
}

/// [`resample`] on bare planes: `x` `[planes, h, w]` → `[planes, rows.len(),
/// cols.len()]`, vertical weights applied to horizontally interpolated rows.
///
/// # Panics
/// If `x`'s length disagrees with the shape, or a tap reads past a plane.
#[multiversion(targets = "simd")]
pub(crate) fn resample_planes(
    x: &[f32],
    [planes, h, w]: [usize; 3],
    rows: &[Tap],
    cols: &[Tap],
) -> Vec<f32> {
    assert_len("resample", "x", x.len(), planes * h * w);
    let (oh, ow, p_in) = (rows.len(), cols.len(), h * w);
    let mut out = vec![0f32; planes * oh * ow];
    // (An empty output has no planes to chunk; an empty input panics at its first tap.)
    if oh * ow == 0 {
        return out;
    }
    out.par_chunks_mut(oh * ow).enumerate().for_each_init(
        || (vec![0f32; ow], vec![0f32; ow]),
        |(t0, t1), (c, o)| {
            let plane = &x[c * p_in..(c + 1) * p_in];
            let hrow = |y: usize, t: &mut [f32]| {
                let src = &plane[y * w..(y + 1) * w];
                for (v, &(i0, i1, f)) in t.iter_mut().zip(cols) {
                    *v = src[i0] * (1.0 - f) + src[i1] * f;
                }
            };
            // Input rows already interpolated into t0 / t1: consecutive output
            // rows share their source rows (4x fewer horizontal passes at 2x).
            let mut held: [Option<usize>; 2] = [None, None];
            for (oy, &(y0, y1, fy)) in rows.iter().enumerate() {
                if held[0] != Some(y0) {
                    if held[1] == Some(y0) {
                        std::mem::swap(t0, t1);
                        held.swap(0, 1);
                    } else {
                        hrow(y0, t0);
                        held[0] = Some(y0);
                    }
                }
                if held[1] != Some(y1) {
                    hrow(y1, t1);
                    held[1] = Some(y1);
                }
                for ((d, a), b) in o[oy * ow..(oy + 1) * ow].iter_mut().zip(&*t0).zip(&*t1) {
                    *d = a * (1.0 - fy) + b * fy;
                }
            }
        },
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn map(c: usize, h: usize, w: usize) -> Map {
        let data = (0..c * h * w).map(|i| (i as f32 * 0.61).sin()).collect();
        Map { c, h, w, data }
    }

    /// Direct reflect-padded convolution, one output at a time.
    fn naive_conv(x: &Map, w: &[f32], cout: usize, g: ConvGeom) -> Vec<f32> {
        let mut out = vec![0f32; cout * g.oh * g.ow];
        for co in 0..cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut s = 0f32;
                    for ci in 0..x.c {
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let iy = reflect(
                                    (oy * g.stride + ky) as isize - g.pad_top as isize,
                                    x.h,
                                );
                                let ix = reflect(
                                    (ox * g.stride + kx) as isize - g.pad_left as isize,
                                    x.w,
                                );
                                s += w[((co * x.c + ci) * g.k + ky) * g.k + kx]
                                    * x.data[(ci * x.h + iy) * x.w + ix];
                            }
                        }
                    }
                    out[(co * g.oh + oy) * g.ow + ox] = s;
                }
            }
        }
        out
    }

    /// Largest absolute difference; NaN if any value is NaN.
    pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, |m, d| {
                if d.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(d)
                }
            })
    }

    #[test]
    fn conv_reflect_matches_direct_convolution_across_blocks() {
        // 3 x 30 x 29 at stride 1 (870 outputs: three GEMM blocks, the last partial)
        // and stride 2 with right/bottom padding only.
        let x = map(3, 30, 29);
        for (k, stride, pad) in [(3, 1, 1), (7, 1, 3), (3, 2, 0)] {
            let cout = 5;
            let w: Vec<f32> = (0..cout * x.c * k * k)
                .map(|i| (i as f32 * 0.23).cos())
                .collect();
            let padded = |n: usize| n + pad + if stride == 2 { 1 } else { pad };
            let g = ConvGeom {
                k,
                stride,
                pad_left: pad,
                pad_top: pad,
                oh: (padded(x.h) - k) / stride + 1,
                ow: (padded(x.w) - k) / stride + 1,
            };
            let y = conv_reflect(&x, &w, cout, g);
            assert_eq!((y.c, y.h, y.w), (cout, g.oh, g.ow));
            let d = max_diff(&y.data, &naive_conv(&x, &w, cout, g));
            assert!(d < 1e-4, "k {k} stride {stride}: {d}");
        }
    }

    #[test]
    fn conv1x1_matches_direct_product_across_blocks() {
        // 4100 pixels: two full 2048-column blocks and a partial one.
        let x = map(6, 41, 100);
        let cout = 3;
        let w: Vec<f32> = (0..cout * x.c).map(|i| i as f32 * 0.1 - 0.7).collect();
        let y = conv1x1(&x, &w, cout);
        let n = x.plane();
        let want: Vec<f32> = (0..cout * n)
            .map(|i| {
                let (co, p) = (i / n, i % n);
                (0..x.c)
                    .map(|ci| w[co * x.c + ci] * x.data[ci * n + p])
                    .sum()
            })
            .collect();
        let d = max_diff(&y.data, &want);
        assert!(d < 1e-4, "{d}");
    }

    #[test]
    #[should_panic(expected = "conv1x1: map [4, 8, 8] holds 200 values")]
    fn conv1x1_rejects_a_map_shorter_than_its_shape() {
        // The old kernel handed GEMM `c * h * w` values of `data` unchecked:
        // 56 values read past the end of the map.
        let mut x = map(4, 8, 8);
        x.data.truncate(200);
        let _ = conv1x1(&x, &[0.0; 8], 2);
    }

    #[test]
    #[should_panic(expected = "conv_reflect: weight has 26 values, expected 27")]
    fn conv_reflect_rejects_a_short_weight() {
        let x = map(3, 6, 6);
        let g = ConvGeom {
            k: 3,
            stride: 1,
            pad_left: 1,
            pad_top: 1,
            oh: 6,
            ow: 6,
        };
        let _ = conv_reflect(&x, &[0.0; 26], 1, g);
    }
}
