//! The one list of downloadable items: built in, or replaced by the JSON file that
//! `PHOTO2ANIME_DOWNLOAD_TABLE` names.
//!
//! JSON layout (an array; `size` may be omitted or `null`):
//!
//! ```json
//! [{
//!   "name": "paprika",
//!   "url": "https://example.org/paprika.pt",
//!   "checksum": { "kind": "git-blob-sha1", "value": "58086c9d..." },
//!   "size": null,
//!   "licence": "For non-commercial use only.",
//!   "kind": "generator"
//! }]
//! ```
//!
//! `checksum.kind` is `sha256`, `sha256-prefix` or `git-blob-sha1`; `kind` is
//! `vgg19` or `generator`. Unknown fields are refused, so a typo is an error rather
//! than a silently ignored setting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DownloadError;

/// The environment variable naming a JSON table that replaces the built-in one.
pub const TABLE_ENV: &str = "PHOTO2ANIME_DOWNLOAD_TABLE";

/// How a downloaded file is checked. The value is lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Checksum {
    /// The file's SHA-256 hex starts with this (torchvision's `check_hash` rule:
    /// the 8 hex digits in `vgg19-dcbb9e9d.pth`).
    Sha256Prefix(String),
    /// Git's blob id: SHA-1 of `"blob <size>\0"` followed by the bytes. GitHub shows
    /// it for every file, so it pins files served from a repository.
    GitBlobSha1(String),
    /// The file's full SHA-256.
    Sha256(String),
}

impl Checksum {
    /// The JSON name of the kind (`sha256-prefix`, `git-blob-sha1`, `sha256`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Sha256Prefix(_) => "sha256-prefix",
            Self::GitBlobSha1(_) => "git-blob-sha1",
            Self::Sha256(_) => "sha256",
        }
    }

    /// The expected hex value.
    pub fn value(&self) -> &str {
        match self {
            Self::Sha256Prefix(v) | Self::GitBlobSha1(v) | Self::Sha256(v) => v,
        }
    }

    /// Whether `actual` (the digest [`super::file_digest`] computes for this kind)
    /// satisfies the check. Case-insensitive, since hand-written tables vary.
    pub fn matches(&self, actual: &str) -> bool {
        let actual = actual.to_ascii_lowercase();
        let expected = self.value().to_ascii_lowercase();
        match self {
            Self::Sha256Prefix(_) => actual.starts_with(&expected),
            Self::GitBlobSha1(_) | Self::Sha256(_) => actual == expected,
        }
    }

    /// Why the value cannot be a digest of this kind, if it cannot.
    fn problem(&self) -> Option<String> {
        let v = self.value();
        let (min, max) = match self {
            Self::Sha256Prefix(_) => (1, 64),
            Self::GitBlobSha1(_) => (40, 40),
            Self::Sha256(_) => (64, 64),
        };
        if !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(format!("{} value {v:?} is not hex", self.kind_name()));
        }
        if v.len() < min || v.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Some(format!(
                "{} value {v:?} has {} hex digits, expected {want}",
                self.kind_name(),
                v.len()
            ));
        }
        None
    }
}

/// What an item is, which decides where it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// torchvision's VGG19 weights, for the perceptual losses: installed into the
    /// torch hub cache, where training (and PyTorch) already look.
    Vgg19,
    /// A generator `.pt` in the PyTorch port's layout: imported into
    /// `checkpoints/<name>/`.
    Generator,
}

/// One downloadable item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Short name, used on the command line and as the model folder's name.
    pub name: String,
    /// Where to get it (`http://` or `https://`).
    pub url: String,
    /// How the downloaded bytes are checked.
    pub checksum: Checksum,
    /// Exact size in bytes, when known (progress and an early size check).
    #[serde(default)]
    pub size: Option<u64>,
    /// Licence / terms of use, shown before downloading.
    pub licence: String,
    /// Where and how it is installed.
    pub kind: ItemKind,
}

impl Entry {
    /// The last path segment of the URL (`vgg19-dcbb9e9d.pth`), without any query.
    pub fn file_name(&self) -> Option<&str> {
        let path = self.url.split(['?', '#']).next()?;
        let name = path.rsplit('/').next()?;
        safe_name(name).then_some(name)
    }

