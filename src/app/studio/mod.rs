//! [`StudioApp`]: the studio. Each frame drains worker events within a time budget
//! ([`events`]), handles dropped files ([`drops`]), draws the panels (which only
//! push [`UiCommand`]s) and applies those commands in one place ([`actions`]).
//! Nothing here blocks.

mod actions;
mod drops;
mod events;

use crate::app::downloads::Downloads;
use std::time::Duration as StdDuration;

use eframe::egui;
use egui::{RichText, Ui};

use super::command::UiCommand;
use super::panels::convert::ConvertPanel;
use super::panels::dataset::DatasetPanel;
use super::panels::plots::PlotsPanel;
use super::panels::samples::SamplesPanel;
use super::panels::training::{LIVE_SETTLE_SECS, TrainingPanel};
use super::run_state::{RunState, RunStatus};
use super::state::{AppOptions, Settings, Tab};
use super::toasts::{Level, Toasts};
use super::worker::{FolderRole, JobRequest, TrainingRequest, Worker, WorkerRequest};
use crate::device::DeviceSetting;
use crate::train::TrainCommand;

/// Time per frame spent applying worker events; the rest waits for the next frame.
pub const EVENT_BUDGET: StdDuration = StdDuration::from_millis(8);

/// How long dropping the app (outside eframe's close flow) waits for a running
/// trainer to save its checkpoint and stop.
const DROP_WAIT: StdDuration = StdDuration::from_secs(120);

/// Counters that make older answers stale: a newer request always wins.
#[derive(Debug, Default)]
struct Generations {
    vgg: u64,
    runs: u64,
}

/// The window's closing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Not closing.
    No,
    /// Close asked while training: the trainer is saving; the window closes when
    /// it has stopped.
    SavingRun,
    /// Nothing left to wait for: the window may close.
    Ready,
}

/// The studio. Build it with [`StudioApp::new`] (tests) or through eframe
/// ([`super::run_gui`]); draw it with [`StudioApp::ui`].
pub struct StudioApp {
    settings: Settings,
    options: AppOptions,
    worker: Worker,
    toasts: Toasts,
    dataset: DatasetPanel,
    training: TrainingPanel,
    plots: PlotsPanel,
    samples: SamplesPanel,
    convert: ConvertPanel,
    downloads: Downloads,
    pending: Vec<UiCommand>,
    generations: Generations,
    closing: Closing,
    started: bool,
}

impl StudioApp {
    /// Creates the app and its worker threads. No window is needed: the first call
    /// to [`StudioApp::ui`] connects the worker to the context.
    pub fn new(mut settings: Settings, options: AppOptions) -> Self {
        let mut toasts = Toasts::default();
        for note in settings.repair_missing_folders() {
            toasts.push(Level::Warning, note);
        }
        if options.force_cpu {
            settings.device = DeviceSetting::Cpu;
        }
        let mut app = Self {
            settings,
            options,
            worker: Worker::new(),
            toasts,
            dataset: DatasetPanel::default(),
            training: TrainingPanel::default(),
            plots: PlotsPanel::default(),
            samples: SamplesPanel::default(),
            convert: ConvertPanel::default(),
            downloads: Downloads::default(),
            pending: Vec::new(),
            generations: Generations::default(),
            closing: Closing::No,
            started: false,
        };
        for role in [FolderRole::Photos, FolderRole::Style] {
            let dir = app.settings.folder(role).to_path_buf();
            app.pending.push(UiCommand::SetFolder(role, dir));
        }
        app.pending.push(UiCommand::CheckVgg);
        app.pending.push(UiCommand::RefreshRuns);
        if !app.options.force_cpu {
            app.worker.send(WorkerRequest::Job(JobRequest::Adapters));
        }
        app
    }

    /// Settings as they are now (what eframe persists).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Settings, to change as a control would (the next frame acts on them).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Converts the photos again with the current choices, as changing a convert
    /// control does.
    pub fn reconvert(&mut self) {
        self.convert.clear_results();
    }

    /// The current run as the UI knows it.
    pub fn run_state(&self) -> &RunState {
        &self.training.run
    }

    /// The training panel's state (runs, VGG status, adapters).
    pub fn training(&self) -> &TrainingPanel {
        &self.training
    }

