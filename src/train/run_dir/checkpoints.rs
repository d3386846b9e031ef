//! Checkpoints: naming, verification, the newest intact one, atomic publish and crash-safe pruning.

#[allow(clippy::wildcard_imports)]
use super::*;

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
