//! Finding and loading torchvision's VGG19 weights for the perceptual losses.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;

use super::WeightsError;

use super::pytorch::{PytorchFile, load_mapped};
use crate::model::vgg::{RANDOM_VGG_SEED, TORCHVISION_CONV_INDICES, Vgg19, VggSource};

/// Where torchvision caches downloads: `$TORCH_HOME/hub/checkpoints`, else
/// `$XDG_CACHE_HOME/torch/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints` — on
/// every platform, as torch's `hub.get_dir()` does (hence the home folder from
/// `directories`, which Windows has without `HOME`).
pub fn torch_hub_checkpoints() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("TORCH_HOME") {
        return Some(PathBuf::from(home).join("hub/checkpoints"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".cache")))?;
    Some(cache.join("torch/hub/checkpoints"))
}

/// The first `vgg19*.pth` in the torch hub cache (torchvision names it `vgg19-dcbb9e9d.pth`).
pub fn find_cached_vgg19() -> Option<PathBuf> {
    let dir = torch_hub_checkpoints()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("vgg19-") && (n.ends_with(".pth") || n.ends_with(".pt"))
            })
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Maps a Burn VGG path (`convs.3.weight`) to torchvision's key (`features.7.weight`).
pub fn burn_to_torchvision(path: &str) -> Option<String> {
    let rest = path.strip_prefix("convs.")?;
    let (index, param) = rest.split_once('.')?;
    let conv: usize = index.parse().ok()?;
    Some(format!(
        "features.{}.{param}",
        TORCHVISION_CONV_INDICES.get(conv)?
    ))
}

/// Loads torchvision VGG19 weights (`features.N.weight/bias`, up to conv4_4) from `path`.
/// Extra keys (deeper layers, the classifier) are ignored.
pub fn load_vgg19(path: &Path, device: &Device) -> Result<Vgg19, WeightsError> {
    let vgg = Vgg19::random(RANDOM_VGG_SEED, device);
    let file = PytorchFile::open(path).map_err(|e| match e {
        WeightsError::NotAStateDict { path, detail } => WeightsError::NotAStateDict {
            path,
            detail: format!("{detail} (expected torchvision's vgg19-dcbb9e9d.pth)"),
        },
        other => other,
    })?;
    let vgg = load_mapped(vgg, &file, burn_to_torchvision, true).map_err(|e| match e {
        WeightsError::MissingKeys { path, keys } => WeightsError::NotAStateDict {
            detail: format!(
                "not torchvision VGG19 weights: {} of its conv keys are missing (e.g. {}); expected vgg19-dcbb9e9d.pth",
                keys.len(),
                keys.first().cloned().unwrap_or_default()
            ),
            path,
        },
        other => other,
    })?;
    Ok(vgg.no_grad())
}

/// The loss network: torchvision weights from `explicit` (error if unusable), else
/// from the torch cache, else fixed-seed random weights (reported in the source).
pub fn load_loss_network(
    explicit: Option<&Path>,
    device: &Device,
) -> Result<(Vgg19, VggSource), WeightsError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => find_cached_vgg19(),
    };
    match path {
        Some(p) => Ok((load_vgg19(&p, device)?, VggSource::Pretrained(p))),
        None => Ok((
            Vgg19::random(RANDOM_VGG_SEED, device).no_grad(),
            VggSource::Random {
                seed: RANDOM_VGG_SEED,
            },
        )),
    }
}
