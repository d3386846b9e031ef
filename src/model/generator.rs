//! The AnimeGANv2 generator (2,143,552 parameters), exactly as published.
//!
//! Field names follow the PyTorch port so its `state_dict` maps onto this module by
//! the short rule set in [`crate::interop::keys`]: `block_a.0.conv.weight` is the
//! port's `block_a.0.1.weight`, `norm.gamma/beta` are its `.2.weight/.2.bias`, and
//! `block_c` spells out the port's `Sequential` as `head`, `irbs.0..3`, `tail`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};

use super::fast_conv;
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};

use super::blocks::{CnlSpec, ConvNormLReLU, InvertedResBlock};
use super::upsample::{UpsampleMode, upsample_bilinear};

/// Settings saved with a generator (`generator.json` beside its weights).
#[derive(Config, Debug)]
pub struct GeneratorConfig {
    /// Upsampling rule of the decoder; the port's default is `AlignCorners`.
    #[config(default = "UpsampleMode::AlignCorners")]
    pub upsample: UpsampleMode,
}

/// Smallest input side the network accepts (reflect padding needs at least 2
/// pixels at the 1/4-resolution stage). Conversion pads smaller images.
pub const MIN_INPUT_SIDE: usize = 8;

/// `block_c`: CNL(128,128), IRB(128,256), IRB(256,256) x3, CNL(256,128).
#[derive(Module, Debug)]
pub struct BlockC {
    /// Port `block_c.0`.
    pub head: ConvNormLReLU,
    /// Port `block_c.1` .. `block_c.4`.
    pub irbs: Vec<InvertedResBlock>,
    /// Port `block_c.5`.
    pub tail: ConvNormLReLU,
}

/// The generator G: photo in, anime-style image out, same size.
#[derive(Module, Debug)]
pub struct Generator {
    /// CNL(3,32,k7); CNL(32,64,k3,s2); CNL(64,64,k3).
    pub block_a: Vec<ConvNormLReLU>,
    /// CNL(64,128,k3,s2); CNL(128,128,k3).
    pub block_b: Vec<ConvNormLReLU>,
    /// The residual bottleneck at 1/4 resolution.
    pub block_c: BlockC,
    /// CNL(128,128) x2 at 1/2 resolution.
    pub block_d: Vec<ConvNormLReLU>,
    /// CNL(128,64); CNL(64,64); CNL(64,32,k7) at full resolution.
    pub block_e: Vec<ConvNormLReLU>,
    /// 1x1 conv 32 -> 3 without bias (port `out_layer.0`), then tanh.
    pub out_layer: Conv2d,
    /// Decoder upsampling rule.
    #[module(skip)]
    pub upsample: UpsampleMode,
}

impl GeneratorConfig {
    /// Creates a randomly initialised generator on `device`.
    pub fn init(&self, device: &Device) -> Generator {
        let cnl = |cin, cout, k, s| CnlSpec::new(cin, cout, k, s).init(device);
        Generator {
            block_a: vec![cnl(3, 32, 7, 1), cnl(32, 64, 3, 2), cnl(64, 64, 3, 1)],
            block_b: vec![cnl(64, 128, 3, 2), cnl(128, 128, 3, 1)],
            block_c: BlockC {
                head: cnl(128, 128, 3, 1),
                irbs: vec![
                    InvertedResBlock::new(128, 256, device),
                    InvertedResBlock::new(256, 256, device),
                    InvertedResBlock::new(256, 256, device),
                    InvertedResBlock::new(256, 256, device),
                ],
                tail: cnl(256, 128, 3, 1),
            },
            block_d: vec![cnl(128, 128, 3, 1), cnl(128, 128, 3, 1)],
            block_e: vec![cnl(128, 64, 3, 1), cnl(64, 64, 3, 1), cnl(64, 32, 7, 1)],
            out_layer: Conv2dConfig::new([32, 3], [1, 1])
                .with_bias(false)
                .init(device),
            upsample: self.upsample,
        }
    }
}

impl Generator {
    /// `[B, 3, H, W]` in [-1, 1] -> `[B, 3, H, W]` in [-1, 1] (tanh).
    ///
    /// On Flex without autodiff (CPU inference) this runs the fused CPU engine
    /// ([`super::cpu::CpuGenerator`], 3-4x faster, same values to float rounding);
    /// everywhere else (wgpu, training) it is [`Generator::forward_ops`].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        if device == Device::flex() && !device.is_autodiff() {
            // The engine computes the same network; if it cannot read the weights or
            // the input (a failed readback), the op-by-op path below gives the same
            // values, only slower, and the log says why.
            match super::cpu::CpuGenerator::new(self).and_then(|e| e.forward_tensor(x.clone())) {
                Ok(y) => return y,
                Err(e) => log::warn!("CPU engine failed ({e}); running the op-by-op forward"),
            }
        }
        self.forward_ops(x)
    }

    /// The forward pass as Burn tensor ops (differentiable, any backend).
    ///
    /// With [`UpsampleMode::AlignCorners`] any `H, W >= MIN_INPUT_SIDE` works; with
    /// [`UpsampleMode::HalfPixelX2`] the output is `4 * floor(H/4)` etc., so pad to
    /// multiples of 4 first (conversion does).
    pub fn forward_ops(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let mut y = x;
        for layer in &self.block_a {
            y = layer.forward(y);
        }
        let [_, _, half_h, half_w] = y.dims();
        for layer in &self.block_b {
            y = layer.forward(y);
        }
        y = self.block_c.head.forward(y);
        for irb in &self.block_c.irbs {
            y = irb.forward(y);
        }
        y = self.block_c.tail.forward(y); // [B, 128, H/4, W/4]
        y = self.up(y, [half_h, half_w]); // [B, 128, H/2, W/2]
        for layer in &self.block_d {
            y = layer.forward(y);
        }
        y = self.up(y, [h, w]); // [B, 128, H, W]
        for layer in &self.block_e {
            y = layer.forward(y);
        }
        tanh(fast_conv::forward(&self.out_layer, y)) // [B, 3, H, W]
    }

    fn up(&self, x: Tensor<4>, target: [usize; 2]) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let out = self.upsample.output_size(h, w, target);
        upsample_bilinear(x, out, self.upsample.align_corners())
    }
}
