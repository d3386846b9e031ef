//! Non-modal notifications: a dismissable list in the bottom-right corner.
//! Errors stay until dismissed; information fades after a few seconds. Repeated
//! messages are counted instead of stacked.

use eframe::egui;

use egui::{Align2, Color32, Context, Id, Order, RichText, vec2};

/// Severity of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something finished.
    Info,
    /// Worth knowing; nothing stopped.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    fn lifetime_secs(self) -> Option<f64> {
        match self {
            Self::Info => Some(6.0),
            Self::Warning => Some(20.0),
            Self::Error => None,
        }
    }

    fn color(self) -> Color32 {
        match self {
            Self::Info => Color32::from_rgb(120, 190, 255),
            Self::Warning => Color32::from_rgb(240, 190, 80),
            Self::Error => Color32::from_rgb(255, 110, 100),
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    /// Severity.
    pub level: Level,
    /// The message.
    pub text: String,
    /// How many times it arrived.
    pub count: usize,
    /// `egui` time it (last) arrived; `None` until shown once.
    pub since: Option<f64>,
    /// A file it is about (a converted clip): offered to open, and kept until dismissed.
    pub file: Option<std::path::PathBuf>,
}

/// Notifications shown at most this many at a time (the rest wait).
const VISIBLE: usize = 5;

/// The notification list.
#[derive(Debug, Default)]
pub struct Toasts {
    items: Vec<Toast>,
}

impl Toasts {
    /// Adds a message (or counts a repeat of one still shown).
    pub fn push(&mut self, level: Level, text: impl Into<String>) {
        self.push_inner(level, text.into(), None);
    }

    /// Adds a message about `file` with buttons to open it and its folder; it
    /// stays until dismissed.
    pub fn push_file(&mut self, level: Level, text: impl Into<String>, file: std::path::PathBuf) {
        self.push_inner(level, text.into(), Some(file));
    }

    fn push_inner(&mut self, level: Level, text: String, file: Option<std::path::PathBuf>) {
        if let Some(t) = self
            .items
            .iter_mut()
            .find(|t| t.text == text && t.level == level)
        {
            t.count += 1;
            t.since = None;
            return;
        }
        self.items.push(Toast {
            level,
            text,
            count: 1,
            since: None,
            file,
        });
    }

    /// Current notifications, oldest first.
    pub fn items(&self) -> &[Toast] {
        &self.items
    }

    /// Paints the list on a foreground layer and handles dismissal and expiry.
    /// Returns a file or folder the user asked to open (the caller opens it off
    /// the UI thread: a launcher may take its time).
    pub fn show(&mut self, ctx: &Context) -> Option<std::path::PathBuf> {
        let now = ctx.input(|i| i.time);
        for t in &mut self.items {
            if t.since.is_none() {
                t.since = Some(now);
            }
        }
        self.items
            .retain(|t| match (t.level.lifetime_secs(), t.since) {
                (Some(life), Some(since)) => t.file.is_some() || now - since < life,
                _ => true,
            });
        if let Some(next) = self
            .items
            .iter()
            .filter(|t| t.file.is_none())
            .filter_map(|t| Some(t.level.lifetime_secs()? - (now - t.since?)))
            .reduce(f64::min)
        {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(next.max(0.05)));
        }
        if self.items.is_empty() {
            return None;
        }
        let mut dismiss: Option<usize> = None;
        let mut dismiss_all = false;
        let mut open: Option<std::path::PathBuf> = None;
        let hidden = self.items.len().saturating_sub(VISIBLE);
        egui::Area::new(Id::unique("p2a-toasts"))
            .order(Order::Foreground)
            .anchor(Align2::RIGHT_BOTTOM, vec2(-12.0, -12.0))
            .show(ctx, |ui| {
                ui.set_max_width(420.0);
                for (i, t) in self.items.iter().enumerate().skip(hidden) {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.horizontal(|ui| {
                            let label = match t.level {
                                Level::Info => "Info",
                                Level::Warning => "Warning",
                                Level::Error => "Error",
                            };
                            ui.label(RichText::new(label).strong().color(t.level.color()));
                            if ui.small_button("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                        let text = if t.count > 1 {
                            format!("{} (x{})", t.text, t.count)
                        } else {
                            t.text.clone()
                        };
                        ui.add(egui::Label::new(text).wrap());
                        if let Some(file) = &t.file {
                            ui.horizontal(|ui| {
                                let folder = file.parent().unwrap_or(file.as_path());
                                for (label, target) in
                                    [("Open", file.as_path()), ("Show folder", folder)]
                                {
                                    if ui.small_button(label).clicked() {
                                        open = Some(target.to_path_buf());
                                    }
                                }
                            });
                        }
                    });
                }
                if self.items.len() > 1 {
                    ui.horizontal(|ui| {
                        if hidden > 0 {
                            ui.weak(format!("{hidden} older notifications"));
                        }
                        if ui.small_button("Dismiss all").clicked() {
                            dismiss_all = true;
                        }
                    });
                }
            });
        if dismiss_all {
            self.items.clear();
        } else if let Some(i) = dismiss {
            self.items.remove(i);
        }
        open
    }
}
