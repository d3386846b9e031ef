//! Dataset tests: scanning, bad files, conversions, edge smoothing, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use photo2anime::data::preprocess::{edge_mask, edge_smooth};
use photo2anime::data::scan::ScanError;
use photo2anime::data::{DataError, Dataset, scan_folder};

#[test]
fn edge_smoothing_blurs_only_near_edges() {
    // A white square on black: Canny finds its border, the dilated mask covers 2 px
    // either side, and only those pixels are blurred.
    let img = RgbImage::from_fn(40, 40, |x, y| {
        if (12..28).contains(&x) && (12..28).contains(&y) {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    let mask = edge_mask(&img);
    assert!(mask.get_pixel(12, 20).0[0] > 0, "the border is in the mask");
    assert_eq!(mask.get_pixel(2, 2).0[0], 0, "far background is not");
    assert_eq!(mask.get_pixel(20, 20).0[0], 0, "the square's centre is not");
    let smooth = edge_smooth(&img);
    assert_eq!(smooth.get_pixel(2, 2).0, [0; 3]);
    assert_eq!(smooth.get_pixel(20, 20).0, [255; 3]);
    let edge = smooth.get_pixel(12, 20).0[0];
    assert!(
        edge > 0 && edge < 255,
        "the border pixel is blurred ({edge})"
    );
    // Symmetric input, symmetric output.
    assert_eq!(smooth.get_pixel(12, 20).0, smooth.get_pixel(27, 20).0);
}

#[test]
fn bad_files_are_skipped_with_reasons_and_odd_formats_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::synthetic_photo(64, 48, 0)
        .save(d.join("good.png"))
        .unwrap();
    std::fs::write(
        d.join("corrupt.jpg"),
        b"\xff\xd8\xff\xe0 this is not really a jpeg",
    )
    .unwrap();
    std::fs::write(d.join("text.png"), b"hello").unwrap();
    let mut png = Vec::new();
    common::synthetic_photo(64, 64, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(d.join("truncated.png"), &png[..png.len() / 2]).unwrap();
    RgbImage::from_pixel(10, 10, Rgb([1, 2, 3]))
        .save(d.join("tiny.png"))
        .unwrap();
    std::fs::write(d.join("readme.txt"), "not an image extension: ignored").unwrap();
    let sixteen: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(40, 40, |x, _| Rgb([x as u16 * 1000, 0, 65535]));
    sixteen.save(d.join("sixteen.png")).unwrap();
    GrayImage::from_fn(40, 40, |x, _| Luma([x as u8 * 5]))
        .save(d.join("gray.png"))
        .unwrap();
    RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0]))
        .save(d.join("transparent.png"))
        .unwrap();

    let report = scan_folder(d).unwrap();
    let names = |v: Vec<&std::path::Path>| {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect::<Vec<_>>()
    };
    // Header checks catch what they can at scan time...
    let skipped = names(report.skipped.iter().map(|s| s.path.as_path()).collect());
    assert!(skipped.contains(&"corrupt.jpg".to_string()), "{skipped:?}");
    assert!(skipped.contains(&"text.png".to_string()));
    assert!(skipped.contains(&"tiny.png".to_string()));
    let tiny = report
        .skipped
        .iter()
        .find(|s| s.path.ends_with("tiny.png"))
        .unwrap();
    assert!(tiny.reason.contains("too small"), "{}", tiny.reason);

    // ...and preparing the dataset decodes everything, catching truncation.
    let cache = tempfile::tempdir().unwrap();
    let style = tempfile::tempdir().unwrap();
    common::synthetic_cartoon(48, 48, 0)
        .save(style.path().join("s.png"))
        .unwrap();
    let (dataset, skipped) =
        Dataset::prepare(d, style.path(), 32, 1, 1, cache.path(), &|_, _| {}).unwrap();
    let used = names(dataset.photos.iter().map(|p| p.source.as_path()).collect());
    assert_eq!(
        used,
        vec!["good.png", "gray.png", "sixteen.png", "transparent.png"]
    );
    let truncated = skipped
        .iter()
        .find(|s| s.path.ends_with("truncated.png"))
        .expect("truncated file reported");
    assert!(
        truncated.reason.contains("truncated") || truncated.reason.contains("corrupt"),
        "{}",
        truncated.reason
    );
    // The transparent image was composited on white, not left black.
    let cached = image::open(&dataset.photos[3].cached).unwrap().to_rgb8();
    assert_eq!(cached.get_pixel(0, 0).0, [255, 255, 255]);
}

