//! The headless command line: `train`, `convert`, `info`, `bench`, `import`, `export`.
//! With no subcommand (or `studio [FILES]`) the studio (GUI) opens.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use crossbeam_channel::unbounded;
use indicatif::{ProgressBar, ProgressStyle};

use crate::convert::finish::{StyleChoice, styled};
use crate::convert::{ConvertOptions, convert_batch, plan_jobs};
use crate::device::{DeviceChoice, SelectedDevice, select};
use crate::model::UpsampleMode;
use crate::model_io::{export_safetensors, import_pytorch, load_generator};
use crate::train::config::recipe;
use crate::train::{
    Duration, FinishReason, Preset, TrainCommand, TrainConfig, TrainEvent, Trainer,
};
use crate::video::cli::VideoRun;
use crate::video::ffmpeg::{EncodeSettings, VideoCodec};
use crate::video::{VideoJob, has_video_extension, plan_video_jobs};

/// Train an AnimeGANv2 photo-to-anime model on your own style and convert photos.
/// Run without a subcommand to open the studio.
#[derive(Parser, Debug)]
#[command(name = "photo2anime", version = crate::VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do; none opens the GUI.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the studio (the default), optionally with photos or `.pt` models to
    /// convert, exactly as if they were dropped on its window.
    Studio {
        /// Photos and/or model files to open in the Convert view.
        files: Vec<PathBuf>,
    },
    /// Train a model (defaults to the demo dataset; see `paths`).
    Train(TrainArgs),
    /// Convert photos or folders with a trained or imported model.
    Convert(ConvertArgs),
    /// Print a model's architecture summary and parameter counts, or the recipe
    /// (model, strength, colour options, version) a converted PNG carries.
    Info {
        /// Run/model folder, .bpk, .pt, .safetensors — or a PNG made by `convert`.
        model: PathBuf,
    },
    /// Download and install VGG19 weights or a published generator (see --list).
    Download(crate::download::cli::DownloadArgs),
    /// Measure inference and training speed and peak memory.
    Bench(crate::bench::BenchArgs),
    /// Convert a PyTorch-port generator .pt into a photo2anime model folder.
    Import {
        /// The .pt file (bryandlee/animegan2-pytorch layout).
        file: PathBuf,
        /// Output folder (default: <runs folder>/<file stem>; see `paths`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Upsampling rule the weights were trained with.
        #[arg(long, value_enum, default_value_t = UpsampleArg::AlignCorners)]
        upsample: UpsampleArg,
    },
    /// Write a model's generator as .onnx (a graph any ONNX runtime runs: opset 13,
    /// dynamic height and width) or as .safetensors in the PyTorch port's key layout.
    Export {
        /// Run/model folder, .bpk, .pt or .safetensors.
        model: PathBuf,
        /// Output file: .onnx or .safetensors.
        #[arg(short, long)]
        out: PathBuf,
        /// Override the model's upsampling rule (foreign files default to align-corners).
        #[arg(long, value_enum)]
        upsample: Option<UpsampleArg>,
    },
    /// Print where the demo dataset, runs and models, and caches are (a package
    /// keeps runs in your data folder; a source checkout in `./checkpoints`).
    Paths,
}

/// The decoder upsampling rule on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpsampleArg {
    /// Resize to the encoder size with align_corners=True (the port's default).
    AlignCorners,
    /// scale_factor=2 with align_corners=False (the port's CLI option).
    HalfPixel,
}

impl From<UpsampleArg> for UpsampleMode {
    fn from(a: UpsampleArg) -> Self {
        match a {
            UpsampleArg::AlignCorners => UpsampleMode::AlignCorners,
            UpsampleArg::HalfPixel => UpsampleMode::HalfPixelX2,
        }
    }
}

