//! The studio's background side: every device, tensor, decode, dialog and file
//! operation happens here, never on the UI thread.
//!
//! The UI sends [`WorkerCommand`]s and drains [`WorkerEvent`]s (plain data over
//! crossbeam channels). Threads:
//! - `p2a-train` runs one [`Trainer`] at a time; `p2a-train-events` forwards its
//!   events (sample images converted to textures-ready pixels on the way).
//! - `p2a-convert` owns the conversion device and a small cache of loaded models;
//!   queued requests for the same photo and side are coalesced to the newest.
//! - `p2a-images` decodes photos, style variants and thumbnails (newest thumbnail
//!   request first, stale folders dropped).
//! - short named jobs (`p2a-job-…`) scan folders, open native dialogs, list runs,
//!   check VGG weights, enumerate adapters, save images and convert folders; a job
//!   whose name is already running is refused.
//!
//! Every sender wakes the UI with `request_repaint` after sending.

use eframe::egui;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use burn::tensor::{Device, DeviceType};
use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::ColorImage;
use image::RgbImage;

use super::state::DeviceSetting;
use super::widgets::tiled::PreparedImage;
use crate::convert::{ConvertOptions, convert_batch, convert_image, plan_jobs, save_image};
use crate::data::image_io::decode_rgb;
use crate::data::preprocess::{center_crop, resize_short_side, style_variants};
use crate::data::{SkippedFile, scan_folder};
use crate::device::{Adapter, DeviceChoice, SelectedDevice, select, wgpu_adapters};
use crate::model::{Generator, UpsampleMode};
use crate::model_io::load_generator;
use crate::train::checkpoint::{
    ModelInfo, TrainState, files, latest_checkpoint, list_checkpoints, list_models, read_json,
};
use crate::train::{
    FinishReason, LiveParams, LossValues, TrainCommand, TrainConfig, TrainEvent, Trainer,
};

/// Thumbnail bounding box in pixels.
pub const THUMBNAIL_SIDE: u32 = 96;

/// Sample grids read back from disk when a run is resumed (evenly spread).
const MAX_RESTORED_SAMPLE_SETS: usize = 48;

/// Loaded generators kept by the conversion thread.
const MODEL_CACHE_SIZE: usize = 4;

/// Wakes the UI when a worker has sent something. The context is known only once the
/// first frame runs, so the waker starts empty.
#[derive(Clone, Default)]
pub struct Waker(Arc<Mutex<Option<egui::Context>>>);

impl Waker {
    /// Records the context to wake.
    pub fn set(&self, ctx: &egui::Context) {
        if let Ok(mut slot) = self.0.lock() {
            if slot.is_none() {
                *slot = Some(ctx.clone());
            }
        }
    }

    /// Requests a repaint (no-op before the first frame).
    pub fn wake(&self) {
        if let Ok(slot) = self.0.lock() {
            if let Some(ctx) = slot.as_ref() {
                ctx.request_repaint();
            }
        }
    }
}

/// Sends events and wakes the UI.
#[derive(Clone)]
struct EventSink {
    tx: Sender<WorkerEvent>,
    waker: Waker,
}

impl EventSink {
    fn send(&self, event: WorkerEvent) {
        let _ = self.tx.send(event);
        self.waker.wake();
    }
}

/// The two training folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FolderRole {
    /// Photos (content).
    Photos,
    /// Style images.
    Style,
}

impl FolderRole {
    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Photos => "Photos",
            Self::Style => "Style",
        }
    }
}

/// Why a native dialog was opened; returned with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogPurpose {
    /// Choose a training folder.
    Folder(FolderRole),
    /// Open photos to convert.
    OpenPhotos,
    /// Choose a model file to import.
    ImportModel,
    /// Locate torchvision's VGG19 weights.
    LocateVgg,
    /// Choose where to save a converted photo.
    SaveResult {
        /// The photo's id.
        id: u64,
        /// Which model's output.
        slot: Slot,
    },
    /// Choose a folder of photos to convert.
    BatchInput,
    /// Choose the output folder of a batch whose input folder is given.
    BatchOutput(PathBuf),
}

/// The kind of native dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogKind {
    /// Pick one folder.
    PickFolder,
    /// Pick files; `(filter name, extensions)`.
    PickFiles(String, Vec<String>),
    /// Pick one file; `(filter name, extensions)`.
    PickFile(String, Vec<String>),
    /// Save a file under a suggested name.
    SaveFile(String),
}

/// A model to convert with, resolved to something [`load_generator`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Run/model folder, checkpoint `generator.bpk`, `.pt` or `.safetensors`.
    pub path: PathBuf,
    /// Upsampling rule to force (checkpoint files do not record it).
    pub upsample: Option<UpsampleMode>,
    /// Human-readable name shown beside results.
    pub label: String,
}

/// Which side of the compare view a conversion is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Model A (the main model).
    A,
    /// Model B ("compare with").
    B,
}

/// One complete checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Steps completed.
    pub step: usize,
    /// The `ckpt-…` folder.
    pub dir: PathBuf,
}