    /// The loss plots' state.
    pub fn plots(&self) -> &PlotsPanel {
        &self.plots
    }

    /// The sample timeline's state.
    pub fn samples(&self) -> &SamplesPanel {
        &self.samples
    }

    /// The convert panel's state.
    pub fn convert(&self) -> &ConvertPanel {
        &self.convert
    }

    /// The dataset panel's state.
    pub fn dataset(&self) -> &DatasetPanel {
        &self.dataset
    }

    /// Notifications shown.
    pub fn toasts(&self) -> &Toasts {
        &self.toasts
    }

    /// Shows a notification.
    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.toasts.push(level, text);
    }

    /// Where closing the window stands.
    pub fn closing(&self) -> Closing {
        self.closing
    }

    /// Queues a command as if a panel had pushed it (what a click would do).
    pub fn command(&mut self, command: UiCommand) {
        self.pending.push(command);
    }

    /// The artist asked to close the window. With a run active, the trainer is
    /// asked to save and stop, and the window stays open (showing "saving…")
    /// until it has; returns whether the window may close now.
    pub fn request_close(&mut self) -> bool {
        match self.closing {
            Closing::Ready => true,
            Closing::SavingRun => false,
            Closing::No if self.worker.training_active() => {
                self.closing = Closing::SavingRun;
                if self.training.run.status != RunStatus::Stopping {
                    self.training.run.status = RunStatus::Stopping;
                    self.worker
                        .send(WorkerRequest::Training(TrainingRequest::Control(
                            TrainCommand::Stop,
                        )));
                }
                false
            }
            Closing::No => {
                self.closing = Closing::Ready;
                true
            }
        }
    }

    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        if !self.started {
            self.started = true;
            self.worker.set_context(&ctx);
            let open = std::mem::take(&mut self.options.open);
            if !open.is_empty() {
                self.open_paths(open, None);
            }
        }
        if ctx.input(|i| i.viewport().close_requested()) && !self.request_close() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
        }
        self.drain_events(&ctx);
        self.handle_dropped_files(&ctx);
        let mut out = std::mem::take(&mut self.pending);
        self.draw(ui, &mut out);
        // Only while Convert is shown: a conversion (or a snapshot of the trainer's
        // weights) nobody looks at would take CPU from training, and the weights it
        // showed would be stale by the time Convert is opened.
        if self.settings.tab == Tab::Convert {
            out.extend(self.convert.reconcile(
                &self.settings,
                &self.training.run,
                &self.training.runs,
            ));
        }
        self.sync_live(&ctx);
        if let Some(path) = self.toasts.show(&ctx) {
            self.worker
                .send(WorkerRequest::Job(JobRequest::OpenPath { path }));
        }
        drops::paint_drop_overlay(&ctx, self.settings.tab);
        if self.closing == Closing::SavingRun {
            self.saving_modal(&ctx);
        }
        for command in out {
            self.apply(command, &ctx);
        }
        if self.closing == Closing::Ready {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn draw(&mut self, ui: &mut Ui, out: &mut Vec<UiCommand>) {
        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("photo2anime");
                ui.separator();
                for (tab, label) in [
                    (Tab::Dataset, "Dataset"),
                    (Tab::Training, "Training"),
                    (Tab::Convert, "Convert"),
                ] {
                    ui.selectable_value(&mut self.settings.tab, tab, label);
                }
                ui.separator();
                ui.label(self.training.run.headline());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.menu_button("About", |ui| {
                        ui.label(RichText::new(format!("photo2anime {}", crate::VERSION)).strong());
                        ui.label(
                            "Train AnimeGANv2 on your own style and convert photos and clips.",
                        );
                        let at = crate::paths::Locations::current();
                        ui.label(format!(
                            "MIT OR Apache-2.0. Demo images: {}.",
                            at.demo.join("ATTRIBUTION.md").display()
                        ));
                        ui.separator();
                        ui.label(RichText::new(at.describe()).monospace());
                        ui.hyperlink_to(
                            "AnimeGANv2 (the method)",
                            "https://github.com/TachibanaYoshino/AnimeGANv2",
                        );
                    });
                });
            });
        });
        let run_active = self.training.run.is_active();
        match self.settings.tab {
            Tab::Dataset => {
                egui::CentralPanel::default().show(ui, |ui| {
                    self.dataset.ui(ui, &self.settings, run_active, out);
                });
            }
            Tab::Training => {
                self.dataset.hide();
                let lines = [FolderRole::Photos, FolderRole::Style].map(|r| {
                    let f = self.dataset.folder(r);
                    (
                        format!("{}: {} ({})", r.label(), f.dir().display(), f.summary()),
                        f.is_usable(),
                    )
                });
                controls_panel(ui, "training-controls", 400.0, |ui| {
                    self.training.ui(
                        ui,
                        &mut self.settings,
                        &self.options,
                        &self.downloads,
                        lines,
                        out,
                    );
                });
                egui::CentralPanel::default().show(ui, |ui| {
                    let plots_height = (ui.available_height() * 0.55).max(200.0);
                    ui.allocate_ui(egui::vec2(ui.available_width(), plots_height), |ui| {
                        self.plots.ui(ui, &mut self.settings.plots);
                    });
                    ui.separator();
                    self.samples.ui(ui, self.settings.train.sample_every, out);
                });
            }
            Tab::Convert => {
                self.dataset.hide();
                controls_panel(ui, "convert-controls", 340.0, |ui| {
                    self.convert.side_ui(
                        ui,
                        &mut self.settings,
                        &self.training.run,
                        &self.training.runs,
                        &self.downloads,
                        out,
                    );
                });
                egui::CentralPanel::default().show(ui, |ui| {
                    self.convert.view_ui(ui, &self.training.run);
                });
            }
        }
    }

    /// "Saving the run…" over the window while a close waits for the trainer.
    fn saving_modal(&mut self, ctx: &egui::Context) {
        egui::Modal::new(egui::Id::unique("p2a-closing")).show(ctx, |ui| {
            ui.heading("Saving the run before closing…");
            ui.label(
                "The trainer finishes its step and writes a checkpoint; the window closes when it is on disk.",
            );
            ui.add(egui::Spinner::new());
            if ui.button("Close without waiting").clicked() {
                // The last checkpoint already on disk stays valid (writes are atomic).
                self.closing = Closing::Ready;
            }
        });
    }

    /// Sends edited learning rates / loss weights once they settle.
    fn sync_live(&mut self, ctx: &egui::Context) {
        let run = &self.training.run;
        let accepting = matches!(
            run.status,
            RunStatus::Running
                | RunStatus::Paused
                | RunStatus::Preparing { .. }
                | RunStatus::Starting
        );
        let live = self.settings.train.live;
        if !accepting || run.live_sent == Some(live) {
            return;
        }
        // Only the artist's edits are sent (values loaded from a resumed run are already in force).
        let Some(edited) = self.training.live_edited_at else {
            return;
        };
        let now = ctx.input(|i| i.time);
        let wait = LIVE_SETTLE_SECS - (now - edited);
        if wait > 0.0 {
            ctx.request_repaint_after(StdDuration::from_secs_f64(wait));
            return;
        }
        self.training.run.live_sent = Some(live);
        self.training.live_edited_at = None;
        if let Err(e) = live.validate() {
            self.toasts
                .push(Level::Warning, format!("Live change not sent: {e}"));
            return;
        }
        self.worker
            .send(WorkerRequest::Training(TrainingRequest::Control(
                TrainCommand::SetLive(live),
            )));
    }

    /// Stops a running trainer (it saves a checkpoint) and waits for it, bounded.
    /// The window's own close goes through [`StudioApp::request_close`] instead.
    pub fn shutdown(&mut self) {
        if !self.worker.training_active() {
            return;
        }
        if self.training.run.status != RunStatus::Stopping {
            self.worker
                .send(WorkerRequest::Training(TrainingRequest::Control(
                    TrainCommand::Stop,
                )));
        }
        let start = std::time::Instant::now();
        while self.worker.training_active() && start.elapsed() < DROP_WAIT {
            std::thread::sleep(StdDuration::from_millis(50));
        }
    }
}

impl Drop for StudioApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        StudioApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

/// A resizable left panel whose contents scroll vertically.
fn controls_panel(ui: &mut Ui, id: &'static str, width: f32, contents: impl FnOnce(&mut Ui)) {
    egui::Panel::left(id)
        .resizable(true)
        .default_size(width)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt((id, "scroll"))
                .auto_shrink([false, false])
                .show(ui, contents);
        });
}
