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

/// Prepares `loaded` (read from `model_path`) for conversion at `choice`. A
/// fine-tune (a run whose `config.json` names its parent) below 100% interpolates
/// its weights with the parent's — the parent's style at 0%, as kohya-style
/// fine-tunes are dialled; any other model blends its output with the photo.
pub fn styled(
    loaded: crate::model_io::LoadedModel,
    model_path: &std::path::Path,
    choice: StyleChoice,
    device: &burn::tensor::Device,
) -> Result<Styled, crate::model_io::ModelError> {
    let strength = choice.strength_percent.min(100) as f32 / 100.0;
    let parent = crate::model_io::fine_tune_parent(model_path);
    let recipe = |by: &str| super::recipe::Recipe {
        model: loaded.description.clone(),
        model_blake3: crate::interop::params::weights_blake3(&loaded.generator),
        strength_percent: choice.strength_percent.min(100),
        strength_by: by.to_string(),
        keep_colors: choice.keep_colors,
        match_luminance: choice.match_luminance,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    match parent {
        Some(parent) if strength < 1.0 => {
            let parent = crate::model_io::load_generator(&parent, device, Some(loaded.upsample))?;
            let recipe = recipe("weights");
            Ok(Styled {
                generator: interpolate_generators(&parent.generator, &loaded.generator, strength),
                photo_blend: 1.0,
                recipe,
            })
        }
        _ => {
            let recipe = recipe("photo-blend");
            Ok(Styled {
                generator: loaded.generator,
                photo_blend: strength,
                recipe,
            })
        }
    }
}
