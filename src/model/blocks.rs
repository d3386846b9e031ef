//! Building blocks: explicit padding, `ConvNormLReLU`, the inverted residual block
//! and the spectral-normalised convolution.

use burn::module::{Module, Param, RunningState};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};

use super::{fast_conv, fast_norm};
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};

/// LeakyReLU slope used everywhere in AnimeGANv2.
pub const LEAKY_SLOPE: f64 = 0.2;
/// GroupNorm epsilon of the PyTorch port (the TF original used 1e-12).
pub const NORM_EPSILON: f64 = 1e-5;

/// GroupNorm with one group — LayerNorm over `C, H, W` of each sample — with a
/// per-channel scale `gamma` and shift `beta` (PyTorch's `GroupNorm(1, C)`).
/// Computed by [`fast_norm::layer_norm_act`] (fused CPU kernels on Flex).
#[derive(Module, Debug)]
pub struct LayerNorm2d {
    /// `[C]` scale, initialised to 1 (port key suffix `.weight`).
    pub gamma: Param<Tensor<1>>,
    /// `[C]` shift, initialised to 0 (port key suffix `.bias`).
    pub beta: Param<Tensor<1>>,
    /// Added to the variance.
    pub epsilon: f64,
}

impl LayerNorm2d {
    /// Identity-initialised norm over `channels` channels.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            epsilon: NORM_EPSILON,
        }
    }

    /// `[B, C, H, W]` -> `[B, C, H, W]`, each sample normalised over C, H, W.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_act(x, None)
    }

    /// The norm followed by LeakyReLU(`slope`) when given, as one op on the CPU.
    pub fn forward_act(&self, x: Tensor<4>, slope: Option<f64>) -> Tensor<4> {
        fast_norm::layer_norm_act(x, self.gamma.val(), self.beta.val(), self.epsilon, slope)
    }
}

/// Explicit spatial padding applied before a `Valid` convolution.
///
/// Stored as plain numbers in the module (not parameters), so it is part of the
/// architecture, not of the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// Pixels added on the left.
    pub left: usize,
    /// Pixels added on the right.
    pub right: usize,
    /// Pixels added on the top.
    pub top: usize,
    /// Pixels added on the bottom.
    pub bottom: usize,
    /// Reflect (generator) or zeros (discriminator).
    pub reflect: bool,
}

impl Padding {
    /// The same padding on every side, reflecting.
    pub fn reflect(p: usize) -> Self {
        Self {
            left: p,
            right: p,
            top: p,
            bottom: p,
            reflect: true,
        }
    }

    /// The stride-2 generator padding: right and bottom by one, left and top none
    /// (TF's `pad [[0,1],[0,1]]`, the port's `ReflectionPad2d((0,1,0,1))`).
    pub fn reflect_right_bottom() -> Self {
        Self {
            left: 0,
            right: 1,
            top: 0,
            bottom: 1,
            reflect: true,
        }
    }

    /// Zero padding with the given sides.
    pub fn zeros(left: usize, right: usize, top: usize, bottom: usize) -> Self {
        Self {
            left,
            right,
            top,
            bottom,
            reflect: false,
        }
    }

    /// `[B, C, H, W]` -> `[B, C, H + top + bottom, W + left + right]`.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        if self.left + self.right + self.top + self.bottom == 0 {
            return x;
        }
        let mode = if self.reflect {
            PadMode::Reflect
        } else {
            PadMode::Constant(0.0)
        };
        x.pad((self.left, self.right, self.top, self.bottom), mode)
    }

    /// `conv` (whose own padding is `Valid`) over `x` padded this way:
    /// `[B, cin, H, W]` -> `[B, cout, H', W']`. The padding goes into the conv
    /// itself, so the CPU kernels read zeros or the reflection in place instead of
    /// a padded copy (see [`fast_conv::conv2d_reflect`]).
    pub fn conv(&self, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        if !matches!(conv.padding, PaddingConfig2d::Valid) {
            return fast_conv::forward(conv, self.apply(x));
        }
        let padding = [(self.top, self.bottom), (self.left, self.right)];
        let options =
            ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
        let (weight, bias) = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
        if self.reflect {
            fast_conv::conv2d_reflect(x, weight, bias, options)
        } else {
            fast_conv::conv2d(x, weight, bias, options)
        }
    }
}