/// `photo2anime train` options.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder of photos (default: the demo dataset's photos).
    #[arg(long)]
    pub photos: Option<PathBuf>,
    /// Folder of style images (default: the demo dataset's style images).
    #[arg(long)]
    pub style: Option<PathBuf>,
    /// Loss-weight preset.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// A config.json to start from (command-line flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run name: checkpoints/<run> (default: run-<date>-<time>).
    #[arg(long)]
    pub run: Option<String>,
    /// Train for this many steps.
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<usize>,
    /// Train for this many epochs.
    #[arg(long, help = format!("Train for this many epochs (default {})", recipe::EPOCHS))]
    pub epochs: Option<usize>,
    /// Content-only epochs at the start.
    #[arg(long, help = format!("Content-only epochs at the start (default {})", recipe::INIT_EPOCHS))]
    pub init_epochs: Option<usize>,
    /// Training crop size.
    #[arg(long, help = format!("Training crop size (multiple of 8; default {})", recipe::IMAGE_SIZE))]
    pub size: Option<usize>,
    /// Batch size.
    #[arg(long, help = format!("Batch size (default {})", recipe::BATCH_SIZE))]
    pub batch: Option<usize>,
    /// Save samples every N steps.
    #[arg(long, help = format!("Save samples every N steps (default {})", recipe::SAMPLE_EVERY))]
    pub sample_every: Option<usize>,
    /// Save a checkpoint every N steps.
    #[arg(long, help = format!("Save a checkpoint every N steps (default {})", recipe::CHECKPOINT_EVERY))]
    pub checkpoint_every: Option<usize>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Wgpu)]
    pub device: DeviceChoice,
    /// torchvision vgg19-dcbb9e9d.pth (default: look in the torch hub cache).
    #[arg(long)]
    pub vgg: Option<PathBuf>,
    /// Fine-tune: start the generator from this model (run/model folder, .pt,
    /// .safetensors or .bpk) instead of random weights; its upsampling rule is kept and
    /// the content-only init phase is skipped (see --warm-up).
    #[arg(long, value_name = "MODEL")]
    pub init_from: Option<PathBuf>,
    /// With --init-from: run the content-only init phase anyway.
    #[arg(long, requires = "init_from")]
    pub warm_up: bool,
    /// Resume the newest checkpoint of this run folder.
    #[arg(long, conflicts_with_all = ["photos", "style", "preset", "config", "run", "size", "batch"])]
    pub resume: Option<PathBuf>,
    /// Seed of init, data order and crops.
    #[arg(long, help = format!("Seed of init, data order and crops (default {})", recipe::SEED))]
    pub seed: Option<u64>,
}

