//! Weights and optimizer files: burnpack encoding, atomic writes.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Writes serialised weights or optimizer state atomically, naming the file on
/// error; returns the blake3 hash (hex) of what was written.
fn write_encoded<B: std::ops::Deref<Target = [u8]>, E: ToString>(
    path: &Path,
    encoded: Result<B, E>,
) -> Result<String, RunDirError> {
    let bytes = encoded.map_err(|e| RunDirError::Weights {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(io_err(path))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// Saves `module`'s weights as burnpack at `path` (atomically); returns its blake3 hex.
pub(crate) fn save_module<M: Module>(module: M, path: &Path) -> Result<String, RunDirError> {
    write_encoded(path, module.into_record().into_bytes())
}

/// Loads burnpack weights saved by this crate into `module`.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M, RunDirError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let weights_err = |e: burn::store::RecordError| RunDirError::Weights {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(weights_err)?;
    module.try_load_record(record).map_err(weights_err)
}

/// Saves an optimizer's state at `path` (atomically); returns its blake3 hex.
pub(crate) fn save_optimizer(
    optimizer: &ModuleOptimizer,
    path: &Path,
) -> Result<String, RunDirError> {
    write_encoded(path, optimizer.into_bytes())
}

/// Restores an optimizer's state from `path`.
pub(crate) fn load_optimizer(
    optimizer: ModuleOptimizer,
    path: &Path,
) -> Result<ModuleOptimizer, RunDirError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| RunDirError::Weights {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}
