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

// ---------------------------------------------------------------------------------
// Weights and optimizer files

/// Writes serialised weights or optimizer state atomically, naming the file on
/// error; returns the blake3 hash (hex) of what was written.
fn write_encoded<B: std::ops::Deref<Target = [u8]>, E: ToString>(
    path: &Path,
    encoded: Result<B, E>,
) -> Result<String, RunDirError> {
    let bytes = encoded.map_err(|e| RunDirError::Weights {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(io_err(path))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// Saves `module`'s weights as burnpack at `path` (atomically); returns its blake3 hex.
pub(crate) fn save_module<M: Module>(module: M, path: &Path) -> Result<String, RunDirError> {
    write_encoded(path, module.into_record().into_bytes())
}

/// Loads burnpack weights saved by this crate into `module`.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M, RunDirError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let weights_err = |e: burn::store::RecordError| RunDirError::Weights {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(weights_err)?;
    module.try_load_record(record).map_err(weights_err)
}

/// Saves an optimizer's state at `path` (atomically); returns its blake3 hex.
pub(crate) fn save_optimizer(
    optimizer: &ModuleOptimizer,
    path: &Path,
) -> Result<String, RunDirError> {
    write_encoded(path, optimizer.into_bytes())
}

/// Restores an optimizer's state from `path`.
pub(crate) fn load_optimizer(
    optimizer: ModuleOptimizer,
    path: &Path,
) -> Result<ModuleOptimizer, RunDirError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| RunDirError::Weights {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

// ---------------------------------------------------------------------------------
// Checkpoints

/// Name of the checkpoint folder for `step`.
pub fn checkpoint_dir_name(step: usize) -> String {
    format!("{}{step:06}", files::CHECKPOINT_PREFIX)
}

/// The step of a `ckpt-NNNNNN` folder name.
fn checkpoint_step(name: &str) -> Option<usize> {
    name.strip_prefix(files::CHECKPOINT_PREFIX)?.parse().ok()
}

/// The folder `latest.json` names (it must hold a generator). Used to convert with a
/// model folder; resuming uses [`newest_intact_checkpoint`] instead.
pub fn latest_checkpoint(run_dir: &Path) -> Result<(LatestPointer, PathBuf), RunDirError> {
    let pointer_path = run_dir.join(files::LATEST);
    if !pointer_path.exists() {
        return Err(RunDirError::NotAModel {
            path: run_dir.to_path_buf(),
        });
    }
    let pointer: LatestPointer = read_json(&pointer_path)?;
    let dir = run_dir.join(&pointer.dir);
    if !dir.join(files::GENERATOR).exists() {
        return Err(RunDirError::NotAModel { path: dir });
    }
    Ok((pointer, dir))
}

/// Every `ckpt-*` folder of a run, whatever it holds, newest first.
fn checkpoint_folders(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((checkpoint_step(&e.file_name().to_string_lossy())?, e.path())))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    found
}

/// Every checkpoint folder of a run that holds a generator, oldest first, with its step.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = checkpoint_folders(run_dir)
        .into_iter()
        .filter(|(_, dir)| dir.join(files::GENERATOR).exists())
        .collect();
    found.reverse();
    found
}

/// Checks one training checkpoint without a device: `state.json` parses and names the
/// folder's step, every weight file is present and matches its recorded blake3 hash
/// (or, for checkpoints written before hashes were recorded, is a complete burnpack).
pub fn verify_checkpoint(dir: &Path, step: usize) -> Result<TrainState, RunDirError> {
    let state: TrainState = read_json(&dir.join(files::STATE))?;
    if state.step != step {
        return Err(RunDirError::Corrupt {
            path: dir.join(files::STATE),
            detail: format!("it says step {} in the folder of step {step}", state.step),
        });
    }
    for name in files::WEIGHTS {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        match state.checksums.get(name) {
            Some(expected) => {
                let actual = blake3::hash(&bytes).to_hex();
                if actual.as_str() != expected.as_str() {
                    return Err(RunDirError::Corrupt {
                        path,
                        detail: format!(
                            "content differs from what was saved ({} bytes, blake3 {}…, expected {}…)",
                            bytes.len(),
                            &actual.as_str()[..12],
                            expected.get(..12).unwrap_or(expected)
                        ),
                    });
                }
            }
            // No hash recorded: a burnpack's header and sizes at least prove it whole.
            None => {
                ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
                    RunDirError::Weights {
                        path: path.clone(),
                        detail: e.to_string(),
                    }
                })?;
            }
        }
    }
    Ok(state)
}

