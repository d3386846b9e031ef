//! The one GEMM entry point of the CPU kernels, bounds-checked, and the
//! [`SendPtr`] through which rayon tasks write disjoint parts of one output.
//!
//! Why a wrapper around `gemm::gemm`: it takes raw pointers and strides and
//! trusts them. Here every operand comes in as a slice plus a [`View`], and the
//! whole strided extent of each matrix is checked against its slice before the
//! call — in release builds too (O(1) per call, the GEMMs are ≥ 10⁵ flops) — so a
//! wrong length is a panic at the boundary, never an out-of-bounds read or write.
//! What the type system cannot check is left to the caller of [`gemm_shared`]:
//! that concurrent tasks write disjoint elements.

use std::marker::PhantomData;

/// Where an `m x n` matrix lies in a flat buffer: element `(i, j)` is
/// `buf[offset + i * rs + j * cs]`. A transposed operand is the same buffer with
/// the strides swapped, so it needs no copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl View {
    /// Row-major rows `rs` apart, starting at `offset`.
    pub(crate) fn rows(offset: usize, rs: usize) -> Self {
        Self { offset, rs, cs: 1 }
    }

    /// The transpose of the row-major matrix at `offset` with row stride `rs`.
    pub(crate) fn transposed(offset: usize, rs: usize) -> Self {
        Self {
            offset,
            rs: 1,
            cs: rs,
        }
    }

    /// One past the largest index of an `m x n` matrix in this view (`offset`
    /// when empty), or `None` if that overflows `usize`.
    fn end(&self, m: usize, n: usize) -> Option<usize> {
        if m == 0 || n == 0 {
            return Some(self.offset);
        }
        (m - 1)
            .checked_mul(self.rs)?
            .checked_add((n - 1).checked_mul(self.cs)?)?
            .checked_add(self.offset)?
            .checked_add(1)
    }

    /// Panics unless an `m x n` matrix in this view lies inside a buffer of
    /// `len` values: the check that makes every GEMM here stay in bounds.
    fn check(&self, m: usize, n: usize, len: usize, what: &str) {
        let end = self.end(m, n);
        assert!(
            end.is_some_and(|e| e <= len),
            "gemm: {what} {m}x{n} at {self:?} does not fit in {len} values"
        );
        // A slice holds at most isize::MAX bytes, so in-bounds strides fit in isize.
        assert!(
            isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok(),
            "gemm: {what} strides overflow isize"
        );
    }
}

/// An exclusively borrowed `f32` buffer that rayon tasks share to write
/// disjoint, interleaved parts of it — e.g. one block of columns in every row of
/// a `[cout, pixels]` output — which `par_chunks_mut` / `split_at_mut` cannot
/// express (each task's part is not one contiguous range).
///
/// Holding the `&'a mut` borrow means nothing else can read or write the buffer
/// while any copy lives (so it cannot alias a GEMM operand either); every access
/// is bounds-checked, and only the disjointness of concurrent tasks' elements is
/// the callers' promise (the `unsafe` methods).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<'a> {
    ptr: *mut f32,
    len: usize,
    _buf: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SendPtr` is the address and length of a buffer exclusively borrowed
// for `'a` (nothing outside its copies can touch it meanwhile). Moving or sharing
// that address between threads is harmless in itself; every read or write through
// it is an `unsafe` call whose caller guarantees that concurrent tasks touch
// disjoint elements, which is what makes the concurrent writes data-race free.
unsafe impl Send for SendPtr<'_> {}
// SAFETY: as for `Send`: `&SendPtr` only gives the same address, and all access
// is through the `unsafe` methods with the disjointness contract.
unsafe impl Sync for SendPtr<'_> {}

impl<'a> SendPtr<'a> {
    /// Borrows `buf` for the tasks that will write its disjoint parts.
    pub(crate) fn new(buf: &'a mut [f32]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _buf: PhantomData,
        }
    }

    /// `len` values from `start` as a slice (panics if out of bounds).
    ///
    /// # Safety
    /// While the returned slice lives, no other task or reference reads or
    /// writes any of those values (in particular, no other `slice_mut` or
    /// [`gemm_shared`] call on an overlapping range runs concurrently).
    pub(crate) unsafe fn slice_mut(self, start: usize, len: usize) -> &'a mut [f32] {
        assert!(
            start <= self.len && len <= self.len - start,
            "SendPtr: {start}..+{len} out of bounds of {} values",
            self.len
        );
        // SAFETY: the range is inside the borrowed buffer (asserted above), the
        // buffer is valid and initialised for `'a`, and the caller guarantees
        // that nothing else accesses the range while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// `dst (+)= lhs · rhs` on one thread (callers parallelise over blocks):
