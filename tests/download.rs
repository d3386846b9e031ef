//! The download service against a tiny local HTTP/1.1 server (nothing here touches
//! the internet): verified downloads, resume after a cut, cancel, errors that leave
//! nothing behind, the table file, and both installers end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use common::fixture;
use photo2anime::download::{
    Checksum, DownloadError, Entry, ItemKind, Progress, TABLE_ENV, Table, fetch, install,
    install_generator, install_vgg19, part_path,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- test server

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
}

#[derive(Default)]
struct ServerState {
    files: HashMap<String, Vec<u8>>,
    /// Paths whose next response announces the full length but is cut after half.
    cut_once: HashSet<String>,
    /// Paths served whole (200) whatever the Range header says.
    ignore_range: HashSet<String>,
    seen: Vec<Seen>,
}

/// A local HTTP/1.1 server: one thread per connection, `Connection: close`.
struct Server {
    base: String,
    state: Arc<Mutex<ServerState>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ServerState::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                // Errors are the client hanging up (cancel): nothing to do.
                std::thread::spawn(move || drop(serve(stream, &shared)));
            }
        });
        Self { base, state }
    }

    fn add(&self, path: &str, bytes: &[u8]) -> String {
        let mut st = self.state.lock().unwrap();
        st.files.insert(path.to_string(), bytes.to_vec());
        format!("{}{path}", self.base)
    }

    fn cut_next(&self, path: &str) {
        self.state.lock().unwrap().cut_once.insert(path.to_string());
    }

    fn ignore_range(&self, path: &str) {
        self.state
            .lock()
            .unwrap()
            .ignore_range
            .insert(path.to_string());
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let st = self.state.lock().unwrap();
        st.seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let (file, cut, ignore) = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let cut = st.cut_once.remove(&path);
        (
            st.files.get(&path).cloned(),
            cut,
            st.ignore_range.contains(&path),
        )
    };
    let Some(file) = file else {
        let body = b"not found";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body)?;
        return stream.shutdown(Shutdown::Write);
    };
    let len = file.len();
    let start = range
        .filter(|_| !ignore)
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
    let (status, extra, body): (&str, String, &[u8]) = match start {
        Some(s) if s >= len => (
            "416 Range Not Satisfiable",
            format!("Content-Range: bytes */{len}\r\n"),
            &[],
        ),
        Some(s) => (
            "206 Partial Content",
            format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
            &file[s..],
        ),
        None => ("200 OK", String::new(), &file[..]),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    let sent = if cut { &body[..body.len() / 2] } else { body };
    stream.write_all(sent)?;
    stream.flush()?;
    // Half-close rather than drop: the client must receive every byte sent before
    // it sees the end of the stream (a reset could discard them).
    stream.shutdown(Shutdown::Write)
}

// ---------------------------------------------------------------- helpers

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// Independent references: the `sha2` / `sha1` crates on the whole buffer.
fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

fn git_blob_hex(data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    format!("{:x}", h.finalize())
}

fn entry(name: &str, url: &str, checksum: Checksum, size: Option<u64>, kind: ItemKind) -> Entry {
    Entry {
        name: name.to_string(),
        url: url.to_string(),
        checksum,
        size,
        licence: "test licence".to_string(),
        kind,
    }
}

fn generic(name: &str, url: &str, checksum: Checksum, size: Option<u64>) -> Entry {
    entry(name, url, checksum, size, ItemKind::Generator)
}

/// Names in `dir` (empty when it does not exist), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn fetch_quietly(entry: &Entry, dest: &Path) -> Result<PathBuf, DownloadError> {
    fetch(entry, dest, &mut |_| {}, &AtomicBool::new(false))
}

fn part_len(dest: &Path) -> u64 {
    std::fs::metadata(part_path(dest)).unwrap().len()
}

// ---------------------------------------------------------------- fetch

