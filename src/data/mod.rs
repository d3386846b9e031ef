//! Datasets: scanning folders, decoding images safely, the style-image
//! preprocessing (grayscale and edge-smoothed variants), the on-disk cache and the
//! loader thread that prepares batches ahead of the trainer.

pub mod cache;
mod edges;
pub mod image_io;
pub mod loader;
pub mod preprocess;
pub mod scan;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use loader::{Batch, DataError, Dataset, Loader};
pub use scan::{ScanReport, scan_folder};

/// A file left out of a dataset, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Human-readable reason, e.g. `truncated JPEG: unexpected end of file`.
    pub reason: String,
}