/// `ConvNormLReLU(cin, cout, k, s)`: pad, conv (no bias unless depthwise), GroupNorm(1, cout), LeakyReLU(0.2).
#[derive(Module, Debug)]
pub struct ConvNormLReLU {
    /// Padding applied before the conv.
    #[module(skip)]
    pub pad: Padding,
    /// The convolution (port key suffix `.1`).
    pub conv: Conv2d,
    /// GroupNorm with one group (port key suffix `.2`).
    pub norm: LayerNorm2d,
}

/// Settings of one [`ConvNormLReLU`].
#[derive(Debug, Clone, Copy)]
pub struct CnlSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride (1 or 2).
    pub stride: usize,
    /// Convolution groups (`cin` for depthwise).
    pub groups: usize,
    /// Whether the conv has a bias (only the depthwise conv does).
    pub bias: bool,
}

impl CnlSpec {
    /// A plain conv: k3 s1 pads 1, k7 pads 3, k1 pads 0; stride 2 pads right/bottom.
    pub fn new(cin: usize, cout: usize, kernel: usize, stride: usize) -> Self {
        Self {
            cin,
            cout,
            kernel,
            stride,
            groups: 1,
            bias: false,
        }
    }

    /// The depthwise 3x3 conv of an inverted residual block (with bias).
    pub fn depthwise(channels: usize) -> Self {
        Self {
            cin: channels,
            cout: channels,
            kernel: 3,
            stride: 1,
            groups: channels,
            bias: true,
        }
    }

    /// Creates the block with PyTorch-like default initialisation.
    pub fn init(&self, device: &Device) -> ConvNormLReLU {
        let pad = if self.stride == 2 {
            Padding::reflect_right_bottom()
        } else {
            Padding::reflect(self.kernel / 2)
        };
        ConvNormLReLU {
            pad,
            conv: Conv2dConfig::new([self.cin, self.cout], [self.kernel, self.kernel])
                .with_stride([self.stride, self.stride])
                .with_groups(self.groups)
                .with_bias(self.bias)
                .with_padding(PaddingConfig2d::Valid)
                .init(device),
            norm: LayerNorm2d::new(self.cout, device),
        }
    }
}

impl ConvNormLReLU {
    /// `[B, cin, H, W]` -> `[B, cout, H', W']` (H' = H for stride 1, floor(H/2) for stride 2).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.pad.conv(&self.conv, x);
        self.norm.forward_act(x, Some(LEAKY_SLOPE))
    }
}

/// MobileNetV2-style inverted residual block with expansion 2.
///
/// 1x1 expand (CNL) -> 3x3 depthwise with bias (CNL) -> 1x1 project (no bias) -> GroupNorm,
/// plus the input when `cin == cout`. Port keys: `layers.0`, `layers.1`, `layers.2`, `layers.3`.
#[derive(Module, Debug)]
pub struct InvertedResBlock {
    /// 1x1 expansion, cin -> 2 cin.
    pub expand: ConvNormLReLU,
    /// 3x3 depthwise conv with bias.
    pub depthwise: ConvNormLReLU,
    /// 1x1 projection 2 cin -> cout, no bias.
    pub project: Conv2d,
    /// Norm after the projection (no activation).
    pub norm: LayerNorm2d,
    /// Whether the residual connection is used (`cin == cout`).
    pub residual: bool,
}

impl InvertedResBlock {
    /// Creates a block `cin -> cout` with expansion ratio 2.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        let hidden = cin * 2;
        Self {
            expand: CnlSpec::new(cin, hidden, 1, 1).init(device),
            depthwise: CnlSpec::depthwise(hidden).init(device),
            project: Conv2dConfig::new([hidden, cout], [1, 1])
                .with_bias(false)
                .init(device),
            norm: LayerNorm2d::new(cout, device),
            residual: cin == cout,
        }
    }

    /// `[B, cin, H, W]` -> `[B, cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.expand.forward(x.clone());
        let y = self.depthwise.forward(y);
        let y = self.norm.forward(fast_conv::forward(&self.project, y));
        if self.residual { x + y } else { y }
    }
}

