//! Video: clips made here with FFmpeg (`testsrc` + a sine tone) and from a demo
//! photo (a slow pan and zoom plus sensor noise) convert with the right frame
//! count, rate, duration and sound, without flicker, and fail clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use image::RgbImage;
use photo2anime::convert::ConvertOptions;
use photo2anime::model::{Generator, UpsampleMode};
use photo2anime::video::ffmpeg::{self, EncodeSettings, FfmpegTools, VideoCodec};
use photo2anime::video::temporal::{DEFAULT_ALPHA, flicker_ratio};
use photo2anime::video::{FrameStyler, VideoError, VideoProgress, VideoReport, convert_video};

fn generator() -> Generator {
    photo2anime::model_io::load_generator(
        &common::fixture("generator_seed0.pt"),
        &Device::flex(),
        Some(UpsampleMode::AlignCorners),
    )
    .unwrap()
    .generator
}

fn tools() -> FfmpegTools {
    let tools = FfmpegTools::default();
    // CI installs ffmpeg (.ci/run); without it these tests fail, never skip.
    assert!(
        Command::new(&tools.ffmpeg).arg("-version").output().is_ok(),
        "ffmpeg is not installed (Debian: apt install ffmpeg)"
    );
    tools
}

/// A 2-second 96x64 clip at 25 fps with a 440 Hz tone, made by ffmpeg.
fn test_clip(dir: &Path) -> PathBuf {
    tools(); // fails with a clear message without ffmpeg
    let path = dir.join("clip.mp4");
    common::test_clip(&path, 2);
    path
}

/// `(codec_type, frames, rate, duration)` of every stream, read by ffprobe with
/// a full count of the decoded frames (not the container's claim).
fn streams(path: &Path) -> Vec<(String, u64, String, f64)> {
    let out = Command::new(tools().ffprobe)
        .args([
            "-v",
            "error",
            "-count_frames",
            "-print_format",
            "json",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (
                text("codec_type"),
                text("nb_read_frames").parse().unwrap_or(0),
                text("r_frame_rate"),
                text("duration").parse().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn styler(smoothing: Option<f64>, tile: usize) -> FrameStyler {
    let opts = ConvertOptions {
        tile,
        ..ConvertOptions::default()
    };
    FrameStyler::new(&generator(), opts, smoothing).unwrap()
}

/// Converts `clip` into `out` with smoothed statistics and H.264 (CRF default).
fn convert_clip(
    clip: &Path,
    out: &Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&VideoProgress),
) -> Result<VideoReport, VideoError> {
    convert_video(
        &mut styler(Some(DEFAULT_ALPHA), 1024),
        &tools(),
        clip,
        out,
        &EncodeSettings {
            codec: VideoCodec::H264,
            crf: None,
        },
        cancel,
        progress,
    )
}

/// The clip converts with the same number of frames, rate and duration, and
/// keeps its sound; nothing else is left in the folder.
#[test]
fn a_clip_converts_with_its_frames_rate_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let clip = test_clip(dir.path());
    let out = dir.path().join("out").join("anime.mp4");
    let mut seen = Vec::new();
    let report = convert_clip(&clip, &out, &AtomicBool::new(false), &mut |p| {
        seen.push((p.done, p.total));
    })
    .unwrap();
    assert_eq!(report.frames, 50);
    assert_eq!(seen.last(), Some(&(50, Some(50))));
    let s = streams(&out);
    let video = s.iter().find(|v| v.0 == "video").expect("a video stream");
    let audio = s.iter().find(|v| v.0 == "audio").expect("the audio stream");
    assert_eq!(video.1, 50, "{s:?}");
    assert_eq!(video.2, "25/1");
    assert!((video.3 - 2.0).abs() < 0.05, "{s:?}");
    assert!((audio.3 - 2.0).abs() < 0.1, "{s:?}");
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("anime.mp4")]);
    // The frames are the model's, not the clip's: the first output frame is the
    // styled first input frame (within the encoder's loss).
    let frame_at = |p: &Path| {
        let info = ffmpeg::probe(&tools(), p).unwrap();
        ffmpeg::frame_at(&tools(), p, &info, 0.0).unwrap()
    };
    let (first_in, first_out) = (frame_at(&clip), frame_at(&out));
    let expected = styler(None, 1024).style(&first_in).unwrap();
    let mad = |a: &RgbImage, b: &RgbImage| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.as_raw().len() as f64
    };
    assert!(
        mad(&first_out, &expected) < 6.0,
        "{}",
        mad(&first_out, &expected)
    );
    assert!(
        mad(&first_out, &first_in) > 20.0,
        "{}",
        mad(&first_out, &first_in)
    );
}

