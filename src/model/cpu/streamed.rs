//! The generator as one streamed whole-image pass, in bands of rows: the CPU's
//! exact conversion of photos too large to run whole (the untiled pass holds
//! ~7 GiB of f32 activations for a 3840x2160 photo) in one pass instead of the
//! ~6 network passes of exact tiling ([`crate::convert::tiles`]).
//!
//! GroupNorm(1, C) needs a whole layer's statistics before any of its outputs
//! can be used, so the pass goes layer by layer. Each layer reads the previous
//! one band by band, normalising and activating it on the way in (its
//! statistics are complete by then), runs its convolution for the band, merges
//! the band's moments into the layer's (Chan's rule: exact), and stores the
//! band's raw output as f16. A band of the input is dropped as soon as no later
//! band reads it, so a layer's input and output share memory: the peak is about
//! two f16 copies of the widest layer (64 channels at full resolution). Measured
//! at 3840x2160: 1.3 GiB peak RSS for the whole process (~160 bytes per pixel),
//! against 7 GiB for the untiled pass. The arithmetic is the
//! whole-image pass's (same kernels, GEMM blocks and norm formula); only the
//! stored values round to f16 (relative error 2^-11), which moves the 8-bit
//! output by at most 1/255 (`tests/tiling.rs`).

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use super::kernels::{self, ConvGeom, Map, Moments, RowBand};
use super::{Conv, CpuGenerator, Irb, Norm, NormStatistics, taps, winograd};
use crate::model::blocks::LEAKY_SLOPE;
use crate::model::upsample::source_taps;

/// Values (pixels x channels) in one band's f32 buffers: 16 MiB each, so the
/// widest layers (512 channels) still stream in bands of 8192 pixels (21 GEMM
/// blocks) and the transient buffers stay small next to the stored layers.
pub(crate) const BAND_VALUES: usize = 1 << 22;

/// Largest magnitude a band stores as f16 (whose range ends at 65504); a band
/// with a larger (or non-finite) value stays f32, so nothing overflows silently.
const F16_SAFE: f32 = 32768.0;

/// One band's values, `[c, rows, w]`.
enum Band {
    Half(Vec<f16>),
    Full(Vec<f32>),
}

/// What reading a stored layer applies to its values.
enum Read {
    /// Nothing: the input photo, and residual sums (already normalised).
    Plain,
    /// The layer's GroupNorm as a per-channel affine map, then LeakyReLU when
    /// `slope` is given (see [`kernels::norm_coefficients`]).
    Norm {
        a: Vec<f32>,
        b: Vec<f32>,
        slope: Option<f32>,
    },
}

impl Read {
    fn norm(m: Moments, n: &Norm, slope: Option<f32>) -> Self {
        let (a, b) = kernels::norm_coefficients(m, n.eps, &n.gamma, &n.beta);
        Read::Norm { a, b, slope }
    }
}

/// A layer's values over the whole image `[c, h, w]`, as bands of `band` rows
/// (the last may be shorter); bands no later reader needs are dropped.
struct Rows {
    c: usize,
    h: usize,
    w: usize,
    band: usize,
    bands: Vec<Option<Band>>,
    read: Read,
}

impl Rows {
    fn new(c: usize, h: usize, w: usize, band: usize) -> Self {
        Self {
            c,
            h,
            w,
            band: band.max(1),
            bands: Vec::with_capacity(h.div_ceil(band.max(1))),
            read: Read::Plain,
        }
    }

    /// `map` as bands of `band` rows, stored exactly (f32).
    fn from_map(map: &Map, band: usize) -> Self {
        let mut rows = Self::new(map.c, map.h, map.w, band);
        for r0 in (0..map.h).step_by(rows.band) {
            let r1 = (r0 + rows.band).min(map.h);
            let mut data = Vec::with_capacity(map.c * (r1 - r0) * map.w);
            for c in 0..map.c {
                data.extend_from_slice(
                    &map.data[(c * map.h + r0) * map.w..(c * map.h + r1) * map.w],
                );
            }
            rows.bands.push(Some(Band::Full(data)));
        }
        rows
    }

