//! The run folder survives crashes, kills, damage, concurrent trainers and changed
//! datasets (`train::run_dir` and the trainer's use of it), on Flex (CPU).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use photo2anime::device::cpu_device;
use photo2anime::train::metrics::MetricsWriter;
use photo2anime::train::run_dir::{
    self, LatestPointer, RunDirError, RunLock, files, list_checkpoints, read_json,
};
use photo2anime::train::{Duration, TrainConfig, TrainError, TrainEvent, Trainer};

fn config(root: &Path, steps: usize) -> TrainConfig {
    let (photos, style) = common::tiny_dataset(root, 6, 40);
    TrainConfig::new(photos, style)
        .with_image_size(32)
        .with_batch_size(2)
        .with_init_epochs(1)
        .with_duration(Duration::Steps(steps))
        .with_sample_every(1000)
        .with_checkpoint_every(1)
        .with_keep_checkpoints(10)
        .with_sample_count(2)
        .with_cache_dir(Some(root.join("cache")))
}

/// Trains a new run of `steps` steps, one checkpoint per step.
fn train_run(root: &Path, name: &str, steps: usize, keep: usize) -> PathBuf {
    let run = root.join("checkpoints").join(name);
    let (tx, _rx) = unbounded();
    let mut trainer = Trainer::new(
        config(root, steps).with_keep_checkpoints(keep),
        &run,
        &cpu_device(),
        tx,
    )
    .unwrap();
    for _ in 0..steps {
        trainer.train_step().unwrap();
    }
    run
}

fn warnings(rx: &Receiver<TrainEvent>) -> Vec<String> {
    rx.try_iter()
        .filter_map(|e| match e {
            TrainEvent::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

/// Every file under `dir` (relative path -> bytes) and every folder (-> empty),
/// except the lock file, whose creation is the one write a refused start may make.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if rel == Path::new(files::LOCK) {
                continue;
            }
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn run_names_follow_one_rule() {
    let t: jiff::Timestamp = "2026-11-29T15:34:05Z".parse().unwrap();
    assert_eq!(run_dir::run_name_at(t), "run-20261129-153405");
    assert_eq!(
        run_dir::run_name_at(jiff::Timestamp::UNIX_EPOCH),
        "run-19700101-000000"
    );
    let root = tempfile::tempdir().unwrap();
    let first = run_dir::unique_run_dir_at(root.path(), t);
    assert_eq!(first, root.path().join("run-20261129-153405"));
    std::fs::create_dir_all(&first).unwrap();
    let second = run_dir::unique_run_dir_at(root.path(), t);
    assert_eq!(second, root.path().join("run-20261129-153405-2"));
    std::fs::create_dir_all(&second).unwrap();
    assert_eq!(
        run_dir::unique_run_dir_at(root.path(), t),
        root.path().join("run-20261129-153405-3")
    );
    let now = run_dir::new_run_dir(root.path());
    let name = now.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("run-") && name.len() >= 19, "{name}");
    assert!(!now.exists());
}

#[test]
fn a_truncated_last_metrics_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.csv");
    // Two complete rows written by a trainer, then a kill in the middle of row 3
    // that left only "1" of "13,...": the step column of the cut row reads as step 1.
    let (tx, _rx) = unbounded();
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("run");
    let mut trainer = Trainer::new(config(root.path(), 2), &run, &cpu_device(), tx).unwrap();
    trainer.train_step().unwrap();
    trainer.train_step().unwrap();
    drop(trainer);
    let mut text = std::fs::read_to_string(run.join(files::METRICS)).unwrap();
    assert_eq!(text.lines().count(), 3);
    text.push('1');
    std::fs::write(&path, &text).unwrap();

    let rows = run_dir::read_metrics(&path, 100);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
    assert!(rows.iter().all(|(_, l)| l.g_total.is_some()));

    drop(MetricsWriter::open(&path, 10).unwrap());
    let steps: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        vec!["1", "2"],
        "the cut row must not survive as step 1"
    );

    // A row cut after a few fields (newline-terminated by a later append) is dropped too.
    let short = text.trim_end_matches('1').to_string() + "3,1,adversarial,12.5\n";
    std::fs::write(&path, short).unwrap();
    assert_eq!(run_dir::read_metrics(&path, 100).len(), 2);
    drop(MetricsWriter::open(&path, 10).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}

