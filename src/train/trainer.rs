//! The trainer: a plain struct any thread can drive step by step, or run with a
//! command channel. It owns the device, the networks and the optimizers; it
//! reports through [`TrainEvent`]s only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use burn::module::Module;
use burn::tensor::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use image::{DynamicImage, RgbImage};

use super::config::{ConfigError, Duration, LiveParams, TrainConfig};
use super::events::{
    FinishReason, LossValues, Phase, RgbImage8, StepStats, TrainCommand, TrainEvent,
};
use super::metrics::MetricsWriter;
use super::run_dir::{
    BrokenCheckpoint, DatasetRecord, ModelInfo, ModelOrigin, PartialCheckpoint, RunDirError,
    RunLock, TrainState, check_dataset, checkpoint_candidates, files, load_module, load_optimizer,
    point_latest_at, read_json, remove_leftovers, sample_file_name, set_aside_broken,
    skipped_warning, verify_checkpoint, write_json,
};
use super::snapshot::GeneratorSnapshot;
use super::step::Networks;
use crate::data::cache::save_png_atomic;
use crate::data::loader::DataError;
use crate::data::{Batch, Dataset, Loader};
use crate::device::SelectedDevice;
use crate::interop::WeightsError;
use crate::interop::vgg::load_loss_network;
use crate::model::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, VggSource};
use crate::tensor_image::{images_to_tensor, tensor_to_images, two_row_grid};

