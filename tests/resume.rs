//! Exact resume on Flex (CPU): a run of N steps, and a run stopped at N/2, resumed
//! in a fresh trainer and run to N, end with the same G and D weights, the same
//! optimizer states and the same metrics rows (the timing column aside).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use crossbeam_channel::unbounded;
use photo2anime::device::cpu_device;
use photo2anime::train::run_dir::{checkpoint_dir_name, files};
use photo2anime::train::{Duration, Phase, TrainConfig, Trainer};

const N: usize = 4;

/// Flex's random generator is one per device, shared by every thread of the test
/// process: two runs seeding it at once would interleave their draws. The tests
/// here run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// 2 photos / batch 2 = 1 step per epoch and one init epoch: step 1 is the init
/// phase, steps 2..=4 adversarial, so the stop at step 2 lands with every optimizer
/// holding state that the rest of the run depends on.
fn config(root: &Path) -> TrainConfig {
    let (photos, style) = common::tiny_dataset(root, 2, 40);
    TrainConfig::new(photos, style)
        .with_image_size(32)
        .with_batch_size(2)
        .with_init_epochs(1)
        .with_duration(Duration::Steps(N))
        .with_sample_every(1000)
        .with_checkpoint_every(1000)
        .with_sample_count(1)
        .with_cache_dir(Some(root.join("cache")))
}

/// One tensor or scalar of a checkpoint file: its type and shape in words, and its
/// raw bytes.
type Entries = BTreeMap<String, (String, Vec<u8>)>;

/// Every tensor and scalar of a checkpoint's files, keyed so two runs compare:
/// parameter ids (random per process) are replaced by the module paths the weight
/// files give them, since optimizer states are stored under `"{param_id}.{field}"`.
fn checkpoint_entries(dir: &Path) -> Entries {
    let read = |name: &str| {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes)).unwrap()
    };
    let mut id_to_path: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Entries::new();
    for (file, net) in [(files::GENERATOR, "G"), (files::DISCRIMINATOR, "D")] {
        let reader = read(file);
        for (key, value) in reader.scalars() {
            out.insert(
                format!("{file}:scalar:{key}"),
                (format!("{value:?}"), Vec::new()),
            );
        }
        for t in reader.into_tensors().unwrap() {
            let (name, dtype, shape, id, bytes) = t.into_parts().unwrap();
            if let Some(id) = id {
                id_to_path.insert(id.to_string(), format!("{net}:{name}"));
            }
            out.insert(
                format!("{file}:{name}"),
                (format!("{dtype:?} {shape:?}"), bytes.to_vec()),
            );
        }
    }
    let canonical = |key: &str| -> String {
        match key.split_once('.') {
            // An id no weight file names stays as it is (and then cannot match).
            Some((id, rest)) => match id_to_path.get(id) {
                Some(path) => format!("{path}.{rest}"),
                None => key.to_string(),
            },
            None => id_to_path
                .get(key)
                .cloned()
                .unwrap_or_else(|| key.to_string()),
        }
    };
    for file in [files::OPT_INIT, files::OPT_G, files::OPT_D] {
        let reader = read(file);
        for (key, value) in reader.scalars() {
            out.insert(
                format!("{file}:scalar:{}", canonical(key)),
                (format!("{value:?}"), Vec::new()),
            );
        }
        for (key, value) in reader.metadata() {
            out.insert(
                format!("{file}:meta:{}", canonical(key)),
                (value.clone(), Vec::new()),
            );
        }
        for t in reader.into_tensors().unwrap() {
            let (name, dtype, shape, _, bytes) = t.into_parts().unwrap();
            out.insert(
                format!("{file}:{}", canonical(&name)),
                (format!("{dtype:?} {shape:?}"), bytes.to_vec()),
            );
        }
    }
    out
}

/// metrics.csv rows without the step_ms column (wall time differs run to run).
fn metrics_without_timing(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join(files::METRICS)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let timing = header.iter().position(|c| *c == "step_ms").unwrap();
    lines
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != timing)
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// The largest |a - b| over f32 tensors that differ, for the failure message.
fn describe_differences(a: &Entries, b: &Entries) -> String {
    let mut lines = Vec::new();
    for (key, (ta, va)) in a {
        match b.get(key) {
            None => lines.push(format!("{key}: only in the uninterrupted run")),
            Some((tb, _)) if ta != tb => lines.push(format!("{key}: {ta} vs {tb}")),
            Some((_, vb2)) if vb2 != va => {
                let max = if ta.starts_with("F32") {
                    va.chunks_exact(4)
                        .zip(vb2.chunks_exact(4))
                        .map(|(x, y)| {
                            let x = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
                            let y = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
                            (x - y).abs()
                        })
                        .fold(0f32, f32::max)
                } else {
                    f32::NAN
                };
                lines.push(format!("{key}: bytes differ, max |diff| {max:e}"));
            }
            Some(_) => {}
        }
    }
    for key in b.keys().filter(|k| !a.contains_key(*k)) {
        lines.push(format!("{key}: only in the resumed run"));
    }
    lines.join("\n")
}

