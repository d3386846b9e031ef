//! The studio driven through egui_kittest by accessible labels: a tiny CPU run
//! (start, steps, pause, a live slider change, resume, stop, resume the run again),
//! a dropped photo converted, a folder with bad files, and UI frame times while
//! training runs; and the states the studio once got stuck in (a folder chosen
//! while the previous scan runs, a broken model imported, a folder conversion with
//! a bad file, closing the window while training). No GPU and no display are needed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::studio::{drop_file, folders_ready, harness, run_until};

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use photo2anime::app::command::UiCommand;
use photo2anime::app::run_state::RunStatus;
use photo2anime::app::state::Tab;
use photo2anime::app::studio::Closing;
use photo2anime::app::worker::{FolderRole, Slot};
use photo2anime::app::{AppOptions, Settings, StudioApp};
use photo2anime::device::DeviceSetting;
use photo2anime::train::run_dir::{TrainState, latest_checkpoint, read_json};
use photo2anime::train::{Duration as RunLength, FinishReason};

/// Training tests share two cores: run them one at a time so timings mean something.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Settings for a tiny CPU run on `photos` / `style`.
fn tiny_settings(photos: &Path, style: &Path, steps: usize) -> Settings {
    let mut s = Settings::default();
    s.train.photos_dir = photos.to_path_buf();
    s.train.style_dir = style.to_path_buf();
    s.device = DeviceSetting::Cpu;
    s.train.image_size = 32;
    s.train.batch_size = 1;
    s.train.init_epochs = 1;
    s.train.duration = RunLength::Steps(steps);
    s.lengths.steps = steps;
    s.train.sample_every = 2;
    s.train.checkpoint_every = 10_000;
    s.tab = Tab::Training;
    s
}

fn app(settings: Settings, checkpoints: &Path) -> StudioApp {
    StudioApp::new(
        settings,
        AppOptions {
            checkpoints_dir: checkpoints.to_path_buf(),
            force_cpu: true,
            open: Vec::new(),
        },
    )
}

/// The studio on a tiny dataset under `dir` (runs of 5000 steps into
/// `dir/checkpoints`), once both folders are scanned.
fn scanned_studio(dir: &Path) -> Harness<'static, StudioApp> {
    let (photos, style) = common::tiny_dataset(dir, 6, 40);
    let checkpoints = dir.join("checkpoints");
    let mut h = harness(app(tiny_settings(&photos, &style, 5000), &checkpoints));
    run_until(
        &mut h,
        Duration::from_secs(30),
        "folders scanned",
        folders_ready,
    );
    h
}

/// Waits for the folder scans, presses Start and waits for `steps` steps.
fn start_and_wait(h: &mut Harness<'static, StudioApp>, steps: usize) {
    run_until(h, Duration::from_secs(30), "folders scanned", folders_ready);
    h.get_by_label("Start training").click();
    run_until(h, Duration::from_secs(180), "first steps", |a| {
        a.run_state().step() >= steps
    });
}

