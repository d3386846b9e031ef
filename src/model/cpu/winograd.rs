//! Reflect-padded stride-1 convolutions by Winograd's minimal filtering (Lavin &
//! Gray 2016), the generator's heaviest layers:
//! - **3x3 convs by F(4x4, 3x3)**: each 4x4 output tile costs 36 multiplies per
//!   input channel instead of 144 (57% of a photo's multiply-adds are these);
//! - **the 7x7 conv by F(3x3, 3x3) on nine 3x3 pieces** of the kernel: zero-padded
//!   to 9x9, it is nine 3x3 kernels `K_ab` at offsets `(3a, 3b)`, and output tile
//!   `(T, S)` is `Σ_ab F(K_ab)` of input tile `(T + a, S + b)`. Because the offsets
//!   are multiples of the tile side, the pieces share each tile's input transform
//!   and add up in the transformed domain — 25 multiplies per output instead of 49
//!   (the 64 → 32 channel 7x7 conv at full resolution was a quarter of a photo's
//!   time on im2col).
//!
//! Both run as `N x N` GEMMs `M[ξ] = Σ_b U[ξ][b] · V[ξ](b)` over a block of tiles
//! (on weights packed once for the register kernel, [`super::winograd_gemm`])
//! between an input transform `V = Bᵀ d B` (`N x N` patches, `N = M + 2`) and an
//! output transform `Y = Aᵀ M A`. The transformed input is laid out
//! `[ξ][a][ci][tile]`, so a piece's row offset `a` folds into the GEMM's K (one
//! row stride) and its column offset `b` is a shifted view: `PS` GEMMs per ξ.
//!
//! Points 0, ±1, ±2 (and ∞): small constants, so results stay within float
//! rounding of the direct convolution (tested below against it, relative to the
//! output's scale; `tests/import.rs` against PyTorch within 1e-4). Larger tiles
//! (F(6x6, 3x3)) need points ±½ and lose ~2 more digits.
//!
//! Every transform runs on [`LANES`] tiles at once from contiguous rows, so it
//! vectorises: each padded input row of a block is split into its `M` column
//! phases (`row[M t + p]`), the vertical transform runs on those phase rows, and
//! the horizontal one reads tile `t`'s `N` columns as phases `0..M` at `t` and
//! phases 0-1 at `t + 1`. (Transforms written tile by tile were half these
//! layers' time.)

use multiversion::multiversion;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::kernels::{Map, RowBand, assert_len, reflect};
use super::matmul::SendPtr;
use super::winograd_gemm::{InputRows, Operands, PackedWeights, product};

/// Tiles transformed at once (one AVX2 register of `f32`).
const LANES: usize = 8;

/// Output tiles per block row (a block is a run of tiles in one tile row, or in
/// four for the 7x7): 64 tiles are 256 (3x3 convs) or 192 (7x7) columns.
/// Measured at 512² (AMD Zen 3): 16, 32 and 128 were no faster (within noise).
const TILES: usize = 64;

/// Which kernel and which transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// A 3x3 kernel, padding 1, by F(4x4, 3x3).
    Conv3F4,
    /// A 7x7 kernel, padding 3, by F(3x3, 3x3) on 3x3 pieces.
    Conv7F3,
}

