//! The training dataset (prepared once into the cache) and the loader thread that
//! assembles batches ahead of the trainer.
//!
//! A batch is a pure function of the step number: the epoch's shuffles and every
//! crop come from RNGs seeded by `(seed, epoch)` and `(seed, step)`. Resuming at
//! step N therefore reproduces exactly the data the original run would have seen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, bounded};
use image::{DynamicImage, GrayImage, RgbImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::SkippedFile;
use super::cache::{cache_key, save_png_atomic};
use super::image_io::decode_rgb;
use super::preprocess::{
    CANNY_HIGH, CANNY_LOW, SMOOTH_SIGMA, center_crop, resize_short_side, style_variants,
};
use super::scan::{ScanError, scan_folder};

/// A photo resized so its short side is the training size, cached as PNG.
#[derive(Debug, Clone)]
pub struct PreparedPhoto {
    /// The original file.
    pub source: PathBuf,
    /// The cached resized image.
    pub cached: PathBuf,
}

/// A style image and its two negatives, resized and cached as PNGs.
#[derive(Debug, Clone)]
pub struct PreparedStyle {
    /// The original file.
    pub source: PathBuf,
    /// Colour, short side = training size.
    pub color: PathBuf,
    /// Grayscale of `color`.
    pub gray: PathBuf,
    /// Grayscale of the edge-smoothed `color`.
    pub smooth: PathBuf,
}

/// The usable, cached photos and style images of a run.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Photos, sorted by source path.
    pub photos: Vec<PreparedPhoto>,
    /// Style images, sorted by source path.
    pub style: Vec<PreparedStyle>,
    /// Square crop size.
    pub image_size: u32,
    /// Images per batch.
    pub batch_size: usize,
    /// Seed of shuffles and crops.
    pub seed: u64,
}

/// One batch as plain data. Every image tensor is `[B, 3, S, S]` row-major in [-1, 1].
#[derive(Debug, Clone)]
pub struct Batch {
    /// The step this batch is for.
    pub step: usize,
    /// Batch size B.
    pub batch_size: usize,
    /// Side S.
    pub image_size: usize,
    /// Photos.
    pub photos: Vec<f32>,
    /// Style images.
    pub style: Vec<f32>,
    /// Grayscale style images (gray replicated to 3 channels).
    pub style_gray: Vec<f32>,
    /// Edge-smoothed grayscale style images (replicated to 3 channels).
    pub style_smooth: Vec<f32>,
    /// Files that failed to load for this batch (replaced by others).
    pub warnings: Vec<String>,
}

