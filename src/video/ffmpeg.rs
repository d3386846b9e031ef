//! FFmpeg as child processes: `ffprobe` reads a clip's streams, one `ffmpeg`
//! decodes its video to raw RGB frames on a pipe, another encodes our frames
//! from a pipe and copies the clip's audio in.
//!
//! Why programs and not a libav* binding: the programs are what video people
//! already have (Debian's `ffmpeg` package, Homebrew, winget), they add nothing
//! to a build that already takes ~40 minutes on two cores (`ffmpeg-next` would
//! need the libav*-dev headers and bindgen/clang at build time and ties us to one
//! libav ABI), and a crash or hang in a codec stays in another process that we
//! can kill.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use image::RgbImage;
use serde::Deserialize;

use super::VideoError;

/// Where the `ffmpeg` and `ffprobe` programs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegTools {
    /// The `ffmpeg` program.
    pub ffmpeg: PathBuf,
    /// The `ffprobe` program.
    pub ffprobe: PathBuf,
}

impl Default for FfmpegTools {
    /// `ffmpeg` / `ffprobe` from `PATH`, or `PHOTO2ANIME_FFMPEG` / `PHOTO2ANIME_FFPROBE`.
    fn default() -> Self {
        let pick = |var: &str, name: &str| {
            std::env::var_os(var).map_or_else(|| PathBuf::from(name), PathBuf::from)
        };
        Self {
            ffmpeg: pick("PHOTO2ANIME_FFMPEG", "ffmpeg"),
            ffprobe: pick("PHOTO2ANIME_FFPROBE", "ffprobe"),
        }
    }
}

/// How to install FFmpeg, for the message of a missing program.
pub const INSTALL_HINT: &str = "install FFmpeg: Debian/Ubuntu `sudo apt install ffmpeg`, \
     Fedora `sudo dnf install ffmpeg`, macOS `brew install ffmpeg`, Windows `winget install ffmpeg`";

/// Starts `cmd`, turning "not found" into [`VideoError::MissingTool`].
fn spawn(cmd: &mut Command, program: &Path) -> Result<Child, VideoError> {
    cmd.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::PermissionDenied => VideoError::MissingTool {
            program: program.display().to_string(),
        },
        _ => VideoError::Tool {
            program: program.display().to_string(),
            reason: e.to_string(),
        },
    })
}

/// A video stream's frame rate as a fraction (`30000/1001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Frames ...
    pub num: u32,
    /// ... per this many seconds.
    pub den: u32,
}

impl Rate {
    /// Frames per second.
    pub fn fps(self) -> f64 {
        self.num as f64 / self.den.max(1) as f64
    }

