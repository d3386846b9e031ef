//! Developer tool, not part of the app: photo2anime against the PyTorch peer
//! (`../shared/bench/animegan_torch.py`) and its onnxruntime command, figure by
//! figure, interleaved, each side in a fresh process with the same thread count,
//! so that peak RSS is per figure and a burst of load hits both sides alike.
//!
//! It pip-installs torch / onnxruntime into a venv when no Python is given, which
//! is why it lives here and not in the artist's binary:
//!
//! ```sh
//! cargo build --release && cargo run --release --example compare_pytorch -- --runs 3
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use clap::Parser;
use photo2anime::bench::{BenchArgs, Only};

/// Options: every `photo2anime bench` option plus the peers'.
#[derive(Parser, Debug)]
#[command(
    name = "compare_pytorch",
    about = "photo2anime beside PyTorch and onnxruntime"
)]
struct CompareArgs {
    /// The figures to measure (as `photo2anime bench`).
    #[command(flatten)]
    bench: BenchArgs,
    /// Rounds of (photo2anime, PyTorch, onnxruntime) per figure; medians over
    /// rounds are compared.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// A Python with torch (and onnxruntime) to use instead of the venv created
    /// under ~/.cache/photo2anime/bench-venv (also `PHOTO2ANIME_BENCH_PYTHON`).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The peer script (also `PHOTO2ANIME_PEER_SCRIPT`; default
    /// `../shared/bench/animegan_torch.py`).
    #[arg(long)]
    peer_script: Option<PathBuf>,
    /// The photo2anime binary to measure (default: `photo2anime` beside this
    /// example's folder, i.e. the same cargo profile).
    #[arg(long)]
    binary: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    match run(&CompareArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `target/<profile>/photo2anime` for an example built in `target/<profile>/examples/`.
fn default_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this executable")?;
    let profile_dir = me
        .parent()
        .and_then(Path::parent)
        .context("unexpected example location")?;
    let exe = profile_dir.join(format!("photo2anime{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        bail!(
            "{} not found: run `cargo build --release` first, or pass --binary",
            exe.display()
        );
    }
    Ok(exe)
}

/// Environment variable naming the Python to use (one with torch, numpy, onnxruntime).
const PYTHON_ENV: &str = "PHOTO2ANIME_BENCH_PYTHON";
/// Environment variable naming the peer script.
const SCRIPT_ENV: &str = "PHOTO2ANIME_PEER_SCRIPT";

/// One timed figure of one implementation.
#[derive(Debug, Clone, Copy, Serialize)]
struct Timing {
    /// Median wall time of the timed runs.
    median_ms: f64,
    /// Peak resident memory of the process that measured it.
    peak_rss_mib: Option<f64>,
}

/// One row of the comparison: a figure measured by every side that has it.
#[derive(Debug, Clone, Serialize)]
struct Row {
    /// `g_infer_512`, `train_full_b4_256`, ...
    figure: String,
    /// photo2anime (Flex on the CPU).
    photo2anime: Option<Timing>,
    /// PyTorch eager.
    pytorch: Option<Timing>,
    /// onnxruntime (inference figures only).
    onnxruntime: Option<Timing>,
    /// photo2anime / PyTorch wall-time ratio (< 1 = photo2anime faster).
    ratio_pytorch: Option<f64>,
    /// photo2anime / onnxruntime wall-time ratio.
    ratio_onnxruntime: Option<f64>,
    /// photo2anime / PyTorch peak-RSS ratio.
    rss_ratio_pytorch: Option<f64>,
    /// Threads every side used.
    threads: usize,
}

/// What is measured in one row: our bench arguments and the peer's.
struct Plan {
    figure: String,
    ours: Vec<String>,
    /// The peer's arguments: for the peer script, or for `torch_script` when set.
    torch: Vec<String>,
    /// A Python script run instead of the peer script for this figure.
    torch_script: Option<PathBuf>,
    onnx: Option<Vec<String>>,
}

/// The helper timing PyTorch's whole-image pass on a non-square photo (the peer
/// script's `g-fwd` takes square sizes only).
fn photo_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/peer_photo.py")
}

