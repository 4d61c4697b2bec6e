//! The pipeline both binaries run: records of a [`Batch`] → parse → match → [`Alert`]s,
//! with every skipped record counted and explained.
//!
//! It is pure and synchronous: no I/O, no logging. The caller decides what to do with
//! the [`Outcome`] (print it, or publish it to SNS and CloudWatch).

use std::collections::BTreeMap;

use crate::alert::{Alert, SharedRecord};
use crate::ingest::{Batch, SkipReason, Skipped};
use crate::record::parse_record;
use crate::rules::{RuleSet, Screen};

/// What running one or more batches produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// One alert per (rule, event) match, in input order.
    pub alerts: Vec<Alert>,
    /// Records that were parsed and matched against the rules.
    pub events_processed: u64,
    /// Records that were skipped, with reasons.
    pub skipped: Vec<Skipped>,
    /// Matches an exclusion dropped: (rule name, exclusion name), in input order.
    pub suppressed: Vec<(String, String)>,
    /// Matches a dedup window suppressed: rule names, in input order.
    pub deduplicated: Vec<String>,
    /// The rule matches before stateful alerting replaced them with alerts: (rule,
    /// level), for the `Matches` metric (`None` when no state ran: the alerts are the
    /// matches).
    pub matches: Option<Vec<(String, crate::rules::Severity)>>,
    /// CloudWatch Logs control messages seen (health checks; no events).
    pub control_messages: u64,
}

impl Outcome {
    /// Number of skipped records.
    pub fn events_skipped(&self) -> u64 {
        self.skipped.len() as u64
    }

    /// Records read: processed plus skipped.
    pub fn events_read(&self) -> u64 {
        self.events_processed + self.events_skipped()
    }

    /// Rule matches (before stateful alerting) as (rule, level).
    pub fn matched(&self) -> Vec<(&str, crate::rules::Severity)> {
        match &self.matches {
            Some(matches) => matches.iter().map(|(r, s)| (r.as_str(), *s)).collect(),
            None => self
                .alerts
                .iter()
                .map(|a| (a.rule.as_str(), a.severity))
                .collect(),
        }
    }

    /// Alerts per rule name, sorted by name.
    pub fn alerts_per_rule(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for alert in &self.alerts {
            *counts.entry(alert.rule.as_str()).or_default() += 1;
        }
        counts
    }

    /// Takes the matches out for stateful alerting, remembering them for the `Matches`
    /// metric; [`Outcome::apply_state`] puts the decided alerts in.
    pub fn take_matches(&mut self) -> Vec<Alert> {
        let matches = self.alerts.iter().map(|a| (a.rule.clone(), a.severity));
        self.matches.get_or_insert_with(Vec::new).extend(matches);
        std::mem::take(&mut self.alerts)
    }

    /// Replaces the matches with what stateful alerting decided: correlation alerts in,
    /// matches that only fed correlations or first-seen history out, dedup repeats
    /// counted.
    pub fn apply_state(&mut self, decided: crate::stateful::Decided) {
        self.alerts = decided.alerts;
        self.deduplicated.extend(decided.suppressed);
    }
}