/// F(4x4, 3x3): `Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
/// 0 2 -1 -2 1 0; 0 4 0 -5 0 1]`.
#[inline(always)]
pub(super) fn f4_input([d0, d1, d2, d3, d4, d5]: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d0 - 5.0 * d2 + d4,
        -4.0 * (d1 + d2) + d3 + d4,
        4.0 * (d1 - d2) - d3 + d4,
        2.0 * (d3 - d1) - d2 + d4,
        2.0 * (d1 - d3) - d2 + d4,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// F(4x4, 3x3): `Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]`.
#[inline(always)]
pub(super) fn f4_output([m0, m1, m2, m3, m4, m5]: [f32; 6]) -> [f32; 4] {
    let (p12, d12, p34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [
        m0 + p12 + p34,
        d12 + 2.0 * d34,
        p12 + 4.0 * p34,
        d12 + 8.0 * d34 + m5,
    ]
}

/// F(4x4, 3x3): `G g` for one 3-tap column, `G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙;
/// 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]`.
pub(super) fn f4_filter(a: f64, b: f64, c: f64) -> [f64; 6] {
    [
        a / 4.0,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        a / 24.0 + b / 12.0 + c / 6.0,
        a / 24.0 - b / 12.0 + c / 6.0,
        c,
    ]
}

/// F(3x3, 3x3), points 0, 1, -1, 2, ∞ (Toom-Cook; `Bᵀ` solved from `Aᵀ` and `G`):
/// `Bᵀ = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]`.
#[inline(always)]
fn f3_input([d0, d1, d2, d3, d4]: [f32; 5]) -> [f32; 5] {
    [
        2.0 * (d0 - d2) - d1 + d3,
        d3 - 2.0 * d1 - d2,
        2.0 * d1 - 3.0 * d2 + d3,
        d3 - d1,
        2.0 * (d1 - d3) - d2 + d4,
    ]
}

/// F(3x3, 3x3): `Aᵀ = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 1]`.
#[inline(always)]
fn f3_output([m0, m1, m2, m3, m4]: [f32; 5]) -> [f32; 3] {
    [
        m0 + m1 + m2 + m3,
        m1 - m2 + 2.0 * m3,
        m1 + m2 + 4.0 * m3 + m4,
    ]
}

/// F(3x3, 3x3): `G = [½ 0 0; -½ -½ -½; -⅙ ⅙ -⅙; ⅙ ⅓ ⅔; 0 0 1]`.
fn f3_filter(a: f64, b: f64, c: f64) -> [f64; 5] {
    [
        a / 2.0,
        -(a + b + c) / 2.0,
        (-a + b - c) / 6.0,
        (a + 2.0 * b + 4.0 * c) / 6.0,
        c,
    ]
}

/// Transformed weights of a 3x3 or 7x7 conv: `U[ξ][b][cout][a][ci]` for piece
/// `(a, b)` (one piece for 3x3 kernels), packed for the products
/// ([`PackedWeights`]: matrix `ξ PS + b`, `k = a cin + ci`).
#[derive(Debug, Clone)]
pub(crate) struct WinogradWeights {
    u: PackedWeights,
    cout: usize,
    cin: usize,
    variant: Variant,
}

impl WinogradWeights {
    /// From conv weights `w`: `[cout, cin, 3, 3]` for [`Variant::Conv3F4`],
    /// `[cout, cin, 7, 7]` for [`Variant::Conv7F3`].
    ///
    /// # Panics
    /// If `w` does not hold `cout * cin * k * k` values.
    pub(crate) fn new(variant: Variant, w: &[f32], cout: usize, cin: usize) -> Self {
        let u = match variant {
            Variant::Conv3F4 => {
                assert_len("winograd", "3x3 weight", w.len(), cout * cin * 9);
                let u = transform_weights(w, cout, cin, 3, 1, f4_filter);
                PackedWeights::pack(&u, 36, cout, cin)
            }
            Variant::Conv7F3 => {
                assert_len("winograd", "7x7 weight", w.len(), cout * cin * 49);
                let u = transform_weights(w, cout, cin, 7, 3, f3_filter);
                PackedWeights::pack(&u, 25 * 3, cout, 3 * cin)
            }
        };
        Self {
            u,
            cout,
            cin,
            variant,
        }
    }

    /// [`WinogradWeights::new`], or the same transform made recently for the same
    /// weights. The engine is built per conversion (each photo of a folder, each
    /// preview in the studio) and the transforms took ~25 ms of a 256² photo's
    /// ~330; the raw weights' BLAKE3 hash (~1 ms for all layers) tells whether
    /// they changed (training changes them between previews).
    pub(crate) fn recent_or_new(variant: Variant, w: &[f32], cout: usize, cin: usize) -> Arc<Self> {
        let mut hasher = blake3::Hasher::new();
        // Whole chunks per update: one update per value was slower than the transform.
        let mut bytes = [0u8; 4096];
        for chunk in w.chunks(1024) {
            for (b, v) in bytes.chunks_exact_mut(4).zip(chunk) {
                b.copy_from_slice(&v.to_le_bytes());
            }
            hasher.update(&bytes[..4 * chunk.len()]);
        }
        let key = RecentKey {
            variant,
            cout,
            cin,
            hash: hasher.finalize(),
        };
        // A poisoned lock only means another thread panicked mid-update of this
        // cache; its entries are whole (pushed after they were built).
        let lock = || RECENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, u)) = lock().iter().find(|(k, _)| *k == key) {
            return Arc::clone(u);
        }
        let u = Arc::new(Self::new(variant, w, cout, cin));
        let mut recent = lock();
        if recent.len() >= RECENT_CAPACITY {
            recent.pop_front();
        }
        recent.push_back((key, Arc::clone(&u)));
        u
    }
}

