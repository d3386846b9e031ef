//! Driving the studio in tests: a harness at a desktop size, stepping frames
//! until a condition holds, and files dropped on the window.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use photo2anime::app::StudioApp;
use photo2anime::app::worker::FolderRole;

/// The studio in a 1600x1000 harness.
pub fn harness(app: StudioApp) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_ui_state(|ui: &mut egui::Ui, app: &mut StudioApp| app.ui(ui), app)
}

/// Steps frames (with short real sleeps so workers progress) until `done` holds,
/// then one more frame; panics after `timeout` with the run status and toasts.
pub fn run_until(
    h: &mut Harness<'_, StudioApp>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        h.step();
        if done(h.state()) {
            h.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "timed out after {timeout:?} waiting for: {what}\nrun: {:?}\ntoasts: {:?}",
        h.state().run_state().status,
        h.state().toasts().items()
    );
}

/// Both folders scanned and usable: what enables "Start training".
pub fn folders_ready(app: &StudioApp) -> bool {
    [FolderRole::Photos, FolderRole::Style]
        .iter()
        .all(|r| app.dataset().folder(*r).is_usable())
}

/// A file dropped on the window.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops `path` on the window (seen at the next frame).
pub fn drop_file(h: &mut Harness<'_, StudioApp>, path: &Path) {
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(path.to_path_buf())));
}