#[test]
fn verified_downloads_arrive_whole_with_every_checksum_kind() {
    let server = Server::start();
    let data = bytes(300_000, 1);
    let url = server.add("/files/data.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    let kinds = [
        Checksum::Sha256(sha256_hex(&data)),
        Checksum::Sha256Prefix(sha256_hex(&data)[..8].to_string()),
        Checksum::GitBlobSha1(git_blob_hex(&data)),
    ];
    for (i, checksum) in kinds.into_iter().enumerate() {
        // With and without a size in the table (a git blob id then needs the
        // server's Content-Length for its header).
        for size in [Some(data.len() as u64), None] {
            let dest = dir.path().join(format!("out-{i}-{}.bin", size.is_some()));
            let mut reports: Vec<Progress> = Vec::new();
            let e = generic("data", &url, checksum.clone(), size);
            let got = fetch(&e, &dest, &mut |p| reports.push(p), &AtomicBool::new(false));
            assert_eq!(got.unwrap(), dest);
            assert_eq!(std::fs::read(&dest).unwrap(), data, "{checksum:?}");
            assert!(!part_path(&dest).exists());
            let last = reports.last().unwrap();
            assert_eq!(last.done, data.len() as u64);
            assert_eq!(last.total, Some(data.len() as u64));
        }
    }
}

#[test]
fn the_empty_file_matches_hand_known_ids() {
    // `printf '' | git hash-object --stdin` and `sha256sum /dev/null`.
    const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(git_blob_hex(&[]), EMPTY_BLOB);
    assert_eq!(sha256_hex(&[]), EMPTY_SHA256);
    let server = Server::start();
    let url = server.add("/empty", &[]);
    let dir = tempfile::tempdir().unwrap();
    for (i, checksum) in [
        Checksum::GitBlobSha1(EMPTY_BLOB.into()),
        Checksum::Sha256(EMPTY_SHA256.into()),
    ]
    .into_iter()
    .enumerate()
    {
        let dest = dir.path().join(format!("empty-{i}"));
        fetch_quietly(&generic("empty", &url, checksum, Some(0)), &dest).unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 0);
    }
}

