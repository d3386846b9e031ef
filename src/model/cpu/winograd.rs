//! 3x3 stride-1 reflect-padded convolution by Winograd's minimal filtering
//! F(2x2, 3x3) (Lavin & Gray 2016): each 2x2 output tile costs 16 multiplies per
//! input channel instead of 36, as 16 GEMMs `M[ξ] = U[ξ] · V[ξ]` over a block of
//! tiles, between an input transform `V = Bᵀ d B` (4x4 input patches) and an
//! output transform `Y = Aᵀ M A`. These convs are most of the generator's work
//! (57% of a 4K photo's multiply-adds), so this is where inference time goes.
//!
//! F(2x2, 3x3) rather than F(4x4, 3x3): its transforms only add and subtract
//! (and halve the weights), so results stay within float rounding of the direct
//! convolution (tested below against it; `tests/import.rs` against PyTorch).

use rayon::prelude::*;

use super::kernels::{Map, RowBand, assert_len, reflect};
use super::matmul::{SendPtr, View, gemm};

/// Transformed weights `U[ξ] = G g Gᵀ` of a 3x3 conv: `[16, cout, cin]`.
#[derive(Debug, Clone)]
pub(crate) struct WinogradWeights {
    u: Vec<f32>,
    cout: usize,
    cin: usize,
}

impl WinogradWeights {
    /// From conv weights `w` `[cout, cin, 3, 3]`.
    ///
    /// # Panics
    /// If `w` does not hold `cout * cin * 9` values.
    pub(crate) fn new(w: &[f32], cout: usize, cin: usize) -> Self {
        assert_len("winograd", "weight", w.len(), cout * cin * 9);
        let mut u = vec![0f32; 16 * cout * cin];
        for co in 0..cout {
            for ci in 0..cin {
                let g = &w[(co * cin + ci) * 9..][..9];
                // s = G g (4x3), then U = s Gᵀ (4x4); G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].
                let mut s = [[0f32; 3]; 4];
                for c in 0..3 {
                    let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
                    s[0][c] = g0;
                    s[1][c] = 0.5 * (g0 + g1 + g2);
                    s[2][c] = 0.5 * (g0 - g1 + g2);
                    s[3][c] = g2;
                }
                for (r, row) in s.iter().enumerate() {
                    let v = [
                        row[0],
                        0.5 * (row[0] + row[1] + row[2]),
                        0.5 * (row[0] - row[1] + row[2]),
                        row[2],
                    ];
                    for (c, x) in v.into_iter().enumerate() {
                        u[((r * 4 + c) * cout + co) * cin + ci] = x;
                    }
                }
            }
        }
        Self { u, cout, cin }
    }
}

/// Output tiles per block (one block is a run of tiles in one tile row): 96
/// tiles are 384 output pixels, the im2col path's block.
const TILES: usize = 96;

