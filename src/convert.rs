//! Inference on photos of any size and aspect: padding to what the network needs,
//! large photos in bounded memory — on the CPU one streamed whole-image pass in
//! bands of rows, on wgpu (and for photos beyond the CPU's memory budget) exact
//! tiles with whole-image statistics ([`tiles`]) — optional luminance
//! matching, and recursive folder conversion.

pub mod finish;
pub mod recipe;
pub mod tiles;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use burn::tensor::ops::PadMode;
use image::{DynamicImage, ImageFormat, RgbImage};

use crate::data::image_io::{decode_rgb, has_image_extension};
use crate::model::Generator;
use crate::model::cpu::{CpuGenerator, streamed};
use crate::model::generator::MIN_INPUT_SIDE;
use crate::tensor_image::{floats_to_images, images_to_tensor, tensor_to_images};

/// How to convert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvertOptions {
    /// Tile side in pixels; images whose sides both fit run whole, larger ones in
    /// bounded memory (streamed on the CPU, exact tiles of this side on wgpu or
    /// beyond the CPU's memory budget). `0` = always whole.
    pub tile: usize,
    /// Overlap between neighbouring tiles (raised to [`MIN_EXACT_OVERLAP`], and
    /// kept under half the tile).
    pub overlap: usize,
    /// Scale the output so its mean luminance equals the input's (the TF original's option).
    pub match_luminance: bool,
    /// Keep the photo's colours: the output's luminance with the photo's chroma.
    pub keep_colors: bool,
    /// Share of the network's output in the result, blended with the photo (1 = the
    /// output only). Style strength for models without a parent; a fine-tune's
    /// strength interpolates its weights instead and leaves this at 1.
    pub photo_blend: f32,
}

/// Norm layers (of 24) that tiling gives whole-image statistics ([`tiles`]):
/// all of them, for output equal to the whole-image conversion.
pub const EXACT_NORM_LAYERS: usize = crate::model::cpu::NORM_LAYERS;

/// Default tile side on wgpu: small enough that one tile's largest activation
/// (64 channels at full resolution, ~51 MB at 448²) fits every adapter's storage
/// buffer limit (128 MiB on lavapipe and many integrated GPUs).
pub const WGPU_TILE: usize = 448;

/// Device memory that paused wgpu tiles may keep between layers (the rest wait in
/// host memory, [`tiles::convert_tiled_ops`]): with 448-px tiles, ~20 tiles'
/// widest maps (64 channels at full resolution), so a photo up to ~2.5 megapixels
/// never leaves the device, and a 4K one stays within a small GPU's memory.
pub const WGPU_RESIDENT_BYTES: usize = 1 << 30;

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            tile: 1024,
            overlap: MIN_EXACT_OVERLAP,
            match_luminance: false,
            keep_colors: false,
            photo_blend: 1.0,
        }
    }
}

impl ConvertOptions {
    /// The defaults for a backend: 1024² tiles on the CPU (memory-bound),
    /// [`WGPU_TILE`] on a GPU (buffer-size-bound).
    pub fn for_backend(is_gpu: bool) -> Self {
        Self {
            tile: if is_gpu { WGPU_TILE } else { 1024 },
            ..Self::default()
        }
    }
}

