//! The trainer: a plain struct any thread can drive step by step, or run with a
//! command channel. It owns the device, the networks and the optimizers; it
//! reports through [`TrainEvent`]s only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use image::{DynamicImage, RgbImage};

use super::checkpoint::{
    CheckpointError, ModelInfo, ModelOrigin, TrainState, files, latest_checkpoint,
    publish_checkpoint, read_json, write_json,
};
use super::config::{Duration, LiveParams, TrainConfig};
use super::events::{
    FinishReason, LossValues, Phase, RgbImage8, StepStats, TrainCommand, TrainEvent,
};
use super::metrics::MetricsWriter;
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
    Config(String),
    /// The dataset could not be prepared.
    #[error(transparent)]
    Data(#[from] DataError),
    /// VGG weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A loss became NaN or infinite; the run stopped without saving.
    #[error("loss {term} became {value} at step {step}: training stopped; the last good checkpoint is kept{}", last.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
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
    /// The loader thread ended early.
    #[error("the data loader stopped unexpectedly")]
    LoaderStopped,
}

/// Exponential smoothing window of the throughput figure.
const TIMING_WINDOW: usize = 20;

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
}

impl Trainer {
    /// Starts a new run in `run_dir` (created; must not hold a run already).
    pub fn new(
        config: TrainConfig,
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
    ) -> Result<Self, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        if run_dir.join("latest.json").exists() {
            return Err(TrainError::Config(format!(
                "{} already holds a run; resume it or choose another run name",
                run_dir.display()
            )));
        }
        std::fs::create_dir_all(run_dir.join("samples")).map_err(|source| CheckpointError::Io {
            path: run_dir.to_path_buf(),
            source,
        })?;
        write_json(&run_dir.join("config.json"), &config)?;
        device.device.seed(config.seed);
        let generator = GeneratorConfig::new()
            .with_upsample(config.upsample)
            .init(&device.device.clone().autodiff());
        let discriminator = DiscriminatorConfig::new().init(&device.device.clone().autodiff());
        Self::build(
            config,
            run_dir,
            device,
            events,
            generator,
            discriminator,
            None,
        )
    }

    /// Resumes the newest checkpoint of `run_dir`: same step counter, same data
    /// order, same optimizer state, metrics.csv continued. `duration` extends (or
    /// shortens) the run; it is written back to `config.json`.
    pub fn resume(
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
        duration: Option<Duration>,
    ) -> Result<Self, TrainError> {
        let mut config: TrainConfig = read_json(&run_dir.join("config.json"))?;
        if let Some(d) = duration {
            config.duration = d;
            write_json(&run_dir.join("config.json"), &config)?;
        }
        config.validate().map_err(TrainError::Config)?;
        let (_, ckpt) = latest_checkpoint(run_dir)?;
        let state: TrainState = read_json(&ckpt.join(files::STATE))?;
        let ad = device.device.clone().autodiff();
        let generator = load_module(
            GeneratorConfig::new()
                .with_upsample(config.upsample)
                .init(&ad),
            &ckpt.join(files::GENERATOR),
        )?;
        let discriminator = load_module(
            DiscriminatorConfig::new().init(&ad),
            &ckpt.join(files::DISCRIMINATOR),
        )?;
        Self::build(
            config,
            run_dir,
            device,
            events,
            generator,
            discriminator,
            Some((state, ckpt)),
        )
    }

    fn build(
        config: TrainConfig,
        run_dir: &Path,
        device: &SelectedDevice,
        events: Sender<TrainEvent>,
        generator: Generator,
        discriminator: Discriminator,
        resume: Option<(TrainState, PathBuf)>,
    ) -> Result<Self, TrainError> {
        let plain = device.device.clone();
        let autodiff = plain.clone().autodiff();
        let (vgg, vgg_source) = load_loss_network(config.vgg_path.as_deref(), &autodiff)?;
        if !vgg_source.is_pretrained() {
            let _ = events.send(TrainEvent::Warning(vgg_source.describe()));
        }
        let progress_events = events.clone();
        let progress = move |done: usize, total: usize| {
            if done == total || done % 16 == 0 {
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
        for s in &skipped {
            let _ = events.send(TrainEvent::Warning(format!(
                "skipped {}: {}",
                s.path.display(),
                s.reason
            )));
        }
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
        let (step, live, last_checkpoint) = match resume {
            Some((state, ckpt)) => {
                nets.opt_init = load_optimizer(nets.opt_init, &ckpt.join(files::OPT_INIT))?;
                nets.opt_g = load_optimizer(nets.opt_g, &ckpt.join(files::OPT_G))?;
                nets.opt_d = load_optimizer(nets.opt_d, &ckpt.join(files::OPT_D))?;
                (state.step, state.live, Some(ckpt))
            }
            None => (0, config.live, None),
        };
        let metrics =
            MetricsWriter::open(&run_dir.join("metrics.csv"), step).map_err(|source| {
                CheckpointError::Io {
                    path: run_dir.join("metrics.csv"),
                    source,
                }
            })?;
        write_json(
            &run_dir.join("model.json"),
            &ModelInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                upsample: config.upsample,
                origin: ModelOrigin::Trained,
                vgg: Some(vgg_source.clone()),
                image_size: Some(config.image_size),
            },
        )?;
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
        })
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Total steps of the run.
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
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
        let init_steps = self.config.init_epochs * self.steps_per_epoch;
        if self.step < init_steps {
            Phase::Init
        } else {
            Phase::Adversarial
        }
    }

    /// Replaces learning rates and loss weights from the next step on.
    pub fn set_live(&mut self, live: LiveParams) -> Result<(), String> {
        live.validate()?;
        self.live = live;
        let _ = self.events.send(TrainEvent::LiveApplied {
            step: self.step + 1,
            params: live,
        });
        Ok(())
    }

    /// A copy of the current generator for inference (no autodiff).
    pub fn generator_snapshot(&self) -> Generator {
        self.nets.generator.valid()
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
        };
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
        if self.step % self.config.sample_every == 0 {
            self.emit_samples();
        }
        if self.step % self.config.checkpoint_every == 0 {
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
        let outputs = tensor_to_images(g.forward(input));
        let path = self
            .run_dir
            .join("samples")
            .join(format!("step-{:06}.png", self.step));
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

    /// Writes a checkpoint of the current step atomically and prunes old ones.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        if self.last_saved_step == Some(self.step) {
            if let Some(p) = &self.last_checkpoint {
                return Ok(p.clone());
            }
        }
        let tmp = self.run_dir.join(format!(".partial-{:06}", self.step));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| CheckpointError::Io {
            path: tmp.clone(),
            source,
        })?;
        let result = (|| -> Result<PathBuf, TrainError> {
            save_module(self.nets.generator.clone(), &tmp.join(files::GENERATOR))?;
            save_module(
                self.nets.discriminator.clone(),
                &tmp.join(files::DISCRIMINATOR),
            )?;
            save_optimizer(&self.nets.opt_init, &tmp.join(files::OPT_INIT))?;
            save_optimizer(&self.nets.opt_g, &tmp.join(files::OPT_G))?;
            save_optimizer(&self.nets.opt_d, &tmp.join(files::OPT_D))?;
            write_json(
                &tmp.join(files::STATE),
                &TrainState {
                    step: self.step,
                    epoch: self.step / self.steps_per_epoch,
                    phase: self.phase(),
                    live: self.live,
                    seed: self.config.seed,
                    device: self.device_description.clone(),
                },
            )?;
            Ok(publish_checkpoint(
                &self.run_dir,
                &tmp,
                self.step,
                self.config.keep_checkpoints,
            )?)
        })();
        match result {
            Ok(path) => {
                self.last_checkpoint = Some(path.clone());
                self.last_saved_step = Some(self.step);
                self.send(TrainEvent::CheckpointSaved {
                    step: self.step,
                    path: path.clone(),
                });
                Ok(path)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Runs until done, stopped or failed, applying `commands` between steps.
    /// Every outcome is reported as events; the return value says why it ended.
    pub fn run(mut self, commands: &Receiver<TrainCommand>) -> FinishReason {
        let reason = self.run_inner(commands);
        if let Err(e) = &reason {
            self.send(TrainEvent::Error(e.to_string()));
        }
        let reason = reason.unwrap_or(FinishReason::Failed);
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
                if self.step % self.config.sample_every != 0 {
                    self.emit_samples();
                }
                return Ok(FinishReason::Completed);
            }
            self.train_step()?;
        }
    }
}

fn save_module<M: Module>(module: M, path: &Path) -> Result<(), TrainError> {
    write_encoded(path, module.into_record().into_bytes())
}

/// Writes serialised weights or optimizer state atomically, naming the file on error.
fn write_encoded<B: std::ops::Deref<Target = [u8]>, E: ToString>(
    path: &Path,
    encoded: Result<B, E>,
) -> Result<(), TrainError> {
    let bytes = encoded.map_err(|e| CheckpointError::Weights {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    crate::fsx::write_atomic(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Loads burnpack weights saved by this crate into `module`.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
        CheckpointError::Weights {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    })?;
    module
        .try_load_record(record)
        .map_err(|e| CheckpointError::Weights {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

fn save_optimizer(optimizer: &ModuleOptimizer, path: &Path) -> Result<(), TrainError> {
    write_encoded(path, optimizer.into_bytes())
}

fn load_optimizer(
    optimizer: ModuleOptimizer,
    path: &Path,
) -> Result<ModuleOptimizer, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| CheckpointError::Weights {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}
