//! All hyperparameters of a run in one [`TrainConfig`], saved as `config.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::UpsampleMode;

/// Loss-weight presets the AnimeGANv2 authors used per film style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
pub enum Preset {
    /// The newest training script's defaults: content 1.5, style 2.5, colour 10, tv 1.
    #[default]
    Default,
    /// Hayao Miyazaki: content 1.5, style 2.5, colour 15, tv 1.
    Hayao,
    /// Paprika: content 2.0, style 0.6, colour 50, tv 0.1.
    Paprika,
    /// Makoto Shinkai: content 1.2, style 2.0, colour 10, tv 1.
    Shinkai,
    /// Weights edited by hand.
    Custom,
}

impl Preset {
    /// Every preset, in menu order.
    pub const ALL: [Preset; 5] = [
        Self::Default,
        Self::Hayao,
        Self::Paprika,
        Self::Shinkai,
        Self::Custom,
    ];

    /// `(content, style, colour, tv)` weights, or `None` for [`Preset::Custom`].
    pub fn weights(self) -> Option<(f64, f64, f64, f64)> {
        match self {
            Self::Default => Some((1.5, 2.5, 10.0, 1.0)),
            Self::Hayao => Some((1.5, 2.5, 15.0, 1.0)),
            Self::Paprika => Some((2.0, 0.6, 50.0, 0.1)),
            Self::Shinkai => Some((1.2, 2.0, 10.0, 1.0)),
            Self::Custom => None,
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "Default",
            Self::Hayao => "Hayao",
            Self::Paprika => "Paprika",
            Self::Shinkai => "Shinkai",
            Self::Custom => "Custom",
        }
    }
}

/// Learning rates and loss weights: the values that may change while a run is active
/// (applied at the next step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveParams {
    /// Adam learning rate of the init (content-only) phase.
    pub lr_init: f64,
    /// Generator learning rate of the adversarial phase.
    pub lr_g: f64,
    /// Discriminator learning rate.
    pub lr_d: f64,
    /// Generator adversarial weight (LSGAN).
    pub w_g_adv: f64,
    /// Discriminator loss scale.
    pub w_d_adv: f64,
    /// Content (VGG conv4_4 L1) weight.
    pub w_content: f64,
    /// Grayscale Gram style weight.
    pub w_style: f64,
    /// YUV colour weight.
    pub w_color: f64,
    /// Total variation weight.
    pub w_tv: f64,
    /// D coefficient of real style images.
    pub d_real: f64,
    /// D coefficient of generated images.
    pub d_fake: f64,
    /// D coefficient of grayscale style images.
    pub d_gray: f64,
    /// D coefficient of edge-smoothed grayscale style images.
    pub d_smooth: f64,
}

impl Default for LiveParams {
    fn default() -> Self {
        Self {
            lr_init: 2e-4,
            lr_g: 2e-5,
            lr_d: 4e-5,
            w_g_adv: 300.0,
            w_d_adv: 300.0,
            w_content: 1.5,
            w_style: 2.5,
            w_color: 10.0,
            w_tv: 1.0,
            d_real: 1.7,
            d_fake: 1.7,
            d_gray: 1.7,
            d_smooth: 1.0,
        }
    }
}

impl LiveParams {
    /// Sets the four G loss weights a preset defines (no-op for Custom).
    pub fn apply_preset(&mut self, preset: Preset) {
        if let Some((c, s, col, tv)) = preset.weights() {
            self.w_content = c;
            self.w_style = s;
            self.w_color = col;
            self.w_tv = tv;
        }
    }

    /// The preset whose weights these are, or Custom.
    pub fn matching_preset(&self) -> Preset {
        Preset::ALL
            .into_iter()
            .find(|p| {
                p.weights().is_some_and(|(c, s, col, tv)| {
                    (c, s, col, tv) == (self.w_content, self.w_style, self.w_color, self.w_tv)
                })
            })
            .unwrap_or(Preset::Custom)
    }

