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
//! Register blocks, picked at run time: [`ROWS`] output channels x 32 tiles (16
//! AVX-512 accumulators) where the CPU has AVX-512, 4 x 16 (8 AVX2 accumulators)
//! where it has AVX2 + FMA, both written with `std::arch` intrinsics
//! ([`x86`]); elsewhere a portable block without fused multiply-adds. Each
//! accumulator sums `k` in order, fused where the CPU has FMA (as the `gemm`
//! crate's kernels do). Why intrinsics rather than loops left to LLVM: the same
//! plain-Rust 8 x 32 block compiled to packed FMAs in one build and to scalar
//! FMAs on stack-resident accumulators in another (an unrelated change elsewhere
//! in the crate; 256² inference 0.22 s → 1.9 s), and 8 x 16 never vectorised —
//! keeping 16 accumulators in registers needs a full unroll of 256 scalar
//! multiply-adds, which sits at LLVM's unrolling threshold. With vector types
//! the block is 16 operations per `k`. On the Xeon, 8 x 32 was the fastest of
//! 8 x 16 / 8 x 32 / 8 x 48 / 4 x 32 / 4 x 64 / 2 x 64.

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
pub(crate) fn product(a: Operands<'_>, tiles: usize, m: &mut [f32], m_stride: usize) {
    assert!(
        tiles.is_multiple_of(8) && a.first + a.pieces <= a.w.mats && tiles <= m_stride,
        "winograd gemm: {tiles} tiles (a multiple of 8 and at most {m_stride}), \
         matrices {}..+{} of {}",
        a.first,
        a.pieces,
        a.w.mats
    );
    #[cfg(target_arch = "x86_64")]
    {
        // `is_x86_feature_detected!` caches its answer (one atomic load per call).
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just above),
            // which is all `x86::avx512` requires of its caller.
            unsafe { x86::avx512(a, tiles, m, m_stride) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above), which is
            // all `x86::avx2` requires of its caller.
            unsafe { x86::avx2(a, tiles, m, m_stride) };
            return;
        }
    }
    // Fused where the architecture's baseline has it (AArch64), not emulated.
    portable::<{ cfg!(target_arch = "aarch64") }>(a, tiles, m, m_stride);
}

/// The portable version: 4 x 8 blocks, every tile run of 8 outer so one run of
/// `V` stays in L1 while every panel of weights passes over it.
fn portable<const FMA: bool>(a: Operands<'_>, tiles: usize, m: &mut [f32], m_stride: usize) {
    for t0 in (0..tiles).step_by(8) {
        for co in (0..a.w.cout).step_by(4) {
            block::<4, 8, FMA>(a, t0, co, m, m_stride);
        }
    }
}

/// Output channels `co..co + R` (those below `cout`) x tiles `t0..t0 + T`, in
/// `R x T` accumulators.
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

