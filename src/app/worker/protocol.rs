//! The messages between the UI thread and the studio's background threads.
//!
//! Each background thread has its own request type, so the compiler keeps every
//! request on its route and no thread needs a catch-all arm:
//! - [`ImageRequest`] → the image thread ([`super::images`]);
//! - [`ConvertRequest`] → the conversion thread ([`super::convert`]);
//! - [`TrainingRequest`] → the training thread ([`super::training`]);
//! - [`JobRequest`] → a short named job thread ([`super::jobs`]).
//!
//! Everything comes back to the UI as one [`WorkerEvent`] stream. Events are plain
//! data (no egui type crosses a thread: images travel as [`Rgba8`] buffers and
//! become textures on the UI thread) and failures are [`WorkerError`] values.
//! Every request gets an answer, also when its thread fails or panics.

use std::path::PathBuf;
use std::sync::Arc;

use image::RgbImage;

use crate::convert::ConvertError;
use crate::convert::finish::StyleChoice;
use crate::convert::recipe::Recipe;
use crate::data::SkippedFile;
use crate::data::scan::ScanError;
use crate::device::{Adapter, DeviceSetting};
use crate::interop::WeightsError;
use crate::model::UpsampleMode;
use crate::model_io::ModelError;
use crate::train::run_dir::{RunDirError, RunHistory, RunInfo, RunListing};
use crate::train::{Duration, GeneratorSnapshot, TrainCommand, TrainConfig, TrainEvent};

/// Thumbnail bounding box in pixels.
pub(crate) const THUMBNAIL_SIDE: u32 = 96;

/// Tile side of [`TiledPixels`]: every wgpu / GL implementation supports textures at
/// least this large.
pub(crate) const TILE_SIDE: usize = 2048;

/// Opaque RGBA8 pixels, row-major. Alpha is always 255, so the bytes are valid both
/// straight and premultiplied: the UI turns them into a texture with a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Rgba8 {
    /// `[width, height]`.
    pub size: [usize; 2],
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

impl std::fmt::Debug for Rgba8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rgba8({}x{})", self.size[0], self.size[1])
    }
}

impl Rgba8 {
    /// Opaque RGBA of RGB8 bytes (`width * height * 3`).
    pub fn from_rgb_bytes(size: [usize; 2], rgb: &[u8]) -> Self {
        let mut rgba = Vec::with_capacity(size[0] * size[1] * 4);
        for p in rgb.chunks_exact(3) {
            rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
        }
        Self { size, rgba }
    }

    /// Opaque RGBA of an RGB image.
    pub fn from_rgb(img: &RgbImage) -> Self {
        Self::from_rgb_bytes([img.width() as usize, img.height() as usize], img.as_raw())
    }

    /// Opaque RGBA of a grayscale image.
    pub fn from_gray(img: &image::GrayImage) -> Self {
        let mut rgba = Vec::with_capacity(img.as_raw().len() * 4);
        for &v in img.as_raw() {
            rgba.extend_from_slice(&[v, v, v, 255]);
        }
        Self {
            size: [img.width() as usize, img.height() as usize],
            rgba,
        }
    }

    /// Opaque RGBA of a trainer's sample image.
    pub fn from_sample(img: &crate::train::RgbImage8) -> Self {
        Self::from_rgb_bytes([img.width as usize, img.height as usize], &img.pixels)
    }
}

/// An image of any size cut into tiles no GPU refuses, prepared off the UI thread
/// and uploaded once by [`crate::app::widgets::tiled::TiledTexture`].
#[derive(Clone)]
pub struct TiledPixels {
    /// Full size in pixels `[width, height]`.
    pub size: [usize; 2],
    /// `(x, y, tile)`: each tile's top-left pixel and its pixels.
    pub tiles: Vec<(usize, usize, Rgba8)>,
}

impl std::fmt::Debug for TiledPixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TiledPixels({}x{}, {} tiles)",
            self.size[0],
            self.size[1],
            self.tiles.len()
        )
    }
}

impl TiledPixels {
    /// Converts and tiles an RGB image (the pixel loop the UI thread must not run).
    pub fn from_rgb(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut tiles = Vec::new();
        for y in (0..h).step_by(TILE_SIDE) {
            for x in (0..w).step_by(TILE_SIDE) {
                let (tw, th) = (TILE_SIDE.min(w - x), TILE_SIDE.min(h - y));
                let crop = image::imageops::crop_imm(img, x as u32, y as u32, tw as u32, th as u32)
                    .to_image();
                tiles.push((x, y, Rgba8::from_rgb_bytes([tw, th], crop.as_raw())));
            }
        }
        Self {
            size: [w, h],
            tiles,
        }
    }

