//! Native file dialogs (rfd), run on a job thread so the UI never waits on them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::protocol::{DialogKind, WorkerError};

/// Opens the dialog and waits for the artist's answer (empty when cancelled), or
/// says why no dialog can open here.
pub(crate) fn run_dialog(
    kind: &DialogKind,
    start_dir: Option<&Path>,
) -> Result<Vec<PathBuf>, WorkerError> {
    // rfd reports a missing dialog backend exactly like a cancel: check first so
    // the artist gets a reason, not silence.
    if dialog_unavailable() {
        return Err(WorkerError::NoDialog);
    }
    let mut dialog = rfd::AsyncFileDialog::new();
    if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
        dialog = dialog.set_directory(dir);
    }
    let paths = match kind {
        DialogKind::PickFolder => block_on(dialog.pick_folder())
            .map(|f| vec![f.path().to_path_buf()])
            .unwrap_or_default(),
        DialogKind::PickFiles(name, exts) => {
            block_on(dialog.add_filter(name.as_str(), exts).pick_files())
                .map(|v| v.iter().map(|f| f.path().to_path_buf()).collect())
                .unwrap_or_default()
        }
        DialogKind::PickFile(name, exts) => {
            block_on(dialog.add_filter(name.as_str(), exts).pick_file())
                .map(|f| vec![f.path().to_path_buf()])
                .unwrap_or_default()
        }
        DialogKind::SaveFile(suggested) => block_on(
            dialog
                .set_file_name(suggested.as_str())
                .add_filter("PNG", &["png"])
                .add_filter("JPEG", &["jpg", "jpeg"])
                .add_filter("WebP", &["webp"])
                .save_file(),
        )
        .map(|f| vec![f.path().to_path_buf()])
        .unwrap_or_default(),
    };
    Ok(paths)
}

/// Blocks on a future on this (job) thread; the native dialogs are async so they
/// also work where the platform wants them driven from its main loop.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => return v,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

/// Whether no native file dialog can open here. On Linux/BSD rfd talks to the XDG
/// desktop portal over the D-Bus session bus and falls back to `zenity`; with
/// neither (minimal window managers, Xvfb) every dialog "cancels" at once.
fn dialog_unavailable() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return false;
    }
    let has_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty());
    let has_zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("zenity").is_file()));
    !has_bus && !has_zenity
}
