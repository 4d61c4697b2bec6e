//! The `trailwatch` CLI: scan CloudTrail logs locally through the same pipeline the
//! Lambda runs, and lint, test and list rule files. It owns reading files, printing and
//! exit codes (0 ok, 1 alerts with `--fail-on-alert` or failed rule tests, 2 unreadable
//! input or rule errors); everything else is the library.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use trailwatch::alert::{AccountNames, Alert};
use trailwatch::in_order;
use trailwatch::ingest::{self, DecodeLimits, IngestError};
use trailwatch::pipeline::{self, Outcome};
use trailwatch::rules::{
    Expectation, InlineTest, InlineTestFailure, InlineTestReport, Rule, RuleLoadError, RuleSet,
    RuleSource, Severity,
};
use trailwatch::state::{MemoryStore, block_on};
use trailwatch::stateful::Stateful;

/// Real-time CloudTrail alerting: Sigma rules over CloudTrail events.
#[derive(Parser)]
#[command(name = "trailwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Match CloudTrail logs against the rules and print alerts.
    ///
    /// Reads CloudWatch Logs subscription payloads (encoded or decoded), CloudTrail S3
    /// archive files ({"Records":[...]}), JSON arrays and JSON Lines, gzipped or not;
    /// the format is detected from the content. `-` reads standard input.
    Scan(ScanArgs),
    /// Work with rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Args)]
