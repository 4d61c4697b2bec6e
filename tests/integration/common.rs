//! Shared helpers: fixture access, CloudWatch Logs subscription payloads built on the
//! fly, gzip, temporary directories, and running the `trailwatch` binary.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use trailwatch::ingest::SubscriptionBuilder;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/events/NAME`.
pub fn fixture_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/events").join(name)
}

/// A fixture record, parsed.
pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name))
        .unwrap_or_else(|err| panic!("cannot read fixture {name}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("fixture {name} is not JSON: {err}"))
}

/// A fixture record as CloudTrail writes it to CloudWatch Logs: compact, one line.
pub fn compact(name: &str) -> String {
    fixture(name).to_string()
}

/// The `eventID` of a fixture.
pub fn event_id(name: &str) -> String {
    fixture(name)["eventID"]
        .as_str()
        .expect("fixture has an eventID")
        .to_owned()
}

pub use trailwatch::ingest::{gzip, log_event_id};

/// Decoded subscription JSON (what `awslogs.data` holds once decoded), one log event per
/// message, with ids from [`log_event_id`].
pub fn subscription_json(message_type: &'static str, messages: &[&str]) -> String {
    SubscriptionBuilder::data_message()
        .with_message_type(message_type)
        .messages(messages.iter().copied())
        .data_json()
}

/// The CloudWatch `CONTROL_MESSAGE` a new subscription sends as a health check.
pub fn control_message_json() -> String {
    SubscriptionBuilder::control_message().data_json()
}

/// Padded standard base64, as CloudWatch writes `awslogs.data`.
pub fn base64_padded(bytes: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(data.len() % 4, 0, "CloudWatch base64 is padded");
    data
}

/// The event a Lambda receives: `{"awslogs":{"data": base64(gzip(json))}}`.
pub fn encode_payload(subscription_json: &str) -> String {
    envelope(&base64_padded(&gzip(subscription_json.as_bytes())))
}

/// `{"awslogs":{"data": DATA}}` around any `data` text (for broken payloads).
pub fn envelope(data: &str) -> String {
    json!({"awslogs": {"data": data}}).to_string()
}

/// An encoded `DATA_MESSAGE` payload carrying `messages`.
pub fn data_message(messages: &[&str]) -> String {
    encode_payload(&subscription_json("DATA_MESSAGE", messages))
}

/// An encoded `DATA_MESSAGE` payload carrying the compact text of each fixture.
pub fn data_message_of_fixtures(names: &[&str]) -> String {
    let texts: Vec<String> = names.iter().map(|name| compact(name)).collect();
    let messages: Vec<&str> = texts.iter().map(String::as_str).collect();
    data_message(&messages)
}

/// The `awslogs.data` text of an encoded payload.
pub fn awslogs_data(payload: &str) -> String {
    let value: Value = serde_json::from_str(payload).expect("payload is JSON");
    value["awslogs"]["data"]
        .as_str()
        .expect("awslogs.data is a string")
        .to_owned()
}

/// 80 MiB of zeros in one gzip member (about 370 KiB), built once per test run.
pub fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..80 {
            encoder.write_all(&chunk).expect("gzip to memory");
        }
        encoder.finish().expect("gzip to memory")
    })
}

/// A directory under the system temp dir, unique per process and call, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "trailwatch-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside the directory and returns the full path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What one run of the CLI produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` when killed by a signal, e.g. a stack overflow).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing both streams on failure.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Run {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self.assert_no_panic()
    }

    /// Asserts that the process did not panic or die from a signal.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Run {
        assert!(
            !self.stderr.contains("panicked"),
            "the CLI panicked\n{self}"
        );
        assert!(
            matches!(self.code, Some(0..=2)),
            "exit code must be 0, 1 or 2 (101 is a panic, none is a signal)\n{self}"
        );
        self
    }

    /// Asserts that stderr contains every `part`.
    #[track_caller]
    pub fn assert_stderr_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stderr.contains(part), "stderr lacks {part:?}\n{self}");
        }
        self
    }

    /// Asserts that stdout contains every `part`.
    #[track_caller]
    pub fn assert_stdout_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stdout.contains(part), "stdout lacks {part:?}\n{self}");
        }
        self
    }

    /// The rule names of the text alerts on stdout (`LEVEL Title  [rule]` lines), in order.
    pub fn text_alert_rules(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|line| !line.starts_with(' ') && line.ends_with(']'))
            .filter_map(|line| line.rsplit_once('[').map(|(_, r)| r))
            .map(|rule| rule.trim_end_matches(']').to_owned())
            .collect()
    }

    /// The `--format json` alert lines, parsed.
    #[track_caller]
    pub fn json_alerts(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("stdout line is not JSON ({err}): {line}"))
            })
            .collect()
    }

    /// The `rule` of each JSON alert, in order.
    pub fn json_alert_rules(&self) -> Vec<String> {
        self.json_alerts()
            .iter()
            .map(|alert| alert["rule"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The summary line: `trailwatch: N event(s) read from ...`.
    #[track_caller]
    pub fn summary(&self) -> &str {
        self.stderr
            .lines()
            .find(|line| line.starts_with("trailwatch: ") && line.contains("event(s) read"))
            .unwrap_or_else(|| panic!("no summary line\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(4000);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Runs `trailwatch ARGS...` with empty stdin.
pub fn trailwatch<S: AsRef<OsStr>>(args: &[S]) -> Run {
    trailwatch_stdin(args, &[])
}

/// The rules the CLI tests scan with: the three core rules, fixed in
/// `tests/fixtures/rules/`, so tests of input formats and output do not change each
/// time the built-in pack grows (the pack is tested by its inline tests, the corpus
/// tests and `builtin_pack_*` tests, which pass `--rules` themselves or use none).
pub const CORE_RULES: &str = "tests/fixtures/rules";

/// Runs `trailwatch ARGS...` with `stdin` on standard input; a `scan` without
/// `--rules` scans with [`CORE_RULES`] (pass `--rules rules` for the built-in pack).
pub fn trailwatch_stdin<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Run {
    let mut args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    if args.first().is_some_and(|a| a == "scan") && !args.iter().any(|a| a == "--rules") {
        args.splice(1..1, ["--rules".into(), CORE_RULES.into()]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(&args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the trailwatch binary");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The CLI may exit before reading (e.g. on a usage error); ignore broken pipes.
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for trailwatch");
    writer.join().expect("stdin writer thread");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Collects mixed string and path arguments: `args(&[&"scan", &path])`.
pub fn args(parts: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

/// Runs `trailwatch scan [EXTRA...] PATH`.
pub fn scan(path: &Path, extra: &[&str]) -> Run {
    let mut all: Vec<OsString> = vec!["scan".into()];
    all.extend(extra.iter().map(Into::into));
    all.push(path.into());
    trailwatch(&all)
}

/// Runs `trailwatch scan --format json [EXTRA...] PATH`.
pub fn scan_json(path: &Path, extra: &[&str]) -> Run {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(extra);
    scan(path, &all)
}

/// `../shared/corpus` next to the repository, when present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/corpus not present");
        None
    }
}
