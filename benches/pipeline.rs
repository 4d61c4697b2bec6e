//! Stage benchmarks of the Lambda's hot path (divan), on real CloudTrail events.
//!
//! Owns the input preparation and the per-stage benches; timing, statistics and argument
//! parsing are divan's. Before any timing, every `*.jsonl.gz` of the corpus
//! (`$TRAILWATCH_CORPUS`, default `../shared/corpus`) is cut in order into CloudWatch Logs
//! `DATA_MESSAGE`s of at most 1 MiB decompressed, built with
//! [`trailwatch::ingest::SubscriptionBuilder`]. Without the corpus it prints a `SKIPPED`
//! line and benches one batch of `tests/fixtures/events` instead. Under `cargo bench` it
//! also writes the batches to `target/bench-batches/` for the whole-process comparison
//! (`scripts/bench.sh`), and, from the corpus only, the same corpus 30 times over as 30
//! consecutive days to `target/bench-batches-x30/` (issue #9's scale); under `cargo test`
//! it runs each bench once on the fixtures and writes nothing.
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
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use trailwatch::ingest::{
    DecodeLimits, FIRST_TIMESTAMP, SubscriptionBuilder, SubscriptionEnvelope, decode_base64,
    gunzip_bounded, log_event_id, parse_subscription_data, parse_subscription_event,
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

/// Copies of the corpus in the set at issue #9's scale (30 x 3,058 = 91,740 records).
const COPIES: u32 = 30;

/// A day in milliseconds: how far each copy's log-event timestamps move.
const DAY_MS: i64 = 86_400_000;

/// CloudTrail's `eventTime`; one that does not match it is copied unchanged.
const EVENT_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

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

    let batches: Vec<SubscriptionBuilder> = streams
        .iter()
        .flat_map(|s| cut(s, FIRST_TIMESTAMP, |_, in_batch| log_event_id(in_batch)))
        .collect();
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
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let rules: Vec<Value> = (input.builtin.rules().iter())
            .map(|r| {
                json!({"name": r.name, "id": r.id, "title": r.title, "severity": r.severity,
                       "description": r.description, "runbook": r.runbook, "tags": r.tags,
                       "falsepositives": r.falsepositives})
            })
            .collect();
        let source = if use_corpus { "corpus" } else { "fixtures" };
        let dir = target.join("bench-batches");
        write_batches(&dir, &input.payloads, input.events, source, &rules)?;
        let dir = target.join("bench-batches-x30");
        if use_corpus {
            let payloads = copies(&streams);
            let events = streams.iter().map(Vec::len).sum::<usize>() * COPIES as usize;
            write_batches(&dir, &payloads, events, "corpus x30", &rules)?;
        } else if dir.exists() {
            // A set from an earlier run on the corpus would be timed as if current.
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            println!(
                "pipeline bench: SKIPPED x30 set: no corpus; removed {}",
                dir.display()
            );
        }
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
/// (an event larger than that alone gets its own batch). `id(i, j)` is the log-event id of
/// the stream's `i`th message, the `j`th of its batch: a [`log_event_id`], 56 characters.
fn cut(
    messages: &[String],
    first_timestamp: i64,
    id: impl Fn(usize, usize) -> String,
) -> Vec<SubscriptionBuilder> {
    let new_batch = || SubscriptionBuilder::data_message().first_timestamp(first_timestamp);
    let empty = new_batch().data_json().len();
    let mut batches = Vec::new();
    let (mut batch, mut count, mut size) = (new_batch(), 0, empty);
    for (i, message) in messages.iter().enumerate() {
        // The log event exactly as `data_json` writes it (id, 13-digit timestamp, message).
        let entry =
            json!({"id": log_event_id(count), "timestamp": first_timestamp, "message": message})
                .to_string()
                .len();
        if count > 0 && size + 1 + entry > BATCH_BYTES {
            let full = std::mem::replace(&mut batch, new_batch());
            batches.push((full, size));
            (count, size) = (0, empty);
        }
        size += entry + usize::from(count > 0);
        batch = batch.event(id(i, count), message.as_str());
        count += 1;
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

/// Writes `batch-NNN.json` files and a `manifest.json` with the event count and the
/// built-in rules' metadata (for `bench/python_baseline.py`) to `dir`, emptied first.
fn write_batches(
    dir: &Path,
    payloads: &[Vec<u8>],
    events: usize,
    source: &str,
    rules: &[Value],
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io)?;
    }
    fs::create_dir_all(dir).map_err(io)?;
    for (i, payload) in payloads.iter().enumerate() {
        fs::write(dir.join(format!("batch-{i:03}.json")), payload).map_err(io)?;
    }
    let manifest = json!({"source": source, "events": events, "batches": payloads.len(),
                          "builtin_rules": rules});
    fs::write(dir.join("manifest.json"), manifest.to_string()).map_err(io)?;
    println!("wrote {} batches to {}", payloads.len(), dir.display());
    Ok(())
}

/// The payloads of the set at issue #9's scale: the streams [`COPIES`] times over, as
/// consecutive days. Copy 0 is the corpus as is; in copy `k` each record's `eventID`
/// starts with `k` in 8 hex digits and its `eventTime` is `k` days later (see
/// [`Template`]), and the log-event timestamps are `k` days later too. Each copy of each
/// stream is cut as the stage benches' batches are; log-event ids are unique across the
/// set. In order: copy 0 of every stream, then copy 1, and so on. Built on every CPU:
/// about 90 thousand records gzipped.
fn copies(streams: &[Vec<String>]) -> Vec<Vec<u8>> {
    let templates: Vec<Vec<Template>> = streams
        .iter()
        .map(|s| s.iter().map(|r| Template::new(r)).collect())
        .collect();
    // (copy, stream, id of its first log event), in the set's order.
    let mut jobs = Vec::new();
    let mut first_id = 0;
    for copy in 0..COPIES {
        for (stream, records) in streams.iter().enumerate() {
            jobs.push((copy, stream, first_id));
            first_id += records.len();
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut payloads = Vec::new();
    let Ok(()) = trailwatch::in_order::map_in_order::<_, _, std::convert::Infallible>(
        &jobs,
        cpus,
        4 * cpus,
        |&(copy, stream, first_id)| {
            let messages: Vec<String> = if copy == 0 {
                streams[stream].clone()
            } else {
                templates[stream].iter().map(|t| t.render(copy)).collect()
            };
            let first_timestamp = FIRST_TIMESTAMP + i64::from(copy) * DAY_MS;
            (cut(&messages, first_timestamp, |i, _| {
                log_event_id(first_id + i)
            })
            .iter())
            .map(|batch| batch.payload_json().into_bytes())
            .collect::<Vec<_>>()
        },
        |_, _, built| {
            payloads.append(built);
            Ok(())
        },
    );
    payloads
}

/// One corpus record and where its top-level `eventID` and `eventTime` strings are, so
/// that each copy rewrites those two values and keeps every other byte (key order too).
struct Template<'a> {
    text: &'a str,
    /// `(start, end, value)` of each value to rewrite, in text order.
    edits: Vec<(usize, usize, Edit)>,
}

enum Edit {
    /// A string `eventID`: its first 8 characters become the copy's number in hex.
    Id(String),
    /// An `eventTime` in [`EVENT_TIME`]'s format: the copy's number of days later.
    Time(PrimitiveDateTime),
}

/// The two top-level fields a copy rewrites, as their JSON text within the record.
#[derive(Deserialize)]
struct Rewritten<'a> {
    #[serde(rename = "eventID", borrow)]
    id: Option<&'a RawValue>,
    #[serde(rename = "eventTime", borrow)]
    time: Option<&'a RawValue>,
}

impl<'a> Template<'a> {
    fn new(text: &'a str) -> Template<'a> {
        let mut edits = Vec::new();
        if let Ok(fields) = serde_json::from_str::<Rewritten>(text) {
            let string = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).ok();
            // A borrowed RawValue is a slice of `text`.
            let span = |raw: &RawValue| {
                let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                (start, start + raw.get().len())
            };
            if let Some(raw) = fields.id
                && let Some(id) = string(raw)
            {
                let (start, end) = span(raw);
                edits.push((start, end, Edit::Id(id)));
            }
            if let Some(raw) = fields.time
                && let Some(time) = string(raw)
                && let Ok(time) = PrimitiveDateTime::parse(&time, EVENT_TIME)
            {
                let (start, end) = span(raw);
                edits.push((start, end, Edit::Time(time)));
            }
        }
        edits.sort_unstable_by_key(|(start, _, _)| *start);
        Template { text, edits }
    }

    fn render(&self, copy: u32) -> String {
        let mut out = String::with_capacity(self.text.len() + 8);
        let mut at = 0;
        for (start, end, edit) in &self.edits {
            out.push_str(&self.text[at..*start]);
            let value = match edit {
                Edit::Id(id) => {
                    let rest = id.char_indices().nth(8).map_or("", |(i, _)| &id[i..]);
                    format!("{copy:08x}{rest}")
                }
                Edit::Time(time) => (*time + time::Duration::days(copy.into()))
                    .format(EVENT_TIME)
                    .expect("a parsed time formats"),
            };
            out.push_str(&serde_json::to_string(&value).expect("a string serialises"));
            at = *end;
        }
        out.push_str(&self.text[at..]);
        out
    }
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
