//! The dataset record: what a resume checks before it writes anything.

#[allow(clippy::wildcard_imports)]
use super::*;

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