    fn parse(s: &str) -> Option<Self> {
        let (n, d) = s.split_once('/').unwrap_or((s, "1"));
        let (num, den) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
        (num > 0 && den > 0).then_some(Self { num, den })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// What [`probe`] found in a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Frame size as decoded (upright: rotation metadata already applied).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Frame rate the frames are decoded at (constant).
    pub rate: Rate,
    /// Duration in seconds, when known.
    pub duration_s: Option<f64>,
    /// Frames at `rate` over `duration_s` (an estimate for variable-rate clips).
    pub frames: Option<u64>,
    /// Pixel aspect ratio of the upright frames (`num:den`, 1:1 for square pixels).
    pub pixel_aspect: (u32, u32),
    /// Rotation the clip's metadata asks for (degrees; frames are decoded upright).
    pub rotation: i32,
    /// Codec names of the audio streams (copied into the output).
    pub audio_codecs: Vec<String>,
    /// Video codec name.
    pub codec: String,
}

#[derive(Deserialize)]
struct ProbeOut {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    sample_aspect_ratio: Option<String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

/// Reads `input`'s streams with `ffprobe`.
///
/// # Errors
/// [`VideoError::MissingTool`] without `ffprobe`; [`VideoError::Probe`] when it
/// cannot read the file or finds no video stream.
pub fn probe(tools: &FfmpegTools, input: &Path) -> Result<VideoInfo, VideoError> {
    let out = spawn(
        Command::new(&tools.ffprobe)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_streams",
                "-show_format",
            ])
            .arg(input)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        &tools.ffprobe,
    )?
    .wait_with_output()
    .map_err(|e| VideoError::Tool {
        program: tools.ffprobe.display().to_string(),
        reason: e.to_string(),
    })?;
    let fail = |reason: String| VideoError::Probe {
        path: input.to_path_buf(),
        reason,
    };
    if !out.status.success() {
        return Err(fail(last_lines(&out.stderr)));
    }
    let parsed: ProbeOut = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("unreadable ffprobe output: {e}")))?;
    let video = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .ok_or_else(|| fail("no video stream".to_string()))?;
    let (Some(w), Some(h)) = (video.width, video.height) else {
        return Err(fail("the video stream has no frame size".to_string()));
    };
    if w == 0 || h == 0 {
        return Err(fail(format!("frame size {w}x{h}")));
    }
    // The average rate is the clip's real one for variable-rate phone clips; the
    // "real base" rate can be a multiple of it.
    let rate = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .flatten()
        .find_map(|s| Rate::parse(s))
        .ok_or_else(|| fail("unknown frame rate".to_string()))?;
    let rotation = rotation_of(video);
    let quarter_turn = rotation.rem_euclid(180) == 90;
    let (width, height) = if quarter_turn { (h, w) } else { (w, h) };
    let sar = video
        .sample_aspect_ratio
        .as_deref()
        .and_then(|s| {
            let (n, d) = s.split_once(':')?;
            let (n, d): (u32, u32) = (n.parse().ok()?, d.parse().ok()?);
            (n > 0 && d > 0).then_some((n, d))
        })
        .unwrap_or((1, 1));
    let pixel_aspect = if quarter_turn { (sar.1, sar.0) } else { sar };
    let duration_s = video
        .duration
        .as_deref()
        .or(parsed.format.as_ref().and_then(|f| f.duration.as_deref()))
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    let frames = duration_s
        .map(|d| (d * rate.fps()).round() as u64)
        .or_else(|| video.nb_frames.as_deref().and_then(|n| n.parse().ok()));
    Ok(VideoInfo {
        width,
        height,
        rate,
        duration_s,
        frames,
        pixel_aspect,
        rotation,
        audio_codecs: parsed
            .streams
            .iter()
            .filter(|s| s.codec_type.as_deref() == Some("audio"))
            .map(|s| s.codec_name.clone().unwrap_or_default())
            .collect(),
        codec: video.codec_name.clone().unwrap_or_default(),
    })
}

/// The rotation in degrees from a stream's display matrix or `rotate` tag.
fn rotation_of(s: &ProbeStream) -> i32 {
    let from_matrix = s
        .side_data_list
        .iter()
        .find_map(|d| d.get("rotation").and_then(serde_json::Value::as_f64));
    let from_tag = s.tags.get("rotate").and_then(|r| r.parse::<f64>().ok());
    from_matrix.or(from_tag).map_or(0, |r| r.round() as i32)
}

/// The last few lines of a program's stderr, for an error message.
fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(4)..].join("; ");
    if tail.is_empty() {
        "ffmpeg failed without a message".to_string()
    } else {
        tail
    }
}

/// Reads a child's whole stderr on a thread (so a chatty child never blocks on a full pipe).
fn drain_stderr(child: &mut Child) -> std::thread::JoinHandle<Vec<u8>> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stderr {
            // A read error only shortens the message.
            let _ = s.read_to_end(&mut buf);
        }
        buf
    })
}

/// The last lines of what [`drain_stderr`] collected (once; empty afterwards).
fn joined_stderr(handle: &mut Option<std::thread::JoinHandle<Vec<u8>>>) -> String {
    let bytes = handle
        .take()
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    last_lines(&bytes)
}

