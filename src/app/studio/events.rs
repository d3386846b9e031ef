//! Worker events applied to the panels and the run state, within a time budget per
//! frame. Every variant is handled by name: a new event cannot be forgotten.

use std::path::{Path, PathBuf};
use std::time::Instant;

use eframe::egui;

use super::{Closing, EVENT_BUDGET, StudioApp};
use crate::app::command::UiCommand;
use crate::app::run_state::RunStatus;
use crate::app::state::Tab;
use crate::app::toasts::Level;
use crate::app::worker::{
    BatchSummary, DialogKind, DialogPurpose, ExclusiveJob, FolderRole, JobRequest, Refusal,
    SampleSet, VggStatus, WorkerError, WorkerEvent, WorkerRequest,
};
use crate::train::run_dir::RunHistory;
use crate::train::{FinishReason, TrainEvent};

impl StudioApp {
    /// Applies worker events until the budget is spent; the rest wait for the next
    /// frame, which is requested at once.
    pub(super) fn drain_events(&mut self, ctx: &egui::Context) {
        let start = Instant::now();
        while start.elapsed() < EVENT_BUDGET {
            let Some(event) = self.worker.try_recv() else {
                return;
            };
            self.on_event(event, ctx);
        }
        ctx.request_repaint();
    }

    fn on_event(&mut self, event: WorkerEvent, ctx: &egui::Context) {
        match event {
            WorkerEvent::Adapters(adapters) => {
                self.settings.device = self.settings.device.resolved_default(&adapters);
                self.training.adapters = Some(adapters);
            }
            WorkerEvent::DialogClosed { purpose, paths } => self.on_dialog(purpose, paths),
            WorkerEvent::DialogFailed(e) => self.toasts.push(Level::Error, e.to_string()),
            WorkerEvent::Scanned {
                role,
                generation,
                result,
            } => self
                .dataset
                .on_scanned(role, generation, result.map_err(|e| e.to_string())),
            WorkerEvent::Thumbnail {
                role,
                generation,
                index,
                result,
            } => self.dataset.on_thumbnail(
                ctx,
                role,
                generation,
                index,
                result.map_err(|e| e.to_string()),
            ),
            WorkerEvent::StyleVariants { path, result } => {
                self.dataset
                    .on_variants(ctx, path, result.map_err(|e| e.to_string()));
            }
            WorkerEvent::Vgg { generation, status } => {
                if generation != self.generations.vgg {
                    return;
                }
                match &status {
                    VggStatus::Invalid(p, e) => self
                        .toasts
                        .push(Level::Error, format!("VGG19 weights {}: {e}", p.display())),
                    VggStatus::Unknown(e) => self.toasts.push(Level::Error, e.to_string()),
                    VggStatus::Found(_) | VggStatus::Missing => {}
                }
                self.training.vgg = Some(status);
            }
            WorkerEvent::Runs { generation, result } => {
                if generation != self.generations.runs {
                    return;
                }
                match result {
                    Ok(listing) => {
                        for problem in &listing.unreadable {
                            self.toasts
                                .push(Level::Warning, format!("Skipped a model: {problem}"));
                        }
                        self.training.runs = listing.runs;
                    }
                    Err(e) => self.toasts.push(Level::Error, e.to_string()),
                }
                self.training.runs_loaded = true;
            }
            WorkerEvent::ModelChecked { path, result } => match result {
                Ok(model) => {
                    self.settings.convert.remember_import(&path);
                    self.convert.use_model(model.spec);
                    self.settings.tab = Tab::Convert;
                    self.toasts.push(
                        Level::Info,
                        format!("Imported {} as model A", model.description),
                    );
                }
                Err(e) => self.toasts.push(
                    Level::Error,
                    format!("Cannot import {}: {e}", path.display()),
                ),
            },
            WorkerEvent::TrainingDevice {
                description,
                fallback,
            } => {
                if let Some(reason) = fallback {
                    self.toasts.push(Level::Warning, reason);
                }
                self.training.run.device = Some(description);
            }
            WorkerEvent::RunRestored { history, samples } => {
                self.on_restored(*history, samples, ctx);
            }
            WorkerEvent::Train(event) => self.on_train_event(event),
            WorkerEvent::Samples(set) => self.samples.push(ctx, set),
            WorkerEvent::TrainingFailed(e) => {
                let text = e.to_string();
                self.toasts
                    .push(Level::Error, format!("Training stopped: {text}"));
                self.training.run.error = Some(text);
                self.training.run.status = RunStatus::Finished(FinishReason::Failed);
            }
            WorkerEvent::TrainingClosed => {
                self.training.run.live_weights_pending = false;
                if self.training.run.is_active() {
                    self.training.run.status = RunStatus::Finished(FinishReason::Failed);
                }
                if self.closing == Closing::SavingRun {
                    self.closing = Closing::Ready;
                }
                self.pending.push(UiCommand::RefreshRuns);
            }
            WorkerEvent::Refused(refusal) => self.on_refused(refusal),
            WorkerEvent::PhotoDecoded { id, result } => {
                self.convert
                    .on_decoded(ctx, id, result.map_err(|e| e.to_string()));
            }
            WorkerEvent::VideoFrame { id, time_s, result } => {
                self.convert
                    .on_video_frame(ctx, id, time_s, result.map_err(|e| e.to_string()));
            }
            WorkerEvent::VideoProgress(progress) => self.convert.on_video_progress(progress),
            WorkerEvent::VideoFinished(result) => self.on_video_finished(result),
            WorkerEvent::ConvertDevice {
                description,
                fallback,
            } => self.on_convert_device(description, fallback),
            WorkerEvent::Converted {
                id,
                slot,
                model,
                result,
            } => {
                let result = result.map_err(|e| e.to_string());
                if let Some(e) = self.convert.on_converted(ctx, id, slot, model, result) {
                    self.toasts.push(Level::Error, e);
                }
            }
            WorkerEvent::BatchProgress { done, total } => {
                self.convert.on_batch_progress(done, total);
            }
            WorkerEvent::BatchFinished(result) => self.on_batch_finished(result),
            WorkerEvent::DownloadProgress { name, progress } => {
                self.downloads.on_progress(&name, progress);
            }
            WorkerEvent::Downloaded { name, result } => self.on_downloaded(&name, result),
            WorkerEvent::Saved { path, result } => match result {
                Ok(()) => self
                    .toasts
                    .push(Level::Info, format!("Saved {}", path.display())),
                Err(e) => self.toasts.push(Level::Error, e.to_string()),
            },
            WorkerEvent::Opened { result, .. } => {
                if let Err(e) = result {
                    self.toasts.push(Level::Error, e.to_string());
                }
            }
            WorkerEvent::Busy(job) => self.on_busy(job),
        }
    }