/// Errors of conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input could not be decoded.
    #[error("{path}: {reason}")]
    Decode {
        /// The input.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output could not be written.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Invalid options.
    #[error("{0}")]
    Options(String),
    /// The network's output could not be read back.
    #[error(transparent)]
    Readback(#[from] crate::tensor_image::ReadbackError),
    /// The CPU inference engine could not run the model.
    #[error(transparent)]
    Engine(#[from] crate::model::cpu::EngineError),
}

/// The padded size `(w, h)` the network runs on for an image of `(w, h)`.
fn network_size(g: &Generator, w: usize, h: usize) -> (usize, usize) {
    network_size_for(g.upsample, w, h)
}

/// [`network_size`] for a generator with upsampling `upsample`.
pub(crate) fn network_size_for(
    upsample: crate::model::upsample::UpsampleMode,
    w: usize,
    h: usize,
) -> (usize, usize) {
    let m = upsample.size_multiple();
    let target = |s: usize| s.max(MIN_INPUT_SIDE).div_ceil(m) * m;
    (target(w), target(h))
}

/// `img` padded to `(tw, th)` on the right and bottom as [`convert_whole`] pads it.
pub(crate) fn pad_image(img: &RgbImage, tw: usize, th: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let reflect = tw - w < w && th - h < h;
    let map = |i: usize, n: usize| {
        if i < n {
            i
        } else if reflect {
            2 * (n - 1) - i
        } else {
            n - 1
        }
    };
    RgbImage::from_fn(tw as u32, th as u32, |x, y| {
        *img.get_pixel(map(x as usize, w) as u32, map(y as usize, h) as u32)
    })
}

/// Smallest overlap of CPU tiling: each tile's share then stays 64 px from its
/// cut edges, beyond the reach of their reflect padding (outputs there are bit
/// for bit the whole image's, `tests/tiling.rs`).
pub const MIN_EXACT_OVERLAP: usize = 128;

/// Largest peak memory the CPU's streamed whole-image pass may take: half the
/// memory available now (Linux; 2 GiB where unknown), within 1.5-8 GiB. A 4K
/// photo needs ~1.4 GiB, a 24-megapixel one ~3.9 GiB; a photo over the budget
/// converts in exact tiles instead, whose memory is bounded by one tile.
pub fn streamed_budget_bytes() -> u64 {
    const GIB: u64 = 1 << 30;
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024);
    available.map_or(2 * GIB, |a| (a / 2).clamp(3 * GIB / 2, 8 * GIB))
}

/// Values (pixels x channels) per band of a layer in [`convert_streamed`].
pub const STREAMED_BAND_VALUES: usize = streamed::BAND_VALUES;

/// Whether `device` runs conversion on the CPU inference engine (Flex without autodiff).
fn uses_cpu_engine(device: &Device) -> bool {
    *device == Device::flex() && !device.is_autodiff()
}

/// Converts a large image on the CPU in one streamed whole-image pass, layer by
/// layer in bands of rows ([`crate::model::cpu::streamed`]): the untiled result
/// (within 1/255) at about 160 bytes per pixel (1.3 GiB for 3840x2160, against
/// ~7 GiB for the untiled pass), in one network pass (exact tiling costs ~6).
/// `band_values`: values (pixels x channels) per band of a layer
/// ([`STREAMED_BAND_VALUES`] unless measuring or testing).
pub fn convert_streamed(
    g: &Generator,
    img: &RgbImage,
    band_values: usize,
) -> Result<RgbImage, ConvertError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tw, th) = network_size(g, w, h);
    let padded = pad_image(img, tw, th);
    let engine = CpuGenerator::new(g)?;
    let out = engine.forward_streamed(&tiles::image_map(&padded), band_values);
    drop(padded);
    let out = one_image(floats_to_images(&out.data, 1, th, tw)?)?;
    Ok(image::imageops::crop_imm(&out, 0, 0, w as u32, h as u32).to_image())
}

/// Converts a large image tile by tile with whole-image statistics (seam-free,
/// see [`tiles`]): with the CPU engine on Flex, with Burn ops on any other
/// device. Memory is bounded by one tile.
pub fn convert_tiled_exact(
    g: &Generator,
    img: &RgbImage,
    tile: usize,
    overlap: usize,
    device: &Device,
) -> Result<RgbImage, ConvertError> {
    // Each tile keeps at least 64 px of its own (a smaller step would recompute
    // most of every window for little output).
    let overlap = overlap.max(MIN_EXACT_OVERLAP).min(tile.saturating_sub(64));
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tw, th) = network_size(g, w, h);
    let padded = pad_image(img, tw, th);
    let values = if uses_cpu_engine(device) {
        let engine = CpuGenerator::new(g)?;
        tiles::convert_tiled(&engine, &padded, tile, overlap, EXACT_NORM_LAYERS)?
    } else {
        tiles::convert_tiled_ops(
            g,
            device,
            &padded,
            tile,
            overlap,
            EXACT_NORM_LAYERS,
            WGPU_RESIDENT_BYTES,
        )?
    };
    let out = one_image(floats_to_images(&values, 1, th, tw)?)?;
    Ok(image::imageops::crop_imm(&out, 0, 0, w as u32, h as u32).to_image())
}

/// The single image of a one-image batch.
fn one_image(images: Vec<RgbImage>) -> Result<RgbImage, ConvertError> {
    images.into_iter().next().ok_or_else(|| {
        ConvertError::Readback(crate::tensor_image::ReadbackError(
            "the network returned no image".to_string(),
        ))
    })
}

