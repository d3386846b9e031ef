//! The style-set edge smoothing against the original AnimeGANv2 code run with OpenCV.
//!
//! Fixtures: `tests/fixtures/edges/`, written by `tests/fixtures/make_edge_fixtures.py`
//! (OpenCV 5.0.0; see `tests/fixtures/README.md`). Inputs are decoded with the app's own
//! `decode_rgb`, so the test covers the path a style image takes through the app.
//! Run with `--nocapture` to see the measured agreement.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};
use photo2anime::data::image_io::decode_rgb;
use photo2anime::data::preprocess::{
    CANNY_HIGH, CANNY_LOW, canny, edge_mask, edge_smooth, grayscale, style_variants,
};

const CASES: [&str; 3] = ["castle", "puppy", "street"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edges")
        .join(name)
}

fn input(case: &str) -> RgbImage {
    decode_rgb(&fixture(&format!("{case}_input.png")))
        .unwrap()
        .rgb
}

fn gray_fixture(case: &str, kind: &str) -> GrayImage {
    let img = image::open(fixture(&format!("{case}_{kind}.png"))).unwrap();
    assert_eq!(
        img.color(),
        image::ColorType::L8,
        "{case}_{kind} is 8-bit gray"
    );
    img.to_luma8()
}

/// Share of pixels where the two masks agree on edge / no edge.
fn agreement(a: &GrayImage, b: &GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let same = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| (**x != 0) == (**y != 0))
        .count();
    same as f64 / a.as_raw().len() as f64
}

/// Largest absolute difference, per byte.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
}

#[test]
fn canny_and_mask_match_opencv() {
    for case in CASES {
        let rgb = input(case);
        let edges = canny(&grayscale(&rgb), CANNY_LOW, CANNY_HIGH);
        let canny_agree = agreement(&edges, &gray_fixture(case, "canny"));
        let mask_agree = agreement(&edge_mask(&rgb), &gray_fixture(case, "mask"));
        println!(
            "{case} {}x{}: Canny agreement {:.4}%, dilated mask agreement {:.4}%",
            rgb.width(),
            rgb.height(),
            canny_agree * 100.0,
            mask_agree * 100.0
        );
        // `>=` fails on NaN.
        assert!(
            canny_agree >= 0.995,
            "{case}: Canny agrees with OpenCV on only {canny_agree}"
        );
        assert!(
            mask_agree >= 0.995,
            "{case}: mask agrees with OpenCV on only {mask_agree}"
        );
    }
}

#[test]
fn smoothed_images_match_opencv() {
    for case in CASES {
        let rgb = input(case);
        let want_mask = gray_fixture(case, "mask");
        let want = image::open(fixture(&format!("{case}_smooth.png")))
            .unwrap()
            .to_rgb8();
        let got = edge_smooth(&rgb);
        // Where the masks agree the arithmetic is fully determined (integer weights,
        // truncation), so the colour must be identical there.
        let mut colour_mismatch = 0usize;
        for (i, m) in edge_mask(&rgb).as_raw().iter().enumerate() {
            if (*m != 0) == (want_mask.as_raw()[i] != 0)
                && got.as_raw()[i * 3..][..3] != want.as_raw()[i * 3..][..3]
            {
                colour_mismatch += 1;
            }
        }
        let colour_diff = max_diff(got.as_raw(), want.as_raw());
        let smooth_gray = style_variants(rgb).smooth_gray;
        let gray_diff = max_diff(
            smooth_gray.as_raw(),
            gray_fixture(case, "smooth_gray").as_raw(),
        );
        println!(
            "{case}: smoothed colour max diff {colour_diff}, smoothed gray max diff {gray_diff}"
        );
        assert_eq!(
            colour_mismatch, 0,
            "{case}: smoothed colour differs on {colour_mismatch} pixels"
        );
        assert!(
            gray_diff <= 1,
            "{case}: smoothed gray differs by {gray_diff} levels"
        );
    }
}

#[test]
fn grayscale_is_opencv_cvtcolor() {
    // Colours where `round(0.299 R + 0.587 G + 0.114 B)` and OpenCV's fixed-point
    // cvtColor disagree; the expected values are cv2.cvtColor's.
    let cases: [([u8; 3], u8); 6] = [
        ([188, 231, 85], 202),
        ([114, 78, 102], 92),
        ([243, 200, 153], 208),
        ([103, 73, 218], 98),
        ([26, 21, 100], 31),
        ([5, 247, 237], 173),
    ];
    let img = RgbImage::from_fn(cases.len() as u32, 1, |x, _| {
        image::Rgb(cases[x as usize].0)
    });
    let gray = grayscale(&img);
    for (i, (rgb, want)) in cases.iter().enumerate() {
        assert_eq!(gray.as_raw()[i], *want, "gray of {rgb:?}");
    }
    let extremes = RgbImage::from_fn(2, 1, |x, _| image::Rgb([255 * x as u8; 3]));
    assert_eq!(grayscale(&extremes).as_raw(), &[0, 255]);
}

#[test]
fn canny_threshold_semantics_follow_opencv() {
    let gray = grayscale(&input("street"));
    // OpenCV swaps thresholds given in the wrong order.
    assert_eq!(
        canny(&gray, CANNY_HIGH, CANNY_LOW),
        canny(&gray, CANNY_LOW, CANNY_HIGH)
    );
    // A NaN threshold admits nothing.
    assert!(canny(&gray, f32::NAN, CANNY_HIGH).iter().all(|p| *p == 0));
    assert!(canny(&gray, CANNY_LOW, f32::NAN).iter().all(|p| *p == 0));
}

#[test]
fn tiny_images_do_not_panic() {
    for (w, h) in [(1, 1), (1, 5), (2, 2), (3, 2), (6, 1)] {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 97 + y * 31) as u8, (x * 200) as u8, (y * 250) as u8])
        });
        let v = style_variants(img);
        assert_eq!(v.smooth_gray.dimensions(), (w, h));
    }
}
