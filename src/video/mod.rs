//! Video: clips converted frame by frame without flicker, with their sound.
//!
//! Frames flow decode → style → encode through bounded channels (two frames in
//! each), so memory stays that of one frame's conversion: a 4K clip takes what a
//! 4K photo takes ([`crate::model::cpu::streamed`]). FFmpeg decodes and encodes
//! as child processes ([`ffmpeg`]); the generator runs on the CPU engine with
//! every GroupNorm's statistics smoothed over frames ([`temporal`]), which is
//! what stops brightness and colour from pumping. The output is written to a
//! hidden temporary file beside it and renamed into place when complete, so a
//! cancelled or failed job leaves nothing under the final name.

pub(crate) mod cli;
pub mod ffmpeg;
pub mod temporal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};
use image::RgbImage;

use crate::convert::{self, ConvertOptions, STREAMED_BAND_VALUES};
use crate::model::Generator;
use crate::model::cpu::streamed::streamed_peak_bytes;
use crate::model::cpu::{CpuGenerator, EngineError};
use crate::model::upsample::UpsampleMode;
use ffmpeg::{Container, Decoder, EncodeSettings, Encoder, FfmpegTools, VideoInfo};
use temporal::TemporalNorm;

/// File extensions taken as video.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg"];

/// Whether `path` has a video extension.
pub fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Why a video could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` or `ffprobe` is not installed (or not runnable).
    #[error("`{program}` was not found: {hint}", hint = ffmpeg::INSTALL_HINT)]
    MissingTool {
        /// The program looked for.
        program: String,
    },
    /// A program could not be started or waited for.
    #[error("{program}: {reason}")]
    Tool {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// `ffprobe` could not read the clip.
    #[error("{path}: not a readable video: {reason}")]
    Probe {
        /// The clip.
        path: PathBuf,
        /// ffprobe's message.
        reason: String,
    },
    /// Decoding failed part-way.
    #[error("{path}: decoding failed: {reason}")]
    Decode {
        /// The clip.
        path: PathBuf,
        /// ffmpeg's message.
        reason: String,
    },
    /// Encoding failed.
    #[error("{path}: encoding failed: {reason}")]
    Encode {
        /// The output.
        path: PathBuf,
        /// ffmpeg's message.
        reason: String,
    },
    /// Invalid options (output format, codec).
    #[error("{0}")]
    Options(String),
    /// Frames too large for the memory budget.
    #[error(
        "{width}x{height} frames need ~{need_mib} MiB, over this machine's budget of {budget_mib} MiB"
    )]
    TooLarge {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Estimated peak.
        need_mib: u64,
        /// The budget ([`convert::streamed_budget_bytes`]).
        budget_mib: u64,
    },
    /// The model could not be loaded into the CPU engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A frame could not be turned back into an image.
    #[error(transparent)]
    Readback(#[from] crate::tensor_image::ReadbackError),
    /// The conversion panicked on a frame (a bug; the app stays up).
    #[error("the conversion crashed on frame {frame}")]
    Crashed {
        /// Zero-based frame index.
        frame: u64,
    },
    /// The output file could not be put in place.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Cancelled; nothing was written under the output's name.
    #[error("cancelled")]
    Cancelled,
}

/// Temporal smoothing of the norm statistics: the current frame's share (see
/// [`temporal::DEFAULT_ALPHA`]); `None` = every frame its own (flickers).
pub type Smoothing = Option<f64>;

/// Styles the frames of one clip, in order: the generator on the CPU engine with
/// temporally smoothed statistics, then the photo finishing touches.
pub struct FrameStyler {
    engine: CpuGenerator,
    upsample: UpsampleMode,
    opts: ConvertOptions,
    temporal: Option<TemporalNorm>,
}

impl FrameStyler {
    /// For `g` (any device: its weights are copied to the CPU engine) with the
    /// photo options `opts` (`tile`: frames with a larger side stream in bands of
    /// rows; the finishing touches) and `smoothing`.
    ///
    /// # Errors
    /// [`VideoError::Engine`] when the weights cannot be read.
    pub fn new(
        g: &Generator,
        opts: ConvertOptions,
        smoothing: Smoothing,
    ) -> Result<Self, VideoError> {
        Ok(Self {
            engine: CpuGenerator::new(g)?,
            upsample: g.upsample,
            opts,
            temporal: smoothing.map(TemporalNorm::new),
        })
    }

    /// Scene cuts the smoothing has reset at so far.
    pub fn scene_cuts(&self) -> u64 {
        self.temporal.as_ref().map_or(0, TemporalNorm::cuts)
    }

    /// Checks that frames of `w` x `h` fit the memory budget.
    ///
    /// # Errors
    /// [`VideoError::TooLarge`].
    pub fn check_size(&self, w: u32, h: u32) -> Result<(), VideoError> {
        let (tw, th) = convert::network_size_for(self.upsample, w as usize, h as usize);
        if !self.streams(w, h) {
            return Ok(());
        }
        let need = streamed_peak_bytes(th, tw);
        let budget = convert::streamed_budget_bytes();
        if need > budget {
            return Err(VideoError::TooLarge {
                width: w,
                height: h,
                need_mib: need >> 20,
                budget_mib: budget >> 20,
            });
        }
        Ok(())
    }

    fn streams(&self, w: u32, h: u32) -> bool {
        let tile = self.opts.tile;
        tile > 0 && (w as usize > tile || h as usize > tile)
    }

    /// The next frame of the clip, styled.
    ///
    /// # Errors
    /// [`VideoError::Readback`] if the output cannot be turned into an image.
    pub fn style(&mut self, frame: &RgbImage) -> Result<RgbImage, VideoError> {
        let (w, h) = frame.dimensions();
        let (tw, th) = convert::network_size_for(self.upsample, w as usize, h as usize);
        let padded = convert::pad_image(frame, tw, th);
        let map = convert::tiles::image_map(&padded);
        drop(padded);
        if let Some(t) = self.temporal.as_mut() {
            t.start_frame();
        }
        let streams = self.streams(w, h);
        let policy = self
            .temporal
            .as_mut()
            .map(|t| t as &mut dyn crate::model::cpu::NormStatistics);
        let out = if streams {
            self.engine
                .forward_streamed_with(&map, STREAMED_BAND_VALUES, policy)
        } else {
            match policy {
                Some(p) => self.engine.forward_with_statistics(map, p),
                None => self.engine.forward(map, None),
            }
        };
        let raw = crate::tensor_image::floats_to_images(&out.data, 1, th, tw)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                crate::tensor_image::ReadbackError("the network returned no frame".to_string())
            })?;
        let raw = image::imageops::crop_imm(&raw, 0, 0, w, h).to_image();
        Ok(convert::finishing_touches(&raw, frame, &self.opts))
    }
}

/// Progress of a video conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoProgress {
    /// Frames converted.
    pub done: u64,
    /// Frames in the clip, when known.
    pub total: Option<u64>,
    /// Frames per second so far.
    pub fps: f64,
    /// Seconds left at that speed, when the total is known.
    pub eta_s: Option<f64>,
}

/// What a finished conversion did.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoReport {
    /// The file written.
    pub output: PathBuf,
    /// Frames converted.
    pub frames: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Scene cuts the smoothing reset at.
    pub scene_cuts: u64,
    /// The clip as probed.
    pub info: VideoInfo,
}

/// Messages to the encoder thread.
enum ToEncoder {
    /// The next styled frame.
    Frame(RgbImage),
    /// All frames sent: finish the file. Without it (the sender dropped), the
    /// encoder is killed and its output discarded.
    Finish,
}

/// Converts the clip `input` into `output` (.mp4, .mov, .mkv or .webm) with
/// `styler`, keeping its audio, frame rate and pixel aspect (rotated clips are
/// converted and written upright). `progress` is called after every frame; set
/// `cancel` to stop (→ [`VideoError::Cancelled`]). On any error nothing is left
/// under `output`'s name (an existing file there is untouched).
///
/// # Errors
/// See [`VideoError`].
pub fn convert_video(
    styler: &mut FrameStyler,
    tools: &FfmpegTools,
    input: &Path,
    output: &Path,
    encode: &EncodeSettings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&VideoProgress),
) -> Result<VideoReport, VideoError> {
    let container = Container::of(output)?;
    let info = ffmpeg::probe(tools, input)?;
    styler.check_size(info.width, info.height)?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |reason: String| VideoError::Write {
        path: output.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| write_err(e.to_string()))?;
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_default();
    let suffix = format!(".partial.{ext}");
    let temp = crate::fsx::temp_builder(".photo2anime-", &suffix)
        .tempfile_in(&dir)
        .map_err(|e| write_err(e.to_string()))?
        .into_temp_path();
    let mut decoder = Decoder::start(tools, input, &info)?;
    let encoder = Encoder::start(tools, input, &info, &temp, container, encode)?;
    let started = Instant::now();
    let frames = std::thread::scope(|s| -> Result<u64, VideoError> {
        let (frame_tx, frame_rx) = bounded::<Result<RgbImage, VideoError>>(2);
        let (enc_tx, enc_rx) = bounded::<ToEncoder>(2);
        s.spawn(move || decode_loop(&mut decoder, &frame_tx, cancel));
        let encoding = s.spawn(move || encode_loop(encoder, &enc_rx));
        let styled = style_loop(styler, &frame_rx, &enc_tx, cancel, &info, started, progress);
        drop(frame_rx);
        match styled {
            Ok(n) => {
                // The encoder is still running, so this send only fails if it died.
                let _ = enc_tx.send(ToEncoder::Finish);
                drop(enc_tx);
                join(encoding)?;
                Ok(n)
            }
            Err(e) => {
                drop(enc_tx);
                // Its own error (a dead encoder) explains a failed send best.
                match join(encoding) {
                    Err(enc) if matches!(e, VideoError::Encode { .. }) => Err(enc),
                    _ => Err(e),
                }
            }
        }
    })?;
    if frames == 0 {
        return Err(VideoError::Decode {
            path: input.to_path_buf(),
            reason: "no frames".to_string(),
        });
    }
    crate::fsx::persist_synced(temp, output).map_err(|e| write_err(e.to_string()))?;
    Ok(VideoReport {
        output: output.to_path_buf(),
        frames,
        seconds: started.elapsed().as_secs_f64(),
        scene_cuts: styler.scene_cuts(),
        info,
    })
}

/// The encoder thread's result.
fn join(h: std::thread::ScopedJoinHandle<'_, Result<(), VideoError>>) -> Result<(), VideoError> {
    h.join().unwrap_or_else(|_| {
        Err(VideoError::Encode {
            path: PathBuf::new(),
            reason: "the encoder thread crashed".to_string(),
        })
    })
}

fn decode_loop(
    decoder: &mut Decoder,
    tx: &Sender<Result<RgbImage, VideoError>>,
    cancel: &AtomicBool,
) {
    while !cancel.load(Ordering::Relaxed) {
        let next = decoder.next_frame();
        let end = !matches!(next, Ok(Some(_)));
        let sent = match next {
            Ok(Some(f)) => tx.send(Ok(f)),
            Ok(None) => break,
            Err(e) => tx.send(Err(e)),
        };
        if end || sent.is_err() {
            break;
        }
    }
}

fn encode_loop(mut encoder: Encoder, rx: &Receiver<ToEncoder>) -> Result<(), VideoError> {
    for msg in rx {
        match msg {
            ToEncoder::Frame(f) => encoder.write(&f)?,
            ToEncoder::Finish => return encoder.finish(),
        }
    }
    // Abandoned: dropping the encoder kills ffmpeg; the temporary file goes with the caller.
    Err(VideoError::Cancelled)
}

fn style_loop(
    styler: &mut FrameStyler,
    rx: &Receiver<Result<RgbImage, VideoError>>,
    tx: &Sender<ToEncoder>,
    cancel: &AtomicBool,
    info: &VideoInfo,
    started: Instant,
    progress: &mut dyn FnMut(&VideoProgress),
) -> Result<u64, VideoError> {
    let mut done = 0u64;
    for frame in rx {
        if cancel.load(Ordering::Relaxed) {
            return Err(VideoError::Cancelled);
        }
        let frame = frame?;
        let styled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| styler.style(&frame)))
                .map_err(|_| VideoError::Crashed { frame: done })??;
        if tx.send(ToEncoder::Frame(styled)).is_err() {
            return Err(VideoError::Encode {
                path: PathBuf::new(),
                reason: "the encoder stopped".to_string(),
            });
        }
        done += 1;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let fps = done as f64 / secs;
        let total = info.frames.map(|t| t.max(done));
        progress(&VideoProgress {
            done,
            total,
            fps,
            eta_s: total.map(|t| (t - done) as f64 / fps),
        });
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(VideoError::Cancelled);
    }
    Ok(done)
}

/// One planned video conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoJob {
    /// The clip.
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
}

/// The videos in `inputs` (files, and folders searched recursively), each with an
/// output under `out_dir` keeping its folder tree, as `ext` (default mp4).
pub fn plan_video_jobs(inputs: &[PathBuf], out_dir: &Path, ext: &str) -> Vec<VideoJob> {
    let mut jobs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for path in convert::files_under(input, has_video_extension) {
                let rel = path.strip_prefix(input).unwrap_or(&path);
                jobs.push(VideoJob {
                    output: out_dir.join(rel).with_extension(ext),
                    input: path,
                });
            }
        } else if has_video_extension(input) {
            let name = input
                .file_stem()
                .map_or_else(|| "video".to_string(), |s| s.to_string_lossy().to_string());
            jobs.push(VideoJob {
                input: input.clone(),
                output: out_dir.join(format!("{name}.{ext}")),
            });
        }
    }
    jobs.sort_by(|a, b| a.input.cmp(&b.input));
    jobs
}
