//! The convert controls artists ask for: style strength (photo blend, or network
//! interpolation for a fine-tune), keeping the photo's colours, and the recipe each
//! PNG carries — checked against hand-computed values.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use photo2anime::convert::finish::{
    StyleChoice, blend_with_photo, interpolate_generators, keep_photo_colors, styled,
};
use photo2anime::convert::recipe::{Recipe, RecipeError, read_recipe};
use photo2anime::convert::save_image_with_recipe;
use photo2anime::interop::params::{collect_params, weights_blake3};
use photo2anime::model::{GeneratorConfig, UpsampleMode};
use photo2anime::model_io::{load_generator, write_model_dir};
use photo2anime::train::run_dir::{ModelOrigin, write_json};
use photo2anime::train::{ParentModel, TrainConfig};

#[test]
fn keep_colors_takes_luma_from_the_output_and_chroma_from_the_photo() {
    // Output mid-gray (Y = 100, no chroma), photo pure red: by hand with BT.601
    // full-range YCbCr, Cb = -0.168736*255 = -43.03, Cr = 127.5, so
    // R = 100 + 1.402*127.5 = 278.8 -> 255, G = 100 + 0.344136*43.03 - 0.714136*127.5
    // = 23.76 -> 24, B = 100 - 1.772*43.03 = 23.75 -> 24.
    let out = RgbImage::from_pixel(2, 1, Rgb([100, 100, 100]));
    let mut photo = RgbImage::from_pixel(2, 1, Rgb([255, 0, 0]));
    // A gray photo pixel keeps the output's gray exactly.
    photo.put_pixel(1, 0, Rgb([30, 30, 30]));
    let kept = keep_photo_colors(&out, &photo);
    assert_eq!(kept.get_pixel(0, 0).0, [255, 24, 24]);
    assert_eq!(kept.get_pixel(1, 0).0, [100, 100, 100]);
}

#[test]
fn strength_blends_with_the_photo() {
    let out = RgbImage::from_pixel(1, 1, Rgb([200, 0, 51]));
    let photo = RgbImage::from_pixel(1, 1, Rgb([0, 100, 255]));
    assert_eq!(blend_with_photo(&out, &photo, 0.0), photo);
    assert_eq!(blend_with_photo(&out, &photo, 1.0), out);
    // 0.25*200 + 0.75*0 = 50; 0.25*0 + 0.75*100 = 75; 0.25*51 + 0.75*255 = 204.
    assert_eq!(
        blend_with_photo(&out, &photo, 0.25).get_pixel(0, 0).0,
        [50, 75, 204]
    );
}