/// `photo2anime convert` options.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Run/model folder, .bpk, .pt (PyTorch port) or .safetensors.
    #[arg(long)]
    pub model: PathBuf,
    /// Photos, video clips and/or folders (folders are converted recursively,
    /// keeping their tree; clips become .mp4, or .webm with VP9).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output: a file for a single photo, else a folder (default: ./converted).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Photos with a side over this many pixels convert in bounded memory: on the
    /// CPU in one streamed pass (exact tiles of this size beyond half the free
    /// memory), on wgpu in exact tiles (0 = always whole; default 1024 on the CPU,
    /// 448 on wgpu).
    #[arg(long)]
    pub tile: Option<usize>,
    /// Overlap between tiles in pixels (at least 128: each tile's share stays 64 px
    /// from its cut edges, so tiles add up to the whole-image result).
    #[arg(long, default_value_t = crate::convert::MIN_EXACT_OVERLAP)]
    pub overlap: usize,
    /// Match the output's mean luminance to the photo's.
    #[arg(long)]
    pub match_luminance: bool,
    /// Style strength in percent: 100 is the model's full style, 0 the photo. A
    /// fine-tuned run interpolates its weights with its parent model's; any other
    /// model blends its output with the photo.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub strength: u32,
    /// Keep the photo's colours (the result's brightness with the photo's hues).
    #[arg(long)]
    pub keep_colors: bool,
    /// Output format for folders (default: keep jpg/png/webp, else png).
    #[arg(long, value_parser = ["png", "jpg", "webp"])]
    pub format: Option<String>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Wgpu)]
    pub device: DeviceChoice,
    /// Override the model's upsampling rule (foreign files default to align-corners).
    #[arg(long, value_enum)]
    pub upsample: Option<UpsampleArg>,
    /// Video codec for clips (.mp4/.mov/.mkv take H.264 or H.265, .webm VP9).
    #[arg(long, value_enum, default_value_t = VideoCodec::H264)]
    pub codec: VideoCodec,
    /// Video quality as a constant rate factor: lower is better and larger
    /// (default 18 for H.264, 22 for H.265, 28 for VP9).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub crf: Option<u32>,
    /// Clips: average each norm layer's statistics over about this many frames,
    /// so brightness and colour do not pump (1 = every frame its own, which flickers).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub smoothing_frames: u32,
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => crate::app::run_gui(Vec::new()),
        Some(command) => run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Studio { files } => crate::app::run_gui(files),
        Command::Train(args) => train(args),
        Command::Convert(args) => convert(args),
        Command::Info { model } => info(&model),
        Command::Bench(args) => crate::bench::run(args),
        Command::Paths => {
            println!("{}", crate::paths::Locations::current().describe());
            Ok(())
        }
        Command::Download(args) => crate::download::cli::run(args),
        Command::Import {
            file,
            out,
            upsample,
        } => {
            let device = announce(select(DeviceChoice::Cpu));
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "imported".into());
            let out = out.unwrap_or_else(|| crate::checkpoints_dir().join(stem));
            let dir = import_pytorch(&file, &out, upsample.into(), &device.device)?;
            println!("imported {} -> {}", file.display(), dir.display());
            Ok(())
        }
        Command::Export {
            model,
            out,
            upsample,
        } => {
            let device = select(DeviceChoice::Cpu);
            let loaded = load_generator(&model, &device.device, upsample.map(Into::into))?;
            let ext = out
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("onnx") => {
                    crate::interop::onnx::export_onnx(&loaded.generator, &loaded.description, &out)?
                }
                Some("safetensors") => export_safetensors(&loaded, &out)?,
                _ => bail!("{}: write .onnx or .safetensors", out.display()),
            }
            println!("exported {} -> {}", loaded.description, out.display());
            Ok(())
        }
    }
}

fn announce(device: SelectedDevice) -> SelectedDevice {
    eprintln!("device: {}", device.description);
    if let Some(reason) = &device.fallback_reason {
        eprintln!("warning: {reason}");
    }
    device
}

/// Where a run without `--run` goes: the studio's naming rule,
/// `checkpoints/run-YYYYMMDD-HHMMSS` (UTC), suffixed when taken.
fn default_run_dir() -> PathBuf {
    crate::train::run_dir::new_run_dir(&crate::checkpoints_dir())
}

/// What Ctrl-C / SIGTERM does at each moment of `photo2anime train`.
const SIGNAL_PREPARING: u8 = 0;
const SIGNAL_TRAINING: u8 = 1;
const SIGNAL_STOPPING: u8 = 2;

/// Installs the Ctrl-C / SIGTERM handler of `train`. While training, the first signal
/// asks the trainer to stop (it saves a checkpoint and `train` exits 0); before
/// training starts, or on a second signal, the process exits at once with status 130
/// (every file the trainer writes is written atomically, so nothing is left half-done).
fn install_stop_handler(
    commands: crossbeam_channel::Sender<TrainCommand>,
) -> Result<std::sync::Arc<std::sync::atomic::AtomicU8>> {
    use std::sync::atomic::{AtomicU8, Ordering};
    let phase = std::sync::Arc::new(AtomicU8::new(SIGNAL_PREPARING));
    let handler_phase = phase.clone();
    ctrlc::set_handler(move || {
        match handler_phase.compare_exchange(
            SIGNAL_TRAINING,
            SIGNAL_STOPPING,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => {
                eprintln!(
                    "stopping: saving a checkpoint after the current step \
                     (interrupt again to quit without saving)"
                );
                let _ = commands.send(TrainCommand::Stop);
            }
            Err(SIGNAL_PREPARING) => {
                eprintln!("interrupted before training started; nothing to save");
                std::process::exit(130);
            }
            Err(_) => {
                eprintln!("interrupted again: quitting without saving");
                std::process::exit(130);
            }
        }
    })
    .context("cannot install the Ctrl-C / SIGTERM handler")?;
    Ok(phase)
}