/// A preparation worker that panics must fail the whole preparation with a typed
/// error: joining it and dropping its share would silently train on fewer files.
/// The panic is provoked through the progress callback, which runs on the workers.
#[test]
fn a_crashed_preparation_worker_is_reported_not_dropped() {
    let (photos, style, cache) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for i in 0..3 {
        common::synthetic_photo(40, 40, i)
            .save(photos.path().join(format!("p{i}.png")))
            .unwrap();
        common::synthetic_cartoon(40, 40, i)
            .save(style.path().join(format!("s{i}.png")))
            .unwrap();
    }
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let crash_on_second = |_: usize, _: usize| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            panic!("provoked preparation crash");
        }
    };
    let result = Dataset::prepare(
        photos.path(),
        style.path(),
        32,
        1,
        1,
        cache.path(),
        &crash_on_second,
    );
    assert!(
        matches!(result, Err(DataError::PreparationCrashed)),
        "{:?}",
        result.map(|(d, _)| d.photos.len() + d.style.len())
    );
    // The same folders prepare fine without the crash (the failure was the crash).
    let (dataset, skipped) = Dataset::prepare(
        photos.path(),
        style.path(),
        32,
        1,
        1,
        cache.path(),
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(
        (dataset.photos.len(), dataset.style.len(), skipped.len()),
        (3, 3, 0)
    );
}

#[test]
fn empty_and_missing_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        scan_folder(dir.path()),
        Err(ScanError::Empty { .. })
    ));
    let err = scan_folder(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, ScanError::Unreadable { .. }));
    assert!(err.to_string().contains("nope"));
}

/// `img`'s `s`x`s` window at `(x, y)` as CHW floats in [-1, 1], computed here
/// rather than by the loader.
fn window_chw(img: &RgbImage, x: u32, y: u32, s: u32) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * (s * s) as usize);
    for c in 0..3 {
        for r in 0..s {
            for col in 0..s {
                out.push(img.get_pixel(x + col, y + r).0[c] as f32 / 127.5 - 1.0);
            }
        }
    }
    out
}

/// The `(image index, x, y)` of every window of `images` equal to `crop`.
fn windows_equal_to(images: &[RgbImage], crop: &[f32], s: u32) -> Vec<(usize, u32, u32)> {
    let mut found = Vec::new();
    for (i, img) in images.iter().enumerate() {
        for y in 0..=img.height() - s {
            for x in 0..=img.width() - s {
                if window_chw(img, x, y, s) == crop {
                    found.push((i, x, y));
                }
            }
        }
    }
    found
}

fn assert_same_batch(a: &photo2anime::data::Batch, b: &photo2anime::data::Batch, what: &str) {
    assert_eq!(a.step, b.step, "{what}: step");
    assert!(a.photos == b.photos, "{what}: photos differ");
    assert!(a.style == b.style, "{what}: style images differ");
    assert!(
        a.style_gray == b.style_gray,
        "{what}: gray style images differ"
    );
    assert!(
        a.style_smooth == b.style_smooth,
        "{what}: smoothed style images differ"
    );
}

