//! End-to-end on Flex (CPU): train 3 steps, checkpoint, resume to step 5, convert.
//! Also: a D update leaves G untouched and vice versa; NaN stops the run and keeps
//! the last good checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use burn::module::Module;
use burn::tensor::Device;
use crossbeam_channel::unbounded;
use photo2anime::convert::{ConvertOptions, convert_file};
use photo2anime::data::Dataset;
use photo2anime::device::cpu_device;
use photo2anime::interop::params::collect_params;
use photo2anime::model::{DiscriminatorConfig, GeneratorConfig, Vgg19};
use photo2anime::model_io::load_generator;
use photo2anime::train::run_dir::{LatestPointer, files, read_json};
use photo2anime::train::step::{BatchTensors, Networks};
use photo2anime::train::{Duration, LiveParams, Phase, TrainConfig, TrainEvent, Trainer};

fn config(root: &std::path::Path, steps: usize) -> TrainConfig {
    let (photos, style) = common::tiny_dataset(root, 6, 40);
    TrainConfig::new(photos, style)
        .with_image_size(32)
        .with_batch_size(2)
        .with_init_epochs(1)
        .with_duration(Duration::Steps(steps))
        .with_sample_every(2)
        .with_checkpoint_every(100)
        .with_sample_count(2)
        .with_cache_dir(Some(root.join("cache")))
}

#[test]
fn train_checkpoint_resume_convert() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/e2e");
    let device = cpu_device();
    let (tx, rx) = unbounded();
    let mut trainer = Trainer::new(config(root.path(), 3), &run, &device, tx).unwrap();
    trainer.begin().unwrap();
    let mut phases = Vec::new();
    for _ in 0..3 {
        let stats = trainer.train_step().unwrap();
        phases.push(stats.phase);
        assert!(stats.losses.g_total.unwrap().is_finite());
    }
    // 6 images / batch 2 = 3 steps per epoch; one init epoch.
    assert_eq!(phases, vec![Phase::Init; 3]);
    assert!(trainer.is_finished());
    trainer.save_checkpoint().unwrap();
    drop(trainer);
    let events: Vec<TrainEvent> = rx.try_iter().collect();
    let sample_steps: Vec<usize> = events
        .iter()
        .filter_map(|e| {
            if let TrainEvent::Samples { step, .. } = e {
                Some(*step)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        sample_steps,
        vec![0, 2],
        "samples at step 0 and every 2 steps"
    );
    assert!(run.join("samples/step-000000.png").exists());
    let latest: LatestPointer = read_json(&run.join("latest.json")).unwrap();
    assert_eq!(latest.step, 3);

    // Resume to step 5: the counter continues, the adversarial phase begins.
    let (tx, _rx) = unbounded();
    let mut trainer = Trainer::resume(&run, &device, tx, Some(Duration::Steps(5))).unwrap();
    assert_eq!(trainer.step(), 3);
    let s4 = trainer.train_step().unwrap();
    let s5 = trainer.train_step().unwrap();
    assert_eq!((s4.step, s5.step), (4, 5));
    assert_eq!(s5.phase, Phase::Adversarial);
    assert!(s5.losses.d_total.unwrap().is_finite());
    trainer.save_checkpoint().unwrap();
    drop(trainer);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let steps: Vec<usize> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![1, 2, 3, 4, 5],
        "one metrics row per step, no duplicates"
    );
    assert!(run.join("config.json").exists() && run.join("model.json").exists());

    // Convert with nothing but the run directory.
    let photo = root.path().join("photo.png");
    common::synthetic_photo(50, 37, 3).save(&photo).unwrap();
    let out = root.path().join("out.png");
    let loaded = load_generator(&run, &Device::flex(), None).unwrap();
    convert_file(
        &loaded.generator,
        &photo,
        &out,
        &ConvertOptions::default(),
        &Device::flex(),
        None,
    )
    .unwrap();
    let converted = image::open(&out).unwrap().to_rgb8();
    assert_eq!(converted.dimensions(), (50, 37));
    assert_ne!(converted, image::open(&photo).unwrap().to_rgb8());
}