/// A photo seen by a static camera: a slow pan and zoom over a demo photo plus
/// sensor noise (±4 levels), `n` frames of `w` x `h`.
fn pan_zoom_clip(n: usize, w: u32, h: u32) -> Vec<RgbImage> {
    let photo = image::open(photo2anime::demo_dir().join("photos/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let (pw, ph) = (photo.width() as f32, photo.height() as f32);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 9) as f32 - 4.0
    };
    (0..n)
        .map(|t| {
            let zoom = 1.0 + 0.003 * t as f32;
            let scale = pw * 0.6 / w as f32 / zoom;
            let (cx, cy) = (pw * 0.5 + 0.6 * t as f32, ph * 0.45);
            RgbImage::from_fn(w, h, |x, y| {
                let sx = cx + (x as f32 - w as f32 / 2.0) * scale;
                let sy = cy + (y as f32 - h as f32 / 2.0) * scale;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let px = |dx: f32, dy: f32, c: usize| {
                    let xi = (x0 + dx).clamp(0.0, pw - 1.0) as u32;
                    let yi = (y0 + dy).clamp(0.0, ph - 1.0) as u32;
                    f32::from(photo.get_pixel(xi, yi).0[c])
                };
                let mut p = [0u8; 3];
                for (c, v) in p.iter_mut().enumerate() {
                    let top = px(0.0, 0.0, c) * (1.0 - fx) + px(1.0, 0.0, c) * fx;
                    let bottom = px(0.0, 1.0, c) * (1.0 - fx) + px(1.0, 1.0, c) * fx;
                    *v = (top * (1.0 - fy) + bottom * fy + noise())
                        .round()
                        .clamp(0.0, 255.0) as u8;
                }
                image::Rgb(p)
            })
        })
        .collect()
}

fn style_all(styler: &mut FrameStyler, frames: &[RgbImage]) -> Vec<RgbImage> {
    frames.iter().map(|f| styler.style(f).unwrap()).collect()
}

/// Flicker (output frame-to-frame change over the input's) on the pan/zoom
/// clip: at most 1.15 with smoothed statistics, and clearly lower than with
/// per-frame statistics (the baseline, printed beside it).
#[test]
fn smoothed_statistics_keep_flicker_down() {
    let frames = pan_zoom_clip(24, 160, 96);
    let smoothed = style_all(&mut styler(Some(DEFAULT_ALPHA), 1024), &frames);
    let per_frame = style_all(&mut styler(None, 1024), &frames);
    let (f_smooth, f_base) = (
        flicker_ratio(&frames, &smoothed),
        flicker_ratio(&frames, &per_frame),
    );
    println!("flicker: smoothed {f_smooth:.3}, per-frame statistics {f_base:.3}");
    assert!(
        f_smooth <= 1.15,
        "flicker {f_smooth:.3} > 1.15 (per-frame: {f_base:.3})"
    );
    assert!(
        f_smooth <= f_base,
        "smoothing made it worse: {f_smooth:.3} vs {f_base:.3}"
    );
}

/// A static shot whose left edge flashes: a strip `level` brighter on every other
/// frame (a light, a passing car), with sensor noise. Only the strip changes, but
/// per-frame statistics rescale the whole frame with it: the static right half
/// pumps.
fn flashing_clip(n: usize, level: i16) -> Vec<RgbImage> {
    let photo = image::open(photo2anime::demo_dir().join("photos/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let photo = image::imageops::resize(&photo, 256, 64, image::imageops::FilterType::Triangle);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|t| {
            RgbImage::from_fn(256, 64, |x, y| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let n = (state % 9) as i16 - 4;
                let flash = if t % 2 == 1 && x < 32 { level } else { 0 };
                image::Rgb(
                    photo
                        .get_pixel(x, y)
                        .0
                        .map(|v| (i16::from(v) + n + flash).clamp(0, 255) as u8),
                )
            })
        })
        .collect()
}

/// Mean frame-to-frame change of the part of the frame the strip cannot reach
/// through the network's receptive field (columns 192.., 160 px from the strip),
/// in 8-bit levels.
fn static_part_change(frames: &[RgbImage]) -> f64 {
    let halves: Vec<RgbImage> = frames
        .iter()
        .map(|f| image::imageops::crop_imm(f, 192, 0, f.width() - 192, f.height()).to_image())
        .collect();
    photo2anime::video::temporal::temporal_difference(&halves)
}

