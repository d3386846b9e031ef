//! The Winograd layers' GEMMs, `M[co][t] = Σ_s Σ_k U_s[co][k] · V[k][t + shift_s]`,
//! on weights packed once into register-block panels.
//!
//! Why not the `gemm` crate here: each Winograd block makes `N²` (×`PS` pieces)
//! products of only `cout x ≤64 tiles x cin` (the 7x7's are `32 x 43 x 192`),
//! ~10⁴ calls per layer, and for each call the crate sizes its blocking,
//! allocates and packs both operands afresh — per-layer timing at 256² put the
//! 7x7's GEMMs at ~49 GMAC/s on two AVX-512 cores and the 3x3s' at ~50. The
//! weights never change between calls, so they are packed here once, as the
//! register kernel reads them ([`PackedWeights`]); the transformed inputs are
//! already laid out `[k][tile]` with tiles contiguous, which is the kernel's
//! other operand as it stands. The pieces of the 7x7 (`PS` column shifts) sum in
//! registers instead of three passes over `M`.
//!
//! Register blocks: [`ROWS`] output channels x 32 tiles (16 accumulators of 16
//! lanes) where the CPU has AVX-512, 4 x 16 elsewhere (8 accumulators of 8
//! lanes with AVX2), picked at run time with the rest of the kernels. Each
//! accumulator sums `k` in order, fused multiply-adds where the CPU has them (as
//! the `gemm` crate's kernels do), separate multiply and add where it does not.
//! Both choices are const generics: with the FMA choice a run-time `bool` LLVM
//! did not vectorise the block at all (5x slower), and the shape matters as
//! much — on the Xeon, 8 x 32 was fastest of 8 x 16 / 8 x 32 / 8 x 48 / 4 x 32 /
//! 4 x 64 / 2 x 64, and 8 x 16 was ~10x slower than 8 x 32 (not vectorised
//! either): check the disassembly for packed FMAs when changing them.

use multiversion::multiversion;
use multiversion::target::target_cfg_f;

/// Output channels per packed panel (and per AVX-512 register block).
pub(crate) const ROWS: usize = 8;

/// Weights `[ξ][piece][cout][k]` repacked as panels `[ξ][piece][cout / ROWS][k][ROWS]`
/// (`cout` rounded up to [`ROWS`] with zero rows), so a register block's weights for
/// one `k` are `ROWS` consecutive values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedWeights {
    data: Vec<f32>,
    /// Products (`ξ` x pieces) and their shape.
    mats: usize,
    cout: usize,
    k: usize,
}

impl PackedWeights {
    /// From `mats` row-major `cout x k` matrices laid end to end.
    ///
    /// # Panics
    /// If `u` does not hold `mats * cout * k` values.
    pub(crate) fn pack(u: &[f32], mats: usize, cout: usize, k: usize) -> Self {
        assert_eq!(
            u.len(),
            mats * cout * k,
            "winograd gemm: {mats} weight matrices of {cout}x{k} expected"
        );
        let panels = cout.div_ceil(ROWS);
        let mut data = vec![0f32; mats * panels * k * ROWS];
        for (mat, dst) in u
            .chunks_exact((cout * k).max(1))
            .zip(data.chunks_exact_mut((panels * k * ROWS).max(1)))
        {
            for (co, row) in mat.chunks_exact(k.max(1)).enumerate() {
                let panel = &mut dst[(co / ROWS) * k * ROWS..][..k * ROWS];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * ROWS + co % ROWS] = v;
                }
            }
        }
        Self {
            data,
            mats,
            cout,
            k,
        }
    }

    /// Panels of matrix `mat`: `[cout / ROWS][k][ROWS]`.
    fn matrix(&self, mat: usize) -> &[f32] {
        let len = self.cout.div_ceil(ROWS) * self.k * ROWS;
        &self.data[mat * len..][..len]
    }
}

/// Where the transformed input of one product lies: row `k` of `V` starts at
/// `v[offset + k * stride]`, and piece `s` reads it from column `s` on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputRows {
    pub offset: usize,
    pub stride: usize,
}

/// One product's operands: packed matrices `first..first + pieces` of `w` (one
/// per piece), and the transformed input `v` read through `rows`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operands<'a> {
    pub w: &'a PackedWeights,
    pub first: usize,
    pub pieces: usize,
    pub v: &'a [f32],
    pub rows: InputRows,
}

