//! Published-weights import: equivalence with PyTorch on committed fixtures
//! (tests/fixtures/make_fixtures.py), safety against malicious pickles, clear
//! errors for broken files, and export -> import round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};

mod common;

use burn::tensor::{Device, Tensor};
use common::{fixture, fixture_max_diff};
use photo2anime::interop::WeightsError;
use photo2anime::model::UpsampleMode;
use photo2anime::model_io::{ModelError, export_safetensors, import_pytorch, load_generator};

#[test]
fn pytorch_fixture_outputs_match_on_flex() {
    for mode in [UpsampleMode::AlignCorners, UpsampleMode::HalfPixelX2] {
        let results = fixture_max_diff(&Device::flex(), mode);
        assert!(!results.is_empty());
        for (case, d) in results {
            println!("flex {case}: max |diff| = {d:e}");
            assert!(d <= 1e-4, "{case}: max difference {d} > 1e-4");
        }
    }
}

fn marker() -> PathBuf {
    PathBuf::from("/tmp/photo2anime_pwned_marker")
}

#[test]
fn malicious_pickles_are_refused_and_nothing_runs() {
    let _ = std::fs::remove_file(marker());
    for name in ["malicious_reduce.pt", "malicious_builtins_eval.pt"] {
        let err = load_generator(&fixture(name), &Device::flex(), None).unwrap_err();
        let msg = err.to_string();
        println!("{name}: {msg}");
        assert!(
            matches!(err, ModelError::Weights(WeightsError::NotAStateDict { .. })),
            "{msg}"
        );
        assert!(msg.contains(name), "the message names the file: {msg}");
        assert!(!marker().exists(), "{name} executed code");
    }
}

#[test]
fn broken_files_get_clear_errors() {
    let load = |name: &str| {
        load_generator(&fixture(name), &Device::flex(), None)
            .unwrap_err()
            .to_string()
    };
    let missing = load("missing_key.pt");
    assert!(
        missing.contains("missing") && missing.contains("block_c.2.layers.1.1.bias"),
        "{missing}"
    );
    let extra = load("extra_key.pt");
    assert!(
        extra.contains("unexpected") && extra.contains("block_f.0.weight"),
        "{extra}"
    );
    let shape = load("wrong_shape.pt");
    assert!(
        shape.contains("block_e.2.1.weight") && shape.contains("[32, 64, 5, 5]"),
        "{shape}"
    );
    let truncated = load("truncated.pt");
    assert!(truncated.contains("truncated.pt"), "{truncated}");
    let not_zip = load("not_a_zip.pt");
    assert!(
        not_zip.contains("not a readable PyTorch state_dict"),
        "{not_zip}"
    );
    let nothing = load_generator(Path::new("/nonexistent/model.pt"), &Device::flex(), None)
        .unwrap_err()
        .to_string();
    assert!(nothing.contains("/nonexistent/model.pt"), "{nothing}");
}

#[test]
fn import_then_export_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let model_dir = import_pytorch(
        &fixture("generator_seed0.pt"),
        &dir.path().join("imported"),
        UpsampleMode::AlignCorners,
        &dev,
    )
    .unwrap();
    let imported = load_generator(&model_dir, &dev, None).unwrap();
    let st = dir.path().join("g.safetensors");
    export_safetensors(&imported, &st).unwrap();
    let reloaded = load_generator(&st, &dev, None).unwrap();
    assert_eq!(reloaded.upsample, UpsampleMode::AlignCorners);
    let x = Tensor::<4>::random(
        [1, 3, 24, 20],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &dev,
    );
    let a = imported
        .generator
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let b = reloaded
        .generator
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b, "export -> import must give identical output");
}

#[test]
fn torchvision_vgg19_keys_map_onto_the_right_convs() {
    use burn::module::Module;
    use photo2anime::interop::params::collect_params;
    use photo2anime::interop::vgg::load_vgg19;
    use photo2anime::model::vgg::TORCHVISION_CONV_INDICES;
    let vgg = load_vgg19(&fixture("vgg19_layout.pt"), &Device::flex()).unwrap();
    assert_eq!(vgg.num_params(), 10_585_152);
    for p in collect_params(&vgg) {
        // convs.i.weight holds features.N's value N/1000 (bias -N/1000).
        let conv: usize = p.path.split('.').nth(1).unwrap().parse().unwrap();
        let n = TORCHVISION_CONV_INDICES[conv] as f32 / 1000.0;
        let expected = if p.path.ends_with("weight") { n } else { -n };
        assert!(
            p.values.iter().all(|v| (*v - expected).abs() < 1e-7),
            "{} should be {expected}",
            p.path
        );
    }
}

#[test]
fn a_wrong_vgg_file_gets_a_clear_message() {
    use photo2anime::interop::vgg::load_vgg19;
    let err = load_vgg19(&fixture("generator_seed0.pt"), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not torchvision VGG19 weights") && err.contains("generator_seed0.pt"),
        "{err}"
    );
    let err = load_vgg19(&fixture("not_a_zip.pt"), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("vgg19-dcbb9e9d.pth"), "{err}");
}
