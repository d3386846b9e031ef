//! Run directories and atomic checkpoints.
//!
//! ```text
//! checkpoints/<run>/
//!   config.json            the TrainConfig (written once, at start)
//!   model.json             what `convert` needs: upsampling mode, origin, VGG source
//!   latest.json            {"step": N, "dir": "ckpt-00000N"} — replaced atomically
//!   ckpt-00000N/           generator.bpk discriminator.bpk opt_{init,g,d}.bpk state.json
//!   metrics.csv            one row per step
//!   samples/step-00000N.png
//! ```
//! A checkpoint folder is written under a temporary name and renamed when complete,
//! then `latest.json` is replaced: a crash at any point leaves the previous
//! checkpoint intact and referenced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::LiveParams;
use super::events::Phase;
use crate::fsx::write_atomic_str;
use crate::model::{UpsampleMode, VggSource};

/// File names inside a checkpoint folder.
pub mod files {
    /// Generator weights (burnpack).
    pub const GENERATOR: &str = "generator.bpk";
    /// Discriminator weights.
    pub const DISCRIMINATOR: &str = "discriminator.bpk";
    /// Init-phase Adam state.
    pub const OPT_INIT: &str = "opt_init.bpk";
    /// Generator Adam state.
    pub const OPT_G: &str = "opt_g.bpk";
    /// Discriminator Adam state.
    pub const OPT_D: &str = "opt_d.bpk";
    /// Counters and live parameters.
    pub const STATE: &str = "state.json";
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelOrigin {
    /// Trained here.
    Trained,
    /// Imported from a foreign file.
    Imported {
        /// The file it came from.
        source: PathBuf,
    },
}

/// `model.json`: everything needed to rebuild the generator for conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// photo2anime version that wrote it.
    pub version: String,
    /// Decoder upsampling rule.
    pub upsample: UpsampleMode,
    /// Trained or imported.
    pub origin: ModelOrigin,
    /// VGG used for training (None for imports).
    pub vgg: Option<VggSource>,
    /// Training size, if trained here.
    pub image_size: Option<usize>,
}

/// `latest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestPointer {
    /// Steps completed in that checkpoint.
    pub step: usize,
    /// Folder name inside the run directory.
    pub dir: String,
}

/// `state.json` inside a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps completed.
    pub step: usize,
    /// Epoch the next step belongs to.
    pub epoch: usize,
    /// Phase the next step belongs to.
    pub phase: Phase,
    /// Live parameters in force.
    pub live: LiveParams,
    /// The dataset seed (data order and crops are functions of seed and step).
    pub seed: u64,
    /// Device description when saved.
    pub device: String,
}

/// Errors reading or writing run directories.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O failed (disk full, permissions...).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: invalid JSON: {detail}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// Weights could not be saved or loaded.
    #[error("{path}: {detail}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The folder holds no checkpoint.
    #[error("{path}: not a photo2anime model (no latest.json or generator.bpk)")]
    NotAModel {
        /// The folder.
        path: PathBuf,
    },
}

/// Reads and parses a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| CheckpointError::Json {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Serialises `value` and writes it atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CheckpointError::Json {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_atomic_str(path, &text).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Name of the checkpoint folder for `step`.
pub fn checkpoint_dir_name(step: usize) -> String {
    format!("ckpt-{step:06}")
}

/// The folder of the newest checkpoint of a run / model directory.
pub fn latest_checkpoint(run_dir: &Path) -> Result<(LatestPointer, PathBuf), CheckpointError> {
    let pointer_path = run_dir.join("latest.json");
    if !pointer_path.exists() {
        return Err(CheckpointError::NotAModel {
            path: run_dir.to_path_buf(),
        });
    }
    let pointer: LatestPointer = read_json(&pointer_path)?;
    let dir = run_dir.join(&pointer.dir);
    if !dir.join(files::GENERATOR).exists() {
        return Err(CheckpointError::NotAModel { path: dir });
    }
    Ok((pointer, dir))
}

/// Every complete checkpoint folder of a run, oldest first, with its step.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("ckpt-")?.parse::<usize>().ok()?;
            e.path()
                .join(files::GENERATOR)
                .exists()
                .then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Publishes a completed temporary folder as checkpoint `step`, repoints
/// `latest.json` and deletes all but the newest `keep` checkpoints.
pub fn publish_checkpoint(
    run_dir: &Path,
    tmp: &Path,
    step: usize,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let name = checkpoint_dir_name(step);
    let dest = run_dir.join(&name);
    if dest.exists() {
        // Saving the same step twice (e.g. "save now" then stop): replace it, the
        // pointer keeps naming the same folder so a crash here loses nothing new.
        std::fs::remove_dir_all(&dest).map_err(|source| CheckpointError::Io {
            path: dest.clone(),
            source,
        })?;
    }
    std::fs::rename(tmp, &dest).map_err(|source| CheckpointError::Io {
        path: dest.clone(),
        source,
    })?;
    if let Ok(dir) = std::fs::File::open(run_dir) {
        let _ = dir.sync_all();
    }
    write_json(
        &run_dir.join("latest.json"),
        &LatestPointer { step, dir: name },
    )?;
    let all = list_checkpoints(run_dir);
    if all.len() > keep {
        for (_, old) in &all[..all.len() - keep] {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(dest)
}

/// Lists run / model directories under `root` (those with a `latest.json`), newest first.
pub fn list_models(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("latest.json").exists())
        .map(|p| {
            let t = std::fs::metadata(p.join("latest.json"))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, p)| p).collect()
}