/// Resuming at step N must reproduce the data of the original run. The original
/// run is the loader thread walking steps 0..6 on one prepared dataset; the
/// "resumed" one is a second dataset prepared from scratch in its own cache and
/// asked for the steps out of order, starting mid-run. Every image is checked
/// against the cached files directly: a window of one of them, each photo and
/// style image once per epoch, and the gray/smooth variants from the same window
/// of the same style image.
#[test]
fn batches_are_a_deterministic_function_of_the_step() {
    use std::sync::Arc;

    use photo2anime::data::loader::Loader;

    const S: u32 = 32;
    const STEPS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(dir.path(), 5, 40);
    let prepare = |cache: &str, seed: u64| {
        Dataset::prepare(
            &photos,
            &style,
            S,
            2,
            seed,
            &dir.path().join(cache),
            &|_, _| {},
        )
        .unwrap()
    };
    let (dataset, skipped) = prepare("cache", 7);
    assert!(skipped.is_empty());
    assert_eq!((dataset.photos.len(), dataset.style.len()), (5, 5));
    assert_eq!(dataset.steps_per_epoch(), 2);

    let loader = Loader::spawn(Arc::new(dataset.clone()), 0, STEPS, 2);
    let original: Vec<_> = (0..STEPS)
        .map(|step| loader.next().unwrap_or_else(|| panic!("no batch {step}")))
        .collect();
    assert!(loader.next().is_none(), "the loader ran past its range");
    drop(loader);

    let (resumed, _) = prepare("cache-resumed", 7);
    assert_ne!(resumed.photos[0].cached, dataset.photos[0].cached);
    for step in [3, 5, 4, 0, 2, 1] {
        let b = resumed.batch(step);
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert_same_batch(&b, &original[step], &format!("resumed step {step}"));
    }

    // Every image against the cached files.
    let open_rgb = |p: &std::path::Path| image::open(p).unwrap().to_rgb8();
    let photo_imgs: Vec<RgbImage> = dataset
        .photos
        .iter()
        .map(|p| open_rgb(p.cached.as_path()))
        .collect();
    let color_imgs: Vec<RgbImage> = dataset
        .style
        .iter()
        .map(|p| open_rgb(p.color.as_path()))
        .collect();
    let plane = (3 * S * S) as usize;
    let mut crops_off_origin = 0;
    for epoch in 0..STEPS / 2 {
        let (mut used_photos, mut used_style) = (Vec::new(), Vec::new());
        for b in &original[2 * epoch..2 * epoch + 2] {
            assert_eq!((b.batch_size, b.image_size), (2, S as usize));
            assert_eq!(b.photos.len(), 2 * plane);
            assert!(b.photos.iter().all(|v| (-1.0..=1.0).contains(v)));
            for j in 0..2 {
                let range = j * plane..(j + 1) * plane;
                let found = windows_equal_to(&photo_imgs, &b.photos[range.clone()], S);
                assert_eq!(
                    found.len(),
                    1,
                    "step {} photo {j}: not exactly one window of one cached photo: {found:?}",
                    b.step
                );
                let (i, x, y) = found[0];
                used_photos.push(i);
                crops_off_origin += usize::from(x > 0 || y > 0);

                let found = windows_equal_to(&color_imgs, &b.style[range.clone()], S);
                assert_eq!(found.len(), 1, "step {} style {j}: {found:?}", b.step);
                let (i, x, y) = found[0];
                used_style.push(i);
                for (file, values, name) in [
                    (&dataset.style[i].gray, &b.style_gray, "gray"),
                    (&dataset.style[i].smooth, &b.style_smooth, "smooth"),
                ] {
                    let gray = image::open(file).unwrap().to_rgb8();
                    assert!(
                        window_chw(&gray, x, y, S) == values[range.clone()],
                        "step {} style {j}: {name} is not the colour crop's window",
                        b.step
                    );
                }
            }
        }
        for used in [&mut used_photos, &mut used_style] {
            used.sort();
            let n = used.len();
            used.dedup();
            assert_eq!(used.len(), n, "epoch {epoch}: an image repeats: {used:?}");
        }
    }
    assert!(crops_off_origin > 0, "every photo crop sat at (0, 0)");

    // Different steps and different seeds give different batches.
    assert!(original[3].photos != original[4].photos);
    assert!(
        original[1].photos != original[3].photos,
        "epochs 0 and 1 repeat"
    );
    let (other_seed, _) = prepare("cache", 8);
    assert!(other_seed.batch(3).photos != original[3].photos);
    // Preparing again reuses the cache (same files, same keys).
    assert_eq!(other_seed.photos[0].cached, dataset.photos[0].cached);
}