/// What identifies a transform: the raw weights (by hash) and their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecentKey {
    variant: Variant,
    cout: usize,
    cin: usize,
    hash: blake3::Hash,
}

/// Transforms of the last [`RECENT_CAPACITY`] layers built (a generator has 12
/// Winograd layers, ~22 MB transformed): two generators' worth, e.g. the
/// studio's training model and an imported one.
static RECENT: Mutex<VecDeque<(RecentKey, Arc<WinogradWeights>)>> = Mutex::new(VecDeque::new());
const RECENT_CAPACITY: usize = 24;

/// `U = G K Gᵀ` for every piece `K` (3x3, at offsets `(3a, 3b)` of the `k x k`
/// kernel zero-padded to `3 pieces` square), in f64 so the only rounding is the
/// final one to f32. Layout `[ξ][b][cout][a][ci]`.
///
/// Each output channel's transforms are computed in parallel into a small
/// buffer `[ξ][b][a][ci]` (cache-resident), then copied into its rows of `U`
/// (one per `(ξ, b)`), so no second full-size copy exists.
fn transform_weights<const N: usize>(
    w: &[f32],
    cout: usize,
    cin: usize,
    k: usize,
    pieces: usize,
    filter: fn(f64, f64, f64) -> [f64; N],
) -> Vec<f32> {
    let kk = pieces * cin;
    let mut u = vec![0f32; N * N * pieces * cout * kk];
    let dst = SendPtr::new(&mut u);
    (0..cout).into_par_iter().for_each_init(
        || vec![0f32; N * N * pieces * kk],
        |t, co| {
            for ci in 0..cin {
                let g = &w[(co * cin + ci) * k * k..][..k * k];
                let tap = |y: usize, x: usize| {
                    if y < k && x < k {
                        f64::from(g[y * k + x])
                    } else {
                        0.0
                    }
                };
                for a in 0..pieces {
                    for b in 0..pieces {
                        let piece = |r: usize, c: usize| tap(3 * a + r, 3 * b + c);
                        // s = G K (N x 3, per kernel column), then U = s Gᵀ (N x N).
                        let cols: [[f64; N]; 3] =
                            std::array::from_fn(|c| filter(piece(0, c), piece(1, c), piece(2, c)));
                        let [c0, c1, c2] = cols;
                        for (r, ((&s0, &s1), &s2)) in c0.iter().zip(&c1).zip(&c2).enumerate() {
                            let row = filter(s0, s1, s2);
                            for (c, x) in row.into_iter().enumerate() {
                                let xi = r * N + c;
                                t[(xi * pieces + b) * kk + a * cin + ci] = x as f32;
                            }
                        }
                    }
                }
            }
            for (xb, src) in t.chunks_exact(kk.max(1)).enumerate() {
                // SAFETY: row `(xb, co)` of `U` is written by this output
                // channel's task only (each `co` runs once); bounds are checked.
                let row = unsafe { dst.slice_mut((xb * cout + co) * kk, kk) };
                row.copy_from_slice(src);
            }
        },
    );
    u
}

