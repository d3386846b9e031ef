//! One resumable, verified HTTP download: `<dest>.part` grows (resumed with a
//! `Range` request when it exists), is hashed as bytes arrive, and is renamed to
//! `<dest>` only once its size and checksum match.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::verify::StreamHasher;
use super::{DownloadError, Entry};

/// Budget for resolving the host name and for connecting (incl. TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest silence tolerated on an open connection before giving up (the `.part`
/// is kept, so a stalled download resumes on the next attempt).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Progress is reported at most this often.
const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Bytes per read; cancellation is checked between reads.
const BUFFER: usize = 64 * 1024;

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes of the file on disk so far (including any resumed `.part`).
    pub done: u64,
    /// The file's full size, when the table or the server says it.
    pub total: Option<u64>,
    /// Average speed of this attempt (resumed bytes are not counted).
    pub bytes_per_sec: f64,
    /// Seconds left at that speed, when the total is known and bytes are flowing.
    pub eta_secs: Option<f64>,
}

/// The scratch file for `dest`: `<dest>.part` in the same folder, so the final
/// rename never crosses file systems.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(OsString::from).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `entry` to `dest_file`, resuming `<dest_file>.part` when one exists.
/// Blocking: run it on a worker thread. `progress` gets at most ~10 reports a second
/// plus a final one; `cancel` is checked between reads.
///
/// On success `dest_file` holds the complete, verified file (fsynced, renamed in
/// atomically) and is returned. On a cut connection or a cancel the `.part` is
/// kept; on a size or checksum mismatch it is deleted. `dest_file` itself is never
/// written before verification; an existing one is replaced only by verified bytes.
pub fn fetch(
    entry: &Entry,
    dest_file: &Path,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<PathBuf, DownloadError> {
    let part = part_path(dest_file);
    if cancel.load(Ordering::Relaxed) {
        return Err(DownloadError::Cancelled);
    }
    let mut kept = file_len(&part)?;
    if entry.size.is_some_and(|size| kept > size) {
        // Longer than the whole file: not a prefix of it, so useless to resume.
        remove(&part)?;
        kept = 0;
    }
    let (response, offset, total) = match start(&agent(), entry, &part, kept)? {
        Start::Body {
            response,
            offset,
            total,
        } => (Some(response), offset, total),
        Start::Complete { total } => (None, total, Some(total)),
    };
    let total = agree_on_total(entry, total, &part)?;
    let mut transfer = Transfer::open(entry, &part, offset, total)?;
    if let Some(mut response) = response {
        let mut reader = response.body_mut().as_reader();
        transfer.copy(&mut reader, progress, cancel)?;
    }
    progress(transfer.meter.progress(transfer.done, total));
    transfer.commit(dest_file)
}

/// What the server's answer lets us do.
enum Start {
    /// Stream the body after the first `offset` bytes of the `.part`.
    Body {
        response: ureq::http::Response<ureq::Body>,
        offset: u64,
        total: Option<u64>,
    },
    /// The `.part` already is the whole file (a `416` whose total equals it).
    Complete { total: u64 },
}

/// The client: status codes are ours to map, nothing waits forever, and bodies
/// are not compressed in transit so byte ranges count file bytes.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_per_write(Some(READ_TIMEOUT))
        .accept_encoding("identity")
        .user_agent(concat!("photo2anime/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Sends the request (ranged when `kept > 0`) and sorts out the answer. At most two
/// requests: a ranged one the server cannot honour is followed by a plain one.
fn start(
    agent: &ureq::Agent,
    entry: &Entry,
    part: &Path,
    kept: u64,
) -> Result<Start, DownloadError> {
    let mut offset = kept;
    loop {
        let mut request = agent.get(&entry.url);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = request
            .call()
            .map_err(|e| network_error(&entry.url, part, &e.to_string()))?;
        let status = response.status().as_u16();
        let range = content_range(&response);
        match status {
            200 => {
                // A full body: also what a server that ignores `Range` sends. The
                // `.part` is truncated when the body is written.
                let total = response.body().content_length();
                return Ok(Start::Body {
                    response,
                    offset: 0,
                    total,
                });
            }
            206 if offset > 0 && range.start == Some(offset) => {
                let total = range
                    .total
                    .or_else(|| response.body().content_length().map(|n| n + offset));
                return Ok(Start::Body {
                    response,
                    offset,
                    total,
                });
            }
            416 if offset > 0 && range.total == Some(offset) => {
                // An earlier attempt got every byte but stopped before the rename.
                return Ok(Start::Complete { total: offset });
            }
            // A range other than the one asked for, or "not satisfiable" (the file
            // changed): start again from zero with a plain request.
            206 | 416 if offset > 0 => offset = 0,
            _ => {
                return Err(DownloadError::Http {
                    url: entry.url.clone(),
                    status,
                });
            }
        }
    }
}

/// The parts of `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`).
#[derive(Default)]
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

fn content_range(response: &ureq::http::Response<ureq::Body>) -> ContentRange {
    let Some(value) = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
    else {
        return ContentRange::default();
    };
    let Some(spec) = value.trim().strip_prefix("bytes") else {
        return ContentRange::default();
    };
    let (range, total) = spec.trim().split_once('/').unwrap_or((spec.trim(), ""));
    ContentRange {
        start: range
            .split_once('-')
            .and_then(|(start, _)| start.trim().parse().ok()),
        total: total.trim().parse().ok(),
    }
}

/// The total size to expect: the table's and the server's must agree when both
/// are known (a mismatch means a different file, so the `.part` is worthless).
fn agree_on_total(
    entry: &Entry,
    announced: Option<u64>,
    part: &Path,
) -> Result<Option<u64>, DownloadError> {
    match (entry.size, announced) {
        (Some(size), Some(announced)) if size != announced => {
            remove(part)?;
            Err(DownloadError::SizeMismatch {
                name: entry.name.clone(),
                expected: size,
                actual: announced,
            })
        }
        (size, announced) => Ok(size.or(announced)),
    }
}

/// A download in progress: the open `.part`, its running hash and the meter.
struct Transfer<'a> {
    entry: &'a Entry,
    part: PathBuf,
    file: File,
    hasher: StreamHasher,
    done: u64,
    total: Option<u64>,
    meter: Meter,
}

impl<'a> Transfer<'a> {
    /// Opens the `.part` keeping its first `offset` bytes (0: start afresh) and
    /// hashes those bytes, since the hash is not saved between attempts.
    fn open(
        entry: &'a Entry,
        part: &Path,
        offset: u64,
        total: Option<u64>,
    ) -> Result<Self, DownloadError> {
        let io = |e| DownloadError::io(part, e);
        if let Some(dir) = part.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DownloadError::io(dir, e))?;
        }
        let mut file = File::options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(part)
            .map_err(io)?;
        file.set_len(offset).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut hasher = StreamHasher::new(&entry.checksum, total);
        if offset > 0 {
            hasher.update_from_file(part, offset).map_err(io)?;
        }
        Ok(Self {
            entry,
            part: part.to_path_buf(),
            file,
            hasher,
            done: offset,
            total,
            meter: Meter::new(offset),
        })
    }

    /// Appends the body to the `.part`, hashing and reporting as it goes.
    fn copy(
        &mut self,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<(), DownloadError> {
        let mut buf = vec![0u8; BUFFER];
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(DownloadError::Cancelled);
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(network_error(&self.entry.url, &self.part, &e.to_string())),
            };
            let chunk = &buf[..n];
            self.file
                .write_all(chunk)
                .map_err(|e| DownloadError::io(&self.part, e))?;
            self.hasher.update(chunk);
            self.done += n as u64;
            if let Some(total) = self.total
                && self.done > total
            {
                // Only reachable when the server sent no length: stop rather than
                // fill the disk with something that is not the file.
                remove(&self.part)?;
                return Err(DownloadError::SizeMismatch {
                    name: self.entry.name.clone(),
                    expected: total,
                    actual: self.done,
                });
            }
            if self.meter.due() {
                progress(self.meter.progress(self.done, self.total));
            }
        }
    }

    /// Checks size and checksum, then moves the `.part` into place durably.
    fn commit(self, dest: &Path) -> Result<PathBuf, DownloadError> {
        let Self {
            entry,
            part,
            file,
            hasher,
            done,
            total,
            ..
        } = self;
        if let Some(total) = total
            && done < total
        {
            let detail = format!("the connection ended after {done} of {total} bytes");
            return Err(network_error(&entry.url, &part, &detail));
        }
        file.sync_all().map_err(|e| DownloadError::io(&part, e))?;
        drop(file);
        let actual = hasher
            .finish(&part, &entry.checksum)
            .map_err(|e| DownloadError::io(&part, e))?;
        if !entry.checksum.matches(&actual) {
            remove(&part)?;
            return Err(DownloadError::ChecksumMismatch {
                name: entry.name.clone(),
                expected: entry.checksum.value().to_string(),
                actual,
            });
        }
        std::fs::rename(&part, dest).map_err(|e| DownloadError::io(dest, e))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: the file is complete either way; a folder that cannot be
            // synced only risks the rename being forgotten after a power cut.
            let _ = crate::fsx::sync_dir(dir);
        }
        Ok(dest.to_path_buf())
    }
}