#[test]
fn train_pause_live_change_resume_stop_and_resume_the_run() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut h = scanned_studio(tmp.path());
    h.check_accessibility();

    // Start: steps arrive and reach the plot.
    h.get_by_label("Start training").click();
    run_until(&mut h, Duration::from_secs(180), "first steps", |a| {
        a.run_state().step() >= 3
    });
    assert!(
        h.state().plots().history.total_points() > 0,
        "history has points"
    );
    assert!(h.state().plots().drawn_points() > 0, "the plot drew points");
    run_until(&mut h, Duration::from_secs(60), "step-0 samples", |a| {
        a.samples().steps().first() == Some(&0)
    });

    // Pause: stepping stops.
    h.get_by_label("Pause").click();
    run_until(&mut h, Duration::from_secs(60), "paused", |a| {
        a.run_state().status == RunStatus::Paused
    });
    let paused_at = h.state().run_state().step();
    for _ in 0..10 {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        h.state().run_state().step(),
        paused_at,
        "no step while paused"
    );

    // A slider change reaches the trainer (applied while paused, used from the next step).
    let new_lr = 1e-3;
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Generator learning rate")
        .set_value_accesskit(new_lr);
    run_until(
        &mut h,
        Duration::from_secs(30),
        "LiveApplied with the new lr_g",
        |a| {
            a.run_state()
                .live_applied
                .is_some_and(|(_, p)| (p.lr_g - new_lr).abs() < 1e-9)
        },
    );
    let (applied_step, _) = h.state().run_state().live_applied.unwrap();
    assert_eq!(applied_step, paused_at + 1);
    assert!(
        h.state().plots().markers.contains(&applied_step),
        "the change is marked on the plot"
    );

    // Resume: steps continue.
    h.get_by_label("Resume").click();
    run_until(
        &mut h,
        Duration::from_secs(120),
        "steps after resume",
        |a| a.run_state().step() >= paused_at + 2,
    );

    // Stop: a checkpoint is written with the live value the trainer used.
    h.get_by_label("Stop").click();
    run_until(&mut h, Duration::from_secs(120), "stopped", |a| {
        a.run_state().status == RunStatus::Finished(FinishReason::Stopped)
    });
    let run_dir = h.state().run_state().run_dir.clone().unwrap();
    let (_, ckpt) = latest_checkpoint(&run_dir).unwrap();
    let state: TrainState = read_json(&ckpt.join("state.json")).unwrap();
    assert!(
        (state.live.lr_g - new_lr).abs() < 1e-9,
        "state.json lr_g = {}",
        state.live.lr_g
    );
    let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let lr_col = header.iter().position(|c| *c == "lr_g").unwrap();
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    assert!(
        (last[lr_col].parse::<f64>().unwrap() - new_lr).abs() < 1e-9,
        "metrics.csv lr_g = {}",
        last[lr_col]
    );
    let stopped_at = state.step;
    let points_before = h.state().plots().history.total_points();

    // Resume the run from the list of earlier runs: history comes back, steps continue.
    let name = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let label = format!("Resume {name}");
    let start = Instant::now();
    while h.query_by_label(&label).is_none() && start.elapsed() < Duration::from_secs(30) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Far down the scrolling panel: click through AccessKit, which needs no visible pixel.
    h.get_by_label(&label).click_accesskit();
    run_until(&mut h, Duration::from_secs(180), "resumed steps", |a| {
        a.run_state().step() > stopped_at
    });
    assert!(
        h.state().plots().history.total_points() >= points_before,
        "history restored"
    );
    assert!(
        (h.state().settings().train.live.lr_g - new_lr).abs() < 1e-9,
        "live values restored"
    );
    h.get_by_label("Stop").click();
    run_until(&mut h, Duration::from_secs(120), "stopped again", |a| {
        !a.run_state().is_active()
    });
}

#[test]
fn dropped_photo_is_converted() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let checkpoints = tmp.path().join("checkpoints");
    common::model_dir(&checkpoints.join("tiny-model"));
    let photo = tmp.path().join("holiday.png");
    common::synthetic_photo(48, 40, 3).save(&photo).unwrap();

    let mut h = harness(app(tiny_settings(&photos, &style, 10), &checkpoints));
    h.run_steps(3);
    drop_file(&mut h, &photo);
    h.step();
    assert_eq!(
        h.state().settings().tab,
        Tab::Convert,
        "a dropped photo opens the Convert view"
    );
    assert_eq!(
        h.state().convert().photo_names(),
        vec!["holiday.png".to_string()]
    );
    run_until(&mut h, Duration::from_secs(120), "converted result", |a| {
        a.convert().result(Slot::A).is_some()
    });
    let (image, model) = h.state().convert().result(Slot::A).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (48, 40),
        "output has the photo's size"
    );
    assert!(model.contains("tiny-model"), "model label {model}");
    assert!(
        h.query_by_label_contains("After (A): tiny-model").is_some(),
        "result line shown"
    );
    assert!(
        h.query_by_label_contains("holiday.png").is_some(),
        "photo listed"
    );
    h.check_accessibility();

    // The compare view: 1:1 pixels, the divider follows a drag, the wheel zooms
    // and a drag pans both sides together (one transform for both).
    h.get_by_label("1:1").click();
    h.run_steps(2);
    let ppp = h.ctx.pixels_per_point();
    assert_eq!(h.state().convert().view().zoom(), Some(1.0 / ppp));
    let view = h.get_by_label("Before and after view").rect();
    let divider_x = view.left() + h.state().convert().view().divider() * view.width();
    drag(
        &mut h,
        egui::pos2(divider_x, view.center().y),
        egui::vec2(-view.width() * 0.25, 0.0),
    );
    let divider = h.state().convert().view().divider();
    assert!((divider - 0.25).abs() < 0.02, "divider at {divider}");
    h.hover_at(view.center() + egui::vec2(100.0, 0.0));
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 200.0),
        modifiers: egui::Modifiers::NONE,
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
    });
    h.run_steps(10);
    let zoomed = h.state().convert().view().zoom().unwrap();
    assert!(zoomed > 1.0 / ppp, "wheel zoomed in: {zoomed}");
    let pan_before = h.state().convert().view().pan();
    drag(
        &mut h,
        view.center() + egui::vec2(100.0, 50.0),
        egui::vec2(-40.0, -20.0),
    );
    let pan = h.state().convert().view().pan() - pan_before;
    assert!(
        (pan.x - 40.0 / zoomed).abs() < 2.0 && (pan.y - 20.0 / zoomed).abs() < 2.0,
        "panned by {pan:?} at zoom {zoomed}"
    );
}