/// Parses every record of `batch`, matches it against `rules`, and collects the alerts.
pub fn run(rules: &RuleSet, batch: Batch) -> Outcome {
    let mut outcome = Outcome {
        control_messages: u64::from(batch.control_message),
        ..Outcome::default()
    };
    outcome.skipped.extend(batch.skipped);
    outcome.events_processed += batch.screened_out;
    for raw in batch.records {
        // Most records are calls no rule mentions: when the cheap read proves the
        // record valid and unmatchable, count it without building it. (A record the
        // ingest screen let through already had that read.)
        if !raw.screened_in && rules.screen(&raw.text) == Screen::Skip {
            outcome.events_processed += 1;
            continue;
        }
        let record = match parse_record(&raw.text) {
            Ok(record) => record,
            Err(err) => {
                outcome.skipped.push(Skipped {
                    id: raw.id,
                    reason: SkipReason::NotCloudTrail(err),
                });
                continue;
            }
        };
        outcome.events_processed += 1;
        let verdict = rules.evaluate(&record);
        outcome.suppressed.extend(
            verdict
                .suppressed
                .iter()
                .map(|s| (s.rule.name.clone(), s.exclusion.to_owned())),
        );
        if verdict.matched.is_empty() {
            continue;
        }
        // The record's alerts share it (and its renderings, made from its text).
        let shared = std::sync::Arc::new(SharedRecord::with_text(record, raw.text));
        for rule in verdict.matched {
            outcome
                .alerts
                .push(Alert::for_shared_record(rule, shared.clone()));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{RawRecord, RecordId};
    use crate::rules::RuleSource;

    const RULE: &str = "title: Stop\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: StopLogging}\n  condition: sel\nlevel: high\n";

    fn rules() -> RuleSet {
        let sources = [
            RuleSource {
                path: "a.yml".into(),
                text: RULE.into(),
            },
            RuleSource {
                path: "b.yml".into(),
                text: RULE.replace("high", "low"),
            },
        ];
        RuleSet::compile(&sources).unwrap()
    }

    fn batch(texts: &[&str]) -> Batch {
        Batch {
            records: texts
                .iter()
                .enumerate()
                .map(|(i, text)| RawRecord {
                    id: RecordId::LogEvent(format!("e{i}")),
                    text: (*text).into(),
                    screened_in: false,
                })
                .collect(),
            ..Batch::default()
        }
    }

    #[test]
    fn the_alerts_of_one_record_share_it_and_its_json() {
        let outcome = run(
            &rules(),
            batch(&[
                r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","eventID":"x"}"#,
                r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","eventID":"y"}"#,
            ]),
        );
        let [a, b, c, d] = &outcome.alerts[..] else {
            panic!("two rules on two records: {:?}", outcome.alerts)
        };
        assert!(std::sync::Arc::ptr_eq(&a.record, &b.record));
        assert!(std::sync::Arc::ptr_eq(&c.record, &d.record));
        assert!(!std::sync::Arc::ptr_eq(&b.record, &c.record));
        assert_eq!(a.record["eventID"], "x");
        assert_eq!(c.record["eventID"], "y");
        // The JSON rendered once, for both alerts.
        assert!(std::ptr::eq(&*a.record.compact(), &*b.record.compact()));
        assert_eq!(a.text_body().matches("\"eventID\": \"x\"").count(), 1);
    }

    #[test]
    fn matches_bad_records_and_counts_are_reported() {
        let outcome = run(
            &rules(),
            batch(&[
                r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","eventID":"x"}"#,
                "not json",
                r#"{"eventName":"StartLogging","eventSource":"cloudtrail.amazonaws.com"}"#,
                r#"{"eventSource":"cloudtrail.amazonaws.com"}"#,
            ]),
        );
        assert_eq!(outcome.events_processed, 2);
        assert_eq!(outcome.events_read(), 4);
        let skipped: Vec<String> = outcome
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.id, s.reason))
            .collect();
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped[0].starts_with("log event e1: not JSON"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].starts_with("log event e3: not a CloudTrail record"),
            "{skipped:?}"
        );
        let rules: Vec<&str> = outcome.alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, ["a", "b"]);
        assert_eq!(outcome.alerts_per_rule().get("a"), Some(&1));
    }

    #[test]
    fn values_serde_json_refuses_are_counted_either_way() {
        // Found by fuzzing: the cheap head read accepts a number beyond f64 and a lone
        // surrogate escape, which the full parse refuses (see record::record_head).
        let outcome = run(
            &rules(),
            batch(&[
                r#"{"eventName":"DescribeTrails","eventSource":"cloudtrail.amazonaws.com","x":1e400}"#,
                r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","x":1e400}"#,
                r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","x":"\ud800x"}"#,
            ]),
        );
        // No rule needs the first: counted as processed, never built. The others would
        // reach the rules, so they are parsed, refused as not JSON, and skipped.
        assert_eq!(outcome.events_processed, 1);
        assert_eq!(outcome.events_skipped(), 2);
        assert_eq!(outcome.events_read(), 3);
        assert!(outcome.alerts.is_empty());
    }

    #[test]
    fn control_message_counts_and_yields_nothing() {
        let outcome = run(
            &rules(),
            Batch {
                control_message: true,
                ..Batch::default()
            },
        );
        assert_eq!((outcome.control_messages, outcome.events_read()), (1, 0));
    }
}
