//! [`RunState`]: everything the UI knows about the current (or last) run, built
//! from trainer events. Plain data, read by every panel, written only by the
//! studio's event handling.

use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{UpsampleMode, VggSource};
use crate::train::{FinishReason, GeneratorSnapshot, LiveParams, StepStats};

/// What the current (or last) run is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// No run yet.
    Idle,
    /// The training thread is creating the device and models.
    Starting,
    /// Images are being decoded and cached.
    Preparing {
        /// Files done.
        done: usize,
        /// Files in all.
        total: usize,
    },
    /// Stepping.
    Running,
    /// Paused between steps.
    Paused,
    /// Stop requested; saving the last checkpoint.
    Stopping,
    /// Ended.
    Finished(FinishReason),
}

/// Everything the UI knows about the current run (plain data from trainer events).
#[derive(Debug, Clone)]
pub struct RunState {
    /// Status.
    pub status: RunStatus,
    /// Run folder.
    pub run_dir: Option<PathBuf>,
    /// Device description.
    pub device: Option<String>,
    /// VGG weights used.
    pub vgg: Option<VggSource>,
    /// Step the run (re)started at.
    pub start_step: usize,
    /// Total steps.
    pub total_steps: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Content-only steps at the start.
    pub init_steps: usize,
    /// Batch size of the run.
    pub batch_size: usize,
    /// Decoder upsampling of the run's generator.
    pub upsample: UpsampleMode,
    /// The newest step's figures.
    pub last: Option<StepStats>,
    /// Newest checkpoint: step and folder.
    pub latest_checkpoint: Option<(usize, PathBuf)>,
    /// Usable photos, style images and skipped files of the run's dataset.
    pub dataset: Option<(usize, usize, usize)>,
    /// The error that ended the run.
    pub error: Option<String>,
    /// Live parameters last sent to (or loaded from) the trainer.
    pub live_sent: Option<LiveParams>,
    /// The trainer's last confirmation: first step using them, and the values.
    pub live_applied: Option<(usize, LiveParams)>,
    /// Whether the user asked for a checkpoint (so its arrival is announced).
    pub save_requested: bool,
    /// The trainer's generator as last sent on request (Convert's live weights).
    pub live_weights: Option<Arc<GeneratorSnapshot>>,
    /// A snapshot was asked for and has not arrived; cleared by the answer and by
    /// anything that ends the run, so no spinner outlives the trainer.
    pub live_weights_pending: bool,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            status: RunStatus::Idle,
            run_dir: None,
            device: None,
            vgg: None,
            start_step: 0,
            total_steps: 0,
            steps_per_epoch: 1,
            init_steps: 0,
            batch_size: 1,
            upsample: UpsampleMode::default(),
            last: None,
            latest_checkpoint: None,
            dataset: None,
            error: None,
            live_sent: None,
            live_applied: None,
            save_requested: false,
            live_weights: None,
            live_weights_pending: false,
        }
    }
}

impl RunState {
    /// Whether a run is in progress (settings that shape it are locked).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            RunStatus::Starting
                | RunStatus::Preparing { .. }
                | RunStatus::Running
                | RunStatus::Paused
                | RunStatus::Stopping
        )
    }

    /// Whether the trainer is stepping or paused, so a command is served now.
    pub fn is_stepping(&self) -> bool {
        matches!(self.status, RunStatus::Running | RunStatus::Paused)
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.last
            .as_ref()
            .map(|s| s.step)
            .unwrap_or(self.start_step)
    }

    /// One-line status for the top bar.
    pub fn headline(&self) -> String {
        match &self.status {
            RunStatus::Idle => "No run yet".into(),
            RunStatus::Starting => "Starting...".into(),
            RunStatus::Preparing { done, total } => format!("Preparing images {done}/{total}"),
            RunStatus::Running => format!("Training: step {}/{}", self.step(), self.total_steps),
            RunStatus::Paused => format!("Paused at step {}/{}", self.step(), self.total_steps),
            RunStatus::Stopping => "Stopping (saving a checkpoint)...".into(),
            RunStatus::Finished(FinishReason::Completed) => {
                format!("Finished: {} steps", self.step())
            }
            RunStatus::Finished(FinishReason::Stopped) => {
                format!("Stopped at step {}", self.step())
            }
            RunStatus::Finished(FinishReason::Failed) => "Failed (see the notification)".into(),
        }
    }
}