/// Presses the primary button at `from`, moves by `by` over several frames, releases.
/// Opens combo box `combo` and clicks its entry `item` (a popup appears after
/// egui's sizing pass: a few frames).
fn pick(h: &mut Harness<'_, StudioApp>, combo: &str, item: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, combo)
        .click();
    for _ in 0..10 {
        h.step();
        if h.query_by_label(item).is_some() {
            h.get_by_label(item).click();
            h.step();
            return;
        }
    }
    panic!("{combo}: no entry {item}");
}

fn drag(h: &mut Harness<'_, StudioApp>, from: egui::Pos2, by: egui::Vec2) {
    let button = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    h.hover_at(from);
    h.event(button(from, true));
    h.step();
    for i in 1..=5 {
        h.hover_at(from + by * (i as f32 / 5.0));
        h.step();
    }
    h.event(button(from + by, false));
    h.step();
}

#[test]
fn dropped_pytorch_model_converts_like_the_engine() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let photo = tmp.path().join("street.png");
    let pixels = common::synthetic_photo(40, 32, 5);
    pixels.save(&photo).unwrap();
    let pt = common::fixture("generator_seed0.pt");

    let mut h = harness(app(
        tiny_settings(&photos, &style, 10),
        &tmp.path().join("checkpoints"),
    ));
    h.run_steps(2);
    // A model and a photo dropped together: the model is imported and used.
    for path in [pt.clone(), photo.clone()] {
        drop_file(&mut h, &path);
    }
    h.step();
    run_until(
        &mut h,
        Duration::from_secs(120),
        "converted with the imported model",
        |a| {
            a.convert()
                .result(Slot::A)
                .is_some_and(|(_, label)| label.contains("(imported)"))
        },
    );
    let (image, label) = h.state().convert().result(Slot::A).unwrap();
    assert!(label.contains("generator_seed0.pt"), "model label {label}");
    // The studio's result is the engine's conversion with the same file.
    let device = Device::flex();
    let loaded = photo2anime::model_io::load_generator(&pt, &device, None).unwrap();
    let expected =
        photo2anime::convert::convert_whole(&loaded.generator, &pixels, &device).unwrap();
    let max = image
        .as_raw()
        .iter()
        .zip(expected.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert_eq!((image.width(), image.height()), (40, 32));
    assert!(max <= 1, "studio vs engine differ by {max}/255");
}

