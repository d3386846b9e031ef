//! Training: configuration, losses, the step-by-step trainer, the run folder
//! (checkpoints, metrics, samples), and the command/event protocol.

pub mod config;
pub mod events;
pub mod losses;
pub mod metrics;
pub mod run_dir;
pub mod snapshot;
pub mod step;
pub mod trainer;

pub use config::{ConfigError, Duration, LiveParams, ParentModel, Preset, TrainConfig};
pub use events::{FinishReason, LossValues, Phase, RgbImage8, StepStats, TrainCommand, TrainEvent};
pub use run_dir::RunDirError;
pub use snapshot::GeneratorSnapshot;
pub use trainer::{TrainError, Trainer};