    /// Rows `[r0, r1)` of band `i`.
    fn band_rows(&self, i: usize) -> (usize, usize) {
        (i * self.band, ((i + 1) * self.band).min(self.h))
    }

    /// Appends the next band (`[c, rows, w]`), as f16 unless a value is out of its range.
    ///
    /// # Panics
    /// If `m` is not the next band's shape.
    fn push(&mut self, m: Map) {
        let (r0, r1) = self.band_rows(self.bands.len());
        assert!(
            m.c == self.c && m.w == self.w && m.h == r1 - r0 && r0 < self.h,
            "band {} of a [{}, {}, {}] layer cannot be [{}, {}, {}]",
            self.bands.len(),
            self.c,
            self.h,
            self.w,
            m.c,
            m.h,
            m.w
        );
        let plane = m.plane().max(1);
        let mut half = vec![f16::ZERO; m.data.len()];
        let fits = half
            .par_chunks_mut(plane)
            .zip(m.data.par_chunks(plane))
            .map(|(d, s)| {
                d.convert_from_f32_slice(s);
                s.iter().all(|v| v.abs() <= F16_SAFE)
            })
            .reduce(|| true, |a, b| a && b);
        self.bands.push(Some(if fits {
            Band::Half(half)
        } else {
            Band::Full(m.data)
        }));
    }

    /// Rows `[lo, hi)` as f32 with [`Read`] applied: `[c, hi - lo, w]`.
    ///
    /// # Panics
    /// If a band holding one of those rows was released or not yet written.
    fn read(&self, lo: usize, hi: usize) -> Map {
        assert!(lo < hi && hi <= self.h, "rows {lo}..{hi} of {}", self.h);
        let parts: Vec<(&Band, usize, usize)> = (lo / self.band..hi.div_ceil(self.band))
            .map(|i| {
                let (b0, b1) = self.band_rows(i);
                match self.bands.get(i) {
                    Some(Some(band)) => (band, b0, b1),
                    _ => panic!("rows {lo}..{hi} read after band {i} was released"),
                }
            })
            .collect();
        let (n, w) = (hi - lo, self.w);
        let mut out = Map::zeros(self.c, n, w);
        out.data
            .par_chunks_mut((n * w).max(1))
            .enumerate()
            .for_each(|(c, dst)| {
                for &(band, b0, b1) in &parts {
                    let (r0, r1) = (lo.max(b0), hi.min(b1));
                    let src = (c * (b1 - b0) + r0 - b0) * w..(c * (b1 - b0) + r1 - b0) * w;
                    let d = &mut dst[(r0 - lo) * w..(r1 - lo) * w];
                    match band {
                        Band::Half(v) => v[src].convert_to_f32_slice(d),
                        Band::Full(v) => d.copy_from_slice(&v[src]),
                    }
                }
                if let Read::Norm { a, b, slope } = &self.read {
                    kernels::affine_act(dst, a[c], b[c], *slope);
                }
            });
        out
    }

    /// Drops every band that ends at or before `row`.
    fn release_below(&mut self, row: usize) {
        let band = self.band;
        for (i, b) in self.bands.iter_mut().enumerate() {
            if (i + 1) * band <= row {
                *b = None;
            }
        }
    }
}

