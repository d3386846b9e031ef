//! The AnimeGANv2 patch discriminator (1,128,800 parameters) with spectral
//! normalisation on every conv, zero padding and LayerNorm (GroupNorm(1, C)).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::blocks::{LEAKY_SLOPE, LayerNorm2d, Padding, SpectralConv2d};
use super::fast_norm;

/// Discriminator settings (the published `ch=64, n_dis=3` network has no knobs).
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Base channel count; 64 gives the published 32-64-128-128-256-256-1 stack.
    #[config(default = 64)]
    pub channels: usize,
}

/// One stage: spectral conv, optional LayerNorm, LeakyReLU (none on the last conv).
#[derive(Module, Debug)]
pub struct DStage {
    /// The spectral-normalised conv.
    pub conv: SpectralConv2d,
    /// LayerNorm over C, H, W for the stride-1 convs marked `+LN`.
    pub norm: Option<LayerNorm2d>,
    /// Whether LeakyReLU follows (false for the logit conv).
    pub activate: bool,
}

/// D: image `[B, 3, H, W]` in [-1, 1] -> logit map `[B, 1, H/4, W/4]` (no sigmoid: LSGAN).
#[derive(Module, Debug)]
pub struct Discriminator {
    /// The seven stages, in order.
    pub stages: Vec<DStage>,
}

impl DiscriminatorConfig {
    /// Creates a discriminator with weights ~ N(0, 0.02).
    pub fn init(&self, device: &Device) -> Discriminator {
        let c = self.channels / 2;
        // (cin, cout, stride, layer norm, activation)
        let plan = [
            (3, c, 1, false, true),
            (c, 2 * c, 2, false, true),
            (2 * c, 4 * c, 1, true, true),
            (4 * c, 4 * c, 2, false, true),
            (4 * c, 8 * c, 1, true, true),
            (8 * c, 8 * c, 1, true, true),
            (8 * c, 1, 1, false, false),
        ];
        let stages = plan
            .into_iter()
            .map(|(cin, cout, stride, ln, activate)| {
                // TF's conv(k3, s2, pad 1) pads top/left only.
                let pad = if stride == 2 {
                    Padding::zeros(1, 0, 1, 0)
                } else {
                    Padding::zeros(1, 1, 1, 1)
                };
                DStage {
                    conv: SpectralConv2d::new(cin, cout, stride, pad, device),
                    norm: ln.then(|| LayerNorm2d::new(cout, device)),
                    activate,
                }
            })
            .collect();
        Discriminator { stages }
    }
}

impl Discriminator {
    /// `[B, 3, H, W]` -> `[B, 1, H/4, W/4]` patch logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x;
        for stage in &self.stages {
            y = stage.conv.forward(y);
            let slope = stage.activate.then_some(LEAKY_SLOPE);
            y = match &stage.norm {
                Some(norm) => norm.forward_act(y, slope),
                None if stage.activate => fast_norm::leaky_relu_act(y, LEAKY_SLOPE),
                None => y,
            };
        }
        dense_layout(y)
    }
}

/// `[B, C, H, W]` -> the same values, re-laid out densely in NCHW order.
///
/// Why: on wgpu with Burn 0.22.1's fusion, the last stage's one-channel conv output,
/// when tracked by autodiff, was misread by fused element-wise kernels: `(D(G(p)) - 1)²`
/// averaged to 2.06 instead of 3.54 (any two element-wise ops, e.g. `abs(y - 1)`, were
/// wrong; one alone was right), so G's adversarial gradient was wrong in every wgpu
/// step (seen on lavapipe; the fused kernels are the same on every adapter). A
/// reshape through one dimension makes fusion copy it into a dense buffer. Found by
/// `tests/wgpu.rs` (`wgpu_matches_flex_forward_and_training_step`); free on Flex, a
/// 1-channel copy on wgpu.
fn dense_layout(y: Tensor<4>) -> Tensor<4> {
    let dims = y.dims();
    y.reshape([dims.iter().product::<usize>()]).reshape(dims)
}
