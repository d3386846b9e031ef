//! `metrics.csv`: one row per step, appended and flushed as training goes.
//!
//! A process killed mid-append leaves an unterminated or short last line; every
//! reader here skips such a line (see [`complete_rows`]) instead of keeping half a row.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::LiveParams;
use super::events::{LossValues, StepStats};

/// Appends step rows to a run's `metrics.csv`.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

/// The header line (no newline).
pub(crate) fn header() -> String {
    let mut cols = vec![
        "step", "epoch", "phase", "step_ms", "lr_init", "lr_g", "lr_d",
    ];
    cols.extend(LossValues::NAMES);
    cols.join(",")
}

/// Splits a metrics file into its header and its complete rows: newline-terminated
/// lines with exactly as many fields as the header and a numeric step. `None` when
/// there is no complete header line.
pub(crate) fn complete_rows(text: &str) -> Option<(&str, Vec<&str>)> {
    // Only text up to the last newline was written completely.
    let end = text.rfind('\n')?;
    let mut lines = text[..end]
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    let header = lines.next()?;
    let columns = header.split(',').count();
    let rows = lines
        .filter(|line| {
            line.split(',').count() == columns
                && line
                    .split(',')
                    .next()
                    .is_some_and(|s| s.parse::<usize>().is_ok())
        })
        .collect();
    Some((header, rows))
}

impl MetricsWriter {
    /// Opens `path` for appending. Rows with a step greater than `keep_up_to` are
    /// dropped first, so a resumed run continues the curve without duplicates, and
    /// so is a row cut short by a crash.
    pub fn open(path: &Path, keep_up_to: usize) -> std::io::Result<Self> {
        let header = header();
        let mut kept = vec![header.clone()];
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if let Some((_, rows)) = complete_rows(&text) {
                    kept.extend(
                        rows.into_iter()
                            .filter(|line| {
                                line.split(',')
                                    .next()
                                    .and_then(|s| s.parse::<usize>().ok())
                                    .is_some_and(|s| s <= keep_up_to)
                            })
                            .map(str::to_string),
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
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
        // One write call per row, so a kill leaves at most one partial line.
        let row = format!(
            "{},{},{},{:.1},{},{},{},{}\n",
            stats.step,
            stats.epoch,
            stats.phase.label(),
            stats.step_ms,
            live.lr_init,
            live.lr_g,
            live.lr_d,
            losses.join(",")
        );
        self.file.write_all(row.as_bytes())?;
        self.file.flush()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
