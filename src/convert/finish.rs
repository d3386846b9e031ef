//! What is done to the network's output before an artist sees it: keep the photo's
//! colours, match its brightness, and dial the style strength — by blending with the
//! photo, or, for a fine-tuned model, by interpolating its weights with its parent's.

use image::RgbImage;

use crate::interop::params::{collect_params, replace_params};
use crate::model::Generator;

/// BT.601 full-range luma of an RGB pixel (JPEG's YCbCr).
fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

fn to_f32(p: &image::Rgb<u8>) -> [f32; 3] {
    [p.0[0] as f32, p.0[1] as f32, p.0[2] as f32]
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// The output's luminance with the photo's chroma (BT.601 full-range YCbCr: Y from
/// `out`, Cb and Cr from `photo`). Both must have the same size.
pub fn keep_photo_colors(out: &RgbImage, photo: &RgbImage) -> RgbImage {
    RgbImage::from_fn(out.width(), out.height(), |x, y| {
        let o = to_f32(out.get_pixel(x, y));
        let p = to_f32(photo.get_pixel(x, y));
        let y_out = luma(o);
        let cb = -0.168_736 * p[0] - 0.331_264 * p[1] + 0.5 * p[2];
        let cr = 0.5 * p[0] - 0.418_688 * p[1] - 0.081_312 * p[2];
        image::Rgb([
            to_u8(y_out + 1.402 * cr),
            to_u8(y_out - 0.344_136 * cb - 0.714_136 * cr),
            to_u8(y_out + 1.772 * cb),
        ])
    })
}

/// `strength * out + (1 - strength) * photo`: 1 is the network's output, 0 the photo.
pub fn blend_with_photo(out: &RgbImage, photo: &RgbImage, strength: f32) -> RgbImage {
    let s = strength.clamp(0.0, 1.0);
    RgbImage::from_fn(out.width(), out.height(), |x, y| {
        let (o, p) = (out.get_pixel(x, y).0, photo.get_pixel(x, y).0);
        image::Rgb(std::array::from_fn(|c| {
            to_u8(s * o[c] as f32 + (1.0 - s) * p[c] as f32)
        }))
    })
}

/// Network interpolation: every parameter `parent + t * (child - parent)`; `t = 1`
/// is `child`, `t = 0` the parent. Both must have the same architecture (a fine-tune
/// and the model it started from always do); the upsampling rule is `child`'s.
pub fn interpolate_generators(parent: &Generator, child: &Generator, t: f32) -> Generator {
    let parents = collect_params(parent);
    let values = collect_params(child)
        .into_iter()
        .zip(parents)
        .map(|(c, p)| {
            let mixed: Vec<f32> = c
                .values
                .iter()
                .zip(&p.values)
                .map(|(c, p)| p + t * (c - p))
                .collect();
            (c.path, burn::tensor::TensorData::new(mixed, c.shape))
        })
        .collect();
    replace_params(child.clone(), values)
}

/// A model ready to convert at a style strength, with the recipe its files carry.
pub struct Styled {
    /// The generator to run (interpolated with the parent for a fine-tune below 100%).
    pub generator: Generator,
    /// [`crate::convert::ConvertOptions::photo_blend`] to use with it.
    pub photo_blend: f32,
    /// What the output files record.
    pub recipe: super::recipe::Recipe,
}

/// Style choices of a conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StyleChoice {
    /// 0-100: 100 is the model's full style, 0 the photo.
    pub strength_percent: u32,
    /// Keep the photo's colours.
    pub keep_colors: bool,
    /// Match the photo's brightness.
    pub match_luminance: bool,
}

/// How a style strength is reached for one model. A fine-tune (a run whose
/// `config.json` names a parent that exists) below 100% interpolates its weights
/// with the parent's — the parent's style at 0%, as kohya-style fine-tunes are
/// dialled; any other model blends its output with the photo.
#[derive(Debug, Clone, PartialEq)]
pub struct StylePlan {
    /// The parent to interpolate with; `None` when the strength is a photo blend.
    pub parent: Option<std::path::PathBuf>,
    choice: StyleChoice,
}

impl StylePlan {
    /// The plan for the model read from `model_path` at `choice`.
    pub fn new(model_path: &std::path::Path, choice: StyleChoice) -> Self {
        let below_full = choice.strength_percent < 100;
        Self {
            parent: crate::model_io::fine_tune_parent(model_path).filter(|_| below_full),
            choice,
        }
    }

    /// The strength the network's weights are at (100 unless interpolated): the
    /// network's raw output depends on this and the model, never on the rest.
    pub fn weights_percent(&self) -> u32 {
        if self.parent.is_some() {
            self.choice.strength_percent.min(100)
        } else {
            100
        }
    }

    /// [`crate::convert::ConvertOptions::photo_blend`] for this plan.
    pub fn photo_blend(&self) -> f32 {
        if self.parent.is_some() {
            1.0
        } else {
            self.choice.strength_percent.min(100) as f32 / 100.0
        }
    }

    /// The generator to run: `generator` itself, or interpolated with the parent.
    pub fn generator(
        &self,
        generator: Generator,
        device: &burn::tensor::Device,
    ) -> Result<Generator, crate::model_io::ModelError> {
        let Some(parent) = &self.parent else {
            return Ok(generator);
        };
        let parent = crate::model_io::load_generator(parent, device, Some(generator.upsample))?;
        let t = self.weights_percent() as f32 / 100.0;
        Ok(interpolate_generators(&parent.generator, &generator, t))
    }

    /// What files converted this way record; `model_blake3` is the model's
    /// [`crate::interop::params::weights_blake3`] before interpolation.
    pub fn recipe(&self, model: &str, model_blake3: &str) -> super::recipe::Recipe {
        super::recipe::Recipe {
            model: model.to_string(),
            model_blake3: model_blake3.to_string(),
            strength_percent: self.choice.strength_percent.min(100),
            strength_by: if self.parent.is_some() {
                "weights"
            } else {
                "photo-blend"
            }
            .to_string(),
            keep_colors: self.choice.keep_colors,
            match_luminance: self.choice.match_luminance,
            version: crate::VERSION.to_string(),
        }
    }
}

/// Prepares `loaded` (read from `model_path`) for conversion at `choice` (see
/// [`StylePlan`]).
pub fn styled(
    loaded: crate::model_io::LoadedModel,
    model_path: &std::path::Path,
    choice: StyleChoice,
    device: &burn::tensor::Device,
) -> Result<Styled, crate::model_io::ModelError> {
    let plan = StylePlan::new(model_path, choice);
    let blake3 = crate::interop::params::weights_blake3(&loaded.generator);
    Ok(Styled {
        recipe: plan.recipe(&loaded.description, &blake3),
        photo_blend: plan.photo_blend(),
        generator: plan.generator(loaded.generator, device)?,
    })
}
