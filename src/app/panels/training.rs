//! Training panel: start / pause / resume / stop / save, resuming earlier runs,
//! presets and a slider for every hyperparameter (learning rates and loss weights
//! live, the rest locked while a run is active), the device and VGG status, and
//! progress figures.

use crate::app::downloads::Downloads;
use crate::download::ItemKind;
use eframe::egui;

use egui::{Color32, RichText, Slider, Ui};

use crate::app::command::UiCommand;
use crate::app::run_state::{RunState, RunStatus};
use crate::app::state::{AppOptions, LengthUnit, Settings};
use crate::app::worker::{DialogKind, DialogPurpose, JobRequest, VggStatus, WorkerRequest};
use crate::device::DeviceSetting;
use crate::train::run_dir::RunInfo;
use crate::train::{Duration, LiveParams, Phase, Preset, TrainCommand, TrainConfig};

/// Tooltip of the settings that cannot change during a run.
pub const LOCKED_REASON: &str = "Locked while a run is active: the dataset is prepared and the schedule planned for these \
values. Stop the run to change them. Learning rates and loss weights can change live.";

/// Seconds a live value must stay unchanged before it is sent (slider drags send once).
pub const LIVE_SETTLE_SECS: f64 = 0.25;

/// Starts a run, or resumes a paused one, from the keyboard (Ctrl+Enter; Cmd+Enter on macOS).
pub const START_OR_RESUME: egui::KeyboardShortcut =
    egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter);

/// `1h 02m 03s`, `4m 05s`, `12s`.
pub fn format_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, sec) => format!("{h}h {m:02}m {sec:02}s"),
    }
}

/// The training panel's runtime state.
#[derive(Debug, Default)]
pub struct TrainingPanel {
    /// The current or last run.
    pub run: RunState,
    /// Runs and models under the checkpoints folder.
    pub runs: Vec<RunInfo>,
    /// Whether the runs have been listed once (the list is not "none yet" before).
    pub runs_loaded: bool,
    /// wgpu adapter names; `None` while looking.
    pub adapters: Option<Vec<crate::device::Adapter>>,
    /// VGG weights status; `None` while checking.
    pub vgg: Option<VggStatus>,
    /// `egui` time of the last live-value edit not yet sent.
    pub live_edited_at: Option<f64>,
    /// Resume runs with the run length set in the panel instead of their own.
    pub resume_with_new_length: bool,
}