/// Why training could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The dataset could not be prepared.
    #[error(transparent)]
    Data(#[from] DataError),
    /// VGG weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The run folder could not be used, read or written (locked, damaged, changed
    /// dataset, disk full...).
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// A loss became NaN or infinite; the run stopped without saving.
    #[error("loss {term} became {value} at step {step}: training stopped; {}", kept_checkpoint(.last))]
    NonFinite {
        /// The offending term.
        term: &'static str,
        /// Its value.
        value: f32,
        /// The step.
        step: usize,
        /// The last good checkpoint, if any.
        last: Option<PathBuf>,
    },
    /// A loss could not be read back from the device (never shown as a NaN loss).
    #[error(transparent)]
    Readback(#[from] crate::tensor_image::ReadbackError),
    /// The loader thread ended early.
    #[error("the data loader stopped unexpectedly")]
    LoaderStopped,
    /// The model a fine-tune should start from could not be loaded.
    #[error("cannot fine-tune from {path}: {source}")]
    Parent {
        /// The model pointed at.
        path: PathBuf,
        /// Why it failed.
        source: crate::model_io::ModelError,
    },
}

/// Loads a fine-tune's starting generator onto the autodiff device `ad`, with the
/// record of where it came from. Loaded on the plain device first (every format's
/// loader works there), then copied value by value into a trainable generator.
fn load_parent(
    path: &Path,
    plain: &burn::tensor::Device,
    ad: &burn::tensor::Device,
) -> Result<(Generator, super::config::ParentModel), TrainError> {
    let loaded = crate::model_io::load_generator(path, plain, None).map_err(|source| {
        TrainError::Parent {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let weights_blake3 = crate::interop::params::weights_blake3(&loaded.generator);
    let trainable = crate::interop::params::copy_params(
        &loaded.generator,
        GeneratorConfig::new()
            .with_upsample(loaded.upsample)
            .init(ad),
    );
    Ok((
        trainable,
        super::config::ParentModel {
            path: path.to_path_buf(),
            weights_blake3,
            description: loaded.description,
        },
    ))
}

/// The end of the NaN message: what is left to resume from, truthfully.
fn kept_checkpoint(last: &Option<PathBuf>) -> String {
    match last {
        Some(p) => format!("the last good checkpoint is kept ({})", p.display()),
        None => "no checkpoint had been saved yet, so there is nothing to resume; \
                 lower the learning rates and start a new run"
            .to_string(),
    }
}

/// Exponential smoothing window of the throughput figure.
const TIMING_WINDOW: usize = 20;

/// How a trainer starts, and what it writes into the run folder once every check
/// has passed.
enum Start {
    /// A new run: `config.json` and `dataset.json` are written.
    New {
        /// The folders' files now.
        dataset: DatasetRecord,
    },
    /// A resumed run.
    Resume {
        /// `config.json` must be rewritten (the duration changed).
        config_changed: bool,
        /// The run has no `dataset.json` yet (started by an older version): this is
        /// the record to write.
        unrecorded_dataset: Option<DatasetRecord>,
    },
}

/// The checkpoint a resume starts from, and the newer ones that were damaged.
struct Resumed {
    state: TrainState,
    dir: PathBuf,
    broken: Vec<BrokenCheckpoint>,
}

/// A training run in progress.
pub struct Trainer {
    config: TrainConfig,
    run_dir: PathBuf,
    device: Device,
    autodiff: Device,
    device_description: String,
    nets: Networks,
    vgg_source: VggSource,
    live: LiveParams,
    step: usize,
    total_steps: usize,
    steps_per_epoch: usize,
    dataset: Arc<Dataset>,
    loader: Option<Loader>,
    validation: Vec<RgbImage>,
    events: Sender<TrainEvent>,
    metrics: MetricsWriter,
    recent_ms: VecDeque<f64>,
    elapsed: StdDuration,
    last_checkpoint: Option<PathBuf>,
    last_saved_step: Option<usize>,
    /// Held for the trainer's lifetime: no other trainer may write this run folder.
    _lock: RunLock,
}

impl Trainer {
    /// Starts a new run in `run_dir` (created; must not hold a checkpoint already).
    ///
    /// The folder is locked first; a second trainer on the same folder fails with
    /// [`RunDirError::Locked`]. Nothing but the folder and its `.lock` is written
    /// before the dataset and VGG are ready.
    pub fn new(
        config: TrainConfig,
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        std::fs::create_dir_all(run_dir).map_err(|source| RunDirError::Io {
            path: run_dir.to_path_buf(),
            source,
        })?;
        // The lock before any check: two trainers started on one folder at the same
        // moment would otherwise both find it empty.
        let lock = RunLock::acquire(run_dir)?;
        if run_dir.join(files::LATEST).exists() || !checkpoint_candidates(run_dir).is_empty() {
            return Err(RunDirError::AlreadyARun {
                path: run_dir.to_path_buf(),
            }
            .into());
        }
        let dataset = DatasetRecord::scan(&config.photos_dir, &config.style_dir)?;
        device.device.seed(config.seed);
        let ad = device.device.clone().autodiff();
        let mut config = config;
        let generator = match config.init_from.clone() {
            Some(path) => {
                let (generator, parent) = load_parent(&path, &device.device, &ad)?;
                config.upsample = generator.upsample;
                config.parent = Some(parent);
                generator
            }
            None => GeneratorConfig::new()
                .with_upsample(config.upsample)
                .init(&ad),
        };
        let discriminator = DiscriminatorConfig::new().init(&ad);
        // Burn creates parameters lazily, at first use, from the device's generator as
        // it is then: read them now, right after `seed`, so a run's starting weights do
        // not depend on what else draws random numbers before its first step (the loss
        // network, another run in the same process). The generator is one per device,
        // so two runs seeding at the same moment can still interleave (seen when
        // tests/resume.rs ran its two tests in parallel; they now run one at a time).
        let _ = crate::interop::params::collect_params(&generator);
        let _ = crate::interop::params::collect_params(&discriminator);
        Self::build(
            config,
            run_dir,
            device,
            events,
            lock,
            generator,
            discriminator,
            Start::New { dataset },
        )
    }

    /// Resumes the newest intact checkpoint of `run_dir`: same step counter, same data
    /// order, same optimizer state, metrics.csv continued. `duration` extends (or
    /// shortens) the run; it is written back to `config.json`.
    ///
    /// Refused, with nothing written (the `.lock` file aside), when another process
    /// trains the folder, when the photo or style folder changed since the run started
    /// ([`RunDirError::DatasetChanged`]), or when no checkpoint is intact. Damaged newer
    /// checkpoints are skipped with a [`TrainEvent::Warning`] and moved aside.
    pub fn resume(
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
        duration: Option<Duration>,
    ) -> Result<Self, TrainError> {
        if !run_dir.is_dir() {
            return Err(RunDirError::NotAModel {
                path: run_dir.to_path_buf(),
            }
            .into());
        }
        let lock = RunLock::acquire(run_dir)?;
        let mut config: TrainConfig = read_json(&run_dir.join(files::CONFIG))?;
        let config_changed = match duration {
            Some(d) if d != config.duration => {
                config.duration = d;
                true
            }
            _ => false,
        };
        config.validate()?;
        let now = DatasetRecord::scan(&config.photos_dir, &config.style_dir)?;
        let recorded = check_dataset(run_dir, &config, &now)?;
        if checkpoint_candidates(run_dir).is_empty() {
            // Fail before the expensive preparation below.
            return Err(RunDirError::NoIntactCheckpoint {
                path: run_dir.to_path_buf(),
                broken: Vec::new(),
            }
            .into());
        }
        let ad = device.device.clone().autodiff();
        // Placeholders: the checkpoint's weights replace them in `build`.
        let generator = GeneratorConfig::new()
            .with_upsample(config.upsample)
            .init(&ad);
        let discriminator = DiscriminatorConfig::new().init(&ad);
        Self::build(
            config,
            run_dir,
            device,
            events,
            lock,
            generator,
            discriminator,
            Start::Resume {
                config_changed,
                unrecorded_dataset: (!recorded).then_some(now),
            },
        )
    }

    /// Loads the newest checkpoint that verifies and loads completely into `nets`.
    fn restore_newest(run_dir: &Path, nets: &mut Networks) -> Result<Resumed, RunDirError> {
        let mut broken = Vec::new();
        for (step, dir) in checkpoint_candidates(run_dir) {
            let loaded = (|| {
                let state = verify_checkpoint(&dir, step)?;
                let generator = load_module(nets.generator.clone(), &dir.join(files::GENERATOR))?;
                let discriminator =
                    load_module(nets.discriminator.clone(), &dir.join(files::DISCRIMINATOR))?;
                let opt_init = load_optimizer(nets.opt_init.clone(), &dir.join(files::OPT_INIT))?;
                let opt_g = load_optimizer(nets.opt_g.clone(), &dir.join(files::OPT_G))?;
                let opt_d = load_optimizer(nets.opt_d.clone(), &dir.join(files::OPT_D))?;
                Ok::<_, RunDirError>((state, generator, discriminator, opt_init, opt_g, opt_d))
            })();
            match loaded {
                Ok((state, generator, discriminator, opt_init, opt_g, opt_d)) => {
                    nets.generator = generator;
                    nets.discriminator = discriminator;
                    nets.opt_init = opt_init;
                    nets.opt_g = opt_g;
                    nets.opt_d = opt_d;
                    return Ok(Resumed { state, dir, broken });
                }
                Err(e) => broken.push(BrokenCheckpoint {
                    step,
                    dir,
                    reason: e.to_string(),
                }),
            }
        }
        Err(RunDirError::NoIntactCheckpoint {
            path: run_dir.to_path_buf(),
            broken,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        config: TrainConfig,
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
        lock: RunLock,
        generator: Generator,
        discriminator: Discriminator,
        start: Start,
    ) -> Result<Self, TrainError> {
        let plain = device.device.clone();
        let autodiff = plain.clone().autodiff();
        let (vgg, vgg_source) = load_loss_network(config.vgg_path.as_deref(), &autodiff)?;
        // Burn initialises parameters lazily, at first use, from the device RNG as it
        // is then. A random (seeded) VGG would otherwise get other weights in a resumed
        // run than in the run it continues (its first use comes after other draws), and
        // the resumed losses would differ. Reading the weights now fixes them while the
        // RNG still holds the VGG's own seed.
        let _ = crate::interop::params::collect_params(&vgg);
        if !vgg_source.is_pretrained() {
            let _ = events.send(TrainEvent::Warning(vgg_source.describe()));
        }
        let progress_events = events.clone();
        let progress = move |done: usize, total: usize| {
            if done == total || done.is_multiple_of(16) {
                let _ = progress_events.send(TrainEvent::Preparing { done, total });
            }
        };
        let cache_dir = config
            .cache_dir
            .clone()
            .unwrap_or_else(crate::data::cache::default_cache_dir);
        let (dataset, skipped) = Dataset::prepare(
            &config.photos_dir,
            &config.style_dir,
            config.image_size as u32,
            config.batch_size,
            config.seed,
            &cache_dir,
            &progress,
        )?;
        // Skipped files travel in DatasetReady (each with its reason), not as warnings.
        let _ = events.send(TrainEvent::DatasetReady {
            photos: dataset.photos.len(),
            style: dataset.style.len(),
            skipped,
        });
        let steps_per_epoch = dataset.steps_per_epoch();
        let total_steps = match config.duration {
            Duration::Epochs(e) => e * steps_per_epoch,
            Duration::Steps(s) => s,
        };
        let validation = dataset.validation_photos(config.sample_count);
        let mut nets = Networks::new(generator, discriminator, vgg);
        let resumed = match &start {
            Start::Resume { .. } => Some(Self::restore_newest(run_dir, &mut nets)?),
            Start::New { .. } => None,
        };

        // Every check passed: only from here on is the run folder written.
        let mut warnings = remove_leftovers(run_dir);
        let samples_dir = run_dir.join(files::SAMPLES);
        std::fs::create_dir_all(&samples_dir).map_err(|source| RunDirError::Io {
            path: samples_dir.clone(),
            source,
        })?;
        match start {
            Start::New { dataset } => {
                write_json(&run_dir.join(files::CONFIG), &config)?;
                write_json(&run_dir.join(files::DATASET), &dataset)?;
            }
            Start::Resume {
                config_changed,
                unrecorded_dataset,
            } => {
                if let Some(r) = &resumed {
                    for b in &r.broken {
                        let moved = match set_aside_broken(run_dir, b) {
                            Ok(aside) => format!("; it was moved to {}", aside.display()),
                            Err(e) => format!("; it could not be moved aside: {e}"),
                        };
                        warnings.push(skipped_warning(b, r.state.step, &r.dir) + &moved);
                    }
                    // Repoint latest.json when it names a damaged checkpoint, or was
                    // never switched to the newest (a crash right after the rename).
                    let pointer: Option<super::run_dir::LatestPointer> =
                        read_json(&run_dir.join(files::LATEST)).ok();
                    if pointer.is_none_or(|p| p.step != r.state.step) {
                        point_latest_at(run_dir, r.state.step)?;
                    }
                }
                if config_changed {
                    write_json(&run_dir.join(files::CONFIG), &config)?;
                }
                if let Some(record) = unrecorded_dataset {
                    write_json(&run_dir.join(files::DATASET), &record)?;
                    warnings.push(format!(
                        "{} has no {}: it was started by an older photo2anime, so changes to its \
                         photo or style folders cannot be detected for this resume; the folders \
                         as they are now are recorded for later resumes",
                        run_dir.display(),
                        files::DATASET
                    ));
                }
            }
        }
        let (step, live, last_checkpoint) = match resumed {
            Some(r) => (r.state.step, r.state.live, Some(r.dir)),
            None => (0, config.live, None),
        };
        let metrics_path = run_dir.join(files::METRICS);
        let metrics =
            MetricsWriter::open(&metrics_path, step).map_err(|source| RunDirError::Io {
                path: metrics_path.clone(),
                source,
            })?;
        write_json(
            &run_dir.join(files::MODEL),
            &ModelInfo {
                version: crate::VERSION.to_string(),
                upsample: config.upsample,
                origin: ModelOrigin::Trained,
                vgg: Some(vgg_source.clone()),
                image_size: Some(config.image_size),
            },
        )?;
        for w in warnings {
            let _ = events.send(TrainEvent::Warning(w));
        }
        Ok(Self {
            last_saved_step: last_checkpoint.as_ref().map(|_| step),
            config,
            run_dir: run_dir.to_path_buf(),
            device: plain,
            autodiff,
            device_description: device.description.clone(),
            nets,
            vgg_source,
            live,
            step,
            total_steps,
            steps_per_epoch,
            dataset: Arc::new(dataset),
            loader: None,
            validation,
            events,
            metrics,
            recent_ms: VecDeque::new(),
            elapsed: StdDuration::ZERO,
            last_checkpoint,
            _lock: lock,
        })
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The live parameters in force.
    pub fn live(&self) -> LiveParams {
        self.live
    }

    /// Where the VGG weights came from.
    pub fn vgg_source(&self) -> &VggSource {
        &self.vgg_source
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Whether every step is done.
    pub fn is_finished(&self) -> bool {
        self.step >= self.total_steps
    }

    /// Phase of the step about to run.
    pub fn phase(&self) -> Phase {
        if self.step < self.config.init_steps(self.steps_per_epoch) {
            Phase::Init
        } else {
            Phase::Adversarial
        }
    }

    /// Replaces learning rates and loss weights from the next step on.
    pub fn set_live(&mut self, live: LiveParams) -> Result<(), super::config::ConfigError> {
        live.validate()?;
        self.live = live;
        let _ = self.events.send(TrainEvent::LiveApplied {
            step: self.step + 1,
            params: live,
        });
        Ok(())
    }

    fn send(&self, event: TrainEvent) {
        let _ = self.events.send(event);
    }

    /// Emits [`TrainEvent::Started`] and the samples of the current step (step 0
    /// for a new run). Called by [`Trainer::run`]; call it yourself when driving
    /// [`Trainer::train_step`] by hand.
    pub fn begin(&mut self) -> Result<(), TrainError> {
        self.send(TrainEvent::Started {
            run_dir: self.run_dir.clone(),
            device: self.device_description.clone(),
            vgg: self.vgg_source.clone(),
            start_step: self.step,
            total_steps: self.total_steps,
            steps_per_epoch: self.steps_per_epoch,
            init_steps: self.config.init_steps(self.steps_per_epoch),
        });
        self.emit_samples();
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Batch, TrainError> {
        if self.loader.is_none() {
            self.loader = Some(Loader::spawn(
                self.dataset.clone(),
                self.step,
                self.total_steps,
                self.config.prefetch,
            ));
        }
        let batch = self
            .loader
            .as_ref()
            .and_then(|l| l.next())
            .ok_or(TrainError::LoaderStopped)?;
        if batch.step != self.step {
            // The loader is out of sync (e.g. after a manual step change): restart it.
            self.loader = Some(Loader::spawn(
                self.dataset.clone(),
                self.step,
                self.total_steps,
                self.config.prefetch,
            ));
            return self
                .loader
                .as_ref()
                .and_then(|l| l.next())
                .ok_or(TrainError::LoaderStopped);
        }
        Ok(batch)
    }

    /// Runs one optimisation step, writes its metrics row and returns its stats.
    /// Samples and checkpoints due at the new step are produced too.
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        let batch = self.next_batch()?;
        for w in &batch.warnings {
            self.send(TrainEvent::Warning(w.clone()));
        }
        let phase = self.phase();
        let epoch = self.step / self.steps_per_epoch;
        let started = Instant::now();
        let losses = match phase {
            Phase::Init => self.nets.init_step(&batch, &self.live, &self.autodiff),
            Phase::Adversarial => self
                .nets
                .adversarial_step(&batch, &self.live, &self.autodiff),
        }?;
        let step_time = started.elapsed();
        if let Some(term) = losses.first_non_finite() {
            let value = losses.as_array()[LossValues::NAMES
                .iter()
                .position(|n| *n == term)
                .unwrap_or(0)]
            .unwrap_or(f32::NAN);
            return Err(TrainError::NonFinite {
                term,
                value,
                step: self.step + 1,
                last: self.last_checkpoint.clone(),
            });
        }
        self.step += 1;
        self.elapsed += step_time;
        let step_ms = step_time.as_secs_f64() * 1e3;
        self.recent_ms.push_back(step_ms);
        if self.recent_ms.len() > TIMING_WINDOW {
            self.recent_ms.pop_front();
        }
        let mean_ms = self.recent_ms.iter().sum::<f64>() / self.recent_ms.len() as f64;
        let stats = StepStats {
            step: self.step,
            total_steps: self.total_steps,
            epoch,
            phase,
            losses,
            step_ms,
            images_per_sec: self.config.batch_size as f64 / (mean_ms / 1e3),
            eta_secs: (self.total_steps - self.step.min(self.total_steps)) as f64 * mean_ms / 1e3,
            elapsed_secs: self.elapsed.as_secs_f64(),
        };
        if let Err(e) = self.metrics.append(&stats, &self.live) {
            self.send(TrainEvent::Warning(format!(
                "{}: cannot append metrics: {e}",
                self.metrics.path().display()
            )));
        }
        self.send(TrainEvent::Step(stats.clone()));
        if self.step.is_multiple_of(self.config.sample_every) {
            self.emit_samples();
        }
        if self.step.is_multiple_of(self.config.checkpoint_every) {
            self.save_checkpoint()?;
        }
        Ok(stats)
    }

    /// Runs the generator on the fixed validation photos, writes the grid PNG and
    /// sends [`TrainEvent::Samples`].
    pub fn emit_samples(&mut self) {
        if self.validation.is_empty() {
            return;
        }
        let g = self.nets.generator.valid();
        let input = images_to_tensor(&self.validation, &self.device);
        let outputs = match tensor_to_images(g.forward(input)) {
            Ok(outputs) => outputs,
            Err(e) => {
                // No grid is better than a made-up one; training itself is unaffected.
                self.send(TrainEvent::Warning(format!(
                    "samples at step {} skipped: {e}",
                    self.step
                )));
                return;
            }
        };
        let path = self
            .run_dir
            .join(files::SAMPLES)
            .join(sample_file_name(self.step));
        let grid = two_row_grid(&self.validation, &outputs);
        let written = match save_png_atomic(&DynamicImage::ImageRgb8(grid), &path) {
            Ok(()) => Some(path),
            Err(e) => {
                self.send(TrainEvent::Warning(format!(
                    "{}: cannot write samples: {e}",
                    path.display()
                )));
                None
            }
        };
        self.send(TrainEvent::Samples {
            step: self.step,
            outputs: outputs.iter().map(RgbImage8::from_image).collect(),
            inputs: self.validation.iter().map(RgbImage8::from_image).collect(),
            path: written,
        });
    }

    /// Writes a checkpoint of the current step atomically and prunes old ones (see
    /// [`super::run_dir`] for the crash-safety rules).
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        if self.last_saved_step == Some(self.step)
            && let Some(p) = &self.last_checkpoint
        {
            return Ok(p.clone());
        }
        // Dropped (and its folder removed) on any error below.
        let mut partial = PartialCheckpoint::create(&self.run_dir, self.step)?;
        partial.save_module(files::GENERATOR, self.nets.generator.clone())?;
        partial.save_module(files::DISCRIMINATOR, self.nets.discriminator.clone())?;
        partial.save_optimizer(files::OPT_INIT, &self.nets.opt_init)?;
        partial.save_optimizer(files::OPT_G, &self.nets.opt_g)?;
        partial.save_optimizer(files::OPT_D, &self.nets.opt_d)?;
        let state = TrainState {
            step: self.step,
            epoch: self.step / self.steps_per_epoch,
            phase: self.phase(),
            live: self.live,
            seed: self.config.seed,
            device: self.device_description.clone(),
            checksums: Default::default(),
        };
        let (path, warnings) =
            partial.publish(&self.run_dir, state, self.config.keep_checkpoints)?;
        for w in warnings {
            self.send(TrainEvent::Warning(w));
        }
        self.last_checkpoint = Some(path.clone());
        self.last_saved_step = Some(self.step);
        self.send(TrainEvent::CheckpointSaved {
            step: self.step,
            path: path.clone(),
        });
        Ok(path)
    }

    /// Runs until done, stopped or failed, applying `commands` between steps.
    /// Every outcome is reported as events; the return value says why it ended.
    pub fn run(mut self, commands: &Receiver<TrainCommand>) -> FinishReason {
        let reason = self.run_inner(commands);
        let reason = reason.unwrap_or_else(|e| {
            self.send(TrainEvent::Error(std::sync::Arc::new(e)));
            FinishReason::Failed
        });
        self.send(TrainEvent::Finished {
            step: self.step,
            reason: reason.clone(),
        });
        reason
    }

    fn run_inner(&mut self, commands: &Receiver<TrainCommand>) -> Result<FinishReason, TrainError> {
        self.begin()?;
        let mut paused = false;
        loop {
            let command = if paused {
                match commands.recv_timeout(StdDuration::from_millis(200)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(TrainCommand::Stop),
                }
            } else {
                commands.try_recv().ok()
            };
            if let Some(command) = command {
                match command {
                    TrainCommand::Pause => {
                        paused = true;
                        self.send(TrainEvent::Paused { step: self.step });
                    }
                    TrainCommand::Resume => {
                        paused = false;
                        self.send(TrainEvent::Resumed { step: self.step });
                    }
                    TrainCommand::Stop => {
                        self.save_checkpoint()?;
                        return Ok(FinishReason::Stopped);
                    }
                    TrainCommand::SaveNow => {
                        self.save_checkpoint()?;
                    }
                    TrainCommand::Snapshot => {
                        self.send(TrainEvent::Snapshot(std::sync::Arc::new(
                            GeneratorSnapshot::capture(&self.nets.generator.valid(), self.step),
                        )));
                    }
                    TrainCommand::SetLive(live) => {
                        if let Err(e) = self.set_live(live) {
                            self.send(TrainEvent::Warning(format!("live change refused: {e}")));
                        }
                    }
                }
                continue;
            }
            if paused {
                continue;
            }
            if self.is_finished() {
                self.save_checkpoint()?;
                if !self.step.is_multiple_of(self.config.sample_every) {
                    self.emit_samples();
                }
                return Ok(FinishReason::Completed);
            }
            self.train_step()?;
        }
    }
}
