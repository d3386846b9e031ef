//! `p2a-convert`: converts photos for the compare view on its own device, keeping a
//! few loaded generators and the network's last outputs, so that changing only a
//! finishing touch (colours, brightness, a photo-blend strength) does not run the
//! network again. A newer request for the same photo and side replaces a queued
//! older one (latest value wins). Every request is answered, also when the
//! conversion panics.

use std::collections::VecDeque;
use std::sync::Arc;

use burn::tensor::Device;
use crossbeam_channel::{Receiver, Sender, unbounded};

use image::RgbImage;

use super::protocol::{
    ConvertRequest, Converted, ModelSpec, Slot, TiledPixels, WorkerError, WorkerEvent,
};
use super::{EventSink, spawn_named};
use crate::convert::finish::{StyleChoice, StylePlan};
use crate::convert::{ConvertOptions, finishing_touches, network_output};
use crate::device::{DeviceSetting, SelectedDevice};
use crate::interop::params::weights_blake3;
use crate::model::Generator;
use crate::model_io::{LoadedModel, ModelError, load_generator};

/// Loaded generators kept by the conversion thread.
const MODEL_CACHE_SIZE: usize = 4;

/// Raw network outputs kept (a 4K output is 24 MB).
const RAW_CACHE_SIZE: usize = 4;

/// Opens the model `spec` names on `device`: a trainer's snapshot, or a file.
pub(crate) fn open_model(spec: &ModelSpec, device: &Device) -> Result<LoadedModel, ModelError> {
    match &spec.snapshot {
        Some(snapshot) => Ok(LoadedModel {
            generator: snapshot.build(device),
            description: spec.label.clone(),
            upsample: snapshot.upsample,
        }),
        None => load_generator(&spec.path, device, spec.upsample),
    }
}

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

/// A generator loaded on the conversion thread's device, with its weights' hash
/// (computed once: it is read back from the device).
struct CachedModel {
    spec: ModelSpec,
    generator: Generator,
    blake3: String,
}

/// What a raw network output depends on.
#[derive(Debug, Clone)]
struct RawKey {
    photo: u64,
    /// The pixels converted: one photo id shows many frames of a clip. Compared
    /// by pointer, which is sound because the cache entry holds the `Arc` (its
    /// address cannot be reused while the entry lives).
    image: Arc<RgbImage>,
    slot: Slot,
    model: ModelSpec,
    device: DeviceSetting,
    weights_percent: u32,
}

impl PartialEq for RawKey {
    fn eq(&self, o: &Self) -> bool {
        self.photo == o.photo
            && Arc::ptr_eq(&self.image, &o.image)
            && self.slot == o.slot
            && self.model == o.model
            && self.device == o.device
            && self.weights_percent == o.weights_percent
    }
}

/// Generators and raw outputs kept on the conversion thread.
struct ModelCache {
    device: Option<(DeviceSetting, SelectedDevice)>,
    models: Vec<CachedModel>,
    raw: Vec<(RawKey, Arc<RgbImage>)>,
}

impl ModelCache {
    fn new() -> Self {
        Self {
            device: None,
            models: Vec::new(),
            raw: Vec::new(),
        }
    }

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

    /// The generator `spec` names and its hash, loaded once and kept (most
    /// recently used last).
    fn generator(
        &mut self,
        spec: &ModelSpec,
        device: &Device,
    ) -> Result<(Generator, String), WorkerError> {
        // Labels are for people; the weights are what the path, rule and snapshot say.
        let same = |s: &ModelSpec| {
            s.path == spec.path && s.upsample == spec.upsample && s.snapshot == spec.snapshot
        };
        if let Some(pos) = self.models.iter().position(|m| same(&m.spec)) {
            let entry = self.models.remove(pos);
            let found = (entry.generator.clone(), entry.blake3.clone());
            self.models.push(entry);
            return Ok(found);
        }
        let loaded = open_model(spec, device)?;
        let blake3 = match &spec.snapshot {
            Some(snapshot) => snapshot.blake3.clone(),
            None => weights_blake3(&loaded.generator),
        };
        self.models.push(CachedModel {
            spec: spec.clone(),
            generator: loaded.generator.clone(),
            blake3: blake3.clone(),
        });
        if self.models.len() > MODEL_CACHE_SIZE {
            self.models.remove(0);
        }
        Ok((loaded.generator, blake3))
    }

    fn raw_output(&self, key: &RawKey) -> Option<Arc<RgbImage>> {
        self.raw
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }

    fn keep_raw_output(&mut self, key: RawKey, raw: Arc<RgbImage>) {
        self.raw.retain(|(k, _)| k != &key);
        self.raw.push((key, raw));
        if self.raw.len() > RAW_CACHE_SIZE {
            self.raw.remove(0);
        }
    }
}

