//! Loading a generator from anything a user may point at — a run or model
//! directory, a burnpack file, the PyTorch port's `.pt`, or a `.safetensors` in
//! the port's layout — plus `import` and `export`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::interop::WeightsError;
use crate::interop::keys::burn_to_port;
use crate::interop::params::collect_params;
use crate::interop::pytorch::{PytorchFile, TensorSource, load_mapped};
use crate::interop::safetensors_io::{SafetensorsFile, UPSAMPLE_METADATA_KEY, to_bytes};
use crate::model::{Generator, GeneratorConfig, UpsampleMode};
use crate::train::run_dir::{
    LatestPointer, ModelInfo, ModelOrigin, RunDirError, checkpoint_dir_name, files,
    latest_checkpoint, load_module, read_json, write_json,
};

/// Why a model could not be loaded, imported or exported.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A foreign weights file is unusable.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A photo2anime model directory is unusable.
    #[error(transparent)]
    Checkpoint(#[from] RunDirError),
    /// A model could not be exported (a weight unreadable, the file unwritable).
    #[error("export: {0}")]
    Export(String),
    /// The path is not something we can load.
    #[error("{path}: not a model (expected a run/model folder, .bpk, .pt/.pth or .safetensors)")]
    Unrecognised {
        /// The path.
        path: PathBuf,
    },
}

/// A generator ready for inference plus a description of where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network (non-autodiff device).
    pub generator: Generator,
    /// e.g. `checkpoints/run-1 (step 1200)` or `paprika.pt (PyTorch port)`.
    pub description: String,
    /// Decoder upsampling rule in force.
    pub upsample: UpsampleMode,
}

