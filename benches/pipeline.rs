//! Throughput of the Lambda's hot path on real CloudTrail events, measured.
//!
//! Builds CloudWatch Logs subscription payloads (`{"awslogs":{"data":base64(gzip(json))}}`,
//! padded base64) from `../shared/corpus/bulk/*.jsonl.gz` before any timing, then times
//! whole passes over every payload: (a) decode only, and (b) decode → match → render with
//! the built-in rules, the SigmaHQ CloudTrail rules, and both. It also times rule
//! compilation (the cold-start cost) and writes the payloads to `target/bench-batches/`
//! so that `bench/python_baseline.py` processes the identical batches.
//!
//! `cargo bench --bench pipeline` for the full run, `-- --quick` for a fast one. Run
//! without `--bench` (as `cargo test --benches` does) it makes one untimed pass of each
//! scenario as a smoke test. See `bench/README.md` for what each number means.

// The same allocator the binaries use, so the figures are the Lambda's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::fs;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use flate2::{Compression, read::MultiGzDecoder, write::GzEncoder};
use serde_json::{Value, json};
use trailwatch::ingest::{
    DecodeLimits, SubscriptionEnvelope, decode_base64, gunzip_bounded, parse_subscription_data,
    parse_subscription_event,
};
use trailwatch::pipeline;
use trailwatch::record::parse_record;
use trailwatch::rules::{RuleSet, RuleSource, builtin_sources};

/// Default bound on one batch's decompressed subscription JSON: 1 MiB.
const DEFAULT_BATCH_BYTES: usize = 1024 * 1024;