fn run(rx: &Receiver<ConvertRequest>, sink: &EventSink) {
    let mut cache = ModelCache::new();
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
            cache.raw.clear();
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
    let (generator, blake3) = cache.generator(&request.model, &selected.device)?;
    let plan = StylePlan::new(&request.model.path, request.style);
    let options = options_for_backend(&request.style, plan.photo_blend(), selected.is_gpu_backend);
    let key = RawKey {
        photo: request.id,
        image: request.image.clone(),
        slot: request.slot,
        model: request.model.clone(),
        device: request.device.clone(),
        weights_percent: plan.weights_percent(),
    };
    let started = std::time::Instant::now();
    let (raw, network_ran) = match cache.raw_output(&key) {
        Some(raw) => (raw, false),
        None => {
            // Parent weights for a fine-tune's strength come from disk each time: a
            // strength change is rare next to conversions at one strength.
            let generator = plan.generator(generator, &selected.device)?;
            let raw = Arc::new(network_output(
                &generator,
                &request.image,
                &options,
                &selected.device,
            )?);
            cache.keep_raw_output(key, raw.clone());
            (raw, true)
        }
    };
    let out = finishing_touches(&raw, &request.image, &options);
    let millis = started.elapsed().as_secs_f64() * 1e3;
    let pixels = TiledPixels::from_rgb(&out);
    Ok(Converted {
        image: Arc::new(out),
        pixels,
        millis,
        network_ran,
        recipe: plan.recipe(&request.model.label, &blake3),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::finish::{interpolate_generators, keep_photo_colors};
    use crate::model::{GeneratorConfig, UpsampleMode};
    use crate::model_io::write_model_dir;
    use crate::train::run_dir::{ModelOrigin, write_json};
    use crate::train::{ParentModel, TrainConfig};

    /// The network runs again exactly when its output would change: a colour choice
    /// or a photo blend reuses it; a fine-tune's strength (its weights) or another
    /// photo does not.
    #[test]
    fn only_finishing_touches_reuse_the_network_output() {
        let root = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let write = |name: &str| {
            let dir = root.path().join(name);
            write_model_dir(
                GeneratorConfig::new().init(&device),
                &dir,
                UpsampleMode::AlignCorners,
                ModelOrigin::Trained,
            )
            .unwrap()
        };
        let (parent, child) = (write("parent"), write("child"));
        let config = TrainConfig {
            parent: Some(ParentModel {
                path: parent.clone(),
                weights_blake3: String::new(),
                description: "parent".into(),
            }),
            ..TrainConfig::default()
        };
        write_json(&child.join("config.json"), &config).unwrap();
        let photo = Arc::new(RgbImage::from_fn(40, 32, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 7) as u8, 90])
        }));
        let request = |id: u64, strength_percent: u32, keep_colors: bool| ConvertRequest {
            id,
            slot: Slot::A,
            model: ModelSpec::imported(&child),
            image: photo.clone(),
            style: StyleChoice {
                strength_percent,
                keep_colors,
                match_luminance: false,
            },
            device: DeviceSetting::Cpu,
        };
        let (sink, _events) = EventSink::channel();
        let mut cache = ModelCache::new();
        let mut convert = |r: ConvertRequest| convert_one(&mut cache, &r, &sink).unwrap();

        let full = convert(request(1, 100, false));
        assert!(full.network_ran);
        let kept = convert(request(1, 100, true));
        assert!(!kept.network_ran, "a colour choice reuses the output");
        assert_eq!(*kept.image, keep_photo_colors(&full.image, &photo));

        let half = convert(request(1, 50, false));
        assert!(
            half.network_ran,
            "a fine-tune's strength changes its weights"
        );
        let open = |p: &std::path::Path| load_generator(p, &device, None).unwrap().generator;
        let mixed = interpolate_generators(&open(&parent), &open(&child), 0.5);
        let expected = crate::convert::convert_image(
            &mixed,
            &photo,
            &options_for_backend(&request(1, 50, false).style, 1.0, false),
            &device,
        )
        .unwrap();
        assert_eq!(*half.image, expected);
        assert!(!convert(request(1, 50, true)).network_ran);
        assert!(convert(request(2, 50, true)).network_ran, "another photo");
        // Another frame of the same clip (same id, new pixels) runs the network
        // (the studio once showed the previous frame's output, "restyled").
        let frame = Arc::new(RgbImage::from_fn(40, 32, |x, y| {
            image::Rgb([(y * 6) as u8, (x * 5) as u8, 30])
        }));
        let next = convert(ConvertRequest {
            image: frame.clone(),
            ..request(2, 50, true)
        });
        assert!(next.network_ran, "another frame");
        assert_ne!(next.image, convert(request(2, 50, true)).image);
    }

    /// Conversion reports the device it got, and why it is not the one asked
    /// for, exactly like training does.
    #[test]
    fn the_conversion_device_and_its_fallback_are_reported() {
        let (sink, events) = EventSink::channel();
        let mut cache = ModelCache::new();
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