    /// Checks every value is finite and non-negative, learning rates positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let values = [
            ("lr_init", self.lr_init),
            ("lr_g", self.lr_g),
            ("lr_d", self.lr_d),
            ("w_g_adv", self.w_g_adv),
            ("w_d_adv", self.w_d_adv),
            ("w_content", self.w_content),
            ("w_style", self.w_style),
            ("w_color", self.w_color),
            ("w_tv", self.w_tv),
            ("d_real", self.d_real),
            ("d_fake", self.d_fake),
            ("d_gray", self.d_gray),
            ("d_smooth", self.d_smooth),
        ];
        for (name, value) in values {
            if !value.is_finite() || value < 0.0 {
                return Err(ConfigError::Negative { name, value });
            }
        }
        for (name, value) in [
            ("lr_init", self.lr_init),
            ("lr_g", self.lr_g),
            ("lr_d", self.lr_d),
        ] {
            if value <= 0.0 {
                return Err(ConfigError::NotPositive { name, value });
            }
        }
        Ok(())
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A learning rate or weight is negative, NaN or infinite.
    #[error("{name} must be a finite, non-negative number (got {value})")]
    Negative {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A learning rate is zero.
    #[error("{name} must be positive (got {value})")]
    NotPositive {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The crop size is not a multiple of 8 of at least 32.
    #[error("image size must be a multiple of 8, at least 32 (got {0})")]
    ImageSize(usize),
    /// The batch is empty.
    #[error("batch size must be at least 1")]
    BatchSize,
    /// A sample or checkpoint interval is zero.
    #[error("sample and checkpoint intervals must be at least 1 step")]
    Interval,
    /// No checkpoint would be kept.
    #[error("keep at least one checkpoint")]
    KeepCheckpoints,
    /// The run has no step.
    #[error("the run must last at least one step")]
    Empty,
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Duration {
    /// Whole epochs (the first `init_epochs` of them content-only).
    Epochs(usize),
    /// A fixed number of optimisation steps (init steps included).
    Steps(usize),
}

/// Every setting of a training run: the CLI's flags, the studio's saved draft and
/// the run's `config.json` are this one type.
///
/// [`Default`] is the published AnimeGANv2 recipe; [`TrainConfig::quick_cpu`] and
/// [`TrainConfig::quick_gpu`] are the studio's short first runs. Every field has a
/// default (`#[serde(default)]`), so a `config.json` or saved studio settings
/// written before a field existed still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Folder of photos (scanned recursively).
    pub photos_dir: PathBuf,
    /// Folder of style images (scanned recursively).
    pub style_dir: PathBuf,
    /// Loss-weight preset the run started from.
    pub preset: Preset,
    /// Learning rates and loss weights (changeable live).
    pub live: LiveParams,
    /// Square training crop size in pixels.
    pub image_size: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Content-only epochs at the start.
    pub init_epochs: usize,
    /// Run length: 101 epochs in the paper's recipe.
    pub duration: Duration,
    /// Save validation samples every this many steps (and at step 0).
    pub sample_every: usize,
    /// Save a checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk (older ones are deleted).
    pub keep_checkpoints: usize,
    /// Fixed validation photos shown in the sample grid.
    pub sample_count: usize,
    /// Seed of weight init, data order and crops.
    pub seed: u64,
    /// torchvision VGG19 weights; `None` looks in the torch hub cache.
    pub vgg_path: Option<PathBuf>,
    /// Generator upsampling rule.
    pub upsample: UpsampleMode,
    /// Preprocessing cache folder; `None` uses `~/.cache/photo2anime`.
    pub cache_dir: Option<PathBuf>,
    /// Batches prepared ahead of the trainer by the loader thread.
    pub prefetch: usize,
    /// Fine-tune: G starts from this model (run/model folder, `.pt`, `.safetensors`,
    /// `.bpk`) and takes its upsampling rule; D starts fresh. `None`: from scratch.
    pub init_from: Option<PathBuf>,
    /// Run the content-only init phase even when fine-tuning. Off by default: it
    /// exists to give a *random* G a sensible start, and would only pull a trained
    /// one back toward the photo.
    pub warm_up_fine_tune: bool,
    /// The model a fine-tune started from, recorded by the trainer in `config.json`.
    pub parent: Option<ParentModel>,
}

/// The model a fine-tune started from, as recorded in its run's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentModel {
    /// What was pointed at.
    pub path: PathBuf,
    /// BLAKE3 of the generator's parameters as loaded (paths, shapes and values), so
    /// the same weights hash alike whatever file format carried them.
    pub weights_blake3: String,
    /// e.g. `checkpoints/paprika (step 0)`.
    pub description: String,
}