/// Throttles progress reports and measures this attempt's speed.
struct Meter {
    started: Instant,
    resumed_at: u64,
    last: Option<Instant>,
}

impl Meter {
    fn new(resumed_at: u64) -> Self {
        Self {
            started: Instant::now(),
            resumed_at,
            last: None,
        }
    }

    /// Whether a report is due (the first chunk always is, so even a fast download
    /// reports before it ends).
    fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }

    fn progress(&self, done: u64, total: Option<u64>) -> Progress {
        let secs = self.started.elapsed().as_secs_f64();
        let fresh = done.saturating_sub(self.resumed_at) as f64;
        let bytes_per_sec = if secs > 0.0 { fresh / secs } else { 0.0 };
        let eta_secs = match total {
            Some(total) if bytes_per_sec > 0.0 => {
                Some(total.saturating_sub(done) as f64 / bytes_per_sec)
            }
            _ => None,
        };
        Progress {
            done,
            total,
            bytes_per_sec,
            eta_secs,
        }
    }
}

/// A network error whose message says whether a `.part` waits to be resumed.
fn network_error(url: &str, part: &Path, detail: &str) -> DownloadError {
    let kept = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let detail = if kept > 0 {
        format!(
            "{detail}; the {kept} bytes received so far are kept in {} and the next attempt \
             resumes from there",
            part.display()
        )
    } else {
        detail.to_string()
    };
    DownloadError::Network {
        url: url.to_string(),
        detail,
    }
}

/// The size of `path`, 0 when it does not exist.
fn file_len(path: &Path) -> Result<u64, DownloadError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(DownloadError::io(path, e)),
    }
}

/// Deletes `path`; a file that is already gone is fine.
fn remove(path: &Path) -> Result<(), DownloadError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DownloadError::io(path, e)),
    }
}