/// Runs `g` on a whole image (any size), padding by reflection to the network's
/// size multiple (edge replication below [`MIN_INPUT_SIDE`]) and cropping back.
pub fn convert_whole(
    g: &Generator,
    img: &RgbImage,
    device: &Device,
) -> Result<RgbImage, ConvertError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tw, th) = network_size(g, w, h);
    let x = images_to_tensor(std::slice::from_ref(img), device); // [1, 3, H, W]
    let x = if (tw, th) != (w, h) {
        // Reflection needs the pad to be smaller than the side; tiny images replicate edges.
        let mode = if tw - w < w && th - h < h {
            PadMode::Reflect
        } else {
            PadMode::Edge
        };
        x.pad((0, tw - w, 0, th - h), mode)
    } else {
        x
    };
    let y = g.forward(x).narrow(2, 0, h).narrow(3, 0, w); // [1, 3, H, W]
    one_image(tensor_to_images(y)?)
}

/// Converts `img`, tiling when it is larger than `opts.tile`, then applies the
/// finishing touches ([`finishing_touches`]). Memory is bounded by one tile's activations.
pub fn convert_image(
    g: &Generator,
    img: &RgbImage,
    opts: &ConvertOptions,
    device: &Device,
) -> Result<RgbImage, ConvertError> {
    Ok(finishing_touches(
        &network_output(g, img, opts, device)?,
        img,
        opts,
    ))
}

/// The network's output for `img` before any finishing touch. A photo larger
/// than `opts.tile` runs in bounded memory: streamed on the CPU engine while it
/// fits [`streamed_budget_bytes`], otherwise in exact tiles of `opts.tile` with
/// `opts.overlap` (the other options are not read).
pub fn network_output(
    g: &Generator,
    img: &RgbImage,
    opts: &ConvertOptions,
    device: &Device,
) -> Result<RgbImage, ConvertError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let out = if opts.tile == 0 || (w <= opts.tile && h <= opts.tile) {
        convert_whole(g, img, device)?
    } else {
        if opts.overlap >= opts.tile || opts.tile < 128 {
            return Err(ConvertError::Options(format!(
                "tile {} px with overlap {} px: the tile must be at least 128 px and larger than the overlap",
                opts.tile, opts.overlap
            )));
        }
        let (tw, th) = network_size(g, w, h);
        if uses_cpu_engine(device)
            && streamed::streamed_peak_bytes(th, tw) <= streamed_budget_bytes()
        {
            convert_streamed(g, img, STREAMED_BAND_VALUES)?
        } else {
            convert_tiled_exact(g, img, opts.tile, opts.overlap, device)?
        }
    };
    Ok(out)
}

/// The finishing touches on the network's output `raw` for photo `img`, in
/// order: brightness, colours, then strength (so 0% strength gives the photo back
/// exactly). Cheap next to the network: changing only these needs no new run.
pub fn finishing_touches(raw: &RgbImage, img: &RgbImage, opts: &ConvertOptions) -> RgbImage {
    let mut out = raw.clone();
    if opts.match_luminance {
        out = match_luminance(&out, img);
    }
    if opts.keep_colors {
        out = finish::keep_photo_colors(&out, img);
    }
    if opts.photo_blend < 1.0 {
        out = finish::blend_with_photo(&out, img, opts.photo_blend);
    }
    out
}

fn mean_luminance(img: &RgbImage) -> f64 {
    let sum: f64 = img
        .pixels()
        .map(|p| 0.299 * p.0[0] as f64 + 0.587 * p.0[1] as f64 + 0.114 * p.0[2] as f64)
        .sum();
    sum / (img.width() as f64 * img.height() as f64).max(1.0)
}

/// Scales `out` so its mean luminance equals `reference`'s (TF AnimeGANv2's
/// `adjust_brightness_from_src_to_dst`).
pub fn match_luminance(out: &RgbImage, reference: &RgbImage) -> RgbImage {
    let ratio = mean_luminance(reference) / mean_luminance(out).max(1e-6);
    let mut result = out.clone();
    for p in result.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as f64 * ratio).round().clamp(0.0, 255.0) as u8;
        }
    }
    result
}

/// Output format by file extension: PNG, JPEG or WebP (lossless).
pub fn output_format(path: &Path) -> Result<ImageFormat, ConvertError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("png") => Ok(ImageFormat::Png),
        Some("jpg" | "jpeg") => Ok(ImageFormat::Jpeg),
        Some("webp") => Ok(ImageFormat::WebP),
        other => Err(ConvertError::Options(format!(
            "{}: unsupported output extension {:?} (use .png, .jpg or .webp)",
            path.display(),
            other.unwrap_or("")
        ))),
    }
}

/// Encodes and writes `img` atomically in the format of `path`'s extension.
pub fn save_image(img: &RgbImage, path: &Path) -> Result<(), ConvertError> {
    save_image_with_recipe(img, path, None)
}