/// Per-worker scratch, kept between calls (fresh multi-megabyte buffers per
/// block would be fresh pages every time).
#[derive(Default)]
struct Scratch {
    /// Transformed inputs `[N²][input tile rows][cin][vs]`.
    v: Vec<f32>,
    /// Products `[N²][cout][ntp]`.
    m: Vec<f32>,
    /// One padded input row.
    seg: Vec<f32>,
    /// `N` input rows split into column phases `[N][M][np]`, and their vertical transform.
    rows: Vec<f32>,
    vert: Vec<f32>,
    /// Output transform's vertical pass `[M][N][ntp]`.
    a: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `W` values of `s` from `at` (`W` tiles of a transform: [`LANES`] here, 16 in
/// training's [`super::conv_winograd`]).
#[inline(always)]
pub(super) fn lane<const W: usize>(s: &[f32], at: usize) -> [f32; W] {
    let c = &s[at..at + W];
    std::array::from_fn(|l| c[l])
}

/// `f` on each of `W` tiles: `d[j][l]` is input `j` of tile `l`.
#[inline(always)]
pub(super) fn per_lane<const W: usize, const I: usize, const O: usize>(
    d: [[f32; W]; I],
    f: impl Fn([f32; I]) -> [f32; O],
) -> [[f32; W]; O] {
    let mut y = [[0f32; W]; O];
    for l in 0..W {
        let r = f(std::array::from_fn(|j| d[j][l]));
        for (k, rk) in r.into_iter().enumerate() {
            y[k][l] = rk;
        }
    }
    y
}

/// `oh` x `ow` output rows from `rows.out_row0` of the conv `u` (stride 1, reflect
/// padding 1 for 3x3, 3 for 7x7), of which `x` holds the input rows they read
/// ([`RowBand`]; `RowBand::whole(x.h)` for a whole map): `x` `[cin, h, w]` →
/// `[cout, oh, ow]`.
///
/// # Panics
/// If `x` is not a valid map with `u`'s input channels, or lacks a row the band reads.
pub(crate) fn conv_band(x: &Map, u: &WinogradWeights, oh: usize, rows: RowBand) -> Map {
    x.assert_valid("winograd");
    assert_len("winograd", "input channels", x.c, u.cin);
    match u.variant {
        Variant::Conv3F4 => run::<4, 6, 1, 1>(x, u, oh, rows, 3, f4_input, f4_output),
        Variant::Conv7F3 => run::<3, 5, 3, 4>(x, u, oh, rows, 7, f3_input, f3_output),
    }
}

/// The convolution with `M x M` output tiles, `N x N` patches and `PS x PS`
/// pieces of a `k x k` kernel, `R` tile rows per block: the `R + PS - 1` input
/// tile rows they read are transformed once (with one tile row per block, the
/// 7x7's three piece rows transformed each input row three times).
#[multiversion(targets = "simd")]
fn run<const M: usize, const N: usize, const PS: usize, const R: usize>(
    x: &Map,
    u: &WinogradWeights,
    oh: usize,
    rows: RowBand,
    k: usize,
    input_taps: impl Fn([f32; N]) -> [f32; N] + Sync,
    output_taps: impl Fn([f32; N]) -> [f32; M] + Sync,
) -> Map {
    let (cin, cout, ow) = (u.cin, u.cout, x.w);
    let pad = k / 2;
    let mut out = Map::zeros(cout, oh, ow);
    let (th, tw) = (oh.div_ceil(M), ow.div_ceil(M));
    // Blocks: R tile rows x runs of up to TILES tiles, of about equal length.
    let per_row = tw.div_ceil(TILES);
    let blocks: Vec<(usize, usize, usize)> = (0..th.div_ceil(R))
        .flat_map(|g| (0..per_row).map(move |i| (g * R, i * tw / per_row, (i + 1) * tw / per_row)))
        .collect();
    // Input tile rows a block transforms.
    let rows_in = R + PS - 1;
    let plane = x.plane();
    let dst = SendPtr::new(&mut out.data);
    blocks.into_par_iter().for_each(|(ty0, tx0, tx1)| {
        SCRATCH.with_borrow_mut(|sc| {
            let nt = tx1 - tx0;
            // Row strides in whole lanes; the extra tiles are computed and ignored.
            let ntp = nt.next_multiple_of(LANES);
            // Input tiles tx0 .. tx0 + vs (the pieces' column offsets b < PS).
            let vs = (ntp + PS - 1).next_multiple_of(LANES);
            // Phase rows: input tile q reads phases 0..M at q and 0-1 at q + 1.
            let np = vs + LANES;
            let width = M * np;
            sc.v.resize(N * N * rows_in * cin * vs, 0.0);
            sc.m.resize(N * N * cout * ntp, 0.0);
            sc.seg.resize(width, 0.0);
            sc.rows.resize(N * width, 0.0);
            sc.vert.resize(N * width, 0.0);
            sc.a.resize(M * N * ntp, 0.0);
            // Padded columns M tx0 .. M tx0 + width are input columns - pad,
            // reflected at the map's edges (past the right edge + pad they only
            // feed outputs that do not exist; `reflect` keeps them in the map).
            let c0 = (M * tx0) as isize - pad as isize;
            let lo = (-c0).clamp(0, width as isize) as usize;
            let hi = (x.w as isize - c0).clamp(lo as isize, width as isize) as usize;
            let start = (c0 + lo as isize) as usize;
            for a in 0..rows_in {
                // Input tile row ty0 + a: padded rows M (ty0 + a) .. + N. Rows past the
                // last output's last tap (oh - 1 + k - 1) only feed outputs that do
                // not exist: read a row the band holds instead.
                let r: [usize; N] = std::array::from_fn(|i| {
                    let padded = (M * (ty0 + a) + i).min(oh + k - 2);
                    rows.local((rows.out_row0 + padded) as isize - pad as isize, x.h)
                });
                for ci in 0..cin {
                    let p = &x.data[ci * plane..(ci + 1) * plane];
                    for (j, &ri) in r.iter().enumerate() {
                        let row = &p[ri * x.w..(ri + 1) * x.w];
                        // Columns inside the map as one copy; reflected edges one by one.
                        sc.seg[lo..hi].copy_from_slice(&row[start..start + hi - lo]);
                        for q in (0..lo).chain(hi..width) {
                            sc.seg[q] = row[reflect(c0 + q as isize, x.w)];
                        }
                        // Column phases: rows[j][ph][t] = seg[M t + ph].
                        let dst = &mut sc.rows[j * width..(j + 1) * width];
                        for (t, c) in sc.seg.chunks_exact(M).enumerate() {
                            for (ph, &v) in c.iter().enumerate() {
                                dst[ph * np + t] = v;
                            }
                        }
                    }
                    // Vertical transform, N phase rows → N rows.
                    for q in (0..width).step_by(LANES) {
                        let y = per_lane(
                            std::array::from_fn(|j| lane::<LANES>(&sc.rows, j * width + q)),
                            &input_taps,
                        );
                        for (j, yj) in y.iter().enumerate() {
                            sc.vert[j * width + q..][..LANES].copy_from_slice(yj);
                        }
                    }
                    // Horizontal transform: V[i N + c][a][ci][q].
                    for i in 0..N {
                        let s = &sc.vert[i * width..(i + 1) * width];
                        for q in (0..vs).step_by(LANES) {
                            let d: [[f32; LANES]; N] = std::array::from_fn(|j| {
                                if j < M {
                                    lane::<LANES>(s, j * np + q)
                                } else {
                                    lane::<LANES>(s, (j - M) * np + q + 1)
                                }
                            });
                            let y = per_lane(d, &input_taps);
                            for (c, yc) in y.iter().enumerate() {
                                let at = (((i * N + c) * rows_in + a) * cin + ci) * vs + q;
                                sc.v[at..at + LANES].copy_from_slice(yc);
                            }
                        }
                    }
                }
            }
            for ty in ty0..(ty0 + R).min(th) {
                for xi in 0..N * N {
                    // K rows (a, ci) of input tile rows ty - ty0 + a: one stride;
                    // piece b is the column shift b.
                    let rows = InputRows {
                        offset: ((xi * rows_in + ty - ty0) * cin) * vs,
                        stride: vs,
                    };
                    let a = Operands {
                        w: &u.u,
                        first: xi * PS,
                        pieces: PS,
                        v: &sc.v,
                        rows,
                    };
                    product(a, ntp, &mut sc.m[xi * cout * ntp..][..cout * ntp], ntp);
                }
                // Output transform Y = Aᵀ M A: vertical into a[r][c], then horizontal.
                let ox0 = M * tx0;
                let n = (M * nt).min(ow - ox0);
                for co in 0..cout {
                    for c in 0..N {
                        for t in (0..ntp).step_by(LANES) {
                            let d = std::array::from_fn(|i| {
                                lane::<LANES>(&sc.m, ((i * N + c) * cout + co) * ntp + t)
                            });
                            let y = per_lane(d, &output_taps);
                            for (r, yr) in y.iter().enumerate() {
                                sc.a[(r * N + c) * ntp + t..][..LANES].copy_from_slice(yr);
                            }
                        }
                    }
                    for r in 0..M {
                        let oy = M * ty + r;
                        if oy >= oh {
                            break;
                        }
                        // SAFETY: this block's output pixels (row `oy`, columns
                        // ox0..ox0 + n of channel `co`) belong to no other block;
                        // bounds are checked.
                        let out = unsafe { dst.slice_mut((co * oh + oy) * ow + ox0, n) };
                        for t in (0..nt).step_by(LANES) {
                            let d = std::array::from_fn(|c| {
                                lane::<LANES>(&sc.a, (r * N + c) * ntp + t)
                            });
                            let y = per_lane(d, &output_taps);
                            let px = &mut out[M * t..];
                            if px.len() >= M * LANES {
                                for (l, cols) in px.chunks_exact_mut(M).take(LANES).enumerate() {
                                    for (ph, v) in cols.iter_mut().enumerate() {
                                        *v = y[ph][l];
                                    }
                                }
                            } else {
                                for (i, v) in px.iter_mut().enumerate() {
                                    *v = y[i % M][i / M];
                                }
                            }
                        }
                    }
                }
            }
        })
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::kernels::tests::max_diff;
    use crate::model::cpu::kernels::{ConvGeom, conv_reflect_band};

    fn map(c: usize, h: usize, w: usize) -> Map {
        let data = (0..c * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
        Map { c, h, w, data }
    }

    /// Against the im2col convolution (itself tested against a direct loop), on
    /// sizes that leave partial tiles, several blocks per tile row, and a band of
    /// a taller map (`band` = output rows from input rows); within float rounding
    /// of the output's scale.
    fn check(k: usize, sizes: &[(usize, usize, usize, usize)], band: [usize; 4]) {
        for &(cin, cout, h, w) in sizes {
            let x = map(cin, h, w);
            let wt: Vec<f32> = (0..cout * cin * k * k)
                .map(|i| (i as f32 * 0.23).cos())
                .collect();
            let variant = if k == 3 {
                Variant::Conv3F4
            } else {
                Variant::Conv7F3
            };
            let u = WinogradWeights::new(variant, &wt, cout, cin);
            let g = ConvGeom {
                k,
                stride: 1,
                pad_left: k / 2,
                pad_top: k / 2,
                oh: h,
                ow: w,
            };
            let want = conv_reflect_band(&x, &wt, cout, g, RowBand::whole(h));
            let scale = want.data.iter().fold(1f32, |m, v| m.max(v.abs()));
            let got = conv_band(&x, &u, h, RowBand::whole(h));
            let d = max_diff(&got.data, &want.data);
            assert!(
                d < 1e-5 * scale,
                "{k}x{k} {cin}->{cout} {h}x{w}: {d} at scale {scale}"
            );
            let [out0, out1, in0, in1] = band;
            if h >= in1 {
                let band = Map {
                    c: cin,
                    h: in1 - in0,
                    w,
                    data: (0..cin)
                        .flat_map(|c| x.data[(c * h + in0) * w..(c * h + in1) * w].to_vec())
                        .collect(),
                };
                let rows = RowBand {
                    full_h: h,
                    in_row0: in0,
                    out_row0: out0,
                };
                let got = conv_band(&band, &u, out1 - out0, rows);
                let want: Vec<f32> = (0..cout)
                    .flat_map(|c| want.data[(c * h + out0) * w..(c * h + out1) * w].to_vec())
                    .collect();
                let d = max_diff(&got.data, &want);
                assert!(d < 1e-5 * scale, "band {k}x{k} {cin}->{cout} {h}x{w}: {d}");
            }
        }
    }

    #[test]
    fn winograd_3x3_equals_the_direct_convolution() {
        let sizes = [
            (3, 5, 7, 9),
            (8, 4, 30, 29),
            (16, 16, 2, 2),
            (5, 7, 33, 64),
            (2, 3, 10, 301),
            (64, 8, 6, 7),
        ];
        // Output rows 3..8 from input rows 2..9 only.
        check(3, &sizes, [3, 8, 2, 9]);
    }

    #[test]
    fn winograd_7x7_equals_the_direct_convolution() {
        let sizes = [
            (3, 5, 7, 9),
            (8, 4, 31, 29),
            (4, 3, 4, 4),
            (5, 7, 10, 200),
            (64, 8, 9, 11),
        ];
        // Output rows 5..12 from input rows 2..15 only.
        check(7, &sizes, [5, 12, 2, 15]);
    }

    /// The same weights give the same transform without rebuilding it; a weight
    /// changed by the smallest step (training between two previews) gives a new
    /// one, never the stale transform.
    #[test]
    fn recent_transforms_follow_the_weights() {
        let (cout, cin) = (3, 2);
        let mut w: Vec<f32> = (0..cout * cin * 9)
            .map(|i| (i as f32 * 0.71).sin())
            .collect();
        let a = WinogradWeights::recent_or_new(Variant::Conv3F4, &w, cout, cin);
        let b = WinogradWeights::recent_or_new(Variant::Conv3F4, &w, cout, cin);
        assert!(
            Arc::ptr_eq(&a, &b),
            "the same weights were transformed twice"
        );
        w[7] = f32::from_bits(w[7].to_bits() + 1);
        let c = WinogradWeights::recent_or_new(Variant::Conv3F4, &w, cout, cin);
        assert!(
            !Arc::ptr_eq(&a, &c),
            "changed weights reused the old transform"
        );
        assert_eq!(c.u, WinogradWeights::new(Variant::Conv3F4, &w, cout, cin).u);
    }
}
