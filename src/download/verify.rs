//! Checksums, computed as bytes arrive so a 548 MiB download is not read twice.

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::Checksum;

/// Read size when hashing a file already on disk.
const CHUNK: usize = 1 << 20;

/// A running digest of the kind a [`Checksum`] needs.
pub(crate) enum StreamHasher {
    /// For `sha256` and `sha256-prefix`.
    Sha256(Sha256),
    /// For `git-blob-sha1` when the total size is known up front: the blob header
    /// (`"blob <size>\0"`) has to be hashed before the first byte.
    GitBlob(Sha1),
    /// `git-blob-sha1` with no size known until the end (no table size, no
    /// Content-Length): the finished file is hashed once more.
    Deferred,
}

impl StreamHasher {
    /// A hasher for `checksum`; `total` is the full file size if known.
    pub(crate) fn new(checksum: &Checksum, total: Option<u64>) -> Self {
        match (checksum, total) {
            (Checksum::Sha256(_) | Checksum::Sha256Prefix(_), _) => Self::Sha256(Sha256::new()),
            (Checksum::GitBlobSha1(_), Some(total)) => Self::GitBlob(blob_hasher(total)),
            (Checksum::GitBlobSha1(_), None) => Self::Deferred,
        }
    }

    /// Adds the next bytes of the file.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::GitBlob(h) => h.update(bytes),
            Self::Deferred => {}
        }
    }

    /// Adds the first `len` bytes of `path` (the `.part` being resumed).
    pub(crate) fn update_from_file(&mut self, path: &Path, len: u64) -> std::io::Result<()> {
        if matches!(self, Self::Deferred) {
            return Ok(());
        }
        let file = std::fs::File::open(path)?;
        let mut reader = file.take(len);
        let mut buf = vec![0u8; CHUNK];
        let mut seen = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.update(&buf[..n]);
            seen += n as u64;
        }
        if seen != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being read", path.display()),
            ));
        }
        Ok(())
    }

    /// The lowercase hex digest; `path` is the complete file, read only by `Deferred`.
    pub(crate) fn finish(self, path: &Path, checksum: &Checksum) -> std::io::Result<String> {
        match self {
            Self::Sha256(h) => Ok(hex(&h.finalize())),
            Self::GitBlob(h) => Ok(hex(&h.finalize())),
            Self::Deferred => file_digest(path, checksum),
        }
    }
}

/// SHA-1 primed with git's blob header for a `total`-byte file.
fn blob_hasher(total: u64) -> Sha1 {
    let mut h = Sha1::new();
    h.update(format!("blob {total}\0").as_bytes());
    h
}

/// The digest of the file at `path` in the form `checksum` compares against: the full
/// SHA-256 hex for `sha256` and `sha256-prefix`, the git blob id for `git-blob-sha1`.
pub fn file_digest(path: &Path, checksum: &Checksum) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    let mut hasher = StreamHasher::new(checksum, Some(len));
    hasher.update_from_file(path, len)?;
    hasher.finish(path, checksum)
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
