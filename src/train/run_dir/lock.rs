//! The run lock: one trainer per run folder.

#[allow(clippy::wildcard_imports)]
use super::*;

/// An OS lock on `<run>/.lock`, held while a trainer uses the folder. The OS releases
/// it when the file is closed — on drop, or when the process dies however it dies —
/// so a crashed run never leaves a stale lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `run_dir` (which must exist), or fails with
    /// [`RunDirError::Locked`] when another process — or another trainer in this
    /// process — holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self, RunDirError> {
        let path = run_dir.join(files::LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(RunDirError::Locked {
                path: run_dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(RunDirError::Io { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
