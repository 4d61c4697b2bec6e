//! Alert rendering, one behaviour per test.

use super::*;
use crate::rules::{Rule, Severity};
use serde_json::json;

fn rule() -> Rule {
    Rule {
        name: "console-login-without-mfa".into(),
        id: Some("0d2b5b2e-0000-4000-8000-000000000001".into()),
        title: "Console login without MFA".into(),
        severity: Severity::High,
        description: Some("Passwords alone get phished.".into()),
        runbook: Some("1. Ask maria.\n2. Enforce MFA.".into()),
        tags: vec!["attack.initial-access".into()],
        falsepositives: vec!["Break-glass users".into()],
        references: vec![],
        author: None,
        path: "rules/console-login-without-mfa.yml".into(),
        filter_pattern: None,
        exempt_from: vec![],
        tests: vec![],
        dedup: None,
        first_seen: None,
        route: None,
        correlation: None,
        rendered: Default::default(),
    }
}

fn login() -> serde_json::Value {
    json!({
        "eventVersion": "1.08", "eventID": "3fcfb182-98f8-4744-bd45-10a395ab61cb",
        "eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com",
        "eventTime": "2026-11-01T10:00:00Z", "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333", "sourceIPAddress": "192.0.2.10",
        "userAgent": "Mozilla/5.0",
        "userIdentity": {"type": "IAMUser", "userName": "maria",
                         "arn": "arn:aws:iam::111122223333:user/maria"},
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "No"}
    })
}

#[test]
fn subject_reads_like_the_example() {
    let alert = Alert::new(&rule(), login());
    assert_eq!(
        alert.subject(),
        "[HIGH] Console login without MFA: maria in 111122223333 (us-east-1)"
    );
}

#[test]
fn subject_is_one_ascii_line_under_100_chars() {
    let mut record = login();
    record["userIdentity"]["userName"] = json!(format!("mária\n{}", "x".repeat(200)));
    let subject = Alert::new(&rule(), record).subject();
    assert!(subject.len() < 100, "{} chars", subject.len());
    assert!(subject.is_ascii() && !subject.contains('\n'));
    assert!(subject.ends_with("..."));
}

#[test]
fn body_has_summary_runbook_link_and_record() {
    let body = Alert::new(&rule(), login()).text_body();
    for expected in [
        "What:         ConsoleLogin on signin.amazonaws.com succeeded",
        "Who:          maria (IAMUser, arn:aws:iam::111122223333:user/maria)",
        "Source IP:    192.0.2.10",
        "Why it matters\n--------------\nPasswords alone get phished.",
        "What to do\n----------\n1. Ask maria.\n2. Enforce MFA.",
        "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/3fcfb182-98f8-4744-bd45-10a395ab61cb",
        "\"MFAUsed\": \"No\"",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in\n{body}");
    }
    assert!(!body.contains(TRUNCATION_MARKER));
}

#[test]
fn body_shows_the_error_of_a_failed_call() {
    let mut record = login();
    record["errorCode"] = json!("InvalidCloudWatchLogsRoleArnException");
    record["errorMessage"] = json!("Access denied. Check the trust relationships for your role.");
    let body = Alert::new(&rule(), record).text_body();
    assert!(body.contains("failed (InvalidCloudWatchLogsRoleArnException)"));
    assert!(body.contains("Error:        InvalidCloudWatchLogsRoleArnException: Access denied. Check the trust relationships for your role."));
}

#[test]
fn huge_record_is_truncated_with_a_marker_and_summary_intact() {
    let mut record = login();
    record["requestParameters"] = json!({"blob": "y".repeat(600 * 1024)});
    let alert = Alert::new(&rule(), record);
    let body = alert.text_body();
    assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
    assert!(body.contains(TRUNCATION_MARKER));
    assert!(body.contains("What to do") && body.contains("cloudtrailv2"));
}

#[test]
fn json_has_the_fields_machines_need() {
    let value = Alert::new(&rule(), login()).to_json();
    for key in [
        "rule",
        "rule_id",
        "title",
        "severity",
        "event_id",
        "event_name",
        "event_time",
        "account_id",
        "region",
        "actor",
        "source_ip",
    ] {
        assert!(value.get(key).is_some(), "missing {key} in {value}");
    }
    assert_eq!(value["severity"], "high");
    assert_eq!(value["record"]["eventName"], "ConsoleLogin");
}

