//! Temporal stability of the generator's GroupNorm statistics, and the flicker
//! measure.
//!
//! Every GroupNorm(1, C) normalises with the mean and variance of its whole
//! input. Frame by frame those move with noise and small motion, and since each
//! layer rescales the whole frame by them, brightness and colour pump across the
//! clip. [`TemporalNorm`] normalises each layer with an exponential moving
//! average over frames of that layer's statistics instead (the frame's own moments
//! mixed in with weight `alpha`, computed after the earlier layers were
//! normalised the same way). A scene cut — the frame's own statistics far from
//! the average in the first layers, which see the picture itself — resets the
//! average, so a new shot is not painted with the last one's statistics.

use image::RgbImage;

use crate::model::cpu::NormStatistics;
use crate::model::cpu::kernels::Moments;

/// Share of the current frame in the smoothed statistics: an average over about
/// `1 / alpha` = 50 frames (two seconds at 25 fps; scene cuts reset it at once).
///
/// Why so long: a frame's own moments at layer L are measured after the earlier
/// layers were normalised with the *average*, so the part of a change the average
/// did not absorb reaches every later layer and adds up with depth (24 norm
/// layers). Measured on the flashing clip of `tests/video.rs` (the pumping of a
/// static part of the frame, over the noise floor, against per-frame
/// statistics): share 0.3 pumps *more* than per-frame statistics (1.36x), 0.1
/// leaves 57%, 0.03 leaves 10%, 0.02 7%, 0.01 5%.
pub const DEFAULT_ALPHA: f64 = 0.02;

/// Norm layers whose statistics are checked for a scene cut: the first block's,
/// computed from the picture by two convolutions.
const CUT_LAYERS: usize = 2;

/// Distance ([`cut_distance`]) above which a frame starts a new shot: a shift of
/// a tenth of a standard deviation in a first layer's mean, or of ~22% in its
/// spread. Measured (`tests/video.rs`): consecutive frames of a panning, zooming,
/// noisy shot 0.002-0.004; a cut between two demo photos 0.25.
pub const CUT_DISTANCE: f64 = 0.1;

/// How far `own` (a frame's moments) is from `avg` (the smoothed ones): the mean's
/// shift in units of the average's standard deviation plus the log ratio of the
/// standard deviations.
fn cut_distance(avg: Moments, own: Moments) -> f64 {
    let eps = 1e-12;
    let (va, vo) = (avg.var() + eps, own.var() + eps);
    (own.mean - avg.mean).abs() / va.sqrt() + 0.5 * (vo / va).ln().abs()
}

/// Exponential moving average of every norm layer's statistics across frames,
/// reset at scene cuts. Call [`TemporalNorm::start_frame`] before each frame.
#[derive(Debug, Clone)]
pub struct TemporalNorm {
    alpha: f64,
    smoothed: Vec<Option<Moments>>,
    cut_in_frame: bool,
    cuts: u64,
}

impl TemporalNorm {
    /// `alpha` in (0, 1]: the current frame's share (1 = per-frame statistics).
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha: alpha.clamp(1e-3, 1.0),
            smoothed: Vec::new(),
            cut_in_frame: false,
            cuts: 0,
        }
    }

    /// A new frame follows.
    pub fn start_frame(&mut self) {
        self.cut_in_frame = false;
    }

    /// Scene cuts found so far.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }
}

impl NormStatistics for TemporalNorm {
    fn choose(&mut self, layer: usize, own: Moments) -> Moments {
        if self.smoothed.len() <= layer {
            self.smoothed.resize(layer + 1, None);
        }
        let chosen = match self.smoothed[layer] {
            None => own,
            Some(avg) => {
                if !self.cut_in_frame && layer < CUT_LAYERS && cut_distance(avg, own) > CUT_DISTANCE
                {
                    self.cut_in_frame = true;
                    self.cuts += 1;
                }
                if self.cut_in_frame {
                    own
                } else {
                    let a = self.alpha;
                    let mean = (1.0 - a) * avg.mean + a * own.mean;
                    let var = (1.0 - a) * avg.var() + a * own.var();
                    Moments {
                        n: own.n,
                        mean,
                        m2: var * own.n,
                    }
                }
            }
        };
        self.smoothed[layer] = Some(chosen);
        chosen
    }
}

/// Mean absolute difference between consecutive frames, in 8-bit levels (NaN for
/// fewer than two frames or frames of different sizes).
pub fn temporal_difference(frames: &[RgbImage]) -> f64 {
    let mut total = 0.0;
    let mut pairs = 0usize;
    for w in frames.windows(2) {
        if w[0].dimensions() != w[1].dimensions() {
            return f64::NAN;
        }
        let sum: u64 = w[0]
            .as_raw()
            .iter()
            .zip(w[1].as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        total += sum as f64 / w[0].as_raw().len().max(1) as f64;
        pairs += 1;
    }
    if pairs == 0 {
        f64::NAN
    } else {
        total / pairs as f64
    }
}

/// Flicker of a conversion: how much more the output changes from frame to frame
/// than the input did ([`temporal_difference`] of `outputs` over that of
/// `inputs`). 1 means the output moves exactly as much as the clip.
pub fn flicker_ratio(inputs: &[RgbImage], outputs: &[RgbImage]) -> f64 {
    temporal_difference(outputs) / temporal_difference(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mean: f64, var: f64) -> Moments {
        Moments {
            n: 100.0,
            mean,
            m2: var * 100.0,
        }
    }

    /// Hand-computed: the first frame keeps its own statistics, the second mixes
    /// 10% in, and a cut in layer 0 resets every layer of that frame.
    #[test]
    fn averages_and_resets_at_cuts() {
        let mut t = TemporalNorm::new(0.1);
        t.start_frame();
        assert_eq!(t.choose(0, m(1.0, 4.0)), m(1.0, 4.0));
        assert_eq!(t.choose(1, m(0.0, 1.0)), m(0.0, 1.0));
        t.start_frame();
        let a = t.choose(0, m(1.1, 4.1)); // distance 0.05 + 0.0123: same shot
        assert!(
            (a.mean - 1.01).abs() < 1e-12 && (a.var() - 4.01).abs() < 1e-12,
            "{a:?}"
        );
        let b = t.choose(1, m(0.09, 1.0)); // distance 0.09
        assert!((b.mean - 0.009).abs() < 1e-12, "{b:?}");
        assert_eq!(t.cuts(), 0);
        t.start_frame();
        assert_eq!(t.choose(0, m(5.0, 4.0)), m(5.0, 4.0)); // 1.99 sd away: a cut
        assert_eq!(t.choose(1, m(0.3, 1.0)), m(0.3, 1.0)); // the whole frame resets
        assert_eq!(t.cuts(), 1);
    }

    #[test]
    fn flicker_is_the_ratio_of_frame_differences() {
        let flat = |v: u8| RgbImage::from_pixel(4, 2, image::Rgb([v, v, v]));
        let inputs = [flat(10), flat(12), flat(14)];
        let outputs = [flat(100), flat(103), flat(106)];
        assert!((flicker_ratio(&inputs, &outputs) - 1.5).abs() < 1e-12);
        assert!(flicker_ratio(&inputs[..1], &outputs[..1]).is_nan());
        assert!(flicker_ratio(&[flat(1), flat(1)], &[flat(1), flat(1)]).is_nan());
    }
}