#[test]
fn bad_folder_lists_skipped_files() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("corrupt.jpg"), b"this is not a jpeg at all").unwrap();
    image::RgbImage::new(10, 10)
        .save(bad.join("tiny.png"))
        .unwrap();
    common::synthetic_photo(40, 40, 1)
        .save(bad.join("good.png"))
        .unwrap();
    let (_, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let mut settings = tiny_settings(&bad, &style, 10);
    settings.tab = Tab::Training;
    let mut h = harness(app(settings, &tmp.path().join("checkpoints")));
    run_until(
        &mut h,
        Duration::from_secs(30),
        "folders scanned",
        folders_ready,
    );
    h.get_by_label("Dataset").click();
    h.run_steps(3);
    assert_eq!(h.state().settings().tab, Tab::Dataset);
    assert!(
        h.query_by_label_contains("1 image, 2 skipped").is_some(),
        "counts shown"
    );
    let corrupt = h.get_by_label_contains("corrupt.jpg:");
    let tiny = h.get_by_label_contains("tiny.png:");
    let text = |n: &egui_kittest::Node<'_>| {
        n.accesskit_node()
            .value()
            .or(n.accesskit_node().label())
            .unwrap_or_default()
    };
    assert!(
        text(&tiny).contains("too small"),
        "tiny.png reason: {}",
        text(&tiny)
    );
    assert!(!text(&corrupt).is_empty());
    assert!(
        h.query_by_label_contains("good.png:").is_none(),
        "the good image is not skipped"
    );
    h.check_accessibility();
}

#[test]
fn frames_stay_fast_while_training() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 6, 72);
    let mut settings = tiny_settings(&photos, &style, 100_000);
    settings.train.image_size = 64;
    settings.train.batch_size = 2;
    settings.train.sample_every = 3;
    let mut h = harness(app(settings, &tmp.path().join("checkpoints")));
    run_until(
        &mut h,
        Duration::from_secs(30),
        "folders scanned",
        folders_ready,
    );
    h.get_by_label("Start training").click();
    run_until(&mut h, Duration::from_secs(180), "training steps", |a| {
        a.run_state().step() >= 2
    });

    let mut frames = Vec::new();
    for _ in 0..150 {
        let t = Instant::now();
        h.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(10));
    }
    let steps_during = h.state().run_state().step();
    frames.sort_by(f64::total_cmp);
    let median = frames[frames.len() / 2];
    let p95 = frames[frames.len() * 95 / 100];
    let max = frames[frames.len() - 1];
    println!(
        "frame time while training: median {median:.2} ms, p95 {p95:.2} ms, max {max:.2} ms (step {steps_during})"
    );
    assert!(h.state().plots().drawn_points() > 0);
    assert!(median < 50.0, "median frame {median:.1} ms");
    assert!(p95 < 50.0, "p95 frame {p95:.1} ms");
}

/// Choosing a folder while the previous scan still runs: the newer choice wins and
/// its answer arrives (the second scan used to be refused as busy, the first answer
/// was dropped as stale, and the box said "scanning..." forever).
#[test]
fn a_folder_chosen_during_a_scan_is_scanned() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 3, 40);
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    for i in 0..5 {
        common::synthetic_photo(40, 40, i)
            .save(other.join(format!("o{i}.png")))
            .unwrap();
    }
    let mut h = harness(app(
        tiny_settings(&photos, &style, 10),
        &tmp.path().join("ck"),
    ));
    // Both in one frame: the first scan is still running when the second starts.
    h.state_mut()
        .command(UiCommand::SetFolder(FolderRole::Photos, style.clone()));
    h.state_mut()
        .command(UiCommand::SetFolder(FolderRole::Photos, other.clone()));
    run_until(
        &mut h,
        Duration::from_secs(30),
        "the newest folder scanned",
        |a| {
            let f = a.dataset().folder(FolderRole::Photos);
            f.dir() == other.as_path() && f.is_usable()
        },
    );
    assert_eq!(h.state().settings().train.photos_dir, other);
    assert!(
        h.state()
            .dataset()
            .folder(FolderRole::Photos)
            .summary()
            .starts_with("5 images"),
        "summary: {}",
        h.state().dataset().folder(FolderRole::Photos).summary()
    );
}

