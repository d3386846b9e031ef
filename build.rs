//! Records the git commit the binary is built from (`photo2anime --version`, the
//! studio's About, and every model and PNG it writes), or "commit unknown" when
//! built outside a git checkout (a source package).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let modified = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("commit {c}{}", if modified { ", modified" } else { "" })
        }
        _ => "commit unknown".to_string(),
    };
    println!("cargo:rustc-env=PHOTO2ANIME_GIT_COMMIT={commit}");
    for path in [".git/HEAD", ".git/index", ".git/refs", "src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
