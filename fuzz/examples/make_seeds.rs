//! Regenerates the checked-in seed corpora in `fuzz/seeds/<target>/` from the test
//! fixtures and the rule files: `cargo run --example make_seeds` (from `fuzz/`).
//! Small, deterministic files; the fuzzer grows its own corpus in `fuzz/corpus/`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use trailwatch::ingest::{SubscriptionBuilder, gzip};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The rule without prose and with at most one inline test: what the loader and the
/// matcher exercise, at a size the fuzzer mutates quickly.
fn lean_rule(text: &str) -> String {
    const KEEP: [&str; 12] = [
        "title:",
        "id:",
        "name:",
        "logsource:",
        "detection:",
        "filter_pattern:",
        "level:",
        "filter:",
        "reason:",
        "expires:",
        "exempt_from:",
        "tags:",
    ];
    let mut out = String::new();
    let (mut keep, mut in_tests, mut tests_seen) = (false, false, 0);
    for line in text.lines() {
        let top = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '#' && c != '-');
        if top {
            in_tests = line.starts_with("tests:");
            keep = in_tests || KEEP.iter().any(|k| line.starts_with(k));
            tests_seen = 0;
        } else if in_tests && line.trim_start().starts_with("- name:") {
            tests_seen += 1;
        }
        if keep && !(in_tests && tests_seen > 1) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn main() {
    let root = repo();
    let events: Vec<(String, Value)> = sorted_files(&root.join("tests/fixtures/events"), "json")
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let value: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
            (stem, value)
        })
        .collect();
    let lines: Vec<String> = events.iter().map(|(_, v)| v.to_string()).collect();

    // record_match: one record per file, and all of them as JSON Lines.
    for (stem, value) in &events {
        write("record_match", &format!("{stem}.jsonl"), value.to_string());
    }
    write("record_match", "all.jsonl", lines.join("\n"));

    // subscription: built payloads (bytes) and bare awslogs.data strings.
    let sample = fs::read(root.join("tests/fixtures/sample-subscription.json")).unwrap();
    write("subscription", "sample-subscription.json", &sample);
    let data = SubscriptionBuilder::data_message().messages(lines.iter().take(4).cloned());
    write("subscription", "data-message.json", data.payload_json());
    write("subscription", "data-message.b64", data.encoded_data());
    let control = SubscriptionBuilder::control_message();
    write(
        "subscription",
        "control-message.json",
        control.payload_json(),
    );
    write(
        "subscription",
        "control-message.b64",
        control.encoded_data(),
    );
    let odd = SubscriptionBuilder::data_message()
        .with_message_type("OTHER")
        .event("1", "not json");
    write("subscription", "unknown-type.json", odd.payload_json());

    // input_formats: every format the detector knows, plain and gzipped.
    let few: Vec<&Value> = events.iter().take(3).map(|(_, v)| v).collect();
    let archive = json!({ "Records": few }).to_string();
    let formats: Vec<(&str, Vec<u8>)> = vec![
        ("payload.json", data.payload_json().into_bytes()),
        ("subscription-data.json", data.data_json().into_bytes()),
        ("control.json", control.data_json().into_bytes()),
        ("archive.json", archive.clone().into_bytes()),
        ("archive.json.gz", gzip(archive.as_bytes())),
        ("array.json", serde_json::to_vec(&few).unwrap()),
        ("single.json", serde_json::to_vec_pretty(few[0]).unwrap()),
        ("lines.jsonl", lines[..4].join("\n").into_bytes()),
        (
            "lines-bad.jsonl",
            [
                lines[0].as_bytes(),
                b"\n\xff\xfe\nnot json\n",
                lines[1].as_bytes(),
            ]
            .concat(),
        ),
        ("lines.jsonl.gz", gzip(lines[..2].join("\n").as_bytes())),
        (
            "bom-single.json",
            [b"\xef\xbb\xbf".as_slice(), lines[2].as_bytes()].concat(),
        ),
    ];
    for (name, bytes) in formats {
        write("input_formats", name, bytes);
    }

    // rule_load: every rule file, lean, and the test fixtures' rules.
    let mut rule_files = sorted_files(&root.join("rules"), "yml");
    rule_files.extend(sorted_files(&root.join("rules/filters"), "yml"));
    rule_files.extend(sorted_files(&root.join("tests/fixtures/rules"), "yml"));
    for path in rule_files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        write(
            "rule_load",
            &name,
            lean_rule(&fs::read_to_string(&path).unwrap()),
        );
    }
}
