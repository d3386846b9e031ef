//! [`StudioApp`]: the frame loop. Each frame drains worker events within a time
//! budget, draws the panels (which only push [`UiCommand`]s), then applies the
//! commands in one place. Nothing here blocks.

use eframe::egui;

use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use egui::{Align2, Color32, FontId, Id, LayerId, Order, Ui};

use super::command::UiCommand;
use super::panels::convert::{ConvertPanel, imported_spec, is_model_file, is_photo_file};
use super::panels::dataset::DatasetPanel;
use super::panels::plots::PlotsPanel;
use super::panels::samples::SamplesPanel;
use super::panels::training::{LIVE_SETTLE_SECS, RunState, RunStatus, TrainingPanel};
use super::state::{AppOptions, DeviceSetting, Settings, Tab};
use super::toasts::{Level, Toasts};
use super::worker::{
    DialogKind, DialogPurpose, FolderRole, VggStatus, Worker, WorkerCommand, WorkerEvent,
};
use crate::train::{FinishReason, TrainCommand, TrainEvent};

/// Time per frame spent applying worker events; the rest waits for the next frame.
pub const EVENT_BUDGET: StdDuration = StdDuration::from_millis(8);

/// How long closing the window waits for a running trainer to save and stop.
const EXIT_WAIT: StdDuration = StdDuration::from_secs(20);

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
    pending: Vec<UiCommand>,
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
            pending: Vec::new(),
            started: false,
        };
        for role in [FolderRole::Photos, FolderRole::Style] {
            let dir = app.folder(role).to_path_buf();
            let scan = app.dataset.rescan(role, &dir);
            app.worker.send(scan);
        }
        app.worker.send(WorkerCommand::CheckVgg {
            explicit: app.settings.vgg_path.clone(),
        });
        app.worker.send(WorkerCommand::ListRuns {
            root: app.options.checkpoints_dir.clone(),
        });
        if !app.options.force_cpu {
            app.worker.send(WorkerCommand::EnumerateAdapters);
        }
        app
    }

    /// Settings as they are now (what eframe persists).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The current run as the UI knows it.
    pub fn run_state(&self) -> &RunState {
        &self.training.run
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

    fn folder(&self, role: FolderRole) -> &Path {
        match role {
            FolderRole::Photos => &self.settings.photos_dir,
            FolderRole::Style => &self.settings.style_dir,
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
        self.drain_events(&ctx);
        self.handle_dropped_files(&ctx);
        let mut out = std::mem::take(&mut self.pending);

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
            });
        });
        let run_active = self.training.run.is_active();
        match self.settings.tab {
            Tab::Dataset => {
                egui::CentralPanel::default().show(ui, |ui| {
                    self.dataset.ui(ui, &self.settings, run_active, &mut out);
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
                    self.training
                        .ui(ui, &mut self.settings, &self.options, lines, &mut out);
                });
                egui::CentralPanel::default().show(ui, |ui| {
                    let plots_height = (ui.available_height() * 0.55).max(200.0);
                    ui.allocate_ui(egui::vec2(ui.available_width(), plots_height), |ui| {
                        self.plots.ui(ui, &mut self.settings.plots);
                    });
                    ui.separator();
                    self.samples
                        .ui(ui, self.settings.train.sample_every, &mut out);
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
                        &mut out,
                    );
                });
                egui::CentralPanel::default().show(ui, |ui| {
                    self.convert.view_ui(ui, &self.training.run);
                });
            }
        }
        for c in self
            .convert
            .reconcile(&self.settings, &self.training.run, &self.training.runs)
        {
            out.push(UiCommand::Worker(c));
        }
        self.sync_live(&ctx);
        self.toasts.show(&ctx);
        paint_drop_overlay(&ctx, self.settings.tab);
        for command in out {
            self.apply(command, &ctx);
        }
    }

    /// Applies worker events until the budget is spent.
    fn drain_events(&mut self, ctx: &egui::Context) {
        let start = Instant::now();
        while start.elapsed() < EVENT_BUDGET {
            let Some(event) = self.worker.try_recv() else {
                return;
            };
            self.on_event(event, ctx);
        }
        ctx.request_repaint();
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
        if !accepting || run.live_sent == Some(self.settings.train.live) {
            return;
        }
        // Only the user's edits are sent (values loaded from a resumed run are already in force).
        let Some(edited) = self.training.live_edited_at else {
            return;
        };
        let now = ctx.input(|i| i.time);
        let wait = LIVE_SETTLE_SECS - (now - edited);
        if wait > 0.0 {
            ctx.request_repaint_after(StdDuration::from_secs_f64(wait));
            return;
        }
        if let Err(e) = self.settings.train.live.validate() {
            self.toasts
                .push(Level::Warning, format!("Live change not sent: {e}"));
            self.training.run.live_sent = Some(self.settings.train.live);
            return;
        }
        self.training.run.live_sent = Some(self.settings.train.live);
        self.training.live_edited_at = None;
        self.worker.send(WorkerCommand::Train(TrainCommand::SetLive(
            self.settings.train.live,
        )));
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
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
    fn open_paths(&mut self, paths: Vec<PathBuf>, pointer: Option<egui::Pos2>) {
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
            } else if is_photo_file(&path) {
                photos.push(path);
            } else {
                self.toasts.push(
                    Level::Warning,
                    format!("{}: not a photo or a model file", path.display()),
                );
            }
        }
        if !photos.is_empty() {
            self.pending.push(UiCommand::AddPhotos(photos));
        }
    }

    fn on_event(&mut self, event: WorkerEvent, ctx: &egui::Context) {
        match event {
            WorkerEvent::Adapters(adapters) => {
                // The default is the first hardware adapter; a machine with only a
                // software rasterizer (lavapipe) trains far faster on Flex.
                if let DeviceSetting::Gpu { adapter: None } = &self.settings.device {
                    self.settings.device = match adapters.iter().find(|a| a.is_hardware) {
                        Some(gpu) => DeviceSetting::Gpu {
                            adapter: Some(gpu.name.clone()),
                        },
                        None => DeviceSetting::Cpu,
                    };
                }
                self.training.adapters = Some(adapters);
            }
            WorkerEvent::DialogClosed { purpose, paths } => self.on_dialog(purpose, paths),
            WorkerEvent::Scanned {
                role,
                generation,
                result,
            } => self.dataset.on_scanned(role, generation, result),
            WorkerEvent::Thumbnail {
                role,
                generation,
                index,
                result,
            } => {
                self.dataset
                    .on_thumbnail(ctx, role, generation, index, result);
            }
            WorkerEvent::StyleVariants { path, result } => {
                self.dataset.on_variants(ctx, path, result)
            }
            WorkerEvent::Vgg(status) => {
                if let VggStatus::Invalid(p, e) = &status {
                    self.toasts
                        .push(Level::Error, format!("VGG19 weights {}: {e}", p.display()));
                }
                self.training.vgg = Some(status);
            }
            WorkerEvent::Runs(runs) => self.training.runs = runs,
            WorkerEvent::TrainingDevice {
                description,
                fallback,
            } => {
                if let Some(reason) = fallback {
                    self.toasts.push(Level::Warning, reason);
                }
                self.training.run.device = Some(description);
            }
            WorkerEvent::RunRestored(history) => {
                let h = *history;
                self.plots.reset();
                self.samples.reset();
                for (step, losses) in &h.losses {
                    self.plots.history.push(*step, losses);
                }
                for set in h.samples {
                    self.samples.push(ctx, set);
                }
                self.settings.train.copy_from_config(&h.config, h.live);
                for (role, dir) in [
                    (FolderRole::Photos, &h.config.photos_dir),
                    (FolderRole::Style, &h.config.style_dir),
                ] {
                    if self.folder(role) != dir.as_path() {
                        self.pending.push(UiCommand::SetFolder(role, dir.clone()));
                    }
                }
                let run = &mut self.training.run;
                run.live_sent = Some(h.live);
                run.upsample = h.config.upsample;
                run.batch_size = h.config.batch_size;
                run.latest_checkpoint = Some(h.checkpoint);
                run.run_dir = Some(h.run_dir);
            }
            WorkerEvent::Train(event) => self.on_train_event(event),
            WorkerEvent::Samples(set) => self.samples.push(ctx, set),
            WorkerEvent::TrainingClosed => {
                if self.training.run.is_active() {
                    self.training.run.status = RunStatus::Finished(FinishReason::Failed);
                }
                self.pending.push(UiCommand::RefreshRuns);
            }
            WorkerEvent::PhotoDecoded { id, result } => self.convert.on_decoded(ctx, id, result),
            WorkerEvent::Converted {
                id,
                slot,
                model,
                result,
            } => {
                if let Some(e) = self.convert.on_converted(ctx, id, slot, model, result) {
                    self.toasts.push(Level::Error, e);
                }
            }
            WorkerEvent::BatchProgress { done, total } => {
                self.convert.on_batch_progress(done, total)
            }
            WorkerEvent::BatchFinished(result) => {
                self.convert.on_batch_finished();
                match result {
                    Ok(s) => {
                        let mut text = format!(
                            "Converted {} images into {}",
                            s.converted,
                            s.output.display()
                        );
                        if s.skipped_existing > 0 {
                            text += &format!(" ({} existing kept)", s.skipped_existing);
                        }
                        self.toasts.push(Level::Info, text);
                        for (path, reason) in s.failed.iter().take(5) {
                            self.toasts
                                .push(Level::Warning, format!("{}: {reason}", path.display()));
                        }
                    }
                    Err(e) if e == "cancelled" => self
                        .toasts
                        .push(Level::Info, "Folder conversion cancelled."),
                    Err(e) => self
                        .toasts
                        .push(Level::Error, format!("Folder conversion failed: {e}")),
                }
            }
            WorkerEvent::Saved { path, result } => match result {
                Ok(()) => self
                    .toasts
                    .push(Level::Info, format!("Saved {}", path.display())),
                Err(e) => self.toasts.push(Level::Error, e),
            },
            WorkerEvent::Busy(name) => {
                if name == "dialog" {
                    self.toasts
                        .push(Level::Info, "A file dialog is already open.");
                } else if name == "batch" {
                    self.toasts
                        .push(Level::Info, "A folder conversion is already running.");
                }
            }
            WorkerEvent::JobFailed(msg) => self.toasts.push(Level::Error, msg),
        }
    }

    fn on_train_event(&mut self, event: TrainEvent) {
        let run = &mut self.training.run;
        match event {
            TrainEvent::Preparing { done, total } => {
                run.status = RunStatus::Preparing { done, total }
            }
            TrainEvent::DatasetReady {
                photos,
                style,
                skipped,
            } => {
                if !skipped.is_empty() {
                    self.toasts.push(
                        Level::Warning,
                        format!(
                            "{} files were skipped (see the Dataset view for reasons).",
                            skipped.len()
                        ),
                    );
                }
                run.dataset = Some((photos, style, skipped.len()));
            }
            TrainEvent::Started {
                run_dir,
                device,
                vgg,
                start_step,
                total_steps,
                steps_per_epoch,
            } => {
                if run.status != RunStatus::Stopping && run.status != RunStatus::Paused {
                    run.status = RunStatus::Running;
                }
                run.run_dir = Some(run_dir);
                run.device = Some(device);
                run.vgg = Some(vgg);
                run.start_step = start_step;
                run.total_steps = total_steps;
                run.steps_per_epoch = steps_per_epoch.max(1);
                run.init_steps = self.settings.train.init_epochs * run.steps_per_epoch;
                self.plots.phase_change =
                    (run.init_steps > 0 && run.init_steps < total_steps).then_some(run.init_steps);
                self.pending.push(UiCommand::RefreshRuns);
            }
            TrainEvent::Step(stats) => {
                self.plots.history.push(stats.step, &stats.losses);
                if run.status == RunStatus::Starting
                    || matches!(run.status, RunStatus::Preparing { .. })
                {
                    run.status = RunStatus::Running;
                }
                run.last = Some(stats);
            }
            TrainEvent::Samples { .. } => {}
            TrainEvent::CheckpointSaved { step, path } => {
                if run.save_requested {
                    run.save_requested = false;
                    self.toasts
                        .push(Level::Info, format!("Checkpoint saved at step {step}"));
                }
                run.latest_checkpoint = Some((step, path));
            }
            TrainEvent::LiveApplied { step, params } => {
                self.plots.markers.push(step);
                run.live_applied = Some((step, params));
            }
            TrainEvent::Paused { .. } => {
                if run.status != RunStatus::Stopping {
                    run.status = RunStatus::Paused;
                }
            }
            TrainEvent::Resumed { .. } => {
                if run.status != RunStatus::Stopping {
                    run.status = RunStatus::Running;
                }
            }
            TrainEvent::Warning(msg) => {
                // Skipped files are summarised by DatasetReady and listed in the Dataset view.
                if !msg.starts_with("skipped ") {
                    self.toasts.push(Level::Warning, msg);
                }
            }
            TrainEvent::Error(msg) => {
                self.toasts
                    .push(Level::Error, format!("Training stopped: {msg}"));
                run.error = Some(msg);
            }
            TrainEvent::Finished { step, reason } => {
                let text = match (&reason, &run.latest_checkpoint) {
                    (FinishReason::Completed, Some((s, p))) => format!(
                        "Run finished at step {step}; checkpoint (step {s}) in {}",
                        p.display()
                    ),
                    (FinishReason::Stopped, Some((s, p))) => format!(
                        "Run stopped at step {step}; checkpoint (step {s}) in {}",
                        p.display()
                    ),
                    (FinishReason::Failed, Some((s, p))) => format!(
                        "The last good checkpoint (step {s}) is kept in {}",
                        p.display()
                    ),
                    _ => format!("Run ended at step {step}"),
                };
                let level = if reason == FinishReason::Failed {
                    Level::Warning
                } else {
                    Level::Info
                };
                self.toasts.push(level, text);
                run.status = RunStatus::Finished(reason);
            }
        }
    }

    fn on_dialog(&mut self, purpose: DialogPurpose, paths: Vec<PathBuf>) {
        let Some(first) = paths.first().cloned() else {
            return;
        };
        let parent = if first.is_dir() {
            Some(first.clone())
        } else {
            first.parent().map(Path::to_path_buf)
        };
        match purpose {
            DialogPurpose::Folder(role) => self.pending.push(UiCommand::SetFolder(role, first)),
            DialogPurpose::OpenPhotos => {
                self.settings.convert.last_dir = parent;
                self.pending.push(UiCommand::AddPhotos(paths));
            }
            DialogPurpose::ImportModel => {
                self.settings.convert.last_dir = parent;
                self.pending.push(UiCommand::ImportModel(first));
            }
            DialogPurpose::LocateVgg => {
                self.settings.vgg_path = Some(first);
                self.pending.push(UiCommand::CheckVgg);
            }
            DialogPurpose::SaveResult { id, slot } => {
                self.settings.convert.last_dir = parent;
                match self.convert.result_of(id, slot) {
                    Some(image) => self
                        .worker
                        .send(WorkerCommand::SaveImage { image, path: first }),
                    None => self.toasts.push(
                        Level::Warning,
                        "That result is no longer available; convert the photo again.",
                    ),
                }
            }
            DialogPurpose::BatchInput => {
                self.worker.send(WorkerCommand::Dialog {
                    purpose: DialogPurpose::BatchOutput(first.clone()),
                    kind: DialogKind::PickFolder,
                    start_dir: first.parent().map(Path::to_path_buf),
                });
            }
            DialogPurpose::BatchOutput(input) => {
                if first.starts_with(&input) {
                    self.toasts.push(
                        Level::Warning,
                        "Choose an output folder outside the input folder.",
                    );
                    return;
                }
                match self.convert.model_a_spec(&self.training.run) {
                    Some(model) => {
                        self.convert.on_batch_started();
                        self.worker.send(WorkerCommand::ConvertFolder {
                            model,
                            input,
                            output: first,
                            options: crate::convert::ConvertOptions {
                                match_luminance: self.settings.convert.match_luminance,
                                ..Default::default()
                            },
                            device: self.settings.device.clone(),
                        });
                    }
                    None => self.toasts.push(Level::Warning, "Choose a model first."),
                }
            }
        }
    }

    fn apply(&mut self, command: UiCommand, ctx: &egui::Context) {
        match command {
            UiCommand::Worker(c) => self.worker.send(c),
            UiCommand::SetFolder(role, dir) => {
                match role {
                    FolderRole::Photos => self.settings.photos_dir = dir.clone(),
                    FolderRole::Style => self.settings.style_dir = dir.clone(),
                }
                let scan = self.dataset.rescan(role, &dir);
                self.worker.send(scan);
            }
            UiCommand::StartTraining => self.start_training(),
            UiCommand::ResumeRun { dir, duration } => {
                if self.worker.training_active() {
                    self.toasts.push(Level::Info, "Stop the active run first.");
                    return;
                }
                self.plots.reset();
                self.samples.reset();
                self.training.run = RunState {
                    status: RunStatus::Starting,
                    run_dir: Some(dir.clone()),
                    ..RunState::default()
                };
                self.worker.send(WorkerCommand::ResumeTraining {
                    run_dir: dir,
                    device: self.settings.device.clone(),
                    duration,
                });
            }
            UiCommand::Train(c) => {
                if c == TrainCommand::Stop {
                    self.training.run.status = RunStatus::Stopping;
                }
                self.worker.send(WorkerCommand::Train(c));
            }
            UiCommand::OpenSample { step, index } => {
                if let Some((before, after)) = self.samples.cell(step, index) {
                    self.convert.show_sample(step, index, before, after);
                    self.settings.tab = Tab::Convert;
                }
            }
            UiCommand::ShowTab(tab) => self.settings.tab = tab,
            UiCommand::AddPhotos(paths) => {
                for c in self.convert.add_photos(&paths) {
                    self.worker.send(c);
                }
                self.settings.tab = Tab::Convert;
            }
            UiCommand::ImportModel(path) => {
                self.settings.convert.remember_import(&path);
                self.convert.use_model(imported_spec(&path));
                self.settings.tab = Tab::Convert;
                self.toasts.push(
                    Level::Info,
                    format!("Imported {} as model A", path.display()),
                );
            }
            UiCommand::RefreshRuns => self.worker.send(WorkerCommand::ListRuns {
                root: self.options.checkpoints_dir.clone(),
            }),
            UiCommand::CheckVgg => {
                self.training.vgg = None;
                self.worker.send(WorkerCommand::CheckVgg {
                    explicit: self.settings.vgg_path.clone(),
                });
            }
            UiCommand::CancelBatch => self.worker.cancel_batch(),
            UiCommand::Notify(level, text) => self.toasts.push(level, text),
        }
        ctx.request_repaint();
    }

    fn start_training(&mut self) {
        if self.worker.training_active() {
            self.toasts.push(Level::Info, "A run is already active.");
            return;
        }
        let config = self.settings.train_config();
        if let Err(e) = config.validate() {
            self.toasts.push(Level::Error, format!("Cannot start: {e}"));
            return;
        }
        let run_dir = unique_run_dir(&self.options.checkpoints_dir);
        self.plots.reset();
        self.samples.reset();
        self.training.run = RunState {
            status: RunStatus::Starting,
            run_dir: Some(run_dir.clone()),
            upsample: config.upsample,
            batch_size: config.batch_size,
            live_sent: Some(config.live),
            ..RunState::default()
        };
        self.worker.send(WorkerCommand::StartTraining {
            config: Box::new(config),
            run_dir,
            device: self.settings.device.clone(),
        });
    }

    /// Stops a running trainer (it saves a checkpoint) and waits a little for it.
    pub fn shutdown(&mut self) {
        if self.worker.stop_training() {
            self.worker.wait_for_training(EXIT_WAIT);
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

/// `run-YYYYMMDD-HHMMSS` (UTC) under `root`, suffixed when taken.
pub fn unique_run_dir(root: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let base = format!(
        "run-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        t / 3600,
        (t / 60) % 60,
        t % 60
    );
    let mut dir = root.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = root.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Dims the window and says what a drop will do while files hover over it.
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

fn paint_drop_overlay(ctx: &egui::Context, tab: Tab) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
