//! Seam-free CPU tiling: a 1024² photo converted in 576² tiles equals the
//! whole-image conversion within 2/255 (issue: "seams invisible"), with the
//! PyTorch-port fixture generator so that the network is a real, non-trivial one.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use common::fixture;
use image::RgbImage;
use image::imageops::FilterType;
use photo2anime::convert::tiles::convert_tiled;
use photo2anime::convert::{ConvertOptions, convert_image, convert_whole};
use photo2anime::model::UpsampleMode;
use photo2anime::model::cpu::CpuGenerator;
use photo2anime::model_io::load_generator;
use photo2anime::tensor_image::floats_to_images;

/// A demo photo upscaled to `side`² (textures, edges and flat sky in one image).
fn photo(side: u32) -> RgbImage {
    let path = photo2anime::demo_dir().join("photos/astronaut.jpg");
    let img = image::open(&path).expect("demo photo").to_rgb8();
    image::imageops::resize(&img, side, side, FilterType::Triangle)
}

/// Largest channel difference, ignoring `border` pixels along the image border.
fn max_diff(a: &RgbImage, b: &RgbImage, border: u32) -> u8 {
    let (w, h) = a.dimensions();
    let mut m = 0u8;
    for y in border..h - border {
        for x in border..w - border {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            for c in 0..3 {
                m = m.max(p[c].abs_diff(q[c]));
            }
        }
    }
    m
}

#[test]
fn tiled_equals_whole_within_two_levels() {
    let device = Device::flex();
    let model = load_generator(
        &fixture("generator_seed0.pt"),
        &device,
        Some(UpsampleMode::AlignCorners),
    )
    .unwrap();
    let g = &model.generator;
    let img = photo(1024);
    let t = Instant::now();
    let whole = convert_whole(g, &img, &device);
    println!("whole 1024²: {:.1} s", t.elapsed().as_secs_f64());
    let opts = ConvertOptions {
        tile: 576,
        overlap: 128,
        match_luminance: false,
    };
    let t = Instant::now();
    let tiled = convert_image(g, &img, &opts, &device).unwrap();
    println!("tiled, 4 tiles of 576²: {:.1} s", t.elapsed().as_secs_f64());
    let d = max_diff(&whole, &tiled, 0);
    println!("max |tiled - whole| = {d}/255");
    assert!(d <= 2, "tiled differs from whole by {d}/255");
}

/// The figures behind the choice of `STAT_PASSES` (BENCHMARKS.md):
/// `cargo test --release --test tiling -- --ignored --nocapture`.
#[test]
#[ignore]
fn stat_passes_figures() {
    let device = Device::flex();
    let model = load_generator(
        &fixture("generator_seed0.pt"),
        &device,
        Some(UpsampleMode::AlignCorners),
    )
    .unwrap();
    let g = &model.generator;
    let img = photo(1024);
    let whole = convert_whole(g, &img, &device);
    let engine = CpuGenerator::new(g);
    for overlap in [128] {
        for passes in [0, 12, 18, 21, 23, 24] {
            let t = Instant::now();
            let v = convert_tiled(&engine, &img, 576, overlap, passes);
            let secs = t.elapsed().as_secs_f64();
            let out = floats_to_images(&v, 1, 1024, 1024).remove(0);
            println!(
                "overlap {overlap} exact layers {passes}: max diff {}/255 (16 px from borders: {}/255), {secs:.1} s",
                max_diff(&whole, &out, 0),
                max_diff(&whole, &out, 16)
            );
        }
    }
}

/// The CPU engine equals the op-by-op forward on small, odd and block-straddling
/// sizes in both upsampling modes (the fixture test covers three sizes only).
#[test]
fn cpu_engine_equals_ops_forward_on_odd_sizes() {
    use burn::tensor::{Distribution, Tensor};
    use photo2anime::model::GeneratorConfig;
    let device = Device::flex();
    for mode in [UpsampleMode::AlignCorners, UpsampleMode::HalfPixelX2] {
        let g = GeneratorConfig::new().with_upsample(mode).init(&device);
        for (h, w) in [(8, 8), (9, 50), (50, 13), (36, 100), (64, 61)] {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Uniform(-1.0, 1.0), &device);
            let a = g
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let b = g.forward_ops(x).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(a.len(), b.len(), "{h}x{w}");
            let d = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{mode:?} {h}x{w}: {d}");
        }
    }
}