fn plans(args: &BenchArgs, onnx_dir: &Path) -> Vec<Plan> {
    let mut plans = Vec::new();
    let runs = args.runs.to_string();
    let warmup = args.warmup.to_string();
    let wants = |o: Only| args.only.is_empty() || args.only.contains(&o);
    if wants(Only::Infer) {
        for &size in &args.sizes {
            let s = size.to_string();
            // Big sizes take seconds per run: fewer runs, as the bench itself does.
            let r = if size >= 1024 {
                args.runs.min(3).to_string()
            } else {
                runs.clone()
            };
            let timing = ["--runs", &r, "--warmup", &warmup];
            plans.push(Plan {
                figure: format!("g_infer_{size}"),
                ours: strings(&["--only", "infer", "--sizes", &s, "--runs", &r]),
                torch: strings(&[&["g-fwd", "--size", &s][..], &timing[..]].concat()),
                onnx: Some(strings(
                    &[
                        &["onnx", "--size", &s, "--onnx-path"][..],
                        &[onnx_dir
                            .join(format!("animegan_g_{size}.onnx"))
                            .to_string_lossy()
                            .as_ref()][..],
                        &timing[..],
                    ]
                    .concat(),
                )),
                torch_script: None,
            });
        }
    }
    if wants(Only::Photo) {
        let (w, h) = args.photo;
        let size = format!("{w}x{h}");
        plans.push(Plan {
            figure: format!("g_photo_{size}"),
            ours: strings(&["--only", "photo", "--photo", &size]),
            // PyTorch converts the photo whole (its peak memory is the point of comparison).
            torch: strings(&[
                "--width",
                &w.to_string(),
                "--height",
                &h.to_string(),
                "--runs",
                "1",
            ]),
            torch_script: Some(photo_peer_script()),
            onnx: None,
        });
    }
    let (b, s) = (args.batch.to_string(), args.train_size.to_string());
    let r = args.runs.min(3).to_string();
    for (only, phase) in [(Only::TrainFull, "full"), (Only::TrainInit, "init")] {
        if wants(only) && !args.skip_train {
            let name = if phase == "full" {
                "train-full"
            } else {
                "train-init"
            };
            plans.push(Plan {
                figure: format!("train_{phase}_b{b}_{s}"),
                ours: strings(&["--only", name, "--runs", &r]),
                torch: strings(&[
                    "train", "--phase", phase, "--batch", &b, "--size", &s, "--runs", &r,
                    "--warmup", &warmup,
                ]),
                torch_script: None,
                onnx: None,
            });
        }
    }
    plans
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The last JSON object printed on stdout, with the two fields we compare.
fn parse_timing(stdout: &str) -> Option<Timing> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    let v: Value = serde_json::from_str(line).ok()?;
    Some(Timing {
        median_ms: v.get("median_ms")?.as_f64()?,
        peak_rss_mib: v.get("peak_rss_mib").and_then(Value::as_f64),
    })
}

fn run_json(mut cmd: Command, what: &str) -> Result<Timing> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.lines().rev().take(6).collect::<Vec<_>>().join(" | ");
        bail!("{what} failed ({}): {tail}", out.status);
    }
    parse_timing(&stdout).with_context(|| format!("{what} printed no JSON result"))
}

/// The thread count every side uses: `RAYON_NUM_THREADS` if set (rayon honours
/// it), else all cores.
fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(photo2anime::device::cpu_threads)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("photo2anime")
}