/// A model file that cannot be loaded is reported when it is imported, and is not
/// used (the studio used to say "Imported" before reading it).
#[test]
fn a_broken_model_is_refused_on_import() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let broken = tmp.path().join("broken.pt");
    std::fs::write(&broken, b"PK\x03\x04 truncated zip").unwrap();
    let mut h = harness(app(
        tiny_settings(&photos, &style, 10),
        &tmp.path().join("ck"),
    ));
    h.run_steps(2);
    drop_file(&mut h, &broken);
    run_until(&mut h, Duration::from_secs(30), "the import error", |a| {
        a.toasts()
            .items()
            .iter()
            .any(|t| t.text.starts_with("Cannot import"))
    });
    assert!(
        !h.state()
            .toasts()
            .items()
            .iter()
            .any(|t| t.text.starts_with("Imported")),
        "a broken file is never announced as imported"
    );
    assert!(h.state().settings().convert.imported.is_empty());
}

/// A folder conversion with a corrupt file converts the others, lists the failure,
/// and clears its progress bar.
#[test]
fn folder_conversion_lists_failures_and_finishes() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let checkpoints = tmp.path().join("checkpoints");
    common::model_dir(&checkpoints.join("tiny-model"));
    let input = tmp.path().join("holiday");
    std::fs::create_dir_all(&input).unwrap();
    common::synthetic_photo(40, 32, 1)
        .save(input.join("a.png"))
        .unwrap();
    std::fs::write(input.join("b.jpg"), b"not a jpeg").unwrap();
    common::synthetic_photo(36, 36, 2)
        .save(input.join("c.png"))
        .unwrap();
    let output = tmp.path().join("holiday-anime");

    let mut settings = tiny_settings(&photos, &style, 10);
    settings.tab = Tab::Convert;
    let mut h = harness(app(settings, &checkpoints));
    run_until(&mut h, Duration::from_secs(30), "model A chosen", |a| {
        a.convert().model_a_spec(a.run_state()).is_some()
    });
    h.state_mut().command(UiCommand::ConvertFolder {
        input: input.clone(),
        output: output.clone(),
    });
    h.step();
    assert!(h.state().convert().batch_running());
    run_until(&mut h, Duration::from_secs(120), "batch finished", |a| {
        !a.convert().batch_running()
    });
    let failures = h.state().convert().batch_failures().to_vec();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].0.ends_with("b.jpg"));
    assert!(output.join("a.png").is_file() && output.join("c.png").is_file());
    assert!(
        h.query_by_label_contains("1 files could not be converted")
            .is_some(),
        "failures listed in the Convert view"
    );
}

/// Ctrl+Enter starts a run (as the installed app's smoke test in `.ci/package` does) and
/// resumes a paused one; with a run active it starts nothing new.
#[test]
fn ctrl_enter_starts_and_resumes_training() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut h = scanned_studio(tmp.path());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    run_until(&mut h, Duration::from_secs(180), "first steps", |a| {
        a.run_state().step() >= 1
    });
    let run_dir = h.state().run_state().run_dir.clone();
    h.get_by_label("Pause").click();
    run_until(&mut h, Duration::from_secs(60), "paused", |a| {
        a.run_state().status == RunStatus::Paused
    });
    let paused_at = h.state().run_state().step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    run_until(&mut h, Duration::from_secs(60), "resumed", |a| {
        a.run_state().step() > paused_at
    });
    assert_eq!(
        h.state().run_state().run_dir,
        run_dir,
        "resumed the same run, not a new one"
    );
    h.get_by_label("Stop").click();
    run_until(&mut h, Duration::from_secs(120), "stopped", |a| {
        !a.run_state().is_active()
    });
}

/// Closing the window during a run saves a checkpoint first: the close is held,
/// "saving" is shown, and the window closes once the trainer has stopped.
#[test]
fn closing_during_training_saves_the_run() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut h = scanned_studio(tmp.path());
    start_and_wait(&mut h, 2);
    assert!(
        !h.state_mut().request_close(),
        "the close waits for the run"
    );
    h.step();
    assert_eq!(h.state().closing(), Closing::SavingRun);
    // A modal appears after egui's sizing pass: give it a few frames.
    let mut shown = false;
    for _ in 0..10 {
        h.step();
        if h.query_by_label("Saving the run before closing…").is_some() {
            shown = true;
            break;
        }
    }
    assert!(shown, "the saving notice is shown while the run stops");
    run_until(&mut h, Duration::from_secs(120), "ready to close", |a| {
        a.closing() == Closing::Ready
    });
    let run_dir = h.state().run_state().run_dir.clone().unwrap();
    let (pointer, _) = latest_checkpoint(&run_dir).unwrap();
    assert!(pointer.step >= 2, "checkpoint at step {}", pointer.step);
    assert_eq!(
        h.state().run_state().status,
        RunStatus::Finished(FinishReason::Stopped)
    );
}