/// The register blocks in AVX-512 and AVX2 intrinsics. Every operand slice is
/// cut to the exact extent a block reads or writes before any load or store
/// (bounds-checked), so the raw-pointer loads and stores below stay inside
/// slices of the right length; the functions' only other requirement is the
/// CPU features they are compiled for, which their callers check.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Operands, ROWS};
    use std::arch::x86_64::*;

    /// [`super::product`] in 8 x 32 blocks (two 16-lane vectors per channel),
    /// then 8 x 8 for the last tiles.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512(a: Operands<'_>, tiles: usize, m: &mut [f32], m_stride: usize) {
        let mut t0 = 0;
        while t0 + 32 <= tiles {
            for co in (0..a.w.cout).step_by(ROWS) {
                let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                for_each_k::<ROWS, 32>(a, t0, co, |u, x| {
                    // SAFETY: `x` holds exactly 32 values (`for_each_k`), so both
                    // 16-lane unaligned loads read inside it.
                    let (x0, x1) = unsafe {
                        (
                            _mm512_loadu_ps(x.as_ptr()),
                            _mm512_loadu_ps(x.as_ptr().add(16)),
                        )
                    };
                    for (acc, &ur) in acc.iter_mut().zip(u) {
                        let b = _mm512_set1_ps(ur);
                        acc[0] = _mm512_fmadd_ps(b, x0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(b, x1, acc[1]);
                    }
                });
                for (r, acc) in acc.iter().enumerate().take(a.w.cout.saturating_sub(co)) {
                    let out = &mut m[(co + r) * m_stride + t0..][..32];
                    // SAFETY: `out` holds exactly 32 values: two 16-lane stores.
                    unsafe {
                        _mm512_storeu_ps(out.as_mut_ptr(), acc[0]);
                        _mm512_storeu_ps(out.as_mut_ptr().add(16), acc[1]);
                    }
                }
            }
            t0 += 32;
        }
        while t0 < tiles {
            for co in (0..a.w.cout).step_by(ROWS) {
                block8::<ROWS>(a, t0, co, m, m_stride);
            }
            t0 += 8;
        }
    }

    /// [`super::product`] in 4 x 16 blocks (two 8-lane vectors per channel),
    /// then 4 x 8 for the last tiles.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(a: Operands<'_>, tiles: usize, m: &mut [f32], m_stride: usize) {
        let mut t0 = 0;
        while t0 + 16 <= tiles {
            for co in (0..a.w.cout).step_by(4) {
                let mut acc = [[_mm256_setzero_ps(); 2]; 4];
                for_each_k::<4, 16>(a, t0, co, |u, x| {
                    // SAFETY: `x` holds exactly 16 values: two 8-lane loads.
                    let (x0, x1) = unsafe {
                        (
                            _mm256_loadu_ps(x.as_ptr()),
                            _mm256_loadu_ps(x.as_ptr().add(8)),
                        )
                    };
                    for (acc, &ur) in acc.iter_mut().zip(u) {
                        let b = _mm256_set1_ps(ur);
                        acc[0] = _mm256_fmadd_ps(b, x0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(b, x1, acc[1]);
                    }
                });
                for (r, acc) in acc.iter().enumerate().take(a.w.cout.saturating_sub(co)) {
                    let out = &mut m[(co + r) * m_stride + t0..][..16];
                    // SAFETY: `out` holds exactly 16 values: two 8-lane stores.
                    unsafe {
                        _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
                        _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
                    }
                }
            }
            t0 += 16;
        }
        while t0 < tiles {
            for co in (0..a.w.cout).step_by(4) {
                block8::<4>(a, t0, co, m, m_stride);
            }
            t0 += 8;
        }
    }

    /// `R` channels from `co` x tiles `t0..t0 + 8`, one 8-lane vector each.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block8<const R: usize>(
        a: Operands<'_>,
        t0: usize,
        co: usize,
        m: &mut [f32],
        m_stride: usize,
    ) {
        let mut acc = [_mm256_setzero_ps(); R];
        for_each_k::<R, 8>(a, t0, co, |u, x| {
            // SAFETY: `x` holds exactly 8 values: one 8-lane load.
            let x0 = unsafe { _mm256_loadu_ps(x.as_ptr()) };
            for (acc, &ur) in acc.iter_mut().zip(u) {
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(ur), x0, *acc);
            }
        });
        for (r, acc) in acc.iter().enumerate().take(a.w.cout.saturating_sub(co)) {
            let out = &mut m[(co + r) * m_stride + t0..][..8];
            // SAFETY: `out` holds exactly 8 values: one 8-lane store.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *acc) };
        }
    }

    /// Calls `f(u, x)` for every piece and `k` in order: `u` the `R` weights of
    /// channels `co..co + R` (a slice of exactly `R`), `x` the `T` input values
    /// of tiles `t0..t0 + T` (exactly `T`).
    #[inline(always)]
    fn for_each_k<const R: usize, const T: usize>(
        a: Operands<'_>,
        t0: usize,
        co: usize,
        mut f: impl FnMut(&[f32], &[f32]),
    ) {
        let k = a.w.k;
        let (panel, lane0) = (co / ROWS, co % ROWS);
        for s in 0..a.pieces {
            let weights = &a.w.matrix(a.first + s)[panel * k * ROWS..][..k * ROWS];
            let base = a.rows.offset + s + t0;
            for (kk, u) in weights.chunks_exact(ROWS).enumerate() {
                f(&u[lane0..lane0 + R], &a.v[base + kk * a.rows.stride..][..T]);
            }
        }
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
            let rows = InputRows { offset: 3, stride };
            let a = Operands {
                w: &w,
                first: pieces,
                pieces,
                v: &v,
                rows,
            };
            // Every version this CPU can run, not only the one `product` picks.
            let mut versions: Vec<(&str, Vec<f32>)> = Vec::new();
            let mut run = |name: &'static str, f: &dyn Fn(&mut [f32])| {
                let mut m = vec![f32::NAN; cout * m_stride];
                f(&mut m);
                versions.push((name, m));
            };
            run("product", &|m| product(a, tiles, m, m_stride));
            run("portable", &|m| portable::<false>(a, tiles, m, m_stride));
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") {
                    // SAFETY: AVX2 and FMA checked just above.
                    run("avx2", &|m| unsafe { x86::avx2(a, tiles, m, m_stride) });
                }
                if has!("avx512f") && has!("avx2") && has!("fma") {
                    // SAFETY: AVX-512F, AVX2 and FMA checked just above.
                    run("avx512", &|m| unsafe { x86::avx512(a, tiles, m, m_stride) });
                }
            }
            for (name, m) in &versions {
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
                            "{name}: cout {cout} k {k} pieces {pieces} tiles {tiles}: \
                         ({co}, {t}) {got} vs {want}"
                        );
                    }
                    // Columns past `tiles` are left alone.
                    assert!(
                        m[co * m_stride + tiles..(co + 1) * m_stride]
                            .iter()
                            .all(|v| v.is_nan()),
                        "{name}: wrote past {tiles} tiles"
                    );
                }
            }
        }
    }
}