/// The newest checkpoint that passes [`verify_checkpoint`].
#[derive(Debug, Clone)]
pub struct IntactCheckpoint {
    /// Its step.
    pub step: usize,
    /// Its folder.
    pub dir: PathBuf,
    /// Its `state.json`.
    pub state: TrainState,
    /// Newer checkpoints that were skipped, newest first.
    pub skipped: Vec<BrokenCheckpoint>,
}

/// Checkpoint folders newest first, for callers that try each in turn (see
/// [`newest_intact_checkpoint`]).
pub(crate) fn checkpoint_candidates(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    checkpoint_folders(run_dir)
}

/// The newest checkpoint of `run_dir` whose files are intact, and the newer ones that
/// are not. Reads only.
pub fn newest_intact_checkpoint(run_dir: &Path) -> Result<IntactCheckpoint, RunDirError> {
    let mut skipped = Vec::new();
    for (step, dir) in checkpoint_folders(run_dir) {
        match verify_checkpoint(&dir, step) {
            Ok(state) => {
                return Ok(IntactCheckpoint {
                    step,
                    dir,
                    state,
                    skipped,
                });
            }
            Err(e) => skipped.push(BrokenCheckpoint {
                step,
                dir,
                reason: e.to_string(),
            }),
        }
    }
    Err(RunDirError::NoIntactCheckpoint {
        path: run_dir.to_path_buf(),
        broken: skipped,
    })
}

/// A checkpoint folder being written (`.partial-N`); removed on drop unless published.
pub(crate) struct PartialCheckpoint {
    dir: PathBuf,
    step: usize,
    checksums: BTreeMap<String, String>,
    published: bool,
}

impl PartialCheckpoint {
    /// Creates an empty `.partial-N` folder in `run_dir` (replacing a leftover one).
    pub(crate) fn create(run_dir: &Path, step: usize) -> Result<Self, RunDirError> {
        let dir = run_dir.join(format!("{}{step:06}", files::PARTIAL_PREFIX));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            step,
            checksums: BTreeMap::new(),
            published: false,
        })
    }

    /// Writes a module's weights as `name`.
    pub(crate) fn save_module<M: Module>(
        &mut self,
        name: &str,
        module: M,
    ) -> Result<(), RunDirError> {
        let hash = save_module(module, &self.dir.join(name))?;
        self.checksums.insert(name.to_string(), hash);
        Ok(())
    }

    /// Writes an optimizer's state as `name`.
    pub(crate) fn save_optimizer(
        &mut self,
        name: &str,
        optimizer: &ModuleOptimizer,
    ) -> Result<(), RunDirError> {
        let hash = save_optimizer(optimizer, &self.dir.join(name))?;
        self.checksums.insert(name.to_string(), hash);
        Ok(())
    }

    /// Writes `state.json` (with the hashes of everything saved), publishes the folder
    /// as `ckpt-N`, repoints `latest.json` and prunes all but the newest `keep`
    /// checkpoints. Returns the checkpoint folder and warnings about pruning.
    pub(crate) fn publish(
        mut self,
        run_dir: &Path,
        mut state: TrainState,
        keep: usize,
    ) -> Result<(PathBuf, Vec<String>), RunDirError> {
        state.step = self.step;
        state.checksums = std::mem::take(&mut self.checksums);
        write_json(&self.dir.join(files::STATE), &state)?;
        let published = publish_checkpoint(run_dir, &self.dir, self.step, keep)?;
        self.published = true;
        Ok(published)
    }
}