struct RuleDirs {
    /// Load rules from this directory or file instead of the built-in rules (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

#[derive(Args)]
struct ScanArgs {
    #[command(flatten)]
    rules: RuleDirs,
    /// Output format for alerts on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit with status 1 when any alert was produced.
    #[arg(long)]
    fail_on_alert: bool,
    /// Print every rule match as it is: no correlations, first-seen or dedup windows
    /// (which `scan` otherwise runs in memory, as the Lambda runs them on its table).
    #[arg(long)]
    no_state: bool,
    /// Name accounts in alerts: `111122223333=prod,444455556666=staging`.
    #[arg(long, value_name = "MAP", default_value = "")]
    account_names: String,
    /// Largest input accepted after decompression, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES)]
    max_bytes: usize,
    /// Inputs read and matched at once (default: one per CPU, at most 8: each holds up
    /// to --max-bytes while it is decoded). Alerts print in input order, and stateful
    /// alerting sees inputs in that order, whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// Input files (`-` for standard input).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A readable block per alert (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
    /// The SNS subject and body exactly as the Lambda publishes them.
    Email,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check rule files and report every problem as path:line: reason.
    Lint {
        /// Rule directories or files (default: the built-in rules).
        dirs: Vec<PathBuf>,
    },
    /// Run every rule's inline `tests:` and report each failure.
    Test {
        /// Rule directories or files (default: the built-in rules).
        dirs: Vec<PathBuf>,
        /// Also write a JUnit XML report to FILE: one testsuite per rule, one testcase
        /// per inline test ("rule-name: test name").
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// List the rules: name, level, title and file.
    List {
        #[command(flatten)]
        rules: RuleDirs,
        /// Output format: a line per rule, a JSON array, or a Markdown table.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Lint the rules and write them as one compiled bundle (what the Lambda's rules
    /// layer holds: it loads several times faster than the YAML files).
    Compile {
        /// Rule directories or files (default: the built-in rules).
        dirs: Vec<PathBuf>,
        /// Where to write the bundle (a directory gets `rules.bundle.json` inside).
        #[arg(long, short, value_name = "PATH")]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    /// One line per rule: name, level, title and file, in load order.
    Text,
    /// One JSON array of {name, level, title, tags, cis, attack, path, tests}.
    Json,
    /// A Markdown table sorted by name (what `rules/CATALOG.md` holds).
    Markdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::Lint { dirs }) => lint(&dirs),
        Command::Rules(RulesCommand::Test { dirs, junit }) => test_rules(&dirs, junit.as_deref()),
        Command::Rules(RulesCommand::List { rules, format }) => list(&rules.dirs, format),
        Command::Rules(RulesCommand::Compile { dirs, output }) => compile(&dirs, &output),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => {
            // `trailwatch scan ... | head -1`: the reader has all it wanted.
            ExitCode::SUCCESS
        }
        Err(err) => {
            if let Some(load) = err.downcast_ref::<RuleLoadError>() {
                for problem in &load.0 {
                    eprintln!("{problem}");
                }
                eprintln!("trailwatch: {} problem(s) in rule files", load.0.len());
            } else {
                eprintln!("trailwatch: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}

/// True when writing to standard output failed because its reader went away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn load_sources(dirs: &[PathBuf]) -> Result<Vec<RuleSource>> {
    if dirs.is_empty() {
        let sources = trailwatch::rules::builtin_sources();
        anyhow::ensure!(
            !sources.is_empty(),
            "this build has no built-in rules (built without the `embedded-rules` feature): pass --rules DIR"
        );
        return Ok(sources);
    }
    let mut sources = Vec::new();
    for dir in dirs {
        sources.extend(trailwatch::rules::read_rule_dir(dir)?);
    }
    Ok(sources)
}

fn load_rules(dirs: &[PathBuf]) -> Result<RuleSet> {
    Ok(RuleSet::compile(&load_sources(dirs)?)?)
}

fn read_input(path: &str) -> Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}

/// The default `--jobs` on a machine with many CPUs: each job may hold an input of up to
/// `--max-bytes` (32 MiB by default) decompressed while it decodes it.
const MAX_DEFAULT_JOBS: usize = 8;

fn scan(args: ScanArgs) -> Result<ExitCode> {
    // The built-in rules without their inline tests: matching never needs them, and
    // parsing them was most of a scan's start-up.
    let rules = if args.rules.dirs.is_empty() {
        let rules = RuleSet::builtin()?;
        anyhow::ensure!(
            !rules.is_empty(),
            "this build has no built-in rules (built without the `embedded-rules` feature): pass --rules DIR"
        );
        rules
    } else {
        load_rules(&args.rules.dirs)?
    };
    let limits = DecodeLimits {
        max_decompressed_bytes: args.max_bytes,
    };
    let colour = args.format == Format::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let account_names = AccountNames::parse(&args.account_names)?;
    // Correlations, first-seen and dedup run on the events' own times, in memory, with
    // the Lambda's semantics: a backtest over archives gives the alerts live would have.
    let state = MemoryStore::new();
    let stateful = Stateful::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Buffered: one write per 64 KiB, not per line (a replay prints thousands of alerts).
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // Counts only: a replay of months of archives keeps no alert once it is printed
    // (what stays is the stateful rules' in-memory state).
    let mut total = ScanTotals::default();
    let mut skip_lines = Vec::new();
    let mut unreadable_inputs = 0;
    let jobs = match args.jobs {
        // Standard input named twice: the first read takes it all, as in input order.
        _ if args.paths.iter().filter(|path| *path == "-").count() > 1 => 1,
        Some(jobs) => usize::from(jobs),
        None => {
            std::thread::available_parallelism().map_or(1, |cpus| cpus.get().min(MAX_DEFAULT_JOBS))
        }
    };
    // Each input is read, decoded and matched by one of `jobs` threads (this one among
    // them); what follows in input order on this thread (stateful alerting, printing)
    // is what depends on the order.
    let screen = rules.head_screen();
    let read_and_match = |path: &String| -> Result<Outcome> {
        let batch = ingest::parse_input_screened(read_input(path)?, limits, screen)?;
        Ok(pipeline::run(&rules, batch))
    };
    // The window: how far work may run ahead of the input being printed. When this
    // thread fell behind (it once ran beside `jobs` workers, preempted by them), a window
    // of twice the jobs left them stalled waiting for it: a scan of the corpus 30 times
    // over (91,740 events) on 2 CPUs took 1.17x as long as at four times the jobs.
    in_order::map_in_order(
        &args.paths,
        jobs,
        4 * jobs,
        read_and_match,
        |_, path, read| -> Result<()> {
            let outcome = match read {
                Ok(outcome) => outcome,
                Err(err) => {
                    // The alerts of earlier inputs first, as an unbuffered scan would show.
                    stdout.flush()?;
                    let hint = match err.downcast_ref::<IngestError>() {
                        Some(IngestError::TooLarge { .. }) => " (raise it with --max-bytes)",
                        _ => "",
                    };
                    eprintln!("trailwatch: {path}: {err:#}{hint}");
                    unreadable_inputs += 1;
                    return Ok(());
                }
            };
            if !args.no_state {
                let matches = outcome.take_matches();
                let decided = block_on(stateful.apply(&rules, &state, matches, now))
                    .context("in-memory state")?;
                outcome.apply_state(decided);
            }
            for alert in &mut outcome.alerts {
                account_names.name(alert);
            }
            for alert in &outcome.alerts {
                match args.format {
                    Format::Text => write_text_alert(&mut stdout, alert, colour)?,
                    Format::Json => writeln!(stdout, "{}", alert_json_line(alert))?,
                    Format::Email => writeln!(
                        stdout,
                        "Subject: {}\n\n{}\n{EMAIL_SEPARATOR}\n",
                        alert.subject(),
                        alert.text_body(),
                    )?,
                }
            }
            skip_lines.extend(
                outcome
                    .skipped
                    .iter()
                    .take(MAX_SKIPS_SHOWN.saturating_sub(skip_lines.len()))
                    .map(|skipped| format!("{path}: {}: {}", skipped.id, skipped.reason)),
            );
            total.add(outcome);
            Ok(())
        },
    )?;
    stdout.flush()?;
    print_summary(&total, &skip_lines, args.paths.len(), unreadable_inputs);
    Ok(if unreadable_inputs > 0 {
        ExitCode::from(2)
    } else if args.fail_on_alert && total.alerts > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The line after each alert in `--format email`.
const EMAIL_SEPARATOR: &str =
    "========================================================================";

/// The JSON line for an alert: the alert object without the bulky rule prose.
fn alert_json_line(alert: &Alert) -> String {
    let mut value = alert.to_json();
    if let Some(object) = value.as_object_mut() {
        for key in ["description", "runbook", "falsepositives"] {
            object.shift_remove(key);
        }
    }
    value.to_string()
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "\x1b[1;97;41m",
        Severity::High => "\x1b[1;31m",
        Severity::Medium => "\x1b[1;33m",
        Severity::Low => "\x1b[1;36m",
        Severity::Informational => "\x1b[1m",
    }
}

fn write_text_alert(out: &mut impl Write, alert: &Alert, colour: bool) -> Result<()> {
    let (on, off, dim) = if colour {
        (severity_colour(alert.severity), "\x1b[0m", "\x1b[2m")
    } else {
        ("", "", "")
    };
    let event = &alert.event;
    let level = alert.severity.as_str().to_uppercase();
    writeln!(
        out,
        "{on}{level}{off} {}  {dim}[{}]{off}",
        alert.title, alert.rule
    )?;
    let outcome = match &event.error_code {
        Some(code) => format!(
            "failed: {code}{}",
            event
                .error_message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        None => "succeeded".to_owned(),
    };
    writeln!(
        out,
        "  {} on {} {outcome}",
        event.event_name, event.event_source
    )?;
    writeln!(
        out,
        "  who:     {} ({})",
        event.actor,
        if event.actor_type.is_empty() {
            "?"
        } else {
            &event.actor_type
        }
    )?;
    writeln!(
        out,
        "  where:   account {} region {} from {}",
        or_dash(&event.account_id),
        or_dash(&event.region),
        or_dash(&event.source_ip)
    )?;
    writeln!(out, "  when:    {}", or_dash(&event.event_time))?;
    writeln!(out, "  event:   {}", or_dash(&event.event_id))?;
    writeln!(out)?;
    Ok(())
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

const MAX_SKIPS_SHOWN: usize = 20;

/// What a scan found over all its inputs, as counts.
#[derive(Debug, Default)]
struct ScanTotals {
    events_processed: u64,
    events_skipped: u64,
    alerts: u64,
    suppressed: usize,
    deduplicated: usize,
    alerts_per_rule: std::collections::BTreeMap<String, u64>,
}

impl ScanTotals {
    fn add(&mut self, outcome: &Outcome) {
        self.events_processed += outcome.events_processed;
        self.events_skipped += outcome.events_skipped();
        self.alerts += outcome.alerts.len() as u64;
        self.suppressed += outcome.suppressed.len();
        self.deduplicated += outcome.deduplicated.len();
        for (rule, count) in outcome.alerts_per_rule() {
            *self.alerts_per_rule.entry(rule.to_owned()).or_default() += count;
        }
    }
}

fn print_summary(
    total: &ScanTotals,
    skip_lines: &[String],
    inputs: usize,
    unreadable_inputs: usize,
) {
    eprintln!(
        "trailwatch: {} event(s) read from {} input(s): {} processed, {} skipped; {} alert(s){}{}",
        total.events_processed + total.events_skipped,
        inputs - unreadable_inputs,
        total.events_processed,
        total.events_skipped,
        total.alerts,
        if total.suppressed == 0 {
            String::new()
        } else {
            format!(", {} suppressed by exclusions", total.suppressed)
        } + &if total.deduplicated == 0 {
            String::new()
        } else {
            format!(
                ", {} repeat(s) held back by dedup windows",
                total.deduplicated
            )
        },
        if unreadable_inputs > 0 {
            format!("; {unreadable_inputs} input(s) unreadable")
        } else {
            String::new()
        }
    );
    for line in skip_lines {
        eprintln!("  skipped {line}");
    }
    if total.events_skipped > MAX_SKIPS_SHOWN as u64 {
        eprintln!(
            "  ... and {} more skipped",
            total.events_skipped - MAX_SKIPS_SHOWN as u64
        );
    }
    for (rule, count) in &total.alerts_per_rule {
        eprintln!("  {count:>6}  {rule}");
    }
}

fn compile(dirs: &[PathBuf], output: &std::path::Path) -> Result<ExitCode> {
    let sources = load_sources(dirs)?;
    let bundle = RuleSet::bundle(&sources)?;
    let path = if output.is_dir() {
        output.join(trailwatch::rules::BUNDLE_FILE_NAME)
    } else {
        output.to_owned()
    };
    std::fs::write(&path, bundle)
        .with_context(|| format!("cannot write the bundle to {}", path.display()))?;
    println!("{} file(s) compiled into {}", sources.len(), path.display());
    Ok(ExitCode::SUCCESS)
}

fn lint(dirs: &[PathBuf]) -> Result<ExitCode> {
    let sources = load_sources(dirs)?;
    let rules = RuleSet::compile(&sources)?;
    let tests: usize = rules
        .rules()
        .iter()
        .chain(rules.correlations())
        .map(|r| r.tests.len())
        .sum();
    for warning in rules.warnings() {
        eprintln!("{warning}");
    }
    let ungated: Vec<&str> = rules.ungated_rules().map(|r| r.path.as_str()).collect();
    if !ungated.is_empty() {
        eprintln!(
            "note: {} rule(s) give the prefilter no eventName, userIdentity.type or errorCode to gate on, so every event is checked against them: {}",
            ungated.len(),
            ungated.join(", ")
        );
    }
    println!(
        "{} rule file(s) OK ({}{} inline test(s), {} exclusion(s) in force, {} warning(s))",
        rules.len() + rules.correlations().len(),
        match rules.correlations().len() {
            0 => String::new(),
            n => format!("{n} correlation(s), "),
        },
        tests,
        rules.exclusions().count(),
        rules.warnings().len()
    );
    Ok(ExitCode::SUCCESS)
}

fn test_rules(dirs: &[PathBuf], junit: Option<&Path>) -> Result<ExitCode> {
    let rules = load_rules(dirs)?;
    let started = Instant::now();
    let report = rules.run_inline_tests();
    let elapsed = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    for failure in &report.failures {
        writeln!(stdout, "FAIL {failure}")?;
    }
    writeln!(
        stdout,
        "{} passed, {} failed ({} rule(s))",
        report.passed,
        report.failures.len(),
        rules.len() + rules.correlations().len()
    )?;
    if !report.rules_without_tests.is_empty() {
        writeln!(
            stdout,
            "{} rule(s) without tests: {}",
            report.rules_without_tests.len(),
            report.rules_without_tests.join(", ")
        )?;
    }
    stdout.flush()?;
    if let Some(path) = junit {
        let all: Vec<Rule> = rules
            .rules()
            .iter()
            .chain(rules.correlations())
            .cloned()
            .collect();
        std::fs::write(path, junit_report(&all, &report, elapsed))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The JUnit XML report of an inline test run: a `<testsuite>` per rule (named after
/// the rule, its file as `file`), a `<testcase>` per inline test named
/// "rule-name: test name", and a `<failure>` carrying the reason for each failed test.
/// Hand-written: the format is a handful of elements, and the JUnit crates bring in
/// an XML writer, date and UUID crates for it.
fn junit_report(rules: &[Rule], report: &InlineTestReport, elapsed: Duration) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"trailwatch rules test\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">",
        report.run,
        report.failures.len(),
        elapsed.as_secs_f64()
    );
    for rule in rules {
        let cases: Vec<(&InlineTest, Option<&InlineTestFailure>)> = rule
            .tests
            .iter()
            .map(|test| {
                let location = format!("{}:{}", rule.path, test.line);
                let failure = report
                    .failures
                    .iter()
                    .find(|f| f.rule == rule.name && f.location == location);
                (test, failure)
            })
            .collect();
        let failed = cases.iter().filter(|(_, f)| f.is_some()).count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
            xml_escape(&rule.name),
            xml_escape(&rule.path),
            rule.tests.len()
        );
        for (test, failure) in cases {
            let name = xml_escape(&format!("{}: {}", rule.name, test.name));
            let classname = xml_escape(&rule.name);
            let file = xml_escape(&rule.path);
            let line = test.line;
            match failure {
                None => {
                    let _ = writeln!(
                        xml,
                        "    <testcase name=\"{name}\" classname=\"{classname}\" file=\"{file}\" line=\"{line}\"/>"
                    );
                }
                Some(failure) => {
                    let _ = writeln!(
                        xml,
                        "    <testcase name=\"{name}\" classname=\"{classname}\" file=\"{file}\" line=\"{line}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&failure.reason),
                        match test.expect {
                            Expectation::Match => "expected-match",
                            Expectation::NoMatch => "expected-no-match",
                            Expectation::Alerts(_) => "expected-alert-count",
                        },
                        xml_escape(&failure.to_string())
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// `text` escaped for XML attribute values and character data. Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn list(dirs: &[PathBuf], format: ListFormat) -> Result<ExitCode> {
    let rules = load_rules(dirs)?;
    // Detection rules, then correlations (which alert under their own names).
    let all: Vec<Rule> = rules
        .rules()
        .iter()
        .chain(rules.correlations())
        .cloned()
        .collect();
    let text = match format {
        ListFormat::Text => list_text(&all),
        ListFormat::Json => list_json(&all)?,
        ListFormat::Markdown => list_markdown(&all),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn list_text(rules: &[Rule]) -> String {
    let width = rules.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let mut out = String::new();
    for rule in rules {
        let _ = writeln!(
            out,
            "{:<width$}  {:<13}  {}  ({})",
            rule.name,
            rule.severity.as_str(),
            rule.title,
            rule.path
        );
    }
    out
}

/// The CIS benchmark ids of a rule, from its `cis.X.Y` tags (e.g. `3.1`).
fn cis_ids(rule: &Rule) -> Vec<&str> {
    rule.tags
        .iter()
        .filter_map(|tag| tag.strip_prefix("cis."))
        .collect()
}

/// A rule's MITRE ATT&CK tags (`attack.*`), as written.
fn attack_tags(rule: &Rule) -> Vec<&str> {
    rule.tags
        .iter()
        .filter(|tag| tag.starts_with("attack."))
        .map(String::as_str)
        .collect()
}

#[derive(Serialize)]
struct ListedRule<'a> {
    name: &'a str,
    level: Severity,
    title: &'a str,
    tags: &'a [String],
    cis: Vec<&'a str>,
    attack: Vec<&'a str>,
    path: &'a str,
    tests: usize,
}

fn list_json(rules: &[Rule]) -> Result<String> {
    let listed: Vec<ListedRule<'_>> = rules
        .iter()
        .map(|rule| ListedRule {
            name: &rule.name,
            level: rule.severity,
            title: &rule.title,
            tags: &rule.tags,
            cis: cis_ids(rule),
            attack: attack_tags(rule),
            path: &rule.path,
            tests: rule.tests.len(),
        })
        .collect();
    let mut json = serde_json::to_string_pretty(&listed)?;
    json.push('\n');
    Ok(json)
}

fn list_markdown(rules: &[Rule]) -> String {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = format!(
        "Generated by `trailwatch rules list --format markdown`: {} rule(s).\n\n",
        sorted.len()
    );
    out.push_str("| Rule | Level | Title | Alerts | Tags | CIS |\n");
    out.push_str("|------|-------|-------|--------|------|-----|\n");
    for rule in sorted {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            rule.name,
            rule.severity.as_str(),
            markdown_cell(&rule.title),
            markdown_cell(&alerting(rule, rules)),
            markdown_cell(&rule.tags.join(", ")),
            markdown_cell(&cis_ids(rule).join(", "))
        );
    }
    out
}

/// How a rule alerts, in a few words: per match, or what state decides.
fn alerting(rule: &Rule, all: &[Rule]) -> String {
    let feeds_only = all.iter().any(|c| {
        c.correlation.as_ref().is_some_and(|c| {
            !c.generate
                && c.rules
                    .iter()
                    .any(|r| *r == rule.name || rule.id.as_deref() == Some(r.as_str()))
        })
    });
    if feeds_only {
        return "no alert of its own: feeds correlations".to_owned();
    }
    if let Some(c) = &rule.correlation {
        let what = match c.kind {
            trailwatch::rules::CorrelationKind::EventCount => format!("≥ {} matches", c.at_least),
            trailwatch::rules::CorrelationKind::ValueCount => {
                format!("≥ {} distinct {}", c.at_least, c.value_fields.join("+"))
            }
            trailwatch::rules::CorrelationKind::Temporal => "all of its rules".to_owned(),
        };
        return format!(
            "correlation: {what} in {} by {} ({})",
            c.timespan,
            c.group_by.join(", "),
            c.rules.join(", ")
        );
    }
    let mut parts = Vec::new();
    if let Some(f) = &rule.first_seen {
        parts.push(format!("first {} in {}", f.fields.join(" + "), f.history));
    }
    if let Some(d) = &rule.dedup {
        parts.push(format!("once per {} per {}", d.by.join(" + "), d.window));
    }
    if parts.is_empty() {
        "each match".to_owned()
    } else {
        parts.join("; ")
    }
}

/// `text` made safe for one Markdown table cell: on one line, pipes escaped.
fn markdown_cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
