//! Image preprocessing: resizing, grayscale and the CartoonGAN / AnimeGAN edge smoothing.
//!
//! The edge smoothing reproduces AnimeGANv2's `edge_smooth.py` (OpenCV) exactly: the
//! fixtures in `tests/fixtures/edges/` come from the original code and `tests/edges.rs`
//! compares pixel by pixel.

use image::{GrayImage, RgbImage, imageops::FilterType};
use imageproc::distance_transform::Norm;

pub use super::edges::canny;

/// Canny low threshold of the published edge smoothing (`cv2.Canny(gray, 100, 200)`).
pub const CANNY_LOW: f32 = 100.0;
/// Canny high threshold.
pub const CANNY_HIGH: f32 = 200.0;
/// The sigma the original passes to `cv2.getGaussianKernel(5, 0)`. Zero makes OpenCV use
/// its fixed 5-tap table [`SMOOTH_TAPS`] (a binomial, close to sigma 1.0) rather than the
/// sigma 1.1 its size formula would give; kept because it is part of the cache settings.
pub const SMOOTH_SIGMA: f64 = 0.0;
/// `cv2.getGaussianKernel(5, 0)` times 16: `[1, 4, 6, 4, 1] / 16`. The 2D kernel is its
/// outer product, so every weight is an exact multiple of 1/256.
pub const SMOOTH_TAPS: [u32; 5] = [1, 4, 6, 4, 1];

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

/// Grayscale exactly as OpenCV's `cvtColor(COLOR_BGR2GRAY)` computes it for 8-bit images:
/// `(9798 R + 19235 G + 3735 B + 2^14) >> 15` (0.299 / 0.587 / 0.114 in Q15, rounded).
/// Verified against OpenCV on all 2^24 colours (`tests/fixtures/make_edge_fixtures.py`);
/// the float formula `round(0.299 R + 0.587 G + 0.114 B)` is off by one on 0.13% of colours.
pub fn grayscale(img: &RgbImage) -> GrayImage {
    let mut out = GrayImage::new(img.width(), img.height());
    for (o, p) in out.as_mut().iter_mut().zip(img.as_raw().chunks_exact(3)) {
        let v = 9798 * u32::from(p[0]) + 19235 * u32::from(p[1]) + 3735 * u32::from(p[2]);
        // The weights sum to 2^15, so the result is at most 255.
        *o = ((v + (1 << 14)) >> 15) as u8;
    }
    out
}

/// The edge mask: `cv2.dilate(cv2.Canny(gray, 100, 200), np.ones((5, 5)))`, 255 inside.
pub fn edge_mask(img: &RgbImage) -> GrayImage {
    let edges = canny(&grayscale(img), CANNY_LOW, CANNY_HIGH);
    // L-infinity radius 2 = the 5x5 all-ones kernel. Like cv2.dilate's default border,
    // pixels outside the image never contribute.
    imageproc::morphology::dilate(&edges, Norm::LInf, 2)
}

/// `np.pad(..., mode='reflect')` index: mirror without repeating the edge pixel
/// (OpenCV's BORDER_REFLECT_101), repeated for pads wider than the image.
fn reflect(i: i64, n: i64) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let i = i.rem_euclid(period);
    (if i >= n { period - i } else { i }) as usize
}

/// Edge-smoothed image, as AnimeGANv2's `edge_smooth.py`: every pixel inside
/// [`edge_mask`] becomes the 5x5 Gaussian-weighted sum (`getGaussianKernel(5, 0)` outer
/// product, reflect padding 2) of the *original* neighbourhood, per channel; other
/// pixels stay. The original stores the float sum into a `uint8` array, which truncates;
/// the weights are multiples of 1/256, so that is exactly `floor(sum(w * p) / 256)` in
/// integers.
pub fn edge_smooth(img: &RgbImage) -> RgbImage {
    let mask = edge_mask(img);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let mut out = img.clone();
    let dst: &mut [u8] = &mut out;
    for (i, _) in mask.as_raw().iter().enumerate().filter(|(_, m)| **m != 0) {
        let (x, y) = ((i % w) as i64, (i / w) as i64);
        let mut acc = [0u32; 3];
        for (ky, wy) in SMOOTH_TAPS.iter().enumerate() {
            let sy = reflect(y + ky as i64 - 2, h as i64);
            for (kx, wx) in SMOOTH_TAPS.iter().enumerate() {
                let sx = reflect(x + kx as i64 - 2, w as i64);
                let p = &src[(sy * w + sx) * 3..][..3];
                for (a, &v) in acc.iter_mut().zip(p) {
                    *a += wy * wx * u32::from(v);
                }
            }
        }
        for (d, a) in dst[i * 3..][..3].iter_mut().zip(acc) {
            // At most 256 * 255 / 256 = 255.
            *d = (a >> 8) as u8;
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

/// Computes [`StyleVariants`] of an already-resized style image. As in AnimeGANv2 (which
/// writes the smoothed colour image and reads it back with `IMREAD_GRAYSCALE`), the colour
/// image is smoothed first and converted to gray afterwards.
pub fn style_variants(color: RgbImage) -> StyleVariants {
    let gray = grayscale(&color);
    let smooth_gray = grayscale(&edge_smooth(&color));
    StyleVariants {
        color,
        gray,
        smooth_gray,
    }
}