/// Loads a generator from `path` (see module docs). `upsample` overrides the saved
/// mode (for foreign files that do not record it, the default is `AlignCorners`).
pub fn load_generator(
    path: &Path,
    device: &Device,
    upsample: Option<UpsampleMode>,
) -> Result<LoadedModel, ModelError> {
    if path.is_dir() {
        let (pointer, ckpt) = latest_checkpoint(path)?;
        // No model.json (a bare checkpoint folder): the port's default rule. A
        // model.json that exists but cannot be read is an error, never a guess.
        let info: Option<ModelInfo> = match read_json(&path.join("model.json")) {
            Ok(info) => Some(info),
            Err(RunDirError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        let mode = upsample.or(info.map(|i| i.upsample)).unwrap_or_default();
        let generator = load_module(
            GeneratorConfig::new().with_upsample(mode).init(device),
            &ckpt.join(files::GENERATOR),
        )?;
        return Ok(LoadedModel {
            generator,
            description: format!("{} (step {})", path.display(), pointer.step),
            upsample: mode,
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "bpk" => {
            let mode = upsample.unwrap_or_default();
            let generator = load_module(
                GeneratorConfig::new().with_upsample(mode).init(device),
                path,
            )?;
            Ok(LoadedModel {
                generator,
                description: path.display().to_string(),
                upsample: mode,
            })
        }
        "pt" | "pth" | "ckpt" => {
            let mode = upsample.unwrap_or_default();
            let file = PytorchFile::open(path)?;
            let generator = load_port_layout(&file, mode, device)?;
            Ok(LoadedModel {
                generator,
                description: format!("{} (PyTorch port layout)", path.display()),
                upsample: mode,
            })
        }
        "safetensors" => {
            let file = SafetensorsFile::open(path)?;
            let saved = file
                .metadata()
                .get(UPSAMPLE_METADATA_KEY)
                .and_then(|m| serde_json::from_str(m).ok());
            let mode = upsample.or(saved).unwrap_or_default();
            let generator = load_port_layout(&file, mode, device)?;
            Ok(LoadedModel {
                generator,
                description: format!("{} (safetensors)", path.display()),
                upsample: mode,
            })
        }
        _ => Err(ModelError::Unrecognised {
            path: path.to_path_buf(),
        }),
    }
}

/// The model a fine-tuned run started from, when `path` is a run folder whose
/// `config.json` records one (and that model still exists).
pub fn fine_tune_parent(path: &Path) -> Option<PathBuf> {
    if !path.is_dir() {
        return None;
    }
    let config: crate::train::TrainConfig = read_json(&path.join(files::CONFIG)).ok()?;
    config.parent.map(|p| p.path).filter(|p| p.exists())
}

/// Builds a generator from a file in the PyTorch port's key layout, checking every
/// key and shape (missing, unexpected and mis-shaped keys are named).
pub fn load_port_layout(
    source: &dyn TensorSource,
    mode: UpsampleMode,
    device: &Device,
) -> Result<Generator, WeightsError> {
    let generator = GeneratorConfig::new().with_upsample(mode).init(device);
    load_mapped(generator, source, |path| Some(burn_to_port(path)), false)
}

/// Converts a port-layout `.pt` into a photo2anime model directory `out`
/// (`model.json`, `latest.json`, `ckpt-000000/generator.bpk`).
pub fn import_pytorch(
    file: &Path,
    out: &Path,
    mode: UpsampleMode,
    device: &Device,
) -> Result<PathBuf, ModelError> {
    let source = PytorchFile::open(file)?;
    let generator = load_port_layout(&source, mode, device)?;
    write_model_dir(
        generator,
        out,
        mode,
        ModelOrigin::Imported {
            source: file.to_path_buf(),
        },
    )
}

/// Writes `generator` as a self-describing model directory.
pub fn write_model_dir(
    generator: Generator,
    out: &Path,
    mode: UpsampleMode,
    origin: ModelOrigin,
) -> Result<PathBuf, ModelError> {
    let ckpt = out.join(checkpoint_dir_name(0));
    let io = |source| RunDirError::Io {
        path: ckpt.clone(),
        source,
    };
    std::fs::create_dir_all(&ckpt).map_err(io)?;
    let bytes = burn::module::Module::into_record(generator)
        .into_bytes()
        .map_err(|e| RunDirError::Weights {
            path: ckpt.clone(),
            detail: e.to_string(),
        })?;
    crate::fsx::write_atomic(&ckpt.join(files::GENERATOR), &bytes).map_err(io)?;
    write_json(
        &out.join("model.json"),
        &ModelInfo {
            version: crate::VERSION.to_string(),
            upsample: mode,
            origin,
            vgg: None,
            image_size: None,
        },
    )?;
    write_json(
        &out.join("latest.json"),
        &LatestPointer {
            step: 0,
            dir: checkpoint_dir_name(0),
        },
    )?;
    Ok(out.to_path_buf())
}

/// Writes the generator's weights in the port's key layout as `.safetensors`
/// (with the upsampling mode in the metadata), atomically.
pub fn export_safetensors(model: &LoadedModel, out: &Path) -> Result<(), ModelError> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = collect_params(&model.generator)
        .into_iter()
        .map(|p| (burn_to_port(&p.path), p.shape, p.values))
        .collect();
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert(
        "architecture".to_string(),
        "AnimeGANv2 generator (bryandlee/animegan2-pytorch layout)".to_string(),
    );
    metadata.insert(
        UPSAMPLE_METADATA_KEY.to_string(),
        serde_json::to_string(&model.upsample).unwrap_or_default(),
    );
    let bytes = to_bytes(&tensors, metadata, out)?;
    crate::fsx::write_atomic(out, &bytes).map_err(|e| WeightsError::Write {
        path: out.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model folder whose model.json is unreadable is an error naming the file,
    /// not a silent guess of the upsampling rule.
    #[test]
    fn an_unreadable_model_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        let device = Device::flex();
        write_model_dir(
            GeneratorConfig::new().init(&device),
            &model,
            UpsampleMode::HalfPixelX2,
            ModelOrigin::Trained,
        )
        .unwrap();
        assert_eq!(
            load_generator(&model, &device, None).unwrap().upsample,
            UpsampleMode::HalfPixelX2
        );
        std::fs::write(model.join("model.json"), "{ not json").unwrap();
        let err = load_generator(&model, &device, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.json"), "{err}");
    }
}