fn has_modules(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn pip(python: &Path, args: &[&str]) -> Result<()> {
    eprintln!("[compare] pip install {}", args.join(" "));
    let status = Command::new(python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(args)
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!("pip install {} failed", args.join(" "));
    }
    Ok(())
}

/// The Python to run the peers with: `--python`, `$PHOTO2ANIME_BENCH_PYTHON`, or a
/// venv under the user cache created (CPU torch, onnxruntime) on first use.
/// Returns it and whether onnxruntime is importable.
fn python(explicit: Option<&Path>) -> Result<(PathBuf, bool)> {
    let given = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(PYTHON_ENV).map(PathBuf::from));
    if let Some(p) = given {
        if !has_modules(&p, "torch, numpy") {
            bail!("{} cannot import torch and numpy", p.display());
        }
        // A user's own Python is not modified: without onnxruntime that column is empty.
        let ort = has_modules(&p, "onnxruntime, onnx");
        if !ort {
            eprintln!(
                "[compare] {} has no onnxruntime/onnx: `{} -m pip install onnxruntime onnx` adds that column",
                p.display(),
                p.display()
            );
        }
        return Ok((p, ort));
    }
    let venv = cache_dir().join("bench-venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        eprintln!("[compare] creating {}", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("cannot run python3 -m venv")?;
        if !status.success() {
            bail!("python3 -m venv {} failed", venv.display());
        }
    }
    if !has_modules(&py, "torch, numpy") {
        // The CPU wheel: the default one drags in gigabytes of CUDA libraries.
        pip(
            &py,
            &[
                "torch",
                "--index-url",
                "https://download.pytorch.org/whl/cpu",
            ],
        )?;
        pip(&py, &["numpy", "pillow"])?;
    }
    if !has_modules(&py, "onnxruntime, onnx") {
        pip(&py, &["onnxruntime", "onnx", "onnxscript"])?;
    }
    Ok((py, true))
}