    /// A single-tile image (at most [`TILE_SIDE`] per side).
    pub fn single(image: Rgba8) -> Self {
        Self {
            size: image.size,
            tiles: vec![(0, 0, image)],
        }
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
    /// Choose a model file to fine-tune from.
    StartFrom,
    /// Choose where to save a converted photo.
    SaveResult {
        /// The photo's id.
        id: u64,
        /// Which model's output.
        slot: Slot,
    },
    /// Choose where to write a converted video clip.
    SaveVideo {
        /// The clip's id.
        id: u64,
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

/// A model to convert with, resolved to something
/// [`load_generator`](crate::model_io::load_generator) opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Run/model folder, checkpoint `generator.bpk`, `.pt` or `.safetensors`.
    pub path: PathBuf,
    /// Upsampling rule to force (checkpoint files do not record it).
    pub upsample: Option<UpsampleMode>,
    /// Human-readable name shown beside results.
    pub label: String,
    /// A running trainer's current weights: used instead of reading `path` (then
    /// the run folder, where a fine-tune's parent is found).
    pub snapshot: Option<Arc<GeneratorSnapshot>>,
}

impl ModelSpec {
    /// The spec of a model file or folder the user imported.
    pub fn imported(path: &std::path::Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        Self {
            path: path.to_path_buf(),
            upsample: None,
            label: format!("{name} (imported)"),
            snapshot: None,
        }
    }

    /// The live weights of the run in `run_dir`.
    pub fn live(run_dir: &std::path::Path, snapshot: Arc<GeneratorSnapshot>) -> Self {
        Self {
            path: run_dir.to_path_buf(),
            upsample: Some(snapshot.upsample),
            label: format!("Active run - live weights, step {}", snapshot.step),
            snapshot: Some(snapshot),
        }
    }

    /// The spec of checkpoint `ckpt` of a listed run.
    pub fn of_checkpoint(run: &RunInfo, ckpt: &crate::train::run_dir::CheckpointInfo) -> Self {
        Self {
            path: ckpt.dir.join(crate::train::run_dir::files::GENERATOR),
            upsample: Some(run.upsample),
            label: format!("{} - step {}", run.name, ckpt.step),
            snapshot: None,
        }
    }
}

/// Which side of the compare view a conversion is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Model A (the main model).
    A,
    /// Model B ("compare with").
    B,
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
    pub inputs: Vec<Rgba8>,
    /// Generator outputs, one per input.
    pub outputs: Vec<Rgba8>,
}

/// Result of looking for VGG19 weights.
#[derive(Debug)]
pub enum VggStatus {
    /// Usable ImageNet weights at this path.
    Found(PathBuf),
    /// None found: training uses fixed random weights.
    Missing,
    /// The file exists but cannot be used.
    Invalid(PathBuf, WeightsError),
    /// The check itself failed (its thread crashed).
    Unknown(WorkerError),
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
    /// Failures with reasons (the other files were still converted).
    pub failed: Vec<(PathBuf, String)>,
    /// Stopped early by Cancel.
    pub cancelled: bool,
}

/// A model file that was opened and checked before the studio offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedModel {
    /// How to load it for conversion.
    pub spec: ModelSpec,
    /// e.g. `paprika.pt (PyTorch port)`.
    pub description: String,
}

/// A converted photo.
#[derive(Debug, Clone)]
pub struct Converted {
    /// Output pixels.
    pub image: Arc<RgbImage>,
    /// The same, tiled for upload.
    pub pixels: TiledPixels,
    /// Milliseconds the conversion took.
    pub millis: f64,
    /// Whether the network ran; `false` when only finishing touches changed and
    /// its earlier output was reused.
    pub network_ran: bool,
    /// How it was made (saved into the PNG with it).
    pub recipe: Recipe,
}

/// Short jobs that run one at a time; a second request is answered with
/// [`WorkerEvent::Busy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusiveJob {
    /// A native file dialog (platforms allow one).
    Dialog,
    /// A folder conversion.
    Batch,
    /// A download (one at a time: they share the network and the disk).
    Download,
    /// A video conversion (one at a time: each takes every core).
    Video,
}

