//! photo2anime: train AnimeGANv2 on your own style and convert photos, on any GPU
//! (wgpu) or the CPU (Flex).
//!
//! The library holds everything; `main.rs` only dispatches to the GUI ([`app`]) or
//! the CLI ([`cli`]).
//!
//! - [`model`]: generator, discriminator, VGG19 loss network.
//! - [`train`]: config, losses, trainer, checkpoints, command/event protocol.
//! - [`data`]: folder scanning, preprocessing, cache, loader thread.
//! - [`convert`]: any-size and tiled inference, folders.
//! - [`video`]: clips through FFmpeg with temporally smoothed statistics.
//! - [`interop`], [`model_io`]: PyTorch / torchvision / safetensors weights.
//! - [`device`]: the one place that names backends.
//! - [`paths`]: where the demo data, runs and caches live (package or source tree).

pub mod alloc_tuning;
pub mod app;
pub mod bench;
pub mod cli;
pub mod convert;
pub mod data;
pub mod device;
pub mod download;
pub mod fsx;
pub mod interop;
pub mod model;
pub mod model_io;
pub mod paths;
pub mod tensor_image;
pub mod train;
pub mod video;

/// The version and the git commit it was built from, e.g. `0.1.0 (commit 1a2b3c4d5e6f)`:
/// shown by `--version` and the studio's About, and recorded in every model and
/// PNG photo2anime writes.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PHOTO2ANIME_GIT_COMMIT"),
    ")"
);

/// The demo dataset: beside the binary when installed from a package, else the
/// source tree's `assets/demo` (see [`paths`]).
pub fn demo_dir() -> std::path::PathBuf {
    paths::Locations::current().demo
}

/// Default folder for runs and imported models: the user's data folder when installed
/// from a package, else `./checkpoints` (see [`paths`]).
pub fn checkpoints_dir() -> std::path::PathBuf {
    paths::Locations::current().checkpoints
}
