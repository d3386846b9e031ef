//! On-disk cache of resized photos and style variants, keyed by file identity and settings.
//!
//! The key hashes the absolute path, size, modification time and the preprocessing
//! settings (and a version), so an edited file or a new training size recomputes.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Bumped whenever preprocessing changes, invalidating old entries.
const CACHE_VERSION: u32 = 2;

/// The default cache folder: the user's cache folder (`$XDG_CACHE_HOME/photo2anime` or
/// `~/.cache/photo2anime` on Linux; the platform's own elsewhere), else
/// `./.photo2anime-cache` (see [`crate::paths`]).
pub fn default_cache_dir() -> PathBuf {
    crate::paths::Locations::current().cache
}

/// Hex key for `file` under `settings` (e.g. `"style:256"`).
pub fn cache_key(file: &Path, settings: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CACHE_VERSION.to_le_bytes());
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    hasher.update(abs.to_string_lossy().as_bytes());
    if let Ok(meta) = std::fs::metadata(file) {
        hasher.update(&meta.len().to_le_bytes());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        hasher.update(&mtime.to_le_bytes());
    }
    hasher.update(settings.as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// Encodes `img` as PNG and writes it atomically (temp file in the same folder, then rename).
pub fn save_png_atomic(img: &image::DynamicImage, path: &Path) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(std::io::Error::other)?;
    crate::fsx::write_atomic(path, &bytes)
}