/// The peer script: `--peer-script`, `$PHOTO2ANIME_PEER_SCRIPT`, or
/// `../shared/bench/animegan_torch.py` from the working directory.
fn script(explicit: Option<&Path>) -> Result<PathBuf> {
    let p = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SCRIPT_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/bench/animegan_torch.py"));
    if !p.is_file() {
        bail!(
            "peer script {} not found (pass --peer-script or set {SCRIPT_ENV})",
            p.display()
        );
    }
    Ok(p)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Runs every figure on every side, interleaved per figure, and prints the table
/// (or one JSON object per row with `--json`).
fn run(compare: &CompareArgs) -> Result<()> {
    let args = &compare.bench;
    let (py, ort) = python(compare.python.as_deref())?;
    let script = script(compare.peer_script.as_deref())?;
    let me = match &compare.binary {
        Some(b) => b.clone(),
        None => default_binary()?,
    };
    let threads = threads();
    let onnx_dir = cache_dir().join("bench-onnx");
    std::fs::create_dir_all(&onnx_dir).with_context(|| onnx_dir.display().to_string())?;
    let plans = plans(args, &onnx_dir);
    let t = threads.to_string();
    let mut rows = Vec::new();
    for plan in &plans {
        // Medians over rounds, each round running the sides back to back.
        let (mut ours, mut torch, mut onnx) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..compare.rounds.max(1) {
            eprintln!("[compare] {} round {}", plan.figure, round + 1);
            let mut cmd = Command::new(&me);
            cmd.args(["bench", "--json", "--warmup", &args.warmup.to_string()])
                .args(["--batch", &args.batch.to_string()])
                .args(["--train-size", &args.train_size.to_string()])
                .args(&plan.ours)
                .env("RAYON_NUM_THREADS", &t);
            ours.push(run_json(cmd, "photo2anime bench")?);
            let mut cmd = Command::new(&py);
            match &plan.torch_script {
                Some(helper) => cmd.arg(helper).arg(&script),
                None => cmd.arg(&script),
            };
            cmd.args(&plan.torch).args(["--threads", &t]);
            torch.push(run_json(cmd, "PyTorch peer")?);
            if let (Some(o), true) = (&plan.onnx, ort) {
                let mut cmd = Command::new(&py);
                cmd.arg(&script).args(o).args(["--threads", &t]);
                match run_json(cmd, "onnxruntime peer") {
                    Ok(timing) => onnx.push(timing),
                    Err(e) => eprintln!("[compare] {e:#}"),
                }
            }
        }
        let row = row(&plan.figure, &ours, &torch, &onnx, threads);
        if args.json {
            println!("{}", serde_json::to_string(&row).unwrap_or_default());
        }
        rows.push(row);
    }
    if !args.json {
        print!("{}", table(&rows));
    }
    Ok(())
}

fn median_timing(v: &[Timing]) -> Option<Timing> {
    let mut ms: Vec<f64> = v.iter().map(|t| t.median_ms).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let rss = v
        .iter()
        .filter_map(|t| t.peak_rss_mib)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    (!ms.is_empty()).then(|| Timing {
        median_ms: ms[ms.len() / 2],
        peak_rss_mib: rss,
    })
}

fn row(figure: &str, ours: &[Timing], torch: &[Timing], onnx: &[Timing], threads: usize) -> Row {
    let (o, t, x) = (
        median_timing(ours),
        median_timing(torch),
        median_timing(onnx),
    );
    let ms = |t: Option<Timing>| t.map(|t| t.median_ms);
    let rss = |t: Option<Timing>| t.and_then(|t| t.peak_rss_mib);
    Row {
        figure: figure.to_string(),
        ratio_pytorch: ratio(ms(o), ms(t)),
        ratio_onnxruntime: ratio(ms(o), ms(x)),
        rss_ratio_pytorch: ratio(rss(o), rss(t)),
        photo2anime: o,
        pytorch: t,
        onnxruntime: x,
        threads,
    }
}

/// The markdown table of ratios (also pasted into BENCHMARKS.md).
fn table(rows: &[Row]) -> String {
    let ms = |t: Option<Timing>| t.map_or("-".into(), |t| format!("{:.0} ms", t.median_ms));
    let rss = |t: Option<Timing>| {
        t.and_then(|t| t.peak_rss_mib)
            .map_or("-".into(), |r| format!("{r:.0}"))
    };
    let x = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
    let mut s = format!(
        "CPU: {}\nthreads: {} (photo2anime Flex, PyTorch, onnxruntime)\n\n\
         | figure | photo2anime | PyTorch | onnxruntime | p2a/PyTorch | p2a/onnxruntime | peak RSS MiB p2a / PyTorch / ort | RSS p2a/PyTorch |\n\
         |---|---|---|---|---|---|---|---|\n",
        photo2anime::bench::cpu_description(),
        rows.first().map_or(0, |r| r.threads)
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |\n",
            r.figure,
            ms(r.photo2anime),
            ms(r.pytorch),
            ms(r.onnxruntime),
            x(r.ratio_pytorch),
            x(r.ratio_onnxruntime),
            rss(r.photo2anime),
            rss(r.pytorch),
            rss(r.onnxruntime),
            x(r.rss_ratio_pytorch),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_json_line() {
        let out = "legacy export note\n{\"median_ms\": 12.5, \"peak_rss_mib\": 300.0}\n";
        let t = parse_timing(out).unwrap();
        assert_eq!(t.median_ms, 12.5);
        assert_eq!(t.peak_rss_mib, Some(300.0));
        assert!(parse_timing("no json").is_none());
    }

    #[test]
    fn table_has_ratios() {
        let t = |ms| Timing {
            median_ms: ms,
            peak_rss_mib: Some(100.0),
        };
        let r = row("g_infer_512", &[t(1000.0)], &[t(2000.0)], &[t(1250.0)], 2);
        assert_eq!(r.ratio_pytorch, Some(0.5));
        assert_eq!(r.ratio_onnxruntime, Some(0.8));
        let s = table(&[r]);
        assert!(s.contains("| g_infer_512 | 1000 ms | 2000 ms | 1250 ms | 0.50x | 0.80x |"));
    }
}