/// `lhs` is `m x k`, `rhs` is `k x n`, `dst` is `m x n`, each in its [`View`];
/// `accumulate` adds to `dst` instead of overwriting it. `dst` is a buffer this
/// task owns, so this is safe.
///
/// # Panics
/// If any matrix's extent does not fit in its slice.
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_view, accumulate): (&mut [f32], View, bool),
    lhs: (&[f32], View),
    rhs: (&[f32], View),
) {
    // SAFETY: `dst` is exclusively borrowed here, so no other task can touch it.
    unsafe {
        gemm_shared(
            (m, n, k),
            (SendPtr::new(dst), dst_view, accumulate),
            lhs,
            rhs,
        )
    }
}

/// [`gemm`] into a buffer shared with other tasks through a [`SendPtr`].
///
/// # Safety
/// While this runs, no other task reads or writes any element of `dst`'s
/// `m x n` region (`offset + i * rs + j * cs`); tasks writing disjoint regions of
/// one buffer concurrently is the intended use. Bounds are checked here.
///
/// # Panics
/// If any matrix's extent does not fit in its buffer.
pub(crate) unsafe fn gemm_shared(
    (m, n, k): (usize, usize, usize),
    (dst, dv, accumulate): (SendPtr<'_>, View, bool),
    (lhs, lv): (&[f32], View),
    (rhs, rv): (&[f32], View),
) {
    dv.check(m, n, dst.len, "dst");
    lv.check(m, k, lhs.len(), "lhs");
    rv.check(k, n, rhs.len(), "rhs");
    if m == 0 || n == 0 {
        return;
    }
    // Lossless: the strides fit in isize (checked).
    let s = |v: usize| v as isize;
    // SAFETY: each view's offset is at most its buffer's length and each
    // matrix's whole strided extent lies inside its buffer (checked above), so
    // the offset pointers are valid and gemm reads and writes only in-bounds
    // elements; `dst`'s buffer is exclusively borrowed for the `SendPtr`'s
    // lifetime, so it cannot overlap `lhs` or `rhs` (shared borrows); and the
    // caller guarantees no concurrent access to the `dst` region.
    // `Parallelism::None`: gemm starts no threads of its own.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.ptr.add(dv.offset),
            s(dv.cs),
            s(dv.rs),
            accumulate,
            lhs.as_ptr().add(lv.offset),
            s(lv.cs),
            s(lv.rs),
            rhs.as_ptr().add(rv.offset),
            s(rv.cs),
            s(rv.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive `lhs[m x k] · rhs[k x n]`, row-major.
    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
    }

    #[test]
    fn gemm_matches_naive_with_offsets_and_transposes() {
        let (m, n, k) = (5, 7, 3);
        let a = values(m * k, 0.1);
        let b = values(k * n, 0.2);
        let want = naive(m, n, k, &a, &b);
        // dst as a 5x7 block at column 2 of a 5x10 buffer.
        let mut dst = vec![9f32; 5 * 10];
        gemm(
            (m, n, k),
            (&mut dst, View::rows(2, 10), false),
            (&a, View::rows(0, k)),
            (&b, View::rows(0, n)),
        );
        for i in 0..m {
            assert_eq!(dst[i * 10..i * 10 + 2], [9.0f32, 9.0]);
            assert_eq!(dst[i * 10 + 9], 9.0);
            for j in 0..n {
                assert!((dst[i * 10 + 2 + j] - want[i * n + j]).abs() < 1e-5);
            }
        }
        // aᵀᵀ: `a` stored transposed (k x m) and read through a transposed view.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut dst2 = vec![0f32; m * n];
        gemm(
            (m, n, k),
            (&mut dst2, View::rows(0, n), false),
            (&at, View::transposed(0, m)),
            (&b, View::rows(0, n)),
        );
        for (x, y) in dst2.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    #[should_panic(expected = "gemm: rhs")]
    fn gemm_rejects_a_short_operand() {
        let mut dst = vec![0f32; 4 * 4];
        gemm(
            (4, 4, 4),
            (&mut dst, View::rows(0, 4), false),
            (&[1.0; 16], View::rows(0, 4)),
            (&[1.0; 15], View::rows(0, 4)),
        );
    }

    #[test]
    #[should_panic(expected = "gemm: dst")]
    fn gemm_rejects_a_dst_region_past_the_end() {
        // The region's last row would end one value past the buffer.
        let mut dst = vec![0f32; 4 * 8];
        gemm(
            (4, 4, 2),
            (&mut dst, View::rows(5, 8), false),
            (&[1.0; 8], View::rows(0, 2)),
            (&[1.0; 8], View::rows(0, 4)),
        );
    }

    #[test]
    fn view_end_does_not_overflow() {
        assert_eq!(View::rows(usize::MAX, 2).end(2, 2), None);
        assert_eq!(View::rows(3, 100).end(0, 5), Some(3));
        assert_eq!(View::rows(3, 10).end(2, 4), Some(3 + 10 + 3 + 1));
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn send_ptr_slices_are_bounds_checked() {
        let mut buf = vec![0f32; 8];
        let p = SendPtr::new(&mut buf);
        // SAFETY: nothing else uses `buf`; the call must panic before any access.
        let _ = unsafe { p.slice_mut(6, 3) };
    }
}
