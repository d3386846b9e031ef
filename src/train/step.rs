//! One optimisation step of AnimeGANv2 on the three networks, independent of
//! datasets and threads (the trainer and the benchmark both use it).

use crate::tensor_image::ReadbackError;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::LiveParams;
use super::events::LossValues;
use super::losses::{
    DiscriminatorWeights, color_loss, content_loss, discriminator_loss, lsgan_generator,
    style_loss, total_variation,
};
use crate::data::Batch;
use crate::model::{Discriminator, Generator, Vgg19};

/// The Adam settings of the reference: beta1 0.5, beta2 0.999, epsilon 1e-8
/// (Burn's default epsilon is 1e-5).
pub fn adam() -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
}

/// G, D, the frozen VGG and the three optimizers, on an autodiff device.
pub struct Networks {
    /// Generator.
    pub generator: Generator,
    /// Discriminator.
    pub discriminator: Discriminator,
    /// Loss network (frozen).
    pub vgg: Vgg19,
    /// Adam of the init phase (G only).
    pub opt_init: ModuleOptimizer,
    /// Adam of G in the adversarial phase.
    pub opt_g: ModuleOptimizer,
    /// Adam of D.
    pub opt_d: ModuleOptimizer,
}

/// `[B, 3, S, S]` tensor from a batch field.
fn batch_tensor(values: &[f32], b: usize, s: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values.to_vec(), [b, 3, s, s]), device)
}

/// Reads several one-element tensors with a single device sync. A failed
/// readback is an error: it must never look like a NaN loss.
pub fn read_scalars<const N: usize>(values: [Tensor<1>; N]) -> Result<[f32; N], ReadbackError> {
    let data = Tensor::cat(values.into_iter().collect(), 0)
        .into_data()
        .convert::<f32>();
    let v = data
        .try_to_vec::<f32>()
        .map_err(|e| ReadbackError(format!("loss values: {e:?}")))?;
    <[f32; N]>::try_from(v)
        .map_err(|v| ReadbackError(format!("{} loss values, expected {N}", v.len())))
}

impl Networks {
    /// Fresh optimizers around the given networks.
    pub fn new(generator: Generator, discriminator: Discriminator, vgg: Vgg19) -> Self {
        Self {
            generator,
            discriminator,
            vgg,
            opt_init: adam().init(),
            opt_g: adam().init(),
            opt_d: adam().init(),
        }
    }

    /// Content-only generator step: `w_content * L1(VGG(p), VGG(G(p)))`.
    pub fn init_step(
        &mut self,
        batch: &Batch,
        live: &LiveParams,
        device: &Device,
    ) -> Result<LossValues, ReadbackError> {
        let (b, s) = (batch.batch_size, batch.image_size);
        let photos = batch_tensor(&batch.photos, b, s, device);
        let fake = self.generator.forward(photos.clone());
        let f_real = self.vgg.forward(photos).detach();
        let content = content_loss(f_real, self.vgg.forward(fake));
        let total = content.clone().mul_scalar(live.w_content);
        let grads = GradientsParams::from_grads(total.backward(), &self.generator);
        self.generator = self
            .opt_init
            .step(live.lr_init, self.generator.clone(), grads);
        let [total, content] = read_scalars([total, content])?;
        Ok(LossValues {
            g_total: Some(total),
            content: Some(content),
            ..Default::default()
        })
    }

    /// One D step then one G step (the G step sees the updated D, as in the original).
    pub fn adversarial_step(
        &mut self,
        batch: &Batch,
        live: &LiveParams,
        device: &Device,
    ) -> Result<LossValues, ReadbackError> {
        let t = BatchTensors::new(batch, device);
        let fake = self.generator.forward(t.photos.clone()); // [B, 3, S, S]
        let d = self.discriminator_step(&t, fake.clone().detach(), live)?;
        let g = self.generator_step(&t, fake, live)?;
        Ok(LossValues {
            d_total: d.d_total,
            d_real: d.d_real,
            d_fake: d.d_fake,
            d_gray: d.d_gray,
            d_smooth: d.d_smooth,
            ..g
        })
    }

