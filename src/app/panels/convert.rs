//! Convert panel: photos dropped anywhere or opened, a model chosen among the
//! active run's latest checkpoint, every checkpoint under the checkpoints folder and
//! imported files, an optional second model to compare with, a before/after split
//! view, saving, and whole-folder conversion with progress and Cancel.
//!
//! Conversions run on the worker; this panel only states which (photo, model) pairs
//! it wants and shows what came back.

use crate::app::downloads::Downloads;
use crate::download::ItemKind;
use eframe::egui;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use image::RgbImage;

use crate::app::command::UiCommand;
use crate::app::run_state::RunState;
use crate::app::state::Settings;
use crate::app::widgets::compare::{CompareView, Side};
use crate::app::widgets::tiled::TiledTexture;
use crate::app::worker::{
    BatchSummary, ConvertRequest, Converted, DialogKind, DialogPurpose, ImageRequest, JobRequest,
    ModelSpec, Slot, TiledPixels, WorkerRequest,
};
use crate::convert::recipe::Recipe;
use crate::data::image_io::IMAGE_EXTENSIONS;
use crate::train::TrainCommand;
use crate::train::run_dir::{RunInfo, files};
use crate::video::ffmpeg::{VideoCodec, VideoInfo, VideoQuality};
use crate::video::{VIDEO_EXTENSIONS, VideoProgress, has_video_extension};

/// Decoded photos kept in memory (older ones are decoded again when selected).
const KEEP_DECODED: usize = 8;

/// File extensions imported as models.
pub const MODEL_EXTENSIONS: [&str; 5] = ["pt", "pth", "ckpt", "safetensors", "bpk"];

/// Which model a side uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// The run of this session: its newest checkpoint, whatever step that is.
    ActiveRun,
    /// A fixed checkpoint or file.
    Spec(ModelSpec),
}

#[derive(Debug)]
enum Original {
    NotLoaded,
    Decoding,
    Ready(Arc<RgbImage>, TiledTexture),
    Failed(String),
}

#[derive(Debug)]
enum SlotResult {
    Pending(ModelSpec),
    Done {
        model: ModelSpec,
        image: Arc<RgbImage>,
        texture: TiledTexture,
        ms: f64,
        network_ran: bool,
        recipe: Recipe,
    },
    Failed {
        model: ModelSpec,
        error: String,
    },
}

impl SlotResult {
    fn model(&self) -> &ModelSpec {
        match self {
            Self::Pending(m) | Self::Done { model: m, .. } | Self::Failed { model: m, .. } => m,
        }
    }
}

#[derive(Debug)]
struct Photo {
    id: u64,
    path: PathBuf,
    name: String,
    original: Original,
    results: HashMap<Slot, SlotResult>,
    last_used: u64,
    /// For a video clip: which frame is shown, and the clip once probed.
    clip: Option<Clip>,
}

/// A video clip in the list: the before/after view shows one of its frames.
#[derive(Debug, Clone, Default)]
struct Clip {
    /// The frame shown, in seconds.
    time_s: f64,
    /// What FFmpeg found in it (after the first frame decoded).
    info: Option<VideoInfo>,
}

impl Photo {
    /// The request that decodes what the view shows: the photo, or the clip's frame.
    fn decode_request(&self) -> ImageRequest {
        match &self.clip {
            Some(clip) => ImageRequest::DecodeVideoFrame {
                id: self.id,
                path: self.path.clone(),
                time_s: clip.time_s,
            },
            None => ImageRequest::DecodePhoto {
                id: self.id,
                path: self.path.clone(),
            },
        }
    }
}

/// The running video conversion, as the panel shows it.
#[derive(Debug)]
struct VideoJobView {
    name: String,
    progress: Option<VideoProgress>,
}

#[derive(Debug)]
struct SampleView {
    step: usize,
    index: usize,
    before: TiledTexture,
    after: TiledTexture,
}

/// The convert panel's runtime state.
#[derive(Debug, Default)]
pub struct ConvertPanel {
    photos: Vec<Photo>,
    selected: Option<u64>,
    next_id: u64,
    clock: u64,
    model_a: Option<ModelChoice>,
    model_b: Option<ModelChoice>,
    compare_models: bool,
    view: CompareView,
    sample: Option<SampleView>,
    batch: Option<(usize, usize)>,
    /// Files the last folder conversion could not convert, with reasons.
    batch_failures: Vec<(PathBuf, String)>,
    /// The conversion thread's device, once it has one.
    pub device: Option<String>,
    video_job: Option<VideoJobView>,
    /// Photo sides already converted with live weights of the run in this folder:
    /// a restyle (colours, strength) of those keeps the weights they showed.
    live_converted: (Option<PathBuf>, HashSet<(u64, Slot)>),
}