/// A run or model folder found under the checkpoints folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The folder.
    pub dir: PathBuf,
    /// Its name.
    pub name: String,
    /// Complete checkpoints, oldest first.
    pub checkpoints: Vec<CheckpointInfo>,
    /// Upsampling rule from `model.json`.
    pub upsample: UpsampleMode,
    /// Whether it was trained here (has `config.json`, so it can be resumed).
    pub resumable: bool,
}

impl RunInfo {
    /// The model spec of checkpoint `ckpt` of this run.
    pub fn spec(&self, ckpt: &CheckpointInfo) -> ModelSpec {
        ModelSpec {
            path: ckpt.dir.join(files::GENERATOR),
            upsample: Some(self.upsample),
            label: format!("{} - step {}", self.name, ckpt.step),
        }
    }
}

/// What a folder scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanSummary {
    /// Usable images.
    pub files: Vec<PathBuf>,
    /// Skipped files with reasons.
    pub skipped: Vec<SkippedFile>,
}

/// Validation photos and generator outputs of one sample step, ready for upload.
#[derive(Clone, Debug)]
pub struct SampleSet {
    /// Step the generator had completed.
    pub step: usize,
    /// The fixed validation photos.
    pub inputs: Vec<ColorImage>,
    /// Generator outputs, one per input.
    pub outputs: Vec<ColorImage>,
}

/// A run's past read back from disk before it is resumed.
#[derive(Debug, Clone)]
pub struct RunHistory {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Its configuration.
    pub config: TrainConfig,
    /// Live parameters in force at the newest checkpoint.
    pub live: LiveParams,
    /// Metrics rows: step and losses.
    pub losses: Vec<(usize, LossValues)>,
    /// Sample grids found in `samples/`.
    pub samples: Vec<SampleSet>,
    /// The newest checkpoint: step and folder.
    pub checkpoint: (usize, PathBuf),
}

/// Result of looking for VGG19 weights.
#[derive(Debug, Clone, PartialEq)]
pub enum VggStatus {
    /// Usable ImageNet weights at this path.
    Found(PathBuf),
    /// None found: training uses fixed random weights.
    Missing,
    /// The file exists but cannot be used.
    Invalid(PathBuf, String),
}

/// Outcome of a folder conversion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchSummary {
    /// Output folder.
    pub output: PathBuf,
    /// Files written.
    pub converted: usize,
    /// Outputs that existed already.
    pub skipped_existing: usize,
    /// Failures with reasons.
    pub failed: Vec<(PathBuf, String)>,
}

