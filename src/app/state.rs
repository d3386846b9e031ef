//! What the studio remembers between sessions ([`Settings`], saved by eframe's
//! persistence) and the options a launcher passes in ([`AppOptions`], never saved).
//!
//! Runtime state (scans, runs, textures, results) lives in the panels and in
//! [`super::studio::StudioApp`]; nothing here holds a handle, a texture or a thread.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::train::{Duration, LiveParams, Preset, TrainConfig};

/// Everything the studio remembers. Unknown or missing fields take their defaults,
/// so settings written by an older version still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Folder of photos to train on.
    pub photos_dir: PathBuf,
    /// Folder of style images (frames of the target anime style).
    pub style_dir: PathBuf,
    /// Hyperparameters of the next run.
    pub train: TrainSettings,
    /// Compute device for training and conversion.
    pub device: DeviceSetting,
    /// torchvision `vgg19-dcbb9e9d.pth` located by the user; `None` looks in the torch hub cache.
    pub vgg_path: Option<PathBuf>,
    /// Loss plot options.
    pub plots: PlotSettings,
    /// Convert panel options.
    pub convert: ConvertSettings,
    /// The view shown.
    pub tab: Tab,
}

impl Default for Settings {
    fn default() -> Self {
        let demo = crate::demo_dir();
        Self {
            photos_dir: demo.join("photos"),
            style_dir: demo.join("style"),
            train: TrainSettings::default(),
            device: DeviceSetting::default(),
            vgg_path: None,
            plots: PlotSettings::default(),
            convert: ConvertSettings::default(),
            tab: Tab::Training,
        }
    }
}

impl Settings {
    /// The training configuration these settings describe.
    pub fn train_config(&self) -> TrainConfig {
        let t = &self.train;
        TrainConfig::new(self.photos_dir.clone(), self.style_dir.clone())
            .with_preset(t.preset)
            .with_live(t.live)
            .with_image_size(t.image_size)
            .with_batch_size(t.batch_size)
            .with_init_epochs(t.init_epochs)
            .with_duration(t.duration())
            .with_sample_every(t.sample_every)
            .with_checkpoint_every(t.checkpoint_every)
            .with_vgg_path(self.vgg_path.clone())
    }

    /// Replaces folders that no longer exist by the demo folders; returns what was replaced.
    pub fn repair_missing_folders(&mut self) -> Vec<String> {
        let demo = Settings::default();
        let mut notes = Vec::new();
        for (dir, fallback, what) in [
            (&mut self.photos_dir, demo.photos_dir, "photo"),
            (&mut self.style_dir, demo.style_dir, "style"),
        ] {
            if !dir.is_dir() && fallback.is_dir() {
                notes.push(format!(
                    "The remembered {what} folder {} no longer exists; using the demo folder.",
                    dir.display()
                ));
                *dir = fallback;
            }
        }
        notes
    }
}

/// The main views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    /// Photo and style folders.
    Dataset,
    /// Controls, loss plots and the sample timeline.
    #[default]
    Training,
    /// Converting photos with a model.
    Convert,
}

/// How a run's length is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DurationUnit {
    /// Whole epochs.
    Epochs,
    /// Optimisation steps.
    #[default]
    Steps,
}

/// Hyperparameters of the next run, as the sliders show them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// Loss-weight preset the weights came from ([`Preset::Custom`] once edited).
    pub preset: Preset,
    /// Learning rates and loss weights (changeable during a run).
    pub live: LiveParams,
    /// Square crop size in pixels (multiple of 8).
    pub image_size: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Content-only epochs at the start.
    pub init_epochs: usize,
    /// Whether [`TrainSettings::epochs`] or [`TrainSettings::steps`] applies.
    pub duration_unit: DurationUnit,
    /// Run length in epochs.
    pub epochs: usize,
    /// Run length in steps.
    pub steps: usize,
    /// Validation samples every this many steps.
    pub sample_every: usize,
    /// A checkpoint every this many steps.
    pub checkpoint_every: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self::quick_cpu()
    }
}

impl TrainSettings {
    /// A first run that shows progress within minutes on a CPU: 128 px, batch 4,
    /// one init epoch, 300 steps, samples every 20 steps.
    pub fn quick_cpu() -> Self {
        Self {
            preset: Preset::Default,
            live: LiveParams::default(),
            image_size: 128,
            batch_size: 4,
            init_epochs: 1,
            duration_unit: DurationUnit::Steps,
            epochs: 101,
            steps: 300,
            sample_every: 20,
            checkpoint_every: 100,
        }
    }