/// Pumping: where the picture does not change, per-frame statistics still move
/// the output when something else in the frame does; smoothed statistics hold it
/// (measured on the flashing clip, whose right part is static but for noise).
#[test]
fn smoothed_statistics_stop_pumping() {
    // The last 20 frames only: the average settles over the first ~1 / alpha.
    let steady = |out: Vec<RgbImage>| static_part_change(&out[out.len() - 20..]);
    let frames = flashing_clip(60, 60);
    let mut s = styler(Some(DEFAULT_ALPHA), 1024);
    let smoothed = steady(style_all(&mut s, &frames));
    assert_eq!(s.scene_cuts(), 0, "a flash taken for a scene cut");
    let per_frame = steady(style_all(&mut styler(None, 1024), &frames));
    // What the noise alone moves the static part by (no flash, per-frame statistics).
    let floor = steady(style_all(&mut styler(None, 1024), &flashing_clip(60, 0)));
    println!(
        "static part, mean change per frame: noise alone {floor:.3}, flashing with smoothed \
         statistics {smoothed:.3}, with per-frame statistics {per_frame:.3}"
    );
    assert!(
        per_frame > floor + 0.1,
        "the flash does not pump: {per_frame:.3} vs {floor:.3}"
    );
    assert!(
        smoothed - floor <= 0.15 * (per_frame - floor),
        "smoothed {smoothed:.3} vs per-frame {per_frame:.3} (noise alone {floor:.3})"
    );
}

/// The streamed pass (frames over the tile) applies the same smoothed statistics
/// as the whole-frame pass: outputs within 1/255 frame by frame.
#[test]
fn streamed_frames_use_the_same_smoothed_statistics() {
    let frames: Vec<RgbImage> = flashing_clip(4, 60)
        .iter()
        .map(|f| image::imageops::crop_imm(f, 0, 0, 160, 64).to_image())
        .collect();
    let whole = style_all(&mut styler(Some(0.3), 1024), &frames);
    let streamed = style_all(&mut styler(Some(0.3), 128), &frames);
    let per_frame = style_all(&mut styler(None, 128), &frames);
    let max = common::max_level_diff;
    for (i, (a, b)) in whole.iter().zip(&streamed).enumerate() {
        assert!(max(a, b) <= 1, "frame {i}: {}", max(a, b));
    }
    // And the smoothing does something there (the control).
    assert!(max(&streamed[3], &per_frame[3]) >= 2);
}

/// A scene cut resets the average: the first frame of the new shot is styled
/// exactly as on its own, and the cut is counted once.
#[test]
fn a_scene_cut_resets_the_smoothing() {
    let a = pan_zoom_clip(6, 128, 96);
    let b = image::open(photo2anime::demo_dir().join("photos/coffee_cup.jpg"))
        .unwrap()
        .to_rgb8();
    let b = image::imageops::resize(&b, 128, 96, image::imageops::FilterType::Triangle);
    let mut s = styler(Some(DEFAULT_ALPHA), 1024);
    style_all(&mut s, &a);
    assert_eq!(s.scene_cuts(), 0, "a cut inside one shot");
    let after_cut = s.style(&b).unwrap();
    assert_eq!(s.scene_cuts(), 1);
    let alone = styler(None, 1024).style(&b).unwrap();
    assert_eq!(after_cut, alone);
}

