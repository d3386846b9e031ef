//! Decoding any supported image into RGB8, safely: EXIF orientation applied,
//! alpha composited on white, 16-bit and grayscale converted, size limits enforced.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// File extensions scanned as images (lower case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"];

/// Images with a side shorter than this are refused.
pub const MIN_SIDE: u32 = 32;

/// Images with a side longer than this are refused (a decoded 16384² RGBA is 1 GiB).
pub const MAX_SIDE: u32 = 16384;

/// Memory the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Whether `path` has one of [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A decoded image: 8-bit RGB, upright, alpha composited on white.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// The pixels, upright.
    pub rgb: RgbImage,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Reads only the header: `(width, height)` after EXIF orientation, or why the file is unusable.
pub fn probe(path: &Path) -> Result<(u32, u32), String> {
    let mut reader = ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image (unrecognised format)".into());
    }
    reader.limits(limits());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("unreadable image: {e}"))?;
    let (w, h) = decoder.dimensions();
    let swap = decoder
        .orientation()
        .map(|o| {
            matches!(
                o,
                image::metadata::Orientation::Rotate90
                    | image::metadata::Orientation::Rotate270
                    | image::metadata::Orientation::Rotate90FlipH
                    | image::metadata::Orientation::Rotate270FlipH
            )
        })
        .unwrap_or(false);
    let (w, h) = if swap { (h, w) } else { (w, h) };
    check_size(w, h)?;
    Ok((w, h))
}

fn check_size(w: u32, h: u32) -> Result<(), String> {
    if w.min(h) < MIN_SIDE {
        return Err(format!(
            "too small ({w}x{h}; sides must be at least {MIN_SIDE} px)"
        ));
    }
    if w.max(h) > MAX_SIDE {
        return Err(format!(
            "too large ({w}x{h}; sides must be at most {MAX_SIDE} px)"
        ));
    }
    Ok(())
}

/// Decodes `path` to upright RGB8. Errors are one human-readable line.
pub fn decode_rgb(path: &Path) -> Result<DecodedImage, String> {
    let mut reader = ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let format = reader
        .format()
        .ok_or_else(|| "not an image (unrecognised format)".to_string())?;
    reader.limits(limits());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("unreadable {format:?}: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("corrupt or truncated {format:?}: {e}"))?;
    img.apply_orientation(orientation);
    check_size(img.width(), img.height())?;
    Ok(to_rgb8(img))
}

/// Converts any colour type to RGB8, compositing alpha on white.
pub fn to_rgb8(img: DynamicImage) -> DecodedImage {
    // 16/32-bit and grayscale images are converted by `to_rgb8`; alpha needs a
    // background, and white is what a viewer shows behind a transparent image.
    let rgb = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let p = rgba.get_pixel(x, y).0;
            let a = p[3] as u32;
            let blend = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
        })
    } else {
        img.to_rgb8()
    };
    DecodedImage { rgb }
}