/// 3x3 convolution without bias whose weight is divided by its largest singular
/// value (spectral normalisation, one power iteration per training forward).
///
/// The power-iteration vector `u` lives in a [`RunningState`], so it is saved with
/// the module and updated only while training (on an autodiff device).
#[derive(Module, Debug)]
pub struct SpectralConv2d {
    /// `[cout, cin, 3, 3]`, the raw (unnormalised) weight.
    pub weight: Param<Tensor<4>>,
    /// `[cout]`, the left singular vector estimate.
    pub u: RunningState<Tensor<1>>,
    /// Padding before the conv (zeros).
    #[module(skip)]
    pub pad: Padding,
    /// Stride of the conv.
    pub stride: usize,
}

impl SpectralConv2d {
    /// Weight ~ N(0, 0.02) as in AnimeGANv2's discriminator; `u` ~ N(0, 1) normalised.
    pub fn new(cin: usize, cout: usize, stride: usize, pad: Padding, device: &Device) -> Self {
        let weight =
            Tensor::<4>::random([cout, cin, 3, 3], Distribution::Normal(0.0, 0.02), device);
        let u = l2_normalize(Tensor::<1>::random(
            [cout],
            Distribution::Normal(0.0, 1.0),
            device,
        ));
        Self {
            weight: Param::from_tensor(weight),
            u: RunningState::new(u),
            pad,
            stride,
        }
    }

    /// The weight divided by the spectral norm estimate; updates `u` when training.
    pub fn normalized_weight(&self) -> Tensor<4> {
        let w = self.weight.val();
        let [cout, cin, kh, kw] = w.dims();
        // The power iteration runs on a detached copy: PyTorch treats u and v as constants.
        let w_mat = w.clone().detach().reshape([cout, cin * kh * kw]);
        let u = self.u.value().detach().reshape([1, cout]);
        let v = l2_normalize_rows(u.matmul(w_mat.clone())); // [1, cin*k*k]
        let u_new = l2_normalize_rows(v.clone().matmul(w_mat.transpose())); // [1, cout]
        // Training mode = an autodiff device (PyTorch updates u in every training forward).
        let training = w.device().is_autodiff();
        if training {
            self.u.update(u_new.clone().reshape([cout]));
            // Commit now: `RunningState::value()` lags one update behind (an update is
            // folded in only at the next update), so without this the G step's D
            // forward restarted from the u *before* the D step, and checkpoints saved
            // a stale u. TF and PyTorch iterate from the u of the previous training
            // forward (caught by tests/train_step.rs: u off by ~30%, g_adv by 1.5e-5).
            let _ = self.u.value_sync();
        }
        // sigma = u^T W v, differentiable through W.
        let wv = w
            .clone()
            .reshape([cout, cin * kh * kw])
            .matmul(v.transpose()); // [cout, 1]
        let sigma = u_new.matmul(wv); // [1, 1]
        // Spread sigma over the rows with a matmul instead of broadcasting a
        // [1,1,1,1] scalar: the broadcast's backward is one sum over every weight
        // (1.2M values), which wgpu reduces with ~0.5% error; this way the backward
        // is a short per-row sum plus an exact matmul over `cout`.
        let sigma_rows = Tensor::<2>::ones([cout, 1], &w.device()).matmul(sigma); // [cout, 1]
        w / sigma_rows.reshape([cout, 1, 1, 1])
    }

    /// `[B, cin, H, W]` -> `[B, cout, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let weight = self.normalized_weight();
        let stride = [self.stride, self.stride];
        let p = self.pad;
        // The padding goes straight into the conv (asymmetric pairs allowed): no copy.
        let padding = [(p.top, p.bottom), (p.left, p.right)];
        let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
        if p.reflect {
            fast_conv::conv2d_reflect(x, weight, None, options)
        } else {
            fast_conv::conv2d(x, weight, None, options)
        }
    }
}

/// Divides a vector by its L2 norm (plus 1e-12, as PyTorch's `normalize`).
fn l2_normalize(x: Tensor<1>) -> Tensor<1> {
    let norm = x.clone().square().sum().sqrt().add_scalar(1e-12);
    x / norm
}

/// Divides each row of `[N, M]` by its L2 norm.
fn l2_normalize_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().add_scalar(1e-12);
    x / norm
}