/// Builds the run configuration from a base (file or defaults) and the flags.
pub fn train_config(args: &TrainArgs) -> Result<TrainConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            serde_json::from_str::<TrainConfig>(&text)
                .with_context(|| format!("{}: not a valid config.json", path.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(p) = &args.photos {
        config.photos_dir = p.clone();
    }
    if let Some(s) = &args.style {
        config.style_dir = s.clone();
    }
    if let Some(preset) = args.preset {
        config.preset = preset;
        config.live.apply_preset(preset);
    }
    if let Some(n) = args.steps {
        config.duration = Duration::Steps(n);
    }
    if let Some(n) = args.epochs {
        config.duration = Duration::Epochs(n);
    }
    if let Some(n) = args.init_epochs {
        config.init_epochs = n;
    }
    if let Some(n) = args.size {
        config.image_size = n;
    }
    if let Some(n) = args.batch {
        config.batch_size = n;
    }
    if let Some(n) = args.sample_every {
        config.sample_every = n;
    }
    if let Some(n) = args.checkpoint_every {
        config.checkpoint_every = n;
    }
    if let Some(v) = &args.vgg {
        config.vgg_path = Some(v.clone());
    }
    if let Some(model) = &args.init_from {
        config.init_from = Some(model.clone());
        config.warm_up_fine_tune = args.warm_up;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

fn train(args: TrainArgs) -> Result<()> {
    let device = announce(select(args.device));
    let (events_tx, events) = unbounded();
    let (commands_tx, commands) = unbounded();
    let signal_phase = install_stop_handler(commands_tx.clone())?;
    let trainer = match &args.resume {
        Some(run_dir) => {
            let duration = args
                .steps
                .map(Duration::Steps)
                .or(args.epochs.map(Duration::Epochs));
            Trainer::resume(run_dir, &device, events_tx, duration)?
        }
        None => {
            let config = train_config(&args)?;
            let run_dir = match &args.run {
                Some(name) => crate::checkpoints_dir().join(name),
                None => default_run_dir(),
            };
            Trainer::new(config, &run_dir, &device, events_tx)?
        }
    };
    eprintln!("{}", trainer.vgg_source().describe());
    let trainer_sample_every = trainer.config().sample_every;
    // From here a signal becomes a Stop command: the trainer saves, then ends.
    signal_phase.store(SIGNAL_TRAINING, std::sync::atomic::Ordering::SeqCst);
    let worker = std::thread::spawn(move || trainer.run(&commands));
    // A progress bar on a terminal; plain lines (one per sample interval) in logs.
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |line: String| {
        if terminal {
            bar.println(line)
        } else {
            eprintln!("{line}")
        }
    };
    let mut failure = None;
    let mut last_checkpoint: Option<PathBuf> = None;
    let mut started_run: Option<PathBuf> = None;
    let mut sample_every = usize::MAX;
    for event in events.iter() {
        match event {
            TrainEvent::Preparing { done, total } => {
                bar.set_message(format!("preparing images {done}/{total}"))
            }
            TrainEvent::DatasetReady {
                photos,
                style,
                skipped,
            } => {
                for file in &skipped {
                    say(format!("skipped {}: {}", file.path.display(), file.reason));
                }
                say(format!(
                    "dataset: {photos} photos, {style} style images, {} skipped",
                    skipped.len()
                ));
            }
            TrainEvent::Started {
                run_dir,
                start_step,
                total_steps,
                ..
            } => {
                started_run = Some(run_dir.clone());
                bar.set_length(total_steps as u64);
                bar.set_position(start_step as u64);
                sample_every = trainer_sample_every.max(1);
                say(format!(
                    "run: {} (steps {start_step}..{total_steps})",
                    run_dir.display()
                ));
            }
            TrainEvent::Step(s) => {
                bar.set_position(s.step as u64);
                let l = s.losses;
                let f = |v: Option<f32>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
                let status = format!(
                    "{} ep {} | G {} D {} content {} | {:.2} img/s | ETA {}",
                    s.phase.label(),
                    s.epoch,
                    f(l.g_total),
                    f(l.d_total),
                    f(l.content),
                    s.images_per_sec,
                    format_duration(s.eta_secs)
                );
                if !terminal && s.step % sample_every == 0 {
                    eprintln!("step {}/{} {status}", s.step, s.total_steps);
                }
                bar.set_message(status);
            }
            TrainEvent::Samples {
                step,
                path: Some(path),
                ..
            } => say(format!("samples step {step}: {}", path.display())),
            TrainEvent::CheckpointSaved { step, path } => {
                say(format!("checkpoint step {step}: {}", path.display()));
                last_checkpoint = Some(path);
            }
            TrainEvent::Warning(w) => say(format!("warning: {w}")),
            TrainEvent::Error(e) => failure = Some(e),
            TrainEvent::Finished { step, reason } => {
                bar.finish_with_message(format!("finished at step {step}: {reason:?}"));
                say(format!("finished at step {step}: {reason:?}"));
                break;
            }
            // The CLI neither pauses, changes live values nor asks for snapshots; a
            // sample grid that could not be written was already reported as a warning.
            TrainEvent::Samples { path: None, .. }
            | TrainEvent::LiveApplied { .. }
            | TrainEvent::Snapshot(_)
            | TrainEvent::Paused { .. }
            | TrainEvent::Resumed { .. } => {}
        }
    }
    drop(commands_tx);
    let reason = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the training thread panicked"))?;
    match (reason, failure) {
        (FinishReason::Failed, Some(e)) => bail!("{e}"),
        (FinishReason::Failed, None) => bail!("training failed"),
        (FinishReason::Stopped, _) => {
            // A stop right after a periodic save re-uses that checkpoint (no new event).
            let last_checkpoint = last_checkpoint.or_else(|| {
                started_run
                    .as_deref()
                    .and_then(|dir| crate::train::run_dir::latest_checkpoint(dir).ok())
                    .map(|(_, path)| path)
            });
            match &last_checkpoint {
                Some(path) => println!("stopped; checkpoint saved at {}", path.display()),
                None => println!("stopped"),
            }
            Ok(())
        }
        (FinishReason::Completed, _) => {
            if let Some(path) = &last_checkpoint {
                println!("finished; checkpoint saved at {}", path.display());
            }
            Ok(())
        }
    }
}

fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn convert(args: ConvertArgs) -> Result<()> {
    let device = announce(select(args.device));
    let loaded = load_generator(&args.model, &device.device, args.upsample.map(Into::into))?;
    eprintln!("model: {}", loaded.description);
    let choice = StyleChoice {
        strength_percent: args.strength,
        keep_colors: args.keep_colors,
        match_luminance: args.match_luminance,
    };
    let styled = styled(loaded, &args.model, choice, &device.device)?;
    if args.strength < 100 {
        eprintln!(
            "strength {}% ({})",
            args.strength,
            if styled.recipe.strength_by == "weights" {
                "weights interpolated with the parent model"
            } else {
                "blended with the photo"
            }
        );
    }
    let defaults = ConvertOptions::for_backend(device.is_gpu_backend);
    let opts = ConvertOptions {
        tile: args.tile.unwrap_or(defaults.tile),
        overlap: args.overlap,
        match_luminance: args.match_luminance,
        keep_colors: args.keep_colors,
        photo_blend: styled.photo_blend,
    };
    let recipe = Some(&styled.recipe);
    let single_file = args.inputs.len() == 1 && args.inputs[0].is_file();
    for input in &args.inputs {
        if !input.exists() {
            bail!("{}: no such file or folder", input.display());
        }
    }
    let video_run = VideoRun {
        generator: &styled.generator,
        opts,
        smoothing: (args.smoothing_frames > 1).then(|| 1.0 / f64::from(args.smoothing_frames)),
        encode: EncodeSettings {
            codec: args.codec,
            crf: args.crf,
        },
        overwrite: single_file,
    };
    let video_ext = if args.codec == VideoCodec::Vp9 {
        "webm"
    } else {
        "mp4"
    };
    if single_file && has_video_extension(&args.inputs[0]) {
        let input = &args.inputs[0];
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let output = match &args.out {
            Some(o) if o.is_dir() => o.join(format!("{stem}.{video_ext}")),
            Some(o) => o.clone(),
            None => input.with_file_name(format!("{stem}-anime.{video_ext}")),
        };
        let job = VideoJob {
            input: input.clone(),
            output,
        };
        return crate::video::cli::run(&[job], &video_run);
    }
    if single_file {
        let input = &args.inputs[0];
        let out = args.out.clone().unwrap_or_else(|| {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let ext = args.format.clone().unwrap_or_else(|| "png".into());
            input.with_file_name(format!("{stem}-anime.{ext}"))
        });
        let out = if out.is_dir() {
            plan_jobs(&args.inputs, &out, args.format.as_deref())[0]
                .output
                .clone()
        } else {
            out
        };
        crate::convert::convert_file(
            &styled.generator,
            input,
            &out,
            &opts,
            &device.device,
            recipe,
        )?;
        println!("{}", out.display());
        return Ok(());
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("converted"));
    let videos = plan_video_jobs(&args.inputs, &out_dir, video_ext);
    let photo_inputs: Vec<PathBuf> = args
        .inputs
        .iter()
        .filter(|p| !(p.is_file() && has_video_extension(p)))
        .cloned()
        .collect();
    let jobs = plan_jobs(&photo_inputs, &out_dir, args.format.as_deref());
    if !videos.is_empty() {
        crate::video::cli::run(&videos, &video_run)?;
        if jobs.is_empty() {
            return Ok(());
        }
    }
    let bar = ProgressBar::new(jobs.len() as u64);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let report = convert_batch(
        &styled.generator,
        &jobs,
        &opts,
        &device.device,
        &cancel,
        recipe,
        &mut |done, _, path| {
            bar.set_position(done as u64);
            bar.set_message(path.display().to_string());
        },
    );
    bar.finish_and_clear();
    println!(
        "converted {}, skipped {} existing, {} failed -> {}",
        report.converted.len(),
        report.skipped_existing.len(),
        report.failed.len(),
        out_dir.display()
    );
    for (path, reason) in &report.failed {
        eprintln!("failed: {}: {reason}", path.display());
    }
    if !report.failed.is_empty() && report.converted.is_empty() {
        bail!("no photo could be converted");
    }
    Ok(())
}

fn info(model: &std::path::Path) -> Result<()> {
    let is_png = model
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png && model.is_file() {
        let recipe = crate::convert::recipe::read_recipe(model)?;
        println!("model: {}", recipe.model);
        println!("model weights (blake3): {}", recipe.model_blake3);
        println!(
            "strength: {}% ({})",
            recipe.strength_percent, recipe.strength_by
        );
        println!("keep colours: {}", recipe.keep_colors);
        println!("match brightness: {}", recipe.match_luminance);
        println!("photo2anime: {}", recipe.version);
        return Ok(());
    }
    let device = select(DeviceChoice::Cpu);
    let loaded = load_generator(model, &device.device, None)?;
    let g = &loaded.generator;
    println!("model: {}", loaded.description);
    println!(
        "architecture: AnimeGANv2 generator (upsampling: {:?})",
        loaded.upsample
    );
    println!("{g}");
    println!("parameters: {}", burn::module::Module::num_params(g));
    if model.is_dir()
        && let Ok(text) = std::fs::read_to_string(model.join("model.json"))
    {
        println!("model.json: {text}");
    }
    Ok(())
}
