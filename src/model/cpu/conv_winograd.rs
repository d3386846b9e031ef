//! Training's zero-padded 3x3 stride-1 convolutions (VGG's, the discriminator's)
//! by Winograd F(4x4, 3x3): the forward pass and the input gradient, which for a
//! "same" 3x3 conv is the same kind of conv of the output gradient with the
//! kernel turned 180° and its channels swapped. The weight gradient stays on the
//! tap GEMMs ([`super::conv_taps`]).
//!
//! Why: these convs are most of a training step's multiply-adds (VGG19 alone
//! runs three forward passes and one backward per step) and the tap GEMMs
//! already run at the `gemm` crate's rate; F(4x4, 3x3) needs 36 multiplies per
//! 4x4 output tile instead of 144.
//!
//! Unlike the inference engine's tiles ([`super::winograd`], one tile row at a
//! time on weights packed once per model), the tiles of the *whole batch* are
//! taken in chunks of a few hundred: VGG's deep layers have 512 channels on
//! 32x32 maps, 8 tiles per tile row, and a product per tile row would stream the
//! 36 transformed weight matrices (36 MB) for 8 tiles' worth of work. Per chunk:
//! 1. input transform `V[ci][ξ][t] = (Bᵀ d B)[ξ]` of each tile's 6x6 patch;
//! 2. 36 GEMMs `M[ξ] = U[ξ] · V[ξ]` (`cout x cin` by `cin x tiles`), in parallel;
//! 3. output transform `Y = Aᵀ M A` (4x4 per tile) plus the bias, clipped at the edges.
//!
//! The weights are transformed on every call (the discriminator's change every
//! step; keeping VGG's, 4x larger transformed, would cost ~170 MB a direction)
//! as one small GEMM: `U[ξ][co][ci] = Σ_tap (G ⊗ G)[ξ][tap] w[co][ci][tap]`.

use multiversion::multiversion;
use rayon::prelude::*;

use super::conv::ConvShape;
use super::kernels::assert_len;
use super::matmul::{SendPtr, View, gemm, gemm_shared};
use super::winograd::{f4_filter, f4_input, f4_output, lane, per_lane};

/// Fewest input and output channels taken here: with fewer (an RGB input) the
/// transforms outweigh the products they save.
const MIN_CHANNELS: usize = 16;

/// Transformed values per tile (6x6).
const XI: usize = 36;

/// Values of `V` and `M` together per chunk of tiles (16 MiB): the chunk's
/// operands stay near the L2/L3 caches while each `U[ξ]` is reused across
/// hundreds of tiles.
const CHUNK_VALUES: usize = 4 << 20;

/// Whether `s` runs here: a 3x3 kernel, stride 1, zero padding 1 on every side
/// (output as large as the input), at least [`MIN_CHANNELS`] channels each way.
/// The forward and the input gradient qualify on the same shapes.
pub(crate) fn takes(s: &ConvShape) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.sh == 1
        && s.sw == 1
        && !s.reflect
        && s.pad_top == 1
        && s.pad_left == 1
        && s.oh == s.h
        && s.ow == s.w
        && s.h > 0
        && s.w > 0
        && s.cin >= MIN_CHANNELS
        && s.cout >= MIN_CHANNELS
}

/// Forward: `x` `[batch, cin, h, w]`, `weight` `[cout, cin, 3, 3]`, `bias`
/// `[cout]` → `[batch, cout, h, w]`.
///
/// # Panics
/// If `s` is not a shape [`takes`] accepts or a slice's length disagrees with it.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    assert!(
        takes(s),
        "conv_winograd forward: {s:?} is not for this path"
    );
    assert_len("conv forward", "weight", weight.len(), s.cout * s.cin * 9);
    assert_len("conv forward", "bias", bias.len(), s.cout);
    let shape = Shape {
        batch: s.batch,
        cin: s.cin,
        cout: s.cout,
        h: s.h,
        w: s.w,
    };
    conv3(
        shape,
        x,
        |u| transformed(weight, s.cout, s.cin, false, u),
        Some(bias),
    )
}