/// `m[co * m_stride + t] = Σ_s Σ_k W_s[co][k] · v[offset + k * stride + s + t]` for
/// every output channel `co`, `t < tiles` (a multiple of 8), where `W_s` is packed
/// matrix `first + s` of `w` for each of `pieces` pieces ([`Operands`]).
///
/// # Panics
/// If `tiles` is not a multiple of 8, or an operand does not hold what it is
/// said to (every access is bounds-checked).
#[multiversion(targets = "simd")]
// `target_cfg_f!` expands to a literal per compiled version, so in some versions
// two conditions read the same (`false`).
#[allow(clippy::ifs_same_cond)]
pub(crate) fn product(a: Operands<'_>, tiles: usize, m: &mut [f32], m_stride: usize) {
    assert!(
        tiles.is_multiple_of(8) && a.first + a.pieces <= a.w.mats && tiles <= m_stride,
        "winograd gemm: {tiles} tiles (a multiple of 8 and at most {m_stride}), \
         matrices {}..+{} of {}",
        a.first,
        a.pieces,
        a.w.mats
    );
    if target_cfg_f!(target_feature = "avx512f") {
        blocks::<ROWS, 32, true>(a, tiles, m, m_stride);
    } else if target_cfg_f!(target_feature = "fma") {
        blocks::<4, 16, true>(a, tiles, m, m_stride);
    } else {
        blocks::<4, 16, false>(a, tiles, m, m_stride);
    }
}

/// Every register block of [`product`]: tile runs of `T` (then 8) outer, so one
/// run of `V` stays in L1 while every panel of weights passes over it.
#[inline(always)]
fn blocks<const R: usize, const T: usize, const FMA: bool>(
    a: Operands<'_>,
    tiles: usize,
    m: &mut [f32],
    m_stride: usize,
) {
    let mut t0 = 0;
    while t0 < tiles {
        if tiles - t0 >= T {
            for co in (0..a.w.cout).step_by(R) {
                block::<R, T, FMA>(a, t0, co, m, m_stride);
            }
            t0 += T;
        } else {
            for co in (0..a.w.cout).step_by(R) {
                block::<R, 8, FMA>(a, t0, co, m, m_stride);
            }
            t0 += 8;
        }
    }
}

/// Output channels `co..co + R` (those below `cout`) x tiles `t0..t0 + T`, in
/// `R x T` accumulators.
#[inline(always)]
fn block<const R: usize, const T: usize, const FMA: bool>(
    a: Operands<'_>,
    t0: usize,
    co: usize,
    m: &mut [f32],
    m_stride: usize,
) {
    let Operands {
        w,
        first,
        pieces,
        v,
        rows,
    } = a;
    let k = w.k;
    // Panel co / ROWS, its rows from co % ROWS (R divides ROWS).
    let (panel, lane0) = (co / ROWS, co % ROWS);
    let mut acc = [[0f32; T]; R];
    for s in 0..pieces {
        let weights = &w.matrix(first + s)[panel * k * ROWS..][..k * ROWS];
        let base = rows.offset + s + t0;
        for (kk, u) in weights.chunks_exact(ROWS).enumerate() {
            let u = &u[lane0..lane0 + R];
            let x = &v[base + kk * rows.stride..][..T];
            for (a, &ur) in acc.iter_mut().zip(u) {
                for (a, &xt) in a.iter_mut().zip(x) {
                    *a = if FMA {
                        ur.mul_add(xt, *a)
                    } else {
                        *a + ur * xt
                    };
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate().take(w.cout.saturating_sub(co)) {
        m[(co + r) * m_stride + t0..][..T].copy_from_slice(a);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Against sums in f64 written out plainly, on shapes with a partial panel
    /// (cout 12), pieces shifted by a column, and a tile count that needs the
    /// 8-wide tail (40 = 32 + 8) or only it (8).
    #[test]
    fn products_equal_plain_sums() {
        for &(cout, k, pieces, tiles) in &[
            (12usize, 5usize, 1usize, 40usize),
            (32, 192, 3, 48),
            (8, 3, 2, 8),
            (64, 128, 1, 64),
        ] {
            let stride = tiles + pieces + 7;
            let mats = 2 * pieces;
            let u: Vec<f32> = (0..mats * cout * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let v: Vec<f32> = (0..3 + k * stride)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let w = PackedWeights::pack(&u, mats, cout, k);
            let m_stride = tiles + 8;
            let mut m = vec![f32::NAN; cout * m_stride];
            let rows = InputRows { offset: 3, stride };
            let a = Operands {
                w: &w,
                first: pieces,
                pieces,
                v: &v,
                rows,
            };
            product(a, tiles, &mut m, m_stride);
            for co in 0..cout {
                for t in 0..tiles {
                    let mut want = 0f64;
                    for s in 0..pieces {
                        for kk in 0..k {
                            let uu = u[((pieces + s) * cout + co) * k + kk];
                            let vv = v[3 + kk * stride + s + t];
                            want += f64::from(uu) * f64::from(vv);
                        }
                    }
                    let got = f64::from(m[co * m_stride + t]);
                    let err = (got - want).abs() / (1.0 + want.abs());
                    // NaN (a value never written) fails too.
                    assert!(
                        err <= 1e-5,
                        "cout {cout} k {k} pieces {pieces} tiles {tiles}: \
                         ({co}, {t}) {got} vs {want}"
                    );
                }
                // Columns past `tiles` are left alone.
                assert!(
                    m[co * m_stride + tiles..(co + 1) * m_stride]
                        .iter()
                        .all(|v| v.is_nan())
                );
            }
        }
    }
}