/// Largest relative difference `|a - b| / max|a|` over every f32 tensor of two
/// checkpoints (0 when bitwise equal), and the entry where it occurs.
fn max_relative_difference(a: &Entries, b: &Entries) -> (f32, String) {
    let mut worst = (0f32, String::new());
    for (key, (ta, va)) in a {
        let Some((_, vb)) = b.get(key) else { continue };
        if va == vb || !ta.starts_with("F32") {
            continue;
        }
        let floats = |v: &[u8]| -> Vec<f32> {
            v.chunks_exact(4)
                .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                .collect()
        };
        let (fa, fb) = (floats(va), floats(vb));
        let scale = fa.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
        let d = common::max_abs_diff(&fa, &fb) / scale;
        if d.is_nan() || d > worst.0 {
            worst = (d, key.clone());
        }
    }
    worst
}

/// Everything but the tensor bytes: names, types, shapes, scalars (Adam's step
/// counters) and metadata must match exactly.
fn structure(e: &Entries) -> Vec<(String, String, Option<Vec<u8>>)> {
    e.iter()
        .map(|(k, (t, v))| {
            let exact = k.contains(":scalar:") || k.contains(":meta:");
            (k.clone(), t.clone(), exact.then(|| v.clone()))
        })
        .collect()
}

fn train_straight(root: &Path, name: &str) -> std::path::PathBuf {
    let run = root.join("checkpoints").join(name);
    let (tx, _rx) = unbounded();
    let mut t = Trainer::new(config(root), &run, &cpu_device(), tx).unwrap();
    while !t.is_finished() {
        t.train_step().unwrap();
    }
    t.save_checkpoint().unwrap();
    run
}

#[test]
fn a_stopped_and_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one() {
    let _serial = serial();
    let root = tempfile::tempdir().unwrap();
    let device = cpu_device();

    // A: N steps in one go.
    let run_a = root.path().join("checkpoints/straight");
    let (tx, _rx) = unbounded();
    let mut a = Trainer::new(config(root.path()), &run_a, &device, tx).unwrap();
    let mut phases = Vec::new();
    for _ in 0..N {
        phases.push(a.train_step().unwrap().phase);
    }
    assert_eq!(
        phases,
        vec![
            Phase::Init,
            Phase::Adversarial,
            Phase::Adversarial,
            Phase::Adversarial
        ]
    );
    a.save_checkpoint().unwrap();
    drop(a);

    // B: N/2 steps, stopped (checkpoint), then a fresh trainer resumes to N.
    let run_b = root.path().join("checkpoints/interrupted");
    let (tx, _rx) = unbounded();
    let mut b = Trainer::new(config(root.path()), &run_b, &device, tx).unwrap();
    for _ in 0..N / 2 {
        b.train_step().unwrap();
    }
    b.save_checkpoint().unwrap();
    drop(b);
    let (tx, _rx) = unbounded();
    let mut b = Trainer::resume(&run_b, &device, tx, None).unwrap();
    assert_eq!(b.step(), N / 2);
    while !b.is_finished() {
        b.train_step().unwrap();
    }
    assert_eq!(b.step(), N);
    b.save_checkpoint().unwrap();
    drop(b);

    let ckpt = checkpoint_dir_name(N);
    let ea = checkpoint_entries(&run_a.join(&ckpt));
    let eb = checkpoint_entries(&run_b.join(&ckpt));
    // Sanity: the comparison covers every file and the adversarial optimizers hold state.
    for file in files::WEIGHTS {
        assert!(ea.keys().any(|k| k.starts_with(file)), "{file} is empty");
    }
    assert!(ea.keys().filter(|k| k.starts_with(files::OPT_G)).count() > 10);
    // The same run twice without interruption: how deterministic is the backend?
    let run_c = train_straight(root.path(), "straight-again");
    let ec = checkpoint_entries(&run_c.join(&ckpt));
    let (noise, noise_at) = max_relative_difference(&ea, &ec);
    let (resume_diff, resume_at) = max_relative_difference(&ea, &eb);
    eprintln!(
        "straight vs straight: max relative difference {noise:e} ({noise_at}); \
         straight vs resumed: {resume_diff:e} ({resume_at})"
    );
    eprintln!("metrics A: {:?}", metrics_without_timing(&run_a));
    eprintln!("metrics B: {:?}", metrics_without_timing(&run_b));
    eprintln!("metrics C: {:?}", metrics_without_timing(&run_c));
    assert_eq!(structure(&ea), structure(&ec));
    assert_eq!(
        structure(&ea),
        structure(&eb),
        "the resumed run's files differ in names, shapes, step counters or metadata"
    );
    if ea == ec {
        // A deterministic backend: resuming must then be bitwise exact too.
        assert!(
            ea == eb,
            "weights or optimizer states differ:\n{}",
            describe_differences(&ea, &eb)
        );
        let ma = metrics_without_timing(&run_a);
        assert_eq!(ma.len(), N);
        assert_eq!(ma, metrics_without_timing(&run_b), "metrics rows differ");
    } else {
        assert!(
            resume_diff <= 10.0 * noise,
            "resumed run differs more than the backend's own run-to-run noise"
        );
    }
}