    /// Updates D only, from the 4-term LSGAN loss on real, generated (`fake`,
    /// detached), grayscale and edge-smoothed grayscale images.
    pub fn discriminator_step(
        &mut self,
        t: &BatchTensors,
        fake: Tensor<4>,
        live: &LiveParams,
    ) -> Result<LossValues, ReadbackError> {
        let b = t.photos.dims()[0];
        // The four kinds of input in one batch (GroupNorm is per sample, so the
        // logits equal four separate passes) — [4B, 1, S/4, S/4].
        let d_input = Tensor::cat(
            vec![t.style.clone(), fake, t.gray.clone(), t.smooth.clone()],
            0,
        );
        let logits = self.discriminator.forward(d_input);
        let part = |i: usize| logits.clone().narrow(0, i * b, b);
        let d = discriminator_loss(
            part(0),
            part(1),
            part(2),
            part(3),
            DiscriminatorWeights {
                adv: live.w_d_adv,
                real: live.d_real,
                fake: live.d_fake,
                gray: live.d_gray,
                smooth: live.d_smooth,
            },
        );
        let grads = GradientsParams::from_grads(d.total.backward(), &self.discriminator);
        self.discriminator = self
            .opt_d
            .step(live.lr_d, self.discriminator.clone(), grads);
        let [total, real, fake, gray, smooth] =
            read_scalars([d.total, d.real, d.fake, d.gray, d.smooth])?;
        Ok(LossValues {
            d_total: Some(total),
            d_real: Some(real),
            d_fake: Some(fake),
            d_gray: Some(gray),
            d_smooth: Some(smooth),
            ..Default::default()
        })
    }

    /// Updates G only: adversarial, content, style, colour and TV terms on
    /// `fake = G(photos)` (with its graph). D and VGG are frozen.
    pub fn generator_step(
        &mut self,
        t: &BatchTensors,
        fake: Tensor<4>,
        live: &LiveParams,
    ) -> Result<LossValues, ReadbackError> {
        let frozen_d = self.discriminator.clone().no_grad();
        let g_adv = lsgan_generator(frozen_d.forward(fake.clone()));
        let f_real = self.vgg.forward(t.photos.clone()).detach();
        let f_gray = self.vgg.forward(t.gray.clone()).detach();
        let f_fake = self.vgg.forward(fake.clone());
        let content = content_loss(f_real, f_fake.clone());
        let style_term = style_loss(f_gray, f_fake);
        let color = color_loss(t.photos.clone(), fake.clone());
        let tv = total_variation(fake);
        let total = g_adv.clone().mul_scalar(live.w_g_adv)
            + content.clone().mul_scalar(live.w_content)
            + style_term.clone().mul_scalar(live.w_style)
            + color.clone().mul_scalar(live.w_color)
            + tv.clone().mul_scalar(live.w_tv);
        let grads = GradientsParams::from_grads(total.backward(), &self.generator);
        self.generator = self.opt_g.step(live.lr_g, self.generator.clone(), grads);
        let [total, g_adv, content, style, color, tv] =
            read_scalars([total, g_adv, content, style_term, color, tv])?;
        Ok(LossValues {
            g_total: Some(total),
            g_adv: Some(g_adv),
            content: Some(content),
            style: Some(style),
            color: Some(color),
            tv: Some(tv),
            ..Default::default()
        })
    }
}

/// A batch's four image tensors on the training device, each `[B, 3, S, S]` in [-1, 1].
pub struct BatchTensors {
    /// Photos.
    pub photos: Tensor<4>,
    /// Style images.
    pub style: Tensor<4>,
    /// Grayscale style images.
    pub gray: Tensor<4>,
    /// Edge-smoothed grayscale style images.
    pub smooth: Tensor<4>,
}

impl BatchTensors {
    /// Uploads a batch.
    pub fn new(batch: &Batch, device: &Device) -> Self {
        let (b, s) = (batch.batch_size, batch.image_size);
        Self {
            photos: batch_tensor(&batch.photos, b, s, device),
            style: batch_tensor(&batch.style, b, s, device),
            gray: batch_tensor(&batch.style_gray, b, s, device),
            smooth: batch_tensor(&batch.style_smooth, b, s, device),
        }
    }
}
