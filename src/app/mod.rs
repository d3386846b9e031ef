//! The studio: the egui desktop app artists use to pick a dataset, train with live
//! plots and a sample timeline, and convert photos.
//!
//! - [`studio`]: the app ([`StudioApp`]): frame loop, event handling, actions, drops.
//! - [`state`]: persisted [`Settings`] and launch [`AppOptions`].
//! - [`run_state`]: what the UI knows of the current run.
//! - [`command`]: what panels ask the app to do ([`command::UiCommand`]).
//! - [`worker`]: the background threads and their typed protocol.
//! - [`panels`]: dataset, training, plots, samples, convert (one file each).
//! - [`widgets`]: the compare view and tiled textures.
//! - [`history`], [`toasts`]: the bounded loss history and notifications.

use eframe::egui;

pub mod command;
pub mod downloads;
pub mod history;
pub mod panels;
pub mod run_state;
pub mod state;
pub mod studio;
pub mod toasts;
pub mod widgets;
pub mod worker;

pub use state::{AppOptions, Settings};
pub use studio::StudioApp;

/// Opens the studio window (blocks until it is closed). Settings persist between
/// sessions; the demo dataset is selected on the first start. `open` lists photos
/// or model files handled as if dropped on the window.
pub fn run_gui(open: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("photo2anime studio")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true)
            .with_icon(window_icon()),
        ..Default::default()
    };
    eframe::run_native(
        "photo2anime",
        options,
        Box::new(|cc| {
            let saved = cc.storage.and_then(|s| s.get_string(eframe::APP_KEY));
            let (settings, note) = Settings::load(saved, &unreadable_settings_path());
            let mut app = StudioApp::new(
                settings,
                AppOptions {
                    open,
                    ..AppOptions::default()
                },
            );
            if let Some(note) = note {
                app.notify(toasts::Level::Warning, note);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the studio window: {e}"))
}

/// Where settings that could not be read are kept: beside eframe's own file.
fn unreadable_settings_path() -> std::path::PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    eframe::storage_dir("photo2anime")
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("settings-unreadable-{stamp}.ron"))
}

/// The window icon (assets/icons/256x256.png, compiled in). A decode failure only costs the
/// icon, never the window.
fn window_icon() -> egui::IconData {
    image::load_from_memory(include_bytes!("../../assets/icons/256x256.png"))
        .map(|img| {
            let rgba = img.into_rgba8();
            egui::IconData {
                width: rgba.width(),
                height: rgba.height(),
                rgba: rgba.into_raw(),
            }
        })
        .unwrap_or_default()
}
