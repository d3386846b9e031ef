//! VGG19 up to `conv4_4` (before its ReLU), frozen: the perceptual loss network.
//!
//! Weights come from torchvision's `vgg19-*.pth` when one is found (see
//! [`crate::interop::vgg`]); otherwise from a fixed seed, which is reported loudly
//! everywhere because content and style losses are much weaker without ImageNet features.

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{fast_conv, fast_norm, fast_pool};

/// Conv widths up to conv4_4; `0` marks a 2x2 max-pool.
const PLAN: [usize; 15] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512,
];

/// torchvision's `features.N` index of each of the 12 convs.
pub const TORCHVISION_CONV_INDICES: [usize; 12] = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25];

/// ImageNet mean of RGB in [0, 1] (torchvision's normalisation).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet std of RGB in [0, 1].
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Seed of the random-weight fallback VGG (fixed so runs are comparable).
pub const RANDOM_VGG_SEED: u64 = 19;

/// Where the loss network's weights came from; saved in each run's config.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VggSource {
    /// torchvision ImageNet weights read from this file.
    Pretrained(PathBuf),
    /// No weights file: fixed-seed random weights. Results will be weaker.
    Random {
        /// The seed used.
        seed: u64,
    },
}

impl VggSource {
    /// One-line description for logs, the CLI and the GUI.
    pub fn describe(&self) -> String {
        match self {
            Self::Pretrained(p) => format!("VGG19 ImageNet weights from {}", p.display()),
            Self::Random { seed } => format!(
                "VGG19 with RANDOM weights (seed {seed}): no vgg19 .pth found — content/style losses are weaker; pass --vgg FILE (torchvision vgg19-dcbb9e9d.pth)"
            ),
        }
    }

    /// True when ImageNet weights are used.
    pub fn is_pretrained(&self) -> bool {
        matches!(self, Self::Pretrained(_))
    }
}

/// VGG19 feature extractor up to conv4_4 (10,585,152 parameters).
#[derive(Module, Debug)]
pub struct Vgg19 {
    /// The 12 convs (3x3, zero pad 1, with bias).
    pub convs: Vec<Conv2d>,
}

impl Vgg19 {
    /// A VGG with default-initialised weights after seeding Burn's RNG with `seed`.
    pub fn random(seed: u64, device: &Device) -> Self {
        device.seed(seed);
        let mut convs = Vec::with_capacity(12);
        let mut cin = 3;
        for &c in PLAN.iter().filter(|&&c| c != 0) {
            convs.push(
                Conv2dConfig::new([cin, c], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    // He init (gain sqrt 2) keeps activations at unit scale through the
                    // ReLUs, so random features still give usable content / style
                    // gradients; Burn's default init shrinks them ~1000x by conv4_4.
                    .with_initializer(Initializer::KaimingNormal {
                        gain: std::f64::consts::SQRT_2,
                        fan_out_only: false,
                    })
                    .init(device),
            );
            cin = c;
        }
        Self { convs }
    }

    /// `[B, 3, H, W]` in [-1, 1] -> conv4_4 features `[B, 512, H/8, W/8]` (before ReLU).
    ///
    /// Input is mapped to torchvision's convention: RGB in [0, 1], ImageNet mean/std.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean = Tensor::<4>::from_data(
            TensorData::new(IMAGENET_MEAN.to_vec(), [1, 3, 1, 1]),
            &device,
        );
        let std = Tensor::<4>::from_data(
            TensorData::new(IMAGENET_STD.to_vec(), [1, 3, 1, 1]),
            &device,
        );
        let x = (x + 1.0) * 0.5;
        let mut y = (x - mean) / std;
        let mut conv = 0;
        let last = self.convs.len() - 1;
        for &c in PLAN.iter() {
            if c == 0 {
                y = fast_pool::max_pool2x2(y);
            } else {
                y = fast_conv::forward(&self.convs[conv], y);
                if conv != last {
                    y = fast_norm::relu_act(y);
                }
                conv += 1;
            }
        }
        y
    }
}
