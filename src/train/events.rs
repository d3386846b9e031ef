//! The plain-data messages between a trainer and whoever drives it (CLI or GUI).
//!
//! Commands go in over a channel and are applied between steps; events come out.
//! No tensor or device ever crosses: images are RGB bytes, weights host `f32`s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::LiveParams;
use crate::data::SkippedFile;
use crate::model::VggSource;

/// What a driver asks a running trainer to do; applied before the next step.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainCommand {
    /// Stop stepping until [`TrainCommand::Resume`].
    Pause,
    /// Continue after a pause.
    Resume,
    /// Save a checkpoint and end the run.
    Stop,
    /// Save a checkpoint now and continue.
    SaveNow,
    /// Replace learning rates and loss weights from the next step on.
    SetLive(LiveParams),
    /// Send the generator's current weights ([`TrainEvent::Snapshot`]).
    Snapshot,
}

/// Training phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Content-only generator pre-training.
    Init,
    /// D and G updates with every loss.
    Adversarial,
}

impl Phase {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Adversarial => "adversarial",
        }
    }
}

/// Every loss term of one step; terms not computed in the phase are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    /// Weighted generator objective.
    pub g_total: Option<f32>,
    /// Unweighted LSGAN generator term `mean((D(G(p)) - 1)^2)`.
    pub g_adv: Option<f32>,
    /// Unweighted content L1.
    pub content: Option<f32>,
    /// Unweighted Gram style L1.
    pub style: Option<f32>,
    /// Unweighted YUV colour loss.
    pub color: Option<f32>,
    /// Unweighted total variation.
    pub tv: Option<f32>,
    /// Weighted discriminator objective.
    pub d_total: Option<f32>,
    /// `mean((D(a) - 1)^2)`.
    pub d_real: Option<f32>,
    /// `mean(D(G(p))^2)`.
    pub d_fake: Option<f32>,
    /// `mean(D(gray(a))^2)`.
    pub d_gray: Option<f32>,
    /// `mean(D(smooth(a))^2)`.
    pub d_smooth: Option<f32>,
}

impl LossValues {
    /// Column names in metrics.csv order.
    pub const NAMES: [&'static str; 11] = [
        "g_total", "g_adv", "content", "style", "color", "tv", "d_total", "d_real", "d_fake",
        "d_gray", "d_smooth",
    ];

    /// Values in [`LossValues::NAMES`] order.
    pub fn as_array(&self) -> [Option<f32>; 11] {
        [
            self.g_total,
            self.g_adv,
            self.content,
            self.style,
            self.color,
            self.tv,
            self.d_total,
            self.d_real,
            self.d_fake,
            self.d_gray,
            self.d_smooth,
        ]
    }

    /// The first term that is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .zip(self.as_array())
            .find(|(_, v)| v.is_some_and(|v| !v.is_finite()))
            .map(|(n, _)| *n)
    }
}

/// Progress figures of one finished step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Steps done so far (1 after the first step).
    pub step: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    /// Epoch of this step (0-based).
    pub epoch: usize,
    /// Phase of this step.
    pub phase: Phase,
    /// Loss terms.
    pub losses: LossValues,
    /// Wall time of the step.
    pub step_ms: f64,
    /// Photos per second, averaged over recent steps.
    pub images_per_sec: f64,
    /// Estimated seconds to the end.
    pub eta_secs: f64,
    /// Seconds of training so far in this session.
    pub elapsed_secs: f64,
}

/// An RGB8 image as plain bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage8 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, row-major RGB.
    pub pixels: Vec<u8>,
}

impl RgbImage8 {
    /// Converts from the `image` crate's buffer.
    pub fn from_image(img: &image::RgbImage) -> Self {
        Self {
            width: img.width(),
            height: img.height(),
            pixels: img.as_raw().clone(),
        }
    }

    /// Converts to the `image` crate's buffer.
    pub fn to_image(&self) -> Option<image::RgbImage> {
        image::RgbImage::from_raw(self.width, self.height, self.pixels.clone())
    }
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// All steps done.
    Completed,
    /// Stopped by the driver.
    Stopped,
    /// An error ended it (the message is in [`TrainEvent::Error`]).
    Failed,
}

/// What a trainer reports.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// Images are being scanned / decoded / cached before step 0.
    Preparing {
        /// Files done.
        done: usize,
        /// Files in all.
        total: usize,
    },
    /// The dataset is ready.
    DatasetReady {
        /// Usable photos.
        photos: usize,
        /// Usable style images.
        style: usize,
        /// Files skipped, with reasons.
        skipped: Vec<SkippedFile>,
    },
    /// Models are built and stepping begins.
    Started {
        /// The run directory.
        run_dir: PathBuf,
        /// Device description, e.g. `wgpu: NVIDIA ...`.
        device: String,
        /// Where VGG weights came from.
        vgg: VggSource,
        /// Step the run starts at (non-zero when resumed).
        start_step: usize,
        /// Total steps.
        total_steps: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Content-only steps at the start (0 for a fine-tune by default).
        init_steps: usize,
    },
    /// One optimisation step finished.
    Step(StepStats),
    /// Validation samples at a step (step 0 included).
    Samples {
        /// The step the generator had completed.
        step: usize,
        /// Generator outputs for the fixed validation photos.
        outputs: Vec<RgbImage8>,
        /// The validation photos themselves (sent with every sample set).
        inputs: Vec<RgbImage8>,
        /// The grid PNG written to disk, if it could be written.
        path: Option<PathBuf>,
    },
    /// A checkpoint was written.
    CheckpointSaved {
        /// Step saved.
        step: usize,
        /// Checkpoint directory.
        path: PathBuf,
    },
    /// New live parameters took effect at this step.
    LiveApplied {
        /// First step using them.
        step: usize,
        /// The values.
        params: LiveParams,
    },
    /// Stepping paused.
    Paused {
        /// Steps done.
        step: usize,
    },
    /// Stepping resumed.
    Resumed {
        /// Steps done.
        step: usize,
    },
    /// The generator's weights now, in answer to [`TrainCommand::Snapshot`].
    /// Shared: a copy of ~2 M floats is made once, not per clone.
    Snapshot(std::sync::Arc<super::snapshot::GeneratorSnapshot>),
    /// Something worth telling that does not stop the run.
    Warning(String),
    /// What stopped the run; the last good checkpoint is kept. Shared, so the
    /// event stays cheap to clone while the error keeps its type.
    Error(std::sync::Arc<super::trainer::TrainError>),
    /// The run ended.
    Finished {
        /// Steps done.
        step: usize,
        /// Why.
        reason: FinishReason,
    },
}