impl TrainingPanel {
    /// Draws the panel. `dataset_lines` are the folder summaries from the dataset panel.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        options: &AppOptions,
        downloads: &Downloads,
        dataset_lines: [(String, bool); 2],
        out: &mut Vec<UiCommand>,
    ) {
        let active = self.run.is_active();
        ui.heading("Training");
        for (line, ok) in &dataset_lines {
            if *ok {
                ui.label(line);
            } else {
                ui.colored_label(Color32::from_rgb(255, 110, 100), line);
            }
        }
        if ui.small_button("Change folders...").clicked() {
            out.push(UiCommand::ShowTab(crate::app::state::Tab::Dataset));
        }
        ui.add_space(4.0);
        self.controls_ui(ui, dataset_lines.iter().all(|(_, ok)| *ok), out);
        self.progress_ui(ui);
        ui.separator();
        self.device_ui(ui, settings, options, active);
        self.vgg_ui(ui, settings, active, downloads, out);
        self.start_from_ui(ui, settings, active, out);
        ui.separator();
        let live_before = settings.train.live;
        self.settings_ui(ui, settings, active);
        if settings.train.live != live_before {
            self.live_edited_at = Some(ui.input(|i| i.time));
        }
        ui.separator();
        let length = settings.train.duration;
        self.runs_ui(ui, active, length, out);
    }

    fn controls_ui(&mut self, ui: &mut Ui, dataset_ok: bool, out: &mut Vec<UiCommand>) {
        let status = self.run.status.clone();
        let active = self.run.is_active();
        let stepping = matches!(
            status,
            RunStatus::Running | RunStatus::Preparing { .. } | RunStatus::Starting
        );
        // Ctrl+Enter (Cmd+Enter on macOS) does what the enabled one of Start / Resume does.
        let start_key = ui.input_mut(|i| i.consume_shortcut(&START_OR_RESUME));
        let key_text = ui.ctx().format_shortcut(&START_OR_RESUME);
        ui.horizontal_wrapped(|ui| {
            let can_start = !active && dataset_ok;
            let start = ui
                .add_enabled(
                    can_start,
                    egui::Button::new(RichText::new("Start training").strong()),
                )
                .on_hover_text(&key_text)
                .on_disabled_hover_text(if active {
                    "A run is active."
                } else {
                    "Both folders need usable images."
                });
            if start.clicked() || (start_key && can_start) {
                out.push(UiCommand::StartTraining);
            }
            if ui
                .add_enabled(stepping, egui::Button::new("Pause"))
                .clicked()
            {
                out.push(UiCommand::Train(TrainCommand::Pause));
            }
            let paused = status == RunStatus::Paused;
            if ui
                .add_enabled(paused, egui::Button::new("Resume"))
                .on_hover_text(&key_text)
                .clicked()
                || (start_key && paused)
            {
                out.push(UiCommand::Train(TrainCommand::Resume));
            }
            let can_stop = active && status != RunStatus::Stopping;
            if ui
                .add_enabled(can_stop, egui::Button::new("Stop"))
                .on_hover_text("Saves a checkpoint, then ends the run.")
                .clicked()
            {
                out.push(UiCommand::Train(TrainCommand::Stop));
            }
            let can_save = matches!(status, RunStatus::Running | RunStatus::Paused);
            if ui
                .add_enabled(can_save, egui::Button::new("Save checkpoint now"))
                .clicked()
            {
                out.push(UiCommand::Train(TrainCommand::SaveNow));
            }
        });
    }

    fn progress_ui(&self, ui: &mut Ui) {
        let run = &self.run;
        ui.label(RichText::new(run.headline()).strong());
        if let RunStatus::Preparing { done, total } = run.status {
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                    .text(format!("Preparing images {done}/{total}")),
            );
        }
        if run.total_steps > 0 {
            let step = run.step();
            ui.add(egui::ProgressBar::new(step as f32 / run.total_steps as f32).show_percentage());
            let phase = if step < run.init_steps {
                Phase::Init
            } else {
                Phase::Adversarial
            };
            let epochs = run.total_steps.div_ceil(run.steps_per_epoch.max(1));
            let epoch = (step / run.steps_per_epoch.max(1) + 1).min(epochs.max(1));
            egui::Grid::new("progress-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("Phase");
                    ui.label(match phase {
                        Phase::Init => "init (content only)",
                        Phase::Adversarial => "adversarial",
                    });
                    ui.end_row();
                    ui.label("Epoch");
                    ui.label(format!("{epoch} / {epochs}"));
                    ui.end_row();
                    ui.label("Step");
                    ui.label(format!("{step} / {}", run.total_steps));
                    ui.end_row();
                    if let Some(s) = &run.last {
                        ui.label("Speed");
                        ui.label(format!(
                            "{:.2} images/s ({:.0} ms/step)",
                            s.images_per_sec, s.step_ms
                        ));
                        ui.end_row();
                        ui.label("ETA");
                        ui.label(if run.is_active() {
                            format_secs(s.eta_secs)
                        } else {
                            "-".into()
                        });
                        ui.end_row();
                        ui.label("Elapsed");
                        ui.label(format_secs(s.elapsed_secs));
                        ui.end_row();
                    }
                    if let Some((step, _)) = &run.latest_checkpoint {
                        ui.label("Checkpoint");
                        ui.label(format!("step {step}"));
                        ui.end_row();
                    }
                });
        }
        if let Some(d) = &run.device {
            ui.weak(format!("Device: {d}"));
        }
        if let Some(dir) = &run.run_dir {
            ui.weak(format!("Run folder: {}", dir.display()));
        }
        if let Some((p, s, k)) = run.dataset {
            ui.weak(format!(
                "Dataset: {p} photos, {s} style images, {k} skipped"
            ));
        }
        if let Some((step, _)) = run.live_applied {
            ui.weak(format!("Live values last applied at step {step}"));
        }
        if let Some(e) = &run.error {
            ui.colored_label(Color32::from_rgb(255, 110, 100), e);
        }
    }

    fn device_ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        options: &AppOptions,
        active: bool,
    ) {
        ui.add_enabled_ui(!active, |ui| {
            let combo = egui::ComboBox::from_label("Device")
                .selected_text(settings.device.label())
                .show_ui(ui, |ui| {
                    ui.selectable_value(
                        &mut settings.device,
                        DeviceSetting::Cpu,
                        DeviceSetting::Cpu.label(),
                    );
                    if !options.force_cpu {
                        for adapter in self.adapters.iter().flatten() {
                            let choice = DeviceSetting::Gpu {
                                adapter: Some(adapter.name.clone()),
                            };
                            let mut label = choice.label();
                            if !adapter.is_hardware {
                                label.push_str(" - software, slower than CPU");
                            }
                            ui.selectable_value(&mut settings.device, choice, label);
                        }
                    }
                });
            combo.response.on_disabled_hover_text(LOCKED_REASON);
        });
        match (&self.adapters, options.force_cpu) {
            (_, true) => {
                ui.weak("GPU disabled for this session.");
            }
            (None, false) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("Looking for GPU adapters...");
                });
            }
            (Some(a), false) if a.is_empty() => {
                ui.weak("No GPU adapter found (no Vulkan / Metal / DX12 driver?): training runs on the CPU.");
            }
            (Some(a), false) if !a.iter().any(|a| a.is_hardware) => {
                ui.weak("Only a software GPU adapter was found: the CPU is faster here.");
            }
            _ => {}
        }
    }

    fn vgg_ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        active: bool,
        downloads: &Downloads,
        out: &mut Vec<UiCommand>,
    ) {
        ui.horizontal_wrapped(|ui| {
            ui.label("VGG19 weights:");
            match &self.vgg {
                None => {
                    ui.spinner();
                    ui.label("checking...");
                }
                Some(VggStatus::Found(p)) => {
                    ui.label(format!("found ({})", p.display()));
                }
                Some(VggStatus::Missing) => {
                    ui.colored_label(
                        Color32::from_rgb(240, 190, 80),
                        "random weights - results will be weaker",
                    );
                }
                Some(VggStatus::Invalid(p, e)) => {
                    ui.colored_label(
                        Color32::from_rgb(255, 110, 100),
                        format!("{} is unusable: {e}", p.display()),
                    );
                }
                Some(VggStatus::Unknown(e)) => {
                    ui.colored_label(
                        Color32::from_rgb(255, 110, 100),
                        format!("could not be checked: {e}"),
                    );
                }
            }
        });
        ui.horizontal(|ui| {
            let locate = ui
                .add_enabled(!active, egui::Button::new("Locate VGG19 weights..."))
                .on_hover_text("torchvision's vgg19-dcbb9e9d.pth (ImageNet weights) for the content and style losses.")
                .on_disabled_hover_text(LOCKED_REASON);
            if locate.clicked() {
                out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::LocateVgg,
                    kind: DialogKind::PickFile("PyTorch weights".into(), vec!["pth".into(), "pt".into()]),
                    start_dir: None,
                })));
            }
            if settings.train.vgg_path.is_some() && ui.add_enabled(!active, egui::Button::new("Use the torch cache")).clicked() {
                settings.train.vgg_path = None;
                out.push(UiCommand::CheckVgg);
            }
        });
        let missing = matches!(
            self.vgg,
            Some(VggStatus::Missing) | Some(VggStatus::Invalid(..))
        );
        if missing || downloads.is_active() {
            downloads.offer_ui(ui, ItemKind::Vgg19, out);
        }
    }

    /// "Start from": scratch, or fine-tune a model (a run, a downloaded or imported one).
    fn start_from_ui(
        &mut self,
        ui: &mut Ui,
        settings: &mut Settings,
        active: bool,
        out: &mut Vec<UiCommand>,
    ) {
        let current = settings.train.init_from.clone();
        let label = |p: &Option<std::path::PathBuf>| match p {
            None => "scratch (random generator)".to_string(),
            Some(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().to_string(),
            ),
        };
        ui.add_enabled_ui(!active, |ui| {
            ui.horizontal(|ui| {
                ui.label("Start from:");
                egui::ComboBox::from_id_salt("start-from")
                    .selected_text(label(&current))
                    .width(220.0)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut settings.train.init_from, None, label(&None));
                        for run in self.runs.iter().filter(|r| !r.checkpoints.is_empty()) {
                            let path = Some(run.dir.clone());
                            let text = label(&path);
                            ui.selectable_value(&mut settings.train.init_from, path, text);
                        }
                        if ui.button("A model file...").clicked() {
                            out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                                purpose: DialogPurpose::StartFrom,
                                kind: DialogKind::PickFile(
                                    "Generator".into(),
                                    vec![
                                        "pt".into(),
                                        "pth".into(),
                                        "safetensors".into(),
                                        "bpk".into(),
                                    ],
                                ),
                                start_dir: None,
                            })));
                        }
                    })
                    .response
                    .on_hover_text(
                        "Fine-tune: the generator starts from this model's weights (and keeps its \
                         upsampling rule); the discriminator starts fresh.",
                    );
            });
            if settings.train.init_from.is_some() {
                ui.checkbox(
                    &mut settings.train.warm_up_fine_tune,
                    "Content-only warm-up first (usually not needed)",
                );
            }
        });
    }

    #[allow(clippy::too_many_lines)] // one slider per hyperparameter, top to bottom
    fn settings_ui(&mut self, ui: &mut Ui, settings: &mut Settings, active: bool) {
        let t = &mut settings.train;
        ui.label(RichText::new("Loss weights preset").strong());
        ui.horizontal(|ui| {
            let mut preset = t.preset;
            egui::ComboBox::from_label("Preset")
                .selected_text(preset.name())
                .show_ui(ui, |ui| {
                    for p in Preset::ALL {
                        ui.selectable_value(&mut preset, p, p.name());
                    }
                });
            if preset != t.preset {
                t.preset = preset;
                t.live.apply_preset(preset);
            }
        });
        ui.add_space(4.0);
        ui.label(RichText::new("Run (locked while a run is active)").strong());
        ui.add_enabled_ui(!active, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (label, values) in [
                    ("Quick CPU defaults", TrainConfig::quick_cpu()),
                    ("Quick GPU defaults", TrainConfig::quick_gpu()),
                    ("Published recipe", TrainConfig::default()),
                ] {
                    let tip = schedule_summary(&values);
                    let r = ui
                        .button(label)
                        .on_hover_text(tip)
                        .on_disabled_hover_text(LOCKED_REASON);
                    if r.clicked() {
                        // A schedule button sets the schedule only: folders, VGG
                        // file and live values stay.
                        t.image_size = values.image_size;
                        t.batch_size = values.batch_size;
                        t.init_epochs = values.init_epochs;
                        t.duration = values.duration;
                        t.sample_every = values.sample_every;
                        t.checkpoint_every = values.checkpoint_every;
                        settings.lengths.remember(values.duration);
                    }
                }
            });
            let add = |ui: &mut Ui, slider: Slider<'_>, tip: &str| {
                ui.add(slider)
                    .on_hover_text(tip)
                    .on_disabled_hover_text(LOCKED_REASON);
            };
            add(
                ui,
                Slider::new(&mut t.image_size, 32..=512)
                    .step_by(8.0)
                    .text("Image size"),
                "Square training crop in pixels.",
            );
            add(
                ui,
                Slider::new(&mut t.batch_size, 1..=32).text("Batch size"),
                "Photos per step.",
            );
            add(
                ui,
                Slider::new(&mut t.init_epochs, 0..=20).text("Init epochs"),
                "Content-only epochs before the GAN starts.",
            );
            let mut unit = match t.duration {
                Duration::Steps(_) => LengthUnit::Steps,
                Duration::Epochs(_) => LengthUnit::Epochs,
            };
            ui.horizontal(|ui| {
                ui.radio_value(&mut unit, LengthUnit::Steps, "Length in steps")
                    .on_disabled_hover_text(LOCKED_REASON);
                ui.radio_value(&mut unit, LengthUnit::Epochs, "Length in epochs")
                    .on_disabled_hover_text(LOCKED_REASON);
            });
            let lengths = &mut settings.lengths;
            match unit {
                LengthUnit::Steps => add(
                    ui,
                    Slider::new(&mut lengths.steps, 1..=200_000)
                        .logarithmic(true)
                        .text("Steps"),
                    "Run length.",
                ),
                LengthUnit::Epochs => add(
                    ui,
                    Slider::new(&mut lengths.epochs, 1..=300).text("Epochs"),
                    "Run length.",
                ),
            }
            t.duration = match unit {
                LengthUnit::Steps => Duration::Steps(lengths.steps.max(1)),
                LengthUnit::Epochs => Duration::Epochs(lengths.epochs.max(1)),
            };
            add(
                ui,
                Slider::new(&mut t.sample_every, 1..=5000)
                    .logarithmic(true)
                    .text("Sample interval"),
                "Steps between validation samples (step 0 is always sampled).",
            );
            add(
                ui,
                Slider::new(&mut t.checkpoint_every, 1..=20_000)
                    .logarithmic(true)
                    .text("Checkpoint interval"),
                "Steps between checkpoints.",
            );
        });
        ui.add_space(4.0);
        ui.label(RichText::new("Learning rates (live)").strong());
        fn lr<'a>(v: &'a mut f64, text: &str) -> Slider<'a> {
            Slider::new(v, 1e-7..=1e-2)
                .logarithmic(true)
                .text(text)
                .custom_formatter(|v, _| format!("{v:.2e}"))
        }
        let live_tip = "Changes apply at the next step and are marked on the plots.";
        let l = &mut t.live;
        ui.add(lr(&mut l.lr_init, "Init learning rate"))
            .on_hover_text(live_tip);
        ui.add(lr(&mut l.lr_g, "Generator learning rate"))
            .on_hover_text(live_tip);
        ui.add(lr(&mut l.lr_d, "Discriminator learning rate"))
            .on_hover_text(live_tip);
        ui.label(RichText::new("Generator loss weights (live)").strong());
        let before = (l.w_content, l.w_style, l.w_color, l.w_tv);
        fn w<'a>(v: &'a mut f64, max: f64, text: &str) -> Slider<'a> {
            Slider::new(v, 0.0..=max)
                .logarithmic(true)
                .smallest_positive(1e-3)
                .text(text)
        }
        ui.add(w(&mut l.w_g_adv, 1000.0, "Adversarial weight"))
            .on_hover_text(live_tip);
        ui.add(w(&mut l.w_content, 20.0, "Content weight"))
            .on_hover_text(live_tip);
        ui.add(w(&mut l.w_style, 20.0, "Style weight"))
            .on_hover_text(live_tip);
        ui.add(w(&mut l.w_color, 200.0, "Colour weight"))
            .on_hover_text(live_tip);
        ui.add(w(&mut l.w_tv, 20.0, "TV weight"))
            .on_hover_text(live_tip);
        if (l.w_content, l.w_style, l.w_color, l.w_tv) != before {
            t.preset = l.matching_preset();
        }
        let l = &mut t.live;
        ui.label(RichText::new("Discriminator loss (live)").strong());
        ui.add(w(&mut l.w_d_adv, 1000.0, "Discriminator scale"))
            .on_hover_text(live_tip);
        ui.add(Slider::new(&mut l.d_real, 0.0..=5.0).text("D real coefficient"))
            .on_hover_text(live_tip);
        ui.add(Slider::new(&mut l.d_fake, 0.0..=5.0).text("D fake coefficient"))
            .on_hover_text(live_tip);
        ui.add(Slider::new(&mut l.d_gray, 0.0..=5.0).text("D gray coefficient"))
            .on_hover_text(live_tip);
        ui.add(Slider::new(&mut l.d_smooth, 0.0..=5.0).text("D smooth coefficient"))
            .on_hover_text(live_tip);
        if ui
            .button("Reset live values")
            .on_hover_text("The preset's weights and the default learning rates.")
            .clicked()
        {
            let mut fresh = LiveParams::default();
            fresh.apply_preset(t.preset);
            t.live = fresh;
        }
    }

    fn runs_ui(&mut self, ui: &mut Ui, active: bool, length: Duration, out: &mut Vec<UiCommand>) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Earlier runs").strong());
            if ui.small_button("Refresh runs").clicked() {
                out.push(UiCommand::RefreshRuns);
            }
        });
        let resumable: Vec<&RunInfo> = self
            .runs
            .iter()
            .filter(|r| r.resumable && !r.checkpoints.is_empty())
            .collect();
        if !self.runs_loaded {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("Listing runs...");
            });
        } else if resumable.is_empty() {
            ui.weak("None yet. Runs are saved in the checkpoints folder.");
        } else {
            let what = match length {
                Duration::Steps(s) => format!("{s} steps"),
                Duration::Epochs(e) => format!("{e} epochs"),
            };
            ui.checkbox(
                &mut self.resume_with_new_length,
                format!("Resume with the run length above ({what})"),
            )
            .on_hover_text(
                "To continue a finished run further. Otherwise a run keeps its own length.",
            );
        }
        for run in resumable {
            let newest = run.checkpoints.last().map(|c| c.step).unwrap_or(0);
            let current = self.run.run_dir.as_ref() == Some(&run.dir) && active;
            ui.horizontal(|ui| {
                let r = ui
                    .add_enabled(!active, egui::Button::new(format!("Resume {}", run.name)))
                    .on_hover_text(format!("Continue {} from step {newest}", run.dir.display()))
                    .on_disabled_hover_text("Stop the active run first.");
                if r.clicked() {
                    let duration = self.resume_with_new_length.then_some(length);
                    out.push(UiCommand::ResumeRun {
                        dir: run.dir.clone(),
                        duration,
                    });
                }
                ui.label(format!(
                    "step {newest}{}",
                    if current { " (active)" } else { "" }
                ));
            });
        }
    }
}

/// e.g. `128 px, batch 4, 1 init epoch, 300 steps`.
fn schedule_summary(c: &TrainConfig) -> String {
    let length = match c.duration {
        Duration::Steps(s) => format!("{s} steps"),
        Duration::Epochs(e) => format!("{e} epochs"),
    };
    let init = if c.init_epochs == 1 {
        "epoch"
    } else {
        "epochs"
    };
    format!(
        "{} px, batch {}, {} init {init}, {length}",
        c.image_size, c.batch_size, c.init_epochs
    )
}