#[test]
fn a_hand_known_git_blob_id_is_accepted() {
    // `printf 'hello\n' | git hash-object --stdin`
    const HELLO_BLOB: &str = "ce013625030ba8dba906f756967f9e9ca394464a";
    assert_eq!(git_blob_hex(b"hello\n"), HELLO_BLOB);
    let server = Server::start();
    let url = server.add("/hello.txt", b"hello\n");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("hello.txt");
    // Upper case in a hand-written table is fine.
    let checksum = Checksum::GitBlobSha1(HELLO_BLOB.to_ascii_uppercase());
    fetch_quietly(&generic("hello", &url, checksum, Some(6)), &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello\n");
}

#[test]
fn a_checksum_mismatch_leaves_nothing_and_keeps_the_old_file() {
    let server = Server::start();
    let data = bytes(200_000, 2);
    let url = server.add("/data.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    let mut wrong = git_blob_hex(&data);
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    let e = generic("data", &url, Checksum::GitBlobSha1(wrong.clone()), None);
    let err = fetch_quietly(&e, &dest).unwrap_err();
    match &err {
        DownloadError::ChecksumMismatch {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, "data");
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &git_blob_hex(&data));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("deleted"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    // An existing destination is only ever replaced by verified bytes.
    std::fs::write(&dest, b"old").unwrap();
    let e = generic("data", &url, Checksum::Sha256("0".repeat(64)), None);
    assert!(matches!(
        fetch_quietly(&e, &dest),
        Err(DownloadError::ChecksumMismatch { .. })
    ));
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert!(!part_path(&dest).exists());
}

#[test]
fn a_wrong_size_is_refused_before_downloading() {
    let server = Server::start();
    let data = bytes(50_000, 3);
    let url = server.add("/data.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    let e = generic(
        "data",
        &url,
        Checksum::Sha256(sha256_hex(&data)),
        Some(data.len() as u64 + 1),
    );
    match fetch_quietly(&e, &dest).unwrap_err() {
        DownloadError::SizeMismatch {
            expected, actual, ..
        } => assert_eq!((expected, actual), (50_001, 50_000)),
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn a_cut_connection_keeps_the_part_and_the_next_attempt_resumes() {
    let server = Server::start();
    let data = bytes(1 << 20, 4);
    let url = server.add("/big.bin", &data);
    server.cut_next("/big.bin");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big.bin");
    let e = generic(
        "big",
        &url,
        Checksum::GitBlobSha1(git_blob_hex(&data)),
        None,
    );

    let err = fetch_quietly(&e, &dest).unwrap_err();
    assert!(matches!(err, DownloadError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains("resumes"), "{err}");
    assert!(!dest.exists());
    let kept = part_len(&dest);
    assert!(kept > 0 && kept < data.len() as u64, "kept {kept}");
    assert_eq!(
        std::fs::read(part_path(&dest)).unwrap(),
        data[..kept as usize]
    );

    fetch_quietly(&e, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(!part_path(&dest).exists());
    let seen = server.seen("/big.bin");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range, Some(format!("bytes={kept}-")));
}

#[test]
fn a_server_that_ignores_range_restarts_from_zero() {
    let server = Server::start();
    let data = bytes(100_000, 5);
    let url = server.add("/data.bin", &data);
    server.ignore_range("/data.bin");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    // A stale .part that is not a prefix of the file: appending to it would fail
    // the checksum, restarting gives the right bytes.
    std::fs::write(part_path(&dest), vec![0xAB; 30_000]).unwrap();
    let e = generic("data", &url, Checksum::Sha256(sha256_hex(&data)), None);
    fetch_quietly(&e, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        server.seen("/data.bin")[0].range.as_deref(),
        Some("bytes=30000-")
    );
    assert_eq!(listing(dir.path()), vec!["data.bin"]);
}

#[test]
fn a_part_that_is_already_complete_is_verified_and_committed() {
    let server = Server::start();
    let data = bytes(40_000, 6);
    let url = server.add("/data.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data.bin");
    std::fs::write(part_path(&dest), &data).unwrap();
    let e = generic(
        "data",
        &url,
        Checksum::GitBlobSha1(git_blob_hex(&data)),
        None,
    );
    fetch_quietly(&e, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // The server answered 416 (nothing left to send); no plain re-download.
    assert_eq!(server.seen("/data.bin").len(), 1);
    assert_eq!(listing(dir.path()), vec!["data.bin"]);
}

#[test]
fn not_found_is_an_http_404_and_leaves_nothing() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/missing.bin");
    let url = format!("{}/missing.bin", server.base);
    let err = fetch_quietly(
        &generic("m", &url, Checksum::Sha256("0".repeat(64)), None),
        &dest,
    )
    .unwrap_err();
    match &err {
        DownloadError::Http { url: u, status } => assert_eq!((u, *status), (&url, 404)),
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn a_refused_connection_is_a_network_error_and_leaves_nothing() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let url = format!("http://127.0.0.1:{port}/x.bin");
    let err = fetch_quietly(
        &generic("x", &url, Checksum::Sha256("0".repeat(64)), None),
        &dest,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DownloadError::Network { url: u, .. } if *u == url),
        "{err:?}"
    );
    // Nothing was kept, so the message does not promise a resume.
    assert!(!err.to_string().contains("resumes"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn cancel_keeps_the_part_for_a_later_resume() {
    let server = Server::start();
    let data = bytes(2 << 20, 7);
    let url = server.add("/big.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big.bin");
    let e = generic("big", &url, Checksum::Sha256(sha256_hex(&data)), None);
    let cancel = AtomicBool::new(false);
    let mut reports = 0;
    let err = fetch(
        &e,
        &dest,
        &mut |_| {
            reports += 1;
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, DownloadError::Cancelled), "{err:?}");
    assert_eq!(reports, 1);
    assert!(!dest.exists());
    let kept = part_len(&dest);
    assert!(kept > 0 && kept < data.len() as u64, "kept {kept}");

    fetch_quietly(&e, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        server.seen("/big.bin")[1].range,
        Some(format!("bytes={kept}-"))
    );
}

// ---------------------------------------------------------------- table

#[test]
fn the_builtin_table_lists_the_published_weights_and_round_trips() {
    let builtin = Table::builtin();
    assert_eq!(builtin.source, None);
    let names: Vec<&str> = builtin.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "vgg19",
            "paprika",
            "face_paint_512_v2",
            "face_paint_512_v1",
            "celeba_distill"
        ]
    );
    let vgg = builtin.get("vgg19").unwrap();
    assert_eq!(vgg.file_name(), Some("vgg19-dcbb9e9d.pth"));
    assert_eq!(vgg.size, Some(574_673_361));
    assert_eq!(vgg.checksum, Checksum::Sha256Prefix("dcbb9e9d".into()));
    let paprika = builtin.get("paprika").unwrap();
    assert_eq!(
        paprika.url,
        "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/paprika.pt"
    );
    assert!(paprika.licence.contains("non-commercial"));
    // Written out as JSON, the built-in table passes the file checks and reads back
    // the same; the checksum is `{"kind": ..., "value": ...}`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("builtin.json");
    let json = serde_json::to_string_pretty(&builtin.entries).unwrap();
    assert!(json.contains(r#""kind": "sha256-prefix""#), "{json}");
    assert!(json.contains(r#""kind": "git-blob-sha1""#), "{json}");
    std::fs::write(&path, json).unwrap();
    assert_eq!(Table::load_from(&path).unwrap().entries, builtin.entries);
}

fn table_json(base: &str) -> String {
    serde_json::json!([
        {
            "name": "vgg19",
            "url": format!("{base}/models/vgg19-test.pth"),
            "checksum": {"kind": "sha256-prefix", "value": "dcbb9e9d"},
            "size": 10,
            "licence": "BSD-3-Clause\nsecond line",
            "kind": "vgg19"
        },
        {
            "name": "paprika",
            "url": format!("{base}/paprika.pt"),
            "checksum": {"kind": "git-blob-sha1", "value": "58086c9db9fc7a9e5c2876ca31b8079599352643"},
            "licence": "non-commercial",
            "kind": "generator"
        }
    ])
    .to_string()
}

#[test]
fn a_table_file_is_read_and_a_bad_one_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("table.json");
    std::fs::write(&good, table_json("http://127.0.0.1:1")).unwrap();
    let table = Table::load_from(&good).unwrap();
    assert_eq!(table.source.as_deref(), Some(good.as_path()));
    assert_eq!(table.entries.len(), 2);
    let vgg = table.get("vgg19").unwrap();
    assert_eq!(vgg.checksum, Checksum::Sha256Prefix("dcbb9e9d".into()));
    assert_eq!((vgg.size, vgg.kind), (Some(10), ItemKind::Vgg19));
    let paprika = table.get("paprika").unwrap();
    assert_eq!((paprika.size, paprika.kind), (None, ItemKind::Generator));
    assert!(matches!(
        table.get("nope"),
        Err(DownloadError::UnknownItem { name }) if name == "nope"
    ));

    let bad_cases = [
        ("malformed.json", "[{\"name\": "),
        ("not-a-list.json", "{}"),
        (
            "typo.json",
            r#"[{"name":"a","url":"http://x/a","checksum":{"kind":"sha256","value":"00"},"licence":"","kind":"generator","sizee":1}]"#,
        ),
        (
            "bad-kind.json",
            r#"[{"name":"a","url":"http://x/a","checksum":{"kind":"md5","value":"00"},"licence":"","kind":"generator"}]"#,
        ),
        (
            "traversal.json",
            r#"[{"name":"../a","url":"http://x/a","checksum":{"kind":"sha256-prefix","value":"00"},"licence":"","kind":"generator"}]"#,
        ),
        (
            "not-hex.json",
            r#"[{"name":"a","url":"http://x/a","checksum":{"kind":"git-blob-sha1","value":"xyz"},"licence":"","kind":"generator"}]"#,
        ),
        (
            "short-sha256.json",
            r#"[{"name":"a","url":"http://x/a","checksum":{"kind":"sha256","value":"ab"},"licence":"","kind":"generator"}]"#,
        ),
        (
            "not-http.json",
            r#"[{"name":"a","url":"file:///etc/passwd","checksum":{"kind":"sha256-prefix","value":"ab"},"licence":"","kind":"generator"}]"#,
        ),
        ("empty.json", "[]"),
        ("duplicate.json", &{
            let one = r#"{"name":"a","url":"http://x/a","checksum":{"kind":"sha256-prefix","value":"00"},"licence":"","kind":"generator"}"#;
            format!("[{one},{one}]")
        }),
    ];
    for (name, text) in bad_cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = Table::load_from(&path).unwrap_err();
        assert!(
            matches!(err, DownloadError::Table { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let missing = dir.path().join("missing.json");
    let err = Table::load_from(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.json"), "{err}");
}

/// Set in the child processes of `the_env_var_replaces_the_table_and_torch_home_is_used`:
/// which check to run. Environment variables are process-wide and tests run in
/// parallel threads, so the env-var test changes them only in a child process.
const CHILD_MODE: &str = "PHOTO2ANIME_DOWNLOAD_TEST_CHILD";

#[test]
fn the_env_var_replaces_the_table_and_torch_home_is_used() {
    let server = Server::start();
    let vgg = std::fs::read(fixture("vgg19_layout.pt")).unwrap();
    server.add("/models/vgg19-test.pth", &vgg);
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table.json");
    let json = table_json(&server.base).replace("dcbb9e9d", &sha256_hex(&vgg)[..8]);
    std::fs::write(&table, json).unwrap();
    let malformed = dir.path().join("broken-table.json");
    std::fs::write(&malformed, "not json").unwrap();
    let torch_home = dir.path().join("torch");
    for (mode, table) in [("good", &table), ("malformed", &malformed)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, mode)
            .env(TABLE_ENV, table)
            .env("TORCH_HOME", &torch_home)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{mode}: {text}");
        assert!(text.contains("1 passed"), "{mode}: {text}");
        assert!(text.contains(&format!("child {mode} ok")), "{mode}: {text}");
    }
    // `install` put VGG19 into $TORCH_HOME/hub/checkpoints under the URL's name.
    let installed = torch_home.join("hub/checkpoints/vgg19-test.pth");
    assert_eq!(std::fs::read(installed).unwrap(), vgg);
}

/// Runs only as the child process of the test above (a no-op otherwise).
#[test]
fn env_child() {
    let Some(mode) = std::env::var_os(CHILD_MODE) else {
        return;
    };
    let table_path = PathBuf::from(std::env::var_os(TABLE_ENV).unwrap());
    match mode.to_str().unwrap() {
        "good" => {
            let table = Table::from_env().unwrap();
            assert_eq!(table.source.as_deref(), Some(table_path.as_path()));
            let mut vgg = table.get("vgg19").unwrap().clone();
            // The table's size (10) is a placeholder; the real one is the fixture's.
            vgg.size = None;
            let checkpoints = tempfile::tempdir().unwrap();
            let got = install(
                &vgg,
                &mut |_| {},
                &AtomicBool::new(false),
                checkpoints.path(),
            )
            .unwrap();
            let torch_home = PathBuf::from(std::env::var_os("TORCH_HOME").unwrap());
            assert_eq!(got.path, torch_home.join("hub/checkpoints/vgg19-test.pth"));
            assert!(!got.already_present);
        }
        "malformed" => {
            let err = Table::from_env().unwrap_err();
            assert!(matches!(err, DownloadError::Table { .. }), "{err:?}");
            assert!(err.to_string().contains("broken-table.json"), "{err}");
        }
        other => panic!("unknown mode {other}"),
    }
    println!("child {} ok", mode.to_string_lossy());
}

// ---------------------------------------------------------------- install

#[test]
fn a_generator_installs_end_to_end_and_loads() {
    let server = Server::start();
    let pt = std::fs::read(fixture("generator_seed0.pt")).unwrap();
    let url = server.add("/weights/seed0.pt", &pt);
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let e = entry(
        "seed0",
        &url,
        Checksum::GitBlobSha1(git_blob_hex(&pt)),
        None,
        ItemKind::Generator,
    );
    let got = install(&e, &mut |_| {}, &AtomicBool::new(false), &checkpoints).unwrap();
    let model = checkpoints.join("seed0");
    assert_eq!(got.path, model);
    assert!(!got.already_present);
    assert!(model.join("model.json").is_file());
    // Neither the .pt nor the staging folder is left behind.
    assert_eq!(listing(&checkpoints), vec!["seed0"]);
    let loaded = photo2anime::model_io::load_generator(&model, &Device::flex(), None).unwrap();
    assert_eq!(
        loaded.upsample,
        photo2anime::model::UpsampleMode::AlignCorners
    );
    let model_json = std::fs::read_to_string(model.join("model.json")).unwrap();
    assert!(
        model_json.contains(&url),
        "the origin records the URL: {model_json}"
    );

    // Installed already: nothing is downloaded again.
    let again = install(&e, &mut |_| {}, &AtomicBool::new(false), &checkpoints).unwrap();
    assert!(again.already_present);
    assert_eq!(server.seen("/weights/seed0.pt").len(), 1);

    // A folder of that name that is not a model is never overwritten.
    let other = e.clone();
    std::fs::create_dir_all(checkpoints.join("busy")).unwrap();
    let busy = Entry {
        name: "busy".into(),
        ..other
    };
    let err =
        install_generator(&busy, &mut |_| {}, &AtomicBool::new(false), &checkpoints).unwrap_err();
    assert!(err.to_string().contains("model.json"), "{err}");
    assert!(listing(&checkpoints.join("busy")).is_empty());
}

#[test]
fn a_download_that_is_not_a_generator_leaves_nothing() {
    let server = Server::start();
    let vgg = std::fs::read(fixture("vgg19_layout.pt")).unwrap();
    let url = server.add("/not-a-generator.pt", &vgg);
    let dir = tempfile::tempdir().unwrap();
    let e = entry(
        "wrong",
        &url,
        Checksum::Sha256(sha256_hex(&vgg)),
        Some(vgg.len() as u64),
        ItemKind::Generator,
    );
    let err = install(&e, &mut |_| {}, &AtomicBool::new(false), dir.path()).unwrap_err();
    assert!(matches!(err, DownloadError::Install { .. }), "{err:?}");
    assert!(err.to_string().contains("generator"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    // A corrupt download leaves no trace in the checkpoints folder either.
    let corrupt = Entry {
        checksum: Checksum::Sha256("0".repeat(64)),
        ..e
    };
    let err = install(&corrupt, &mut |_| {}, &AtomicBool::new(false), dir.path()).unwrap_err();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn vgg19_installs_into_the_given_hub_folder_once() {
    let server = Server::start();
    let vgg = std::fs::read(fixture("vgg19_layout.pt")).unwrap();
    let url = server.add("/models/vgg19-test.pth", &vgg);
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub/checkpoints");
    let e = entry(
        "vgg19",
        &url,
        Checksum::Sha256Prefix(sha256_hex(&vgg)[..8].to_string()),
        Some(vgg.len() as u64),
        ItemKind::Vgg19,
    );
    let cancel = AtomicBool::new(false);
    let got = install_vgg19(&e, &mut |_| {}, &cancel, &hub).unwrap();
    let dest = hub.join("vgg19-test.pth");
    assert_eq!(
        (got.path.as_path(), got.already_present),
        (dest.as_path(), false)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), vgg);
    assert_eq!(listing(&hub), vec!["vgg19-test.pth"]);
    photo2anime::interop::vgg::load_vgg19(&dest, &Device::flex()).unwrap();

    let again = install_vgg19(&e, &mut |_| {}, &cancel, &hub).unwrap();
    assert!(again.already_present);
    assert_eq!(server.seen("/models/vgg19-test.pth").len(), 1);

    // A corrupt file under the official name is replaced by a verified download.
    std::fs::write(&dest, b"corrupt").unwrap();
    let fixed = install_vgg19(&e, &mut |_| {}, &cancel, &hub).unwrap();
    assert!(!fixed.already_present);
    assert_eq!(std::fs::read(&dest).unwrap(), vgg);
    assert_eq!(server.seen("/models/vgg19-test.pth").len(), 2);
}

#[test]
fn a_vgg19_download_that_does_not_load_is_deleted() {
    let server = Server::start();
    let junk = std::fs::read(fixture("not_a_zip.pt")).unwrap();
    let url = server.add("/models/vgg19-junk.pth", &junk);
    let dir = tempfile::tempdir().unwrap();
    let e = entry(
        "vgg19",
        &url,
        Checksum::Sha256(sha256_hex(&junk)),
        None,
        ItemKind::Vgg19,
    );
    let err = install_vgg19(&e, &mut |_| {}, &AtomicBool::new(false), dir.path()).unwrap_err();
    assert!(matches!(err, DownloadError::Install { .. }), "{err:?}");
    assert!(err.to_string().contains("VGG19"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}