    fn on_refused(&mut self, refusal: Refusal) {
        match refusal {
            Refusal::TrainingActive => {
                self.toasts.push(Level::Info, "A run is already active.");
            }
            Refusal::NoActiveRun => {
                self.training.run.live_weights_pending = false;
                if self.training.run.is_active() {
                    self.training.run.status = RunStatus::Finished(FinishReason::Failed);
                }
                self.toasts.push(Level::Info, "No run is active any more.");
            }
        }
    }

    fn on_convert_device(&mut self, description: String, fallback: Option<String>) {
        if let Some(reason) = fallback {
            self.toasts
                .push(Level::Warning, format!("Conversion: {reason}"));
        }
        self.convert.device = Some(description);
    }

    fn on_busy(&mut self, job: ExclusiveJob) {
        if job == ExclusiveJob::Download {
            self.downloads.refused();
        }
        let text = match job {
            ExclusiveJob::Dialog => "A file dialog is already open.",
            ExclusiveJob::Batch => "A folder conversion is already running.",
            ExclusiveJob::Download => "A download is already running.",
            ExclusiveJob::Video => "A video conversion is already running.",
        };
        self.toasts.push(Level::Info, text);
    }

    fn on_downloaded(
        &mut self,
        name: &str,
        result: Result<crate::download::Installed, WorkerError>,
    ) {
        match result {
            Ok(installed) => {
                self.downloads.on_finished(name, None);
                let what = if installed.already_present {
                    "was already installed"
                } else {
                    "installed"
                };
                self.toasts.push(
                    Level::Info,
                    format!("{name} {what}: {}", installed.path.display()),
                );
                // VGG19 lands in the torch cache: recheck it. A generator lands in
                // checkpoints/: list it, so every model picker offers it.
                self.pending.push(UiCommand::CheckVgg);
                self.pending.push(UiCommand::RefreshRuns);
            }
            Err(e) => {
                let text = e.to_string();
                self.downloads.on_finished(name, Some(text.clone()));
                self.toasts.push(Level::Error, format!("{name}: {text}"));
            }
        }
    }

    fn on_restored(&mut self, h: RunHistory, samples: Vec<SampleSet>, ctx: &egui::Context) {
        self.plots.reset();
        self.samples.reset();
        for (step, losses) in &h.losses {
            self.plots.history.push(*step, losses);
        }
        for set in samples {
            self.samples.push(ctx, set);
        }
        for warning in h.warnings {
            self.toasts.push(Level::Warning, warning);
        }
        self.settings.adopt_run(&h.config, h.live);
        // Rescan, so the Dataset view shows the run's folders.
        for (role, dir) in [
            (FolderRole::Photos, h.config.photos_dir.clone()),
            (FolderRole::Style, h.config.style_dir.clone()),
        ] {
            self.pending.push(UiCommand::SetFolder(role, dir));
        }
        let run = &mut self.training.run;
        run.live_sent = Some(h.live);
        run.upsample = h.config.upsample;
        run.batch_size = h.config.batch_size;
        run.latest_checkpoint = Some(h.checkpoint);
        run.run_dir = Some(h.run_dir);
    }