/// Per-worker scratch: transformed inputs `[16, cin, TILES]`, products
/// `[16, cout, TILES]`, and row buffers.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    seg: [Vec<f32>; 4],
    s: [Vec<f32>; 4],
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `oh` x `ow` output rows from `rows.out_row0` of a 3x3, stride-1 conv with
/// reflect padding 1, of which `x` holds the input rows they read ([`RowBand`];
/// `RowBand::whole(x.h)` for a whole map): `x` `[cin, h, w]` → `[cout, oh, ow]`.
///
/// # Panics
/// If `x` is not a valid map with `u`'s input channels, or lacks a row the band reads.
pub(crate) fn conv3x3_band(x: &Map, u: &WinogradWeights, oh: usize, rows: RowBand) -> Map {
    x.assert_valid("winograd");
    assert_len("winograd", "input channels", x.c, u.cin);
    let (cin, cout, ow) = (u.cin, u.cout, x.w);
    let mut out = Map::zeros(cout, oh, ow);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    // Blocks: runs of up to TILES tiles within one tile row.
    let per_row = tw.div_ceil(TILES);
    let blocks: Vec<(usize, usize, usize)> = (0..th)
        .flat_map(|ty| (0..per_row).map(move |i| (ty, i * TILES, ((i + 1) * TILES).min(tw))))
        .collect();
    let plane = x.plane();
    let dst = SendPtr::new(&mut out.data);
    blocks.into_par_iter().for_each(|(ty, tx0, tx1)| {
        SCRATCH.with_borrow_mut(|sc| {
            let nt = tx1 - tx0;
            let width = 2 * nt + 2;
            sc.v.resize(16 * cin * nt, 0.0);
            sc.m.resize(16 * cout * nt, 0.0);
            for b in sc.seg.iter_mut().chain(sc.s.iter_mut()) {
                b.resize(width, 0.0);
            }
            // A partial last tile's 4th row only feeds an output row that does
            // not exist: read a row the band holds instead.
            let r: [usize; 4] = std::array::from_fn(|i| {
                rows.local((rows.out_row0 + (2 * ty + i).min(oh + 1)) as isize - 1, x.h)
            });
            // Padded columns 2*tx0 - 1 .. 2*tx1 + 1, reflected at the map's edges.
            let c0 = 2 * tx0 as isize - 1;
            // Input transform V = Bᵀ d B, Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]:
            // rows first (whole segments), then columns per tile.
            for ci in 0..cin {
                let p = &x.data[ci * plane..(ci + 1) * plane];
                for (seg, &ri) in sc.seg.iter_mut().zip(&r) {
                    let row = &p[ri * x.w..(ri + 1) * x.w];
                    // Columns inside the map as one copy; reflected edges one by one.
                    let lo = (-c0).clamp(0, width as isize) as usize;
                    let hi = (x.w as isize - c0).clamp(lo as isize, width as isize) as usize;
                    let start = (c0 + lo as isize) as usize;
                    seg[lo..hi].copy_from_slice(&row[start..start + hi - lo]);
                    for q in (0..lo).chain(hi..width) {
                        seg[q] = row[reflect(c0 + q as isize, x.w)];
                    }
                }
                let [d0, d1, d2, d3] = &sc.seg;
                let [s0, s1, s2, s3] = &mut sc.s;
                for q in 0..width {
                    s0[q] = d0[q] - d2[q];
                    s1[q] = d1[q] + d2[q];
                    s2[q] = d2[q] - d1[q];
                    s3[q] = d1[q] - d3[q];
                }
                for (i, si) in sc.s.iter().enumerate() {
                    let base = |j: usize| ((i * 4 + j) * cin + ci) * nt;
                    let (b0, b1, b2, b3) = (base(0), base(1), base(2), base(3));
                    for t in 0..nt {
                        let q = 2 * t;
                        sc.v[b0 + t] = si[q] - si[q + 2];
                        sc.v[b1 + t] = si[q + 1] + si[q + 2];
                        sc.v[b2 + t] = si[q + 2] - si[q + 1];
                        sc.v[b3 + t] = si[q + 1] - si[q + 3];
                    }
                }
            }
            for xi in 0..16 {
                gemm(
                    (cout, nt, cin),
                    (&mut sc.m[..], View::rows(xi * cout * nt, nt), false),
                    (&u.u, View::rows(xi * cout * cin, cin)),
                    (&sc.v[..], View::rows(xi * cin * nt, nt)),
                );
            }
            // Output transform Y = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1].
            let ox0 = 2 * tx0;
            let n = (2 * nt).min(ow - ox0);
            for co in 0..cout {
                let ms: [&[f32]; 16] = std::array::from_fn(|k| &sc.m[(k * cout + co) * nt..][..nt]);
                for (i, oy) in [2 * ty, 2 * ty + 1].into_iter().enumerate() {
                    if oy >= oh {
                        continue;
                    }
                    // a[j] = row 0 + row 1 + row 2 (i = 0) or row 1 - row 2 - row 3 of M.
                    let mut a = [[0f32; TILES]; 4];
                    for (j, aj) in a.iter_mut().enumerate() {
                        let (r0, r1, r2, r3) = (ms[j], ms[4 + j], ms[8 + j], ms[12 + j]);
                        for t in 0..nt {
                            aj[t] = if i == 0 {
                                r0[t] + r1[t] + r2[t]
                            } else {
                                r1[t] - r2[t] - r3[t]
                            };
                        }
                    }
                    // SAFETY: this block's output pixels (row `oy`, columns
                    // ox0..ox0 + n of channel `co`) belong to no other block;
                    // bounds are checked.
                    let out = unsafe { dst.slice_mut((co * oh + oy) * ow + ox0, n) };
                    for t in 0..n / 2 {
                        out[2 * t] = a[0][t] + a[1][t] + a[2][t];
                        out[2 * t + 1] = a[1][t] - a[2][t] - a[3][t];
                    }
                    if n % 2 == 1 {
                        let t = n / 2;
                        out[n - 1] = a[0][t] + a[1][t] + a[2][t];
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
    /// odd sizes (partial tiles), several blocks, and a band of a taller map.
    #[test]
    fn winograd_equals_the_direct_convolution() {
        for (cin, cout, h, w) in [(3, 5, 7, 9), (8, 4, 30, 29), (16, 16, 2, 2), (5, 7, 33, 64)] {
            let x = map(cin, h, w);
            let wt: Vec<f32> = (0..cout * cin * 9)
                .map(|i| (i as f32 * 0.23).cos())
                .collect();
            let u = WinogradWeights::new(&wt, cout, cin);
            let g = ConvGeom {
                k: 3,
                stride: 1,
                pad_left: 1,
                pad_top: 1,
                oh: h,
                ow: w,
            };
            let want = conv_reflect_band(&x, &wt, cout, g, RowBand::whole(h));
            let got = conv3x3_band(&x, &u, h, RowBand::whole(h));
            let d = max_diff(&got.data, &want.data);
            assert!(d < 1e-4, "{cin}->{cout} {h}x{w}: {d}");
            if h > 8 {
                // Output rows 3..8 from input rows 2..9 only.
                let band = Map {
                    c: cin,
                    h: 7,
                    w,
                    data: (0..cin)
                        .flat_map(|c| x.data[(c * h + 2) * w..(c * h + 9) * w].to_vec())
                        .collect(),
                };
                let rows = RowBand {
                    full_h: h,
                    in_row0: 2,
                    out_row0: 3,
                };
                let got = conv3x3_band(&band, &u, 5, rows);
                let want: Vec<f32> = (0..cout)
                    .flat_map(|c| want.data[(c * h + 3) * w..(c * h + 8) * w].to_vec())
                    .collect();
                let d = max_diff(&got.data, &want);
                assert!(d < 1e-4, "band {cin}->{cout} {h}x{w}: {d}");
            }
        }
    }
}
