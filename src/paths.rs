//! Where photo2anime finds what it ships and keeps what artists make.
//!
//! Two layouts, told apart by whether the demo dataset lies beside the running binary:
//! - **Installed** (a package: `.deb`, AppImage, macOS `.app`, Windows installer): the demo
//!   dataset is in the package's resource folder next to the binary; runs and models go to
//!   the user's data folder and caches to the user's cache folder (XDG on Linux, the
//!   platform's own elsewhere), because the working directory of an app started from a
//!   desktop menu is the home folder (or `/`), not a place to write into.
//! - **Source tree** (`cargo run`, `target/release/photo2anime`): `assets/demo` and
//!   `./checkpoints`, as the README's commands expect.
//!
//! `photo2anime paths` and the studio's About menu print the folders in use.

use std::path::{Path, PathBuf};

/// The binary's name, which packagers also use for the resource folder
/// (`/usr/lib/photo2anime`).
const APP: &str = "photo2anime";

/// How this binary was installed, which decides where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Run from a package: `resources` is the folder holding `demo/`.
    Installed {
        /// The package's resource folder (e.g. `/usr/lib/photo2anime`).
        resources: PathBuf,
    },
    /// Run from a checkout (or a bare binary): data relative to the working directory.
    SourceTree,
}

/// The folders in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// How the binary was installed.
    pub layout: Layout,
    /// The demo dataset (`photos/`, `style/`).
    pub demo: PathBuf,
    /// Runs, imported and downloaded models.
    pub checkpoints: PathBuf,
    /// Preprocessed dataset caches.
    pub cache: PathBuf,
}

impl Locations {
    /// The folders for the running binary, resolved once per process (the binary's
    /// place and the user's folders do not change while it runs).
    pub fn current() -> Self {
        static CURRENT: std::sync::OnceLock<Locations> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let exe = std::env::current_exe()
                    .inspect_err(|e| {
                        log::warn!(
                            "cannot tell where this program is ({e}): using the source-tree layout"
                        )
                    })
                    .ok();
                let user = directories::ProjectDirs::from("", "", APP);
                Self::resolve(
                    exe.as_deref(),
                    user.as_ref()
                        .map(|d| (d.data_dir().to_path_buf(), d.cache_dir().to_path_buf())),
                )
            })
            .clone()
    }

    /// The folders for a binary at `exe` whose user folders (data, cache) are `user`;
    /// `None` where the platform names none (no home folder).
    fn resolve(exe: Option<&Path>, user: Option<(PathBuf, PathBuf)>) -> Self {
        let resources = exe.and_then(resources_beside);
        let cache = user
            .as_ref()
            .map(|(_, cache)| cache.clone())
            .unwrap_or_else(|| PathBuf::from(".photo2anime-cache"));
        match (resources, user) {
            (Some(resources), Some((data, _))) => Self {
                demo: resources.join("demo"),
                checkpoints: data.join("checkpoints"),
                cache,
                layout: Layout::Installed { resources },
            },
            // Installed but no home folder (a service account): the working directory
            // is the only writable place we know of.
            (Some(resources), None) => Self {
                demo: resources.join("demo"),
                checkpoints: PathBuf::from("checkpoints"),
                cache,
                layout: Layout::Installed { resources },
            },
            (None, _) => Self {
                demo: source_tree_demo(),
                checkpoints: PathBuf::from("checkpoints"),
                cache,
                layout: Layout::SourceTree,
            },
        }
    }

    /// One line per folder, for `photo2anime paths` and the About menu.
    pub fn describe(&self) -> String {
        let layout = match &self.layout {
            Layout::Installed { resources } => format!("installed ({})", resources.display()),
            Layout::SourceTree => "source tree (paths relative to the working folder)".into(),
        };
        format!(
            "layout        {layout}\ndemo dataset  {}\nruns, models  {}\ncaches        {}",
            self.demo.display(),
            self.checkpoints.display(),
            self.cache.display()
        )
    }
}

