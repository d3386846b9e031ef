//! "First results in minutes", as an artist meets it, from a fresh state: with the
//! download table pointed at a local server, the studio downloads a published-format
//! model, converts a dropped photo, changes strength and keep-colours, and starts a
//! fine-tune from that model whose step-0 samples equal the model's own output.
//! Its own test binary: the table is chosen by an environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::studio::{drop_file, folders_ready, harness, run_until};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use egui_kittest::kittest::Queryable;
use photo2anime::app::state::Tab;
use photo2anime::app::worker::Slot;
use photo2anime::app::{AppOptions, Settings, StudioApp};
use photo2anime::convert::{ConvertOptions, convert_image};
use photo2anime::device::DeviceSetting;
use photo2anime::model_io::load_generator;
use photo2anime::train::run_dir::read_json;
use photo2anime::train::{Duration as RunLength, TrainConfig};
use sha1::Digest;

/// Serves `body` at `/model.pt` (404 elsewhere) on a local port, forever.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            if first.starts_with("GET /model.pt ") {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    format!("http://127.0.0.1:{port}/model.pt")
}

fn git_blob_sha1(bytes: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn result_a(app: &StudioApp) -> Option<image::RgbImage> {
    app.convert().result(Slot::A).map(|(img, _)| (*img).clone())
}

#[test]
fn download_convert_dial_and_fine_tune_from_a_fresh_home() {
    let tmp = tempfile::tempdir().unwrap();
    // A real port-layout generator .pt, served locally and verified by its git blob id.
    let pt = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generator_seed0.pt"),
    )
    .unwrap();
    let url = serve(pt.clone());
    let table = tmp.path().join("table.json");
    std::fs::write(
        &table,
        serde_json::json!([{
            "name": "tiny",
            "url": url,
            "checksum": {"kind": "git-blob-sha1", "value": git_blob_sha1(&pt)},
            "size": pt.len(),
            "licence": "Test weights: for this test only.",
            "kind": "generator"
        }])
        .to_string(),
    )
    .unwrap();
    // SAFETY: set before any thread of this process reads the environment (this
    // binary holds this one test).
    unsafe { std::env::set_var("PHOTO2ANIME_DOWNLOAD_TABLE", &table) };

    let (photos, style) = common::tiny_dataset(tmp.path(), 4, 40);
    let checkpoints = tmp.path().join("checkpoints");
    let mut settings = Settings::default();
    settings.train.photos_dir = photos;
    settings.train.style_dir = style;
    settings.train.image_size = 32;
    settings.train.batch_size = 1;
    settings.train.duration = RunLength::Steps(3);
    settings.lengths.steps = 3;
    settings.train.sample_every = 100;
    settings.train.sample_count = 2;
    settings.device = DeviceSetting::Cpu;
    settings.tab = Tab::Convert;
    let app = StudioApp::new(
        settings,
        AppOptions {
            checkpoints_dir: checkpoints.clone(),
            force_cpu: true,
            open: Vec::new(),
        },
    );
    let mut h = harness(app);
    h.run_steps(3);

    // No model yet: the empty state offers the download, licence first.
    assert!(
        h.query_by_label_contains("Test weights: for this test only")
            .is_some()
    );
    let started = Instant::now();
    h.get_by_label_contains("Download tiny").click();
    run_until(
        &mut h,
        Duration::from_secs(60),
        "model downloaded and listed",
        |a| a.training().runs.iter().any(|r| r.name == "tiny"),
    );
    let model_dir = checkpoints.join("tiny");
    assert!(model_dir.join("model.json").exists());
    assert!(
        !checkpoints.join(".downloads/tiny.pt").exists(),
        "download removed after import"
    );

    // Drop a photo: converted with the downloaded model.
    let photo = tmp.path().join("holiday.png");
    let photo_img = common::synthetic_photo(48, 40, 3);
    photo_img.save(&photo).unwrap();
    drop_file(&mut h, &photo);
    run_until(&mut h, Duration::from_secs(120), "converted", |a| {
        result_a(a).is_some()
    });
    let full = result_a(h.state()).unwrap();
    println!(
        "launch to first converted photo: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let engine = load_generator(&model_dir, &Device::flex(), None).unwrap();
    let expected = convert_image(
        &engine.generator,
        &photo_img,
        &ConvertOptions::default(),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(full, expected, "the studio shows the model's own output");

    // Strength 0% on a model without a parent gives the photo back; keep-colours
    // changes the result. (Set through the settings the slider edits, then the
    // reconversion the UI asks for when a control changes.)
    h.state_mut().settings_mut().convert.strength_percent = 0;
    h.state_mut().reconvert();
    run_until(&mut h, Duration::from_secs(120), "strength 0 result", |a| {
        result_a(a).is_some_and(|r| r != full)
    });
    assert_eq!(result_a(h.state()).unwrap(), photo_img);
    assert!(
        h.query_by_label_contains("restyled (network output reused)")
            .is_some(),
        "a strength change on a model without a parent does not run the network"
    );
    h.state_mut().settings_mut().convert.strength_percent = 100;
    h.state_mut().settings_mut().convert.keep_colors = true;
    h.state_mut().reconvert();
    run_until(
        &mut h,
        Duration::from_secs(120),
        "keep-colours result",
        |a| result_a(a).is_some_and(|r| r != full && r != photo_img),
    );
    assert_eq!(
        result_a(h.state()).unwrap(),
        photo2anime::convert::finish::keep_photo_colors(&full, &photo_img),
        "keep-colours is the network's output with the photo's chroma"
    );

    // Fine-tune from the downloaded model, from the Training tab.
    h.state_mut().settings_mut().train.init_from = Some(model_dir.clone());
    h.state_mut().settings_mut().tab = Tab::Training;
    run_until(
        &mut h,
        Duration::from_secs(60),
        "folders scanned",
        folders_ready,
    );
    h.get_by_label("Start training").click();
    run_until(&mut h, Duration::from_secs(300), "step-0 samples", |a| {
        a.samples().steps().first() == Some(&0)
    });
    let run_dir = h.state().run_state().run_dir.clone().expect("run dir");
    let config: TrainConfig = read_json(&run_dir.join("config.json")).unwrap();
    assert_eq!(config.parent.map(|p| p.path), Some(model_dir.clone()));
    let grid = image::open(run_dir.join("samples/step-000000.png"))
        .unwrap()
        .to_rgb8();
    let (w, h2) = (32, 32);
    for col in 0..2 {
        let input = image::imageops::crop_imm(&grid, col * w, 0, w, h2).to_image();
        let output = image::imageops::crop_imm(&grid, col * w, h2, w, h2).to_image();
        let expected = convert_image(
            &engine.generator,
            &input,
            &ConvertOptions::default(),
            &Device::flex(),
        )
        .unwrap();
        let worst = output
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "step-0 sample {col} differs from the model by {worst}/255"
        );
    }
    run_until(&mut h, Duration::from_secs(300), "run finished", |a| {
        !a.run_state().is_active()
    });
}
