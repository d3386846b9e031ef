//! Listing runs and naming new ones.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Run / model directories under `root` (those with a `latest.json`), newest first.
pub fn list_models(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        // Hidden folders are work in progress (`.downloads/`, `.NAME.import-*` while a
        // download is imported): never a model to offer.
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
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