/// Kills a child and reaps it (it may have exited already).
fn stop(child: &mut Child) {
    // Both fail only when the child is gone already, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

/// An `ffmpeg` decoding a clip's first video stream to upright RGB frames at a
/// constant rate.
pub struct Decoder {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    width: u32,
    height: u32,
    path: PathBuf,
}

impl Decoder {
    /// Starts decoding `input` (described by `info`).
    ///
    /// # Errors
    /// [`VideoError::MissingTool`] without `ffmpeg`.
    pub fn start(tools: &FfmpegTools, input: &Path, info: &VideoInfo) -> Result<Self, VideoError> {
        let mut child = spawn(
            Command::new(&tools.ffmpeg)
                .args(["-v", "error", "-nostdin", "-i"])
                .arg(input)
                .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
                // A constant rate, so frame i is at i / rate in the output and the
                // audio stays in sync for variable-rate clips.
                .args(["-vf", &format!("fps={}", info.rate)])
                .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            &tools.ffmpeg,
        )?;
        let stderr = Some(drain_stderr(&mut child));
        let stdout = child.stdout.take().ok_or_else(|| VideoError::Tool {
            program: tools.ffmpeg.display().to_string(),
            reason: "no output pipe".to_string(),
        })?;
        Ok(Self {
            child,
            stdout,
            stderr,
            width: info.width,
            height: info.height,
            path: input.to_path_buf(),
        })
    }

    /// The next frame; `None` at the end of the clip.
    ///
    /// # Errors
    /// [`VideoError::Decode`] when ffmpeg fails or stops inside a frame.
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>, VideoError> {
        let len = self.width as usize * self.height as usize * 3;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e.to_string())),
            }
        }
        if filled == 0 {
            let status = self.child.wait().map_err(|e| self.fail(e.to_string()))?;
            if !status.success() {
                let msg = self.stderr_text();
                return Err(self.fail(msg));
            }
            return Ok(None);
        }
        if filled < len {
            stop(&mut self.child);
            let msg = self.stderr_text();
            return Err(self.fail(format!(
                "the stream ended inside a frame ({filled} of {len} bytes): {msg}"
            )));
        }
        RgbImage::from_raw(self.width, self.height, buf)
            .map(Some)
            .ok_or_else(|| self.fail("frame buffer of the wrong size".to_string()))
    }

    fn stderr_text(&mut self) -> String {
        joined_stderr(&mut self.stderr)
    }

    fn fail(&self, reason: String) -> VideoError {
        VideoError::Decode {
            path: self.path.clone(),
            reason,
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Video codecs the encoder writes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
pub enum VideoCodec {
    /// H.264 (libx264): plays everywhere.
    #[default]
    H264,
    /// H.265 / HEVC (libx265): about half the size at the same quality.
    H265,
    /// VP9 (libvpx-vp9): for .webm.
    Vp9,
}

impl VideoCodec {
    fn encoder(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::H265 => "libx265",
            VideoCodec::Vp9 => "libvpx-vp9",
        }
    }

    /// The codec's default constant-quality value (visually lossless-ish for cartoons).
    pub fn default_crf(self) -> u32 {
        match self {
            VideoCodec::H264 => 18,
            VideoCodec::H265 => 22,
            VideoCodec::Vp9 => 28,
        }
    }

    /// Its name as the CLI and the studio write it.
    pub fn label(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
            VideoCodec::Vp9 => "VP9",
        }
    }

    /// The file extension of its usual container: `.webm` for VP9, else `.mp4`.
    pub fn extension(self) -> &'static str {
        match self {
            VideoCodec::H264 | VideoCodec::H265 => "mp4",
            VideoCodec::Vp9 => "webm",
        }
    }
}

/// Quality presets for the studio's video conversion: the codec's default
/// constant-quality value, or that value moved towards better quality or smaller
/// files (CRF steps: each 6 roughly halves or doubles the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum VideoQuality {
    /// 4 CRF steps better than the default: for footage that will be edited further.
    Best,
    /// The codec's default.
    #[default]
    Standard,
    /// 6 CRF steps worse: about half the file size.
    Smaller,
}

impl VideoQuality {
    /// Every preset, best first.
    pub const ALL: [VideoQuality; 3] = [Self::Best, Self::Standard, Self::Smaller];

    /// Its name in the studio.
    pub fn label(self) -> &'static str {
        match self {
            Self::Best => "Best (larger file)",
            Self::Standard => "Standard",
            Self::Smaller => "Smaller file",
        }
    }

    /// The CRF it means for `codec`.
    pub fn crf(self, codec: VideoCodec) -> u32 {
        let base = codec.default_crf();
        match self {
            Self::Best => base - 4,
            Self::Standard => base,
            Self::Smaller => base + 6,
        }
    }
}