impl Drop for PartialCheckpoint {
    fn drop(&mut self) {
        if !self.published {
            // A failed save must not leave a half-written folder behind.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Publishes a completed temporary folder as checkpoint `step`, repoints
/// `latest.json` and prunes old checkpoints (see the module docs for the order).
fn publish_checkpoint(
    run_dir: &Path,
    tmp: &Path,
    step: usize,
    keep: usize,
) -> Result<(PathBuf, Vec<String>), RunDirError> {
    // The files inside are fsynced by write_atomic; their names must be too, before
    // the folder can be published under its final name.
    sync_dir(tmp).map_err(io_err(tmp))?;
    let name = checkpoint_dir_name(step);
    let dest = run_dir.join(&name);
    let mut warnings = Vec::new();
    let replaced = if dest.exists() {
        // The same step saved twice: move the old one out of the namespace first, so
        // no half-deleted `ckpt-N` can exist at any moment.
        let trash = run_dir.join(format!("{}{name}", files::TRASH_PREFIX));
        if trash.exists() {
            std::fs::remove_dir_all(&trash).map_err(io_err(&trash))?;
        }
        std::fs::rename(&dest, &trash).map_err(io_err(&dest))?;
        Some(trash)
    } else {
        None
    };
    std::fs::rename(tmp, &dest).map_err(io_err(&dest))?;
    sync_dir(run_dir).map_err(io_err(run_dir))?;
    write_json(
        &run_dir.join(files::LATEST),
        &LatestPointer { step, dir: name },
    )?;
    // write_atomic syncs the folder too; say it here as well, since resuming relies on
    // the pointer switch being durable before older checkpoints are pruned.
    sync_dir(run_dir).map_err(io_err(run_dir))?;
    if let Some(trash) = replaced
        && let Err(e) = std::fs::remove_dir_all(&trash)
    {
        warnings.push(format!("{}: cannot delete: {e}", trash.display()));
    }
    warnings.extend(prune_checkpoints(run_dir, keep));
    Ok((dest, warnings))
}

/// Deletes all but the newest `keep` complete checkpoints: each is renamed out of the
/// `ckpt-` namespace (and the rename made durable) before it is deleted. Returns
/// warnings for what could not be removed (a failure leaves a complete checkpoint or
/// a `.trash-*` folder, never a half-deleted `ckpt-*`).
pub(crate) fn prune_checkpoints(run_dir: &Path, keep: usize) -> Vec<String> {
    let all = list_checkpoints(run_dir);
    let mut warnings = Vec::new();
    if all.len() <= keep {
        return warnings;
    }
    let mut trashed = Vec::new();
    for (_, old) in &all[..all.len() - keep] {
        let Some(name) = old.file_name() else {
            continue;
        };
        let trash = run_dir.join(format!("{}{}", files::TRASH_PREFIX, name.to_string_lossy()));
        if trash.exists() {
            let _ = std::fs::remove_dir_all(&trash);
        }
        match std::fs::rename(old, &trash) {
            Ok(()) => trashed.push(trash),
            Err(e) => warnings.push(format!("{}: cannot prune: {e}", old.display())),
        }
    }
    if let Err(e) = sync_dir(run_dir) {
        warnings.push(format!("{}: cannot sync: {e}", run_dir.display()));
    }
    for trash in trashed {
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            warnings.push(format!("{}: cannot delete: {e}", trash.display()));
        }
    }
    warnings
}

/// Removes what a killed process may have left: `.partial-*` (unfinished
/// checkpoints), `.trash-*` (checkpoints being pruned) and `.tmp-*` (unfinished atomic
/// writes). Call only while holding the [`RunLock`]. Returns warnings for entries that
/// could not be removed.
pub(crate) fn remove_leftovers(run_dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let leftovers = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            [
                files::PARTIAL_PREFIX,
                files::TRASH_PREFIX,
                files::TMP_PREFIX,
            ]
            .iter()
            .any(|p| name.starts_with(p))
        });
    for entry in leftovers {
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            warnings.push(format!("{}: cannot remove leftover: {e}", path.display()));
        }
    }
    warnings
}

/// Moves a damaged checkpoint out of the `ckpt-` namespace (to `.broken-ckpt-N`), so
/// listings, pruning and `latest.json` no longer see it; it is kept for inspection.
pub(crate) fn set_aside_broken(
    run_dir: &Path,
    broken: &BrokenCheckpoint,
) -> Result<PathBuf, RunDirError> {
    let name = checkpoint_dir_name(broken.step);
    let mut aside = run_dir.join(format!("{}{name}", files::BROKEN_PREFIX));
    let mut n = 2;
    while aside.exists() {
        aside = run_dir.join(format!("{}{name}-{n}", files::BROKEN_PREFIX));
        n += 1;
    }
    std::fs::rename(&broken.dir, &aside).map_err(io_err(&broken.dir))?;
    sync_dir(run_dir).map_err(io_err(run_dir))?;
    Ok(aside)
}