/// The kernel a layer runs, picked as the whole-image pass picks it.
#[derive(Clone, Copy)]
enum Kernel<'a> {
    /// 1x1, no padding, no bias: `w` `[cout, cin]`.
    Pointwise { w: &'a [f32], cout: usize },
    /// Depthwise 3x3, reflect padding 1, with a bias.
    Depthwise { w: &'a [f32], bias: &'a [f32] },
    /// k x k, reflect-padded, strided.
    Dense(&'a Conv),
}

impl<'a> Kernel<'a> {
    fn of(c: &'a Conv) -> Self {
        match (&c.bias, c.k) {
            (_, 1) => Kernel::Pointwise {
                w: &c.w,
                cout: c.cout,
            },
            (Some(bias), _) => Kernel::Depthwise { w: &c.w, bias },
            (None, _) => Kernel::Dense(c),
        }
    }

    /// `(k, stride, pad_top, pad_bottom, pad_left, pad_right)`.
    fn geometry(&self) -> (usize, usize, usize, usize, usize, usize) {
        match self {
            Kernel::Pointwise { .. } => (1, 1, 0, 0, 0, 0),
            Kernel::Depthwise { .. } => (3, 1, 1, 1, 1, 1),
            Kernel::Dense(c) => (
                c.k,
                c.stride,
                c.pad_top,
                c.pad_bottom,
                c.pad_left,
                c.pad_right,
            ),
        }
    }
}

/// One streamed pass of a [`CpuGenerator`]: its weights, the band size and the
/// statistics policy with the norm-layer counter.
struct Stream<'a> {
    g: &'a CpuGenerator,
    band_values: usize,
    policy: Option<&'a mut dyn NormStatistics>,
    layer: usize,
}