#[test]
fn dedup_key_depends_on_rule_and_event_only() {
    let a = Alert::new(&rule(), login());
    let mut other_rule = rule();
    other_rule.name = "other".into();
    let b = Alert::new(&other_rule, login());
    assert_eq!(a.dedup_key(), Alert::new(&rule(), login()).dedup_key());
    assert_ne!(a.dedup_key(), b.dedup_key());
    assert_eq!(a.dedup_key().len(), 64);
}

#[test]
fn body_stays_under_the_limit_whatever_the_event_id_and_region() {
    // Found by fuzz/fuzz_targets/record_match.rs's body-size invariant: the console
    // link is not shortened, and it was built from any eventID and awsRegion.
    let mut record = login();
    record["eventID"] = json!("x".repeat(300 * 1024));
    let alert = Alert::new(&rule(), record);
    assert!(alert.text_body().len() <= MAX_BODY_BYTES);
    assert_eq!(alert.console_url(), None);
    let mut record = login();
    record["awsRegion"] = json!("evil.example/x?");
    assert_eq!(Alert::new(&rule(), record).console_url(), None);
    assert!(Alert::new(&rule(), login()).console_url().is_some());
}

#[test]
fn a_failed_console_sign_in_reads_as_failed_though_it_has_no_error_code() {
    let mut record = login();
    record["responseElements"] = json!({"ConsoleLogin": "Failure"});
    record["errorMessage"] = json!("Failed authentication");
    let body = Alert::new(&rule(), record).text_body();
    assert!(
        body.contains("ConsoleLogin on signin.amazonaws.com failed (Failed authentication)"),
        "{body}"
    );
}

#[test]
fn account_names_show_next_to_the_id_and_bad_maps_are_refused() {
    let names = AccountNames::parse("111122223333=prod, 444455556666=staging").unwrap();
    let mut alert = Alert::new(&rule(), login());
    names.name(&mut alert);
    assert_eq!(alert.account_name.as_deref(), Some("prod"));
    assert!(
        alert.subject().contains("in prod (111122223333)"),
        "{}",
        alert.subject()
    );
    assert!(AccountNames::parse("prod").is_err());
    assert!(AccountNames::parse("12345=short").is_err());
    assert!(AccountNames::parse("").unwrap().is_empty());
}

#[test]
fn the_chatbot_notification_is_the_custom_format() {
    let alert = Alert::new(&rule(), login());
    let note = alert.chatbot_notification();
    assert_eq!(note["version"], "1.0");
    assert_eq!(note["source"], "custom");
    assert_eq!(note["content"]["textType"], "client-markdown");
    assert!(
        note["content"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[HIGH] ")
    );
    assert_eq!(note["content"]["nextSteps"][0], "1. Ask maria.");
    assert_eq!(note["metadata"]["threadId"], alert.rule);
}

#[test]
fn to_json_carries_the_record_exactly_and_the_sns_json_its_compact_text() {
    let mut record = login();
    record["requestParameters"] = json!({"ratio": 0.1 + 0.2, "big": 1e300, "n": -0.0});
    let alert = Alert::new(&rule(), record.clone());
    assert_eq!(alert.to_json()["record"], record);
    assert_eq!(alert.to_json()["rule"], "console-login-without-mfa");
    let sns: serde_json::Value = serde_json::from_str(&alert.json_text_within(usize::MAX)).unwrap();
    assert_eq!(sns["record"].to_string(), record.to_string());
}

#[test]
fn a_rule_cloned_and_edited_renders_its_own_prose() {
    let rule = rule();
    assert!(
        Alert::new(&rule, login())
            .text_body()
            .contains("Passwords alone get phished.")
    );
    let mut edited = rule.clone();
    edited.description = Some("Edited after loading.".into());
    let body = Alert::new(&edited, login()).text_body();
    assert!(body.contains("Edited after loading."), "{body}");
    assert!(!body.contains("Passwords alone"), "{body}");
}
