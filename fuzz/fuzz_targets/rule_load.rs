//! A rule file as a user writes it: YAML → trailwatch's checks → rsigma (or a filter
//! pattern) → compiled set; then its inline tests and one fixed record through it.
//! Load errors are expected; panics, hangs and runaway memory are findings.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trailwatch::record::parse_record;
use trailwatch::rules::{RuleSet, RuleSource, Screen};

const RECORD: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/bob","accountId":"111122223333","userName":"bob"},"eventTime":"2026-11-21T03:58:41Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.201","userAgent":"aws-cli/2.22.4","requestParameters":{"name":"management-events"},"responseElements":null,"additionalEventData":{"MFAUsed":"No"},"resources":[{"ARN":"arn:aws:cloudtrail:us-east-1:111122223333:trail/x"}],"eventID":"dca37b0a-0a33-438a-9376-5ac6a76a110d","readOnly":false,"recipientAccountId":"111122223333"}"#;

fn record() -> &'static Value {
    static RECORD_VALUE: OnceLock<Value> = OnceLock::new();
    RECORD_VALUE.get_or_init(|| parse_record(RECORD).expect("fixed record parses"))
}

/// The screen may only skip records no rule can match.
fn check_prefilter(rules: &RuleSet, event: &Value) {
    let text = event.to_string();
    if rules.screen(&text) == Screen::Skip {
        assert!(
            rules.matching(event).is_empty(),
            "the screen skips {text}, which the rule matches"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = RuleSource {
        path: "fuzz.yml".into(),
        text: text.to_owned(),
    };
    let Ok(rules) = RuleSet::compile(&[source]) else {
        return;
    };
    let report = rules.run_inline_tests();
    assert_eq!(report.run, report.passed + report.failures.len());
    for rule in rules.rules() {
        for test in &rule.tests {
            check_prefilter(&rules, &test.event);
        }
    }
    let _ = rules.matching(record());
    check_prefilter(&rules, record());
});
