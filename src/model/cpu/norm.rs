//! GroupNorm(1, C) fused with an optional LeakyReLU on NCHW `f32` batches,
//! forward and backward, for training on the CPU ([`crate::model::fast_norm`]
//! wires them into Burn's autodiff).
//!
//! Why: composed from Burn ops the norm is ~8 full-size passes forward and twice
//! that backward, each into a freshly allocated tensor; the generator and the
//! discriminator (16 images at full resolution) spent more time there than in
//! their convolutions. Here the forward is two read passes and one write, the
//! backward two read passes and one write, with statistics summed in f64.

use multiversion::multiversion;
use rayon::prelude::*;

use super::kernels::{assert_len, sum_f64};

/// Shape of a normalised batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NormShape {
    /// Batch size.
    pub batch: usize,
    /// Channels.
    pub c: usize,
    /// Pixels per channel (`H * W`).
    pub plane: usize,
}

/// Per-sample mean and `1 / sqrt(var + eps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    mean: f64,
    inv: f64,
}

/// Sum of `f(v)` over sample `b`'s `C * H * W` values, one task per channel plane.
fn sample_sum(s: &NormShape, x: &[f32], b: usize, f: impl Fn(f32) -> f32 + Sync + Copy) -> f64 {
    x[b * s.c * s.plane..(b + 1) * s.c * s.plane]
        .par_chunks(s.plane.max(1))
        .map(|p| sum_f64(p, f))
        .sum()
}

/// Statistics of every sample (two passes: the mean, then squares around it).
#[multiversion(targets = "simd")]
fn stats(s: &NormShape, x: &[f32], eps: f64) -> Vec<Stats> {
    let n = (s.c * s.plane) as f64;
    (0..s.batch)
        .map(|b| {
            let mean = sample_sum(s, x, b, |v| v) / n;
            let m32 = mean as f32;
            let var = sample_sum(s, x, b, |v| (v - m32) * (v - m32)) / n;
            Stats {
                mean,
                inv: 1.0 / (var + eps).sqrt(),
            }
        })
        .collect()
}

impl NormShape {
    /// Panics unless `x` (`[batch, c, plane]`), `gamma` and `beta` (`[c]`) have
    /// the lengths the shape says: the kernels chunk by plane and index
    /// statistics by `chunk / c`.
    fn assert_operands(&self, kernel: &str, x: &[f32], gamma: &[f32], beta: &[f32]) {
        assert_len(kernel, "x", x.len(), self.batch * self.c * self.plane);
        assert_len(kernel, "gamma", gamma.len(), self.c);
        assert_len(kernel, "beta", beta.len(), self.c);
    }
}

/// `y = act((x - mean) * inv * gamma[c] + beta[c])`, act = LeakyReLU(`slope`) when given:
/// `x` `[batch, c, plane]`, `gamma` and `beta` `[c]` → `[batch, c, plane]`.
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn forward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    slope: Option<f32>,
) -> Vec<f32> {
    s.assert_operands("norm forward", x, gamma, beta);
    let st = stats(s, x, eps);
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(s.plane.max(1))
        .zip(x.par_chunks(s.plane.max(1)))
        .enumerate()
        .for_each(|(i, (out, inp))| {
            let (b, c) = (i / s.c, i % s.c);
            let a = (gamma[c] as f64 * st[b].inv) as f32;
            let shift = (beta[c] as f64 - st[b].mean * gamma[c] as f64 * st[b].inv) as f32;
            match slope {
                Some(k) => out.iter_mut().zip(inp).for_each(|(o, &v)| {
                    let z = v * a + shift;
                    *o = if z >= 0.0 { z } else { z * k };
                }),
                None => out
                    .iter_mut()
                    .zip(inp)
                    .for_each(|(o, &v)| *o = v * a + shift),
            }
        });
    y
}

