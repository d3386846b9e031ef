//! What panels ask the app to do. Panels only push [`UiCommand`]s; the app applies
//! them once, at the end of the frame, so side effects happen in one place.

use std::path::PathBuf;

use super::state::Tab;
use super::worker::{FolderRole, WorkerRequest};
use crate::train::TrainCommand;

/// A request from a panel, applied by [`super::studio::StudioApp`] after the frame's UI.
#[must_use]
#[derive(Debug, Clone)]
pub enum UiCommand {
    /// Send this to the worker as is.
    Worker(WorkerRequest),
    /// Use a new training folder (remembered, then scanned).
    SetFolder(FolderRole, PathBuf),
    /// Start a new run with the current settings.
    StartTraining,
    /// Resume a run folder's newest checkpoint.
    ResumeRun {
        /// The run folder.
        dir: PathBuf,
        /// A new run length (to continue a finished run); `None` keeps the run's own.
        duration: Option<crate::train::Duration>,
    },
    /// Pause, resume, stop or save the running trainer.
    Train(TrainCommand),
    /// Show a sample-timeline cell (step, photo index) in the compare view.
    OpenSample {
        /// Sample step.
        step: usize,
        /// Validation photo index.
        index: usize,
    },
    /// Switch views.
    ShowTab(Tab),
    /// Add photos to the convert list.
    AddPhotos(Vec<PathBuf>),
    /// Open a model file (.pt, .safetensors, .bpk or a model folder) and, once it
    /// loads, use it as model A.
    ImportModel(PathBuf),
    /// Re-list the runs under the checkpoints folder.
    RefreshRuns,
    /// Look for VGG weights again (after the user located a file).
    CheckVgg,
    /// Convert a folder with model A (the output folder must lie outside it).
    ConvertFolder {
        /// Input folder.
        input: PathBuf,
        /// Output folder.
        output: PathBuf,
    },
    /// Stop the running folder conversion after the current file.
    CancelBatch,
    /// Convert clip `id` of the Convert list into `output` with model A.
    ConvertVideo {
        /// The clip's id in the Convert list.
        id: u64,
        /// The output file.
        output: std::path::PathBuf,
    },
    /// Stop the running video conversion (its partial output is removed).
    CancelVideo,
    /// Download and install a table entry by name.
    Download(String),
    /// Stop the running download (resumable later).
    CancelDownload,
}