/// [`save_image`], with `recipe` in the file when it is a PNG (JPEG and WebP carry
/// none: their metadata chunks are not written by the `image` crate).
pub fn save_image_with_recipe(
    img: &RgbImage,
    path: &Path,
    recipe: Option<&recipe::Recipe>,
) -> Result<(), ConvertError> {
    let format = output_format(path)?;
    let write_err = |reason: String| ConvertError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match (format, recipe) {
        (ImageFormat::Png, Some(recipe)) => {
            recipe::png_with_recipe(img, recipe).map_err(|e| write_err(e.to_string()))?
        }
        _ => {
            let mut bytes = Vec::new();
            DynamicImage::ImageRgb8(img.clone())
                .write_to(&mut std::io::Cursor::new(&mut bytes), format)
                .map_err(|e| write_err(e.to_string()))?;
            bytes
        }
    };
    crate::fsx::write_atomic(path, &bytes).map_err(|e| ConvertError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Decodes, converts and saves one file.
pub fn convert_file(
    g: &Generator,
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    device: &Device,
    recipe: Option<&recipe::Recipe>,
) -> Result<(), ConvertError> {
    output_format(output)?;
    let decoded = decode_rgb(input).map_err(|reason| ConvertError::Decode {
        path: input.to_path_buf(),
        reason,
    })?;
    let out = convert_image(g, &decoded.rgb, opts, device)?;
    save_image_with_recipe(&out, output, recipe)
}

/// One planned conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertJob {
    /// Source photo.
    pub input: PathBuf,
    /// Destination file.
    pub output: PathBuf,
}

/// The files under `root` (recursively; unreadable folders are passed over) that `keep` accepts.
pub(crate) fn files_under(root: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// Plans the outputs for `inputs` (files or folders, recursive) under `out_dir`,
/// keeping each folder's tree. Output extension: `ext` or the input's if writable, else png.
pub fn plan_jobs(inputs: &[PathBuf], out_dir: &Path, ext: Option<&str>) -> Vec<ConvertJob> {
    let mut jobs = Vec::new();
    let out_ext = |p: &Path| -> String {
        if let Some(e) = ext {
            return e.to_string();
        }
        match p
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some(e @ ("png" | "jpg" | "jpeg" | "webp")) => e.to_string(),
            _ => "png".to_string(),
        }
    };
    for input in inputs {
        if input.is_dir() {
            for path in files_under(input, has_image_extension) {
                let rel = path.strip_prefix(input).unwrap_or(&path);
                let output = out_dir.join(rel).with_extension(out_ext(&path));
                jobs.push(ConvertJob {
                    input: path,
                    output,
                });
            }
        } else {
            let name = input
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            jobs.push(ConvertJob {
                input: input.clone(),
                output: out_dir.join(format!("{name}.{}", out_ext(input))),
            });
        }
    }
    jobs.sort_by(|a, b| a.input.cmp(&b.input));
    jobs
}

/// Outcome of a batch conversion.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Files written.
    pub converted: Vec<PathBuf>,
    /// Outputs that already existed (left untouched).
    pub skipped_existing: Vec<PathBuf>,
    /// Failures with reasons; the other files were still converted.
    pub failed: Vec<(PathBuf, String)>,
    /// Stopped early because `cancel` was set.
    pub cancelled: bool,
}

/// Converts every job, skipping outputs that exist, reporting progress as
/// `(done, total, current input)`; stops early when `cancel` is set. A file that
/// fails — even by a panic inside the network — is listed in
/// [`BatchReport::failed`] and the rest are still converted.
pub fn convert_batch(
    g: &Generator,
    jobs: &[ConvertJob],
    opts: &ConvertOptions,
    device: &Device,
    cancel: &AtomicBool,
    recipe: Option<&recipe::Recipe>,
    progress: &mut dyn FnMut(usize, usize, &Path),
) -> BatchReport {
    let mut report = BatchReport::default();
    for (i, job) in jobs.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            return report;
        }
        progress(i, jobs.len(), &job.input);
        if job.output.exists() {
            report.skipped_existing.push(job.output.clone());
            continue;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            convert_file(g, &job.input, &job.output, opts, device, recipe)
        }));
        match outcome {
            Ok(Ok(())) => report.converted.push(job.output.clone()),
            Ok(Err(e)) => report.failed.push((job.input.clone(), e.to_string())),
            Err(_) => report.failed.push((
                job.input.clone(),
                "conversion crashed on this file".to_string(),
            )),
        }
    }
    progress(jobs.len(), jobs.len(), Path::new(""));
    report
}
