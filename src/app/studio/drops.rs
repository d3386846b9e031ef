//! Files dropped on the window (or named on the command line): folders go to the
//! Dataset box under the pointer, models are imported, photos and video clips are
//! listed for conversion. And the overlay that says what a drop will do.

use std::path::PathBuf;

use eframe::egui;
use egui::{Align2, Color32, FontId, Id, LayerId, Order};

use super::StudioApp;
use crate::app::command::UiCommand;
use crate::app::panels::convert::{is_model_file, is_photo_file};
use crate::app::state::Tab;
use crate::app::toasts::Level;

impl StudioApp {
    pub(super) fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if dropped.is_empty() {
            return;
        }
        let pointer = ctx.input(|i| i.pointer.latest_pos());
        self.open_paths(dropped, pointer);
    }

    /// Handles dropped (or command-line) paths: folders go to the Dataset box under
    /// the pointer, models are imported, photos are listed for conversion.
    pub(super) fn open_paths(&mut self, paths: Vec<PathBuf>, pointer: Option<egui::Pos2>) {
        let mut photos = Vec::new();
        for path in paths {
            if path.is_dir() {
                match (self.settings.tab, self.dataset.drop_target(pointer)) {
                    (Tab::Dataset, Some(role)) => self.pending.push(UiCommand::SetFolder(role, path)),
                    _ => self.toasts.push(
                        Level::Info,
                        format!(
                            "{}: drop folders on the Photos or Style box of the Dataset view; use 'Convert folder...' to convert a whole folder.",
                            path.display()
                        ),
                    ),
                }
            } else if is_model_file(&path) {
                self.pending.push(UiCommand::ImportModel(path));
            } else if is_photo_file(&path) || crate::video::has_video_extension(&path) {
                photos.push(path);
            } else {
                self.toasts.push(
                    Level::Warning,
                    format!("{}: not a photo, video or model file", path.display()),
                );
            }
        }
        if !photos.is_empty() {
            self.pending.push(UiCommand::AddPhotos(photos));
        }
    }
}

/// Dims the window and says what a drop will do while files hover over it.
pub(super) fn paint_drop_overlay(ctx: &egui::Context, tab: Tab) {
    let hovered: Vec<PathBuf> = ctx.input(|i| {
        i.raw
            .hovered_files
            .iter()
            .filter_map(|f| f.path.clone())
            .collect()
    });
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let text = if hovered.iter().any(|p| p.is_dir()) && tab == Tab::Dataset {
        "Drop the folder on the Photos or Style box".to_string()
    } else if hovered.iter().any(|p| is_model_file(p)) {
        "Drop to import the model".to_string()
    } else if hovered.iter().any(|p| crate::video::has_video_extension(p)) {
        "Drop to convert the video".to_string()
    } else {
        let n = hovered.len().max(1);
        format!("Drop to convert {n} photo{}", if n == 1 { "" } else { "s" })
    };
    let painter = ctx.layer_painter(LayerId::new(
        Order::Foreground,
        Id::unique("p2a-drop-overlay"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(150));
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        text,
        FontId::proportional(26.0),
        Color32::WHITE,
    );
}