/// Why a background request failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// An image could not be decoded.
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// A folder could not be scanned.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// A download failed (cancelled, network, checksum, install).
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    /// A conversion failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A video could not be read, converted or written.
    #[error(transparent)]
    Video(#[from] crate::video::VideoError),
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A run folder could not be read.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// A run could not start or failed outside the trainer's own reporting.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// A folder holds nothing to convert.
    #[error("{0}: no images to convert")]
    NothingToConvert(PathBuf),
    /// No native file dialog can open on this desktop.
    #[error(
        "No file dialog is available (no D-Bus session for the desktop portal, and no zenity). \
         Drop files or folders on the window instead, or install xdg-desktop-portal or zenity."
    )]
    NoDialog,
    /// The desktop could not open a file (no default application, no launcher).
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The file or folder.
        path: PathBuf,
        /// The launcher's answer.
        reason: String,
    },
    /// The thread serving the request panicked; the request was not completed.
    #[error("{what} crashed unexpectedly ({detail}); nothing was written")]
    Crashed {
        /// What was being done.
        what: &'static str,
        /// The panic message.
        detail: String,
    },
    /// A background thread could not be started.
    #[error("cannot start a background thread: {0}")]
    Spawn(String),
}

impl WorkerError {
    /// The error for a caught panic payload.
    pub(crate) fn crashed(what: &'static str, payload: &(dyn std::any::Any + Send)) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Self::Crashed { what, detail }
    }
}

/// Requests for the image thread: decoding for display, newest thumbnails first.
#[derive(Debug, Clone)]
pub enum ImageRequest {
    /// Decode a thumbnail ([`WorkerEvent::Thumbnail`]).
    Thumbnail {
        /// Which folder.
        role: FolderRole,
        /// Scan counter the index belongs to (older ones are dropped).
        generation: u64,
        /// Index in the scan's file list.
        index: usize,
        /// The file.
        path: PathBuf,
    },
    /// A style image's colour, grayscale and edge-smoothed variants at training
    /// size ([`WorkerEvent::StyleVariants`]).
    StyleVariants {
        /// The style image.
        path: PathBuf,
        /// Training size (short side, centre crop).
        size: u32,
    },
    /// Decode a photo to convert ([`WorkerEvent::PhotoDecoded`]).
    DecodePhoto {
        /// The UI's id for the photo.
        id: u64,
        /// The file.
        path: PathBuf,
    },
    /// Decode one frame of a video clip with FFmpeg ([`WorkerEvent::VideoFrame`]).
    DecodeVideoFrame {
        /// The UI's id for the clip.
        id: u64,
        /// The clip.
        path: PathBuf,
        /// Where in the clip, in seconds (clamped into it).
        time_s: f64,
    },
}

/// A request for the conversion thread ([`WorkerEvent::Converted`]); a newer
/// request for the same photo and side replaces a queued older one.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    /// The photo's id.
    pub id: u64,
    /// Compare-view side.
    pub slot: Slot,
    /// Model to use.
    pub model: ModelSpec,
    /// The photo.
    pub image: Arc<RgbImage>,
    /// Strength and colour choices (tiling follows the device the thread got).
    pub style: StyleChoice,
    /// Device to convert on.
    pub device: DeviceSetting,
}

/// Requests for the training thread.
#[derive(Debug, Clone)]
pub enum TrainingRequest {
    /// Start a new run (refused with [`WorkerEvent::Refused`] while one is active).
    Start {
        /// Its configuration.
        config: Box<TrainConfig>,
        /// The run folder to create.
        run_dir: PathBuf,
        /// Device to train on.
        device: DeviceSetting,
    },
    /// Resume a run's newest intact checkpoint ([`WorkerEvent::RunRestored`] first).
    Resume {
        /// The run folder.
        run_dir: PathBuf,
        /// Device to train on.
        device: DeviceSetting,
        /// A new run length (to continue a finished run); `None` keeps the saved one.
        duration: Option<Duration>,
    },
    /// Pass a command to the running trainer.
    Control(TrainCommand),
}