/// The published recipe's values, named once: [`TrainConfig::default`] and the
/// CLI's help text both read them.
pub mod recipe {
    /// Square training crop size.
    pub const IMAGE_SIZE: usize = 256;
    /// Images per batch.
    pub const BATCH_SIZE: usize = 12;
    /// Content-only epochs.
    pub const INIT_EPOCHS: usize = 10;
    /// Run length in epochs.
    pub const EPOCHS: usize = 101;
    /// Samples every this many steps.
    pub const SAMPLE_EVERY: usize = 100;
    /// A checkpoint every this many steps.
    pub const CHECKPOINT_EVERY: usize = 500;
    /// Seed of init, data order and crops.
    pub const SEED: u64 = 42;
}

impl Default for TrainConfig {
    /// The published AnimeGANv2 recipe on the demo dataset.
    fn default() -> Self {
        let demo = crate::demo_dir();
        Self {
            photos_dir: demo.join("photos"),
            style_dir: demo.join("style"),
            preset: Preset::Default,
            live: LiveParams::default(),
            image_size: recipe::IMAGE_SIZE,
            batch_size: recipe::BATCH_SIZE,
            init_epochs: recipe::INIT_EPOCHS,
            duration: Duration::Epochs(recipe::EPOCHS),
            sample_every: recipe::SAMPLE_EVERY,
            checkpoint_every: recipe::CHECKPOINT_EVERY,
            keep_checkpoints: 3,
            sample_count: 4,
            seed: recipe::SEED,
            vgg_path: None,
            upsample: UpsampleMode::AlignCorners,
            cache_dir: None,
            prefetch: 4,
            init_from: None,
            warm_up_fine_tune: false,
            parent: None,
        }
    }
}

impl burn::config::Config for TrainConfig {}

/// `with_*` setters, so tests and callers can state only what differs.
macro_rules! setters {
    ($($name:ident: $field:ident: $ty:ty),* $(,)?) => {
        impl TrainConfig {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    with_preset: preset: Preset,
    with_live: live: LiveParams,
    with_image_size: image_size: usize,
    with_batch_size: batch_size: usize,
    with_init_epochs: init_epochs: usize,
    with_duration: duration: Duration,
    with_sample_every: sample_every: usize,
    with_checkpoint_every: checkpoint_every: usize,
    with_keep_checkpoints: keep_checkpoints: usize,
    with_sample_count: sample_count: usize,
    with_seed: seed: u64,
    with_vgg_path: vgg_path: Option<PathBuf>,
    with_upsample: upsample: UpsampleMode,
    with_cache_dir: cache_dir: Option<PathBuf>,
    with_prefetch: prefetch: usize,
    with_init_from: init_from: Option<PathBuf>,
    with_warm_up_fine_tune: warm_up_fine_tune: bool,
}

impl TrainConfig {
    /// Content-only steps at the start of the run: none for a fine-tune (unless
    /// [`TrainConfig::warm_up_fine_tune`]), `init_epochs` epochs otherwise.
    pub fn init_steps(&self, steps_per_epoch: usize) -> usize {
        if self.init_from.is_some() && !self.warm_up_fine_tune {
            0
        } else {
            self.init_epochs * steps_per_epoch
        }
    }

    /// The published recipe on these folders.
    pub fn new(photos_dir: PathBuf, style_dir: PathBuf) -> Self {
        Self {
            photos_dir,
            style_dir,
            ..Self::default()
        }
    }

    /// A first run that shows progress within minutes on a CPU: 128 px, batch 4,
    /// one init epoch, 300 steps, samples every 20 steps (the studio's default).
    pub fn quick_cpu() -> Self {
        Self {
            image_size: 128,
            batch_size: 4,
            init_epochs: 1,
            duration: Duration::Steps(300),
            sample_every: 20,
            checkpoint_every: 100,
            ..Self::default()
        }
    }

    /// A quick run for a GPU: 256 px, batch 8, 2000 steps.
    pub fn quick_gpu() -> Self {
        Self {
            image_size: 256,
            batch_size: 8,
            duration: Duration::Steps(2000),
            sample_every: 50,
            checkpoint_every: 250,
            ..Self::quick_cpu()
        }
    }

    /// Checks values that would make a run impossible.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.image_size < 32 || !self.image_size.is_multiple_of(8) {
            return Err(ConfigError::ImageSize(self.image_size));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::BatchSize);
        }
        if self.sample_every == 0 || self.checkpoint_every == 0 {
            return Err(ConfigError::Interval);
        }
        if self.keep_checkpoints == 0 {
            return Err(ConfigError::KeepCheckpoints);
        }
        if matches!(self.duration, Duration::Epochs(0) | Duration::Steps(0)) {
            return Err(ConfigError::Empty);
        }
        self.live.validate()
    }
}
