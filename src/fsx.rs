//! File-system helpers: atomic writes, so a crash or a full disk never leaves a
//! half-written file where a good one was.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file in the same folder is written,
/// flushed to disk, then renamed over `path`. On any error the old file is untouched
/// and the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic`] for a string.
pub fn write_atomic_str(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
}