/// Short jobs, each on its own named thread.
#[derive(Debug, Clone)]
pub enum JobRequest {
    /// List wgpu adapters ([`WorkerEvent::Adapters`]).
    Adapters,
    /// Open a native dialog ([`WorkerEvent::DialogClosed`]); one at a time.
    Dialog {
        /// Why (returned with the answer).
        purpose: DialogPurpose,
        /// Which dialog.
        kind: DialogKind,
        /// Folder to start in.
        start_dir: Option<PathBuf>,
    },
    /// Scan a training folder ([`WorkerEvent::Scanned`]). A newer scan of the same
    /// role makes the older answer stale; both are answered.
    Scan {
        /// Which folder.
        role: FolderRole,
        /// Scan counter.
        generation: u64,
        /// The folder.
        dir: PathBuf,
    },
    /// Look for VGG19 weights ([`WorkerEvent::Vgg`]).
    CheckVgg {
        /// Request counter; older answers are stale.
        generation: u64,
        /// A file chosen by the user; `None` looks in the torch hub cache.
        explicit: Option<PathBuf>,
    },
    /// List runs and models under a folder ([`WorkerEvent::Runs`]).
    ListRuns {
        /// Request counter; older answers are stale.
        generation: u64,
        /// The checkpoints folder.
        root: PathBuf,
    },
    /// Open a model file and check it loads ([`WorkerEvent::ModelChecked`]).
    CheckModel {
        /// The file or folder.
        path: PathBuf,
    },
    /// Convert a folder recursively ([`WorkerEvent::BatchProgress`],
    /// [`WorkerEvent::BatchFinished`]); one at a time.
    ConvertFolder {
        /// Model to use.
        model: ModelSpec,
        /// Input folder.
        input: PathBuf,
        /// Output folder (the input tree is kept).
        output: PathBuf,
        /// Strength and colour choices.
        style: StyleChoice,
        /// Device to convert on.
        device: DeviceSetting,
    },
    /// Convert a video clip on the CPU engine with smoothed statistics
    /// ([`WorkerEvent::VideoProgress`], [`WorkerEvent::VideoFinished`]); one at a time.
    ConvertVideo {
        /// Model to use.
        model: ModelSpec,
        /// The clip.
        input: PathBuf,
        /// The output file (.mp4, .mov, .mkv or .webm).
        output: PathBuf,
        /// Strength and colour choices.
        style: StyleChoice,
        /// Video codec (a `.webm` output is always VP9).
        codec: crate::video::ffmpeg::VideoCodec,
        /// Quality preset.
        quality: crate::video::ffmpeg::VideoQuality,
    },
    /// Open a file or folder in the desktop's default application
    /// ([`WorkerEvent::Opened`]).
    OpenPath {
        /// What to open.
        path: PathBuf,
    },
    /// Write an image ([`WorkerEvent::Saved`]).
    SaveImage {
        /// The pixels.
        image: Arc<RgbImage>,
        /// Destination; the extension picks the format.
        path: PathBuf,
        /// Recipe written into a PNG.
        recipe: Option<Recipe>,
    },
    /// Download and install a table entry ([`WorkerEvent::DownloadProgress`],
    /// [`WorkerEvent::Downloaded`]); one at a time.
    Download {
        /// The entry.
        entry: crate::download::Entry,
        /// Where generators are installed (`checkpoints/`).
        checkpoints_dir: PathBuf,
    },
}

/// Everything the UI can ask of the background, by destination thread.
#[derive(Debug, Clone)]
pub enum WorkerRequest {
    /// For the image thread.
    Images(ImageRequest),
    /// For the conversion thread.
    Convert(ConvertRequest),
    /// For the training thread.
    Training(TrainingRequest),
    /// A short job.
    Job(JobRequest),
}

/// Why a request was refused without being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A run is active; a second cannot start.
    TrainingActive,
    /// No run is active to receive a training command.
    NoActiveRun,
}

