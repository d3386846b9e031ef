//! Helpers shared by the integration tests: tiny synthetic datasets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use photo2anime::interop::pytorch::TensorSource;
use photo2anime::interop::safetensors_io::SafetensorsFile;
use photo2anime::model::UpsampleMode;
use photo2anime::model_io::load_generator;

/// A smooth synthetic "photo": gradients plus a disc, `seed` varies colours.
pub fn synthetic_photo(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let cx = w as f32 * (0.3 + 0.05 * (seed % 5) as f32);
        let cy = h as f32 * 0.4;
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        if d < w.min(h) as f32 * 0.2 {
            Rgb([230, 200 - (seed * 20 % 100) as u8, 40])
        } else {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                (100 + seed * 30 % 150) as u8,
            ])
        }
    })
}

/// A flat-colour "cartoon" with dark outlines.
pub fn synthetic_cartoon(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let band = (x / 8 + y / 8 + seed) % 3;
        let edge = x % 16 == 0 || y % 16 == 0;
        if edge {
            Rgb([20, 20, 30])
        } else {
            [
                Rgb([240, 120, 90]),
                Rgb([90, 180, 240]),
                Rgb([250, 230, 120]),
            ][band as usize]
        }
    })
}

/// Writes `n` photos and `n` cartoons of `size`x`size` under `root/photos` and `root/style`.
pub fn tiny_dataset(root: &Path, n: u32, size: u32) -> (PathBuf, PathBuf) {
    let photos = root.join("photos");
    let style = root.join("style");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::create_dir_all(style.join("nested")).unwrap();
    for i in 0..n {
        synthetic_photo(size + i, size, i)
            .save(photos.join(format!("p{i}.png")))
            .unwrap();
        let dir = if i % 2 == 0 {
            style.clone()
        } else {
            style.join("nested")
        };
        synthetic_cartoon(size, size + i, i)
            .save(dir.join(format!("s{i}.png")))
            .unwrap();
    }
    (photos, style)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Max |photo2anime - PyTorch| over every fixture case of `mode` on `device`.
pub fn fixture_max_diff(device: &Device, mode: UpsampleMode) -> Vec<(String, f32)> {
    let io = SafetensorsFile::open(&fixture("reference_io.safetensors")).unwrap();
    let model = load_generator(&fixture("generator_seed0.pt"), device, Some(mode)).unwrap();
    let suffix = if mode.align_corners() {
        "align1"
    } else {
        "align0"
    };
    let mut results = Vec::new();
    for (key, shape) in io.entries() {
        let Some(case) = key.strip_prefix("in_") else {
            continue;
        };
        let out_key = format!("out_{case}_{suffix}");
        if !io.entries().iter().any(|(k, _)| *k == out_key) {
            continue;
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(io.read_f32(&key).unwrap(), shape.clone()),
            device,
        );
        let expected = io.read_f32(&out_key).unwrap();
        let y = model
            .generator
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(y.len(), expected.len());
        let d = y
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        results.push((format!("{case} {suffix}"), d));
    }
    results
}
