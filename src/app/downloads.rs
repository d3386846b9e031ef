//! Downloads as the studio shows them: the table (built in, or the one
//! `PHOTO2ANIME_DOWNLOAD_TABLE` names), the one download in flight with its progress,
//! and the offer — licence first, then a button — that panels draw where it helps.

use eframe::egui::{self, Color32, Ui};

use super::command::UiCommand;
use crate::download::Progress;
use crate::download::{Entry, ItemKind, Table};

/// The studio's view of downloads (runtime state, never persisted).
#[derive(Debug)]
pub struct Downloads {
    /// The table, or why it could not be read (a bad `PHOTO2ANIME_DOWNLOAD_TABLE`).
    table: Result<Table, String>,
    /// The entry being downloaded and its latest progress.
    active: Option<(String, Option<Progress>)>,
    /// The last failure, shown beside the offer until the next attempt.
    failed: Option<(String, String)>,
}

impl Default for Downloads {
    fn default() -> Self {
        Self {
            table: Table::from_env().map_err(|e| e.to_string()),
            active: None,
            failed: None,
        }
    }
}

impl Downloads {
    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.table.as_ref().ok()?.get(name).ok()
    }

    /// A download of `name` was requested.
    pub fn started(&mut self, name: &str) {
        self.active = Some((name.to_string(), None));
        self.failed = None;
    }

    /// Progress of the download in flight.
    pub fn on_progress(&mut self, name: &str, progress: Progress) {
        if let Some((active, p)) = &mut self.active
            && active == name
        {
            *p = Some(progress);
        }
    }

    /// The download of `name` ended; `error` is `None` on success.
    pub fn on_finished(&mut self, name: &str, error: Option<String>) {
        if self.active.as_ref().is_some_and(|(a, _)| a == name) {
            self.active = None;
        }
        self.failed = error.map(|e| (name.to_string(), e));
    }

    /// The request was refused (another download runs in the background): the
    /// spinner must not wait for an answer that will never name it.
    pub fn refused(&mut self) {
        if let Some((name, _)) = self.active.take() {
            self.failed = Some((name, "another download is already running".to_string()));
        }
    }

    /// Whether a download is running.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Offers every entry of `kind`: its licence, then a Download button, or the
    /// progress bar with Cancel while it downloads.
    pub fn offer_ui(&self, ui: &mut Ui, kind: ItemKind, out: &mut Vec<UiCommand>) {
        let table = match &self.table {
            Ok(table) => table,
            Err(e) => {
                ui.colored_label(Color32::from_rgb(255, 110, 100), e);
                return;
            }
        };
        let entries: Vec<&Entry> = table.entries.iter().filter(|e| e.kind == kind).collect();
        if let Some(first) = entries.first() {
            // The licence before any button (the AnimeGANv2 weights are non-commercial).
            ui.label(egui::RichText::new(&first.licence).weak());
        }
        for entry in entries {
            ui.horizontal_wrapped(|ui| match &self.active {
                Some((name, progress)) if *name == entry.name => {
                    progress_ui(ui, entry, progress.as_ref());
                    if ui.button("Cancel").clicked() {
                        out.push(UiCommand::CancelDownload);
                    }
                }
                _ => {
                    let label = match entry.size {
                        Some(size) => format!("Download {} ({})", entry.name, megabytes(size)),
                        None => format!("Download {}", entry.name),
                    };
                    let button = ui
                        .add_enabled(self.active.is_none(), egui::Button::new(label))
                        .on_hover_text(format!("{}\n\n{}", entry.url, entry.licence))
                        .on_disabled_hover_text("Another download is running.");
                    if button.clicked() {
                        out.push(UiCommand::Download(entry.name.clone()));
                    }
                }
            });
            if let Some((name, error)) = &self.failed
                && *name == entry.name
            {
                ui.colored_label(Color32::from_rgb(255, 110, 100), error);
            }
        }
    }
}

/// Sizes as torchvision and most file managers quote them (548 MB for VGG19's
/// 574,673,361 bytes): units of 2^20 bytes.
fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1_048_576.0)
}

fn progress_ui(ui: &mut Ui, entry: &Entry, progress: Option<&Progress>) {
    let Some(p) = progress else {
        ui.spinner();
        ui.label(format!("connecting for {}…", entry.name));
        return;
    };
    let total = p.total.or(entry.size);
    let fraction = total.map_or(0.0, |t| p.done as f32 / t.max(1) as f32);
    let mut text = match total {
        Some(t) => format!("{} / {}", megabytes(p.done), megabytes(t)),
        None => megabytes(p.done),
    };
    if p.bytes_per_sec > 0.0 {
        text += &format!(", {:.1} MB/s", p.bytes_per_sec / 1_048_576.0);
    }
    if let Some(eta) = p.eta_secs {
        text += &format!(", {:.0} s left", eta);
    }
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(180.0)
            .text(text),
    );
}
