//! `p2a-convert`: converts photos for the compare view on its own device, keeping a
//! few loaded generators. A newer request for the same photo and side replaces a
//! queued older one (latest value wins). Every request is answered, also when the
//! conversion panics.

use std::collections::VecDeque;
use std::sync::Arc;

use burn::tensor::Device;
use crossbeam_channel::{Receiver, Sender, unbounded};

use super::protocol::{
    ConvertRequest, Converted, ModelSpec, TiledPixels, WorkerError, WorkerEvent,
};
use super::{EventSink, spawn_named};
use crate::convert::finish::{StyleChoice, styled};
use crate::convert::{ConvertOptions, convert_image};
use crate::device::{DeviceSetting, SelectedDevice};
use crate::model::Generator;
use crate::model_io::{LoadedModel, load_generator};

/// Loaded generators kept by the conversion thread.
const MODEL_CACHE_SIZE: usize = 4;

/// Starts the conversion thread.
pub(crate) fn spawn(sink: EventSink) -> Sender<ConvertRequest> {
    let (tx, rx) = unbounded();
    let thread_sink = sink.clone();
    if !spawn_named("p2a-convert", move || run(&rx, &thread_sink)) {
        log::error!("cannot start the conversion thread");
    }
    tx
}

/// Answers a request that could not reach the conversion thread.
pub(crate) fn answer_lost(request: ConvertRequest, sink: &EventSink) {
    sink.send(WorkerEvent::Converted {
        id: request.id,
        slot: request.slot,
        model: request.model,
        result: Err(WorkerError::Spawn(
            "the conversion thread is not running".to_string(),
        )),
    });
}

/// The UI chooses only what artists see (strength, colours, brightness); tiling
/// follows the device the worker actually got: GPU tiles must fit its
/// storage-buffer limit.
pub(crate) fn options_for_backend(
    style: &StyleChoice,
    photo_blend: f32,
    is_gpu: bool,
) -> ConvertOptions {
    ConvertOptions {
        match_luminance: style.match_luminance,
        keep_colors: style.keep_colors,
        photo_blend,
        ..ConvertOptions::for_backend(is_gpu)
    }
}

/// Generators loaded on the conversion thread's device.
struct ModelCache {
    device: Option<(DeviceSetting, SelectedDevice)>,
    models: Vec<(ModelSpec, Generator)>,
}

impl ModelCache {
    /// The device for `setting`, created (and reported, with any fallback) when it
    /// changes.
    fn device(&mut self, setting: &DeviceSetting, sink: &EventSink) -> SelectedDevice {
        match &self.device {
            Some((s, d)) if s == setting => d.clone(),
            _ => {
                self.models.clear();
                let selected = setting.create();
                sink.send(WorkerEvent::ConvertDevice {
                    description: selected.description.clone(),
                    fallback: selected.fallback_reason.clone(),
                });
                self.device = Some((setting.clone(), selected.clone()));
                selected
            }
        }
    }

    fn generator(&mut self, spec: &ModelSpec, device: &Device) -> Result<Generator, WorkerError> {
        let same = |s: &ModelSpec| s.path == spec.path && s.upsample == spec.upsample;
        if let Some(pos) = self.models.iter().position(|(s, _)| same(s)) {
            let entry = self.models.remove(pos);
            let g = entry.1.clone();
            self.models.push(entry);
            return Ok(g);
        }
        let loaded = load_generator(&spec.path, device, spec.upsample)?;
        self.models.push((spec.clone(), loaded.generator.clone()));
        if self.models.len() > MODEL_CACHE_SIZE {
            self.models.remove(0);
        }
        Ok(loaded.generator)
    }
}

fn run(rx: &Receiver<ConvertRequest>, sink: &EventSink) {
    let mut cache = ModelCache {
        device: None,
        models: Vec::new(),
    };
    let mut pending: VecDeque<ConvertRequest> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(r) => pending.push_back(r),
                Err(_) => return,
            }
        }
        pending.extend(rx.try_iter());
        let Some(request) = pending.pop_front() else {
            continue;
        };
        // Latest value wins: a newer request for the same photo and side replaces
        // this one, and it is the newer one that gets answered.
        let superseded = pending
            .iter()
            .any(|r| r.id == request.id && r.slot == request.slot);
        if superseded {
            continue;
        }
        let (id, slot, model) = (request.id, request.slot, request.model.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            convert_one(&mut cache, &request, sink)
        }));
        let result = outcome.unwrap_or_else(|payload| {
            // A panic may leave a model half-used: drop them all.
            cache.models.clear();
            Err(WorkerError::crashed("conversion", payload.as_ref()))
        });
        sink.send(WorkerEvent::Converted {
            id,
            slot,
            model,
            result,
        });
    }
}

fn convert_one(
    cache: &mut ModelCache,
    request: &ConvertRequest,
    sink: &EventSink,
) -> Result<Converted, WorkerError> {
    let selected = cache.device(&request.device, sink);
    let generator = cache.generator(&request.model, &selected.device)?;
    let loaded = LoadedModel {
        upsample: generator.upsample,
        generator,
        description: request.model.label.clone(),
    };
    // Parent weights for a fine-tune's strength come from disk each time: a strength
    // change is rare next to conversions at one strength, which the cache serves.
    let styled = styled(loaded, &request.model.path, request.style, &selected.device)?;
    let options = options_for_backend(&request.style, styled.photo_blend, selected.is_gpu_backend);
    let started = std::time::Instant::now();
    let out = convert_image(
        &styled.generator,
        &request.image,
        &options,
        &selected.device,
    )?;
    let millis = started.elapsed().as_secs_f64() * 1e3;
    let pixels = TiledPixels::from_rgb(&out);
    Ok(Converted {
        image: Arc::new(out),
        pixels,
        millis,
        recipe: styled.recipe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conversion reports the device it got, and why it is not the one asked
    /// for, exactly like training does.
    #[test]
    fn the_conversion_device_and_its_fallback_are_reported() {
        let (sink, events) = EventSink::channel();
        let mut cache = ModelCache {
            device: None,
            models: Vec::new(),
        };
        let asked = DeviceSetting::Gpu {
            adapter: Some("no such adapter".to_string()),
        };
        cache.device(&asked, &sink);
        match events.try_recv() {
            Ok(WorkerEvent::ConvertDevice { fallback, .. }) => {
                let why = fallback.expect("a fallback reason");
                assert!(why.contains("no such adapter"), "{why}");
            }
            other => panic!("expected ConvertDevice, got {other:?}"),
        }
        // The same setting again: no new device, no second report.
        cache.device(&asked, &sink);
        assert!(events.try_recv().is_err());
    }
}
