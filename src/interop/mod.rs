//! Reading and writing weights in other tools' layouts: the AnimeGANv2 PyTorch port's
//! generator `.pt`, torchvision's VGG19 `.pth`, safetensors export, and ONNX
//! export of the generator as a graph ([`onnx`]).
//!
//! A `.pt` is a pickle. It is parsed by `pytorch-reader`, which interprets only the
//! opcodes and the few `torch` rebuild calls a `state_dict` needs and refuses every
//! other global: nothing a file contains is ever executed.

pub mod keys;
pub mod onnx;
pub mod params;
pub mod pytorch;
pub mod safetensors_io;
pub mod vgg;

use std::path::PathBuf;

/// Everything that can go wrong reading or writing foreign weight files.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a PyTorch checkpoint we can parse (not a zip, truncated, a
    /// pickle calling something other than tensor rebuilds, ...).
    #[error("{path}: not a readable PyTorch state_dict: {detail}")]
    NotAStateDict {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// Keys the model needs are absent.
    #[error("{path}: missing {} key(s): {}", keys.len(), keys.join(", "))]
    MissingKeys {
        /// The file.
        path: PathBuf,
        /// The absent keys, in the file's layout.
        keys: Vec<String>,
    },
    /// Keys the model does not have.
    #[error("{path}: unexpected {} key(s) (is this the right kind of model?): {}", keys.len(), keys.join(", "))]
    UnexpectedKeys {
        /// The file.
        path: PathBuf,
        /// The extra keys.
        keys: Vec<String>,
    },
    /// A tensor has the wrong shape.
    #[error("{path}: key {key} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The key, in the file's layout.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor is stored in a type that cannot be turned into f32 weights.
    #[error("{path}: key {key} has unsupported element type {dtype}")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The element type.
        dtype: String,
    },
    /// A tensor's bytes could not be read (truncated or corrupt file).
    #[error("{path}: key {key}: data unreadable: {detail}")]
    CorruptTensor {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What failed.
        detail: String,
    },
    /// Writing an export failed.
    #[error("{path}: cannot write: {detail}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}
