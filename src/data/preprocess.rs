//! Image preprocessing: resizing, grayscale and the CartoonGAN / AnimeGAN edge smoothing.

use image::{GrayImage, Luma, Rgb, RgbImage, imageops::FilterType};
use imageproc::distance_transform::Norm;

/// Canny thresholds of the published edge smoothing.
pub const CANNY_LOW: f32 = 100.0;
/// Canny high threshold.
pub const CANNY_HIGH: f32 = 200.0;
/// Gaussian sigma of the 5x5 smoothing kernel.
pub const SMOOTH_SIGMA: f64 = 1.1;

/// Resizes so the shorter side is `side` (aspect kept), CatmullRom.
pub fn resize_short_side(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = side as f64 / w.min(h) as f64;
    let nw = ((w as f64 * scale).round() as u32).max(side);
    let nh = ((h as f64 * scale).round() as u32).max(side);
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    image::imageops::resize(img, nw, nh, FilterType::CatmullRom)
}

/// Crops the centred `side` x `side` square (the image must be at least that big).
pub fn center_crop(img: &RgbImage, side: u32) -> RgbImage {
    let x = (img.width() - side) / 2;
    let y = (img.height() - side) / 2;
    image::imageops::crop_imm(img, x, y, side, side).to_image()
}

/// Luminance `0.299 R + 0.587 G + 0.114 B` (OpenCV's BGR2GRAY, used by AnimeGAN).
pub fn grayscale(img: &RgbImage) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let [r, g, b] = img.get_pixel(x, y).0;
        let v = 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

/// The edge mask: Canny(100, 200) of the grayscale image, dilated by a 5x5 square.
pub fn edge_mask(img: &RgbImage) -> GrayImage {
    let edges = imageproc::edges::canny(&grayscale(img), CANNY_LOW, CANNY_HIGH);
    // L-infinity radius 2 = the 5x5 all-ones kernel.
    imageproc::morphology::dilate(&edges, Norm::LInf, 2)
}

/// Normalised 5x5 Gaussian kernel (outer product of OpenCV's `getGaussianKernel(5, 1.1)`).
fn gaussian_5x5() -> [[f32; 5]; 5] {
    let one_d: Vec<f64> = (-2..=2)
        .map(|i: i32| (-(i * i) as f64 / (2.0 * SMOOTH_SIGMA * SMOOTH_SIGMA)).exp())
        .collect();
    let sum: f64 = one_d.iter().sum();
    let mut k = [[0f32; 5]; 5];
    for (i, a) in one_d.iter().enumerate() {
        for (j, b) in one_d.iter().enumerate() {
            k[i][j] = (a * b / (sum * sum)) as f32;
        }
    }
    k
}

/// Reflect index (no edge repeat, like numpy's `reflect`).
fn reflect(i: i64, n: i64) -> u32 {
    let mut i = i;
    if i < 0 {
        i = -i;
    }
    if i >= n {
        i = 2 * (n - 1) - i;
    }
    i.clamp(0, n - 1) as u32
}

/// Edge-smoothed image: every pixel inside [`edge_mask`] becomes the 5x5
/// Gaussian-weighted mean (sigma 1.1, reflect padding 2) of its neighbourhood.
pub fn edge_smooth(img: &RgbImage) -> RgbImage {
    let mask = edge_mask(img);
    let kernel = gaussian_5x5();
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel(x, y).0[0] == 0 {
                continue;
            }
            let mut acc = [0f32; 3];
            for (dy, row) in kernel.iter().enumerate() {
                let sy = reflect(y as i64 + dy as i64 - 2, h as i64);
                for (dx, weight) in row.iter().enumerate() {
                    let sx = reflect(x as i64 + dx as i64 - 2, w as i64);
                    let p = img.get_pixel(sx, sy).0;
                    for c in 0..3 {
                        acc[c] += weight * p[c] as f32;
                    }
                }
            }
            out.put_pixel(x, y, Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8)));
        }
    }
    out
}

/// A style image at training resolution and the two negatives derived from it.
#[derive(Debug, Clone)]
pub struct StyleVariants {
    /// The colour image (short side = training size).
    pub color: RgbImage,
    /// Its grayscale.
    pub gray: GrayImage,
    /// Grayscale of the edge-smoothed image.
    pub smooth_gray: GrayImage,
}

/// Computes [`StyleVariants`] of an already-resized style image.
pub fn style_variants(color: RgbImage) -> StyleVariants {
    let gray = grayscale(&color);
    let smooth_gray = grayscale(&edge_smooth(&color));
    StyleVariants {
        color,
        gray,
        smooth_gray,
    }
}
