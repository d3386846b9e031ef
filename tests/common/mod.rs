//! Helpers shared by the integration tests: tiny synthetic datasets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(dead_code)]

pub mod studio;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use photo2anime::interop::pytorch::TensorSource;
use photo2anime::interop::safetensors_io::SafetensorsFile;
use photo2anime::model::UpsampleMode;
use photo2anime::model_io::load_generator;

/// A clip made by ffmpeg at `path`: `testsrc` at 96x64 and 25 fps, `seconds`
/// long, with a 440 Hz tone (H.264 + AAC). Panics without ffmpeg (`.ci/run`
/// installs it).
pub fn test_clip(path: &Path, seconds: u32) {
    let (video, audio) = (
        format!("testsrc=size=96x64:rate=25:duration={seconds}"),
        format!("sine=frequency=440:duration={seconds}"),
    );
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &video])
        .args(["-f", "lavfi", "-i", &audio])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg is installed (Debian: apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
}

/// A freshly initialised generator written as a model folder at `dir`.
pub fn model_dir(dir: &Path) {
    photo2anime::model_io::write_model_dir(
        photo2anime::model::GeneratorConfig::new().init(&Device::flex()),
        dir,
        UpsampleMode::AlignCorners,
        photo2anime::train::run_dir::ModelOrigin::Trained,
    )
    .unwrap();
}

/// Largest per-channel difference of two 8-bit images of the same size.
pub fn max_level_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

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

/// Largest `|a[i] - b[i]|`, and NaN as soon as either side holds a NaN (or both the
/// same infinity), so `d <= tol` can never pass on a NaN output. `fold(0.0, f32::max)`
/// would skip NaNs: an all-NaN output compared as "0 difference". Panics when the
/// lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "max_abs_diff: lengths differ ({} vs {})",
        a.len(),
        b.len()
    );
    let mut max = 0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::NAN;
        }
        max = max.max(d);
    }
    max
}

/// `‖a − b‖₂ / ‖b‖₂` (`b` is the reference), accumulated in f64; NaN when either
/// side holds a NaN. A zero reference gives `‖a‖₂ / 1e-30`. Panics when the
/// lengths differ.
pub fn rel_l2_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "rel_l2_error: lengths differ ({} vs {})",
        a.len(),
        b.len()
    );
    let (mut err, mut norm) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let d = f64::from(x) - f64::from(y);
        err += d * d;
        norm += f64::from(y) * f64::from(y);
    }
    if err.is_nan() || norm.is_nan() {
        return f32::NAN;
    }
    (err.sqrt() / norm.sqrt().max(1e-30)) as f32
}

/// Index and value of the first NaN or infinite element, if any.
fn first_non_finite(v: &[f32]) -> Option<(usize, f32)> {
    v.iter().copied().enumerate().find(|(_, x)| !x.is_finite())
}

/// Panics (naming `what`) unless `a` and `b` have the same length, every element of
/// both is finite, and `max |a - b| <= tol`.
pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    assert!(!a.is_empty(), "{what}: nothing to compare");
    for (side, v) in [("left", a), ("right", b)] {
        if let Some((i, x)) = first_non_finite(v) {
            panic!("{what}: {side} side is not finite at index {i} ({x})");
        }
    }
    let d = max_abs_diff(a, b);
    assert!(d <= tol, "{what}: max |difference| {d:e} > {tol:e}");
}

/// Panics (naming `what`) unless both sides are finite and the relative L2 error of
/// `a` against the reference `b` is at most `tol`; returns that error.
pub fn assert_rel_l2(a: &[f32], b: &[f32], tol: f32, what: &str) -> f32 {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    assert!(!a.is_empty(), "{what}: nothing to compare");
    for (side, v) in [("left", a), ("right", b)] {
        if let Some((i, x)) = first_non_finite(v) {
            panic!("{what}: {side} side is not finite at index {i} ({x})");
        }
    }
    let rel = rel_l2_error(a, b);
    assert!(rel <= tol, "{what}: relative L2 error {rel:e} > {tol:e}");
    rel
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
        // NaN when either side has one, so the callers' `d <= tol` fails.
        let d = max_abs_diff(&y, &expected);
        results.push((format!("{case} {suffix}"), d));
    }
    results
}

/// Relative error `|a - b| / |b|` that fails on NaN: any NaN (or infinity) gives
/// `f64::INFINITY`, so `error <= tolerance` is false. `b == 0` compares `|a|`.
pub fn nan_fails_rel(a: f64, b: f64) -> f64 {
    if !a.is_finite() || !b.is_finite() {
        return f64::INFINITY;
    }
    let d = (a - b).abs();
    if b == 0.0 { d } else { d / b.abs() }
}

/// Relative L2 error `|a - b| / |b|` of two equally long slices that fails on NaN
/// (`f64::INFINITY` when any value is not finite or the lengths differ).
pub fn nan_fails_rel_l2(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.iter().chain(b).any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let err = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norm == 0.0 { err } else { err / norm }
}