/// Input gradient: `weight` `[cout, cin, 3, 3]`, `grad` `[batch, cout, h, w]` →
/// `[batch, cin, h, w]`: `dx = conv(dOut, W')`, `W'[ci][co][y][x] =
/// W[co][ci][2 - y][2 - x]`, zero padding 1.
///
/// # Panics
/// If `s` is not a shape [`takes`] accepts or a slice's length disagrees with it.
pub(crate) fn input_grad(s: &ConvShape, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    assert!(
        takes(s),
        "conv_winograd input_grad: {s:?} is not for this path"
    );
    assert_len(
        "conv input_grad",
        "weight",
        weight.len(),
        s.cout * s.cin * 9,
    );
    let shape = Shape {
        batch: s.batch,
        cin: s.cout,
        cout: s.cin,
        h: s.h,
        w: s.w,
    };
    conv3(
        shape,
        grad,
        |u| transformed(weight, s.cout, s.cin, true, u),
        None,
    )
}

/// One conv's sizes, from its input's side.
#[derive(Debug, Clone, Copy)]
struct Shape {
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
}

/// `U[ξ][o][i] = Σ_tap (G ⊗ G)[ξ][tap] w[o][i][tap]` → `[36][o][i]`, from `weight`
/// `[cout][cin][9]`: for the forward `(o, i) = (co, ci)`; for the input gradient
/// (`turned`) `(o, i) = (ci, co)` and tap `8 - tap` (the kernel turned 180°).
/// One GEMM `36 x 9` by `9 x i` per `o`, reading the weights through strides.
fn transformed(weight: &[f32], cout: usize, cin: usize, turned: bool, u: &mut [f32]) {
    assert_len("conv_winograd", "weights", weight.len(), 9 * cout * cin);
    assert_len(
        "conv_winograd",
        "transformed weights",
        u.len(),
        XI * cout * cin,
    );
    // G ⊗ G from the inference engine's filter transform: column y of G is
    // `f4_filter` of the unit vector e_y.
    let g: [[f64; 6]; 3] = std::array::from_fn(|y| {
        let e = |i: usize| if i == y { 1.0 } else { 0.0 };
        f4_filter(e(0), e(1), e(2))
    });
    let mut gg = [0f32; XI * 9];
    for r in 0..6 {
        for c in 0..6 {
            for tap in 0..9 {
                let t = if turned { 8 - tap } else { tap };
                gg[(r * 6 + c) * 9 + t] = (g[tap / 3][r] * g[tap % 3][c]) as f32;
            }
        }
    }
    let (outer, inner) = if turned { (cin, cout) } else { (cout, cin) };
    let dst = SendPtr::new(u);
    (0..outer).into_par_iter().for_each(|o| {
        // Tap `tap` of pair (o, i) is weight[offset + tap + i * cs].
        let (offset, cs) = if turned {
            (o * 9, cin * 9)
        } else {
            (o * cin * 9, 9)
        };
        // SAFETY: task `o` writes only columns o·inner .. (o + 1)·inner of each
        // row of `U`; the tasks' column ranges are disjoint; bounds are checked.
        unsafe {
            gemm_shared(
                (XI, inner, 9),
                (dst, View::rows(o * inner, outer * inner), false),
                (&gg, View::rows(0, 9)),
                (weight, View { offset, rs: 1, cs }),
            );
        }
    });
}

thread_local! {
    /// The calling thread's transformed weights, `V` and `M`, kept between
    /// calls: fresh buffers of tens of megabytes cost a page fault per 4 KiB.
    /// At most ~55 MB (VGG's 512 -> 512 weights transformed, 16 MiB of chunk).
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
}

/// Runs `f` on this thread's buffers of at least `lens` values each (on fresh
/// ones when they are in use: a rayon worker waiting inside a conv may start
/// another task that convolves).
fn with_buffers<R>(lens: [usize; 3], f: impl FnOnce([&mut [f32]; 3]) -> R) -> R {
    let run = |bufs: &mut [Vec<f32>; 3]| {
        for (b, &len) in bufs.iter_mut().zip(&lens) {
            if b.len() < len {
                b.resize(len, 0.0);
            }
        }
        let [u, v, m] = bufs;
        f([&mut u[..lens[0]], &mut v[..lens[1]], &mut m[..lens[2]]])
    };
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => run(&mut bufs),
        Err(_) => run(&mut [Vec::new(), Vec::new(), Vec::new()]),
    })
}