    /// A quick run for a GPU: 256 px, batch 8, 2000 steps.
    pub fn quick_gpu() -> Self {
        Self {
            image_size: 256,
            batch_size: 8,
            steps: 2000,
            sample_every: 50,
            checkpoint_every: 250,
            ..Self::quick_cpu()
        }
    }

    /// The published AnimeGANv2 recipe: 256 px, batch 12, 10 init epochs, 101 epochs.
    pub fn published() -> Self {
        let recipe = TrainConfig::new(PathBuf::new(), PathBuf::new());
        Self {
            preset: recipe.preset,
            live: recipe.live,
            image_size: recipe.image_size,
            batch_size: recipe.batch_size,
            init_epochs: recipe.init_epochs,
            duration_unit: DurationUnit::Epochs,
            epochs: match recipe.duration {
                Duration::Epochs(e) => e,
                Duration::Steps(_) => 101,
            },
            steps: 300,
            sample_every: recipe.sample_every,
            checkpoint_every: recipe.checkpoint_every,
        }
    }

    /// The run length.
    pub fn duration(&self) -> Duration {
        match self.duration_unit {
            DurationUnit::Epochs => Duration::Epochs(self.epochs.max(1)),
            DurationUnit::Steps => Duration::Steps(self.steps.max(1)),
        }
    }

    /// Takes every value from a run's configuration (used when resuming it).
    pub fn copy_from_config(&mut self, config: &TrainConfig, live: LiveParams) {
        self.preset = live.matching_preset();
        self.live = live;
        self.image_size = config.image_size;
        self.batch_size = config.batch_size;
        self.init_epochs = config.init_epochs;
        match config.duration {
            Duration::Epochs(e) => {
                self.duration_unit = DurationUnit::Epochs;
                self.epochs = e;
            }
            Duration::Steps(s) => {
                self.duration_unit = DurationUnit::Steps;
                self.steps = s;
            }
        }
        self.sample_every = config.sample_every;
        self.checkpoint_every = config.checkpoint_every;
    }
}

/// Which device trains and converts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSetting {
    /// A wgpu adapter; `None` lets wgpu pick the default one.
    Gpu {
        /// Adapter name as wgpu reports it.
        adapter: Option<String>,
    },
    /// Flex on the CPU.
    Cpu,
}

impl Default for DeviceSetting {
    fn default() -> Self {
        Self::Gpu { adapter: None }
    }
}

impl DeviceSetting {
    /// Short label for menus.
    pub fn label(&self) -> String {
        match self {
            Self::Gpu {
                adapter: Some(name),
            } => format!("GPU: {name}"),
            Self::Gpu { adapter: None } => "GPU: default adapter".to_string(),
            Self::Cpu => "CPU (Flex)".to_string(),
        }
    }
}

/// Loss plot options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlotSettings {
    /// EMA smoothing factor in `[0, 0.99]`; 0 shows raw values.
    pub smoothing: f64,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Visibility per loss term, in [`crate::train::LossValues::NAMES`] order.
    pub visible: [bool; 11],
}

impl Default for PlotSettings {
    fn default() -> Self {
        Self {
            smoothing: 0.6,
            log_y: true,
            visible: [true; 11],
        }
    }
}

/// Convert panel options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConvertSettings {
    /// Model files imported earlier (.pt, .safetensors, .bpk, model folders).
    pub imported: Vec<PathBuf>,
    /// Scale outputs to the input's mean brightness.
    pub match_luminance: bool,
    /// Folder last used in an open or save dialog.
    pub last_dir: Option<PathBuf>,
}

impl ConvertSettings {
    /// Remembers an imported model (most recent first, no duplicates).
    pub fn remember_import(&mut self, path: &Path) {
        self.imported.retain(|p| p != path);
        self.imported.insert(0, path.to_path_buf());
        self.imported.truncate(12);
    }
}

/// Options chosen by whoever launches the studio; never persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct AppOptions {
    /// Where runs are written and models are listed (`./checkpoints` in the app).
    pub checkpoints_dir: PathBuf,
    /// Use the CPU only and never enumerate wgpu adapters (tests, machines without a GPU driver).
    pub force_cpu: bool,
    /// Photos / model files to open at start, as if dropped on the window.
    pub open: Vec<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            checkpoints_dir: crate::checkpoints_dir(),
            force_cpu: false,
            open: Vec::new(),
        }
    }
}
