//! File-system helpers: atomic writes, so a crash or a full disk never leaves a
//! half-written file where a good one was, and folder syncs, so a rename survives a
//! power cut.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file in the same folder is written,
/// flushed to disk, renamed over `path`, and the folder is synced so the rename itself
/// is durable. On any error the old file is untouched and the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = temp_builder(".tmp-", "").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Best effort: the new content is already in place and complete; a folder that
    // cannot be synced (some network file systems refuse) only weakens durability.
    let _ = sync_dir(dir);
    Ok(())
}

/// A builder of hidden temporary files that, once renamed into place, have the
/// permissions of a normally created file (0666 less the umask on Unix; tempfile's
/// own default, 0600, would leave converted files unreadable to other users).
pub fn temp_builder<'a>(prefix: &'a str, suffix: &'a str) -> tempfile::Builder<'a, 'a> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b
}

/// Flushes `path` to disk and renames it over `target`, then syncs the folder.
pub fn persist_synced(temp: tempfile::TempPath, target: &Path) -> std::io::Result<()> {
    std::fs::File::open(&temp)?.sync_all()?;
    temp.persist(target).map_err(|e| e.error)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort, as in `write_atomic`.
        let _ = sync_dir(dir);
    }
    Ok(())
}

/// [`write_atomic`] for a string.
pub fn write_atomic_str(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
}

/// Flushes a folder's entries (creations, renames, deletions) to disk. Without it a
/// power cut after `rename` may bring back the old name. A no-op where folders cannot
/// be opened as files (Windows), since there renames are journaled by NTFS itself.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
