//! Conversions between RGB8 images and `[B, 3, H, W]` tensors in [-1, 1].

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

/// Images of equal size -> `[B, 3, H, W]` in [-1, 1] (`x / 127.5 - 1`).
pub fn images_to_tensor(images: &[RgbImage], device: &Device) -> Tensor<4> {
    let (w, h) = images.first().map(|i| i.dimensions()).unwrap_or((0, 0));
    let (w, h) = (w as usize, h as usize);
    let mut data = vec![0f32; images.len() * 3 * h * w];
    for (b, img) in images.iter().enumerate() {
        let base = b * 3 * h * w;
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                data[base + c * h * w + i] = p.0[c] as f32 / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, h, w]), device)
}

/// A tensor's values could not be read back from its device (or came back with
/// the wrong length): the result is unknown, so nothing is made up in its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading the result back from the device failed: {0}")]
pub struct ReadbackError(pub String);

/// `[B, 3, H, W]` in [-1, 1] -> images (`clamp(-1, 1) * 0.5 + 0.5`, x255, rounded).
pub fn tensor_to_images(t: Tensor<4>) -> Result<Vec<RgbImage>, ReadbackError> {
    let [b, _, h, w] = t.dims();
    let data = t.into_data().convert::<f32>();
    let values = data
        .try_to_vec::<f32>()
        .map_err(|e| ReadbackError(format!("{e:?}")))?;
    floats_to_images(&values, b, h, w)
}

/// Row-major CHW floats in [-1, 1] -> images; `values` must hold exactly
/// `b * 3 * h * w` floats.
pub fn floats_to_images(
    values: &[f32],
    b: usize,
    h: usize,
    w: usize,
) -> Result<Vec<RgbImage>, ReadbackError> {
    let expected = b * 3 * h * w;
    if values.len() != expected {
        return Err(ReadbackError(format!(
            "{} values for {b} images of {w}x{h} (expected {expected})",
            values.len()
        )));
    }
    Ok((0..b)
        .map(|n| {
            let base = n * 3 * h * w;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let px = |c: usize| {
                    let v = values[base + c * h * w + i];
                    ((v.clamp(-1.0, 1.0) * 0.5 + 0.5) * 255.0).round() as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect())
}

/// Side-by-side grid: first row `top`, second row `bottom` (same sizes).
pub fn two_row_grid(top: &[RgbImage], bottom: &[RgbImage]) -> RgbImage {
    let (w, h) = top.first().map(|i| i.dimensions()).unwrap_or((1, 1));
    let cols = top.len().max(bottom.len()).max(1) as u32;
    let mut grid = RgbImage::from_pixel(w * cols, h * 2, image::Rgb([24, 24, 24]));
    for (row, imgs) in [top, bottom].iter().enumerate() {
        for (col, img) in imgs.iter().enumerate() {
            image::imageops::replace(
                &mut grid,
                img,
                (col as u32 * w) as i64,
                (row as u32 * h) as i64,
            );
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of the wrong length (a failed or partial readback) are an error,
    /// never a grey image.
    #[test]
    fn a_short_readback_is_an_error() {
        assert!(floats_to_images(&[0.0; 11], 1, 2, 2).is_err());
        let ok = floats_to_images(&[1.0; 12], 1, 2, 2).unwrap();
        assert_eq!(ok[0].get_pixel(1, 1).0, [255, 255, 255]);
    }
}