/// What the UI asks of the worker.
#[derive(Debug, Clone)]
pub enum WorkerCommand {
    /// List wgpu adapters ([`WorkerEvent::Adapters`]).
    EnumerateAdapters,
    /// Open a native dialog ([`WorkerEvent::DialogClosed`]).
    Dialog {
        /// Why (returned with the answer).
        purpose: DialogPurpose,
        /// Which dialog.
        kind: DialogKind,
        /// Folder to start in.
        start_dir: Option<PathBuf>,
    },
    /// Scan a training folder ([`WorkerEvent::Scanned`]).
    Scan {
        /// Which folder.
        role: FolderRole,
        /// Scan counter; answers to older scans are ignored.
        generation: u64,
        /// The folder.
        dir: PathBuf,
    },
    /// Decode a thumbnail ([`WorkerEvent::Thumbnail`]).
    Thumbnail {
        /// Which folder.
        role: FolderRole,
        /// Scan counter the index belongs to.
        generation: u64,
        /// Index in the scan's file list.
        index: usize,
        /// The file.
        path: PathBuf,
    },
    /// Compute a style image's colour, grayscale and edge-smoothed variants at
    /// training size ([`WorkerEvent::StyleVariants`]).
    StyleVariants {
        /// The style image.
        path: PathBuf,
        /// Training size (short side, centre crop).
        size: u32,
    },
    /// Look for VGG19 weights ([`WorkerEvent::Vgg`]).
    CheckVgg {
        /// A file chosen by the user; `None` looks in the torch hub cache.
        explicit: Option<PathBuf>,
    },
    /// List runs and models under a folder ([`WorkerEvent::Runs`]).
    ListRuns {
        /// The checkpoints folder.
        root: PathBuf,
    },
    /// Start a new run.
    StartTraining {
        /// Its configuration.
        config: Box<TrainConfig>,
        /// The run folder to create.
        run_dir: PathBuf,
        /// Device to train on.
        device: DeviceSetting,
    },
    /// Resume a run's newest checkpoint ([`WorkerEvent::RunRestored`] first).
    ResumeTraining {
        /// The run folder.
        run_dir: PathBuf,
        /// Device to train on.
        device: DeviceSetting,
        /// A new run length (to continue a finished run); `None` keeps the saved one.
        duration: Option<crate::train::Duration>,
    },
    /// Pass a command to the running trainer (ignored when none runs).
    Train(TrainCommand),
    /// Decode a photo to convert ([`WorkerEvent::PhotoDecoded`]).
    DecodePhoto {
        /// The UI's id for the photo.
        id: u64,
        /// The file.
        path: PathBuf,
    },
    /// Convert a decoded photo ([`WorkerEvent::Converted`]).
    Convert {
        /// The photo's id.
        id: u64,
        /// Compare-view side.
        slot: Slot,
        /// Model to use.
        model: ModelSpec,
        /// The photo.
        image: Arc<RgbImage>,
        /// Tiling and luminance options.
        options: ConvertOptions,
        /// Device to convert on.
        device: DeviceSetting,
    },
    /// Convert a folder recursively ([`WorkerEvent::BatchProgress`], [`WorkerEvent::BatchFinished`]).
    ConvertFolder {
        /// Model to use.
        model: ModelSpec,
        /// Input folder.
        input: PathBuf,
        /// Output folder (the input tree is kept).
        output: PathBuf,
        /// Tiling and luminance options.
        options: ConvertOptions,
        /// Device to convert on.
        device: DeviceSetting,
    },
    /// Write an image ([`WorkerEvent::Saved`]).
    SaveImage {
        /// The pixels.
        image: Arc<RgbImage>,
        /// Destination; the extension picks the format.
        path: PathBuf,
    },
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    /// wgpu adapter names (empty: none).
    Adapters(Vec<Adapter>),
    /// A dialog closed; `paths` is empty when cancelled.
    DialogClosed {
        /// Why it was opened.
        purpose: DialogPurpose,
        /// What was chosen.
        paths: Vec<PathBuf>,
    },
    /// A training folder was scanned.
    Scanned {
        /// Which folder.
        role: FolderRole,
        /// The scan counter sent.
        generation: u64,
        /// Files and skipped files, or why the folder is unusable.
        result: Result<ScanSummary, String>,
    },
    /// A thumbnail was decoded.
    Thumbnail {
        /// Which folder.
        role: FolderRole,
        /// The scan counter sent.
        generation: u64,
        /// Index in the file list.
        index: usize,
        /// Pixels, or why the file could not be decoded.
        result: Result<ColorImage, String>,
    },
    /// Style variants are ready: colour, grayscale, edge-smoothed grayscale.
    StyleVariants {
        /// The style image.
        path: PathBuf,
        /// The three images, or why not.
        result: Result<[ColorImage; 3], String>,
    },
    /// VGG weights status.
    Vgg(VggStatus),
    /// Runs and models found, newest first.
    Runs(Vec<RunInfo>),
    /// The training device was created.
    TrainingDevice {
        /// e.g. `cpu: Flex (2 threads)`.
        description: String,
        /// Why it is not the one asked for.
        fallback: Option<String>,
    },
    /// A resumed run's past, sent before its trainer starts.
    RunRestored(Box<RunHistory>),
    /// An event of the running trainer (samples arrive as [`WorkerEvent::Samples`]).
    Train(TrainEvent),
    /// Validation samples of the running trainer.
    Samples(SampleSet),
    /// The training thread ended; a new run may start.
    TrainingClosed,
    /// A photo to convert was decoded.
    PhotoDecoded {
        /// The photo's id.
        id: u64,
        /// Pixels and their upload-ready tiles, or why not.
        result: Result<(Arc<RgbImage>, PreparedImage), String>,
    },
    /// A conversion finished.
    Converted {
        /// The photo's id.
        id: u64,
        /// Compare-view side.
        slot: Slot,
        /// The model used.
        model: ModelSpec,
        /// Output pixels, upload-ready tiles and milliseconds taken, or why not.
        result: Result<(Arc<RgbImage>, PreparedImage, f64), String>,
    },
    /// Folder conversion progress.
    BatchProgress {
        /// Files done.
        done: usize,
        /// Files in all.
        total: usize,
    },
    /// Folder conversion ended.
    BatchFinished(Result<BatchSummary, String>),
    /// An image was written (or not).
    Saved {
        /// Destination.
        path: PathBuf,
        /// Error message, if it failed.
        result: Result<(), String>,
    },
    /// A job was refused because one of the same name is running.
    Busy(String),
    /// A job crashed (the message says which).
    JobFailed(String),
}

/// A running training thread.
struct TrainingHandle {
    commands: Sender<TrainCommand>,
    thread: JoinHandle<()>,
}

/// The UI's handle on every background thread.
pub struct Worker {
    sink: EventSink,
    events: Receiver<WorkerEvent>,
    images: Sender<WorkerCommand>,
    convert: Sender<WorkerCommand>,
    training: Option<TrainingHandle>,
    jobs: Arc<Mutex<HashSet<String>>>,
    batch_cancel: Arc<AtomicBool>,
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

impl Worker {
    /// Starts the long-lived threads.
    pub fn new() -> Self {
        let (tx, events) = unbounded();
        let sink = EventSink {
            tx,
            waker: Waker::default(),
        };
        let (images, images_rx) = unbounded();
        let (convert, convert_rx) = unbounded();
        let images_sink = sink.clone();
        spawn_named("p2a-images", move || {
            images_thread(&images_rx, &images_sink)
        });
        let convert_sink = sink.clone();
        spawn_named("p2a-convert", move || {
            convert_thread(&convert_rx, &convert_sink)
        });
        Self {
            sink,
            events,
            images,
            convert,
            training: None,
            jobs: Arc::default(),
            batch_cancel: Arc::default(),
        }
    }