    /// Why this entry is unusable, if it is.
    fn problem(&self) -> Option<String> {
        if !safe_name(&self.name) {
            return Some(format!(
                "name {:?}: use letters, digits, '_', '-' or '.', not starting with '.'",
                self.name
            ));
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Some(format!("{}: url {:?} is not http(s)", self.name, self.url));
        }
        if self.kind == ItemKind::Vgg19 && self.file_name().is_none() {
            return Some(format!(
                "{}: url {:?} does not end in a usable file name",
                self.name, self.url
            ));
        }
        self.checksum
            .problem()
            .map(|p| format!("{}: {p}", self.name))
    }
}

/// A name that is safe as a single path component everywhere: no separators, no
/// `..`, no hidden files (the downloader keeps its own scratch files hidden).
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The downloadable items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The items, in display order.
    pub entries: Vec<Entry>,
    /// The JSON file they came from; `None` for the built-in table.
    pub source: Option<PathBuf>,
}

/// The licence shown for the AnimeGANv2 generators.
const ANIMEGAN_LICENCE: &str = "AnimeGANv2 weights by Xin Chen & Gang Liu, ported by bryandlee: \
for non-commercial use only (research, personal). photo2anime does not ship them.";

/// The licence shown for torchvision's VGG19.
const VGG_LICENCE: &str = "torchvision's VGG19 weights (torchvision is BSD-3-Clause licensed); \
trained on ImageNet, for research use.";

/// The published generators and their git blob ids (from the repository's tree).
const GENERATORS: [(&str, &str); 4] = [
    ("paprika", "58086c9db9fc7a9e5c2876ca31b8079599352643"),
    (
        "face_paint_512_v2",
        "d75102f8f201ddaf8dbe6b913b1a97585b55f838",
    ),
    (
        "face_paint_512_v1",
        "19c1a1da4d9580186109a2b055d91044e5127de6",
    ),
    ("celeba_distill", "3b7ea61b02254980831cc3bc77af30666dbc999c"),
];

impl Table {
    /// The built-in items: torchvision's VGG19 and bryandlee's four generators.
    pub fn builtin() -> Self {
        let mut entries = vec![Entry {
            name: "vgg19".to_string(),
            url: "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth".to_string(),
            checksum: Checksum::Sha256Prefix("dcbb9e9d".to_string()),
            size: Some(574_673_361),
            licence: VGG_LICENCE.to_string(),
            kind: ItemKind::Vgg19,
        }];
        entries.extend(GENERATORS.iter().map(|(name, blob)| Entry {
            name: (*name).to_string(),
            url: format!(
                "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/{name}.pt"
            ),
            checksum: Checksum::GitBlobSha1((*blob).to_string()),
            size: None,
            licence: ANIMEGAN_LICENCE.to_string(),
            kind: ItemKind::Generator,
        }));
        Self {
            entries,
            source: None,
        }
    }

    /// Reads a JSON table (see the module docs). Every problem — unreadable file,
    /// bad JSON, bad checksum value, unsafe name, duplicate — is an error naming the file.
    pub fn load_from(path: &Path) -> Result<Self, DownloadError> {
        let table_error = |detail: String| DownloadError::Table {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| table_error(e.to_string()))?;
        let entries: Vec<Entry> =
            serde_json::from_str(&text).map_err(|e| table_error(e.to_string()))?;
        if entries.is_empty() {
            return Err(table_error("the table lists no items".to_string()));
        }
        for (i, entry) in entries.iter().enumerate() {
            if let Some(p) = entry.problem() {
                return Err(table_error(p));
            }
            if entries[..i].iter().any(|e| e.name == entry.name) {
                return Err(table_error(format!("{} is listed twice", entry.name)));
            }
        }
        Ok(Self {
            entries,
            source: Some(path.to_path_buf()),
        })
    }

    /// The table in force: the file named by `PHOTO2ANIME_DOWNLOAD_TABLE` if set
    /// (an unusable file is an error, never a silent fall-back), else the built-in one.
    pub fn from_env() -> Result<Self, DownloadError> {
        match std::env::var_os(TABLE_ENV) {
            Some(path) if !path.is_empty() => Self::load_from(Path::new(&path)),
            _ => Ok(Self::builtin()),
        }
    }

    /// The item called `name`.
    pub fn get(&self, name: &str) -> Result<&Entry, DownloadError> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| DownloadError::UnknownItem {
                name: name.to_string(),
            })
    }
}
