//! Bounded loss history: per-frame plotting cost stays constant however long a run
//! is (the burn-train approach: when full, halve the points and double the stride).

use crate::train::LossValues;

/// Points kept per series before it is compacted.
pub const SERIES_CAPACITY: usize = 1024;

/// One loss term's history: at most [`SERIES_CAPACITY`] points, each the mean of
/// `stride` consecutive steps.
#[derive(Debug, Clone)]
pub struct BoundedSeries {
    capacity: usize,
    stride: usize,
    points: Vec<[f64; 2]>,
    /// The bucket being filled: sum of values, count, last step.
    pending: (f64, usize, f64),
}

impl Default for BoundedSeries {
    fn default() -> Self {
        Self::with_capacity(SERIES_CAPACITY)
    }
}

impl BoundedSeries {
    /// An empty series keeping at most `capacity` (at least 2) points.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            stride: 1,
            points: Vec::new(),
            pending: (0.0, 0, 0.0),
        }
    }

    /// Adds the value of one step.
    pub fn push(&mut self, step: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let (sum, count, _) = self.pending;
        self.pending = (sum + value, count + 1, step);
        if count + 1 >= self.stride {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let (sum, count, step) = self.pending;
        if count == 0 {
            return;
        }
        self.points.push([step, sum / count as f64]);
        self.pending = (0.0, 0, 0.0);
        if self.points.len() >= self.capacity {
            // Merge neighbours: x of the later point, mean of both values.
            self.points = self
                .points
                .chunks(2)
                .map(|c| {
                    [
                        c[c.len() - 1][0],
                        c.iter().map(|p| p[1]).sum::<f64>() / c.len() as f64,
                    ]
                })
                .collect();
            self.stride *= 2;
        }
    }

    /// The stored points plus the partial bucket, oldest first.
    pub fn points(&self) -> impl Iterator<Item = [f64; 2]> + '_ {
        let (sum, count, step) = self.pending;
        let partial = (count > 0).then(|| [step, sum / count as f64]);
        self.points.iter().copied().chain(partial)
    }

    /// Number of points [`BoundedSeries::points`] yields.
    pub fn len(&self) -> usize {
        self.points.len() + usize::from(self.pending.1 > 0)
    }

    /// Whether no value was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps per stored point.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// Every loss term's [`BoundedSeries`], in [`LossValues::NAMES`] order.
#[derive(Debug, Clone, Default)]
pub struct LossHistory {
    series: [BoundedSeries; 11],
}

impl LossHistory {
    /// Records the losses of `step` (terms not computed in the phase are skipped).
    pub fn push(&mut self, step: usize, losses: &LossValues) {
        for (series, value) in self.series.iter_mut().zip(losses.as_array()) {
            if let Some(v) = value {
                series.push(step as f64, v as f64);
            }
        }
    }

    /// The series of term `index` ([`LossValues::NAMES`] order).
    pub fn series(&self, index: usize) -> Option<&BoundedSeries> {
        self.series.get(index)
    }

    /// Total points over every term.
    pub fn total_points(&self) -> usize {
        self.series.iter().map(BoundedSeries::len).sum()
    }
}

/// Exponential moving average of `points` with factor `smoothing` in `[0, 1)`
/// (0 returns the values unchanged), debiased like TensorBoard's smoothing.
pub fn ema(points: impl Iterator<Item = [f64; 2]>, smoothing: f64) -> Vec<[f64; 2]> {
    let s = smoothing.clamp(0.0, 0.999);
    let mut acc = 0.0;
    let mut weight = 0.0;
    points
        .map(|[x, y]| {
            acc = s * acc + (1.0 - s) * y;
            weight = s * weight + (1.0 - s);
            [x, acc / weight.max(1e-12)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_stays_bounded_and_keeps_the_mean() {
        let mut s = BoundedSeries::with_capacity(8);
        for step in 1..=1000 {
            s.push(step as f64, 2.0);
        }
        assert!(s.len() <= 8, "len {}", s.len());
        assert!(s.stride() > 1);
        assert!(s.points().all(|p| (p[1] - 2.0).abs() < 1e-9));
        let last = s.points().last().map(|p| p[0]).unwrap_or_default();
        assert!(last > 900.0, "last x {last}");
    }

    #[test]
    fn ema_of_a_constant_is_the_constant() {
        let pts = (0..10).map(|i| [i as f64, 3.0]);
        assert!(ema(pts, 0.9).iter().all(|p| (p[1] - 3.0).abs() < 1e-9));
    }
}
