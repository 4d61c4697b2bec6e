//! Stage benchmarks of the Lambda's hot path (divan), on real CloudTrail events.
//!
//! Owns the input preparation and the per-stage benches; timing, statistics and argument
//! parsing are divan's. Before any timing, every `*.jsonl.gz` of the corpus
//! (`$TRAILWATCH_CORPUS`, default `../shared/corpus`) is cut in order into CloudWatch Logs
//! `DATA_MESSAGE`s of at most 1 MiB decompressed, built with
//! [`trailwatch::ingest::SubscriptionBuilder`]. Without the corpus it prints a `SKIPPED`
//! line and benches one batch of `tests/fixtures/events` instead. Under `cargo bench` it
//! also writes the batches to `target/bench-batches/` for the whole-process comparison
//! (`scripts/bench.sh`); under `cargo test` it runs each bench once on the fixtures.
//!
//! `cargo bench --bench pipeline [-- --sample-count 10]`; see `bench/README.md`.

// The allocator the binaries use, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use flate2::read::MultiGzDecoder;
use serde_json::{Value, json};
use trailwatch::ingest::{
    DecodeLimits, SubscriptionBuilder, SubscriptionEnvelope, decode_base64, gunzip_bounded,
    log_event_id, parse_subscription_data, parse_subscription_event,
    parse_subscription_event_screened,
};
use trailwatch::pipeline;
use trailwatch::record::parse_record;
use trailwatch::rules::{RuleSet, RuleSource, builtin_sources};
use trailwatch::state::{MemoryStore, block_on};
use trailwatch::stateful::Stateful;

/// The "now" of stateful alerting (claims and expiry; windows run on event times).
const NOW: i64 = 1_800_000_000;

/// Bound on one batch's decompressed subscription JSON, as CloudWatch Logs sends.
const BATCH_BYTES: usize = 1024 * 1024;

fn main() {
    let input = input();
    println!("{}", input.description);
    divan::main();
}

/// The prepared input every bench reads.
struct Input {
    description: String,
    events: usize,
    /// `{"awslogs":{"data":...}}` of each batch: what Lambda hands the function.
    payloads: Vec<Vec<u8>>,
    /// Each batch's `awslogs.data`, base64-decoded (gzip).
    gzipped: Vec<Vec<u8>>,
    /// Each batch's subscription JSON.
    subscriptions: Vec<Vec<u8>>,
    /// Every log event's message (one CloudTrail record each).
    records: Vec<String>,
    no_rules: RuleSet,
    builtin: RuleSet,
    sigma: RuleSet,
    combined: RuleSet,
}

fn input() -> &'static Input {
    static INPUT: OnceLock<Input> = OnceLock::new();
    INPUT.get_or_init(|| prepare().unwrap_or_else(|err| panic!("pipeline bench: {err}")))
}

/// True under `cargo bench`; `cargo test` runs the binary without `--bench`.
fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

fn prepare() -> Result<Input, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var_os("TRAILWATCH_CORPUS")
        .map_or_else(|| root.join("../shared/corpus"), PathBuf::from);
    let bulk = corpus.join("bulk");
    let use_corpus = benchmarking() && bulk.is_dir();
    let streams = if use_corpus {
        corpus_streams(&bulk)?
    } else {
        if benchmarking() {
            println!(
                "pipeline bench: SKIPPED corpus: {} not found; benching tests/fixtures/events",
                bulk.display()
            );
        }
        vec![fixture_events(&root.join("tests/fixtures/events"))?]
    };
    let sigma_sources = rule_sources(&corpus.join("sigma/rules"))?;
    if sigma_sources.is_empty() {
        println!(
            "pipeline bench: SKIPPED SigmaHQ rules: none under {}",
            corpus.display()
        );
    }

    let batches: Vec<SubscriptionBuilder> = streams.iter().flat_map(|s| cut(s)).collect();
    let payloads: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| b.payload_json().into_bytes())
        .collect();
    let limits = DecodeLimits::default();
    let gzipped: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| {
            let envelope: SubscriptionEnvelope = serde_json::from_slice(p).expect("built payload");
            decode_base64(&envelope.awslogs.data).expect("built payload")
        })
        .collect();
    let subscriptions: Vec<Vec<u8>> = gzipped
        .iter()
        .map(|gz| gunzip_bounded(gz, limits).expect("built payload"))
        .collect();
    let records: Vec<String> = streams.concat();

    let builtin = RuleSet::builtin().map_err(|e| e.to_string())?;
    let sigma = RuleSet::compile(&sigma_sources).map_err(|e| e.to_string())?;
    let combined_sources: Vec<RuleSource> =
        builtin_sources().into_iter().chain(sigma_sources).collect();
    let combined = RuleSet::compile(&combined_sources).map_err(|e| e.to_string())?;

    let mut input = Input {
        description: String::new(),
        events: records.len(),
        payloads,
        gzipped,
        subscriptions,
        records,
        no_rules: RuleSet::compile(&[]).map_err(|e| e.to_string())?,
        builtin,
        sigma,
        combined,
    };
    let alerts: Vec<String> = [
        ("built-in", &input.builtin),
        ("SigmaHQ", &input.sigma),
        ("both", &input.combined),
    ]
    .iter()
    .map(|(name, rules)| {
        format!(
            "{name} ({} rules) {}",
            rules.len(),
            full_pass(rules, &input.payloads)
        )
    })
    .collect();
    input.description = format!(
        "input: {} events ({}) in {} batches of <= 1 MiB; alerts per pass: {}",
        input.events,
        if use_corpus { "corpus" } else { "fixtures" },
        input.payloads.len(),
        alerts.join(", ")
    );
    if benchmarking() {
        write_batches(
            &root,
            &input,
            if use_corpus { "corpus" } else { "fixtures" },
        )?;
    }
    Ok(input)
}

