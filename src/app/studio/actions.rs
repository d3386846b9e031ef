//! [`UiCommand`]s applied in one place at the end of the frame: the only code that
//! changes settings on a panel's behalf and sends requests to the worker.

use eframe::egui;

use super::StudioApp;
use crate::app::command::UiCommand;
use crate::app::run_state::{RunState, RunStatus};
use crate::app::state::Tab;
use crate::app::toasts::Level;
use crate::app::worker::{JobRequest, TrainingRequest, WorkerRequest};
use crate::train::TrainCommand;
use crate::train::run_dir::new_run_dir;

impl StudioApp {
    pub(super) fn apply(&mut self, command: UiCommand, ctx: &egui::Context) {
        match command {
            UiCommand::Worker(request) => self.worker.send(request),
            UiCommand::SetFolder(role, dir) => {
                self.settings.set_folder(role, dir.clone());
                let scan = self.dataset.rescan(role, &dir);
                self.worker.send(WorkerRequest::Job(scan));
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
                self.worker
                    .send(WorkerRequest::Training(TrainingRequest::Resume {
                        run_dir: dir,
                        device: self.settings.device.clone(),
                        duration,
                    }));
            }
            UiCommand::Train(c) => {
                if c == TrainCommand::Stop {
                    self.training.run.status = RunStatus::Stopping;
                }
                if c == TrainCommand::SaveNow {
                    self.training.run.save_requested = true;
                }
                if c == TrainCommand::Snapshot {
                    self.training.run.live_weights_pending = true;
                }
                self.worker
                    .send(WorkerRequest::Training(TrainingRequest::Control(c)));
            }
            UiCommand::OpenSample { step, index } => {
                if let Some((before, after)) = self.samples.cell(step, index) {
                    self.convert.show_sample(step, index, before, after);
                    self.settings.tab = Tab::Convert;
                }
            }
            UiCommand::ShowTab(tab) => self.settings.tab = tab,
            UiCommand::AddPhotos(paths) => {
                for request in self.convert.add_photos(&paths) {
                    self.worker.send(request);
                }
                self.settings.tab = Tab::Convert;
            }
            UiCommand::ImportModel(path) => {
                // Opened at once: a broken file is reported now, and only a model
                // that loads becomes model A.
                self.toasts
                    .push(Level::Info, format!("Opening {}…", path.display()));
                self.worker
                    .send(WorkerRequest::Job(JobRequest::CheckModel { path }));
            }
            UiCommand::RefreshRuns => {
                self.generations.runs += 1;
                self.worker.send(WorkerRequest::Job(JobRequest::ListRuns {
                    generation: self.generations.runs,
                    root: self.options.checkpoints_dir.clone(),
                }));
            }
            UiCommand::CheckVgg => {
                self.generations.vgg += 1;
                self.training.vgg = None;
                self.worker.send(WorkerRequest::Job(JobRequest::CheckVgg {
                    generation: self.generations.vgg,
                    explicit: self.settings.train.vgg_path.clone(),
                }));
            }
            UiCommand::ConvertFolder { input, output } => self.convert_folder(input, output),
            UiCommand::CancelBatch => self.worker.cancel_batch(),
            UiCommand::ConvertVideo { id, output } => self.convert_video(id, output),
            UiCommand::CancelVideo => self.worker.cancel_video(),
            UiCommand::Download(name) => match self.downloads.entry(&name).cloned() {
                Some(entry) => {
                    self.downloads.started(&name);
                    self.worker.send(WorkerRequest::Job(JobRequest::Download {
                        entry,
                        checkpoints_dir: self.options.checkpoints_dir.clone(),
                    }));
                }
                None => self
                    .toasts
                    .push(Level::Error, format!("{name} is not in the download table")),
            },
            UiCommand::CancelDownload => self.worker.cancel_download(),
        }
        ctx.request_repaint();
    }

    fn convert_video(&mut self, id: u64, output: std::path::PathBuf) {
        let Some(input) = self.convert.clip_path(id) else {
            self.toasts
                .push(Level::Warning, "That clip is no longer in the list.");
            return;
        };
        let Some(model) = self.convert.model_a_spec(&self.training.run) else {
            self.toasts.push(Level::Warning, "Choose a model first.");
            return;
        };
        self.convert.on_video_started(&input);
        self.worker
            .send(WorkerRequest::Job(JobRequest::ConvertVideo {
                model,
                input,
                output,
                style: self.settings.convert.style(),
                codec: self.settings.convert.video_codec,
                quality: self.settings.convert.video_quality,
            }));
    }

    fn convert_folder(&mut self, input: std::path::PathBuf, output: std::path::PathBuf) {
        if output.starts_with(&input) {
            self.toasts.push(
                Level::Warning,
                "Choose an output folder outside the input folder.",
            );
            return;
        }
        let Some(model) = self.convert.model_a_spec(&self.training.run) else {
            self.toasts.push(Level::Warning, "Choose a model first.");
            return;
        };
        self.convert.on_batch_started();
        self.worker
            .send(WorkerRequest::Job(JobRequest::ConvertFolder {
                model,
                input,
                output,
                style: self.settings.convert.style(),
                device: self.settings.device.clone(),
            }));
    }

    fn start_training(&mut self) {
        if self.worker.training_active() {
            self.toasts.push(Level::Info, "A run is already active.");
            return;
        }
        let config = self.settings.train.clone();
        if let Err(e) = config.validate() {
            self.toasts.push(Level::Error, format!("Cannot start: {e}"));
            return;
        }
        let run_dir = new_run_dir(&self.options.checkpoints_dir);
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
        self.worker
            .send(WorkerRequest::Training(TrainingRequest::Start {
                config: Box::new(config),
                run_dir,
                device: self.settings.device.clone(),
            }));
    }
}
