//! `photo2anime download`: list the downloadable items, or fetch, verify and install one.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};

use super::{Entry, ItemKind, Progress, TABLE_ENV, Table, install};

/// Download weights photo2anime can use but does not ship (VGG19 for training, the
/// published AnimeGANv2 generators), verify them and install them.
#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    /// Item name (see --list).
    pub name: Option<String>,
    /// List the downloadable items and exit.
    #[arg(long)]
    pub list: bool,
    /// Accept the item's licence without being asked (needed when not on a terminal).
    #[arg(long)]
    pub accept_licence: bool,
    /// Folder that receives imported generators (as `<folder>/<name>/`; default: the
    /// runs folder, see `photo2anime paths`).
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
}

/// Runs the `download` subcommand.
pub fn run(args: DownloadArgs) -> Result<()> {
    let table = Table::from_env()?;
    let name = match (&args.name, args.list) {
        (Some(name), false) => name,
        (name, _) => {
            print_list(&table);
            if name.is_some() {
                eprintln!("(--list given: nothing downloaded)");
            }
            return Ok(());
        }
    };
    let entry = table.get(name)?;
    println!("{} — {}", entry.name, entry.url);
    println!("Licence: {}", entry.licence);
    confirm_licence(args.accept_licence)?;

    let bar = progress_bar();
    let cancel = AtomicBool::new(false);
    let result = install(
        entry,
        &mut |p: Progress| show(&bar, p),
        &cancel,
        &args.checkpoints.unwrap_or_else(crate::checkpoints_dir),
    );
    bar.finish_and_clear();
    let installed = result?;
    let place = installed.path.display();
    match (installed.already_present, entry.kind) {
        (true, _) => println!("{} is already installed: {place}", installed.name),
        (false, ItemKind::Vgg19) => {
            println!("Installed {} (verified): {place}", installed.name);
            println!("Training finds it there automatically.");
        }
        (false, ItemKind::Generator) => {
            println!("Installed {} (verified, imported): {place}", installed.name);
            println!("Convert with: photo2anime convert --model {place} PHOTOS...");
        }
    }
    Ok(())
}

/// The table: name, size, kind, the licence's first line, URL.
fn print_list(table: &Table) {
    match &table.source {
        Some(path) => println!("Downloadable items (from {TABLE_ENV}={}):", path.display()),
        None => println!("Downloadable items:"),
    }
    for entry in &table.entries {
        print_entry(entry);
    }
    println!("\nDownload one with: photo2anime download NAME");
}

fn print_entry(entry: &Entry) {
    let size = entry
        .size
        .map_or_else(|| "size unknown".to_string(), |s| HumanBytes(s).to_string());
    let kind = match entry.kind {
        ItemKind::Vgg19 => "VGG19 loss network",
        ItemKind::Generator => "generator",
    };
    let licence = entry.licence.lines().next().unwrap_or_default();
    println!("\n  {:<20} {kind}, {size}", entry.name);
    println!("  {:<20} {licence}", "");
    println!("  {:<20} {}", "", entry.url);
}

/// Proceeds when the licence was accepted on the command line or, on a terminal,
/// interactively; refuses otherwise (never downloads unasked in a script).
fn confirm_licence(accepted: bool) -> Result<()> {
    if accepted {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("pass --accept-licence to accept the licence above and download");
    }
    print!("Accept the licence and download? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("licence not accepted: nothing downloaded")
    }
}

/// A byte-count bar on a terminal, nothing in logs (the final line says the result).
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}") {
        bar.set_style(style);
    }
    bar
}

fn show(bar: &ProgressBar, p: Progress) {
    match p.total {
        Some(total) => bar.set_length(total),
        // Unknown total: the bar shows the count so far.
        None => bar.set_length(p.done),
    }
    bar.set_position(p.done);
    let eta = p
        .eta_secs
        .filter(|s| s.is_finite())
        .map(|s| {
            format!(
                ", {} left",
                HumanDuration(std::time::Duration::from_secs_f64(s))
            )
        })
        .unwrap_or_default();
    bar.set_message(format!("{}/s{eta}", HumanBytes(p.bytes_per_sec as u64)));
}