    /// Lets workers wake this context.
    pub fn set_context(&self, ctx: &egui::Context) {
        self.sink.waker.set(ctx);
    }

    /// The next pending event, if any (never blocks).
    pub fn try_recv(&self) -> Option<WorkerEvent> {
        self.events.try_recv().ok()
    }

    /// Whether a training thread is alive.
    pub fn training_active(&self) -> bool {
        self.training
            .as_ref()
            .is_some_and(|t| !t.thread.is_finished())
    }

    /// Whether a job of this name runs.
    pub fn job_running(&self, name: &str) -> bool {
        self.jobs.lock().map(|j| j.contains(name)).unwrap_or(false)
    }

    /// Asks the running folder conversion to stop after the current file.
    pub fn cancel_batch(&self) {
        self.batch_cancel.store(true, Ordering::Relaxed);
    }

    /// Asks a running trainer to stop (it saves a checkpoint first). Returns
    /// whether one was running.
    pub fn stop_training(&self) -> bool {
        match &self.training {
            Some(t) if !t.thread.is_finished() => t.commands.send(TrainCommand::Stop).is_ok(),
            _ => false,
        }
    }

    /// Waits up to `limit` for the training thread to end (used on exit only).
    pub fn wait_for_training(&mut self, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        while self.training_active() && start.elapsed() < limit {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Hands a command to the thread that serves it. Never blocks.
    pub fn send(&mut self, command: WorkerCommand) {
        match command {
            WorkerCommand::Thumbnail { .. }
            | WorkerCommand::StyleVariants { .. }
            | WorkerCommand::DecodePhoto { .. } => {
                let _ = self.images.send(command);
            }
            WorkerCommand::Convert { .. } => {
                let _ = self.convert.send(command);
            }
            WorkerCommand::Train(c) => {
                if let Some(t) = &self.training {
                    let _ = t.commands.send(c);
                }
            }
            WorkerCommand::StartTraining { .. } | WorkerCommand::ResumeTraining { .. } => {
                self.start_training(command)
            }
            WorkerCommand::EnumerateAdapters => {
                self.job("adapters", |sink| {
                    sink.send(WorkerEvent::Adapters(wgpu_adapters()))
                });
            }
            WorkerCommand::Dialog {
                purpose,
                kind,
                start_dir,
            } => {
                self.job("dialog", move |sink| {
                    // rfd reports a missing dialog backend exactly like a cancel:
                    // check first so the artist gets a reason, not silence.
                    if let Some(reason) = dialog_unavailable() {
                        sink.send(WorkerEvent::JobFailed(reason));
                        return;
                    }
                    let paths = run_dialog(&kind, start_dir.as_deref());
                    sink.send(WorkerEvent::DialogClosed { purpose, paths });
                });
            }
            WorkerCommand::Scan {
                role,
                generation,
                dir,
            } => {
                self.job(&format!("scan-{}", role.label()), move |sink| {
                    let result = scan_folder(&dir)
                        .map(|r| ScanSummary {
                            files: r.files,
                            skipped: r.skipped,
                        })
                        .map_err(|e| e.to_string());
                    sink.send(WorkerEvent::Scanned {
                        role,
                        generation,
                        result,
                    });
                });
            }
            WorkerCommand::CheckVgg { explicit } => {
                self.job("vgg", move |sink| {
                    sink.send(WorkerEvent::Vgg(check_vgg(explicit)))
                });
            }
            WorkerCommand::ListRuns { root } => {
                self.job("runs", move |sink| {
                    sink.send(WorkerEvent::Runs(list_runs(&root)))
                });
            }
            WorkerCommand::ConvertFolder {
                model,
                input,
                output,
                options,
                device,
            } => {
                self.batch_cancel.store(false, Ordering::Relaxed);
                let cancel = self.batch_cancel.clone();
                self.job("batch", move |sink| {
                    let result =
                        run_batch(&model, &input, &output, &options, &device, &cancel, sink);
                    sink.send(WorkerEvent::BatchFinished(result));
                });
            }
            WorkerCommand::SaveImage { image, path } => {
                self.job(&format!("save {}", path.display()), move |sink| {
                    let result = save_image(&image, &path).map_err(|e| e.to_string());
                    sink.send(WorkerEvent::Saved { path, result });
                });
            }
        }
    }

    /// Runs `f` on a named thread unless a job of that name is running.
    fn job(&self, name: &str, f: impl FnOnce(&EventSink) + Send + 'static) {
        let Ok(mut jobs) = self.jobs.lock() else {
            return;
        };
        if !jobs.insert(name.to_string()) {
            self.sink.send(WorkerEvent::Busy(name.to_string()));
            return;
        }
        drop(jobs);
        let (sink, registry, key) = (self.sink.clone(), self.jobs.clone(), name.to_string());
        let spawned = spawn_named(&format!("p2a-job-{name}"), move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&sink)));
            if let Ok(mut jobs) = registry.lock() {
                jobs.remove(&key);
            }
            if outcome.is_err() {
                sink.send(WorkerEvent::JobFailed(format!(
                    "background job '{key}' crashed"
                )));
            }
        });
        if !spawned {
            if let Ok(mut jobs) = self.jobs.lock() {
                jobs.remove(name);
            }
        }
    }

    fn start_training(&mut self, command: WorkerCommand) {
        if self.training_active() {
            self.sink.send(WorkerEvent::Busy("training".into()));
            return;
        }
        let (commands, commands_rx) = unbounded();
        let (train_tx, train_rx) = unbounded::<TrainEvent>();
        let sink = self.sink.clone();
        spawn_named("p2a-train-events", move || {
            for event in train_rx {
                sink.send(match event {
                    TrainEvent::Samples {
                        step,
                        outputs,
                        inputs,
                        ..
                    } => WorkerEvent::Samples(SampleSet {
                        step,
                        inputs: inputs.iter().map(rgb8_to_color).collect(),
                        outputs: outputs.iter().map(rgb8_to_color).collect(),
                    }),
                    other => WorkerEvent::Train(other),
                });
            }
            sink.send(WorkerEvent::TrainingClosed);
        });
        let sink = self.sink.clone();
        let thread = std::thread::Builder::new()
            .name("p2a-train".into())
            .spawn(move || {
                let events = train_tx.clone();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    train_thread(command, &commands_rx, train_tx, &sink);
                }));
                if outcome.is_err() {
                    let _ = events.send(TrainEvent::Error(
                        "training crashed unexpectedly; the last checkpoint is kept".into(),
                    ));
                    let _ = events.send(TrainEvent::Finished {
                        step: 0,
                        reason: FinishReason::Failed,
                    });
                }
            });
        match thread {
            Ok(thread) => self.training = Some(TrainingHandle { commands, thread }),
            Err(e) => self.sink.send(WorkerEvent::Train(TrainEvent::Error(format!(
                "cannot start the training thread: {e}"
            )))),
        }
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .is_ok()
}