#[test]
fn resume_skips_damaged_checkpoints_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let run = train_run(root.path(), "damaged", 4, 10);
    assert_eq!(
        list_checkpoints(&run)
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let ckpt = |s: usize| run.join(run_dir::checkpoint_dir_name(s));
    // ckpt-4: generator truncated (as by a full disk / kill without the atomic rename).
    let g = std::fs::read(ckpt(4).join(files::GENERATOR)).unwrap();
    std::fs::write(ckpt(4).join(files::GENERATOR), &g[..g.len() / 2]).unwrap();
    // ckpt-3: one byte of D's optimizer state flipped, same size (burnpack cannot see it).
    let mut o = std::fs::read(ckpt(3).join(files::OPT_D)).unwrap();
    let last = o.len() - 1;
    o[last] ^= 0x55;
    std::fs::write(ckpt(3).join(files::OPT_D), &o).unwrap();
    // ckpt-2: state.json garbage.
    std::fs::write(ckpt(2).join(files::STATE), "{ not json").unwrap();
    // Leftovers of a killed save and a killed prune.
    std::fs::create_dir_all(run.join(".partial-000005")).unwrap();
    std::fs::write(run.join(".partial-000005/generator.bpk"), b"half").unwrap();
    std::fs::create_dir_all(run.join(".trash-ckpt-000000")).unwrap();

    // The history the studio shows is the one a resume will continue.
    let history = run_dir::read_history(&run).unwrap();
    assert_eq!(history.checkpoint, (1, ckpt(1)));
    assert_eq!(history.warnings.len(), 3, "{:?}", history.warnings);
    assert!(history.losses.iter().all(|(s, _)| *s <= 1));

    let (tx, rx) = unbounded();
    let trainer = Trainer::resume(&run, &cpu_device(), tx, None).unwrap();
    assert_eq!(
        trainer.step(),
        1,
        "resumed from the newest intact checkpoint"
    );
    let warnings = warnings(&rx);
    for s in [4, 3, 2] {
        let name = run_dir::checkpoint_dir_name(s);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&name) && w.contains("ckpt-000001") && w.contains("damaged")),
            "no warning names {name} and the checkpoint used: {warnings:?}"
        );
    }
    let left = names(&run);
    assert!(
        !left
            .iter()
            .any(|n| n.starts_with(".partial-") || n.starts_with(".trash-")),
        "leftovers must be removed at resume: {left:?}"
    );
    assert!(
        left.contains(&".broken-ckpt-000004".to_string()),
        "{left:?}"
    );
    assert_eq!(
        list_checkpoints(&run)
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![1]
    );
    let latest: LatestPointer = read_json(&run.join(files::LATEST)).unwrap();
    assert_eq!(latest.step, 1);
    drop(trainer);

    // Nothing intact at all: a clear error that lists every checkpoint tried.
    std::fs::write(ckpt(1).join(files::STATE), "").unwrap();
    let (tx, _rx) = unbounded();
    let err = Trainer::resume(&run, &cpu_device(), tx, None)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            TrainError::RunDir(RunDirError::NoIntactCheckpoint { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ckpt-000001"), "{err}");
}

#[test]
fn pruning_keeps_the_newest_and_leaves_no_trash() {
    let root = tempfile::tempdir().unwrap();
    let run = train_run(root.path(), "prune", 4, 2);
    assert_eq!(
        list_checkpoints(&run)
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    let left = names(&run);
    assert!(
        !left.iter().any(|n| n.starts_with(".trash-")
            || n.starts_with(".partial-")
            || n.starts_with(".tmp-")),
        "{left:?}"
    );
    // A prune killed between its rename and its delete leaves `.trash-ckpt-N`, which is
    // no checkpoint to anyone and is removed by the next start.
    let trash = run.join(".trash-ckpt-000002");
    std::fs::create_dir_all(&trash).unwrap();
    std::fs::write(trash.join(files::GENERATOR), b"half-deleted").unwrap();
    assert_eq!(list_checkpoints(&run).len(), 2);
    assert!(run_dir::read_history(&run).is_ok());
    let (tx, _rx) = unbounded();
    let trainer = Trainer::resume(&run, &cpu_device(), tx, None).unwrap();
    assert_eq!(trainer.step(), 4);
    assert!(!trash.exists());
}

#[test]
fn a_second_trainer_on_the_same_run_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/shared");
    let (tx, _rx) = unbounded();
    let first = Trainer::new(config(root.path(), 3), &run, &cpu_device(), tx).unwrap();
    let (tx, _rx) = unbounded();
    let second = Trainer::new(config(root.path(), 3), &run, &cpu_device(), tx);
    match second {
        Err(TrainError::RunDir(RunDirError::Locked { path })) => assert_eq!(path, run),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second trainer must not start on a locked run"),
    }
    let message = RunDirError::Locked { path: run.clone() }.to_string();
    assert!(
        message.contains("is being trained by another photo2anime process"),
        "{message}"
    );
    let (tx, _rx) = unbounded();
    assert!(matches!(
        Trainer::resume(&run, &cpu_device(), tx, None),
        Err(TrainError::RunDir(RunDirError::Locked { .. }))
    ));
    // Locks conflict between separate opens, even in one process.
    assert!(matches!(
        RunLock::acquire(&run),
        Err(RunDirError::Locked { .. })
    ));
    drop(first);
    let lock = RunLock::acquire(&run).unwrap();
    assert!(lock.path().ends_with(files::LOCK));
}

#[test]
fn resume_with_changed_folders_is_refused_before_writing() {
    let root = tempfile::tempdir().unwrap();
    let run = train_run(root.path(), "changed", 1, 10);
    assert!(run.join(files::DATASET).exists());
    let photos = root.path().join("photos");
    std::fs::remove_file(photos.join("p0.png")).unwrap();
    common::synthetic_photo(50, 40, 9)
        .save(photos.join("new.png"))
        .unwrap();
    common::synthetic_photo(60, 40, 9)
        .save(photos.join("new2.png"))
        .unwrap();
    let before = snapshot(&run);
    let (tx, _rx) = unbounded();
    let err = Trainer::resume(&run, &cpu_device(), tx, Some(Duration::Steps(50)))
        .err()
        .expect("a resume on other images must be refused");
    let message = err.to_string();
    assert!(
        matches!(err, TrainError::RunDir(RunDirError::DatasetChanged { .. })),
        "{message}"
    );
    assert!(
        message.contains("photos: 6 then, 7 now")
            && message.contains("2 added")
            && message.contains("1 removed")
            && message.contains("p0.png"),
        "{message}"
    );
    assert!(
        !message.contains("style images:"),
        "style did not change: {message}"
    );
    assert_eq!(
        snapshot(&run),
        before,
        "nothing may be written before the checks pass"
    );

    // Same when no checkpoint is intact: the new duration is not written either.
    std::fs::remove_file(photos.join("new.png")).unwrap();
    std::fs::remove_file(photos.join("new2.png")).unwrap();
    common::synthetic_photo(40, 40, 0)
        .save(photos.join("p0.png"))
        .unwrap();
    std::fs::write(
        run.join(run_dir::checkpoint_dir_name(1))
            .join(files::GENERATOR),
        b"",
    )
    .unwrap();
    let before = snapshot(&run);
    let (tx, _rx) = unbounded();
    let err = Trainer::resume(&run, &cpu_device(), tx, Some(Duration::Steps(50)))
        .err()
        .expect("nothing to resume");
    assert!(
        matches!(
            err,
            TrainError::RunDir(RunDirError::NoIntactCheckpoint { .. })
        ),
        "{err}"
    );
    assert_eq!(
        snapshot(&run),
        before,
        "nothing may be written before the checks pass"
    );
}

#[test]
fn nan_message_is_true_without_a_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/nan-early");
    let (tx, _rx) = unbounded();
    let mut trainer = Trainer::new(
        config(root.path(), 30).with_checkpoint_every(1000),
        &run,
        &cpu_device(),
        tx,
    )
    .unwrap();
    let mut live = trainer.live();
    live.lr_init = 1e30;
    trainer.set_live(live).unwrap();
    let mut failure = None;
    for _ in 0..20 {
        if let Err(e) = trainer.train_step() {
            failure = Some(e.to_string());
            break;
        }
    }
    let message = failure.expect("the run must stop on a non-finite loss");
    assert!(message.contains("became"), "{message}");
    assert!(
        !message.contains("checkpoint is kept"),
        "no checkpoint exists, the message must not claim one: {message}"
    );
    assert!(
        message.contains("no checkpoint had been saved yet"),
        "{message}"
    );
    assert!(list_checkpoints(&run).is_empty());
}