/// Cancel stops the job and leaves nothing behind; an existing file under the
/// output's name is untouched.
#[test]
fn cancel_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let clip = test_clip(dir.path());
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("anime.mp4");
    std::fs::write(&out, b"an older result").unwrap();
    let cancel = AtomicBool::new(false);
    let result = convert_clip(&clip, &out, &cancel, &mut |p| {
        if p.done == 10 {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert!(matches!(result, Err(VideoError::Cancelled)), "{result:?}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("anime.mp4")]);
    assert_eq!(std::fs::read(&out).unwrap(), b"an older result");
}

/// A corrupt clip and a missing ffmpeg are clear errors, and leave nothing.
#[test]
fn corrupt_clips_and_missing_ffmpeg_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let clip = test_clip(dir.path());
    let bytes = std::fs::read(&clip).unwrap();
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(&garbage, b"not a video at all").unwrap();
    let out = dir.path().join("out.mp4");
    let settings = EncodeSettings {
        codec: VideoCodec::H264,
        crf: None,
    };
    let run = |input: &Path, tools: &FfmpegTools| {
        convert_video(
            &mut styler(None, 1024),
            tools,
            input,
            &out,
            &settings,
            &AtomicBool::new(false),
            &mut |_| {},
        )
    };
    let e = run(&garbage, &tools()).unwrap_err();
    assert!(matches!(e, VideoError::Probe { .. }), "{e:?}");
    assert!(e.to_string().contains("garbage.mp4"), "{e}");
    // Truncated: either ffprobe refuses it or decoding stops with an error.
    let e = run(&corrupt, &tools()).unwrap_err();
    assert!(
        matches!(e, VideoError::Probe { .. } | VideoError::Decode { .. }),
        "{e:?}"
    );
    let missing = FfmpegTools {
        ffmpeg: dir.path().join("no-ffmpeg"),
        ffprobe: dir.path().join("no-ffprobe"),
    };
    let e = run(&clip, &missing).unwrap_err();
    assert!(matches!(e, VideoError::MissingTool { .. }), "{e:?}");
    assert!(e.to_string().contains("apt install ffmpeg"), "{e}");
    assert!(!out.exists());
    let left = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(left, 3, "temporary files were left behind");
    let e = run(&clip, &tools()).map(|_| ());
    assert!(e.is_ok(), "{e:?}");
    let wrong = convert_video(
        &mut styler(None, 1024),
        &tools(),
        &clip,
        &dir.path().join("out.gif"),
        &settings,
        &AtomicBool::new(false),
        &mut |_| {},
    );
    assert!(matches!(wrong, Err(VideoError::Options(_))), "{wrong:?}");
}

/// The command line: a clip converts to a file with its sound; without FFmpeg
/// the error names the package, and the exit code is non-zero.
#[test]
fn the_cli_converts_a_clip_and_names_the_missing_package() {
    let dir = tempfile::tempdir().unwrap();
    let clip = test_clip(dir.path());
    let out = dir.path().join("cli-anime.mp4");
    let model = common::fixture("generator_seed0.pt");
    let run = |extra_env: Option<(&str, &Path)>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_photo2anime"));
        cmd.args(["convert", "--device", "cpu", "--model"])
            .arg(&model)
            .arg(&clip)
            .arg("-o")
            .arg(&out);
        if let Some((k, v)) = extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let missing = run(Some(("PHOTO2ANIME_FFPROBE", &dir.path().join("none"))));
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("apt install ffmpeg"), "{stderr}");
    assert!(!out.exists());
    let ok = run(None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let s = streams(&out);
    assert!(s.iter().any(|v| v.0 == "video" && v.1 == 50), "{s:?}");
    assert!(s.iter().any(|v| v.0 == "audio"), "{s:?}");
}

/// A phone-style clip (rotation metadata of 90°) with non-square pixels (4:3)
/// converts upright: 64x96 frames, pixel aspect 3:4, no rotation left to apply,
/// and the first frame is the styled upright frame.
#[test]
fn a_rotated_anamorphic_clip_converts_upright_with_its_pixel_aspect() {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = tools().ffmpeg;
    let flat = dir.path().join("flat.mp4");
    let made = Command::new(&ffmpeg)
        .args(["-v", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=size=96x64:rate=25:duration=1",
            "-vf",
            "setsar=4/3",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&flat)
        .status()
        .unwrap();
    assert!(made.success());
    // The rotation as a display matrix, as phones write it (a stream copy keeps the pixels).
    let clip = dir.path().join("phone.mp4");
    let made = Command::new(&ffmpeg)
        .args(["-v", "error", "-y", "-i"])
        .arg(&flat)
        .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let input = ffmpeg::probe(&tools(), &clip).unwrap();
    assert_eq!(input.rotation.rem_euclid(180), 90, "{input:?}");
    assert_eq!(
        (input.width, input.height, input.pixel_aspect),
        (64, 96, (3, 4))
    );
    let out = dir.path().join("anime.mp4");
    convert_clip(&clip, &out, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let written = ffmpeg::probe(&tools(), &out).unwrap();
    assert_eq!(
        (
            written.width,
            written.height,
            written.pixel_aspect,
            written.rotation
        ),
        (64, 96, (3, 4), 0)
    );
    let first_in = ffmpeg::frame_at(&tools(), &clip, &input, 0.0).unwrap();
    assert_eq!(first_in.dimensions(), (64, 96), "frames decode upright");
    let first_out = ffmpeg::frame_at(&tools(), &out, &written, 0.0).unwrap();
    let expected = styler(None, 1024).style(&first_in).unwrap();
    let mad = first_out
        .as_raw()
        .iter()
        .zip(expected.as_raw())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / expected.as_raw().len() as f64;
    assert!(mad < 6.0, "{mad}");
}