/// The package resource folder holding `demo/` next to the binary at `exe`, if any:
/// `../lib/photo2anime` (deb, pacman, AppImage, a prefix the deb was unpacked into),
/// `../Resources` (macOS `.app`), or the binary's own folder (Windows installers).
fn resources_beside(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    let candidates = [
        bin.join("..").join("lib").join(APP),
        bin.join("..").join("Resources"),
        bin.to_path_buf(),
    ];
    candidates
        .into_iter()
        .find(|dir| dir.join("demo").join("photos").is_dir())
        .map(|dir| normalize(&dir))
}

/// `a/b/../c` → `a/c` without touching the file system (a symlinked `bin` stays as the
/// user sees it); the path already exists, so this only tidies what is shown.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `assets/demo` in the working folder, else in the checkout this binary was built from.
fn source_tree_demo() -> PathBuf {
    let here = PathBuf::from("assets/demo");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_in(root: &Path) {
        std::fs::create_dir_all(root.join("demo/photos")).unwrap();
    }

    fn user(home: &Path) -> Option<(PathBuf, PathBuf)> {
        Some((
            home.join("data/photo2anime"),
            home.join("cache/photo2anime"),
        ))
    }

    /// A deb unpacked into any prefix: `PREFIX/usr/bin/photo2anime` finds
    /// `PREFIX/usr/lib/photo2anime/demo`, and writes runs to the user's data folder.
    #[test]
    fn a_deb_layout_finds_its_demo_and_writes_to_user_folders() {
        let t = tempfile::tempdir().unwrap();
        let prefix = t.path().join("prefix");
        std::fs::create_dir_all(prefix.join("usr/bin")).unwrap();
        demo_in(&prefix.join("usr/lib/photo2anime"));
        let at = Locations::resolve(Some(&prefix.join("usr/bin/photo2anime")), user(t.path()));
        assert_eq!(
            at.layout,
            Layout::Installed {
                resources: prefix.join("usr/lib/photo2anime")
            }
        );
        assert_eq!(at.demo, prefix.join("usr/lib/photo2anime/demo"));
        assert_eq!(
            at.checkpoints,
            t.path().join("data/photo2anime/checkpoints")
        );
        assert_eq!(at.cache, t.path().join("cache/photo2anime"));
    }

    /// macOS bundles keep resources in `Contents/Resources`; Windows installers beside
    /// the `.exe`.
    #[test]
    fn app_bundle_and_windows_layouts_are_found() {
        let t = tempfile::tempdir().unwrap();
        let bundle = t.path().join("photo2anime.app/Contents");
        std::fs::create_dir_all(bundle.join("MacOS")).unwrap();
        demo_in(&bundle.join("Resources"));
        let at = Locations::resolve(Some(&bundle.join("MacOS/photo2anime")), user(t.path()));
        assert_eq!(at.demo, bundle.join("Resources/demo"));

        let program = t.path().join("Program Files/photo2anime");
        demo_in(&program);
        let at = Locations::resolve(Some(&program.join("photo2anime.exe")), user(t.path()));
        assert_eq!(at.demo, program.join("demo"));
        assert_eq!(
            at.checkpoints,
            t.path().join("data/photo2anime/checkpoints")
        );
    }

    /// A binary with no demo beside it (cargo's `target/release`) is the source tree:
    /// `./checkpoints` and the checkout's `assets/demo`, which exists.
    #[test]
    fn a_build_folder_is_the_source_tree() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("target/release")).unwrap();
        let at = Locations::resolve(
            Some(&t.path().join("target/release/photo2anime")),
            user(t.path()),
        );
        assert_eq!(at.layout, Layout::SourceTree);
        assert_eq!(at.checkpoints, PathBuf::from("checkpoints"));
        assert!(at.demo.join("photos").is_dir(), "{}", at.demo.display());
        assert_eq!(at.cache, t.path().join("cache/photo2anime"));
    }

    /// An empty `demo` folder beside the binary (a half-removed install) is not taken
    /// for a package: the photos folder must be there.
    #[test]
    fn an_empty_demo_folder_is_not_an_install() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/lib/photo2anime/demo")).unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        let at = Locations::resolve(Some(&t.path().join("usr/bin/photo2anime")), user(t.path()));
        assert_eq!(at.layout, Layout::SourceTree);
    }
}