    fn on_video_finished(&mut self, result: Result<crate::video::VideoReport, WorkerError>) {
        self.convert.on_video_finished();
        match result {
            Ok(r) => {
                let cuts = match r.scene_cuts {
                    0 => String::new(),
                    n => format!(", {n} scene cuts"),
                };
                self.toasts.push_file(
                    Level::Info,
                    format!(
                        "Converted video into {}: {} frames in {:.0} s ({:.2} frames/s){cuts}",
                        r.output.display(),
                        r.frames,
                        r.seconds,
                        r.frames as f64 / r.seconds.max(1e-9)
                    ),
                    r.output,
                );
            }
            Err(WorkerError::Video(crate::video::VideoError::Cancelled)) => self.toasts.push(
                Level::Info,
                "Video conversion cancelled; nothing was written.",
            ),
            Err(e) => self
                .toasts
                .push(Level::Error, format!("Video conversion failed: {e}")),
        }
    }

    fn on_batch_finished(&mut self, result: Result<BatchSummary, WorkerError>) {
        self.convert.on_batch_finished(result.as_ref().ok());
        match result {
            Ok(s) => {
                let mut text = if s.cancelled {
                    format!(
                        "Folder conversion cancelled after {} images (in {})",
                        s.converted,
                        s.output.display()
                    )
                } else {
                    format!(
                        "Converted {} images into {}",
                        s.converted,
                        s.output.display()
                    )
                };
                if s.skipped_existing > 0 {
                    text += &format!(" ({} existing kept)", s.skipped_existing);
                }
                if !s.failed.is_empty() {
                    text += &format!("; {} failed (listed in the Convert view)", s.failed.len());
                }
                let level = if s.failed.is_empty() {
                    Level::Info
                } else {
                    Level::Warning
                };
                self.toasts.push(level, text);
            }
            Err(e) => self
                .toasts
                .push(Level::Error, format!("Folder conversion failed: {e}")),
        }
    }

    fn on_train_event(&mut self, event: TrainEvent) {
        let run = &mut self.training.run;
        match event {
            TrainEvent::Preparing { done, total } => {
                run.status = RunStatus::Preparing { done, total };
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
                init_steps,
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
                run.init_steps = init_steps;
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
            // The forwarder turns samples into WorkerEvent::Samples; none arrive here.
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
            TrainEvent::Snapshot(snapshot) => {
                run.live_weights_pending = false;
                run.live_weights = Some(snapshot);
            }
            TrainEvent::Warning(msg) => self.toasts.push(Level::Warning, msg),
            TrainEvent::Error(error) => {
                let text = error.to_string();
                self.toasts
                    .push(Level::Error, format!("Training stopped: {text}"));
                run.error = Some(text);
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
                    (FinishReason::Failed, None) => {
                        format!("Run ended at step {step}; no checkpoint had been saved yet")
                    }
                    (FinishReason::Completed | FinishReason::Stopped, None) => {
                        format!("Run ended at step {step}")
                    }
                };
                let level = if reason == FinishReason::Failed {
                    Level::Warning
                } else {
                    Level::Info
                };
                self.toasts.push(level, text);
                run.status = RunStatus::Finished(reason);
                // The final checkpoint holds these weights now; the trainer answers no more.
                run.live_weights_pending = false;
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
            DialogPurpose::StartFrom => {
                self.settings.train.init_from = Some(first);
            }
            DialogPurpose::LocateVgg => {
                self.settings.train.vgg_path = Some(first);
                self.pending.push(UiCommand::CheckVgg);
            }
            DialogPurpose::SaveResult { id, slot } => {
                self.settings.convert.last_dir = parent;
                match self.convert.result_of(id, slot) {
                    Some((image, recipe)) => {
                        self.worker.send(WorkerRequest::Job(JobRequest::SaveImage {
                            image,
                            path: first,
                            recipe: Some(recipe),
                        }))
                    }
                    None => self.toasts.push(
                        Level::Warning,
                        "That result is no longer available; convert the photo again.",
                    ),
                }
            }
            DialogPurpose::SaveVideo { id } => {
                self.settings.convert.last_dir = parent;
                self.pending
                    .push(UiCommand::ConvertVideo { id, output: first });
            }
            DialogPurpose::BatchInput => {
                self.worker.send(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::BatchOutput(first.clone()),
                    kind: DialogKind::PickFolder,
                    start_dir: first.parent().map(Path::to_path_buf),
                }));
            }
            DialogPurpose::BatchOutput(input) => {
                self.pending.push(UiCommand::ConvertFolder {
                    input,
                    output: first,
                });
            }
        }
    }
}
