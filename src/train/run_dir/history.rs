//! Metrics, sample grids and the history a resume restores.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Parses `metrics.csv` rows up to step `up_to` (columns found by header name).
/// Tolerates a crash: an unterminated or short last line, or garbage, is skipped.
pub fn read_metrics(path: &Path, up_to: usize) -> Vec<(usize, LossValues)> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let Some((header, rows)) = crate::train::metrics::complete_rows(&text) else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').collect();
    let index = |name: &str| cols.iter().position(|c| *c == name);
    let term_cols: Vec<Option<usize>> = LossValues::NAMES.iter().map(|n| index(n)).collect();
    let Some(step_col) = index("step") else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let step: usize = fields.get(step_col)?.parse().ok()?;
            if step > up_to {
                return None;
            }
            let v = |i: usize| {
                term_cols[i]
                    .and_then(|c| fields.get(c))
                    .and_then(|s| s.parse::<f32>().ok())
            };
            Some((
                step,
                LossValues {
                    g_total: v(0),
                    g_adv: v(1),
                    content: v(2),
                    style: v(3),
                    color: v(4),
                    tv: v(5),
                    d_total: v(6),
                    d_real: v(7),
                    d_fake: v(8),
                    d_gray: v(9),
                    d_smooth: v(10),
                },
            ))
        })
        .collect()
}

/// Validation photos and generator outputs of one sample step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleGrid {
    /// Step the generator had completed.
    pub step: usize,
    /// The fixed validation photos.
    pub inputs: Vec<RgbImage8>,
    /// Generator outputs, one per input.
    pub outputs: Vec<RgbImage8>,
}

/// At most this many sample grids are read back by [`read_history`] (spread evenly).
pub const MAX_HISTORY_SAMPLE_SETS: usize = 48;

/// Name of the sample grid of `step` inside `samples/`.
pub fn sample_file_name(step: usize) -> String {
    format!("step-{step:06}.png")
}

/// Reads the `samples/step-N.png` grids up to step `up_to` (inputs on top, outputs
/// below, square cells), at most `max_sets` of them spread evenly over the run.
/// Unreadable grids are skipped.
pub fn read_sample_grids(samples_dir: &Path, up_to: usize, max_sets: usize) -> Vec<SampleGrid> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(samples_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".png")?
                .parse::<usize>()
                .ok()?;
            (step <= up_to).then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    let n = found.len();
    let keep: Vec<(usize, PathBuf)> = if max_sets == 0 {
        Vec::new()
    } else if n > max_sets {
        let picks: BTreeSet<usize> = if max_sets == 1 {
            BTreeSet::from([n - 1])
        } else {
            (0..max_sets)
                .map(|i| i * (n - 1) / (max_sets - 1))
                .collect()
        };
        picks
            .into_iter()
            .filter_map(|i| found.get(i).cloned())
            .collect()
    } else {
        found
    };
    keep.into_iter()
        .filter_map(|(step, path)| {
            let grid = image::open(&path).ok()?.to_rgb8();
            let side = grid.height() / 2;
            if side == 0 {
                return None;
            }
            let cols = grid.width() / side;
            let cell = |col: u32, row: u32| {
                RgbImage8::from_image(
                    &image::imageops::crop_imm(&grid, col * side, row * side, side, side)
                        .to_image(),
                )
            };
            Some(SampleGrid {
                step,
                inputs: (0..cols).map(|c| cell(c, 0)).collect(),
                outputs: (0..cols).map(|c| cell(c, 1)).collect(),
            })
        })
        .collect()
}

/// A run's past read back from disk before it is resumed.
#[derive(Debug, Clone)]
pub struct RunHistory {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Its configuration.
    pub config: TrainConfig,
    /// Live parameters in force at the checkpoint.
    pub live: LiveParams,
    /// Metrics rows up to the checkpoint: step and losses.
    pub losses: Vec<(usize, LossValues)>,
    /// Sample grids up to the checkpoint (at most [`MAX_HISTORY_SAMPLE_SETS`]).
    pub samples: Vec<SampleGrid>,
    /// The newest intact checkpoint: step and folder (what a resume starts from).
    pub checkpoint: (usize, PathBuf),
    /// Damaged newer checkpoints that a resume will skip, in words.
    pub warnings: Vec<String>,
}

/// Reads a run's configuration, live parameters, metrics and sample grids up to its
/// newest intact checkpoint. Reads only.
pub fn read_history(run_dir: &Path) -> Result<RunHistory, RunDirError> {
    let config: TrainConfig = read_json(&run_dir.join(files::CONFIG))?;
    let intact = newest_intact_checkpoint(run_dir)?;
    let warnings = intact
        .skipped
        .iter()
        .map(|b| skipped_warning(b, intact.step, &intact.dir))
        .collect();
    let step = intact.step;
    Ok(RunHistory {
        run_dir: run_dir.to_path_buf(),
        config,
        live: intact.state.live,
        losses: read_metrics(&run_dir.join(files::METRICS), step),
        samples: read_sample_grids(&run_dir.join(files::SAMPLES), step, MAX_HISTORY_SAMPLE_SETS),
        checkpoint: (step, intact.dir),
        warnings,
    })
}

/// "checkpoint …/ckpt-000008 is damaged (…); using …/ckpt-000004 (step 4)".
pub(crate) fn skipped_warning(broken: &BrokenCheckpoint, used_step: usize, used: &Path) -> String {
    format!(
        "checkpoint {} (step {}) is damaged and was skipped ({}); using {} (step {used_step})",
        broken.dir.display(),
        broken.step,
        broken.reason,
        used.display()
    )
}