/// Whether `path` looks like a model file.
pub fn is_model_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether `path` looks like a photo.
pub fn is_photo_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// `STEM-anime.mp4` beside `clip`, or `STEM-anime-2.mp4`, ... if taken.
fn free_output_beside(clip: &Path, stem: &str, ext: &str) -> PathBuf {
    let dir = clip.parent().unwrap_or(Path::new("."));
    (1..)
        .map(|n| match n {
            1 => dir.join(format!("{stem}-anime.{ext}")),
            n => dir.join(format!("{stem}-anime-{n}.{ext}")),
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("{stem}-anime.{ext}")))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

impl ConvertPanel {
    /// The compare view's zoom, pan and divider.
    pub fn view(&self) -> &CompareView {
        &self.view
    }

    /// Names of the listed photos.
    pub fn photo_names(&self) -> Vec<String> {
        self.photos.iter().map(|p| p.name.clone()).collect()
    }

    /// The selected photo's output for `slot`, when converted: pixels and the model label.
    pub fn result(&self, slot: Slot) -> Option<(Arc<RgbImage>, String)> {
        let photo = self.photos.iter().find(|p| Some(p.id) == self.selected)?;
        match photo.results.get(&slot)? {
            SlotResult::Done { image, model, .. } => Some((image.clone(), model.label.clone())),
            _ => None,
        }
    }

    /// Forgets every result, so each photo is converted again with the current choices.
    pub fn clear_results(&mut self) {
        for p in &mut self.photos {
            p.results.clear();
        }
    }

    /// The output of photo `id` for `slot`, with its recipe.
    pub fn result_of(&self, id: u64, slot: Slot) -> Option<(Arc<RgbImage>, Recipe)> {
        match self
            .photos
            .iter()
            .find(|p| p.id == id)?
            .results
            .get(&slot)?
        {
            SlotResult::Done { image, recipe, .. } => Some((image.clone(), recipe.clone())),
            _ => None,
        }
    }

    /// Whether a folder conversion runs.
    pub fn batch_running(&self) -> bool {
        self.batch.is_some()
    }

    /// Adds photos (duplicates are selected, not added) and selects the first.
    pub fn add_photos(&mut self, paths: &[PathBuf]) -> Vec<WorkerRequest> {
        let mut first = None;
        for path in paths {
            let id = match self.photos.iter().find(|p| &p.path == path) {
                Some(p) => p.id,
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.photos.push(Photo {
                        id,
                        path: path.clone(),
                        name: file_name(path),
                        original: Original::NotLoaded,
                        results: HashMap::new(),
                        last_used: 0,
                        clip: has_video_extension(path).then(Clip::default),
                    });
                    id
                }
            };
            first.get_or_insert(id);
        }
        if let Some(id) = first {
            self.selected = Some(id);
            self.sample = None;
        }
        self.requests_for_selection()
    }

    /// Uses `path` as model A (after an import).
    pub fn use_model(&mut self, spec: ModelSpec) {
        self.model_a = Some(ModelChoice::Spec(spec));
        self.sample = None;
    }

    /// Shows a sample-timeline cell in the compare view.
    pub fn show_sample(
        &mut self,
        step: usize,
        index: usize,
        before: TiledTexture,
        after: TiledTexture,
    ) {
        self.sample = Some(SampleView {
            step,
            index,
            before,
            after,
        });
        self.view.fit();
    }

    /// Takes a decoded photo.
    pub fn on_decoded(
        &mut self,
        ctx: &egui::Context,
        id: u64,
        result: Result<(Arc<RgbImage>, TiledPixels), String>,
    ) {
        let Some(photo) = self.photos.iter_mut().find(|p| p.id == id) else {
            return;
        };
        photo.original = match result {
            Ok((rgb, prepared)) => Original::Ready(
                rgb,
                TiledTexture::upload(ctx, &format!("photo-{id}"), &prepared),
            ),
            Err(e) => Original::Failed(e),
        };
    }

    /// Takes a decoded video frame (an answer for a frame no longer wanted is dropped).
    pub fn on_video_frame(
        &mut self,
        ctx: &egui::Context,
        id: u64,
        time_s: f64,
        result: Result<(Arc<RgbImage>, TiledPixels, VideoInfo), String>,
    ) {
        let Some(photo) = self.photos.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let Some(clip) = photo.clip.as_mut() else {
            return;
        };
        if clip.time_s != time_s {
            return;
        }
        photo.original = match result {
            Ok((rgb, prepared, info)) => {
                clip.info = Some(info);
                Original::Ready(
                    rgb,
                    TiledTexture::upload(ctx, &format!("clip-{id}-{time_s}"), &prepared),
                )
            }
            Err(e) => Original::Failed(e),
        };
    }

    /// The id of the selected item when it is a video clip.
    pub fn selected_clip(&self) -> Option<u64> {
        self.photos
            .iter()
            .find(|p| Some(p.id) == self.selected && p.clip.is_some())
            .map(|p| p.id)
    }

    /// The file of clip `id`, if listed.
    pub fn clip_path(&self, id: u64) -> Option<PathBuf> {
        self.photos
            .iter()
            .find(|p| p.id == id && p.clip.is_some())
            .map(|p| p.path.clone())
    }

    /// Marks a video conversion of `input` as started.
    pub fn on_video_started(&mut self, input: &Path) {
        self.video_job = Some(VideoJobView {
            name: file_name(input),
            progress: None,
        });
    }

    /// Records video conversion progress.
    pub fn on_video_progress(&mut self, progress: VideoProgress) {
        if let Some(job) = self.video_job.as_mut() {
            job.progress = Some(progress);
        }
    }

    /// Marks the video conversion as ended (whatever the outcome).
    pub fn on_video_finished(&mut self) {
        self.video_job = None;
    }

    /// Whether a video conversion runs.
    pub fn video_running(&self) -> bool {
        self.video_job.is_some()
    }

    /// Takes a conversion result; returns an error message worth a notification.
    pub fn on_converted(
        &mut self,
        ctx: &egui::Context,
        id: u64,
        slot: Slot,
        model: ModelSpec,
        result: Result<Converted, String>,
    ) -> Option<String> {
        let photo = self.photos.iter_mut().find(|p| p.id == id)?;
        // Only the answer to the newest request counts.
        if !matches!(photo.results.get(&slot), Some(SlotResult::Pending(m)) if *m == model) {
            return None;
        }
        match result {
            Ok(converted) => {
                let texture =
                    TiledTexture::upload(ctx, &format!("result-{id}-{slot:?}"), &converted.pixels);
                photo.results.insert(
                    slot,
                    SlotResult::Done {
                        model,
                        image: converted.image,
                        texture,
                        ms: converted.millis,
                        network_ran: converted.network_ran,
                        recipe: converted.recipe,
                    },
                );
                None
            }
            Err(error) => {
                let msg = format!("{} with {}: {error}", photo.name, model.label);
                photo
                    .results
                    .insert(slot, SlotResult::Failed { model, error });
                Some(msg)
            }
        }
    }

    /// Records folder conversion progress.
    pub fn on_batch_progress(&mut self, done: usize, total: usize) {
        self.batch = Some((done, total));
    }

    /// Marks the folder conversion as ended (whatever the outcome: the progress
    /// bar goes) and keeps the list of files that failed.
    pub fn on_batch_finished(&mut self, summary: Option<&BatchSummary>) {
        self.batch = None;
        self.batch_failures = summary.map(|s| s.failed.clone()).unwrap_or_default();
    }

    /// Marks a folder conversion as started.
    pub fn on_batch_started(&mut self) {
        self.batch = Some((0, 0));
        self.batch_failures.clear();
    }

    /// Files the last folder conversion could not convert.
    pub fn batch_failures(&self) -> &[(PathBuf, String)] {
        &self.batch_failures
    }

    /// The spec a choice stands for now. While the run is active that is the
    /// trainer's current generator (a snapshot it sent on request), never an older
    /// checkpoint; once it has ended, its newest checkpoint (the same weights).
    pub fn resolve(choice: &ModelChoice, run: &RunState) -> Result<ModelSpec, String> {
        match choice {
            ModelChoice::Spec(s) => Ok(s.clone()),
            ModelChoice::ActiveRun if run.is_active() => match (&run.live_weights, &run.run_dir) {
                (Some(snapshot), Some(dir)) => Ok(ModelSpec::live(dir, snapshot.clone())),
                _ if run.live_weights_pending => {
                    Err("Fetching the trainer's current weights...".into())
                }
                _ if !run.is_stepping() => Err("The run has not started stepping yet.".into()),
                _ => Err("Asking the trainer for its current weights...".into()),
            },
            ModelChoice::ActiveRun => match &run.latest_checkpoint {
                Some((step, dir)) => Ok(ModelSpec {
                    path: dir.join(files::GENERATOR),
                    upsample: Some(run.upsample),
                    label: format!("Active run - latest checkpoint, step {step}"),
                    snapshot: None,
                }),
                None => Err("The run ended without a checkpoint.".into()),
            },
        }
    }

    /// What the active-run entry of a model picker says.
    fn active_run_label(run: &RunState) -> String {
        match (&run.live_weights, &run.latest_checkpoint) {
            (Some(s), _) if run.is_active() => {
                format!("Active run - live weights, step {}", s.step)
            }
            (None, _) if run.is_active() => "Active run - live weights".to_string(),
            (_, Some((step, _))) => format!("Active run - latest checkpoint, step {step}"),
            (_, None) => "Active run - no checkpoint".to_string(),
        }
    }

    /// Model A's spec, if one is chosen and available.
    pub fn model_a_spec(&self, run: &RunState) -> Option<ModelSpec> {
        self.model_a
            .as_ref()
            .and_then(|c| Self::resolve(c, run).ok())
    }

    fn choices(
        settings: &Settings,
        run: &RunState,
        runs: &[RunInfo],
    ) -> Vec<(ModelChoice, String)> {
        let mut choices = Vec::new();
        if run.run_dir.is_some() {
            choices.push((ModelChoice::ActiveRun, Self::active_run_label(run)));
        }
        for r in runs {
            for ck in r.checkpoints.iter().rev() {
                let spec = ModelSpec::of_checkpoint(r, ck);
                let label = spec.label.clone();
                choices.push((ModelChoice::Spec(spec), label));
            }
        }
        for p in &settings.convert.imported {
            let spec = ModelSpec::imported(p);
            let label = spec.label.clone();
            choices.push((ModelChoice::Spec(spec), label));
        }
        choices
    }

    fn choice_label(choice: &Option<ModelChoice>, run: &RunState) -> String {
        match choice {
            None => "(choose a model)".into(),
            Some(ModelChoice::ActiveRun) => Self::active_run_label(run),
            Some(ModelChoice::Spec(s)) => s.label.clone(),
        }
    }

    fn touch_selected(&mut self) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(p) = self.photos.iter_mut().find(|p| Some(p.id) == self.selected) {
            p.last_used = clock;
        }
        let mut decoded: Vec<(u64, u64)> = self
            .photos
            .iter()
            .filter(|p| matches!(p.original, Original::Ready(..)))
            .map(|p| (p.last_used, p.id))
            .collect();
        if decoded.len() > KEEP_DECODED {
            decoded.sort();
            for (_, id) in &decoded[..decoded.len() - KEEP_DECODED] {
                if let Some(p) = self.photos.iter_mut().find(|p| p.id == *id) {
                    p.original = Original::NotLoaded;
                    p.results.clear();
                }
            }
        }
    }

    fn requests_for_selection(&mut self) -> Vec<WorkerRequest> {
        self.touch_selected();
        let mut out = Vec::new();
        if let Some(p) = self.photos.iter_mut().find(|p| Some(p.id) == self.selected)
            && matches!(p.original, Original::NotLoaded)
        {
            p.original = Original::Decoding;
            out.push(WorkerRequest::Images(p.decode_request()));
        }
        out
    }

    /// Asks for what the selected photo still needs (decode, conversions, the
    /// trainer's current weights). Call once per frame.
    pub fn reconcile(
        &mut self,
        settings: &Settings,
        run: &RunState,
        runs: &[RunInfo],
    ) -> Vec<UiCommand> {
        if self.model_a.is_none() {
            let choices = Self::choices(settings, run, runs);
            let preferred = choices
                .iter()
                .find(|(c, _)| {
                    *c == ModelChoice::ActiveRun
                        && (run.is_active() || run.latest_checkpoint.is_some())
                })
                .or_else(|| {
                    choices
                        .iter()
                        .find(|(c, _)| matches!(c, ModelChoice::Spec(_)))
                });
            self.model_a = preferred.map(|(c, _)| c.clone());
        }
        let mut out = Vec::new();
        let shown = [
            self.model_a.as_ref(),
            self.model_b.as_ref().filter(|_| self.compare_models),
        ];
        let Some(photo) = self.photos.iter_mut().find(|p| Some(p.id) == self.selected) else {
            return out;
        };
        if matches!(photo.original, Original::NotLoaded) {
            photo.original = Original::Decoding;
            out.push(UiCommand::Worker(WorkerRequest::Images(
                photo.decode_request(),
            )));
        }
        let Original::Ready(rgb, _) = &photo.original else {
            return out;
        };
        // A side that shows the active run and has no result of it yet converts
        // with the trainer's weights of now: older ones are refreshed first. A
        // result already shown stays until "Use step N" (or a new snapshot).
        let live_stale = run.is_stepping()
            && run
                .live_weights
                .as_ref()
                .is_none_or(|s| s.step < run.step());
        let mut want_snapshot = false;
        if self.live_converted.0 != run.run_dir {
            self.live_converted = (run.run_dir.clone(), HashSet::new());
        }
        for (slot, choice) in [Slot::A, Slot::B].into_iter().zip(shown) {
            if choice == Some(&ModelChoice::ActiveRun)
                && live_stale
                && !self.live_converted.1.contains(&(photo.id, slot))
            {
                want_snapshot = true;
                continue;
            }
            let Some(spec) = choice.and_then(|c| Self::resolve(c, run).ok()) else {
                continue;
            };
            if spec.snapshot.is_some() {
                self.live_converted.1.insert((photo.id, slot));
            }
            if photo.results.get(&slot).map(SlotResult::model) == Some(&spec) {
                continue;
            }
            photo
                .results
                .insert(slot, SlotResult::Pending(spec.clone()));
            out.push(UiCommand::Worker(WorkerRequest::Convert(ConvertRequest {
                id: photo.id,
                slot,
                model: spec,
                image: rgb.clone(),
                style: settings.convert.style(),
                device: settings.device.clone(),
            })));
        }
        if want_snapshot && !run.live_weights_pending {
            out.push(UiCommand::Train(TrainCommand::Snapshot));
        }
        out
    }

    /// Which step the active run's live weights are from, and a way to take newer ones.
    fn live_weights_ui(ui: &mut Ui, run: &RunState, out: &mut Vec<UiCommand>) {
        if !run.is_active() {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            if run.live_weights_pending {
                ui.spinner();
                ui.label("Fetching the trainer's current weights...");
                return;
            }
            let Some(snapshot) = &run.live_weights else {
                return;
            };
            let now = run.step();
            if snapshot.step < now {
                ui.label(format!("Weights of step {}", snapshot.step));
                if ui
                    .button(format!("Use step {now}"))
                    .on_hover_text("Take the generator as it is now and convert again")
                    .clicked()
                {
                    out.push(UiCommand::Train(TrainCommand::Snapshot));
                }
            } else {
                ui.weak(format!("Weights of step {} (current)", snapshot.step));
            }
        });
    }

    /// The left column: photos, models, actions.
    #[allow(clippy::too_many_lines)] // one column's widgets, top to bottom
    pub fn side_ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        run: &RunState,
        runs: &[RunInfo],
        downloads: &Downloads,
        out: &mut Vec<UiCommand>,
    ) {
        ui.heading("Convert");
        ui.label("Drop photos or video clips anywhere on the window, or:");
        ui.horizontal(|ui| {
            if ui.button("Open photos...").clicked() {
                out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::OpenPhotos,
                    kind: DialogKind::PickFiles(
                        "Images and videos".into(),
                        IMAGE_EXTENSIONS
                            .iter()
                            .chain(VIDEO_EXTENSIONS)
                            .map(|e| e.to_string())
                            .collect(),
                    ),
                    start_dir: settings.convert.last_dir.clone(),
                })));
            }
            if ui
                .add_enabled(!self.photos.is_empty(), egui::Button::new("Clear list"))
                .clicked()
            {
                self.photos.clear();
                self.selected = None;
            }
        });
        egui::ScrollArea::vertical()
            .id_salt("photo-list")
            .max_height(180.0)
            .show(ui, |ui| {
                let mut pick = None;
                for p in &self.photos {
                    let status = match (&p.original, p.results.get(&Slot::A)) {
                        (Original::Failed(_), _) => " (unreadable)",
                        (_, Some(SlotResult::Done { .. })) => " (converted)",
                        (_, Some(SlotResult::Pending(_))) => " (converting)",
                        (_, Some(SlotResult::Failed { .. })) => " (failed)",
                        _ => "",
                    };
                    let selected = Some(p.id) == self.selected && self.sample.is_none();
                    if ui
                        .selectable_label(selected, format!("{}{status}", p.name))
                        .on_hover_text(p.path.display().to_string())
                        .clicked()
                    {
                        pick = Some(p.id);
                    }
                }
                if let Some(id) = pick {
                    self.selected = Some(id);
                    self.sample = None;
                    for c in self.requests_for_selection() {
                        out.push(UiCommand::Worker(c));
                    }
                }
            });
        ui.separator();
        ui.label(RichText::new("Model").strong());
        let choices = Self::choices(settings, run, runs);
        let mut a = self.model_a.clone();
        egui::ComboBox::from_label("Model A")
            .selected_text(Self::choice_label(&a, run))
            .width(260.0)
            .show_ui(ui, |ui| {
                for (c, label) in &choices {
                    ui.selectable_value(&mut a, Some(c.clone()), label);
                }
            });
        if a != self.model_a {
            self.model_a = a;
            self.sample = None;
        }
        if choices.is_empty() {
            ui.weak("No model yet: train one, import a .pt / .safetensors file, or download a published one:");
            downloads.offer_ui(ui, ItemKind::Generator, out);
        } else {
            egui::CollapsingHeader::new("Download a published model")
                .id_salt("published-models")
                .show(ui, |ui| downloads.offer_ui(ui, ItemKind::Generator, out));
        }
        if self.model_a == Some(ModelChoice::ActiveRun) {
            Self::live_weights_ui(ui, run, out);
        }
        ui.horizontal(|ui| {
            if ui
                .button("Import model...")
                .on_hover_text("A PyTorch-port .pt, a .safetensors or a photo2anime .bpk")
                .clicked()
            {
                out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::ImportModel,
                    kind: DialogKind::PickFile(
                        "Models".into(),
                        MODEL_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
                    ),
                    start_dir: settings.convert.last_dir.clone(),
                })));
            }
            if ui.small_button("Refresh models").clicked() {
                out.push(UiCommand::RefreshRuns);
            }
        });
        ui.checkbox(&mut self.compare_models, "Compare with a second model");
        if self.compare_models {
            let mut b = self.model_b.clone();
            egui::ComboBox::from_label("Model B")
                .selected_text(Self::choice_label(&b, run))
                .width(260.0)
                .show_ui(ui, |ui| {
                    for (c, label) in &choices {
                        ui.selectable_value(&mut b, Some(c.clone()), label);
                    }
                });
            if b != self.model_b {
                self.model_b = b;
            }
        }
        let strength = ui
            .add(
                egui::Slider::new(&mut settings.convert.strength_percent, 0..=100)
                    .suffix(" %")
                    .text("Style strength"),
            )
            .on_hover_text(
                "100 % is the model's full style, 0 % the photo. A fine-tuned run mixes its \
                 weights with the model it started from; other models blend with the photo.",
            );
        // Reconvert when a drag ends (or on a click or keyboard change), not per frame.
        let mut changed = strength.drag_stopped() || (strength.changed() && !strength.dragged());
        changed |= ui
            .checkbox(&mut settings.convert.keep_colors, "Keep photo colours")
            .on_hover_text("The result's light and shade with the photo's own colours")
            .changed();
        changed |= ui
            .checkbox(&mut settings.convert.match_luminance, "Match brightness")
            .on_hover_text("Scale the output to the photo's mean brightness")
            .changed();
        if changed {
            self.clear_results();
        }
        ui.separator();
        self.result_info_ui(ui, settings, out);
        self.clip_ui(ui, settings, run, out);
        ui.separator();
        ui.label(RichText::new("Whole folder").strong());
        match self.batch {
            Some((done, total)) => {
                let frac = if total == 0 {
                    0.0
                } else {
                    done as f32 / total as f32
                };
                ui.add(egui::ProgressBar::new(frac).text(format!("{done} / {total}")));
                if ui.button("Cancel").clicked() {
                    out.push(UiCommand::CancelBatch);
                }
            }
            None => {
                let has_model = self.model_a_spec(run).is_some();
                let r = ui
                    .add_enabled(has_model, egui::Button::new("Convert folder..."))
                    .on_hover_text("Converts every image under a folder with model A into an output folder (existing files are kept).")
                    .on_disabled_hover_text("Choose a model first.");
                if r.clicked() {
                    out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                        purpose: DialogPurpose::BatchInput,
                        kind: DialogKind::PickFolder,
                        start_dir: settings.convert.last_dir.clone(),
                    })));
                }
            }
        }
        if !self.batch_failures.is_empty() {
            ui.colored_label(
                Color32::from_rgb(240, 190, 80),
                format!(
                    "{} files could not be converted:",
                    self.batch_failures.len()
                ),
            );
            egui::ScrollArea::vertical()
                .id_salt("batch-failures")
                .max_height(120.0)
                .show(ui, |ui| {
                    for (path, reason) in &self.batch_failures {
                        ui.label(format!("{}: {reason}", path.display()));
                    }
                });
        }
        if let Some(device) = &self.device {
            ui.weak(format!("Converting on {device}"));
        }
    }

    /// For a selected clip: what it is, a frame scrubber, and "Convert video..."
    /// (or the running conversion's progress and Cancel).
    fn clip_ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        run: &RunState,
        out: &mut Vec<UiCommand>,
    ) {
        if let Some(job) = &self.video_job {
            ui.separator();
            ui.label(RichText::new(format!("Converting video {}", job.name)).strong());
            match &job.progress {
                Some(p) => {
                    let frac = p.total.map_or(0.0, |t| p.done as f32 / t.max(1) as f32);
                    let eta = p.eta_s.map_or(String::new(), |s| {
                        format!(", {}:{:02} left", s as u64 / 60, s as u64 % 60)
                    });
                    let total = p.total.map_or("?".to_string(), |t| t.to_string());
                    ui.add(egui::ProgressBar::new(frac).text(format!(
                        "{} / {total} frames, {:.2} frames/s{eta}",
                        p.done, p.fps
                    )));
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Starting...");
                    });
                }
            }
            if ui.button("Cancel video").clicked() {
                out.push(UiCommand::CancelVideo);
            }
        }
        let has_model = self.model_a_spec(run).is_some();
        let running = self.video_job.is_some();
        let Some(photo) = self.photos.iter_mut().find(|p| Some(p.id) == self.selected) else {
            return;
        };
        let Some(clip) = photo.clip.as_mut() else {
            return;
        };
        ui.separator();
        ui.label(RichText::new("Video clip").strong());
        let Some(info) = clip.info.clone() else {
            ui.weak("Reading the clip...");
            return;
        };
        ui.label(format!(
            "{}x{}, {:.3} fps, {}{}",
            info.width,
            info.height,
            info.rate.fps(),
            info.duration_s
                .map_or("length unknown".to_string(), |d| format!("{d:.1} s")),
            if info.audio_codecs.is_empty() {
                ", no sound"
            } else {
                ", with sound"
            }
        ));
        if let Some(duration) = info.duration_s {
            ui.spacing_mut().slider_width = 190.0;
            let mut t = clip.time_s;
            let r = ui
                .add(
                    egui::Slider::new(&mut t, 0.0..=duration)
                        .suffix(" s")
                        .text("Frame at"),
                )
                .on_hover_text("The frame shown before/after (converted on its own, as a still)");
            // A new frame when the drag ends (or on a click or keyboard change).
            if r.changed() || r.drag_stopped() {
                clip.time_s = t;
            }
            if r.drag_stopped() || (r.changed() && !r.dragged()) {
                photo.original = Original::Decoding;
                photo.results.clear();
                out.push(UiCommand::Worker(WorkerRequest::Images(
                    photo.decode_request(),
                )));
            }
        }
        let stem = photo
            .path
            .file_stem()
            .map_or_else(|| "video".to_string(), |s| s.to_string_lossy().to_string());
        let video = &mut settings.convert;
        egui::ComboBox::from_label("Video codec")
            .selected_text(video.video_codec.label())
            .show_ui(ui, |ui| {
                for (codec, note) in [
                    (VideoCodec::H264, "H.264 (.mp4): plays everywhere"),
                    (VideoCodec::H265, "H.265 (.mp4): about half the size"),
                    (VideoCodec::Vp9, "VP9 (.webm): for the web"),
                ] {
                    ui.selectable_value(&mut video.video_codec, codec, note);
                }
            });
        egui::ComboBox::from_label("Video quality")
            .selected_text(video.video_quality.label())
            .show_ui(ui, |ui| {
                for q in VideoQuality::ALL {
                    ui.selectable_value(&mut video.video_quality, q, q.label());
                }
            })
            .response
            .on_hover_text(format!(
                "Constant quality {} for {} (lower is better; each 6 halves or doubles the size).",
                video.video_quality.crf(video.video_codec),
                video.video_codec.label()
            ));
        let ext = video.video_codec.extension();
        let beside = free_output_beside(&photo.path, &stem, ext);
        let why_not = if running {
            "A video conversion is running."
        } else {
            "Choose a model first."
        };
        ui.horizontal(|ui| {
            let r = ui
                .add_enabled(has_model && !running, egui::Button::new("Convert video"))
                .on_hover_text(format!(
                    "Converts every frame with model A on the CPU, keeping the sound and frame \
                     rate; brightness stays steady across frames. Writes {}",
                    beside.display()
                ))
                .on_disabled_hover_text(why_not);
            if r.clicked() {
                out.push(UiCommand::ConvertVideo {
                    id: photo.id,
                    output: beside.clone(),
                });
            }
            let r = ui
                .add_enabled(has_model && !running, egui::Button::new("Save as..."))
                .on_hover_text("Choose where to write the converted clip (.mp4, .mov, .mkv, .webm)")
                .on_disabled_hover_text(why_not);
            if r.clicked() {
                out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::SaveVideo { id: photo.id },
                    kind: DialogKind::SaveFile(format!("{stem}-anime.{ext}")),
                    start_dir: settings
                        .convert
                        .last_dir
                        .clone()
                        .or_else(|| photo.path.parent().map(Path::to_path_buf)),
                })));
            }
        });
    }

    fn result_info_ui(&mut self, ui: &mut Ui, settings: &Settings, out: &mut Vec<UiCommand>) {
        let Some(photo) = self.photos.iter().find(|p| Some(p.id) == self.selected) else {
            ui.weak("No photo selected.");
            return;
        };
        if let Original::Failed(e) = &photo.original {
            ui.colored_label(
                Color32::from_rgb(255, 110, 100),
                format!("{}: {e}", photo.name),
            );
            return;
        }
        let slots: &[Slot] = if self.compare_models {
            &[Slot::A, Slot::B]
        } else {
            &[Slot::A]
        };
        for &slot in slots {
            let tag = if slot == Slot::A { "A" } else { "B" };
            match photo.results.get(&slot) {
                Some(SlotResult::Done {
                    model,
                    ms,
                    network_ran,
                    ..
                }) => {
                    let how = if *network_ran {
                        "converted"
                    } else {
                        "restyled (network output reused)"
                    };
                    ui.label(format!(
                        "After ({tag}): {}, {how} in {ms:.0} ms",
                        model.label
                    ));
                    let stem = photo
                        .path
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_else(|| "photo".into());
                    let button = if slot == Slot::A {
                        "Save result...".to_string()
                    } else {
                        "Save result B...".to_string()
                    };
                    if ui.button(button).clicked() {
                        out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                            purpose: DialogPurpose::SaveResult { id: photo.id, slot },
                            kind: DialogKind::SaveFile(format!("{stem}_anime.png")),
                            start_dir: settings
                                .convert
                                .last_dir
                                .clone()
                                .or_else(|| photo.path.parent().map(Path::to_path_buf)),
                        })));
                    }
                }
                Some(SlotResult::Pending(model)) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Converting ({tag}) with {}...", model.label));
                    });
                }
                Some(SlotResult::Failed { model, error }) => {
                    ui.colored_label(
                        Color32::from_rgb(255, 110, 100),
                        format!("{} failed: {error}", model.label),
                    );
                }
                None => {}
            }
        }
        let failed = photo
            .results
            .values()
            .any(|r| matches!(r, SlotResult::Failed { .. }));
        if failed && ui.button("Try again").clicked() {
            let id = photo.id;
            if let Some(p) = self.photos.iter_mut().find(|p| p.id == id) {
                p.results
                    .retain(|_, r| !matches!(r, SlotResult::Failed { .. }));
            }
        }
    }

    /// The central area: the compare view and its toolbar.
    pub fn view_ui(&mut self, ui: &mut Ui, run: &RunState) {
        let ppp = ui.ctx().pixels_per_point();
        ui.horizontal(|ui| {
            if ui
                .button("Fit")
                .on_hover_text("Fit to window (or double-click the image)")
                .clicked()
            {
                self.view.fit();
            }
            if ui
                .button("1:1")
                .on_hover_text("One image pixel per screen pixel")
                .clicked()
            {
                self.view.one_to_one(ppp);
            }
            ui.weak("Wheel: zoom, drag: pan, drag the divider to compare.");
            if self.sample.is_some() && ui.button("Back to photos").clicked() {
                self.sample = None;
            }
        });
        if let Some(s) = &self.sample {
            let before_label = format!("Validation photo {}", s.index + 1);
            let after_label = format!("Generator at step {}", s.step);
            self.view.show(
                ui,
                Side {
                    image: Some(&s.before),
                    label: &before_label,
                    status: "",
                },
                Side {
                    image: Some(&s.after),
                    label: &after_label,
                    status: "",
                },
            );
            return;
        }
        let Some(photo) = self.photos.iter().find(|p| Some(p.id) == self.selected) else {
            self.view.show(
                ui,
                Side {
                    image: None,
                    label: "",
                    status: "Drop photos here (or use Open photos...) to convert them.",
                },
                Side {
                    image: None,
                    label: "",
                    status: "",
                },
            );
            return;
        };
        let original = match &photo.original {
            Original::Ready(_, tex) => Some(tex),
            _ => None,
        };
        let result = |slot: Slot| -> (Option<&TiledTexture>, String, String) {
            match photo.results.get(&slot) {
                Some(SlotResult::Done { texture, model, .. }) => {
                    (Some(texture), model.label.clone(), String::new())
                }
                Some(SlotResult::Pending(m)) => (
                    None,
                    m.label.clone(),
                    format!("Converting with {}...", m.label),
                ),
                Some(SlotResult::Failed { model, error }) => {
                    (None, model.label.clone(), format!("Failed: {error}"))
                }
                None => {
                    let choice = if slot == Slot::A {
                        &self.model_a
                    } else {
                        &self.model_b
                    };
                    let status = match choice.as_ref().map(|c| Self::resolve(c, run)) {
                        Some(Err(e)) => e,
                        Some(Ok(_)) => "Waiting for the photo...".into(),
                        None => "Choose a model.".into(),
                    };
                    (None, String::new(), status)
                }
            }
        };
        let status_left = match &photo.original {
            Original::Failed(e) => format!("Cannot read {}: {e}", photo.name),
            _ => "Decoding...".to_string(),
        };
        if self.compare_models {
            let (a, a_label, a_status) = result(Slot::A);
            let (b, b_label, b_status) = result(Slot::B);
            let (a_label, b_label) = (format!("A: {a_label}"), format!("B: {b_label}"));
            self.view.show(
                ui,
                Side {
                    image: a,
                    label: &a_label,
                    status: &a_status,
                },
                Side {
                    image: b,
                    label: &b_label,
                    status: &b_status,
                },
            );
        } else {
            let (a, a_label, a_status) = result(Slot::A);
            let before = match &photo.clip {
                Some(c) => format!("Before: {} at {:.1} s", photo.name, c.time_s),
                None => format!("Before: {}", photo.name),
            };
            let after = format!("After: {a_label}");
            self.view.show(
                ui,
                Side {
                    image: original,
                    label: &before,
                    status: &status_left,
                },
                Side {
                    image: a,
                    label: &after,
                    status: &a_status,
                },
            );
        }
    }
}
