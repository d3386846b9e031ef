//! The run folder: the one module that reads and writes it.
//!
//! ```text
//! checkpoints/<run>/
//!   .lock                  OS file lock held by the trainer while it trains this folder
//!   config.json            the TrainConfig (written when the run starts; duration on resume)
//!   model.json             what `convert` needs: upsampling mode, origin, VGG source
//!   dataset.json           the photo and style file lists (relative path + size) the run uses
//!   latest.json            {"step": N, "dir": "ckpt-00000N"} — replaced atomically
//!   ckpt-00000N/           generator.bpk discriminator.bpk opt_{init,g,d}.bpk state.json
//!   metrics.csv            one row per step
//!   samples/step-00000N.png
//! ```
//!
//! Crash safety, and why each rule exists:
//! - A checkpoint is written under `.partial-N`, every file fsynced, the folder fsynced,
//!   then renamed to `ckpt-N` and the run folder fsynced; only then is `latest.json`
//!   switched (and the folder fsynced again). A crash at any point leaves the previous
//!   checkpoint intact; leftover `.partial-*` folders are removed at the next start.
//! - `state.json` records a blake3 hash of every weight file, so resuming detects a
//!   truncated *or* bit-damaged file (burnpack itself only notices truncation, and Burn's
//!   optimizer loader silently re-initialises states it cannot read) and falls back to
//!   the newest intact checkpoint.
//! - Old checkpoints are first renamed out of the `ckpt-` namespace (`.trash-ckpt-N`),
//!   then deleted: a kill while deleting never leaves a half-deleted `ckpt-N` that would
//!   look like a checkpoint.
//! - The folder is locked ([`RunLock`]) while trained, so two trainers never interleave
//!   their writes; the OS frees the lock when the process dies.
//! - [`DatasetRecord`] lets a resume refuse folders that changed (the data order would
//!   silently differ) before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::config::{LiveParams, TrainConfig};
use super::events::{LossValues, Phase, RgbImage8};
use crate::data::loader::DataError;
use crate::data::scan_folder;
use crate::fsx::{sync_dir, write_atomic, write_atomic_str};
use crate::model::{UpsampleMode, VggSource};

mod checkpoints;
mod dataset;
mod history;
mod listing;
mod lock;
mod weights;

pub use checkpoints::*;
pub use dataset::*;
pub use history::*;
pub use listing::*;
pub use lock::*;
pub use weights::*;

/// File names inside a run folder and inside a checkpoint folder.
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
    /// Counters, live parameters and the weight files' hashes.
    pub const STATE: &str = "state.json";
    /// Every weight file of a training checkpoint.
    pub const WEIGHTS: [&str; 5] = [GENERATOR, DISCRIMINATOR, OPT_INIT, OPT_G, OPT_D];

    /// The run's [`TrainConfig`](crate::train::TrainConfig).
    pub const CONFIG: &str = "config.json";
    /// [`ModelInfo`](super::ModelInfo).
    pub const MODEL: &str = "model.json";
    /// [`LatestPointer`](super::LatestPointer).
    pub const LATEST: &str = "latest.json";
    /// One row per step.
    pub const METRICS: &str = "metrics.csv";
    /// [`DatasetRecord`](super::DatasetRecord).
    pub const DATASET: &str = "dataset.json";
    /// The file the trainer holds an OS lock on.
    pub const LOCK: &str = ".lock";
    /// Sample grids folder.
    pub const SAMPLES: &str = "samples";

    /// Prefix of checkpoint folders (`ckpt-000500`).
    pub(crate) const CHECKPOINT_PREFIX: &str = "ckpt-";
    /// Prefix of a checkpoint being written.
    pub(crate) const PARTIAL_PREFIX: &str = ".partial-";
    /// Prefix of a checkpoint being deleted.
    pub(crate) const TRASH_PREFIX: &str = ".trash-";
    /// Prefix of a damaged checkpoint moved aside on resume (kept for inspection).
    pub(crate) const BROKEN_PREFIX: &str = ".broken-";
    /// Prefix of `fsx::write_atomic`'s temporary files.
    pub(crate) const TMP_PREFIX: &str = ".tmp-";
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
    /// blake3 (hex) of each weight file, by file name. Empty in checkpoints written
    /// before hashes were recorded; those are checked structurally only.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

/// A checkpoint that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenCheckpoint {
    /// Its step (from the folder name).
    pub step: usize,
    /// Its folder.
    pub dir: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn describe_broken(broken: &[BrokenCheckpoint]) -> String {
    if broken.is_empty() {
        return "it has no checkpoint folder".into();
    }
    broken
        .iter()
        .map(|b| format!("{}: {}", b.dir.display(), b.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Errors reading or writing run directories.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
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
    /// Another process holds the folder's lock.
    #[error(
        "{path} is being trained by another photo2anime process; wait for it to finish or stop it, then try again"
    )]
    Locked {
        /// The run folder.
        path: PathBuf,
    },
    /// A new run was asked for in a folder that already holds one.
    #[error("{path} already holds a run; resume it or choose another run name")]
    AlreadyARun {
        /// The run folder.
        path: PathBuf,
    },
    /// A file does not hold what was written (hash mismatch, step mismatch).
    #[error("{path}: damaged: {detail}")]
    Corrupt {
        /// The file or folder.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },
    /// Every checkpoint of the run is damaged (or there is none).
    #[error("{path}: no intact checkpoint to resume from ({})", describe_broken(.broken))]
    NoIntactCheckpoint {
        /// The run folder.
        path: PathBuf,
        /// Each checkpoint tried and why it was refused.
        broken: Vec<BrokenCheckpoint>,
    },
    /// The photo or style folder no longer holds what the run was started with.
    #[error("{path}: cannot resume: {detail}")]
    DatasetChanged {
        /// The run folder.
        path: PathBuf,
        /// What changed, and what to do.
        detail: String,
    },
}

/// `map_err` helper naming `path` in an I/O error.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| RunDirError::Json {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Serialises `value` and writes it atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunDirError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunDirError::Json {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_atomic_str(path, &text).map_err(io_err(path))
}