fn rgb8_to_color(img: &crate::train::RgbImage8) -> ColorImage {
    ColorImage::from_rgb([img.width as usize, img.height as usize], &img.pixels)
}

/// Creates the device a setting names. A named adapter is looked up among wgpu's
/// adapters; when absent, wgpu's default adapter (or the CPU) is used and the
/// fallback is reported.
pub fn resolve_device(setting: &DeviceSetting) -> SelectedDevice {
    match setting {
        DeviceSetting::Cpu => select(DeviceChoice::Cpu),
        DeviceSetting::Gpu { adapter: None } => select(DeviceChoice::Wgpu),
        DeviceSetting::Gpu {
            adapter: Some(name),
        } => {
            // The engine's `select` only offers the default adapter; pick by name here.
            let found = std::panic::catch_unwind(|| {
                Device::enumerate(DeviceType::Wgpu)
                    .into_vec()
                    .into_iter()
                    .find(|d| d.identity().is_some_and(|i| &i.name == name))
            })
            .ok()
            .flatten();
            match found {
                Some(device) => SelectedDevice {
                    device,
                    requested: DeviceChoice::Wgpu,
                    is_gpu_backend: true,
                    description: format!("wgpu: {name}"),
                    fallback_reason: None,
                },
                None => {
                    let mut d = select(DeviceChoice::Wgpu);
                    d.fallback_reason = Some(format!(
                        "adapter '{name}' not found; using {}{}",
                        d.description,
                        d.fallback_reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ));
                    d
                }
            }
        }
    }
}

fn train_thread(
    command: WorkerCommand,
    commands: &Receiver<TrainCommand>,
    events: Sender<TrainEvent>,
    sink: &EventSink,
) {
    let fail = |events: &Sender<TrainEvent>, msg: String| {
        let _ = events.send(TrainEvent::Error(msg));
        let _ = events.send(TrainEvent::Finished {
            step: 0,
            reason: FinishReason::Failed,
        });
    };
    let trainer = match command {
        WorkerCommand::StartTraining {
            config,
            run_dir,
            device,
        } => {
            let selected = resolve_device(&device);
            sink.send(WorkerEvent::TrainingDevice {
                description: selected.description.clone(),
                fallback: selected.fallback_reason.clone(),
            });
            Trainer::new(*config, &run_dir, &selected, events.clone())
        }
        WorkerCommand::ResumeTraining {
            run_dir,
            device,
            duration,
        } => {
            match restore_history(&run_dir) {
                Ok(history) => sink.send(WorkerEvent::RunRestored(Box::new(history))),
                Err(e) => return fail(&events, e),
            }
            let selected = resolve_device(&device);
            sink.send(WorkerEvent::TrainingDevice {
                description: selected.description.clone(),
                fallback: selected.fallback_reason.clone(),
            });
            Trainer::resume(&run_dir, &selected, events.clone(), duration)
        }
        _ => return,
    };
    match trainer {
        Ok(trainer) => {
            trainer.run(commands);
        }
        Err(e) => fail(&events, e.to_string()),
    }
}

