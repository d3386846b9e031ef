//! Safe `.pt` / `.pth` reading and the checked loader shared by every import.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use pytorch_reader::{DType, PytorchReader};

use burn::module::Module;
use burn::tensor::TensorData;

use super::WeightsError;
use super::params::{param_shapes, replace_params};

/// A file of named tensors (PyTorch or safetensors) whose data is read on demand.
pub trait TensorSource {
    /// The file, for error messages.
    fn path(&self) -> &Path;
    /// Every key with its shape.
    fn entries(&self) -> Vec<(String, Vec<usize>)>;
    /// The tensor's values as f32, row-major.
    fn read_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError>;
}

/// An opened PyTorch checkpoint (zip or legacy format). Only metadata is parsed on open.
pub struct PytorchFile {
    path: PathBuf,
    reader: PytorchReader,
}

impl PytorchFile {
    /// Parses the pickle of `path`. Refuses anything but tensor rebuilds and plain containers.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        if let Err(source) = std::fs::metadata(path) {
            return Err(WeightsError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        let reader = PytorchReader::new(path).map_err(|e| WeightsError::NotAStateDict {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if reader.is_empty() {
            return Err(WeightsError::NotAStateDict {
                path: path.to_path_buf(),
                detail: "it holds no tensors (its pickle is not a state_dict; calls it names are never executed)"
                    .to_string(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }
}

impl TensorSource for PytorchFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn entries(&self) -> Vec<(String, Vec<usize>)> {
        self.reader
            .tensors()
            .iter()
            .map(|(k, t)| (k.clone(), t.shape().to_vec()))
            .collect()
    }

    fn read_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        let tensor = self
            .reader
            .get(key)
            .ok_or_else(|| WeightsError::MissingKeys {
                path: self.path.clone(),
                keys: vec![key.to_string()],
            })?;
        let corrupt = |detail: String| WeightsError::CorruptTensor {
            path: self.path.clone(),
            key: key.to_string(),
            detail,
        };
        let bytes = tensor.read().map_err(|e| corrupt(e.to_string()))?;
        match tensor.dtype() {
            DType::F32 => Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            DType::F64 => Ok(bytes
                .chunks_exact(8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    f64::from_ne_bytes(a) as f32
                })
                .collect()),
            DType::F16 => Ok(bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_ne_bytes([b[0], b[1]]).to_f32())
                .collect()),
            DType::BF16 => Ok(bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_ne_bytes([b[0], b[1]]).to_f32())
                .collect()),
            other => Err(WeightsError::UnsupportedDtype {
                path: self.path.clone(),
                key: key.to_string(),
                dtype: format!("{other:?}"),
            }),
        }
    }
}

/// Checks `source` against the `expected` keys and shapes, then reads them all.
///
/// Missing keys are reported first (all of them), then unexpected keys unless
/// `allow_extra`, then the first wrong shape. Returns key -> values.
pub fn read_checked(
    source: &dyn TensorSource,
    expected: &[(String, Vec<usize>)],
    allow_extra: bool,
) -> Result<HashMap<String, Vec<f32>>, WeightsError> {
    let path = source.path().to_path_buf();
    let found: HashMap<String, Vec<usize>> = source.entries().into_iter().collect();
    let mut missing: Vec<String> = expected
        .iter()
        .filter(|(k, _)| !found.contains_key(k))
        .map(|(k, _)| k.clone())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(WeightsError::MissingKeys {
            path,
            keys: missing,
        });
    }
    if !allow_extra {
        let wanted: HashSet<&String> = expected.iter().map(|(k, _)| k).collect();
        let mut extra: Vec<String> = found
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(WeightsError::UnexpectedKeys { path, keys: extra });
        }
    }
    for (key, shape) in expected {
        if found[key] != *shape {
            return Err(WeightsError::ShapeMismatch {
                path,
                key: key.clone(),
                expected: shape.clone(),
                found: found[key].clone(),
            });
        }
    }
    expected
        .iter()
        .map(|(key, _)| Ok((key.clone(), source.read_f32(key)?)))
        .collect()
}

/// Loads `module`'s parameters from `source`, whose keys are the module's Burn paths
/// translated by `foreign_key` (parameters it maps to `None` keep their values).
/// Keys and shapes are checked first (see [`read_checked`]).
pub fn load_mapped<M: Module>(
    module: M,
    source: &dyn TensorSource,
    foreign_key: impl Fn(&str) -> Option<String>,
    allow_extra: bool,
) -> Result<M, WeightsError> {
    let mut burn_of = HashMap::new();
    let mut expected = Vec::new();
    for (burn_path, shape) in param_shapes(&module) {
        if let Some(key) = foreign_key(&burn_path) {
            burn_of.insert(key.clone(), (burn_path, shape.clone()));
            expected.push((key, shape));
        }
    }
    let data = read_checked(source, &expected, allow_extra)?
        .into_iter()
        .filter_map(|(key, values)| {
            let (burn_path, shape) = burn_of.remove(&key)?;
            Some((burn_path, TensorData::new(values, shape)))
        })
        .collect();
    Ok(replace_params(module, data))
}