/// Command-line options (`cargo bench` adds `--bench` itself).
struct Options {
    timed: bool,
    quick: bool,
    batch_bytes: usize,
    corpus: PathBuf,
    target: PathBuf,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut options = Options {
            timed: false,
            quick: false,
            batch_bytes: DEFAULT_BATCH_BYTES,
            corpus: root.join("../shared/corpus"),
            target: root.join("target"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => options.timed = true,
                "--quick" => options.quick = true,
                "--batch-bytes" => {
                    let text = value("--batch-bytes")?;
                    options.batch_bytes = text
                        .parse()
                        .map_err(|_| format!("--batch-bytes: not a number: {text}"))?;
                }
                "--corpus" => options.corpus = PathBuf::from(value("--corpus")?),
                "--target-dir" => options.target = PathBuf::from(value("--target-dir")?),
                "-h" | "--help" => {
                    return Err("usage: cargo bench --bench pipeline -- [--quick] \
                                [--batch-bytes N] [--corpus DIR] [--target-dir DIR]"
                        .into());
                }
                _ => eprintln!("pipeline bench: ignoring argument {arg:?}"),
            }
        }
        Ok(options)
    }

    /// (warm-up passes, timed passes).
    fn passes(&self) -> (usize, usize) {
        match (self.timed, self.quick) {
            (false, _) => (0, 1),
            (true, true) => (1, 5),
            (true, false) => (3, 21),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Preparing the input (untimed)
// ---------------------------------------------------------------------------------------

/// One corpus file's events, as the text lines CloudTrail writes to CloudWatch Logs.
struct Stream {
    name: String,
    events: Vec<String>,
}

fn load_corpus(bulk: &Path) -> Result<Vec<Stream>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(bulk)
        .map_err(|err| format!("{}: {err}", bulk.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    let mut streams = Vec::new();
    for path in files {
        let compressed = fs::read(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        let mut text = String::new();
        MultiGzDecoder::new(compressed.as_slice())
            .read_to_string(&mut text)
            .map_err(|err| format!("{}: {err}", path.display()))?;
        let events = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        streams.push(Stream {
            name: name.trim_end_matches(".jsonl.gz").to_owned(),
            events,
        });
    }
    Ok(streams)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `eventTime` (`2023-07-10T12:34:56Z`) as epoch milliseconds, the log event timestamp.
fn epoch_millis(event_time: &str) -> Option<i64> {
    let b = event_time.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |from: usize, to: usize| event_time.get(from..to)?.parse::<i64>().ok();
    let days = days_from_civil(num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let seconds = days * 86_400 + num(11, 13)? * 3_600 + num(14, 16)? * 60 + num(17, 19)?;
    Some(seconds * 1_000)
}

/// One log event of a subscription message: `{"id":...,"timestamp":...,"message":...}`.
fn log_event_json(index: usize, timestamp: i64, message: &str) -> String {
    // CloudWatch log-event ids are 56-digit decimal strings.
    let id = format!("{:020}{:036}", timestamp.max(0), index);
    format!(
        r#"{{"id":"{id}","timestamp":{timestamp},"message":{}}}"#,
        Value::String(message.to_owned())
    )
}

/// The batches, ready to hand to the function.
struct Prepared {
    /// Each batch's subscription event, `{"awslogs":{"data":"..."}}`, as bytes.
    payloads: Vec<Vec<u8>>,
    /// (stream, events, decompressed bytes) of each batch.
    shapes: Vec<(String, usize, usize)>,
    events: usize,
}

/// Splits each stream into `DATA_MESSAGE`s of at most `max_bytes` of JSON (a single
/// larger event still gets its own batch), in corpus order, and encodes them.
fn build_batches(streams: &[Stream], max_bytes: usize) -> Prepared {
    let mut prepared = Prepared {
        payloads: Vec::new(),
        shapes: Vec::new(),
        events: 0,
    };
    let mut index = 0;
    for stream in streams {
        let mut pending: Vec<String> = Vec::new();
        let mut owner = String::new();
        let mut region = String::new();
        let mut size = 0;
        let mut last_ts = 0;
        for message in &stream.events {
            let record: Value = serde_json::from_str(message).unwrap_or(Value::Null);
            let text = |key: &str| record.get(key).and_then(Value::as_str);
            let timestamp = text("eventTime").and_then(epoch_millis).unwrap_or(last_ts);
            last_ts = timestamp;
            let entry = log_event_json(index, timestamp, message);
            index += 1;
            if pending.is_empty() {
                owner = text("recipientAccountId")
                    .unwrap_or("111122223333")
                    .to_owned();
                region = text("awsRegion").unwrap_or("us-east-1").to_owned();
                size = header(&owner, &region).len() + 2;
            } else if size + entry.len() + 1 > max_bytes {
                prepared.push(&stream.name, &owner, &region, &pending);
                pending.clear();
                owner = text("recipientAccountId")
                    .unwrap_or("111122223333")
                    .to_owned();
                region = text("awsRegion").unwrap_or("us-east-1").to_owned();
                size = header(&owner, &region).len() + 2;
            }
            size += entry.len() + usize::from(!pending.is_empty());
            pending.push(entry);
        }
        if !pending.is_empty() {
            prepared.push(&stream.name, &owner, &region, &pending);
        }
    }
    prepared
}

/// The subscription message up to the opening bracket of `logEvents`, in the key order
/// CloudWatch Logs writes.
fn header(owner: &str, region: &str) -> String {
    let group = format!("aws-cloudtrail-logs-{owner}");
    let log_stream = format!("{owner}_CloudTrail_{region}");
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":{},"logGroup":{},"logStream":{},"subscriptionFilters":["trailwatch"],"logEvents":["#,
        Value::String(owner.to_owned()),
        Value::String(group),
        Value::String(log_stream)
    )
}

impl Prepared {
    fn push(&mut self, stream: &str, owner: &str, region: &str, entries: &[String]) {
        let mut data = header(owner, region);
        data.push_str(&entries.join(","));
        data.push_str("]}");
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(data.as_bytes()).expect("gzip into memory");
        let compressed = gz.finish().expect("gzip into memory");
        let encoded = base64::engine::general_purpose::STANDARD.encode(compressed);
        let payload = json!({ "awslogs": { "data": encoded } }).to_string();
        self.payloads.push(payload.into_bytes());
        self.shapes
            .push((stream.to_owned(), entries.len(), data.len()));
        self.events += entries.len();
    }
}

fn load_sigma_sources(dir: &Path) -> Result<Vec<RuleSource>, String> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|err| format!("{}: {err}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            )
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text =
                fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok(RuleSource {
                path: format!("sigma/rules/{name}"),
                text,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------

/// Durations of the timed passes, sorted.
struct Timing {
    samples: Vec<Duration>,
}

impl Timing {
    fn median(&self) -> Duration {
        let n = self.samples.len();
        if n % 2 == 1 {
            self.samples[n / 2]
        } else {
            (self.samples[n / 2 - 1] + self.samples[n / 2]) / 2
        }
    }

    fn min(&self) -> Duration {
        self.samples[0]
    }

    fn max(&self) -> Duration {
        self.samples[self.samples.len() - 1]
    }

    fn per_second(&self, count: usize) -> f64 {
        count as f64 / self.median().as_secs_f64()
    }

    fn to_json(&self, count: usize) -> Value {
        json!({
            "median_s": self.median().as_secs_f64(),
            "min_s": self.min().as_secs_f64(),
            "max_s": self.max().as_secs_f64(),
            "passes": self.samples.len(),
            "events_per_s": self.per_second(count),
        })
    }
}

/// Runs `pass` `warmup` times untimed, then `iterations` times timed.
fn measure(warmup: usize, iterations: usize, mut pass: impl FnMut() -> u64) -> Timing {
    for _ in 0..warmup {
        black_box(pass());
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            black_box(pass());
            start.elapsed()
        })
        .collect();
    samples.sort();
    Timing { samples }
}

/// Runs every pass `warmup` times untimed, then `iterations` rounds of one timed run of
/// each pass in turn; returns each pass's timing.
fn measure_interleaved(
    warmup: usize,
    iterations: usize,
    passes: &mut [Box<dyn FnMut() -> u64 + '_>],
) -> Vec<Timing> {
    for pass in passes.iter_mut() {
        for _ in 0..warmup {
            black_box(pass());
        }
    }
    let mut samples = vec![Vec::with_capacity(iterations); passes.len()];
    for _ in 0..iterations {
        for (pass, samples) in passes.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            black_box(pass());
            samples.push(start.elapsed());
        }
    }
    samples
        .into_iter()
        .map(|mut samples| {
            samples.sort();
            Timing { samples }
        })
        .collect()
}

/// (a) Decode only: envelope JSON, base64, gunzip, subscription JSON, and every message
/// parsed as a CloudTrail record. Returns the number of records parsed.
fn decode_pass(payloads: &[Vec<u8>]) -> u64 {
    let mut parsed = 0;
    for payload in payloads {
        let batch = parse_subscription_event(payload, DecodeLimits::default())
            .expect("bench payloads decode");
        for raw in &batch.records {
            if let Ok(record) = parse_record(&raw.text) {
                black_box(&record);
                parsed += 1;
            }
        }
    }
    parsed
}

/// The stages of decoding, in order; each stage row of the breakdown runs every stage up
/// to and including its own, so the difference between rows is the stage's cost.
const STAGES: [&str; 4] = [
    "envelope JSON + base64",
    "+ gunzip (bounded)",
    "+ subscription JSON",
    "+ parse every record (= a)",
];

/// Runs the first `depth` (1..=3) decoding stages on every payload, the same calls
/// `parse_subscription_event` makes, one at a time.
fn stage_pass(payloads: &[Vec<u8>], depth: usize) -> u64 {
    let limits = DecodeLimits::default();
    let mut total = 0;
    for payload in payloads {
        let envelope: SubscriptionEnvelope =
            serde_json::from_slice(payload).expect("bench payloads decode");
        let compressed = decode_base64(&envelope.awslogs.data).expect("bench payloads decode");
        if depth == 1 {
            total += compressed.len() as u64;
            continue;
        }
        let json = gunzip_bounded(&compressed, limits).expect("bench payloads decode");
        if depth == 2 {
            total += json.len() as u64;
            continue;
        }
        let batch = parse_subscription_data(&json).expect("bench payloads decode");
        total += batch.records.len() as u64;
        black_box(batch);
    }
    total
}

/// What one full pass produced.
#[derive(Default)]
struct PassResult {
    events: u64,
    skipped: u64,
    alerts_per_rule: BTreeMap<String, u64>,
    rendered_bytes: u64,
}

impl PassResult {
    fn alerts(&self) -> u64 {
        self.alerts_per_rule.values().sum()
    }
}

/// (b) The whole function: decode, match, and render every alert (SNS subject, email
/// body, JSON object serialized to text as it would be published).
fn full_pass(rules: &RuleSet, payloads: &[Vec<u8>], count_rules: bool) -> PassResult {
    let mut result = PassResult::default();
    for payload in payloads {
        let batch = parse_subscription_event(payload, DecodeLimits::default())
            .expect("bench payloads decode");
        let outcome = pipeline::run(rules, batch);
        result.events += outcome.events_processed;
        result.skipped += outcome.events_skipped();
        for alert in &outcome.alerts {
            let subject = alert.subject();
            let body = alert.text_body();
            let object = alert.to_json().to_string();
            result.rendered_bytes += (subject.len() + body.len() + object.len()) as u64;
            black_box((subject, body, object));
        }
        if count_rules {
            for (rule, n) in outcome.alerts_per_rule() {
                *result.alerts_per_rule.entry(rule.to_owned()).or_default() += n;
            }
        } else {
            *result.alerts_per_rule.entry(String::new()).or_default() +=
                outcome.alerts.len() as u64;
        }
    }
    result
}

/// Compiles `sources` once cold and then `iterations` more times.
fn compile_timed(
    sources: &[RuleSource],
    iterations: usize,
) -> Result<(RuleSet, Duration, Timing), String> {
    let start = Instant::now();
    let rules = RuleSet::compile(sources).map_err(|err| err.to_string())?;
    let cold = start.elapsed();
    let warm = measure(0, iterations, || {
        let again = RuleSet::compile(sources).expect("compiled once already");
        again.len() as u64
    });
    Ok((rules, cold, warm))
}

// ---------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1_000.0)
}

struct Scenario {
    key: &'static str,
    label: &'static str,
    /// (rule count, first compile, repeated compiles).
    rules: (usize, Duration, Timing),
    timing: Timing,
    result: PassResult,
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    fs::write(path, contents).map_err(|err| format!("{}: {err}", path.display()))
}

/// Writes the batches and what Python needs to replay them (built-in rule metadata, and
/// the Rust alert counts it must reproduce).
fn write_batches(
    dir: &Path,
    prepared: &Prepared,
    builtin: &RuleSet,
    builtin_counts: &BTreeMap<String, u64>,
    batch_bytes: usize,
) -> Result<(), String> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    let mut batches = Vec::new();
    for (i, (payload, (stream, events, decompressed))) in
        prepared.payloads.iter().zip(&prepared.shapes).enumerate()
    {
        let file = format!("batch-{i:03}.json");
        write_file(&dir.join(&file), payload)?;
        batches.push(json!({
            "file": file, "stream": stream, "events": events,
            "decompressed_bytes": decompressed, "payload_bytes": payload.len(),
        }));
    }
    let rules: Vec<Value> = builtin
        .rules()
        .iter()
        .map(|rule| {
            json!({
                "name": rule.name, "id": rule.id, "title": rule.title,
                "severity": rule.severity, "description": rule.description,
                "runbook": rule.runbook, "tags": rule.tags,
                "falsepositives": rule.falsepositives,
            })
        })
        .collect();
    let manifest = json!({
        "batch_bytes_limit": batch_bytes,
        "events": prepared.events,
        "batches": batches,
        "builtin_rules": rules,
        "rust_builtin_alerts_per_rule": builtin_counts,
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|err| err.to_string())?;
    write_file(&dir.join("manifest.json"), text.as_bytes())
}

fn run() -> Result<(), String> {
    let options = Options::parse()?;
    let bulk = options.corpus.join("bulk");
    let sigma_dir = options.corpus.join("sigma/rules");
    if !bulk.is_dir() || !sigma_dir.is_dir() {
        println!(
            "pipeline bench: SKIPPED: corpus not found at {} (needs bulk/*.jsonl.gz and sigma/rules/)",
            options.corpus.display()
        );
        return Ok(());
    }
    let (warmup, iterations) = options.passes();
    let compile_iterations = match (options.timed, options.quick) {
        (false, _) => 1,
        (true, true) => 3,
        (true, false) => 11,
    };

    // Cold start first, before anything else touches the rule engine.
    let builtin_src = builtin_sources();
    let sigma_src = load_sigma_sources(&sigma_dir)?;
    let combined_src: Vec<RuleSource> = builtin_src.iter().chain(&sigma_src).cloned().collect();
    let (builtin, b_cold, b_warm) = compile_timed(&builtin_src, compile_iterations)?;
    let (sigma, s_cold, s_warm) = compile_timed(&sigma_src, compile_iterations)?;
    let (combined, c_cold, c_warm) = compile_timed(&combined_src, compile_iterations)?;

    let streams = load_corpus(&bulk)?;
    let prepared = build_batches(&streams, options.batch_bytes);
    let events = prepared.events;
    let payloads = &prepared.payloads;

    // Sanity passes (untimed): exact per-rule counts, and every event must parse.
    let builtin_counts = full_pass(&builtin, payloads, true);
    if builtin_counts.events as usize != events || builtin_counts.skipped != 0 {
        return Err(format!(
            "{} of {events} events processed, {} skipped",
            builtin_counts.events, builtin_counts.skipped
        ));
    }

    // All timed passes run round-robin (a, the decode stages, b1, b2, b3, a, ...), so
    // that load from other processes falls on every scenario alike.
    let rule_sets = [
        (
            "builtin",
            "b1 full, built-in rules",
            &builtin,
            b_cold,
            b_warm,
        ),
        ("sigmahq", "b2 full, SigmaHQ rules", &sigma, s_cold, s_warm),
        (
            "combined",
            "b3 full, built-in + SigmaHQ",
            &combined,
            c_cold,
            c_warm,
        ),
    ];
    let mut passes: Vec<Box<dyn FnMut() -> u64 + '_>> = vec![Box::new(|| decode_pass(payloads))];
    for depth in 1..STAGES.len() {
        passes.push(Box::new(move || stage_pass(payloads, depth)));
    }
    for &(_, _, rules, _, _) in &rule_sets {
        passes.push(Box::new(move || {
            let pass = full_pass(rules, payloads, false);
            pass.rendered_bytes + pass.alerts()
        }));
    }
    let mut timings = measure_interleaved(warmup, iterations, &mut passes).into_iter();
    let decode = timings.next().expect("one timing per pass");
    let stages: Vec<Timing> = timings.by_ref().take(STAGES.len() - 1).collect();
    let scenarios: Vec<Scenario> = rule_sets
        .into_iter()
        .zip(timings)
        .map(|((key, label, rules, cold, warm), timing)| Scenario {
            key,
            label,
            rules: (rules.len(), cold, warm),
            timing,
            result: full_pass(rules, payloads, true),
        })
        .collect();

    let mut stage_timings = stages;
    stage_timings.push(Timing {
        samples: decode.samples.clone(),
    });
    let report = Report {
        options: &options,
        corpus_files: streams.len(),
        prepared: &prepared,
        warmup,
        iterations,
        decode,
        stages: stage_timings,
        scenarios,
    };
    report.print();
    if !options.timed {
        println!("\nsmoke test ok; run `cargo bench --bench pipeline` for figures");
        return Ok(());
    }

    let batch_dir = options.target.join("bench-batches");
    write_batches(
        &batch_dir,
        &prepared,
        &builtin,
        &builtin_counts.alerts_per_rule,
        options.batch_bytes,
    )?;
    let results_path = options.target.join("bench-results/rust.json");
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(|err| err.to_string())?;
    write_file(&results_path, text.as_bytes())?;
    println!(
        "\nwrote {} (payloads for bench/python_baseline.py) and {}",
        batch_dir.display(),
        results_path.display()
    );
    Ok(())
}

/// Everything one run measured.
struct Report<'a> {
    options: &'a Options,
    corpus_files: usize,
    prepared: &'a Prepared,
    warmup: usize,
    iterations: usize,
    decode: Timing,
    /// Cumulative decode stages, the last one being `decode` itself.
    stages: Vec<Timing>,
    scenarios: Vec<Scenario>,
}

impl Report<'_> {
    fn mode(&self) -> &'static str {
        match (self.options.timed, self.options.quick) {
            (false, _) => "smoke test, one untimed pass: run through `cargo bench` for figures",
            (true, true) => "quick",
            (true, false) => "full",
        }
    }

    fn print(&self) {
        let prepared = self.prepared;
        let events = prepared.events;
        let decompressed: usize = prepared.shapes.iter().map(|s| s.2).sum();
        let payload_bytes: usize = prepared.payloads.iter().map(Vec::len).sum();
        println!("trailwatch pipeline bench ({})", self.mode());
        println!(
            "input: {events} CloudTrail events from {} corpus files -> {} subscription payloads \
             (one DATA_MESSAGE each, <= {} KiB of decompressed JSON, one corpus file = one log stream)",
            self.corpus_files,
            prepared.payloads.len(),
            self.options.batch_bytes / 1024,
        );
        println!(
            "       {:.2} MB of subscription JSON, {:.2} MB of payloads (padded base64 of gzip)",
            decompressed as f64 / 1e6,
            payload_bytes as f64 / 1e6
        );
        for (i, (stream, n, bytes)) in prepared.shapes.iter().enumerate() {
            println!(
                "       batch {i:>2}: {n:>4} events, {bytes:>9} bytes decompressed, {:>8} bytes payload  [{stream}]",
                prepared.payloads[i].len()
            );
        }
        if self.options.timed {
            self.print_timings();
        }
        self.print_alerts();
    }

    fn print_timings(&self) {
        let events = self.prepared.events;
        println!(
            "timing: {} warm-up + {} timed passes over all payloads, scenarios run round-robin; \
             median reported",
            self.warmup, self.iterations
        );
        println!(
            "threads: 1 (the pipeline is single-threaded); {} CPUs visible",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        println!();
        let row = |label: &str, rules: &str, timing: &Timing, alerts: &str, ratio: f64| {
            println!(
                "{label:<30} {rules:>6} {:>10} {:>14} {:>17} {alerts:>8} {ratio:>6.2}",
                millis(timing.median()),
                thousands(timing.per_second(events)),
                format!("{}..{}", millis(timing.min()), millis(timing.max())),
            );
        };
        println!(
            "{:<30} {:>6} {:>10} {:>14} {:>17} {:>8} {:>6}",
            "scenario", "rules", "median ms", "events/s", "min..max ms", "alerts", "b/a"
        );
        let decode_rate = self.decode.per_second(events);
        row("a  decode only", "-", &self.decode, "-", 1.0);
        for s in &self.scenarios {
            let ratio = s.timing.per_second(events) / decode_rate;
            let alerts = s.result.alerts().to_string();
            row(s.label, &s.rules.0.to_string(), &s.timing, &alerts, ratio);
        }
        println!("b/a = the row's events/s divided by decode-only events/s");

        println!();
        println!(
            "{:<30} {:>10} {:>10} {:>14}",
            "decode breakdown (cumulative)", "median ms", "stage ms", "events/s"
        );
        let mut previous = Duration::ZERO;
        for (name, timing) in STAGES.iter().zip(&self.stages) {
            let median = timing.median();
            println!(
                "{name:<30} {:>10} {:>10} {:>14}",
                millis(median),
                millis(median.saturating_sub(previous)),
                thousands(timing.per_second(events))
            );
            previous = median;
        }

        println!();
        println!(
            "{:<30} {:>6} {:>16} {:>20}",
            "rule compile (cold start)", "rules", "first compile ms", "median recompile ms"
        );
        for s in &self.scenarios {
            let (n, cold, warm) = &s.rules;
            println!(
                "{:<30} {n:>6} {:>16} {:>20}",
                s.label,
                millis(*cold),
                millis(warm.median())
            );
        }
    }

    fn print_alerts(&self) {
        println!();
        println!("alerts per pass, per rule:");
        for s in &self.scenarios {
            let list: Vec<String> = s
                .result
                .alerts_per_rule
                .iter()
                .map(|(rule, n)| format!("{rule}={n}"))
                .collect();
            println!(
                "  {:<9} {:>4}: {}",
                s.key,
                s.result.alerts(),
                list.join(", ")
            );
        }
    }

    fn to_json(&self) -> Value {
        let events = self.prepared.events;
        let decode_rate = self.decode.per_second(events);
        let mut results = json!({
            "mode": self.mode(),
            "events": events,
            "batches": self.prepared.payloads.len(),
            "batch_bytes_limit": self.options.batch_bytes,
            "decompressed_bytes": self.prepared.shapes.iter().map(|s| s.2).sum::<usize>(),
            "warmup": self.warmup,
            "iterations": self.iterations,
            "decode": self.decode.to_json(events),
            "decode_stages": STAGES
                .iter()
                .zip(&self.stages)
                .map(|(name, t)| json!({ "stage": name, "median_s": t.median().as_secs_f64() }))
                .collect::<Vec<_>>(),
        });
        for s in &self.scenarios {
            let (n, cold, warm) = &s.rules;
            let mut entry = s.timing.to_json(events);
            entry["rules"] = json!(n);
            entry["compile_cold_s"] = json!(cold.as_secs_f64());
            entry["compile_median_s"] = json!(warm.median().as_secs_f64());
            entry["alerts"] = json!(s.result.alerts());
            entry["alerts_per_rule"] = json!(s.result.alerts_per_rule);
            entry["rendered_bytes"] = json!(s.result.rendered_bytes);
            entry["ratio_to_decode"] = json!(s.timing.per_second(events) / decode_rate);
            results[s.key] = entry;
        }
        results
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pipeline bench: {message}");
            ExitCode::FAILURE
        }
    }
}