/// Gradients `(dx, dgamma, dbeta)` of [`forward`] for the output gradient `dy`
/// (`[batch, c, plane]`, as `x`).
///
/// # Panics
/// If a slice's length disagrees with `s`.
#[multiversion(targets = "simd")]
pub(crate) fn backward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    dy: &[f32],
    eps: f64,
    slope: Option<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    s.assert_operands("norm backward", x, gamma, beta);
    assert_len("norm backward", "dy", dy.len(), x.len());
    let st = stats(s, x, eps);
    let p = s.plane.max(1);
    // The activation's gradient factor at z = xhat * gamma + beta (1 without one).
    let k = slope.unwrap_or(1.0);
    let act = move |z: f32| if z < 0.0 { k } else { 1.0 };
    // Pass 1: per (sample, channel) sums of dz and dz * xhat.
    let sums: Vec<(f64, f64)> = x
        .par_chunks(p)
        .zip(dy.par_chunks(p))
        .enumerate()
        .map(|(i, (xs, gs))| {
            let (b, c) = (i / s.c, i % s.c);
            let (mean, inv) = (st[b].mean as f32, st[b].inv as f32);
            let (g, be) = (gamma[c], beta[c]);
            let mut s_dz = 0f64;
            let mut s_dzx = 0f64;
            for (xc, gc) in xs.chunks(1024).zip(gs.chunks(1024)) {
                let (mut a, mut bsum) = (0f32, 0f32);
                for (&v, &d) in xc.iter().zip(gc) {
                    let xhat = (v - mean) * inv;
                    let dz = d * act(xhat * g + be);
                    a += dz;
                    bsum += dz * xhat;
                }
                s_dz += a as f64;
                s_dzx += bsum as f64;
            }
            (s_dz, s_dzx)
        })
        .collect();
    let mut dgamma = vec![0f32; s.c];
    let mut dbeta = vec![0f32; s.c];
    for c in 0..s.c {
        dbeta[c] = (0..s.batch).map(|b| sums[b * s.c + c].0).sum::<f64>() as f32;
        dgamma[c] = (0..s.batch).map(|b| sums[b * s.c + c].1).sum::<f64>() as f32;
    }
    // Per sample: mean of dxhat and of dxhat * xhat over all C * H * W values.
    let n = (s.c * s.plane) as f64;
    let means: Vec<(f32, f32)> = (0..s.batch)
        .map(|b| {
            let (m1, m2) = (0..s.c).fold((0f64, 0f64), |(m1, m2), c| {
                let (a, bs) = sums[b * s.c + c];
                (m1 + gamma[c] as f64 * a, m2 + gamma[c] as f64 * bs)
            });
            ((m1 / n) as f32, (m2 / n) as f32)
        })
        .collect();
    // Pass 2: dx = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(p)
        .zip(x.par_chunks(p).zip(dy.par_chunks(p)))
        .enumerate()
        .for_each(|(i, (out, (xs, gs)))| {
            let (b, c) = (i / s.c, i % s.c);
            let (mean, inv) = (st[b].mean as f32, st[b].inv as f32);
            let (g, be) = (gamma[c], beta[c]);
            let (m1, m2) = means[b];
            for ((o, &v), &d) in out.iter_mut().zip(xs).zip(gs) {
                let xhat = (v - mean) * inv;
                let dxhat = d * act(xhat * g + be) * g;
                *o = inv * (dxhat - m1 - xhat * m2);
            }
        });
    (dx, dgamma, dbeta)
}

/// LeakyReLU(`slope`) on its own (the discriminator's unnormalised stages; VGG's
/// ReLUs with slope 0), any shape.
#[multiversion(targets = "simd")]
pub(crate) fn leaky_relu(x: &[f32], slope: f32) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(1 << 16)
        .zip(x.par_chunks(1 << 16))
        .for_each(|(o, i)| {
            o.iter_mut()
                .zip(i)
                .for_each(|(o, &v)| *o = if v >= 0.0 { v } else { v * slope });
        });
    y
}

/// Gradient of [`leaky_relu`] from its *output* `y`: `dy` where `y > 0`,
/// `slope * dy` elsewhere (PyTorch's rule: an input of exactly 0 gets the slope).
/// `y > 0` exactly when the input was, for any `slope >= 0`, so the autodiff
/// node keeps the output, which the next layer keeps anyway, and the input can
/// be freed.
///
/// # Panics
/// If `dy` and `y` differ in length (a shorter `dy` would silently leave zeros).
#[multiversion(targets = "simd")]
pub(crate) fn leaky_relu_backward(y: &[f32], dy: &[f32], slope: f32) -> Vec<f32> {
    assert_len("leaky_relu_backward", "dy", dy.len(), y.len());
    let mut dx = vec![0f32; y.len()];
    dx.par_chunks_mut(1 << 16)
        .zip(y.par_chunks(1 << 16).zip(dy.par_chunks(1 << 16)))
        .for_each(|(o, (ys, gs))| {
            for ((o, &v), &d) in o.iter_mut().zip(ys).zip(gs) {
                *o = if v > 0.0 { d } else { d * slope };
            }
        });
    dx
}
