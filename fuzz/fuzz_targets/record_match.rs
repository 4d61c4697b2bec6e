//! Records through the built-in rules and the pipeline, and every alert rendered:
//! one record per line of the input (JSON Lines).
//!
//! Invariants checked beyond "no panic":
//! - the head scan reads a record's head as serde_json does, the cheap head read agrees
//!   with the full parse, and the screen never skips a
//!   record some rule matches (or an exclusion suppresses), for the built-in rules and
//!   for rules the prefilter cannot gate (screened on a projection of nested paths, or
//!   ruled out by a search for the literals their matches require);
//! - `pipeline::run` accounts for every line (read = processed + skipped) and gives the
//!   same alerts as matching each record directly, and the same again when the lines
//!   are read as subscription data with the rules' head screen;
//! - stateful alerting (correlations, first-seen, dedup, in memory) runs twice over the
//!   matches, as a retried batch would, and the second run decides the same alerts;
//! - an SNS subject is one printable ASCII line of at most `MAX_SUBJECT_CHARS`, and a
//!   text body is at most `MAX_BODY_BYTES`, for plain and correlation alerts alike; a
//!   Chatbot notification is a JSON object.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trailwatch::alert::{MAX_BODY_BYTES, MAX_SUBJECT_CHARS};
use trailwatch::ingest::{
    Batch, DecodeLimits, RawRecord, RecordId, SubscriptionBuilder,
    parse_input_screened,
};
use trailwatch::pipeline;
use trailwatch::record::{
    Projection, RecordError, parse_record, read_head_and_projection_with_serde, record_head,
};
use trailwatch::rules::{RuleSet, Screen};
use trailwatch::state::{MemoryStore, block_on};
use trailwatch::stateful::Stateful;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::builtin().expect("the built-in rules compile"))
}

/// A rule set from `tests/fixtures/<name>`.
fn fixture_rules(name: &str) -> RuleSet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name);
    let sources = trailwatch::rules::read_rule_dir(&dir).expect("fixture rules");
    RuleSet::compile(&sources).expect("fixture rules compile")
}

/// Rules the prefilter cannot gate (`tests/fixtures/ungated-rules`): the screen evaluates
/// them on a projection of the paths they read (nested, through arrays, an object read
/// as text, a filter pattern).
fn ungated_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| fixture_rules("ungated-rules"))
}

/// Rules the prefilter cannot gate that name literals (`tests/fixtures/literal-rules`):
/// the screen rules them out by searching the record's text, escapes and all.
fn literal_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| fixture_rules("literal-rules"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let rules = rules();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();

    let mut expected_alerts = Vec::new();
    for line in &lines {
        let parsed = parse_record(line);
        // The head scan (which falls back to serde_json for shapes it leaves) reads what
        // serde_json reads.
        assert_eq!(
            record_head(line),
            read_head_and_projection_with_serde(line, &Projection::empty()).map(|(head, _)| head),
            "the head scan and serde_json read {line:?} differently"
        );
        if let Some(head) = record_head(line) {
            // Documented (record::record_head): the cheap read skips the other fields
            // without decoding them, so it accepts what the full parse refuses as not JSON
            // (a number out of f64 range such as `1e400`, a lone surrogate escape such as
            // `"\ud800x"`).
            if matches!(parsed, Err(RecordError::NotJson(_))) {
                continue;
            }
            let record = parsed.as_ref().unwrap_or_else(|err| {
                panic!("record_head read {:?}, parse_record: {err}", head.event_name)
            });
            assert_eq!(record["eventName"].as_str(), Some(&*head.event_name));
            for rules in [rules, ungated_rules(), literal_rules()] {
                if rules.screen(line) == Screen::Skip {
                    let verdict = rules.evaluate(record);
                    assert!(
                        verdict.matched.is_empty() && verdict.suppressed.is_empty(),
                        "the screen would skip {:?}, which a rule matches",
                        head.event_name
                    );
                }
            }
        }
        if let Ok(record) = &parsed {
            expected_alerts.extend(rules.matching(record).iter().map(|r| r.name.clone()));
        }
    }

    let batch = Batch {
        records: lines
            .iter()
            .enumerate()
            .map(|(i, line)| RawRecord {
                id: RecordId::Line(i + 1),
                text: (*line).to_owned(),
                screened_in: false,
            })
            .collect(),
        ..Batch::default()
    };
    // The same lines as a subscription batch read with the rules' head screen: the
    // records ruled out while reading are exactly ones the pipeline would skip.
    let data = SubscriptionBuilder::data_message().messages(lines.iter().copied()).data_json();
    let screened = parse_input_screened(data.into_bytes(), DecodeLimits::default(), rules.head_screen())
        .expect("built subscription data");
    let screened = pipeline::run(rules, screened);

    let outcome = pipeline::run(rules, batch);
    assert_eq!(screened.alerts, outcome.alerts, "reading with the head screen");
    assert_eq!(
        (screened.events_processed, screened.skipped.len()),
        (outcome.events_processed, outcome.skipped.len())
    );
    assert_eq!(outcome.events_read(), lines.len() as u64);
    assert_eq!(
        outcome.events_read(),
        outcome.events_processed + outcome.skipped.len() as u64
    );
    let alerted: Vec<String> = outcome.alerts.iter().map(|a| a.rule.clone()).collect();
    assert_eq!(alerted, expected_alerts);

    let store = MemoryStore::new();
    let stage = Stateful::new();
    let first = block_on(stage.apply(rules, &store, outcome.alerts.clone(), 0))
        .expect("the memory store never fails");
    let again = block_on(stage.apply(rules, &store, outcome.alerts.clone(), 0))
        .expect("the memory store never fails");
    assert_eq!(
        first.alerts.iter().map(|a| a.dedup_key()).collect::<Vec<_>>(),
        again.alerts.iter().map(|a| a.dedup_key()).collect::<Vec<_>>(),
        "a retried batch decides the same alerts"
    );

    for alert in outcome.alerts.iter().chain(&first.alerts) {
        assert!(alert.chatbot_notification().is_object());
        let subject = alert.subject();
        assert!(subject.chars().count() <= MAX_SUBJECT_CHARS, "{subject:?}");
        assert!(
            subject.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "{subject:?}"
        );
        let body = alert.text_body();
        assert!(body.len() <= MAX_BODY_BYTES, "body of {} bytes", body.len());
        let json = alert.to_json();
        assert!(json.is_object());
        assert_eq!(json["rule"].as_str(), Some(alert.rule.as_str()));
    }
});
