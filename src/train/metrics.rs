//! `metrics.csv`: one row per step, appended and flushed as training goes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::config::LiveParams;
use super::events::{LossValues, StepStats};

/// Appends step rows to a run's `metrics.csv`.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

fn header() -> String {
    let mut cols = vec![
        "step", "epoch", "phase", "step_ms", "lr_init", "lr_g", "lr_d",
    ];
    cols.extend(LossValues::NAMES);
    cols.join(",")
}

impl MetricsWriter {
    /// Opens `path` for appending. Rows with a step greater than `keep_up_to` are
    /// dropped first, so a resumed run continues the curve without duplicates.
    pub fn open(path: &Path, keep_up_to: usize) -> std::io::Result<Self> {
        let mut kept = vec![header()];
        if let Ok(file) = File::open(path) {
            for line in BufReader::new(file).lines().skip(1) {
                let line = line?;
                let step = line.split(',').next().and_then(|s| s.parse::<usize>().ok());
                if step.is_some_and(|s| s <= keep_up_to) {
                    kept.push(line);
                }
            }
        }
        crate::fsx::write_atomic_str(path, &(kept.join("\n") + "\n"))?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one row and flushes.
    pub fn append(&mut self, stats: &StepStats, live: &LiveParams) -> std::io::Result<()> {
        let losses: Vec<String> = stats
            .losses
            .as_array()
            .iter()
            .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
            .collect();
        writeln!(
            self.file,
            "{},{},{},{:.1},{},{},{},{}",
            stats.step,
            stats.epoch,
            stats.phase.label(),
            stats.step_ms,
            live.lr_init,
            live.lr_g,
            live.lr_d,
            losses.join(",")
        )?;
        self.file.flush()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