/// Everything the background reports to the UI thread.
#[derive(Debug)]
pub enum WorkerEvent {
    /// wgpu adapters (empty: none).
    Adapters(Vec<Adapter>),
    /// A dialog closed; `paths` is empty when cancelled.
    DialogClosed {
        /// Why it was opened.
        purpose: DialogPurpose,
        /// What was chosen.
        paths: Vec<PathBuf>,
    },
    /// A dialog could not open.
    DialogFailed(WorkerError),
    /// A training folder was scanned.
    Scanned {
        /// Which folder.
        role: FolderRole,
        /// The scan counter sent.
        generation: u64,
        /// Files and skipped files, or why the folder is unusable.
        result: Result<ScanSummary, WorkerError>,
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
        result: Result<Rgba8, WorkerError>,
    },
    /// Style variants: colour, grayscale, edge-smoothed grayscale.
    StyleVariants {
        /// The style image.
        path: PathBuf,
        /// The three images, or why not.
        result: Result<[Rgba8; 3], WorkerError>,
    },
    /// VGG weights status.
    Vgg {
        /// The request counter sent.
        generation: u64,
        /// What was found.
        status: VggStatus,
    },
    /// Runs and models found, newest first.
    Runs {
        /// The request counter sent.
        generation: u64,
        /// The listing, or why it failed.
        result: Result<RunListing, WorkerError>,
    },
    /// A model file was opened (or not).
    ModelChecked {
        /// The file.
        path: PathBuf,
        /// The model, or why it cannot be used.
        result: Result<CheckedModel, WorkerError>,
    },
    /// The training device was created.
    TrainingDevice {
        /// e.g. `cpu: Flex (2 threads)`.
        description: String,
        /// Why it is not the one asked for.
        fallback: Option<String>,
    },
    /// A resumed run's past, sent before its trainer starts. The history's own
    /// sample grids are moved to `samples`, ready for upload.
    RunRestored {
        /// Configuration, live values, losses, checkpoint and warnings.
        history: Box<RunHistory>,
        /// The sample timeline.
        samples: Vec<SampleSet>,
    },
    /// An event of the running trainer (samples arrive as [`WorkerEvent::Samples`]).
    Train(TrainEvent),
    /// Validation samples of the running trainer.
    Samples(SampleSet),
    /// A run could not start, or its thread crashed (the trainer's own failures
    /// arrive as [`TrainEvent::Error`]).
    TrainingFailed(WorkerError),
    /// The training thread ended; a new run may start. Always the last training event.
    TrainingClosed,
    /// A request was refused.
    Refused(Refusal),
    /// A photo to convert was decoded.
    PhotoDecoded {
        /// The photo's id.
        id: u64,
        /// Pixels and their upload-ready tiles, or why not.
        result: Result<(Arc<RgbImage>, TiledPixels), WorkerError>,
    },
    /// A frame of a video clip was decoded.
    VideoFrame {
        /// The clip's id.
        id: u64,
        /// Where in the clip it is (seconds, as asked).
        time_s: f64,
        /// The frame, its upload-ready tiles and the clip's description, or why not.
        result: Result<(Arc<RgbImage>, TiledPixels, crate::video::ffmpeg::VideoInfo), WorkerError>,
    },
    /// Video conversion progress.
    VideoProgress(crate::video::VideoProgress),
    /// A video conversion ended: written, cancelled ([`crate::video::VideoError::Cancelled`])
    /// or failed (also when it crashed: the progress bar must go).
    VideoFinished(Result<crate::video::VideoReport, WorkerError>),
    /// The conversion thread created its device.
    ConvertDevice {
        /// e.g. `cpu: Flex (2 threads)`.
        description: String,
        /// Why it is not the one asked for.
        fallback: Option<String>,
    },
    /// A conversion finished.
    Converted {
        /// The photo's id.
        id: u64,
        /// Compare-view side.
        slot: Slot,
        /// The model used.
        model: ModelSpec,
        /// The result, or why not.
        result: Result<Converted, WorkerError>,
    },
    /// Folder conversion progress.
    BatchProgress {
        /// Files done.
        done: usize,
        /// Files in all.
        total: usize,
    },
    /// Folder conversion ended (also when it crashed: the progress bar must go).
    BatchFinished(Result<BatchSummary, WorkerError>),
    /// Download progress of table entry `name`.
    DownloadProgress {
        /// The table entry.
        name: String,
        /// Bytes, rate and ETA.
        progress: crate::download::Progress,
    },
    /// A download ended: installed, or why not (also when it crashed).
    Downloaded {
        /// The table entry.
        name: String,
        /// Where it was installed, or why not.
        result: Result<crate::download::Installed, WorkerError>,
    },
    /// An image was written (or not).
    Saved {
        /// Destination.
        path: PathBuf,
        /// Whether it was written.
        result: Result<(), WorkerError>,
    },
    /// A file or folder was handed to the desktop (or could not be).
    Opened {
        /// What was opened.
        path: PathBuf,
        /// Whether the desktop's launcher took it.
        result: Result<(), WorkerError>,
    },
    /// An exclusive job was refused because one of its kind is running.
    Busy(ExclusiveJob),
}