#[test]
fn d_update_leaves_g_untouched_and_vice_versa() {
    let root = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(root.path(), 2, 40);
    let (dataset, _) = Dataset::prepare(
        &photos,
        &style,
        32,
        2,
        1,
        &root.path().join("cache"),
        &|_, _| {},
    )
    .unwrap();
    let ad = Device::flex().autodiff();
    let mut nets = Networks::new(
        GeneratorConfig::new().init(&ad),
        DiscriminatorConfig::new().init(&ad),
        Vgg19::random(19, &ad).no_grad(),
    );
    let live = LiveParams::default();
    let t = BatchTensors::new(&dataset.batch(0), &ad);
    let g_of = |n: &Networks| {
        collect_params(&n.generator)
            .into_iter()
            .map(|p| p.values)
            .collect::<Vec<_>>()
    };
    let d_of = |n: &Networks| {
        collect_params(&n.discriminator)
            .into_iter()
            .filter(|p| p.path.ends_with("weight"))
            .map(|p| p.values)
            .collect::<Vec<_>>()
    };

    let (g0, d0) = (g_of(&nets), d_of(&nets));
    let fake = nets.generator.forward(t.photos.clone()).detach();
    nets.discriminator_step(&t, fake, &live).unwrap();
    assert_eq!(g_of(&nets), g0, "a D step must not change G");
    assert_ne!(d_of(&nets), d0, "a D step changes D");

    let d1 = d_of(&nets);
    let fake = nets.generator.forward(t.photos.clone());
    nets.generator_step(&t, fake, &live).unwrap();
    assert_eq!(d_of(&nets), d1, "a G step must not change D's weights");
    assert_ne!(g_of(&nets), g0, "a G step changes G");
}

#[test]
fn non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/nan");
    let (tx, _rx) = unbounded();
    let mut trainer = Trainer::new(config(root.path(), 20), &run, &cpu_device(), tx).unwrap();
    trainer.train_step().unwrap();
    let good = trainer.save_checkpoint().unwrap();
    // An absurd learning rate makes the weights overflow within a few steps.
    let mut live = trainer.live();
    live.lr_init = 1e30;
    trainer.set_live(live).unwrap();
    let mut failure = None;
    for _ in 0..10 {
        if let Err(e) = trainer.train_step() {
            failure = Some(e.to_string());
            break;
        }
    }
    let message = failure.expect("the run must stop on a non-finite loss");
    assert!(
        message.contains("became") && message.contains("last good checkpoint"),
        "{message}"
    );
    let latest: LatestPointer = read_json(&run.join("latest.json")).unwrap();
    assert_eq!(run.join(&latest.dir), good);
    assert!(load_generator(&run, &Device::flex(), None).is_ok());
}

/// What Convert's "live weights" rest on: the snapshot a running trainer sends on
/// request holds the generator of the step it names — bit for bit the generator a
/// checkpoint of that step saves — and not a later one.
#[test]
fn a_snapshot_is_the_generator_of_its_step() {
    use photo2anime::interop::params::weights_blake3;
    use photo2anime::train::TrainCommand;
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/live");
    let (tx, rx) = unbounded();
    let (commands, commands_rx) = unbounded();
    let trainer = Trainer::new(config(root.path(), 6), &run, &cpu_device(), tx).unwrap();
    let worker = std::thread::spawn(move || trainer.run(&commands_rx));
    let mut snapshot = None;
    let mut saved = Vec::new();
    for event in rx.iter() {
        match event {
            // Paused first, so no step can fall between the snapshot and the save.
            TrainEvent::Step(s) if s.step == 2 => {
                for c in [
                    TrainCommand::Pause,
                    TrainCommand::Snapshot,
                    TrainCommand::SaveNow,
                    TrainCommand::Resume,
                ] {
                    commands.send(c).unwrap();
                }
            }
            TrainEvent::Snapshot(s) => snapshot = Some(s),
            TrainEvent::CheckpointSaved { step, path } => saved.push((step, path)),
            TrainEvent::Finished { .. } => break,
            _ => {}
        }
    }
    worker.join().unwrap();
    let snapshot = snapshot.expect("the trainer answered the snapshot request");
    assert!(
        (2..6).contains(&snapshot.step),
        "snapshot at step {}",
        snapshot.step
    );
    let (step, at_snapshot) = saved.first().expect("a checkpoint on request").clone();
    assert_eq!(
        step, snapshot.step,
        "the save right after names the same step"
    );
    let from_disk =
        load_generator(&at_snapshot.join(files::GENERATOR), &Device::flex(), None).unwrap();
    let built = snapshot.build(&Device::flex());
    assert_eq!(snapshot.upsample, from_disk.upsample);
    let (a, b) = (collect_params(&built), collect_params(&from_disk.generator));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!((&a.path, &a.shape), (&b.path, &b.shape));
        assert!(
            a.values
                .iter()
                .zip(&b.values)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{} differs from the checkpoint of step {step}",
            a.path
        );
    }
    assert_eq!(snapshot.blake3, weights_blake3(&from_disk.generator));
    let (last_step, last) = saved.last().unwrap().clone();
    assert_eq!(last_step, 6);
    let later = load_generator(&last.join(files::GENERATOR), &Device::flex(), None).unwrap();
    assert_ne!(
        snapshot.blake3,
        weights_blake3(&later.generator),
        "a snapshot of step {step} is not the final generator"
    );
}
