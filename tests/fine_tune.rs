//! Fine-tuning: a run started from an existing model begins exactly where that model
//! is (its step-0 samples equal the model's own conversion of the same photos), takes
//! its upsampling rule, skips the content-only phase by default and records its parent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use burn::tensor::Device;
use crossbeam_channel::unbounded;
use photo2anime::convert::{ConvertOptions, convert_image};
use photo2anime::device::cpu_device;
use photo2anime::interop::params::weights_blake3;
use photo2anime::model::{GeneratorConfig, UpsampleMode};
use photo2anime::model_io::{load_generator, write_model_dir};
use photo2anime::train::run_dir::{ModelOrigin, read_json};
use photo2anime::train::{Duration, Phase, TrainConfig, TrainEvent, Trainer};

/// A parent model folder holding a seeded random generator with the non-default
/// upsampling rule (so "takes its rule" is visible).
fn parent_model(dir: &std::path::Path) -> std::path::PathBuf {
    let device = Device::flex();
    device.seed(1234);
    let g = GeneratorConfig::new()
        .with_upsample(UpsampleMode::HalfPixelX2)
        .init(&device);
    write_model_dir(
        g,
        &dir.join("parent"),
        UpsampleMode::HalfPixelX2,
        ModelOrigin::Trained,
    )
    .unwrap()
}

fn config(root: &std::path::Path, parent: &std::path::Path) -> TrainConfig {
    let (photos, style) = common::tiny_dataset(root, 4, 40);
    TrainConfig::new(photos, style)
        .with_image_size(32)
        .with_batch_size(2)
        .with_init_epochs(1)
        .with_duration(Duration::Steps(2))
        .with_sample_every(100)
        .with_checkpoint_every(100)
        .with_sample_count(2)
        .with_cache_dir(Some(root.join("cache")))
        .with_init_from(Some(parent.to_path_buf()))
}

#[test]
fn a_fine_tune_starts_from_its_parent() {
    let root = tempfile::tempdir().unwrap();
    let parent = parent_model(root.path());
    let run = root.path().join("checkpoints/fine-tune");
    let (tx, rx) = unbounded();
    let mut trainer = Trainer::new(config(root.path(), &parent), &run, &cpu_device(), tx).unwrap();
    trainer.begin().unwrap();
    assert_eq!(trainer.phase(), Phase::Adversarial, "init phase skipped");
    assert_eq!(trainer.config().upsample, UpsampleMode::HalfPixelX2);

    // Step-0 samples against the parent's own conversion of the same photos.
    let (inputs, outputs) = rx
        .try_iter()
        .find_map(|e| match e {
            TrainEvent::Samples {
                step: 0,
                inputs,
                outputs,
                ..
            } => Some((inputs, outputs)),
            _ => None,
        })
        .expect("step-0 samples");
    assert_eq!(inputs.len(), 2);
    let loaded = load_generator(&parent, &Device::flex(), None).unwrap();
    assert_eq!(loaded.upsample, UpsampleMode::HalfPixelX2);
    for (input, output) in inputs.iter().zip(&outputs) {
        let expected = convert_image(
            &loaded.generator,
            &input.to_image().unwrap(),
            &ConvertOptions::default(),
            &Device::flex(),
        )
        .unwrap();
        let got = output.to_image().unwrap();
        assert_eq!(got.dimensions(), expected.dimensions());
        let worst = got
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "step-0 sample differs from the parent by {worst}/255"
        );
    }

    // One real step trains from there; the parent is recorded in config.json.
    let stats = trainer.train_step().unwrap();
    assert_eq!(stats.phase, Phase::Adversarial);
    drop(trainer);
    let saved: TrainConfig = read_json(&run.join("config.json")).unwrap();
    let recorded = saved.parent.expect("parent recorded");
    assert_eq!(recorded.path, parent);
    assert_eq!(recorded.weights_blake3, weights_blake3(&loaded.generator));
    assert_eq!(saved.upsample, UpsampleMode::HalfPixelX2);
}

#[test]
fn warm_up_keeps_the_init_phase_and_a_bad_parent_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let parent = parent_model(root.path());
    let (tx, _rx) = unbounded();
    let trainer = Trainer::new(
        config(root.path(), &parent).with_warm_up_fine_tune(true),
        &root.path().join("checkpoints/warm"),
        &cpu_device(),
        tx,
    )
    .unwrap();
    assert_eq!(trainer.phase(), Phase::Init);
    drop(trainer);

    let not_a_model = root.path().join("notes.txt");
    std::fs::write(&not_a_model, "hello").unwrap();
    let (tx, _rx) = unbounded();
    let err = Trainer::new(
        config(root.path(), &not_a_model),
        &root.path().join("checkpoints/bad"),
        &cpu_device(),
        tx,
    )
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("cannot fine-tune from") && text.contains("notes.txt"),
        "{text}"
    );
    assert!(
        !root.path().join("checkpoints/bad/config.json").exists(),
        "nothing written for a refused fine-tune"
    );
}

/// Two different weight sets hash differently; the same weights read from two
/// formats (a model folder and the exported .safetensors) hash alike.
#[test]
fn the_parent_hash_names_the_weights_not_the_file() {
    let root = tempfile::tempdir().unwrap();
    let parent = parent_model(root.path());
    let from_dir = load_generator(&parent, &Device::flex(), None).unwrap();
    let exported = root.path().join("parent.safetensors");
    photo2anime::model_io::export_safetensors(&from_dir, &exported).unwrap();
    let from_file = load_generator(&exported, &Device::flex(), None).unwrap();
    assert_eq!(
        weights_blake3(&from_dir.generator),
        weights_blake3(&from_file.generator)
    );
    Device::flex().seed(99);
    let other = GeneratorConfig::new().init(&Device::flex());
    assert_ne!(weights_blake3(&from_dir.generator), weights_blake3(&other));
}