/// Tiles transformed at once (one AVX-512 register of `f32`).
const L: usize = 16;

/// The conv on the whole batch: `x` `[batch, cin, h, w]` → `[batch, cout, h, w]`,
/// plus `bias` `[cout]` when given; `weights` fills `U` `[36][cout][cin]`.
///
/// Chunks are whole tile rows (of any images); the transforms run on [`L`]
/// tiles of a tile row at once, from rows split into their 4 column phases.
#[multiversion(targets = "simd")]
fn conv3(s: Shape, x: &[f32], weights: impl FnOnce(&mut [f32]), bias: Option<&[f32]>) -> Vec<f32> {
    let (plane, th, tw) = (s.h * s.w, s.h.div_ceil(4), s.w.div_ceil(4));
    assert_len("conv_winograd", "input", x.len(), s.batch * s.cin * plane);
    let tile_rows = s.batch * th;
    let per_chunk = (CHUNK_VALUES / (XI * (s.cin + s.cout) * tw)).clamp(1, tile_rows);
    // Row stride of V and M per ξ: whole lanes may run past the chunk's last tile.
    let stride = per_chunk * tw + L;
    // Tile phases per row: tile t reads phases 0..4 at t and 0-1 at t + 1.
    let np = (tw + 1).next_multiple_of(L) + L;
    let mut out = vec![0f32; s.batch * s.cout * plane];
    let lens = [
        XI * s.cout * s.cin,
        s.cin * XI * stride,
        XI * s.cout * stride,
    ];
    with_buffers(lens, |[u, v, m]| {
        weights(u);
        let u = &*u;
        for r0 in (0..tile_rows).step_by(per_chunk) {
            let r1 = (r0 + per_chunk).min(tile_rows);
            // 1. Input transform, one input channel per task: V[ci][ξ][t].
            v.par_chunks_mut(XI * stride).enumerate().for_each_init(
                // seg: one padded row, zero outside the input's columns.
                || (vec![0f32; 4 * np], vec![0f32; XI * np], vec![0f32; 4 * np]),
                |(phases, hor, seg), (ci, vc)| {
                    for row in r0..r1 {
                        let (b, ty) = (row / th, row % th);
                        let p = &x[(b * s.cin + ci) * plane..][..plane];
                        for i in 0..6 {
                            // Padded row 4 ty + i is input row 4 ty + i - 1; column
                            // 4 t + ph of the padded row is phase ph of tile t.
                            let y = (4 * ty + i).wrapping_sub(1);
                            if y < s.h {
                                seg[1..=s.w].copy_from_slice(&p[y * s.w..(y + 1) * s.w]);
                                let (p0, rest) = phases.split_at_mut(np);
                                let (p1, rest) = rest.split_at_mut(np);
                                let (p2, p3) = rest.split_at_mut(np);
                                for ((((c, a), b), d), e) in
                                    seg.chunks_exact(4).zip(p0).zip(p1).zip(p2).zip(p3)
                                {
                                    (*a, *b, *d, *e) = (c[0], c[1], c[2], c[3]);
                                }
                            } else {
                                phases.fill(0.0);
                            }
                            for t in (0..tw).step_by(L) {
                                let d: [[f32; L]; 6] = std::array::from_fn(|j| {
                                    lane::<L>(phases, (j % 4) * np + t + j / 4)
                                });
                                let y = per_lane(d, f4_input);
                                for (c, yc) in y.iter().enumerate() {
                                    hor[(i * 6 + c) * np + t..][..L].copy_from_slice(yc);
                                }
                            }
                        }
                        let at = (row - r0) * tw;
                        for c in 0..6 {
                            for t in (0..tw).step_by(L) {
                                let d =
                                    std::array::from_fn(|i| lane::<L>(hor, (i * 6 + c) * np + t));
                                let y = per_lane(d, f4_input);
                                for (r, yr) in y.iter().enumerate() {
                                    vc[(r * 6 + c) * stride + at + t..][..L].copy_from_slice(yr);
                                }
                            }
                        }
                    }
                },
            );
            // 2. The products, one ξ per task: M[ξ][co][t].
            let nt = (r1 - r0) * tw;
            m.par_chunks_mut(s.cout * stride)
                .enumerate()
                .for_each(|(xi, mx)| {
                    gemm(
                        (s.cout, nt, s.cin),
                        (mx, View::rows(0, stride), false),
                        (u, View::rows(xi * s.cout * s.cin, s.cin)),
                        (&*v, View::rows(xi * stride, XI * stride)),
                    );
                });
            // 3. Output transform, one (image, output channel) plane per task.
            let (b0, b1) = (r0 / th, (r1 - 1) / th + 1);
            out[b0 * s.cout * plane..b1 * s.cout * plane]
                .par_chunks_mut(plane)
                .enumerate()
                .for_each_init(
                    || vec![0f32; 24 * np],
                    |vert, (i, o)| {
                        let (b, co) = (b0 + i / s.cout, i % s.cout);
                        let bias = bias.map_or(0.0, |bv| bv[co]);
                        for row in (b * th).max(r0)..((b + 1) * th).min(r1) {
                            let ty = row % th;
                            let at = (row - r0) * tw;
                            // Along y: vert[i][c][t] for output row i of the tile.
                            for c in 0..6 {
                                for t in (0..tw).step_by(L) {
                                    let d = std::array::from_fn(|r| {
                                        lane::<L>(m, ((r * 6 + c) * s.cout + co) * stride + at + t)
                                    });
                                    let y = per_lane(d, f4_output);
                                    for (i, yi) in y.iter().enumerate() {
                                        vert[(i * 6 + c) * np + t..][..L].copy_from_slice(yi);
                                    }
                                }
                            }
                            // Along x, into output rows 4 ty + i, columns 4 t + j.
                            for i in 0..4 {
                                let oy = 4 * ty + i;
                                if oy >= s.h {
                                    break;
                                }
                                let orow = &mut o[oy * s.w..(oy + 1) * s.w];
                                for t in (0..tw).step_by(L) {
                                    let d = std::array::from_fn(|c| {
                                        lane::<L>(vert, (i * 6 + c) * np + t)
                                    });
                                    let y = per_lane(d, f4_output);
                                    for (l, px) in orow[4 * t..].chunks_mut(4).take(L).enumerate() {
                                        for (j, v) in px.iter_mut().enumerate() {
                                            *v = y[j][l] + bias;
                                        }
                                    }
                                }
                            }
                        }
                    },
                );
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero-padded 3x3 stride-1 conv whose output is as large as its input.
    fn same3x3(batch: usize, cin: usize, cout: usize, h: usize, w: usize) -> ConvShape {
        ConvShape {
            batch,
            cin,
            h,
            w,
            cout,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad_top: 1,
            pad_left: 1,
            reflect: false,
            oh: h,
            ow: w,
        }
    }

    fn values(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * k).sin()).collect()
    }

    /// Calls `f(output index, input index, weight index)` for every tap of a
    /// zero-padded 3x3 "same" conv that lands inside the input, in the order
    /// image, output channel, output pixel, input channel, tap.
    fn each_tap(s: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
        let (h, w) = (s.h as isize, s.w as isize);
        for b in 0..s.batch {
            for co in 0..s.cout {
                for oy in 0..h {
                    for ox in 0..w {
                        let o = ((b * s.cout + co) * s.h + oy as usize) * s.w + ox as usize;
                        for ci in 0..s.cin {
                            for t in 0..9 {
                                let (y, xx) = (oy + t as isize / 3 - 1, ox + t as isize % 3 - 1);
                                if (0..h).contains(&y) && (0..w).contains(&xx) {
                                    let i =
                                        ((b * s.cin + ci) * s.h + y as usize) * s.w + xx as usize;
                                    f(o, i, (co * s.cin + ci) * 9 + t);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `[batch, cout, h, w]` by direct f64 sums (zero padding 1).
    fn direct_forward(s: &ConvShape, x: &[f32], wt: &[f32], bias: &[f32]) -> Vec<f64> {
        let plane = s.h * s.w;
        let mut out: Vec<f64> = (0..s.batch * s.cout * plane)
            .map(|o| f64::from(bias[(o / plane) % s.cout]))
            .collect();
        each_tap(s, |o, i, k| out[o] += f64::from(wt[k]) * f64::from(x[i]));
        out
    }

    /// `[batch, cin, h, w]`: the adjoint of [`direct_forward`] (without bias), scattered.
    fn direct_input_grad(s: &ConvShape, wt: &[f32], g: &[f32]) -> Vec<f64> {
        let mut dx = vec![0f64; s.batch * s.cin * s.h * s.w];
        each_tap(s, |o, i, k| dx[i] += f64::from(wt[k]) * f64::from(g[o]));
        dx
    }

    /// Largest |got - want| over the largest |want|; NaN if any value is NaN.
    fn rel_max_error(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let mut worst = 0f64;
        for (&g, &w) in got.iter().zip(want) {
            let d = (f64::from(g) - w).abs();
            if d.is_nan() {
                return f64::NAN;
            }
            worst = worst.max(d);
        }
        worst / scale
    }

    /// Forward and input gradient against direct f64 sums, within 5e-5 of the
    /// largest value (F(4x4, 3x3) in float32 measured 1.3e-6 to 1.9e-5 on these; a
    /// wrong tap, tile edge or chunk boundary is off by the values themselves): maps whose sides are
    /// not multiples of 4 (partial tiles), more than one [`L`] lane of tiles per
    /// tile row, odd channel counts, and a batch whose tiles span several chunks
    /// with a chunk ending inside an image (130x130, 16 -> 16 channels: 110 tile
    /// rows per chunk of 4 x 33).
    #[test]
    fn forward_and_input_gradient_equal_direct_sums() {
        for &(batch, cin, cout, h, w) in &[
            (1, 17, 20, 3, 5),
            (2, 16, 24, 9, 70),
            (4, 16, 16, 130, 130),
            (1, 40, 16, 13, 6),
        ] {
            let s = same3x3(batch, cin, cout, h, w);
            assert!(takes(&s));
            let x = values(batch * cin * h * w, 0.37);
            let wt = values(cout * cin * 9, 0.23);
            let bias = values(cout, 1.1);
            let e = rel_max_error(
                &forward(&s, &x, &wt, &bias),
                &direct_forward(&s, &x, &wt, &bias),
            );
            assert!(e < 5e-5, "forward {s:?}: relative error {e}");
            let g = values(batch * cout * h * w, 0.71);
            let e = rel_max_error(&input_grad(&s, &wt, &g), &direct_input_grad(&s, &wt, &g));
            assert!(e < 5e-5, "input gradient {s:?}: relative error {e}");
        }
    }

    /// What is not a zero-padded 3x3 stride-1 "same" conv with enough channels
    /// stays on the other kernels.
    #[test]
    fn takes_only_same_3x3_convs_with_enough_channels() {
        let base = same3x3(1, 16, 16, 8, 8);
        assert!(takes(&base));
        for s in [
            ConvShape {
                reflect: true,
                ..base
            },
            ConvShape { cin: 3, ..base },
            ConvShape { cout: 8, ..base },
            ConvShape {
                sh: 2,
                sw: 2,
                oh: 4,
                ow: 4,
                ..base
            },
            ConvShape {
                pad_top: 0,
                pad_left: 0,
                oh: 6,
                ow: 6,
                ..base
            },
            ConvShape {
                kh: 7,
                kw: 7,
                pad_top: 3,
                pad_left: 3,
                ..base
            },
        ] {
            assert!(!takes(&s), "{s:?} taken");
        }
    }
}
