//! `photo2anime convert` on clips: a progress bar per clip, Ctrl-C cancels
//! cleanly (the partial output is removed), outputs that exist are skipped in
//! folders.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::ffmpeg::{EncodeSettings, FfmpegTools};
use super::{FrameStyler, Smoothing, VideoError, VideoJob, convert_video};
use crate::convert::ConvertOptions;
use crate::model::Generator;

/// How the CLI converts clips.
pub(crate) struct VideoRun<'a> {
    /// The generator (its weights go to the CPU engine).
    pub generator: &'a Generator,
    /// Photo options applied to every frame.
    pub opts: ConvertOptions,
    /// Temporal smoothing of the norm statistics.
    pub smoothing: Smoothing,
    /// Codec and quality.
    pub encode: EncodeSettings,
    /// Convert even when the output exists (a single named output).
    pub overwrite: bool,
}

/// Converts every job, one after another; Ctrl-C stops the current one and
/// removes its partial output.
pub(crate) fn run(jobs: &[VideoJob], run: &VideoRun) -> Result<()> {
    let tools = FfmpegTools::default();
    eprintln!("clips convert on the CPU engine (temporally smoothed statistics live there)");
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    // Fails only if a handler is set already (not in this command).
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let (mut converted, mut skipped, mut failed) = (0usize, 0usize, Vec::new());
    for job in jobs {
        if !run.overwrite && job.output.exists() {
            skipped += 1;
            continue;
        }
        match one(job, run, &tools, &cancel) {
            Ok(()) => converted += 1,
            // Ctrl-C reaches FFmpeg too (same process group), so a cancelled job
            // may also end as a decoding or encoding error.
            Err(_) if cancel.load(Ordering::SeqCst) => {
                bail!("cancelled; {} left as it was", job.output.display())
            }
            Err(VideoError::Cancelled) => {
                bail!("cancelled; {} left as it was", job.output.display())
            }
            Err(e @ VideoError::MissingTool { .. }) => return Err(e.into()),
            Err(e) => {
                eprintln!("failed: {}: {e}", job.input.display());
                failed.push(job.input.clone());
            }
        }
    }
    if jobs.len() > 1 {
        println!(
            "videos: converted {converted}, skipped {skipped} existing, {} failed",
            failed.len()
        );
    }
    if !failed.is_empty() && converted == 0 {
        bail!("no video could be converted");
    }
    Ok(())
}

fn one(
    job: &VideoJob,
    run: &VideoRun,
    tools: &FfmpegTools,
    cancel: &AtomicBool,
) -> Result<(), VideoError> {
    let mut styler = FrameStyler::new(run.generator, run.opts, run.smoothing)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} frames, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(file_name(&job.input));
    let report = convert_video(
        &mut styler,
        tools,
        &job.input,
        &job.output,
        &run.encode,
        cancel,
        &mut |p| {
            if let Some(t) = p.total {
                bar.set_length(t);
            }
            bar.set_position(p.done);
        },
    );
    bar.finish_and_clear();
    let report = report?;
    eprintln!(
        "{}: {} frames ({}x{} at {:.3} fps) in {:.1} s ({:.2} frames/s){}",
        file_name(&job.input),
        report.frames,
        report.info.width,
        report.info.height,
        report.info.rate.fps(),
        report.seconds,
        report.frames as f64 / report.seconds.max(1e-9),
        match report.scene_cuts {
            0 => String::new(),
            n => format!(", {n} scene cuts"),
        }
    );
    println!("{}", report.output.display());
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    )
}
