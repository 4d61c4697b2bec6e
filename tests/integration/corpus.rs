//! Real public data in `../shared/corpus` (CloudTrail events and SigmaHQ rules), when it
//! is present next to the repository; without it every test here passes with a note.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// The `bulk/*.jsonl.gz` files, sorted.
fn bulk_files(corpus: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join("bulk"))
        .expect("read bulk/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    files
}

/// The non-empty lines of a `.jsonl.gz` file, parsed where they parse.
fn lines(path: &Path) -> Vec<Option<Value>> {
    raw_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The non-empty lines of a `.jsonl.gz` file, as written.
fn raw_lines(path: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// What trailwatch must accept as a record: an object with string eventName/eventSource.
fn is_record(value: &Option<Value>) -> bool {
    value.as_ref().is_some_and(|v| {
        v.get("eventName").is_some_and(Value::is_string)
            && v.get("eventSource").is_some_and(Value::is_string)
    })
}

fn scan_all(corpus: &Path, extra: &[&str]) -> Run {
    let mut all: Vec<std::ffi::OsString> = vec!["scan".into(), "--format".into(), "json".into()];
    all.extend(extra.iter().map(Into::into));
    all.extend(bulk_files(corpus).into_iter().map(Into::into));
    trailwatch(&all)
}

#[test]
fn sigmahq_rules_all_load() {
    let Some(corpus) = corpus_dir() else { return };
    let run = trailwatch(&args(&[&"rules", &"lint", &corpus.join("sigma/rules")]));
    run.assert_code(0);
    assert!(run.stdout.starts_with("57 rule file(s) OK"), "{run}");
}

#[test]
fn bulk_corpus_scans_every_event_without_panicking() {
    let Some(corpus) = corpus_dir() else { return };
    let files = bulk_files(&corpus);
    assert_eq!(files.len(), 4, "{files:?}");
    let (mut records, mut others) = (0, 0);
    for file in &files {
        for line in lines(file) {
            if is_record(&line) {
                records += 1;
            } else {
                others += 1;
            }
        }
    }
    assert!(records + others >= 3000, "about 3,058 events");

    let run = scan_all(&corpus, &[]);
    run.assert_code(0);
    let alerts = run.json_alerts();
    assert!(
        run.summary().starts_with(&format!(
            "trailwatch: {} event(s) read from 4 input(s): {records} processed, {others} skipped; {} alert(s)",
            records + others,
            alerts.len()
        )),
        "{run}"
    );
    assert!(!alerts.is_empty());
}

#[test]
fn builtin_rules_fire_on_the_real_trail_tampering_in_invictus() {
    let Some(corpus) = corpus_dir() else { return };
    let path = corpus.join("bulk/invictus_aws_dataset.jsonl.gz");
    // Every StopLogging and DeleteTrail: a failed change when it has an errorCode,
    // a logging change when it succeeded.
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();
    let mut per_name: BTreeMap<String, usize> = BTreeMap::new();
    for record in lines(&path).into_iter().flatten() {
        let name = record["eventName"].as_str().unwrap_or_default();
        if record["eventSource"] == "cloudtrail.amazonaws.com"
            && matches!(name, "StopLogging" | "DeleteTrail")
        {
            *per_name.entry(name.to_owned()).or_default() += 1;
            let rule = if record.get("errorCode").is_some() {
                "cloudtrail-change-failed"
            } else {
                "cloudtrail-logging-changed"
            };
            let id = record["eventID"].as_str().expect("eventID").to_owned();
            expected.insert(id, rule);
        }
    }
    assert_eq!(per_name.get("StopLogging"), Some(&3), "{per_name:?}");
    assert_eq!(per_name.get("DeleteTrail"), Some(&3), "{per_name:?}");

    let run = scan_json(&path, &[]);
    run.assert_code(0);
    let alerts = run.json_alerts();
    for (id, rule) in &expected {
        let fired: Vec<&str> = alerts
            .iter()
            .filter(|a| a["event_id"] == id.as_str())
            .map(|a| a["rule"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(fired, [*rule], "event {id}");
        let alert = alerts
            .iter()
            .find(|a| a["event_id"] == id.as_str())
            .unwrap();
        assert!(alert["account_id"].as_str().is_some_and(|a| a.len() == 12));
        assert!(!alert["actor"].as_str().unwrap_or_default().is_empty());
        assert_eq!(alert["region"], alert["record"]["awsRegion"]);
    }
}

#[test]
fn sigmahq_disable_logging_rule_fires_on_every_trail_change_in_the_corpus() {
    let Some(corpus) = corpus_dir() else { return };
    let mut expected = 0;
    for file in bulk_files(&corpus) {
        for record in lines(&file).into_iter().flatten() {
            if record["eventSource"] == "cloudtrail.amazonaws.com"
                && matches!(
                    record["eventName"].as_str(),
                    Some("StopLogging" | "UpdateTrail" | "DeleteTrail")
                )
            {
                expected += 1;
            }
        }
    }
    assert!(expected >= 7, "{expected}");
    let rules = corpus.join("sigma/rules");
    let rules = rules.to_str().expect("UTF-8 path");
    let run = scan_all(&corpus, &["--rules", rules]);
    run.assert_code(0);
    let fired = run
        .json_alert_rules()
        .iter()
        .filter(|r| *r == "aws_cloudtrail_disable_logging")
        .count();
    assert_eq!(fired, expected, "{}", run.summary());
}

#[test]
fn bulk_corpus_as_one_subscription_payload() {
    let Some(corpus) = corpus_dir() else { return };
    // The first 500 otrf + panther + awsdocs events, as CloudWatch would deliver them.
    let mut texts = Vec::new();
    for file in bulk_files(&corpus) {
        if file.to_string_lossy().contains("invictus") {
            continue;
        }
        texts.extend(
            lines(&file)
                .into_iter()
                .filter(is_record)
                .flatten()
                .map(|v| v.to_string()),
        );
    }
    texts.truncate(500);
    let messages: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dir = TempDir::new();
    let path = dir.write("corpus-payload.json", data_message(&messages));
    let run = scan_json(&path, &[]);
    run.assert_code(0);
    let n = messages.len();
    assert!(
        run.summary().contains(&format!(
            "{n} event(s) read from 1 input(s): {n} processed, 0 skipped"
        )),
        "{run}"
    );
}

/// The fast paths give the same verdicts as the full evaluation, for the built-in pack
/// plus the SigmaHQ rules, on every corpus event and every inline test event (runs on the
/// inline tests even without the corpus):
/// - every record the screen skips (from its head, and for ungated rules from the
///   literals they require or a projection) matches nothing and is suppressed by
///   nothing, screened as CloudTrail wrote it and as serde_json writes it;
/// - the candidate index (each record evaluated only against the rules its gate keys
///   select) gives exactly the verdict of evaluating every rule;
/// - a compiled bundle (gated rules compiled on first use) gives the same verdicts as
///   the YAML files.
#[test]
fn fast_paths_give_the_verdicts_of_evaluating_every_rule() {
    use trailwatch::rules::{RuleSet, Verdict, builtin_sources, read_rule_dir};
    let mut sources = builtin_sources();
    let corpus = corpus_dir();
    if let Some(corpus) = &corpus {
        sources.extend(read_rule_dir(&corpus.join("sigma/rules")).expect("SigmaHQ rules"));
    }
    let rules = RuleSet::compile(&sources).expect("the pack and SigmaHQ load together");
    let bundled = RuleSet::from_bundle(&RuleSet::bundle(&sources).expect("bundle"))
        .expect("the bundle loads");
    let mut records: Vec<(Value, Option<String>)> = rules
        .rules()
        .iter()
        .chain(rules.correlations())
        .flat_map(|rule| {
            rule.tests
                .iter()
                .flat_map(|test| std::iter::once(test.event.clone()).chain(test.events.clone()))
        })
        .filter(Value::is_object)
        .map(|record| (record, None))
        .collect();
    if let Some(corpus) = &corpus {
        for file in bulk_files(corpus) {
            records.extend(
                raw_lines(&file)
                    .into_iter()
                    .filter_map(|line| Some((serde_json::from_str(&line).ok()?, Some(line)))),
            );
        }
    }
    // Each error code also in other cases and with text around it: the screen compares
    // codes by value, ignoring case as Sigma does.
    let variants: Vec<(Value, Option<String>)> = records
        .iter()
        .filter_map(|(record, _)| Some((record, record.get("errorCode")?.as_str()?)))
        .flat_map(|(record, code)| {
            [
                code.to_uppercase(),
                code.to_lowercase(),
                format!("{code}X"),
                format!("X{code}"),
                format!("{code}\u{17f}"),
            ]
            .map(|code| {
                let mut record = record.clone();
                record["errorCode"] = Value::String(code);
                (record, None)
            })
        })
        .collect();
    assert!(
        variants.len() >= 50,
        "{} error code variants",
        variants.len()
    );
    records.extend(variants);
    assert!(rules.has_prefilter(), "the pack is gated");
    let names = |verdict: &Verdict<'_>| {
        (
            verdict
                .matched
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
            verdict
                .suppressed
                .iter()
                .map(|s| (s.rule.name.clone(), s.exclusion.to_owned()))
                .collect::<Vec<_>>(),
        )
    };
    let (mut ruled_out, mut matched) = (0, 0);
    for (record, raw) in &records {
        let text = record.to_string();
        let every_rule = names(&rules.evaluate_every_rule(record));
        assert_eq!(
            names(&rules.evaluate(record)),
            every_rule,
            "candidate index on {text}"
        );
        assert_eq!(
            names(&bundled.evaluate(record)),
            every_rule,
            "bundle on {text}"
        );
        matched += usize::from(!every_rule.0.is_empty());
        let skipped = |text: &str| rules.screen(text) == trailwatch::rules::Screen::Skip;
        if skipped(&text) || raw.as_deref().is_some_and(skipped) {
            ruled_out += 1;
            assert!(
                every_rule.0.is_empty() && every_rule.1.is_empty(),
                "the prefilter ruled out a record that {:?} match: {text}",
                every_rule.0
            );
        }
    }
    assert!(
        ruled_out > 0 && matched > 0 && records.len() >= 400,
        "{ruled_out} of {} ruled out, {matched} matched",
        records.len()
    );
    eprintln!(
        "fast paths: {} records, {ruled_out} ruled out by the screen, {matched} matching, same verdicts",
        records.len()
    );
}

/// Reading subscription data with the built-in pack's head screen (what the Lambda and
/// `scan` do) rules records out before they become strings, and changes nothing else:
/// the same alerts, the same counts, on every corpus event and every inline test event.
#[test]
fn reading_with_the_head_screen_changes_no_outcome() {
    use trailwatch::ingest::{DecodeLimits, HeadScreen, SubscriptionBuilder, parse_input_screened};
    use trailwatch::pipeline;
    use trailwatch::rules::{RuleSet, builtin_sources};
    let rules = RuleSet::compile(&builtin_sources()).expect("the built-in rules");
    let screen = rules.head_screen().expect("the pack is decided by heads");
    let mut texts: Vec<String> = (rules.rules().iter())
        .flat_map(|rule| rule.tests.iter().map(|test| test.event.to_string()))
        .collect();
    if let Some(corpus) = corpus_dir() {
        texts.extend(bulk_files(&corpus).iter().flat_map(|file| raw_lines(file)));
    }
    texts.push("not a record".to_owned());
    let data = SubscriptionBuilder::data_message()
        .messages(texts.iter().map(String::as_str))
        .data_json();
    let read = |screen: Option<&dyn HeadScreen>| {
        let batch =
            parse_input_screened(data.clone().into_bytes(), DecodeLimits::default(), screen)
                .expect("built subscription data");
        let screened_out = batch.screened_out;
        (screened_out, pipeline::run(&rules, batch))
    };
    let (none, plain) = read(None);
    let (screened_out, screened) = read(Some(screen));
    assert_eq!(none, 0);
    assert!(
        screened_out > 0 && (screened_out as usize) < texts.len(),
        "{screened_out} of {} ruled out",
        texts.len()
    );
    assert_eq!(screened.alerts, plain.alerts);
    assert!(!plain.alerts.is_empty());
    assert_eq!(
        (
            screened.events_processed,
            screened.skipped.len(),
            screened.events_read()
        ),
        (
            plain.events_processed,
            plain.skipped.len(),
            texts.len() as u64
        )
    );
    assert!(
        !plain.skipped.is_empty(),
        "the text that is not a record is skipped"
    );
    // Most heads are read in the message still escaped (it is unescaped only when the
    // screen lets the record through), and each such read agrees with serde_json's.
    let read_escaped = (texts.iter())
        .filter(|text| {
            let message = serde_json::to_string(text).expect("a string");
            trailwatch::record::check_escaped_head_scan(&message)
        })
        .count();
    assert!(
        read_escaped * 10 >= texts.len() * 9,
        "{read_escaped} of {} heads read escaped",
        texts.len()
    );
    eprintln!(
        "head screen: {screened_out} of {} records ruled out while reading, same outcome; {read_escaped} heads read escaped",
        texts.len()
    );
}

/// The email shows each alerting record's text as read, indented: laid out exactly as
/// serde_json would lay out the parsed record, on every corpus event written compactly
/// (as serde_json writes it), and holding the same JSON as read from the corpus.
#[test]
fn records_are_indented_from_their_text_as_serde_json_lays_them_out() {
    use trailwatch::alert::SharedRecord;
    let Some(corpus) = corpus_dir() else { return };
    let mut checked = 0;
    for file in bulk_files(&corpus) {
        for line in raw_lines(&file) {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let expected = serde_json::to_string_pretty(&value).expect("a value serialises");
            let compact = SharedRecord::with_text(value.clone(), value.to_string());
            assert_eq!(compact.pretty(), expected, "{line}");
            let as_read = SharedRecord::with_text(value.clone(), line.clone()).pretty();
            let reread: Value = serde_json::from_str(&as_read).expect("indented JSON");
            assert_eq!(reread, value, "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 3000, "{checked} records");
}