#[test]
fn list_runs_reports_unreadable_model_json_and_skips_hidden_folders() {
    let root = tempfile::tempdir().unwrap();
    let good = train_run(root.path(), "good", 1, 10);
    let bad = root.path().join("checkpoints/bad");
    // A complete model in a hidden folder (a download being imported) is not listed.
    let hidden = root.path().join("checkpoints/.paprika.import-1");
    for dir in [&bad, &hidden] {
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(&good).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() && p.file_name().unwrap() != files::LOCK {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    std::fs::write(bad.join(files::MODEL), "{\"upsample\": ").unwrap();
    let listing = run_dir::list_runs(&root.path().join("checkpoints"));
    assert_eq!(
        listing
            .runs
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec!["good"]
    );
    let run = &listing.runs[0];
    assert!(run.resumable);
    assert_eq!(run.checkpoints.len(), 1);
    assert_eq!(listing.unreadable.len(), 1);
    let message = listing.unreadable[0].to_string();
    assert!(
        message.contains(&bad.join(files::MODEL).display().to_string()),
        "{message}"
    );
}

#[test]
fn history_reads_samples_as_plain_images() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("checkpoints/hist");
    let (tx, _rx) = unbounded();
    let mut trainer = Trainer::new(
        config(root.path(), 2).with_sample_every(1),
        &run,
        &cpu_device(),
        tx,
    )
    .unwrap();
    trainer.begin().unwrap();
    trainer.train_step().unwrap();
    trainer.train_step().unwrap();
    drop(trainer);
    let h = run_dir::read_history(&run).unwrap();
    assert_eq!(h.checkpoint.0, 2);
    assert_eq!(h.losses.len(), 2);
    assert_eq!(
        h.samples.iter().map(|s| s.step).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let grid = &h.samples[0];
    assert_eq!((grid.inputs.len(), grid.outputs.len()), (2, 2));
    assert_eq!((grid.inputs[0].width, grid.inputs[0].height), (32, 32));
    assert!(h.warnings.is_empty());
    // At most `max_sets` grids, spread over the run, the last one included.
    let picked = run_dir::read_sample_grids(&run.join(files::SAMPLES), 2, 2);
    assert_eq!(
        picked.iter().map(|s| s.step).collect::<Vec<_>>(),
        vec![0, 2]
    );
}

// ---------------------------------------------------------------------------------
// The real binary: SIGTERM saves and exits 0; a second process is locked out.

fn binary(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_photo2anime"));
    cmd.current_dir(cwd)
        .args(args)
        // Keep the preprocessing cache out of the real home folder.
        .env("XDG_CACHE_HOME", cwd.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn metrics_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().skip(1).filter(|l| !l.is_empty()).count())
        .unwrap_or(0)
}

fn wait_output(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

#[cfg(unix)]
#[test]
fn sigterm_saves_a_checkpoint_and_a_second_process_is_locked_out() {
    let root = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--device",
        "cpu",
        "--size",
        "32",
        "--batch",
        "2",
        "--steps",
        "1000",
        "--checkpoint-every",
        "1000",
        "--run",
        "sig",
    ];
    let child = binary(root.path(), &args).spawn().unwrap();
    let run = root.path().join("checkpoints/sig");
    let metrics = run.join(files::METRICS);
    let started = Instant::now();
    while metrics_rows(&metrics) == 0 {
        assert!(
            started.elapsed() < StdDuration::from_secs(300),
            "no training step within 5 minutes"
        );
        std::thread::sleep(StdDuration::from_millis(100));
    }

    // A second process on the same run is refused while the first trains.
    let (status, text) = wait_output(binary(root.path(), &args).spawn().unwrap());
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("is being trained by another photo2anime process"),
        "{text}"
    );

    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let (status, text) = wait_output(child);
    assert!(status.success(), "exit {status:?}: {text}");
    assert!(text.contains("stopped; checkpoint saved at"), "{text}");
    let latest: LatestPointer = read_json(&run.join(files::LATEST)).unwrap();
    let reached = metrics_rows(&metrics);
    assert!(latest.step >= 1 && latest.step < 1000, "{latest:?}");
    assert_eq!(
        latest.step, reached,
        "the checkpoint holds the step reached"
    );
    assert!(run_dir::verify_checkpoint(&run.join(&latest.dir), latest.step).is_ok());
}
