//! Putting a downloaded item where photo2anime looks for it.
//!
//! - VGG19 goes into torch's hub cache under torchvision's own file name, where
//!   training finds it ([`crate::interop::vgg::find_cached_vgg19`]) and PyTorch would
//!   too. It is checked by loading it; a file already there that matches the
//!   checksum is kept (no download); one that does not match is replaced.
//! - A generator `.pt` is downloaded to `checkpoints/.downloads/<name>.pt` (kept
//!   there between attempts so a cut download resumes), imported into a hidden
//!   temporary folder inside `checkpoints/`, and renamed to `checkpoints/<name>/`,
//!   so a failed import leaves nothing. The `.pt` is deleted afterwards. A
//!   `checkpoints/<name>/` that already holds a `model.json` counts as installed
//!   (nothing is downloaded); one without is an error, never overwritten.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;

use super::{DownloadError, Entry, ItemKind, Progress, fetch, file_digest};
use crate::interop::pytorch::PytorchFile;
use crate::model::UpsampleMode;
use crate::model_io::{load_port_layout, write_model_dir};
use crate::train::run_dir::ModelOrigin;

/// Hidden folder inside `checkpoints/` that holds generator downloads in progress.
pub const DOWNLOADS_DIR: &str = ".downloads";

/// Where an item ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The item's name.
    pub name: String,
    /// The VGG19 `.pth` file, or the generator's model folder.
    pub path: PathBuf,
    /// True when it was already there and nothing was downloaded.
    pub already_present: bool,
}

/// Downloads and installs `entry` by its kind: VGG19 into torch's hub cache
/// (`$TORCH_HOME/hub/checkpoints` or `~/.cache/torch/hub/checkpoints`), a generator
/// into `checkpoints_dir/<name>/`. See [`install_vgg19`] and [`install_generator`].
pub fn install(
    entry: &Entry,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
    checkpoints_dir: &Path,
) -> Result<Installed, DownloadError> {
    match entry.kind {
        ItemKind::Vgg19 => {
            let hub = crate::interop::vgg::torch_hub_checkpoints().ok_or_else(|| {
                DownloadError::Install {
                    detail: "cannot tell where torch's cache is: set TORCH_HOME (or HOME)"
                        .to_string(),
                }
            })?;
            install_vgg19(entry, progress, cancel, &hub)
        }
        ItemKind::Generator => install_generator(entry, progress, cancel, checkpoints_dir),
    }
}

/// Installs VGG19 weights as `hub_dir/<file name from the URL>`, creating `hub_dir`.
/// An existing file that matches the checksum is kept (`already_present`); a new
/// download that verifies but does not load as VGG19 is deleted (an `Install` error).
pub fn install_vgg19(
    entry: &Entry,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
    hub_dir: &Path,
) -> Result<Installed, DownloadError> {
    expect_kind(entry, ItemKind::Vgg19)?;
    let file_name = entry.file_name().ok_or_else(|| DownloadError::Install {
        detail: format!("{}: the URL {} names no file", entry.name, entry.url),
    })?;
    let dest = hub_dir.join(file_name);
    if dest.is_file() {
        let actual =
            file_digest(&dest, &entry.checksum).map_err(|e| DownloadError::io(&dest, e))?;
        if entry.checksum.matches(&actual) {
            let size = std::fs::metadata(&dest).map(|m| m.len()).ok();
            progress(Progress {
                done: size.unwrap_or(0),
                total: size,
                bytes_per_sec: 0.0,
                eta_secs: Some(0.0),
            });
            return Ok(Installed {
                name: entry.name.clone(),
                path: dest,
                already_present: true,
            });
        }
        // Corrupt or a different file under the official name: torchvision's own
        // hash check would refuse it too, so the verified download replaces it.
        log::warn!(
            "{} does not match its checksum ({actual}); downloading it again",
            dest.display()
        );
    }
    std::fs::create_dir_all(hub_dir).map_err(|e| DownloadError::io(hub_dir, e))?;
    let path = fetch(entry, &dest, progress, cancel)?;
    if let Err(e) = crate::interop::vgg::load_vgg19(&path, &Device::flex()) {
        let _ = std::fs::remove_file(&path);
        return Err(DownloadError::Install {
            detail: format!(
                "{}: downloaded and checksum-verified, but it does not load as VGG19 weights \
                 ({e}); the file was deleted",
                entry.name
            ),
        });
    }
    Ok(Installed {
        name: entry.name.clone(),
        path,
        already_present: false,
    })
}