/// Why a dataset could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A folder is unusable.
    #[error("{kind} folder: {source}")]
    Folder {
        /// "photo" or "style".
        kind: &'static str,
        /// What is wrong.
        source: ScanError,
    },
    /// A preparation worker panicked; its files were not prepared.
    #[error(
        "preparing the images crashed; nothing was trained (try again, or report the file last shown)"
    )]
    PreparationCrashed,
    /// Every file of a folder failed to decode.
    #[error("{kind} folder {path}: none of the images could be decoded ({skipped} skipped)")]
    NothingDecoded {
        /// "photo" or "style".
        kind: &'static str,
        /// The folder.
        path: PathBuf,
        /// Skipped count.
        skipped: usize,
    },
    /// The cache folder cannot be written.
    #[error("cannot write the preprocessing cache {path}: {source}")]
    Cache {
        /// The cache folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

enum Prepared {
    Photo(PreparedPhoto),
    Style(PreparedStyle),
}

fn prepare_photo(source: &Path, size: u32, dir: &Path) -> Result<Prepared, String> {
    let cached = dir.join(format!(
        "{}.png",
        cache_key(source, &format!("photo:{size}"))
    ));
    if !cached.exists() {
        let img = decode_rgb(source)?;
        let resized = resize_short_side(&img.rgb, size);
        save_png_atomic(&DynamicImage::ImageRgb8(resized), &cached)
            .map_err(|e| format!("cache write failed: {e}"))?;
    }
    Ok(Prepared::Photo(PreparedPhoto {
        source: source.to_path_buf(),
        cached,
    }))
}

fn prepare_style(source: &Path, size: u32, dir: &Path) -> Result<Prepared, String> {
    let settings = format!("style:{size}:canny{CANNY_LOW}-{CANNY_HIGH}:sigma{SMOOTH_SIGMA}");
    let key = cache_key(source, &settings);
    let color = dir.join(format!("{key}-color.png"));
    let gray = dir.join(format!("{key}-gray.png"));
    let smooth = dir.join(format!("{key}-smooth.png"));
    if !(color.exists() && gray.exists() && smooth.exists()) {
        let img = decode_rgb(source)?;
        let v = style_variants(resize_short_side(&img.rgb, size));
        let write = |img: DynamicImage, path: &Path| {
            save_png_atomic(&img, path).map_err(|e| format!("cache write failed: {e}"))
        };
        write(DynamicImage::ImageLuma8(v.gray), &gray)?;
        write(DynamicImage::ImageLuma8(v.smooth_gray), &smooth)?;
        // The colour file last: its presence marks a complete entry.
        write(DynamicImage::ImageRgb8(v.color), &color)?;
    }
    Ok(Prepared::Style(PreparedStyle {
        source: source.to_path_buf(),
        color,
        gray,
        smooth,
    }))
}

impl Dataset {
    /// Scans both folders, decodes every image once (in parallel) into the cache and
    /// returns the dataset plus every skipped file with its reason.
    ///
    /// `progress(done, total)` is called from worker threads as files finish.
    pub fn prepare(
        photos_dir: &Path,
        style_dir: &Path,
        image_size: u32,
        batch_size: usize,
        seed: u64,
        cache_dir: &Path,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(Dataset, Vec<SkippedFile>), DataError> {
        let photo_scan = scan_folder(photos_dir).map_err(|source| DataError::Folder {
            kind: "photo",
            source,
        })?;
        let style_scan = scan_folder(style_dir).map_err(|source| DataError::Folder {
            kind: "style",
            source,
        })?;
        let mut skipped = photo_scan.skipped.clone();
        skipped.extend(style_scan.skipped.iter().cloned());

        let photo_cache = cache_dir.join("photos");
        let style_cache = cache_dir.join("style");
        for dir in [&photo_cache, &style_cache] {
            std::fs::create_dir_all(dir).map_err(|source| DataError::Cache {
                path: dir.clone(),
                source,
            })?;
        }
        let jobs: Vec<(bool, &PathBuf)> = photo_scan
            .files
            .iter()
            .map(|p| (true, p))
            .chain(style_scan.files.iter().map(|p| (false, p)))
            .collect();
        let total = jobs.len();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let threads = crate::device::cpu_threads().clamp(1, 8);
        let mut results: Vec<(usize, Result<Prepared, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(is_photo, path)) = jobs.get(i) else {
                                break;
                            };
                            let r = if is_photo {
                                prepare_photo(path, image_size, &photo_cache)
                            } else {
                                prepare_style(path, image_size, &style_cache)
                            };
                            out.push((i, r));
                            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::new();
            for handle in handles {
                match handle.join() {
                    Ok(out) => all.extend(out),
                    // Its files would silently vanish from the dataset: report it.
                    Err(_) => return Err(DataError::PreparationCrashed),
                }
            }
            Ok(all)
        })?;
        results.sort_by_key(|(i, _)| *i);
        let mut photos = Vec::new();
        let mut style = Vec::new();
        for (i, r) in results {
            match r {
                Ok(Prepared::Photo(p)) => photos.push(p),
                Ok(Prepared::Style(p)) => style.push(p),
                Err(reason) => skipped.push(SkippedFile {
                    path: jobs[i].1.clone(),
                    reason,
                }),
            }
        }
        if photos.is_empty() {
            return Err(DataError::NothingDecoded {
                kind: "photo",
                path: photos_dir.to_path_buf(),
                skipped: skipped.len(),
            });
        }
        if style.is_empty() {
            return Err(DataError::NothingDecoded {
                kind: "style",
                path: style_dir.to_path_buf(),
                skipped: skipped.len(),
            });
        }
        Ok((
            Dataset {
                photos,
                style,
                image_size,
                batch_size,
                seed,
            },
            skipped,
        ))
    }

    /// `max(#photos, #style) / batch`, at least 1 (the original's epoch length).
    pub fn steps_per_epoch(&self) -> usize {
        (self.photos.len().max(self.style.len()) / self.batch_size).max(1)
    }

    /// The first `n` photos, centre-cropped to the training size: the fixed validation set.
    pub fn validation_photos(&self, n: usize) -> Vec<RgbImage> {
        self.photos
            .iter()
            .take(n)
            .filter_map(|p| image::open(&p.cached).ok())
            .map(|img| center_crop(&img.to_rgb8(), self.image_size))
            .collect()
    }

    fn epoch_order(&self, len: usize, epoch: usize, salt: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        let mut rng = StdRng::seed_from_u64(
            self.seed ^ salt ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        order.shuffle(&mut rng);
        order
    }

    /// Builds the batch of `step`. Files that fail to load are replaced by the next
    /// index and reported in [`Batch::warnings`].
    pub fn batch(&self, step: usize) -> Batch {
        let spe = self.steps_per_epoch();
        let (epoch, in_epoch) = (step / spe, step % spe);
        let photo_order = self.epoch_order(self.photos.len(), epoch, 0x5048_4f54);
        let style_order = self.epoch_order(self.style.len(), epoch, 0x5354_594c);
        let mut rng = StdRng::seed_from_u64(
            self.seed
                .wrapping_add((step as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
        );
        let s = self.image_size as usize;
        let plane = 3 * s * s;
        let b = self.batch_size;
        let mut batch = Batch {
            step,
            batch_size: b,
            image_size: s,
            photos: vec![0.0; b * plane],
            style: vec![0.0; b * plane],
            style_gray: vec![0.0; b * plane],
            style_smooth: vec![0.0; b * plane],
            warnings: Vec::new(),
        };
        for j in 0..b {
            let k = in_epoch * b + j;
            let range = j * plane..(j + 1) * plane;
            for attempt in 0..self.photos.len() {
                let p = &self.photos[photo_order[(k + attempt) % self.photos.len()]];
                match image::open(&p.cached) {
                    Ok(img) => {
                        let img = img.to_rgb8();
                        let (x, y) =
                            random_origin(&mut rng, img.width(), img.height(), self.image_size);
                        write_rgb(&img, x, y, s, &mut batch.photos[range.clone()]);
                        break;
                    }
                    Err(e) => batch.warnings.push(format!(
                        "{}: cached photo unreadable: {e}",
                        p.source.display()
                    )),
                }
            }
            for attempt in 0..self.style.len() {
                let st = &self.style[style_order[(k + attempt) % self.style.len()]];
                let loaded = (|| -> Result<(RgbImage, GrayImage, GrayImage), image::ImageError> {
                    Ok((
                        image::open(&st.color)?.to_rgb8(),
                        image::open(&st.gray)?.to_luma8(),
                        image::open(&st.smooth)?.to_luma8(),
                    ))
                })();
                match loaded {
                    Ok((color, gray, smooth)) => {
                        let (x, y) =
                            random_origin(&mut rng, color.width(), color.height(), self.image_size);
                        write_rgb(&color, x, y, s, &mut batch.style[range.clone()]);
                        write_gray3(&gray, x, y, s, &mut batch.style_gray[range.clone()]);
                        write_gray3(&smooth, x, y, s, &mut batch.style_smooth[range.clone()]);
                        break;
                    }
                    Err(e) => batch.warnings.push(format!(
                        "{}: cached style image unreadable: {e}",
                        st.source.display()
                    )),
                }
            }
        }
        batch
    }
}

fn random_origin(rng: &mut StdRng, w: u32, h: u32, side: u32) -> (u32, u32) {
    let x = if w > side {
        rng.random_range(0..=w - side)
    } else {
        0
    };
    let y = if h > side {
        rng.random_range(0..=h - side)
    } else {
        0
    };
    (x, y)
}

/// Copies the `s`x`s` crop at `(x, y)` as CHW floats in [-1, 1].
fn write_rgb(img: &RgbImage, x: u32, y: u32, s: usize, out: &mut [f32]) {
    for r in 0..s {
        for c in 0..s {
            let p = img.get_pixel(x + c as u32, y + r as u32).0;
            for ch in 0..3 {
                out[ch * s * s + r * s + c] = p[ch] as f32 / 127.5 - 1.0;
            }
        }
    }
}

/// Copies a grayscale crop into all three CHW channels.
fn write_gray3(img: &GrayImage, x: u32, y: u32, s: usize, out: &mut [f32]) {
    for r in 0..s {
        for c in 0..s {
            let v = img.get_pixel(x + c as u32, y + r as u32).0[0] as f32 / 127.5 - 1.0;
            for ch in 0..3 {
                out[ch * s * s + r * s + c] = v;
            }
        }
    }
}

/// Runs [`Dataset::batch`] on a background thread, `prefetch` batches ahead.
pub struct Loader {
    receiver: Receiver<Batch>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loader {
    /// Starts producing batches for steps `start..end`.
    pub fn spawn(dataset: Arc<Dataset>, start: usize, end: usize, prefetch: usize) -> Self {
        let (tx, receiver) = bounded(prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("photo2anime-loader".into())
            .spawn(move || {
                for step in start..end {
                    if stop_flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if tx.send(dataset.batch(step)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Self {
            receiver,
            stop,
            thread,
        }
    }

    /// The next batch, waiting for it if needed; `None` when the range is exhausted
    /// or the thread could not start.
    pub fn next(&self) -> Option<Batch> {
        self.receiver.recv().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock a pending send by draining, then join.
        while self.receiver.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            while !t.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = t.join();
        }
    }
}