/// Reads a run's configuration, live parameters, metrics and sample grids.
fn restore_history(run_dir: &Path) -> Result<RunHistory, String> {
    let config: TrainConfig = read_json(&run_dir.join("config.json")).map_err(|e| e.to_string())?;
    let (_, ckpt) = latest_checkpoint(run_dir).map_err(|e| e.to_string())?;
    let state: TrainState = read_json(&ckpt.join(files::STATE)).map_err(|e| e.to_string())?;
    let losses = read_metrics(&run_dir.join("metrics.csv"), state.step);
    let samples = read_sample_grids(&run_dir.join("samples"), state.step);
    Ok(RunHistory {
        run_dir: run_dir.to_path_buf(),
        config,
        live: state.live,
        losses,
        samples,
        checkpoint: (state.step, ckpt),
    })
}

/// Parses `metrics.csv` rows up to `up_to` (columns found by header name).
fn read_metrics(path: &Path, up_to: usize) -> Vec<(usize, LossValues)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').collect();
    let index = |name: &str| cols.iter().position(|c| *c == name);
    let term_cols: Vec<Option<usize>> = LossValues::NAMES.iter().map(|n| index(n)).collect();
    let Some(step_col) = index("step") else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let step: usize = fields.get(step_col)?.parse().ok()?;
            if step > up_to {
                return None;
            }
            let v = |i: usize| {
                term_cols[i]
                    .and_then(|c| fields.get(c))
                    .and_then(|s| s.parse::<f32>().ok())
            };
            Some((
                step,
                LossValues {
                    g_total: v(0),
                    g_adv: v(1),
                    content: v(2),
                    style: v(3),
                    color: v(4),
                    tv: v(5),
                    d_total: v(6),
                    d_real: v(7),
                    d_fake: v(8),
                    d_gray: v(9),
                    d_smooth: v(10),
                },
            ))
        })
        .collect()
}

/// Splits the `samples/step-N.png` grids (inputs on top, outputs below, square cells).
fn read_sample_grids(dir: &Path, up_to: usize) -> Vec<SampleSet> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".png")?
                .parse::<usize>()
                .ok()?;
            (step <= up_to).then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    let n = found.len();
    let keep: Vec<(usize, PathBuf)> = if n > MAX_RESTORED_SAMPLE_SETS {
        let m = MAX_RESTORED_SAMPLE_SETS;
        let picks: std::collections::BTreeSet<usize> =
            (0..m).map(|i| i * (n - 1) / (m - 1)).collect();
        picks
            .into_iter()
            .filter_map(|i| found.get(i).cloned())
            .collect()
    } else {
        found
    };
    keep.into_iter()
        .filter_map(|(step, path)| {
            let grid = image::open(&path).ok()?.to_rgb8();
            let side = grid.height() / 2;
            if side == 0 {
                return None;
            }
            let cols = grid.width() / side;
            let cell = |col: u32, row: u32| {
                let c =
                    image::imageops::crop_imm(&grid, col * side, row * side, side, side).to_image();
                ColorImage::from_rgb([side as usize, side as usize], c.as_raw())
            };
            Some(SampleSet {
                step,
                inputs: (0..cols).map(|c| cell(c, 0)).collect(),
                outputs: (0..cols).map(|c| cell(c, 1)).collect(),
            })
        })
        .collect()
}

fn check_vgg(explicit: Option<PathBuf>) -> VggStatus {
    let path = match explicit {
        Some(p) => p,
        None => match crate::interop::vgg::find_cached_vgg19() {
            Some(p) => p,
            None => return VggStatus::Missing,
        },
    };
    // Loading proves the file holds the expected tensors; the CPU device is cheap.
    match crate::interop::vgg::load_vgg19(&path, &Device::flex()) {
        Ok(_) => VggStatus::Found(path),
        Err(e) => VggStatus::Invalid(path, e.to_string()),
    }
}

fn list_runs(root: &Path) -> Vec<RunInfo> {
    list_models(root)
        .into_iter()
        .map(|dir| {
            let info: Option<ModelInfo> = read_json(&dir.join("model.json")).ok();
            let checkpoints = list_checkpoints(&dir)
                .into_iter()
                .map(|(step, dir)| CheckpointInfo { step, dir })
                .collect();
            RunInfo {
                name: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| dir.display().to_string()),
                resumable: dir.join("config.json").exists(),
                upsample: info.map(|i| i.upsample).unwrap_or_default(),
                checkpoints,
                dir,
            }
        })
        .collect()
}