/// "Active run" in Convert is the trainer's generator now: during a run with no
/// checkpoint on disk, a dropped photo is converted with the weights of the step
/// the trainer is at (labelled with that step), equal to converting with a
/// checkpoint saved at that step; after more steps, "Use step N" takes newer weights.
#[test]
fn convert_uses_the_trainers_live_weights() {
    use photo2anime::convert::{ConvertOptions, convert_image};
    use photo2anime::model_io::load_generator;
    use photo2anime::train::TrainCommand;
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 4, 40);
    let checkpoints = tmp.path().join("checkpoints");
    let photo = tmp.path().join("portrait.png");
    let photo_img = common::synthetic_photo(40, 36, 5);
    photo_img.save(&photo).unwrap();
    let mut h = harness(app(tiny_settings(&photos, &style, 5000), &checkpoints));
    start_and_wait(&mut h, 2);
    h.get_by_label("Pause").click();
    run_until(&mut h, Duration::from_secs(60), "paused", |a| {
        a.run_state().status == RunStatus::Paused
    });
    let paused_at = h.state().run_state().step();
    let run_dir = h.state().run_state().run_dir.clone().unwrap();
    assert!(
        latest_checkpoint(&run_dir).is_err(),
        "no checkpoint on disk yet"
    );

    drop_file(&mut h, &photo);
    run_until(&mut h, Duration::from_secs(120), "converted", |a| {
        a.convert().result(Slot::A).is_some()
    });
    let (live, label) = h.state().convert().result(Slot::A).unwrap();
    assert_eq!(
        label,
        format!("Active run - live weights, step {paused_at}")
    );
    assert!(
        h.query_by_label_contains(&format!("Weights of step {paused_at} (current)"))
            .is_some()
    );
    assert!(
        latest_checkpoint(&run_dir).is_err(),
        "converted without a checkpoint"
    );

    // The independent reference: a checkpoint of the same (paused) step, read from disk.
    h.state_mut()
        .command(UiCommand::Train(TrainCommand::SaveNow));
    run_until(&mut h, Duration::from_secs(60), "checkpoint saved", |a| {
        a.run_state().latest_checkpoint.is_some()
    });
    let (pointer, ckpt) = latest_checkpoint(&run_dir).unwrap();
    assert_eq!(pointer.step, paused_at);
    let from_disk = load_generator(
        &ckpt.join(photo2anime::train::run_dir::files::GENERATOR),
        &Device::flex(),
        None,
    )
    .unwrap();
    let expected = convert_image(
        &from_disk.generator,
        &photo_img,
        &ConvertOptions::default(),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(
        *live, expected,
        "live weights convert like the step's checkpoint"
    );

    // Training moves on; the held weights are offered an update.
    h.state_mut().settings_mut().tab = Tab::Training;
    h.step();
    h.get_by_label("Resume").click();
    run_until(
        &mut h,
        Duration::from_secs(120),
        "steps after resume",
        |a| a.run_state().step() >= paused_at + 2,
    );
    h.get_by_label("Pause").click();
    run_until(&mut h, Duration::from_secs(60), "paused again", |a| {
        a.run_state().status == RunStatus::Paused
    });
    let now = h.state().run_state().step();
    h.state_mut().settings_mut().tab = Tab::Convert;
    h.step();
    h.get_by_label(&format!("Use step {now}")).click();
    let newer = format!("Active run - live weights, step {now}");
    run_until(
        &mut h,
        Duration::from_secs(120),
        "reconverted with newer weights",
        |a| {
            a.convert()
                .result(Slot::A)
                .is_some_and(|(_, label)| label == newer)
        },
    );
    let at_now = h.state().convert().result(Slot::A).unwrap().0;
    assert_ne!(*at_now, *live);

    // Training moves on again; a colour change restyles what is shown: the same
    // weights, the network's output reused, not a newer snapshot.
    h.state_mut()
        .command(UiCommand::Train(TrainCommand::Resume));
    run_until(&mut h, Duration::from_secs(120), "a step after", |a| {
        a.run_state().step() > now
    });
    h.state_mut().settings_mut().convert.keep_colors = true;
    h.state_mut().reconvert();
    run_until(&mut h, Duration::from_secs(60), "restyled", |a| {
        a.convert()
            .result(Slot::A)
            .is_some_and(|(img, _)| *img != *at_now)
    });
    assert_eq!(h.state().convert().result(Slot::A).unwrap().1, newer);
    assert!(
        h.query_by_label_contains("restyled (network output reused)")
            .is_some()
    );
    h.state_mut().command(UiCommand::Train(TrainCommand::Stop));
    run_until(&mut h, Duration::from_secs(120), "stopped", |a| {
        !a.run_state().is_active()
    });
}