impl Stream<'_> {
    /// How the next norm layer reads its input, whose own moments are `m`.
    fn norm(&mut self, m: Moments, n: &Norm, slope: Option<f32>) -> Read {
        let layer = self.layer;
        self.layer += 1;
        let m = match self.policy.as_deref_mut() {
            Some(p) => p.choose(layer, m),
            None => m,
        };
        Read::norm(m, n, slope)
    }

    /// Rows `[lo, hi)` of the layer's input: `src` itself, or `src` bilinearly
    /// upsampled to `up` (on the whole image's sampling grid).
    fn input(&self, src: &Rows, lo: usize, hi: usize, up: Option<[usize; 2]>) -> Map {
        let Some([uh, uw]) = up else {
            return src.read(lo, hi);
        };
        let ac = self.g.upsample.align_corners();
        let (slo, shi) = source_rows(src.h, uh, ac, lo, hi);
        let m = src.read(slo, shi);
        let rows = taps(src.h, uh, ac, lo, hi - lo, slo, shi - slo);
        let cols = taps(src.w, uw, ac, 0, uw, 0, src.w);
        kernels::resample(&m, &rows, &cols)
    }

    /// Runs `kernel` over `src` (upsampled to `up` first when given), band by
    /// band: the raw output and its whole-image moments. Unless `keep`, bands of
    /// `src` are released once read for the last time.
    fn layer(
        &self,
        src: &mut Rows,
        keep: bool,
        kernel: Kernel,
        up: Option<[usize; 2]>,
    ) -> (Rows, Moments) {
        let [ih, iw] = up.unwrap_or([src.h, src.w]);
        let (k, stride, pt, pb, pl, pr) = kernel.geometry();
        let oh = (ih + pt + pb - k) / stride + 1;
        let ow = (iw + pl + pr - k) / stride + 1;
        let cout = match kernel {
            Kernel::Pointwise { cout, .. } => cout,
            Kernel::Depthwise { .. } => src.c,
            Kernel::Dense(c) => c.cout,
        };
        let band = self.band_values / (ow.max(1) * cout.max(src.c)).max(1);
        let band = band.max(1);
        let mut out = Rows::new(cout, oh, ow, band);
        let mut moments = Moments::default();
        // Input rows (of the conv's input) that output rows r0..r1 read.
        let needs = |r0: usize, r1: usize| {
            let rows = (r0..r1).flat_map(|oy| {
                (0..k)
                    .map(move |ky| kernels::reflect((oy * stride + ky) as isize - pt as isize, ih))
            });
            let (lo, hi) = rows.fold((usize::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r + 1)));
            (lo, hi)
        };
        for r0 in (0..oh).step_by(band) {
            let r1 = (r0 + band).min(oh);
            let (lo, hi) = needs(r0, r1);
            let x = self.input(src, lo, hi, up);
            let rows = RowBand {
                full_h: ih,
                in_row0: lo,
                out_row0: r0,
            };
            let y = match kernel {
                Kernel::Pointwise { w, cout } => kernels::conv1x1(&x, w, cout),
                Kernel::Depthwise { w, bias } => {
                    kernels::depthwise3x3_band(&x, w, bias, rows, r1 - r0)
                }
                Kernel::Dense(Conv {
                    winograd: Some(u), ..
                }) => winograd::conv_band(&x, u, r1 - r0, rows),
                Kernel::Dense(c) => {
                    let g = ConvGeom {
                        k,
                        stride,
                        pad_left: pl,
                        pad_top: pt,
                        oh: r1 - r0,
                        ow,
                    };
                    kernels::conv_reflect_band(&x, &c.w, cout, g, rows)
                }
            };
            moments = moments.merge(kernels::moments(&y, 0..y.h, 0..y.w));
            out.push(y);
            if !keep && r1 < oh {
                let (next_lo, _) = needs(r1, (r1 + band).min(oh));
                let first = match up {
                    None => next_lo,
                    Some([uh, _]) => {
                        source_rows(
                            src.h,
                            uh,
                            self.g.upsample.align_corners(),
                            next_lo,
                            next_lo + 1,
                        )
                        .0
                    }
                };
                src.release_below(first);
            }
        }
        (out, moments)
    }

    /// Conv, GroupNorm, LeakyReLU (the norm applied when the next layer reads).
    fn cnl(&mut self, src: &mut Rows, keep: bool, l: &super::Cnl, up: Option<[usize; 2]>) -> Rows {
        let (mut y, m) = self.layer(src, keep, Kernel::of(&l.conv), up);
        y.read = self.norm(m, &l.norm, Some(LEAKY_SLOPE as f32));
        y
    }

    /// The inverted residual block; with a residual, the sum is stored normalised.
    fn irb(&mut self, x: &mut Rows, b: &Irb) -> Rows {
        let mut e = self.cnl(x, b.residual, &b.expand, None);
        let mut d = self.cnl(&mut e, false, &b.depthwise, None);
        drop(e);
        let pointwise = Kernel::Pointwise {
            w: &b.project,
            cout: b.cout,
        };
        let (mut p, m) = self.layer(&mut d, false, pointwise, None);
        p.read = self.norm(m, &b.norm, None);
        if !b.residual {
            return p;
        }
        let mut sum = Rows::new(p.c, p.h, p.w, p.band);
        for r0 in (0..p.h).step_by(p.band) {
            let r1 = (r0 + p.band).min(p.h);
            let mut y = p.read(r0, r1);
            let skip = x.read(r0, r1);
            y.data
                .par_iter_mut()
                .zip(&skip.data)
                .for_each(|(a, b)| *a += b);
            sum.push(y);
            p.release_below(r1);
            x.release_below(r1);
        }
        sum
    }

    /// The output conv and tanh: `[3, h, w]`.
    fn output(&self, e: &mut Rows) -> Map {
        let (h, w) = (e.h, e.w);
        let mut out = Map::zeros(3, h, w);
        for r0 in (0..h).step_by(e.band) {
            let r1 = (r0 + e.band).min(h);
            let y = kernels::conv1x1(&e.read(r0, r1), &self.g.out, 3);
            for c in 0..3 {
                let dst = &mut out.data[(c * h + r0) * w..(c * h + r1) * w];
                for (d, s) in dst
                    .iter_mut()
                    .zip(&y.data[c * y.plane()..(c + 1) * y.plane()])
                {
                    *d = s.tanh();
                }
            }
            e.release_below(r1);
        }
        out
    }
}

/// Source rows `[lo, hi)` that upsampled rows `[u0, u1)` (of `uh`) interpolate from `sh` rows.
fn source_rows(sh: usize, uh: usize, align_corners: bool, u0: usize, u1: usize) -> (usize, usize) {
    (u0..u1)
        .map(|u| source_taps(sh, uh, align_corners, u))
        .fold((usize::MAX, 0), |(lo, hi), (i0, i1, _)| {
            (lo.min(i0), hi.max(i1 + 1))
        })
}

impl CpuGenerator {
    /// One image `[3, H, W]` in [-1, 1] -> `[3, H, W]`, as [`CpuGenerator::forward`]
    /// computes it, streamed layer by layer in bands of about `band_values`
    /// values of the wider of a layer's input and output (see the module docs).
    ///
    /// # Panics
    /// If `x` is not a valid 3-channel map (the kernels check their operands).
    pub(crate) fn forward_streamed(&self, x: &Map, band_values: usize) -> Map {
        self.forward_streamed_with(x, band_values, None)
    }

