//! ONNX export: the exported generator, run by onnxruntime (Python), equals
//! photo2anime's own forward within 1e-4 on the committed fixture generator and a
//! demo photo, at two sizes per upsampling mode, with dynamic height and width.
//!
//! Needs a Python with `onnxruntime` and `numpy`: `PHOTO2ANIME_PYTHON` (else
//! `python3`). `.ci/run` installs them in a venv and sets
//! `PHOTO2ANIME_REQUIRE_ONNXRUNTIME=1`, so there a missing runtime fails the test;
//! elsewhere it skips with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::Device;
use photo2anime::model::UpsampleMode;
use photo2anime::tensor_image::images_to_tensor;

const RUN_ORT: &str = r#"
import sys, numpy as np, onnxruntime as ort
model, inp, out, h, w = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
x = np.fromfile(inp, dtype='<f4').reshape(1, 3, h, w)
sess = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
assert [i.name for i in sess.get_inputs()] == ['photo'], sess.get_inputs()
y = sess.run(['anime'], {'photo': x})[0]
y.astype('<f4').tofile(out)
print(ort.__version__, y.shape)
"#;

fn python() -> Option<String> {
    let python = std::env::var("PHOTO2ANIME_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    let reason = format!("{python} cannot import onnxruntime and numpy");
    assert!(
        std::env::var_os("PHOTO2ANIME_REQUIRE_ONNXRUNTIME").is_none(),
        "{reason} (PHOTO2ANIME_REQUIRE_ONNXRUNTIME is set)"
    );
    println!("skipped: {reason}");
    None
}

fn run_ort(python: &str, model: &Path, x: &[f32], h: usize, w: usize, dir: &Path) -> Vec<f32> {
    let (inp, out) = (dir.join("x.f32"), dir.join("y.f32"));
    std::fs::write(
        &inp,
        x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    let o = Command::new(python)
        .args(["-c", RUN_ORT])
        .arg(model)
        .arg(&inp)
        .arg(&out)
        .args([h.to_string(), w.to_string()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "onnxruntime failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    println!("onnxruntime {}", String::from_utf8_lossy(&o.stdout).trim());
    std::fs::read(&out)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn exported_onnx_matches_in_onnxruntime() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let photo = image::open(photo2anime::demo_dir().join("photos/cat_chelsea.jpg"))
        .unwrap()
        .to_rgb8();
    // Align-corners takes any size; half-pixel x2 needs multiples of 4.
    for (mode, sizes) in [
        (UpsampleMode::AlignCorners, [(75u32, 53u32), (101, 66)]),
        (UpsampleMode::HalfPixelX2, [(68, 52), (100, 76)]),
    ] {
        let g = photo2anime::model_io::load_generator(
            &common::fixture("generator_seed0.pt"),
            &device,
            Some(mode),
        )
        .unwrap()
        .generator;
        let model = dir.path().join(format!("{mode:?}.onnx"));
        photo2anime::interop::onnx::export_onnx(&g, "generator_seed0.pt", &model).unwrap();
        if mode == UpsampleMode::AlignCorners {
            // The CLI writes the same graph (the model's own description aside).
            let cli = dir.path().join("cli.onnx");
            let o = Command::new(env!("CARGO_BIN_EXE_photo2anime"))
                .arg("export")
                .arg(common::fixture("generator_seed0.pt"))
                .arg("-o")
                .arg(&cli)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let size = |p: &Path| std::fs::metadata(p).unwrap().len() as i64;
            assert!(
                (size(&cli) - size(&model)).abs() < 200,
                "{} vs {}",
                size(&cli),
                size(&model)
            );
            let wrong = Command::new(env!("CARGO_BIN_EXE_photo2anime"))
                .arg("export")
                .arg(common::fixture("generator_seed0.pt"))
                .args(["-o", "model.txt"])
                .output()
                .unwrap();
            assert!(!wrong.status.success());
        }
        for (w, h) in sizes {
            let img = image::imageops::resize(&photo, w, h, image::imageops::FilterType::Triangle);
            let x = images_to_tensor(std::slice::from_ref(&img), &device); // [1, 3, h, w]
            let ours: Vec<f32> = g.forward(x.clone()).into_data().try_to_vec().unwrap();
            let input: Vec<f32> = x.into_data().try_to_vec().unwrap();
            let theirs = run_ort(&python, &model, &input, h as usize, w as usize, dir.path());
            assert_eq!(theirs.len(), ours.len(), "{mode:?} {w}x{h}");
            let max = common::max_abs_diff(&ours, &theirs);
            println!("{mode:?} {w}x{h}: max |onnxruntime - photo2anime| = {max:.2e}");
            assert!(max <= 1e-4, "{mode:?} {w}x{h}: {max:.2e}");
        }
    }
}
