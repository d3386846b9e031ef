//! The studio: the egui desktop app artists use to pick a dataset, train with live
//! plots and a sample timeline, and convert photos.
//!
//! - [`studio`]: the frame loop ([`StudioApp`]).
//! - [`state`]: persisted [`Settings`] and launch [`AppOptions`].
//! - [`worker`]: the UI <-> background protocol and threads.
//! - [`panels`]: dataset, training, plots, samples, convert.
//! - [`widgets`]: the compare view and tiled textures.

use eframe::egui;

pub mod command;
pub mod history;
pub mod panels;
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
            let settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            Ok(Box::new(StudioApp::new(
                settings,
                AppOptions {
                    open,
                    ..AppOptions::default()
                },
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the studio window: {e}"))
}

/// The window icon (assets/icon.png, compiled in). A decode failure only costs the
/// icon, never the window.
fn window_icon() -> egui::IconData {
    image::load_from_memory(include_bytes!("../../assets/icon.png"))
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