/// Containers the encoder writes, from the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// .mp4 / .m4v
    Mp4,
    /// .mov
    Mov,
    /// .mkv
    Matroska,
    /// .webm (VP9 only)
    Webm,
}

impl Container {
    /// From an output path's extension.
    ///
    /// # Errors
    /// [`VideoError::Options`] for an extension we do not write.
    pub fn of(path: &Path) -> Result<Self, VideoError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "mp4" | "m4v" => Container::Mp4,
            "mov" => Container::Mov,
            "mkv" => Container::Matroska,
            "webm" => Container::Webm,
            _ => {
                return Err(VideoError::Options(format!(
                    "{}: write .mp4, .mov, .mkv or .webm",
                    path.display()
                )));
            }
        })
    }

    fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Matroska => "matroska",
            Container::Webm => "webm",
        }
    }

    /// Whether an audio codec can be copied into this container as it is.
    fn takes_audio(self, codec: &str) -> bool {
        match self {
            Container::Matroska => true,
            Container::Webm => matches!(codec, "opus" | "vorbis"),
            Container::Mp4 | Container::Mov => {
                matches!(codec, "aac" | "mp3" | "ac3" | "eac3" | "alac")
            }
        }
    }
}

/// How [`Encoder`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    /// Video codec.
    pub codec: VideoCodec,
    /// Constant-quality value (lower is better; `None`: the codec's default).
    pub crf: Option<u32>,
}

/// An `ffmpeg` encoding RGB frames from a pipe, with the source clip's audio.
pub struct Encoder {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    path: PathBuf,
}

