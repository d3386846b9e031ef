//! Dataset tests: scanning, bad files, conversions, edge smoothing, determinism.

mod common;

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use photo2anime::data::preprocess::{edge_mask, edge_smooth};
use photo2anime::data::scan::ScanError;
use photo2anime::data::{Dataset, scan_folder};

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

#[test]
fn batches_are_a_deterministic_function_of_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, style) = common::tiny_dataset(dir.path(), 5, 40);
    let cache = dir.path().join("cache");
    let (dataset, skipped) =
        Dataset::prepare(&photos, &style, 32, 2, 7, &cache, &|_, _| {}).unwrap();
    assert!(skipped.is_empty());
    assert_eq!((dataset.photos.len(), dataset.style.len()), (5, 5));
    assert_eq!(dataset.steps_per_epoch(), 2);
    let a = dataset.batch(3);
    let b = dataset.batch(3);
    assert_eq!(a.photos, b.photos);
    assert_eq!(a.style_smooth, b.style_smooth);
    assert_eq!(a.photos.len(), 2 * 3 * 32 * 32);
    assert_ne!(dataset.batch(4).photos, a.photos);
    assert!(a.photos.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Preparing again reuses the cache (same files, same keys).
    let (again, _) = Dataset::prepare(&photos, &style, 32, 2, 7, &cache, &|_, _| {}).unwrap();
    assert_eq!(again.photos[0].cached, dataset.photos[0].cached);
}
