//! Training: configuration, losses, the step-by-step trainer, checkpoints, metrics
//! and the command/event protocol.

pub mod checkpoint;
pub mod config;
pub mod events;
pub mod losses;
pub mod metrics;
pub mod step;
pub mod trainer;

pub use config::{Duration, LiveParams, Preset, TrainConfig};
pub use events::{FinishReason, LossValues, Phase, RgbImage8, StepStats, TrainCommand, TrainEvent};
pub use trainer::{TrainError, Trainer};