/// Each `*.jsonl.gz` file's non-empty lines, in file order; one file = one log stream.
fn corpus_streams(bulk: &Path) -> Result<Vec<Vec<String>>, String> {
    let mut paths = files_ending(bulk, &[".jsonl.gz"])?;
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let mut text = String::new();
            let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect())
        })
        .collect()
}

/// The fixture events, one compact JSON record each.
fn fixture_events(dir: &Path) -> Result<Vec<String>, String> {
    let mut paths = files_ending(dir, &[".json"])?;
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(value.to_string())
        })
        .collect()
}

/// `*.yml`/`*.yaml` under `dir` (none when `dir` is absent), sorted.
fn rule_sources(dir: &Path) -> Result<Vec<RuleSource>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths = files_ending(dir, &[".yml", ".yaml"])?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(RuleSource {
                path: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn files_ending(dir: &Path, suffixes: &[&str]) -> Result<Vec<PathBuf>, String> {
    Ok(fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| suffixes.iter().any(|s| p.to_string_lossy().ends_with(s)))
        .collect())
}

/// Cuts one stream, in order, into batches of at most [`BATCH_BYTES`] of subscription JSON
/// (an event larger than that alone gets its own batch).
fn cut(messages: &[String]) -> Vec<SubscriptionBuilder> {
    let empty = SubscriptionBuilder::data_message().data_json().len();
    let mut batches = Vec::new();
    let (mut batch, mut count, mut size) = (SubscriptionBuilder::data_message(), 0, empty);
    for message in messages {
        // The log event exactly as `data_json` writes it (id, 13-digit timestamp, message).
        let entry = json!({"id": log_event_id(count), "timestamp": 1_795_000_000_000_i64, "message": message})
            .to_string()
            .len();
        if count > 0 && size + 1 + entry > BATCH_BYTES {
            let full = std::mem::replace(&mut batch, SubscriptionBuilder::data_message());
            batches.push((full, size));
            (count, size) = (0, empty);
        }
        size += entry + usize::from(count > 0);
        count += 1;
        batch = batch.messages([message.as_str()]);
    }
    if count > 0 {
        batches.push((batch, size));
    }
    batches
        .into_iter()
        .map(|(batch, size)| {
            assert_eq!(batch.data_json().len(), size, "batch size estimate");
            batch
        })
        .collect()
}

/// The whole function on every payload: decode, match, decide with stateful alerting
/// (in memory, fresh for each pass: correlations, first-seen, dedup, and matches of rules
/// that only feed a correlation, as the function decides them before publishing), then
/// render each alert's SNS texts (subject, email body, and the JSON alert serialised as
/// the SNS message does). Returns the alert count; panics if an event is skipped.
fn full_pass(rules: &RuleSet, payloads: &[Vec<u8>]) -> usize {
    let state = MemoryStore::new();
    let stateful = Stateful::new();
    let mut alerts = 0;
    let screen = rules.head_screen();
    for payload in payloads {
        let batch = parse_subscription_event_screened(payload, DecodeLimits::default(), screen)
            .expect("built payload");
        let mut outcome = pipeline::run(rules, batch);
        assert!(
            outcome.skipped.is_empty(),
            "skipped events: {:?}",
            outcome.skipped
        );
        let matches = outcome.take_matches();
        let decided = block_on(stateful.apply(rules, &state, matches, NOW)).expect("memory state");
        outcome.apply_state(decided);
        for alert in &outcome.alerts {
            divan::black_box((
                alert.subject(),
                alert.text_body(),
                alert.json_text_within(usize::MAX),
            ));
        }
        alerts += outcome.alerts.len();
    }
    alerts
}

/// Writes the batches and the built-in rules' metadata (for `bench/python_baseline.py`).
fn write_batches(root: &Path, input: &Input, source: &str) -> Result<(), String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let dir = target.join("bench-batches");
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io)?;
    }
    fs::create_dir_all(&dir).map_err(io)?;
    for (i, payload) in input.payloads.iter().enumerate() {
        fs::write(dir.join(format!("batch-{i:03}.json")), payload).map_err(io)?;
    }
    let rules: Vec<Value> = (input.builtin.rules().iter())
        .map(|r| {
            json!({"name": r.name, "id": r.id, "title": r.title, "severity": r.severity,
                   "description": r.description, "runbook": r.runbook, "tags": r.tags,
                   "falsepositives": r.falsepositives})
        })
        .collect();
    let manifest = json!({"source": source, "events": input.events, "batches": input.payloads.len(),
                          "builtin_rules": rules});
    fs::write(dir.join("manifest.json"), manifest.to_string()).map_err(io)?;
    println!(
        "wrote {} batches to {}",
        input.payloads.len(),
        dir.display()
    );
    Ok(())
}