/// Downloads a port-layout generator `.pt` and imports it as the model folder
/// `checkpoints_dir/<name>/` (upsampling rule: align-corners, the port's). See the
/// module docs for what happens when that folder already exists.
pub fn install_generator(
    entry: &Entry,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
    checkpoints_dir: &Path,
) -> Result<Installed, DownloadError> {
    expect_kind(entry, ItemKind::Generator)?;
    let model_dir = checkpoints_dir.join(&entry.name);
    let installed = |already_present| Installed {
        name: entry.name.clone(),
        path: model_dir.clone(),
        already_present,
    };
    if model_dir.join("model.json").is_file() {
        return Ok(installed(true));
    }
    if model_dir.exists() {
        return Err(DownloadError::Install {
            detail: format!(
                "{} already exists and is not an imported model (no model.json); move it \
                 away first",
                model_dir.display()
            ),
        });
    }
    let downloads = checkpoints_dir.join(DOWNLOADS_DIR);
    let pt = match fetch(
        entry,
        &downloads.join(format!("{}.pt", entry.name)),
        progress,
        cancel,
    ) {
        Ok(pt) => pt,
        Err(e) => {
            // Only succeeds when empty: a kept .part (for resuming) keeps it.
            let _ = std::fs::remove_dir(&downloads);
            return Err(e);
        }
    };
    let imported = import_into_place(entry, &pt, checkpoints_dir, &model_dir);
    // Verified bytes that failed to import would fail again, so the .pt goes
    // either way; the folder goes when no other download is in progress.
    let _ = std::fs::remove_file(&pt);
    let _ = std::fs::remove_dir(&downloads);
    imported?;
    Ok(installed(false))
}

/// Imports `pt` into a hidden temporary folder next to `model_dir`, then renames it
/// into place: either the whole model folder appears or nothing does.
fn import_into_place(
    entry: &Entry,
    pt: &Path,
    checkpoints_dir: &Path,
    model_dir: &Path,
) -> Result<(), DownloadError> {
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.import-", entry.name))
        .tempdir_in(checkpoints_dir)
        .map_err(|e| DownloadError::io(checkpoints_dir, e))?;
    let staged = staging.path().join(&entry.name);
    let import_error = |detail: String| DownloadError::Install {
        detail: format!(
            "{}: downloaded and checksum-verified, but it does not import as an AnimeGANv2 \
             generator: {detail}",
            entry.name
        ),
    };
    let device = Device::flex();
    let mode = UpsampleMode::AlignCorners;
    let source = PytorchFile::open(pt).map_err(|e| import_error(e.to_string()))?;
    let generator =
        load_port_layout(&source, mode, &device).map_err(|e| import_error(e.to_string()))?;
    // The origin records the URL: the downloaded .pt is deleted after the import.
    let origin = ModelOrigin::Imported {
        source: PathBuf::from(&entry.url),
    };
    write_model_dir(generator, &staged, mode, origin).map_err(|e| import_error(e.to_string()))?;
    std::fs::rename(&staged, model_dir).map_err(|e| DownloadError::io(model_dir, e))?;
    let _ = crate::fsx::sync_dir(checkpoints_dir);
    Ok(())
}

/// Refuses an entry of the other kind (it would end up in the wrong place).
fn expect_kind(entry: &Entry, kind: ItemKind) -> Result<(), DownloadError> {
    if entry.kind == kind {
        return Ok(());
    }
    Err(DownloadError::Install {
        detail: format!("{} is a {:?} item, not {kind:?}", entry.name, entry.kind),
    })
}