/// A video clip dropped on the window shows its first frame before/after and
/// what it is; "Convert video" runs in the background with progress and ends in
/// a notification that opens the file, which has every frame and the sound.
#[test]
fn dropped_video_converts_with_sound() {
    let _guard = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(tmp.path(), 2, 40);
    let checkpoints = tmp.path().join("checkpoints");
    common::model_dir(&checkpoints.join("tiny-model"));
    let clip = tmp.path().join("walk.mp4");
    common::test_clip(&clip, 1);
    // "Convert video" writes beside the clip.
    let output = tmp.path().join("walk-anime.mp4");

    let mut settings = tiny_settings(&photos, &style, 10);
    settings.tab = Tab::Convert;
    let mut h = harness(app(settings, &checkpoints));
    run_until(&mut h, Duration::from_secs(30), "model A chosen", |a| {
        a.convert().model_a_spec(a.run_state()).is_some()
    });
    drop_file(&mut h, &clip);
    h.step();
    run_until(
        &mut h,
        Duration::from_secs(60),
        "first frame converted",
        |a| a.convert().result(Slot::A).is_some(),
    );
    let (frame, _) = h.state().convert().result(Slot::A).unwrap();
    assert_eq!(frame.dimensions(), (96, 64));
    assert!(h.query_by_label_contains("Video clip").is_some());
    assert!(
        h.query_by_label_contains("96x64, 25.000 fps, 1.0 s, with sound")
            .is_some()
    );
    assert!(h.query_by_label("Convert video").is_some());
    // The artist picks H.265 at the smaller-file quality.
    pick(&mut h, "Video codec", "H.265 (.mp4): about half the size");
    pick(&mut h, "Video quality", "Smaller file");
    let id = h
        .state()
        .convert()
        .selected_clip()
        .expect("the clip is selected");
    h.state_mut().command(UiCommand::ConvertVideo {
        id,
        output: output.clone(),
    });
    h.step();
    assert!(h.state().convert().video_running());
    h.step();
    assert!(h.query_by_label("Cancel video").is_some());
    run_until(&mut h, Duration::from_secs(120), "video converted", |a| {
        !a.convert().video_running()
    });
    let toast = h
        .state()
        .toasts()
        .items()
        .iter()
        .find(|t| t.file.as_deref() == Some(output.as_path()))
        .unwrap_or_else(|| {
            panic!(
                "no notification for the video: {:?}",
                h.state().toasts().items()
            )
        });
    assert!(toast.text.contains("25 frames"), "{}", toast.text);
    assert!(h.query_by_label("Open").is_some() && h.query_by_label("Show folder").is_some());
    let probe = photo2anime::video::ffmpeg::probe(
        &photo2anime::video::ffmpeg::FfmpegTools::default(),
        &output,
    )
    .unwrap();
    assert_eq!(
        (probe.width, probe.height, probe.frames),
        (96, 64, Some(25))
    );
    assert_eq!(probe.audio_codecs, vec!["aac".to_string()]);
    assert_eq!(probe.codec, "hevc", "the picked codec is used");
}
