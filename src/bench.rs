//! `photo2anime bench`: generator inference at 256/512/1024, a whole 3840x2160
//! photo converted as the app converts it (bounded memory), full and init-phase
//! training steps at batch 4, 256², and peak memory — the figures to compare with
//! the PyTorch peer (`../shared/bench/animegan_torch.py`) on the same machine. The
//! developer tool `examples/compare_pytorch.rs` runs that peer and onnxruntime
//! beside it.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::convert::{ConvertOptions, network_output};
use crate::data::Batch;
use crate::device::{DeviceChoice, require_wgpu, select};
use crate::model::{DiscriminatorConfig, GeneratorConfig, Vgg19};
use crate::train::LiveParams;
use crate::train::step::Networks;

/// `photo2anime bench` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Print one JSON object per figure instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Inference sizes (square).
    #[arg(long, num_args = 1.., default_values_t = [256usize, 512, 1024])]
    pub sizes: Vec<usize>,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed warm-up runs per figure.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Training image size.
    #[arg(long, default_value_t = 256)]
    pub train_size: usize,
    /// Skip the training figures.
    #[arg(long)]
    pub skip_train: bool,
    /// Measure only these figures (default: all).
    #[arg(long, value_enum, num_args = 1..)]
    pub only: Vec<Only>,
    /// Size of the photo converted for the `photo` figure, `WIDTHxHEIGHT`.
    #[arg(long, default_value = "3840x2160", value_parser = parse_size)]
    pub photo: (u32, u32),
}

/// `WIDTHxHEIGHT` (e.g. `3840x2160`).
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s}: expected WIDTHxHEIGHT, e.g. 3840x2160"))?;
    let side = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| (16..=16384).contains(&n))
            .ok_or_else(|| format!("{s}: sides must be 16..=16384 pixels"))
    };
    Ok((side(w)?, side(h)?))
}

/// The CPU this process runs on: model, vector ISA and cache sizes (what every
/// speed table must say, since ratios change from chip to chip).
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags = field("flags").unwrap_or_default();
    let isa: Vec<&str> = [
        "avx2",
        "fma",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
    ]
    .into_iter()
    .filter(|f| flags.split_whitespace().any(|x| x == *f))
    .collect();
    let cache = |level: &str| {
        (0..8).find_map(|i| {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let lvl = read("level")?;
            let kind = read("type")?;
            (lvl.trim() == level && kind.trim() != "Instruction")
                .then(|| read("size").map(|s| s.trim().to_string()))
                .flatten()
        })
    };
    let caches: Vec<String> = ["1", "2", "3"]
        .into_iter()
        .filter_map(|l| cache(l).map(|s| format!("L{l} {s}")))
        .collect();
    format!(
        "{model}; {} threads; {}; {}",
        crate::device::cpu_threads(),
        if isa.is_empty() {
            "no AVX2".to_string()
        } else {
            isa.join(" ")
        },
        caches.join(", ")
    )
}

/// A group of figures for `--only`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Generator inference at every `--sizes`.
    Infer,
    /// The full (adversarial) training step.
    TrainFull,
    /// The init-phase (content loss only) training step.
    TrainInit,
    /// A whole `--photo` (3840x2160) converted as the app does (bounded memory).
    Photo,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// e.g. `g_infer_512`, `train_full_b4_256`.
    pub name: String,
    /// Device description.
    pub device: String,
    /// Median wall time.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Timed runs.
    pub runs: usize,
    /// Process peak resident memory after this figure (MiB), Linux only.
    pub peak_rss_mib: Option<f64>,
    /// The CPU ([`cpu_description`]).
    pub cpu: String,
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn time_it(warmup: usize, runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    (median(times), min)
}

/// A `w` x `h` photo-like test image: smooth gradients with a little texture
/// (the time does not depend on content; this keeps the output meaningful).
fn synthetic_photo(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
        let t = ((x * 7 + y * 13) % 17) as f32;
        image::Rgb([
            (255.0 * u) as u8,
            (255.0 * v) as u8,
            (128.0 + 60.0 * (u * 9.0).sin() + t) as u8,
        ])
    })
}