/// (a) and its parts, each over every batch; throughput in events.
mod decode {
    use super::*;

    /// (a) Decode only: envelope JSON, base64, gunzip, subscription JSON, every record parsed.
    #[divan::bench]
    fn a_decode_only(bencher: Bencher) {
        let input = input();
        bencher.counter(ItemsCount::new(input.events)).bench(|| {
            let mut parsed = 0;
            for payload in &input.payloads {
                let batch = parse_subscription_event(payload, DecodeLimits::default())
                    .expect("built payload");
                for raw in &batch.records {
                    parsed += usize::from(parse_record(&raw.text).is_ok());
                }
            }
            assert_eq!(parsed, input.events);
        });
    }

    #[divan::bench]
    fn envelope_base64(bencher: Bencher) {
        let input = input();
        bencher.counter(ItemsCount::new(input.events)).bench(|| {
            for payload in &input.payloads {
                let envelope: SubscriptionEnvelope =
                    serde_json::from_slice(payload).expect("built payload");
                divan::black_box(decode_base64(&envelope.awslogs.data).expect("built payload"));
            }
        });
    }

    #[divan::bench]
    fn gunzip(bencher: Bencher) {
        let input = input();
        bencher.counter(ItemsCount::new(input.events)).bench(|| {
            for gz in &input.gzipped {
                divan::black_box(
                    gunzip_bounded(gz, DecodeLimits::default()).expect("built payload"),
                );
            }
        });
    }

    #[divan::bench]
    fn subscription_json(bencher: Bencher) {
        let input = input();
        bencher.counter(ItemsCount::new(input.events)).bench(|| {
            for json in &input.subscriptions {
                divan::black_box(parse_subscription_data(json).expect("built payload"));
            }
        });
    }

    #[divan::bench]
    fn record_parse(bencher: Bencher) {
        let input = input();
        bencher.counter(ItemsCount::new(input.events)).bench(|| {
            for record in &input.records {
                divan::black_box(parse_record(record).expect("corpus record"));
            }
        });
    }
}

/// The whole function (decode, match, render) over every batch; throughput in events.
mod pipeline_with {
    use super::*;

    /// The floor the function itself pays: decode, and the screen's read of each
    /// record's head. With no rule to match, no record is built.
    #[divan::bench]
    fn a_no_rules(bencher: Bencher) {
        let input = input();
        bencher
            .counter(ItemsCount::new(input.events))
            .bench(|| full_pass(&input.no_rules, &input.payloads));
    }

    #[divan::bench]
    fn b_builtin_rules(bencher: Bencher) {
        let input = input();
        bencher
            .counter(ItemsCount::new(input.events))
            .bench(|| full_pass(&input.builtin, &input.payloads));
    }

    #[divan::bench]
    fn c_sigmahq_rules(bencher: Bencher) {
        let input = input();
        bencher
            .counter(ItemsCount::new(input.events))
            .bench(|| full_pass(&input.sigma, &input.payloads));
    }

    #[divan::bench]
    fn d_builtin_and_sigmahq(bencher: Bencher) {
        let input = input();
        bencher
            .counter(ItemsCount::new(input.events))
            .bench(|| full_pass(&input.combined, &input.payloads));
    }
}

/// Start-up without a bundle: compiling the built-in rules' YAML (inline tests left out).
#[divan::bench]
fn rule_compile_builtin() -> RuleSet {
    RuleSet::compile_builtin_yaml().expect("built-in rules compile")
}

/// Start-up from a compiled bundle (the Lambda's rules layer, and the one `trailwatch
/// scan` embeds): loading the built-in rules without parsing their prose.
#[divan::bench]
fn rule_load_bundle(bencher: divan::Bencher) {
    let sources = trailwatch::rules::builtin_sources();
    let bundle = RuleSet::bundle(&sources).expect("built-in rules bundle");
    bencher.bench(|| RuleSet::from_bundle(&bundle).expect("bundle loads"));
}
