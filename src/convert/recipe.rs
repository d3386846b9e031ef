//! The recipe of a converted image — model, strength, colour options, version — kept
//! in the PNG as text chunks, so a result can always be traced and reproduced.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// How an image was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// The model, as described when loaded (e.g. `checkpoints/run-1 (step 1200)`).
    pub model: String,
    /// BLAKE3 of the model's weights ([`crate::interop::params::weights_blake3`]).
    pub model_blake3: String,
    /// Style strength in percent (100 = the network's output).
    pub strength_percent: u32,
    /// How strength was applied: `weights` (network interpolation with the parent)
    /// or `photo-blend`.
    pub strength_by: String,
    /// The photo's colours were kept.
    pub keep_colors: bool,
    /// The photo's brightness was matched.
    pub match_luminance: bool,
    /// photo2anime's version.
    pub version: String,
}

/// PNG text keyword of the recipe (JSON).
pub const RECIPE_KEY: &str = "photo2anime:recipe";

/// Why a recipe could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The PNG could not be encoded or decoded.
    #[error("{0}")]
    Png(String),
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no recipe.
    #[error(
        "{0}: no photo2anime recipe in this PNG (not converted by photo2anime, or re-saved by another program)"
    )]
    Missing(std::path::PathBuf),
    /// The recipe text is not valid.
    #[error("{path}: unreadable recipe: {detail}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
}

/// Encodes `img` as PNG bytes with `recipe` in an `iTXt` chunk (and `Software`).
pub fn png_with_recipe(img: &image::RgbImage, recipe: &Recipe) -> Result<Vec<u8>, RecipeError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, img.width(), img.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let json = serde_json::to_string(recipe).map_err(|e| RecipeError::Png(e.to_string()))?;
        let png_err = |e: png::EncodingError| RecipeError::Png(e.to_string());
        encoder
            .add_text_chunk("Software".into(), format!("photo2anime {}", recipe.version))
            .map_err(png_err)?;
        encoder
            .add_itxt_chunk(RECIPE_KEY.into(), json)
            .map_err(png_err)?;
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(img.as_raw()).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    Ok(bytes)
}

/// Reads the recipe of a PNG written by [`png_with_recipe`].
pub fn read_recipe(path: &Path) -> Result<Recipe, RecipeError> {
    let file = std::fs::File::open(path).map_err(|source| RecipeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder
        .read_info()
        .map_err(|e| RecipeError::Png(format!("{}: {e}", path.display())))?;
    let info = reader.info();
    let text = info
        .utf8_text
        .iter()
        .find(|c| c.keyword == RECIPE_KEY)
        .ok_or_else(|| RecipeError::Missing(path.to_path_buf()))?
        .get_text()
        .map_err(|e| RecipeError::Invalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    serde_json::from_str(&text).map_err(|e| RecipeError::Invalid {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}
