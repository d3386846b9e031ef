//! `p2a-images`: decodes thumbnails, style variants and photos for display.
//!
//! Photos and style variants are served in order; thumbnails wait on their own
//! stack, newest first, and those of a folder scanned again are dropped. Every
//! request is answered, also when the decoder panics on a file.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::protocol::{
    FolderRole, ImageRequest, Rgba8, THUMBNAIL_SIDE, TiledPixels, WorkerError, WorkerEvent,
};
use super::{EventSink, spawn_named};
use crate::data::image_io::{DecodedImage, decode_rgb};
use crate::data::preprocess::{center_crop, resize_short_side, style_variants};

/// How a file is decoded: [`decode_rgb`] in the app; tests pass one that panics.
pub(crate) type Decoder = fn(&Path) -> Result<DecodedImage, String>;

/// Starts the image thread.
pub(crate) fn spawn(sink: EventSink) -> Sender<ImageRequest> {
    let (tx, rx) = unbounded();
    let thread_sink = sink.clone();
    if !spawn_named("p2a-images", move || run(&rx, &thread_sink, decode_rgb)) {
        // No thread: every request is answered at once by `answer_lost`, because
        // the receiver is dropped here and each send fails.
        log::error!("cannot start the image thread");
    }
    tx
}

/// Answers a request that could not reach the image thread.
pub(crate) fn answer_lost(request: ImageRequest, sink: &EventSink) {
    let error = || WorkerError::Spawn("the image thread is not running".to_string());
    sink.send(failure(request, error()));
}

/// The event answering `request` with `error`.
fn failure(request: ImageRequest, error: WorkerError) -> WorkerEvent {
    match request {
        ImageRequest::Thumbnail {
            role,
            generation,
            index,
            ..
        } => WorkerEvent::Thumbnail {
            role,
            generation,
            index,
            result: Err(error),
        },
        ImageRequest::StyleVariants { path, .. } => WorkerEvent::StyleVariants {
            path,
            result: Err(error),
        },
        ImageRequest::DecodePhoto { id, .. } => WorkerEvent::PhotoDecoded {
            id,
            result: Err(error),
        },
        ImageRequest::DecodeVideoFrame { id, time_s, .. } => WorkerEvent::VideoFrame {
            id,
            time_s,
            result: Err(error),
        },
    }
}

/// The thread's loop: serves requests until the UI hangs up.
pub(crate) fn run(rx: &Receiver<ImageRequest>, sink: &EventSink, decode: Decoder) {
    let mut queue: VecDeque<ImageRequest> = VecDeque::new();
    let mut thumbs: Vec<ImageRequest> = Vec::new();
    let mut newest_generation: HashMap<FolderRole, u64> = HashMap::new();
    loop {
        if queue.is_empty() && thumbs.is_empty() {
            match rx.recv() {
                Ok(r) => queue.push_back(r),
                Err(_) => return,
            }
        }
        queue.extend(rx.try_iter());
        // Thumbnails go to their own stack (newest first); others keep their order.
        let mut rest = VecDeque::new();
        for r in queue.drain(..) {
            match &r {
                ImageRequest::Thumbnail {
                    role, generation, ..
                } => {
                    let newest = newest_generation.entry(*role).or_insert(*generation);
                    *newest = (*newest).max(*generation);
                    thumbs.push(r);
                }
                ImageRequest::StyleVariants { .. }
                | ImageRequest::DecodePhoto { .. }
                | ImageRequest::DecodeVideoFrame { .. } => {
                    rest.push_back(r);
                }
            }
        }
        queue = rest;
        // Thumbnails of an older scan belong to a list the UI no longer shows.
        thumbs.retain(|r| match r {
            ImageRequest::Thumbnail {
                role, generation, ..
            } => newest_generation.get(role) == Some(generation),
            ImageRequest::StyleVariants { .. }
            | ImageRequest::DecodePhoto { .. }
            | ImageRequest::DecodeVideoFrame { .. } => true,
        });
        if let Some(request) = queue.pop_front().or_else(|| thumbs.pop()) {
            serve(request, sink, decode);
        }
    }
}

/// Serves one request; a panic becomes an error answer for that request.
pub(crate) fn serve(request: ImageRequest, sink: &EventSink, decode: Decoder) {
    let kept = request.clone();
    let event = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer(request, decode)))
        .unwrap_or_else(|payload| {
            failure(kept, WorkerError::crashed("decoding", payload.as_ref()))
        });
    sink.send(event);
}

fn decoded(path: &Path, decode: Decoder) -> Result<DecodedImage, WorkerError> {
    decode(path).map_err(|reason| WorkerError::Decode {
        path: path.to_path_buf(),
        reason,
    })
}