/// Blocks on a future on this (job) thread; the native dialogs are async so they
/// also work where the platform wants them driven from its main loop.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => return v,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

/// Why no native file dialog can open here, if so. On Linux/BSD rfd talks to the
/// XDG desktop portal over the D-Bus session bus and falls back to `zenity`; with
/// neither (minimal window managers, Xvfb) every dialog "cancels" at once.
fn dialog_unavailable() -> Option<String> {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return None;
    }
    let has_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty());
    let has_zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("zenity").is_file()));
    (!has_bus && !has_zenity).then(|| {
        "No file dialog is available (no D-Bus session for the desktop portal, and no zenity). \
         Drop files or folders on the window instead, or install xdg-desktop-portal or zenity."
            .to_string()
    })
}

fn run_dialog(kind: &DialogKind, start_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dialog = rfd::AsyncFileDialog::new();
    if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
        dialog = dialog.set_directory(dir);
    }
    match kind {
        DialogKind::PickFolder => block_on(dialog.pick_folder())
            .map(|f| vec![f.path().to_path_buf()])
            .unwrap_or_default(),
        DialogKind::PickFiles(name, exts) => {
            block_on(dialog.add_filter(name.as_str(), exts).pick_files())
                .map(|v| v.iter().map(|f| f.path().to_path_buf()).collect())
                .unwrap_or_default()
        }
        DialogKind::PickFile(name, exts) => {
            block_on(dialog.add_filter(name.as_str(), exts).pick_file())
                .map(|f| vec![f.path().to_path_buf()])
                .unwrap_or_default()
        }
        DialogKind::SaveFile(suggested) => block_on(
            dialog
                .set_file_name(suggested.as_str())
                .add_filter("PNG", &["png"])
                .add_filter("JPEG", &["jpg", "jpeg"])
                .add_filter("WebP", &["webp"])
                .save_file(),
        )
        .map(|f| vec![f.path().to_path_buf()])
        .unwrap_or_default(),
    }
}

fn images_thread(rx: &Receiver<WorkerCommand>, sink: &EventSink) {
    let mut urgent: std::collections::VecDeque<WorkerCommand> = std::collections::VecDeque::new();
    let mut thumbs: Vec<WorkerCommand> = Vec::new();
    let mut newest_generation: HashMap<FolderRole, u64> = HashMap::new();
    loop {
        if urgent.is_empty() && thumbs.is_empty() {
            match rx.recv() {
                Ok(c) => urgent.push_back(c),
                Err(_) => return,
            }
        }
        while let Ok(c) = rx.try_recv() {
            urgent.push_back(c);
        }
        // Sort fresh commands: thumbnails go to their own stack (newest first).
        let mut rest = std::collections::VecDeque::new();
        for c in urgent.drain(..) {
            if let WorkerCommand::Thumbnail {
                role, generation, ..
            } = &c
            {
                let newest = newest_generation.entry(*role).or_insert(*generation);
                *newest = (*newest).max(*generation);
                thumbs.push(c);
            } else {
                rest.push_back(c);
            }
        }
        urgent = rest;
        thumbs.retain(|c| match c {
            WorkerCommand::Thumbnail {
                role, generation, ..
            } => newest_generation.get(role) == Some(generation),
            _ => false,
        });
        let Some(command) = urgent.pop_front().or_else(|| thumbs.pop()) else {
            continue;
        };
        let _ =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_image(command, sink)));
    }
}

fn serve_image(command: WorkerCommand, sink: &EventSink) {
    match command {
        WorkerCommand::Thumbnail {
            role,
            generation,
            index,
            path,
        } => {
            let result = decode_rgb(&path).map(|d| {
                let (w, h) = d.rgb.dimensions();
                let scale = (THUMBNAIL_SIDE as f32 / w.max(h) as f32).min(1.0);
                let (tw, th) = (
                    ((w as f32 * scale).round() as u32).max(1),
                    ((h as f32 * scale).round() as u32).max(1),
                );
                let small = image::imageops::thumbnail(&d.rgb, tw, th);
                ColorImage::from_rgb([tw as usize, th as usize], small.as_raw())
            });
            sink.send(WorkerEvent::Thumbnail {
                role,
                generation,
                index,
                result,
            });
        }
        WorkerCommand::StyleVariants { path, size } => {
            let result = decode_rgb(&path).map(|d| {
                let side = size.max(32);
                let color = center_crop(&resize_short_side(&d.rgb, side), side);
                let v = style_variants(color);
                let s = [v.color.width() as usize, v.color.height() as usize];
                [
                    ColorImage::from_rgb(s, v.color.as_raw()),
                    ColorImage::from_gray(s, v.gray.as_raw()),
                    ColorImage::from_gray(s, v.smooth_gray.as_raw()),
                ]
            });
            sink.send(WorkerEvent::StyleVariants { path, result });
        }
        WorkerCommand::DecodePhoto { id, path } => {
            let result = decode_rgb(&path).map(|d| {
                let prepared = PreparedImage::from_rgb(&d.rgb);
                (Arc::new(d.rgb), prepared)
            });
            sink.send(WorkerEvent::PhotoDecoded { id, result });
        }
        _ => {}
    }
}

