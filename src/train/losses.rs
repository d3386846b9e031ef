//! AnimeGANv2's loss terms, each a small function on tensors.
//!
//! All return a one-element tensor `[1]` (a mean) so they stay in the graph.

use burn::tensor::Tensor;

/// LSGAN generator term: `mean((D(G(p)) - 1)^2)`. `fake_logits`: `[B, 1, h, w]`.
pub fn lsgan_generator(fake_logits: Tensor<4>) -> Tensor<1> {
    fake_logits.sub_scalar(1.0).square().mean()
}

/// LSGAN "real" term `mean((x - 1)^2)`.
pub fn lsgan_real(logits: Tensor<4>) -> Tensor<1> {
    logits.sub_scalar(1.0).square().mean()
}

/// LSGAN "fake" term `mean(x^2)`.
pub fn lsgan_fake(logits: Tensor<4>) -> Tensor<1> {
    logits.square().mean()
}

/// The four unweighted discriminator terms and their weighted sum.
#[derive(Debug, Clone)]
pub struct DiscriminatorLoss {
    /// `w_adv * (c_real*real + c_fake*fake + c_gray*gray + c_smooth*smooth)`.
    pub total: Tensor<1>,
    /// `mean((D(a) - 1)^2)`.
    pub real: Tensor<1>,
    /// `mean(D(G(p))^2)`.
    pub fake: Tensor<1>,
    /// `mean(D(gray(a))^2)`.
    pub gray: Tensor<1>,
    /// `mean(D(smooth(a))^2)`.
    pub smooth: Tensor<1>,
}

/// Coefficients of the 4-term D loss.
#[derive(Debug, Clone, Copy)]
pub struct DiscriminatorWeights {
    /// Overall scale (300).
    pub adv: f64,
    /// Real style images (1.7).
    pub real: f64,
    /// Generated images (1.7).
    pub fake: f64,
    /// Grayscale style images (1.7).
    pub gray: f64,
    /// Edge-smoothed grayscale style images (1.0).
    pub smooth: f64,
}

/// The 4-term LSGAN discriminator loss from the four logit maps.
pub fn discriminator_loss(
    real: Tensor<4>,
    fake: Tensor<4>,
    gray: Tensor<4>,
    smooth: Tensor<4>,
    w: DiscriminatorWeights,
) -> DiscriminatorLoss {
    let real = lsgan_real(real);
    let fake = lsgan_fake(fake);
    let gray = lsgan_fake(gray);
    let smooth = lsgan_fake(smooth);
    let total = (real.clone().mul_scalar(w.real)
        + fake.clone().mul_scalar(w.fake)
        + gray.clone().mul_scalar(w.gray)
        + smooth.clone().mul_scalar(w.smooth))
    .mul_scalar(w.adv);
    DiscriminatorLoss {
        total,
        real,
        fake,
        gray,
        smooth,
    }
}

/// Mean absolute difference.
pub fn l1(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    (a - b).abs().mean()
}

/// Content loss: L1 between VGG conv4_4 features of the photo and of G(photo).
pub fn content_loss(photo_features: Tensor<4>, fake_features: Tensor<4>) -> Tensor<1> {
    l1(photo_features, fake_features)
}

/// Gram matrix `F Fᵀ / (C H W)` per sample: `[B, C, H, W]` -> `[B, C, C]`.
pub fn gram(x: Tensor<4>) -> Tensor<3> {
    let [b, c, h, w] = x.dims();
    let f = x.reshape([b, c, h * w]);
    f.clone()
        .matmul(f.swap_dims(1, 2))
        .div_scalar((c * h * w) as f64)
}

/// Grayscale style loss: L1 between the Gram matrices of VGG features of the
/// grayscale style image and of G(photo).
pub fn style_loss(gray_style_features: Tensor<4>, fake_features: Tensor<4>) -> Tensor<1> {
    (gram(gray_style_features) - gram(fake_features))
        .abs()
        .mean()
}

/// `[B, 3, H, W]` RGB in [-1, 1] -> YUV of the [0, 1] image (TF's `rgb_to_yuv` kernel).
pub fn rgb_to_yuv(x: Tensor<4>) -> Tensor<4> {
    let x = (x + 1.0) * 0.5;
    let r = x.clone().narrow(1, 0, 1);
    let g = x.clone().narrow(1, 1, 1);
    let b = x.narrow(1, 2, 1);
    let y = r.clone() * 0.299 + g.clone() * 0.587 + b.clone() * 0.114;
    let u = r.clone() * -0.14714119 + g.clone() * -0.28886916 + b.clone() * 0.43601035;
    let v = r * 0.61497538 + g * -0.51496512 + b * -0.10001026;
    Tensor::cat(vec![y, u, v], 1)
}

/// Huber loss (mean), `0.5 d^2` for `|d| <= delta`, `delta (|d| - delta/2)` beyond.
pub fn huber(a: Tensor<4>, b: Tensor<4>, delta: f64) -> Tensor<1> {
    let d = (a - b).abs();
    let quadratic = d.clone().square().mul_scalar(0.5);
    let linear = d.clone().sub_scalar(0.5 * delta).mul_scalar(delta);
    linear
        .mask_where(d.lower_equal_elem(delta), quadratic)
        .mean()
}

/// Colour loss between photo and G(photo): `L1(Y) + Huber(U) + Huber(V)`, delta 1.
pub fn color_loss(photo: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let p = rgb_to_yuv(photo);
    let f = rgb_to_yuv(fake);
    l1(p.clone().narrow(1, 0, 1), f.clone().narrow(1, 0, 1))
        + huber(p.clone().narrow(1, 1, 1), f.clone().narrow(1, 1, 1), 1.0)
        + huber(p.narrow(1, 2, 1), f.narrow(1, 2, 1), 1.0)
}

/// Total variation: `sum(dh^2)/2/numel(dh) + sum(dw^2)/2/numel(dw)`.
pub fn total_variation(x: Tensor<4>) -> Tensor<1> {
    let [_, _, h, w] = x.dims();
    let dh = x.clone().narrow(2, 1, h - 1) - x.clone().narrow(2, 0, h - 1);
    let dw = x.clone().narrow(3, 1, w - 1) - x.narrow(3, 0, w - 1);
    dh.square().mean().mul_scalar(0.5) + dw.square().mean().mul_scalar(0.5)
}

/// `[B, 3, H, W]` RGB in [-1, 1] -> luminance replicated to 3 channels (0.299, 0.587, 0.114).
pub fn grayscale3(x: Tensor<4>) -> Tensor<4> {
    let r = x.clone().narrow(1, 0, 1);
    let g = x.clone().narrow(1, 1, 1);
    let b = x.narrow(1, 2, 1);
    let y = r * 0.299 + g * 0.587 + b * 0.114;
    Tensor::cat(vec![y.clone(), y.clone(), y], 1)
}