/// Points `latest.json` at checkpoint `step` (after a resume fell back to it).
pub(crate) fn point_latest_at(run_dir: &Path, step: usize) -> Result<(), RunDirError> {
    write_json(
        &run_dir.join(files::LATEST),
        &LatestPointer {
            step,
            dir: checkpoint_dir_name(step),
        },
    )?;
    sync_dir(run_dir).map_err(io_err(run_dir))
}

// ---------------------------------------------------------------------------------
// Lock

/// An OS lock on `<run>/.lock`, held while a trainer uses the folder. The OS releases
/// it when the file is closed — on drop, or when the process dies however it dies —
/// so a crashed run never leaves a stale lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `run_dir` (which must exist), or fails with
    /// [`RunDirError::Locked`] when another process — or another trainer in this
    /// process — holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self, RunDirError> {
        let path = run_dir.join(files::LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(RunDirError::Locked {
                path: run_dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(RunDirError::Io { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// ---------------------------------------------------------------------------------
// Dataset record

/// One file of a dataset folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatasetFile {
    /// Path relative to the folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// `dataset.json`: the usable files of the photo and style folders when the run
/// started. The data order and crops are functions of these sorted lists (plus seed,
/// size and batch, which `config.json` holds), so a resume with other lists would
/// silently train on a different plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Photos, sorted by path.
    pub photos: Vec<DatasetFile>,
    /// Style images, sorted by path.
    pub style: Vec<DatasetFile>,
}

fn folder_files(dir: &Path, kind: &'static str) -> Result<Vec<DatasetFile>, DataError> {
    let report = scan_folder(dir).map_err(|source| DataError::Folder { kind, source })?;
    let mut out: Vec<DatasetFile> = report
        .files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap_or(p);
            DatasetFile {
                path: rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
                size: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

/// "3 added (a.jpg, b.jpg, …), 1 removed (c.jpg), 2 changed size (d.jpg, e.jpg)".
fn list_difference(kind: &str, then: &[DatasetFile], now: &[DatasetFile]) -> Option<String> {
    let then_map: BTreeMap<&str, u64> = then.iter().map(|f| (f.path.as_str(), f.size)).collect();
    let now_map: BTreeMap<&str, u64> = now.iter().map(|f| (f.path.as_str(), f.size)).collect();
    let added: Vec<&str> = now_map
        .keys()
        .filter(|k| !then_map.contains_key(*k))
        .copied()
        .collect();
    let removed: Vec<&str> = then_map
        .keys()
        .filter(|k| !now_map.contains_key(*k))
        .copied()
        .collect();
    let resized: Vec<&str> = now_map
        .iter()
        .filter(|(k, size)| then_map.get(*k).is_some_and(|s| s != *size))
        .map(|(k, _)| *k)
        .collect();
    if added.is_empty() && removed.is_empty() && resized.is_empty() {
        return None;
    }
    let names = |v: &[&str]| {
        let mut s = v.iter().take(3).copied().collect::<Vec<_>>().join(", ");
        if v.len() > 3 {
            s.push_str(", …");
        }
        s
    };
    let mut parts = Vec::new();
    for (n, what, list) in [
        (added.len(), "added", &added),
        (removed.len(), "removed", &removed),
        (resized.len(), "changed", &resized),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what} ({})", names(list)));
        }
    }
    Some(format!(
        "{kind}: {} then, {} now: {}",
        then.len(),
        now.len(),
        parts.join(", ")
    ))
}

impl DatasetRecord {
    /// Lists the usable images of both folders (headers checked, as training does).
    pub fn scan(photos_dir: &Path, style_dir: &Path) -> Result<Self, DataError> {
        Ok(Self {
            photos: folder_files(photos_dir, "photo")?,
            style: folder_files(style_dir, "style")?,
        })
    }

    /// What differs from `now`, in words; `None` when identical.
    pub fn differences(&self, now: &DatasetRecord) -> Option<String> {
        let parts: Vec<String> = [
            list_difference("photos", &self.photos, &now.photos),
            list_difference("style images", &self.style, &now.style),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Compares the folders of `config` with the run's `dataset.json`. Returns the
/// current record and whether `dataset.json` exists; fails with
/// [`RunDirError::DatasetChanged`] naming what changed. Reads only.
pub(crate) fn check_dataset(
    run_dir: &Path,
    config: &TrainConfig,
    now: &DatasetRecord,
) -> Result<bool, RunDirError> {
    let path = run_dir.join(files::DATASET);
    if !path.exists() {
        return Ok(false);
    }
    let then: DatasetRecord = read_json(&path)?;
    match then.differences(now) {
        None => Ok(true),
        Some(what) => Err(RunDirError::DatasetChanged {
            path: run_dir.to_path_buf(),
            detail: format!(
                "the training images changed since the run started ({what}; photos {}, style {}). \
                 Resuming would train on a different data order than the checkpoint's. \
                 Restore the folders as they were, or start a new run.",
                config.photos_dir.display(),
                config.style_dir.display()
            ),
        }),
    }
}

// ---------------------------------------------------------------------------------
// Metrics, samples and history

/// Parses `metrics.csv` rows up to step `up_to` (columns found by header name).
/// Tolerates a crash: an unterminated or short last line, or garbage, is skipped.
pub fn read_metrics(path: &Path, up_to: usize) -> Vec<(usize, LossValues)> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let Some((header, rows)) = super::metrics::complete_rows(&text) else {
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

// ---------------------------------------------------------------------------------
// Listing and naming

/// Run / model directories under `root` (those with a `latest.json`), newest first.
pub fn list_models(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(files::LATEST).exists())
        .map(|p| {
            let t = std::fs::metadata(p.join(files::LATEST))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// One complete checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Steps completed.
    pub step: usize,
    /// The `ckpt-…` folder.
    pub dir: PathBuf,
}

/// A run or model folder found under the checkpoints folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The folder.
    pub dir: PathBuf,
    /// Its name.
    pub name: String,
    /// Complete checkpoints (holding a generator), oldest first.
    pub checkpoints: Vec<CheckpointInfo>,
    /// Upsampling rule from `model.json`.
    pub upsample: UpsampleMode,
    /// Whether it was trained here (has `config.json`), so it can be resumed.
    pub resumable: bool,
}

/// What [`list_runs`] found.
#[derive(Debug, Default)]
pub struct RunListing {
    /// Usable runs and models, newest first.
    pub runs: Vec<RunInfo>,
    /// Folders that look like runs but whose `model.json` cannot be read; each error
    /// names the file.
    pub unreadable: Vec<RunDirError>,
}

/// Lists the runs and models under `root`, newest first. A folder whose `model.json`
/// is missing or malformed is reported in [`RunListing::unreadable`] rather than
/// listed with a guessed upsampling mode (a wrong guess converts visibly worse).
pub fn list_runs(root: &Path) -> RunListing {
    let mut listing = RunListing::default();
    for dir in list_models(root) {
        let info: ModelInfo = match read_json(&dir.join(files::MODEL)) {
            Ok(info) => info,
            Err(e) => {
                listing.unreadable.push(e);
                continue;
            }
        };
        let checkpoints = list_checkpoints(&dir)
            .into_iter()
            .map(|(step, dir)| CheckpointInfo { step, dir })
            .collect::<Vec<_>>();
        listing.runs.push(RunInfo {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| dir.display().to_string()),
            resumable: dir.join(files::CONFIG).exists() && !checkpoints.is_empty(),
            upsample: info.upsample,
            checkpoints,
            dir,
        });
    }
    listing
}

/// `run-YYYYMMDD-HHMMSS` for the instant `t`, in UTC.
pub fn run_name_at(t: jiff::Timestamp) -> String {
    format!("run-{}", t.strftime("%Y%m%d-%H%M%S"))
}

/// `root/run-YYYYMMDD-HHMMSS` for the instant `t` (UTC), suffixed `-2`, `-3`, … when
/// that folder exists.
pub fn unique_run_dir_at(root: &Path, t: jiff::Timestamp) -> PathBuf {
    let base = run_name_at(t);
    let mut dir = root.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = root.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// A fresh run folder path under `root`, named after the current time (UTC):
/// `run-YYYYMMDD-HHMMSS`, suffixed `-2`, `-3`, … when taken. The one naming rule of
/// the CLI and the studio. Nothing is created; two trainers that pick the same name
/// at once are kept apart by the [`RunLock`].
pub fn new_run_dir(root: &Path) -> PathBuf {
    unique_run_dir_at(root, jiff::Timestamp::now())
}