    /// [`Self::forward_streamed`] with every GroupNorm's statistics chosen by
    /// `policy` from its input's own (as [`Self::forward_with_statistics`]).
    ///
    /// # Panics
    /// If `x` is not a valid 3-channel map.
    pub(crate) fn forward_streamed_with<'a>(
        &'a self,
        x: &Map,
        band_values: usize,
        policy: Option<&'a mut (dyn NormStatistics + 'a)>,
    ) -> Map {
        x.assert_valid("forward_streamed");
        let mut s = Stream {
            g: self,
            band_values: band_values.max(1),
            policy,
            layer: 0,
        };
        let size = [x.h, x.w];
        let mut y = Rows::from_map(x, band_values / (32 * x.w.max(1)));
        for l in &self.block_a {
            y = s.cnl(&mut y, false, l, None);
        }
        let half = [y.h, y.w];
        for l in &self.block_b {
            y = s.cnl(&mut y, false, l, None);
        }
        y = s.cnl(&mut y, false, &self.c_head, None);
        for b in &self.irbs {
            y = s.irb(&mut y, b);
        }
        y = s.cnl(&mut y, false, &self.c_tail, None);
        for (i, l) in self.block_d.iter().enumerate() {
            let up = (i == 0).then(|| self.upsample.output_size(y.h, y.w, half));
            y = s.cnl(&mut y, false, l, up);
        }
        for (i, l) in self.block_e.iter().enumerate() {
            let up = (i == 0).then(|| self.upsample.output_size(y.h, y.w, size));
            y = s.cnl(&mut y, false, l, up);
        }
        s.output(&mut y)
    }
}

/// Peak bytes of [`CpuGenerator::forward_streamed`] on an `h` x `w` image, for
/// choosing it over tiling: two f16 copies of a 64-channel full-resolution
/// layer (128 bytes per pixel; a layer's input and output share memory as bands
/// are released) plus the f32 input and output planes and 8-bit images around
/// the pass (~32), and the transient band buffers.
pub(crate) fn streamed_peak_bytes(h: usize, w: usize) -> u64 {
    (h * w) as u64 * 160 + 8 * BAND_VALUES as u64 * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_across_bands_and_apply_the_norm() {
        let map = Map {
            c: 2,
            h: 5,
            w: 3,
            data: (0..30).map(|i| i as f32).collect(),
        };
        let mut rows = Rows::from_map(&map, 2);
        let m = rows.read(1, 4);
        assert_eq!(
            m.data,
            [
                3., 4., 5., 6., 7., 8., 9., 10., 11., 18., 19., 20., 21., 22., 23., 24., 25., 26.
            ]
        );
        rows.read = Read::Norm {
            a: vec![2.0, -1.0],
            b: vec![1.0, 0.0],
            slope: Some(0.5),
        };
        // Channel 0: 2v + 1; channel 1: -v, then LeakyReLU(0.5).
        let m = rows.read(4, 5);
        assert_eq!(m.data, [25., 27., 29., -13.5, -14., -14.5]);
        rows.release_below(4);
        assert!(rows.bands[0].is_none() && rows.bands[1].is_none() && rows.bands[2].is_some());
    }

    #[test]
    fn bands_round_to_f16_unless_out_of_its_range() {
        let mut rows = Rows::new(1, 2, 2, 1);
        rows.push(Map {
            c: 1,
            h: 1,
            w: 2,
            data: vec![1.0 / 3.0, -2.5],
        });
        rows.push(Map {
            c: 1,
            h: 1,
            w: 2,
            data: vec![1.0 / 3.0, 70000.0],
        });
        let m = rows.read(0, 2);
        // 1/3 in f16 is 0.33325195 (11-bit significand); the second band is kept f32.
        assert_eq!(m.data, [0.333_251_95, -2.5, 1.0 / 3.0, 70000.0]);
    }
}
