//! Generator export to / import from `.safetensors` in the PyTorch port's key layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::WeightsError;
use super::pytorch::TensorSource;

/// Metadata key holding the generator's upsampling mode.
pub const UPSAMPLE_METADATA_KEY: &str = "photo2anime.upsample";

/// Serialises `tensors` (port key, shape, values) into safetensors bytes with `metadata`.
pub fn to_bytes(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: HashMap<String, String>,
    path_for_errors: &Path,
) -> Result<Vec<u8>, WeightsError> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, s, v)| {
            (
                k.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let mut views = Vec::with_capacity(raw.len());
    for (k, s, bytes) in &raw {
        let view =
            TensorView::new(Dtype::F32, s.clone(), bytes).map_err(|e| WeightsError::Write {
                path: path_for_errors.to_path_buf(),
                detail: e.to_string(),
            })?;
        views.push((k.clone(), view));
    }
    safetensors::serialize(views, Some(metadata)).map_err(|e| WeightsError::Write {
        path: path_for_errors.to_path_buf(),
        detail: e.to_string(),
    })
}

/// A `.safetensors` file held in memory.
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    entries: Vec<(String, Vec<usize>)>,
    metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    /// Reads and parses the header of `path`.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let not_st = |detail: String| WeightsError::NotAStateDict {
            path: path.to_path_buf(),
            detail,
        };
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| not_st(format!("safetensors: {e}")))?;
        let parsed =
            SafeTensors::deserialize(&bytes).map_err(|e| not_st(format!("safetensors: {e}")))?;
        let entries = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect();
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            entries,
            metadata,
        })
    }

    /// The header's free-form metadata.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }
}

impl TensorSource for SafetensorsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn entries(&self) -> Vec<(String, Vec<usize>)> {
        self.entries.clone()
    }

    fn read_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        let err = |detail: String| WeightsError::CorruptTensor {
            path: self.path.clone(),
            key: key.to_string(),
            detail,
        };
        let parsed = SafeTensors::deserialize(&self.bytes).map_err(|e| err(e.to_string()))?;
        let view = parsed.tensor(key).map_err(|e| err(e.to_string()))?;
        let data = view.data();
        match view.dtype() {
            Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            Dtype::F16 => Ok(data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            Dtype::BF16 => Ok(data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            other => Err(WeightsError::UnsupportedDtype {
                path: self.path.clone(),
                key: key.to_string(),
                dtype: format!("{other:?}"),
            }),
        }
    }
}
