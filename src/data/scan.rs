//! Recursive folder scanning with per-file reasons for everything left out.

use std::path::{Path, PathBuf};

use super::SkippedFile;
use super::image_io::{has_image_extension, probe};

/// Result of scanning one folder.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Usable image files, sorted.
    pub files: Vec<PathBuf>,
    /// Files with an image extension that cannot be used, with reasons.
    pub skipped: Vec<SkippedFile>,
}

/// Why a folder cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The folder does not exist or cannot be listed.
    #[error("{path}: cannot open folder: {source}")]
    Unreadable {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The folder holds no usable image.
    #[error("{path}: no usable images ({skipped} skipped; supported: jpg, png, webp, bmp, tiff)")]
    Empty {
        /// The folder.
        path: PathBuf,
        /// How many image files were skipped.
        skipped: usize,
    },
}

/// Lists every image under `dir` (recursively, hidden entries skipped), checking
/// each header. Subfolders that cannot be read are reported as skipped entries.
pub fn scan_folder(dir: &Path) -> Result<ScanReport, ScanError> {
    let mut report = ScanReport::default();
    let entries = std::fs::read_dir(dir).map_err(|source| ScanError::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut stack = vec![entries];
    while let Some(entries) = stack.last_mut() {
        let Some(entry) = entries.next() else {
            stack.pop();
            continue;
        };
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                report.skipped.push(SkippedFile {
                    path: dir.to_path_buf(),
                    reason: format!("unreadable entry: {e}"),
                });
                continue;
            }
        };
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            match std::fs::read_dir(&path) {
                Ok(sub) => stack.push(sub),
                Err(e) => report.skipped.push(SkippedFile {
                    path,
                    reason: format!("cannot open folder: {e}"),
                }),
            }
            continue;
        }
        if !has_image_extension(&path) {
            continue;
        }
        match probe(&path) {
            Ok(_) => report.files.push(path),
            Err(reason) => report.skipped.push(SkippedFile { path, reason }),
        }
    }
    report.files.sort();
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if report.files.is_empty() {
        return Err(ScanError::Empty {
            path: dir.to_path_buf(),
            skipped: report.skipped.len(),
        });
    }
    Ok(report)
}