/// Generators loaded on the conversion thread's device.
struct ModelCache {
    setting: Option<DeviceSetting>,
    device: Option<SelectedDevice>,
    models: Vec<(ModelSpec, Generator)>,
}

impl ModelCache {
    fn device(&mut self, setting: &DeviceSetting) -> Device {
        if self.setting.as_ref() != Some(setting) || self.device.is_none() {
            self.models.clear();
            self.device = Some(resolve_device(setting));
            self.setting = Some(setting.clone());
        }
        self.device
            .as_ref()
            .map(|d| d.device.clone())
            .unwrap_or_else(Device::flex)
    }

    /// Whether the cached device is a GPU (wgpu) one.
    fn is_gpu(&self) -> bool {
        self.device.as_ref().is_some_and(|d| d.is_gpu_backend)
    }

    fn get(
        &mut self,
        spec: &ModelSpec,
        setting: &DeviceSetting,
    ) -> Result<(Generator, Device), String> {
        let device = self.device(setting);
        if let Some(pos) = self
            .models
            .iter()
            .position(|(s, _)| s.path == spec.path && s.upsample == spec.upsample)
        {
            let entry = self.models.remove(pos);
            let g = entry.1.clone();
            self.models.push(entry);
            return Ok((g, device));
        }
        let loaded =
            load_generator(&spec.path, &device, spec.upsample).map_err(|e| e.to_string())?;
        self.models.push((spec.clone(), loaded.generator.clone()));
        if self.models.len() > MODEL_CACHE_SIZE {
            self.models.remove(0);
        }
        Ok((loaded.generator, device))
    }
}

fn convert_thread(rx: &Receiver<WorkerCommand>, sink: &EventSink) {
    let mut cache = ModelCache {
        setting: None,
        device: None,
        models: Vec::new(),
    };
    let mut pending: std::collections::VecDeque<WorkerCommand> = std::collections::VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(c) => pending.push_back(c),
                Err(_) => return,
            }
        }
        while let Ok(c) = rx.try_recv() {
            pending.push_back(c);
        }
        let Some(command) = pending.pop_front() else {
            continue;
        };
        let WorkerCommand::Convert {
            id,
            slot,
            model,
            image,
            options,
            device,
        } = command
        else {
            continue;
        };
        // Latest value wins: a newer request for the same photo and side replaces this one.
        let superseded = pending.iter().any(|c| matches!(c, WorkerCommand::Convert { id: i, slot: s, .. } if *i == id && *s == slot));
        if superseded {
            continue;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (generator, dev) = cache.get(&model, &device)?;
            let options = options_for_backend(&options, cache.is_gpu());
            let started = std::time::Instant::now();
            let out =
                convert_image(&generator, &image, &options, &dev).map_err(|e| e.to_string())?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let prepared = PreparedImage::from_rgb(&out);
            Ok((Arc::new(out), prepared, ms))
        }));
        let result = outcome.unwrap_or_else(|_| {
            cache.models.clear();
            Err("conversion crashed".to_string())
        });
        sink.send(WorkerEvent::Converted {
            id,
            slot,
            model,
            result,
        });
    }
}

/// The UI chooses only what artists see (luminance matching); tiling follows the
/// device the worker actually got: GPU tiles must fit its storage-buffer limit.
fn options_for_backend(options: &ConvertOptions, is_gpu: bool) -> ConvertOptions {
    ConvertOptions {
        match_luminance: options.match_luminance,
        ..ConvertOptions::for_backend(is_gpu)
    }
}

fn run_batch(
    model: &ModelSpec,
    input: &Path,
    output: &Path,
    options: &ConvertOptions,
    device: &DeviceSetting,
    cancel: &AtomicBool,
    sink: &EventSink,
) -> Result<BatchSummary, String> {
    let selected = resolve_device(device);
    let loaded =
        load_generator(&model.path, &selected.device, model.upsample).map_err(|e| e.to_string())?;
    let jobs = plan_jobs(&[input.to_path_buf()], output, None);
    if jobs.is_empty() {
        return Err(format!("{}: no images to convert", input.display()));
    }
    let mut last_sent = std::time::Instant::now();
    let mut progress = |done: usize, total: usize, _: &Path| {
        if done == 0 || done == total || last_sent.elapsed().as_millis() >= 100 {
            last_sent = std::time::Instant::now();
            sink.send(WorkerEvent::BatchProgress { done, total });
        }
    };
    let options = options_for_backend(options, selected.is_gpu_backend);
    let report = convert_batch(
        &loaded.generator,
        &jobs,
        &options,
        &selected.device,
        cancel,
        &mut progress,
    )
    .map_err(|e| e.to_string())?;
    Ok(BatchSummary {
        output: output.to_path_buf(),
        converted: report.converted.len(),
        skipped_existing: report.skipped_existing.len(),
        failed: report.failed,
    })
}
