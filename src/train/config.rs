//! All hyperparameters of a run in one [`TrainConfig`], saved as `config.json`.

use std::path::PathBuf;

use burn::config::Config;
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
    pub fn validate(&self) -> Result<(), String> {
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
        for (name, v) in values {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "{name} must be a finite, non-negative number (got {v})"
                ));
            }
        }
        for (name, v) in [
            ("lr_init", self.lr_init),
            ("lr_g", self.lr_g),
            ("lr_d", self.lr_d),
        ] {
            if v <= 0.0 {
                return Err(format!("{name} must be positive (got {v})"));
            }
        }
        Ok(())
    }
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Duration {
    /// Whole epochs (the first `init_epochs` of them content-only).
    Epochs(usize),
    /// A fixed number of optimisation steps (init steps included).
    Steps(usize),
}

/// Every setting of a training run. Defaults are the published AnimeGANv2 recipe.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Folder of photos (scanned recursively).
    pub photos_dir: PathBuf,
    /// Folder of style images (scanned recursively).
    pub style_dir: PathBuf,
    /// Loss-weight preset the run started from.
    #[config(default = "Preset::Default")]
    pub preset: Preset,
    /// Learning rates and loss weights (changeable live).
    #[config(default = "LiveParams::default()")]
    pub live: LiveParams,
    /// Square training crop size in pixels.
    #[config(default = 256)]
    pub image_size: usize,
    /// Images per batch.
    #[config(default = 12)]
    pub batch_size: usize,
    /// Content-only epochs at the start.
    #[config(default = 10)]
    pub init_epochs: usize,
    /// Run length: 101 epochs in the paper's recipe.
    #[config(default = "Duration::Epochs(101)")]
    pub duration: Duration,
    /// Save validation samples every this many steps (and at step 0).
    #[config(default = 100)]
    pub sample_every: usize,
    /// Save a checkpoint every this many steps.
    #[config(default = 500)]
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk (older ones are deleted).
    #[config(default = 3)]
    pub keep_checkpoints: usize,
    /// Fixed validation photos shown in the sample grid.
    #[config(default = 4)]
    pub sample_count: usize,
    /// Seed of weight init, data order and crops.
    #[config(default = 42)]
    pub seed: u64,
    /// torchvision VGG19 weights; `None` looks in the torch hub cache.
    #[config(default = "None")]
    pub vgg_path: Option<PathBuf>,
    /// Generator upsampling rule.
    #[config(default = "UpsampleMode::AlignCorners")]
    pub upsample: UpsampleMode,
    /// Preprocessing cache folder; `None` uses `~/.cache/photo2anime`.
    #[config(default = "None")]
    pub cache_dir: Option<PathBuf>,
    /// Batches prepared ahead of the trainer by the loader thread.
    #[config(default = 4)]
    pub prefetch: usize,
}

impl TrainConfig {
    /// Checks values that would make a run impossible.
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size < 32 || self.image_size % 8 != 0 {
            return Err(format!(
                "image size must be a multiple of 8, at least 32 (got {})",
                self.image_size
            ));
        }
        if self.batch_size == 0 {
            return Err("batch size must be at least 1".into());
        }
        if self.sample_every == 0 || self.checkpoint_every == 0 {
            return Err("sample and checkpoint intervals must be at least 1 step".into());
        }
        if self.keep_checkpoints == 0 {
            return Err("keep at least one checkpoint".into());
        }
        match self.duration {
            Duration::Epochs(0) | Duration::Steps(0) => {
                return Err("the run must last at least one step".into());
            }
            _ => {}
        }
        self.live.validate()
    }
}
