//! Downloading the weights photo2anime can use but does not ship: torchvision's
//! VGG19 (perceptual losses) and the published AnimeGANv2 generators.
//!
//! - [`Table`]: the one list of items (built in, or a JSON file named by
//!   `PHOTO2ANIME_DOWNLOAD_TABLE`).
//! - [`fetch`]: one resumable, checksum-verified HTTP download into a file. Blocking;
//!   the caller runs it on a worker thread and may cancel it through an `AtomicBool`.
//! - [`install`]: fetch plus putting the item where photo2anime looks for it (VGG19
//!   into torch's hub cache, generators imported into `checkpoints/<name>/`).
//! - [`cli`]: the `download` subcommand's arguments and driver.
//!
//! Invariant: nothing half-downloaded or unverified is ever at a destination path.
//! Bytes arrive in `<dest>.part`; it is hashed as it grows, renamed into place only
//! once its size and checksum match, and kept after a cut connection or a cancel so
//! the next attempt resumes with an HTTP `Range` request.

use std::path::PathBuf;

pub mod cli;
mod fetch;
mod install;
mod table;
mod verify;

pub use fetch::{Progress, fetch, part_path};
pub use install::{DOWNLOADS_DIR, Installed, install, install_generator, install_vgg19};
pub use table::{Checksum, Entry, ItemKind, TABLE_ENV, Table};
pub use verify::file_digest;

/// Why a download or install failed. Messages are written for the person running it.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status (after redirects).
    #[error("{url}: the server answered HTTP {status}{}", status_hint(*status))]
    Http {
        /// The requested URL.
        url: String,
        /// The HTTP status, e.g. 404.
        status: u16,
    },
    /// No connection, a name that does not resolve, a timeout, or a connection cut
    /// mid-file. `detail` says whether a `.part` was kept for the next attempt.
    #[error("could not download {url}: {detail}")]
    Network {
        /// The requested URL.
        url: String,
        /// What went wrong, and whether the next attempt resumes.
        detail: String,
    },
    /// The complete file does not match the table's checksum; it was deleted.
    #[error(
        "{name}: the downloaded file does not match its checksum (expected {expected}, got \
         {actual}); it was deleted, try again (if it keeps happening, the file on the server \
         changed and the download table needs updating)"
    )]
    ChecksumMismatch {
        /// The item.
        name: String,
        /// The table's value.
        expected: String,
        /// What the downloaded bytes hash to.
        actual: String,
    },
    /// The file's size differs from the table's; it was deleted.
    #[error(
        "{name}: expected {expected} bytes but the server sent {actual}; the partial file was \
         deleted, try again"
    )]
    SizeMismatch {
        /// The item.
        name: String,
        /// The table's size.
        expected: u64,
        /// The size the server sent or announced.
        actual: u64,
    },
    /// Cancelled by the caller; the `.part` is kept.
    #[error("download cancelled (what arrived is kept; the next attempt resumes from there)")]
    Cancelled,
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The download table file is unusable.
    #[error("download table {}: {detail}", path.display())]
    Table {
        /// The JSON file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// No item of that name in the table.
    #[error("no downloadable item named {name:?} (see `photo2anime download --list`)")]
    UnknownItem {
        /// The name asked for.
        name: String,
    },
    /// The download succeeded but the item could not be installed.
    #[error("{detail}")]
    Install {
        /// What failed.
        detail: String,
    },
}

/// A short explanation appended to common HTTP statuses.
fn status_hint(status: u16) -> &'static str {
    match status {
        404 | 410 => " (not found: the download table's URL is out of date)",
        401 | 403 => " (access refused)",
        429 => " (too many requests: try again later)",
        500..=599 => " (a server-side problem: try again later)",
        _ => "",
    }
}

impl DownloadError {
    /// An [`DownloadError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
