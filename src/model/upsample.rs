//! Bilinear upsampling that trains on every backend.
//!
//! Burn 0.22.1's `interpolate` has a forward everywhere but a backward only on Flex
//! (wgpu fails with "Bilinear interpolation backward is not supported"). While a graph
//! is being recorded we therefore upsample with two matmuls against fixed
//! interpolation matrices (`out = Wy · X · Wxᵀ`), which is exact bilinear for any size
//! and either corner mode and differentiable everywhere. Inference uses `interpolate`,
//! which is cheaper; a test keeps the two equal. On Flex, training takes the
//! direct kernels of [`super::fast_upsample`] instead of the matmuls.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::fast_upsample;

/// How the generator's two x2 upsamplings map output pixels to input pixels.
///
/// Part of a saved model: weights trained with one mode look slightly different
/// with the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum UpsampleMode {
    /// The PyTorch port's default `forward`: resize to the matching encoder feature
    /// size with `align_corners=True`. Works for any input size.
    #[default]
    AlignCorners,
    /// The port's CLI option: `scale_factor=2, align_corners=False` (half-pixel
    /// centres). Needs inputs whose sides are multiples of 4 to return the input size;
    /// conversion pads to that.
    HalfPixelX2,
}

impl UpsampleMode {
    /// `true` for [`UpsampleMode::AlignCorners`].
    pub fn align_corners(self) -> bool {
        matches!(self, Self::AlignCorners)
    }

    /// Input sides must be multiples of this for the output to match the input size.
    pub fn size_multiple(self) -> usize {
        match self {
            Self::AlignCorners => 1,
            Self::HalfPixelX2 => 4,
        }
    }

    /// Output spatial size for an upsampling of `[h, w]` whose encoder counterpart is `target`.
    pub fn output_size(self, h: usize, w: usize, target: [usize; 2]) -> [usize; 2] {
        match self {
            Self::AlignCorners => target,
            Self::HalfPixelX2 => [2 * h, 2 * w],
        }
    }
}

/// `[B, C, H, W]` -> `[B, C, out_h, out_w]`, bilinear.
///
/// Training (autodiff devices) uses the CPU kernels on Flex and the matmul
/// formulation elsewhere; inference uses `interpolate`.
/// The device decides, not `is_require_grad()`: intermediate tensors of a recorded
/// graph report `false` there, which once sent wgpu training into the unsupported
/// backward (caught by `tests/wgpu.rs`).
pub fn upsample_bilinear(x: Tensor<4>, out: [usize; 2], align_corners: bool) -> Tensor<4> {
    if x.device().is_autodiff() && fast_upsample::uses_cpu_kernels(&x) {
        // Flex: direct taps forward and back (the matmuls were ~7 G multiply-adds
        // a batch-4 step each way, plus a transposed copy).
        fast_upsample::resize_bilinear(x, out, align_corners)
    } else if x.device().is_autodiff() {
        upsample_bilinear_matmul(x, out, align_corners)
    } else {
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_output_size(out)
            .with_align_corners(align_corners);
        interpolate(x, options)
    }
}

/// Bilinear resize as `Wy · X · Wxᵀ`; differentiable on every backend.
///
/// `[B, C, H, W]` -> `[B, C, out_h, out_w]`.
pub fn upsample_bilinear_matmul(x: Tensor<4>, out: [usize; 2], align_corners: bool) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [oh, ow] = out;
    let device = x.device();
    let wx_t = interpolation_matrix(w, ow, align_corners, &device).transpose(); // [W, OW]
    let wy_t = interpolation_matrix(h, oh, align_corners, &device).transpose(); // [H, OH]
    let x = x.reshape([b * c * h, w]).matmul(wx_t); // [B*C*H, OW]
    let x = x
        .reshape([b, c, h, ow])
        .swap_dims(2, 3)
        .reshape([b * c * ow, h]); // [B*C*OW, H]
    let x = x.matmul(wy_t); // [B*C*OW, OH]
    x.reshape([b, c, ow, oh]).swap_dims(2, 3) // [B, C, OH, OW]
}

/// The two input samples and the weight of the second for output index `i` when
/// bilinearly resizing `input` samples to `out` (PyTorch's rule for either
/// `align_corners` setting; the left index is clamped like PyTorch's).
pub fn source_taps(input: usize, out: usize, align_corners: bool, i: usize) -> (usize, usize, f32) {
    let src = if align_corners {
        if out > 1 {
            i as f64 * (input as f64 - 1.0) / (out as f64 - 1.0)
        } else {
            0.0
        }
    } else {
        ((i as f64 + 0.5) * input as f64 / out as f64 - 0.5).max(0.0)
    };
    let i0 = (src.floor() as usize).min(input - 1);
    let i1 = (i0 + 1).min(input - 1);
    (i0, i1, (src - i0 as f64) as f32)
}

/// The `[out, input]` matrix of 1-D linear interpolation weights (PyTorch semantics).
pub fn interpolation_matrix(
    input: usize,
    out: usize,
    align_corners: bool,
    device: &Device,
) -> Tensor<2> {
    let mut m = vec![0.0f32; out * input];
    for i in 0..out {
        let (i0, i1, frac) = source_taps(input, out, align_corners, i);
        m[i * input + i0] += 1.0 - frac;
        m[i * input + i1] += frac;
    }
    Tensor::from_data(TensorData::new(m, [out, input]), device)
}