/// The same through the studio, as an artist does it: Start, Stop after a step,
/// then "Resume <run>" from the list of runs, to the end. The run resumed by the
/// studio's training thread ends bitwise equal to an uninterrupted engine run.
#[test]
#[allow(clippy::field_reassign_with_default)] // settings as the studio holds them
fn a_run_stopped_and_resumed_in_the_studio_ends_bitwise_equal() {
    use egui_kittest::kittest::Queryable;
    use photo2anime::app::run_state::RunStatus;
    use photo2anime::app::state::Tab;
    use photo2anime::app::{AppOptions, Settings, StudioApp};
    use photo2anime::device::DeviceSetting;
    use photo2anime::train::FinishReason;
    use std::time::{Duration as Wait, Instant};
    let _serial = serial();

    let root = tempfile::tempdir().unwrap();
    let straight = train_straight(root.path(), "straight");
    let checkpoints = root.path().join("studio-runs");
    let mut settings = Settings::default();
    settings.train = config(root.path());
    settings.lengths.steps = N;
    settings.device = DeviceSetting::Cpu;
    settings.tab = Tab::Training;
    let app = StudioApp::new(
        settings,
        AppOptions {
            checkpoints_dir: checkpoints.clone(),
            force_cpu: true,
            open: Vec::new(),
        },
    );
    let mut h = common::studio::harness(app);
    let wait = |h: &mut egui_kittest::Harness<'_, StudioApp>,
                what: &str,
                done: &dyn Fn(&StudioApp) -> bool| {
        common::studio::run_until(h, Wait::from_secs(300), what, done);
    };
    // Both folders: "Start training" stays disabled (a click does nothing) until the
    // style folder is scanned too, which can come last on a loaded machine.
    wait(
        &mut h,
        "both folders scanned",
        &common::studio::folders_ready,
    );
    h.get_by_label("Start training").click();
    wait(&mut h, "a first step", &|a| a.run_state().step() >= 1);
    h.get_by_label("Stop").click();
    wait(&mut h, "stopped", &|a| !a.run_state().is_active());
    let run_dir = h.state().run_state().run_dir.clone().unwrap();
    let stopped_at = h.state().run_state().step();
    assert!(
        stopped_at < N,
        "stopped at step {stopped_at}, before the end"
    );
    let label = format!("Resume {}", run_dir.file_name().unwrap().to_string_lossy());
    wait(&mut h, "the run listed", &|_| true);
    let start = Instant::now();
    while h.query_by_label(&label).is_none() {
        assert!(start.elapsed() < Wait::from_secs(30), "no {label} button");
        h.step();
        std::thread::sleep(Wait::from_millis(20));
    }
    h.get_by_label(&label).click_accesskit();
    wait(&mut h, "completed", &|a| {
        a.run_state().status == RunStatus::Finished(FinishReason::Completed)
    });
    let ckpt = checkpoint_dir_name(N);
    let ea = checkpoint_entries(&straight.join(&ckpt));
    let eb = checkpoint_entries(&run_dir.join(&ckpt));
    let (diff, at) = max_relative_difference(&ea, &eb);
    eprintln!(
        "studio stopped at {stopped_at}, resumed to {N}: max relative difference {diff:e} ({at})"
    );
    assert!(
        ea == eb,
        "the studio-resumed run differs: {}",
        describe_differences(&ea, &eb)
    );
    assert_eq!(
        metrics_without_timing(&straight),
        metrics_without_timing(&run_dir)
    );
}