impl Encoder {
    /// Starts writing `output` (format `container`) from frames of `info`'s size
    /// and rate, taking the audio streams of `source`.
    ///
    /// # Errors
    /// [`VideoError::MissingTool`] without `ffmpeg`; [`VideoError::Options`] for
    /// VP9 outside .webm/.mkv or H.26x in .webm.
    pub fn start(
        tools: &FfmpegTools,
        source: &Path,
        info: &VideoInfo,
        output: &Path,
        container: Container,
        settings: &EncodeSettings,
    ) -> Result<Self, VideoError> {
        match (container, settings.codec) {
            (Container::Webm, VideoCodec::H264 | VideoCodec::H265) => {
                return Err(VideoError::Options(
                    ".webm takes VP9 video; pick VP9 or write .mp4".to_string(),
                ));
            }
            (Container::Mp4 | Container::Mov | Container::Matroska | Container::Webm, _) => {}
        }
        let crf = settings
            .crf
            .unwrap_or_else(|| settings.codec.default_crf())
            .min(63);
        let audio: Vec<&str> = if info.audio_codecs.is_empty() {
            vec![]
        } else if info.audio_codecs.iter().all(|c| container.takes_audio(c)) {
            vec!["-map", "1:a", "-c:a", "copy"]
        } else if container == Container::Webm {
            vec!["-map", "1:a", "-c:a", "libopus", "-b:a", "160k"]
        } else {
            vec!["-map", "1:a", "-c:a", "aac", "-b:a", "192k"]
        };
        let (sar_n, sar_d) = info.pixel_aspect;
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-v", "error", "-nostdin", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{}x{}", info.width, info.height)])
            .args(["-framerate", &info.rate.to_string()])
            .args(["-i", "pipe:0"])
            // The source again, for its audio; its rotation is in our frames already.
            .arg("-noautorotate")
            .arg("-i")
            .arg(source)
            .args(["-map", "0:v:0"])
            .args(audio)
            // 4:2:0 needs even sides: drop an odd last row/column rather than pad black.
            .args([
                "-vf",
                &format!("crop=trunc(iw/2)*2:trunc(ih/2)*2,setsar={sar_n}/{sar_d}"),
            ])
            .args(["-c:v", settings.codec.encoder()])
            .args(["-crf", &crf.to_string()])
            .args(["-pix_fmt", "yuv420p"]);
        match settings.codec {
            VideoCodec::H264 | VideoCodec::H265 => {
                cmd.args(["-preset", "medium"]);
            }
            VideoCodec::Vp9 => {
                cmd.args(["-b:v", "0", "-row-mt", "1"]);
            }
        }
        if settings.codec == VideoCodec::H265 && container != Container::Matroska {
            // Apple players need the hvc1 tag.
            cmd.args(["-tag:v", "hvc1"]);
        }
        if matches!(container, Container::Mp4 | Container::Mov) {
            cmd.args(["-movflags", "+faststart"]);
        }
        cmd.args(["-f", container.muxer()])
            .arg(output)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd, &tools.ffmpeg)?;
        let stderr = Some(drain_stderr(&mut child));
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            stderr,
            path: output.to_path_buf(),
        })
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// [`VideoError::Encode`] when ffmpeg has stopped (its message included).
    pub fn write(&mut self, frame: &RgbImage) -> Result<(), VideoError> {
        let written = match self.stdin.as_mut() {
            Some(s) => s.write_all(frame.as_raw()),
            None => Err(std::io::Error::new(ErrorKind::BrokenPipe, "closed")),
        };
        written.map_err(|e| {
            stop(&mut self.child);
            let msg = self.stderr_text();
            self.fail(format!("{e}: {msg}"))
        })
    }

    /// Closes the pipe and waits for ffmpeg to finish the file.
    ///
    /// # Errors
    /// [`VideoError::Encode`] when ffmpeg fails.
    pub fn finish(mut self) -> Result<(), VideoError> {
        drop(self.stdin.take());
        let status = self.child.wait().map_err(|e| self.fail(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            let msg = self.stderr_text();
            Err(self.fail(msg))
        }
    }

    fn stderr_text(&mut self) -> String {
        joined_stderr(&mut self.stderr)
    }

    fn fail(&self, reason: String) -> VideoError {
        VideoError::Encode {
            path: self.path.clone(),
            reason,
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        stop(&mut self.child);
    }
}

/// Decodes the frame at `time_s` (clamped into the clip) of `input`, which
/// [`probe`] described as `info`, as an upright RGB image: the studio's preview
/// and scrubber.
///
/// # Errors
/// [`VideoError::MissingTool`] without `ffmpeg`; [`VideoError::Decode`] if no frame comes out.
pub fn frame_at(
    tools: &FfmpegTools,
    input: &Path,
    info: &VideoInfo,
    time_s: f64,
) -> Result<RgbImage, VideoError> {
    let t = match info.duration_s {
        Some(d) => time_s.clamp(0.0, (d - 1.0 / info.rate.fps()).max(0.0)),
        None => time_s.max(0.0),
    };
    let mut child = spawn(
        Command::new(&tools.ffmpeg)
            .args(["-v", "error", "-nostdin"])
            // Input seeking: fast (from the nearest keyframe) and exact since ffmpeg 2.1.
            .args(["-ss", &format!("{t:.3}"), "-i"])
            .arg(input)
            .args(["-map", "0:v:0", "-frames:v", "1"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        &tools.ffmpeg,
    )?;
    let stderr = drain_stderr(&mut child);
    let mut bytes = Vec::new();
    let read = child.stdout.take().map(|mut s| s.read_to_end(&mut bytes));
    let status = child.wait();
    let message = last_lines(&stderr.join().unwrap_or_default());
    let fail = |reason: String| VideoError::Decode {
        path: input.to_path_buf(),
        reason,
    };
    match (read, status) {
        (Some(Ok(_)), Ok(s)) if s.success() => {}
        _ => return Err(fail(message)),
    }
    let len = info.width as usize * info.height as usize * 3;
    bytes.truncate(len);
    RgbImage::from_raw(info.width, info.height, bytes)
        .ok_or_else(|| fail(format!("no frame at {t:.2} s")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The studio's presets move each codec's default CRF by -4 / 0 / +6.
    #[test]
    fn quality_presets_map_to_crf() {
        let crfs = |c: VideoCodec| VideoQuality::ALL.map(|q| q.crf(c));
        assert_eq!(crfs(VideoCodec::H264), [14, 18, 24]);
        assert_eq!(crfs(VideoCodec::H265), [18, 22, 28]);
        assert_eq!(crfs(VideoCodec::Vp9), [24, 28, 34]);
        assert_eq!(VideoCodec::Vp9.extension(), "webm");
        assert_eq!(VideoCodec::H265.extension(), "mp4");
    }
}