#[test]
fn network_interpolation_mixes_every_weight() {
    let device = Device::flex();
    device.seed(1);
    let parent = GeneratorConfig::new().init(&device);
    device.seed(2);
    let child = GeneratorConfig::new().init(&device);
    let (p, c) = (collect_params(&parent), collect_params(&child));
    for (t, check) in [(0.0f32, 0usize), (1.0, 1), (0.25, 2)] {
        let mixed = collect_params(&interpolate_generators(&parent, &child, t));
        assert_eq!(mixed.len(), p.len());
        for ((m, p), c) in mixed.iter().zip(&p).zip(&c) {
            for ((m, p), c) in m.values.iter().zip(&p.values).zip(&c.values) {
                let expected = match check {
                    0 => *p,
                    1 => *c,
                    _ => 0.75 * p + 0.25 * c,
                };
                assert!(
                    (m - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                    "{m} vs {expected}"
                );
            }
        }
    }
}

/// A fine-tune's strength interpolates with its parent (0% is the parent's own
/// weights); a model without a parent blends with the photo instead.
#[test]
fn a_fine_tunes_strength_goes_through_its_weights() {
    let root = tempfile::tempdir().unwrap();
    let device = Device::flex();
    device.seed(11);
    let parent_g = GeneratorConfig::new().init(&device);
    let parent_hash = weights_blake3(&parent_g);
    let parent = write_model_dir(
        parent_g,
        &root.path().join("parent"),
        UpsampleMode::AlignCorners,
        ModelOrigin::Trained,
    )
    .unwrap();
    device.seed(12);
    let child = write_model_dir(
        GeneratorConfig::new().init(&device),
        &root.path().join("child"),
        UpsampleMode::AlignCorners,
        ModelOrigin::Trained,
    )
    .unwrap();
    let config = TrainConfig {
        parent: Some(ParentModel {
            path: parent.clone(),
            weights_blake3: parent_hash.clone(),
            description: "parent".into(),
        }),
        ..TrainConfig::default()
    };
    write_json(&child.join("config.json"), &config).unwrap();
    let choice = |strength_percent| StyleChoice {
        strength_percent,
        keep_colors: false,
        match_luminance: false,
    };

    let at_zero = styled(
        load_generator(&child, &device, None).unwrap(),
        &child,
        choice(0),
        &device,
    )
    .unwrap();
    assert_eq!(at_zero.recipe.strength_by, "weights");
    assert_eq!(at_zero.photo_blend, 1.0);
    assert_eq!(weights_blake3(&at_zero.generator), parent_hash);

    let full = styled(
        load_generator(&child, &device, None).unwrap(),
        &child,
        choice(100),
        &device,
    )
    .unwrap();
    assert_ne!(weights_blake3(&full.generator), parent_hash);

    let plain = styled(
        load_generator(&parent, &device, None).unwrap(),
        &parent,
        choice(40),
        &device,
    )
    .unwrap();
    assert_eq!(plain.recipe.strength_by, "photo-blend");
    assert!((plain.photo_blend - 0.4).abs() < 1e-6);
}

#[test]
fn pngs_carry_their_recipe_and_info_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let img = common::synthetic_photo(23, 17, 4);
    let recipe = Recipe {
        model: "checkpoints/paprika (step 0)".into(),
        model_blake3: "ab".repeat(32),
        strength_percent: 70,
        strength_by: "photo-blend".into(),
        keep_colors: true,
        match_luminance: false,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let png = dir.path().join("out.png");
    save_image_with_recipe(&img, &png, Some(&recipe)).unwrap();
    assert_eq!(image::open(&png).unwrap().to_rgb8(), img, "pixels intact");
    assert_eq!(read_recipe(&png).unwrap(), recipe);

    // The command line prints it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_photo2anime"))
        .args(["info"])
        .arg(&png)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("strength: 70% (photo-blend)") && text.contains("paprika"),
        "{text}"
    );

    // A PNG from elsewhere has none, and says so.
    let plain = dir.path().join("plain.png");
    img.save(&plain).unwrap();
    assert!(matches!(read_recipe(&plain), Err(RecipeError::Missing(_))));
}

/// `--version` names the version and the git commit of the build, and a model
/// photo2anime writes records the same string.
#[test]
fn version_names_the_commit_and_models_record_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_photo2anime"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success());
    assert_eq!(text, format!("photo2anime {}", photo2anime::VERSION));
    assert!(
        text.starts_with(&format!(
            "photo2anime {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // Built from a git checkout (as here and in CI): the commit is HEAD's.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert!(text.contains(&head), "{text} does not name HEAD {head}");
    }
    let dir = tempfile::tempdir().unwrap();
    let model = photo2anime::model_io::write_model_dir(
        photo2anime::model::GeneratorConfig::new().init(&burn::tensor::Device::flex()),
        &dir.path().join("m"),
        photo2anime::model::UpsampleMode::AlignCorners,
        photo2anime::train::run_dir::ModelOrigin::Trained,
    )
    .unwrap();
    let info: photo2anime::train::run_dir::ModelInfo =
        photo2anime::train::run_dir::read_json(&model.join("model.json")).unwrap();
    assert_eq!(info.version, photo2anime::VERSION);
}