fn synthetic_batch(b: usize, s: usize, device: &Device) -> Batch {
    let field = || {
        Tensor::<4>::random([b, 3, s, s], Distribution::Uniform(-1.0, 1.0), device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    };
    Batch {
        step: 0,
        batch_size: b,
        image_size: s,
        photos: field(),
        style: field(),
        style_gray: field(),
        style_smooth: field(),
        warnings: Vec::new(),
    }
}

/// Measures every figure and prints them.
pub fn run(args: BenchArgs) -> Result<()> {
    let wants = |o: Only| args.only.is_empty() || args.only.contains(&o);
    // A benchmark measures the backend asked for: wgpu runs on whatever adapter
    // exists, software rasterizers (lavapipe) included, and says which.
    let selected = match args.device {
        DeviceChoice::Cpu => select(DeviceChoice::Cpu),
        DeviceChoice::Wgpu => require_wgpu().map_err(|e| anyhow::anyhow!(e))?,
    };
    let device = selected.device.clone();
    let name = selected.description.clone();
    let cpu = cpu_description();
    if !args.json {
        println!("CPU: {cpu}");
    }
    let mut figures = Vec::new();
    // Times `step` (after warm-up), prints the figure and keeps it.
    let mut measure = |figure_name: String, warmup: usize, runs: usize, step: &mut dyn FnMut()| {
        let (median_ms, min_ms) = time_it(warmup, runs, step);
        let f = Figure {
            name: figure_name,
            device: name.clone(),
            median_ms,
            min_ms,
            runs,
            peak_rss_mib: peak_rss_mib(),
            cpu: cpu.clone(),
        };
        if args.json {
            println!("{}", serde_json::to_string(&f).unwrap_or_default());
        } else {
            println!(
                "{:<22} median {:>9.1} ms  min {:>9.1} ms  runs {:>2}  peak RSS {:>7.0} MiB  [{}]",
                f.name,
                f.median_ms,
                f.min_ms,
                f.runs,
                f.peak_rss_mib.unwrap_or(f64::NAN),
                f.device
            );
        }
        figures.push(f);
    };

    let g = GeneratorConfig::new().init(&device);
    let sizes: &[usize] = if wants(Only::Infer) { &args.sizes } else { &[] };
    for &size in sizes {
        let x = Tensor::<4>::random(
            [1, 3, size, size],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let runs = if size >= 1024 {
            args.runs.min(3)
        } else {
            args.runs
        };
        measure(format!("g_infer_{size}"), args.warmup, runs, &mut || {
            let y = g.forward(x.clone());
            let _ = y.into_data();
        });
    }

    if wants(Only::Photo) {
        let (w, h) = args.photo;
        let photo = synthetic_photo(w, h);
        let opts = ConvertOptions::for_backend(selected.is_gpu_backend);
        let mut failure = None;
        // Minutes per run at 4K on a laptop CPU: one run, no warm-up.
        measure(format!("g_photo_{w}x{h}"), 0, 1, &mut || {
            if let Err(e) = network_output(&g, &photo, &opts, &device) {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            anyhow::bail!("the photo figure is invalid: {e}");
        }
    }

    if !args.skip_train && (wants(Only::TrainFull) || wants(Only::TrainInit)) {
        let ad = device.clone().autodiff();
        let mut nets = Networks::new(
            GeneratorConfig::new().init(&ad),
            DiscriminatorConfig::new().init(&ad),
            Vgg19::random(19, &ad).no_grad(),
        );
        let batch = synthetic_batch(args.batch, args.train_size, &device);
        let live = LiveParams::default();
        let runs = args.runs.min(3);
        // A step whose losses cannot be read back makes the figure meaningless.
        let mut failure = None;
        if wants(Only::TrainFull) {
            measure(
                format!("train_full_b{}_{}", args.batch, args.train_size),
                args.warmup,
                runs,
                &mut || {
                    if let Err(e) = nets.adversarial_step(&batch, &live, &ad) {
                        failure = Some(e);
                    }
                },
            );
        }
        if wants(Only::TrainInit) {
            measure(
                format!("train_init_b{}_{}", args.batch, args.train_size),
                args.warmup,
                runs,
                &mut || {
                    if let Err(e) = nets.init_step(&batch, &live, &ad) {
                        failure = Some(e);
                    }
                },
            );
        }
        if let Some(e) = failure {
            anyhow::bail!("training figures are invalid: {e}");
        }
        let _ = nets.generator.valid();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_sizes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_size("3840x2160"), Ok((3840, 2160)));
        assert_eq!(parse_size("640X480"), Ok((640, 480)));
        assert!(parse_size("3840").unwrap_err().contains("WIDTHxHEIGHT"));
        assert!(parse_size("8x8").unwrap_err().contains("16..=16384"));
        assert!(parse_size("axb").is_err());
    }

    #[test]
    fn the_cpu_description_names_the_cpu_and_its_caches() {
        let d = cpu_description();
        assert!(d.contains("threads"), "{d}");
        #[cfg(target_os = "linux")]
        assert!(d.contains("L2 "), "{d}");
    }
}