fn answer(request: ImageRequest, decode: Decoder) -> WorkerEvent {
    match request {
        ImageRequest::Thumbnail {
            role,
            generation,
            index,
            path,
        } => WorkerEvent::Thumbnail {
            role,
            generation,
            index,
            result: decoded(&path, decode).map(|d| thumbnail(&d.rgb)),
        },
        ImageRequest::StyleVariants { path, size } => {
            let result = decoded(&path, decode).map(|d| {
                let side = size.max(32);
                let color = center_crop(&resize_short_side(&d.rgb, side), side);
                let v = style_variants(color);
                [
                    Rgba8::from_rgb(&v.color),
                    Rgba8::from_gray(&v.gray),
                    Rgba8::from_gray(&v.smooth_gray),
                ]
            });
            WorkerEvent::StyleVariants { path, result }
        }
        ImageRequest::DecodePhoto { id, path } => {
            let result = decoded(&path, decode).map(|d| {
                let pixels = TiledPixels::from_rgb(&d.rgb);
                (Arc::new(d.rgb), pixels)
            });
            WorkerEvent::PhotoDecoded { id, result }
        }
        ImageRequest::DecodeVideoFrame { id, path, time_s } => {
            let tools = crate::video::ffmpeg::FfmpegTools::default();
            let result = crate::video::ffmpeg::probe(&tools, &path)
                .and_then(|info| {
                    let frame = crate::video::ffmpeg::frame_at(&tools, &path, &info, time_s)?;
                    Ok((frame, info))
                })
                .map(|(frame, info)| {
                    let pixels = TiledPixels::from_rgb(&frame);
                    (Arc::new(frame), pixels, info)
                })
                .map_err(WorkerError::from);
            WorkerEvent::VideoFrame { id, time_s, result }
        }
    }
}

/// `img` scaled to fit [`THUMBNAIL_SIDE`].
fn thumbnail(img: &image::RgbImage) -> Rgba8 {
    let (w, h) = img.dimensions();
    let scale = (THUMBNAIL_SIDE as f32 / w.max(h) as f32).min(1.0);
    let tw = ((w as f32 * scale).round() as u32).max(1);
    let th = ((h as f32 * scale).round() as u32).max(1);
    Rgba8::from_rgb(&image::imageops::thumbnail(img, tw, th))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn panicking_decoder(_: &Path) -> Result<DecodedImage, String> {
        panic!("decoder bug")
    }

    /// A decoder that panics on a file still produces an answer (it used to leave
    /// "Decoding…" on screen forever), and the thread keeps serving.
    #[test]
    fn a_panicking_decoder_gets_an_error_reply() {
        let (sink, events) = EventSink::channel();
        let (tx, rx) = unbounded();
        let thread = std::thread::spawn(move || run(&rx, &sink, panicking_decoder));
        tx.send(ImageRequest::DecodePhoto {
            id: 7,
            path: PathBuf::from("any.png"),
        })
        .unwrap();
        tx.send(ImageRequest::StyleVariants {
            path: PathBuf::from("style.png"),
            size: 64,
        })
        .unwrap();
        let first = events
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        match first {
            WorkerEvent::PhotoDecoded { id: 7, result } => match result {
                Err(WorkerError::Crashed { detail, .. }) => assert!(detail.contains("decoder bug")),
                other => panic!("expected a crash error, got {other:?}"),
            },
            other => panic!("unexpected event {other:?}"),
        }
        let second = events
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert!(matches!(
            second,
            WorkerEvent::StyleVariants {
                result: Err(WorkerError::Crashed { .. }),
                ..
            }
        ));
        drop(tx);
        thread.join().unwrap();
    }

    /// Thumbnails of an older scan are dropped; the newest scan's are served.
    #[test]
    fn stale_thumbnails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        image::RgbImage::from_pixel(200, 400, image::Rgb([1, 2, 3]))
            .save(&path)
            .unwrap();
        let (sink, events) = EventSink::channel();
        let (tx, rx) = unbounded();
        for generation in [1, 2] {
            tx.send(ImageRequest::Thumbnail {
                role: FolderRole::Photos,
                generation,
                index: 0,
                path: path.clone(),
            })
            .unwrap();
        }
        drop(tx);
        run(&rx, &sink, decode_rgb);
        let got: Vec<u64> = events
            .try_iter()
            .map(|e| match e {
                WorkerEvent::Thumbnail {
                    generation, result, ..
                } => {
                    let img = result.unwrap();
                    assert_eq!(img.size, [48, 96]);
                    generation
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(got, vec![2]);
    }
}
