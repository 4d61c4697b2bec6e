//! The library end to end: subscription payload bytes → `parse_subscription_event` →
//! `pipeline::run` with the built-in rules → alerts, as the Lambda runs it.

use trailwatch::alert::Alert;
use trailwatch::ingest::{
    DecodeLimits, IngestError, InputFormat, RecordId, SkipReason, parse_input,
    parse_subscription_event,
};
use trailwatch::pipeline::{self, Outcome};
use trailwatch::record::RecordError;
use trailwatch::rules::{RuleSet, RuleSource, Severity};

use crate::common::*;

/// The three core rules of `tests/fixtures/rules` (the built-in pack grows; these
/// tests are about the library's behaviour, not the pack's content).
fn builtin() -> RuleSet {
    let dir = repo_root().join(CORE_RULES);
    let mut sources: Vec<RuleSource> = std::fs::read_dir(&dir)
        .expect("core rules")
        .map(|entry| {
            let path = entry.expect("entry").path();
            RuleSource {
                path: path.display().to_string(),
                text: std::fs::read_to_string(&path).expect("rule text"),
            }
        })
        .collect();
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    RuleSet::compile(&sources).expect("the core rules load")
}

/// Decodes an encoded payload and runs it through the built-in rules.
fn run_payload(payload: &str) -> Outcome {
    let batch = parse_subscription_event(payload.as_bytes(), DecodeLimits::default())
        .expect("the payload decodes");
    pipeline::run(&builtin(), batch)
}

fn only_alert(outcome: &Outcome) -> &Alert {
    assert_eq!(outcome.alerts.len(), 1, "{:#?}", outcome.alerts);
    &outcome.alerts[0]
}

fn rule_names(outcome: &Outcome) -> Vec<&str> {
    outcome.alerts.iter().map(|a| a.rule.as_str()).collect()
}

fn console_link(region: &str, event_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}"
    )
}

#[test]
fn builtin_pack_holds_the_core_rules_and_every_cis_control() {
    let rules = RuleSet::builtin().expect("the built-in pack loads");
    assert!(rules.len() >= 60, "{} rules", rules.len());
    let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    for core in [
        "cloudtrail-change-failed",
        "cloudtrail-logging-changed",
        "console-login-without-mfa",
    ] {
        assert!(names.contains(&core), "{core} missing");
    }
    for control in 1..=14 {
        let tag = format!("cis.3.{control}");
        let pattern_rule = rules
            .rules()
            .iter()
            .find(|r| r.filter_pattern.is_some() && r.tags.contains(&tag));
        assert!(
            pattern_rule.is_some(),
            "no filter-pattern rule tagged {tag}"
        );
    }
    assert_eq!(
        rules.exclusions().map(|(name, _)| name).collect::<Vec<_>>(),
        ["aws-service-callers"]
    );
}

#[test]
fn console_login_without_mfa_alerts_with_who_where_and_link() {
    let payload = data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]);
    let batch =
        parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).expect("decodes");
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.records[0].id, RecordId::LogEvent(log_event_id(0)));
    assert!(!batch.control_message);

    let outcome = pipeline::run(&builtin(), batch);
    assert_eq!((outcome.events_processed, outcome.events_skipped()), (1, 0));
    let alert = only_alert(&outcome);
    assert_eq!(alert.rule, "console-login-without-mfa");
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.title, "Console login without MFA");
    assert_eq!(alert.event.actor, "maria");
    assert_eq!(alert.event.actor_type, "IAMUser");
    assert_eq!(alert.event.account_id, "111122223333");
    assert_eq!(alert.event.region, "us-east-1");
    assert_eq!(alert.event.source_ip, "203.0.113.47");
    assert_eq!(alert.event.event_id, "e98a9db4-d1d1-476b-b0a3-5b7cbdb8c04c");
    assert_eq!(alert.event.event_time, "2026-11-21T07:48:13Z");
    assert_eq!(
        alert.subject(),
        "[HIGH] Console login without MFA: maria in 111122223333 (us-east-1)"
    );
    let link = console_link("us-east-1", "e98a9db4-d1d1-476b-b0a3-5b7cbdb8c04c");
    assert_eq!(alert.console_url().as_deref(), Some(link.as_str()));
    let body = alert.text_body();
    for part in [
        link.as_str(),
        "ConsoleLogin on signin.amazonaws.com succeeded",
        "maria (IAMUser, arn:aws:iam::111122223333:user/maria)",
        "203.0.113.47",
        "What to do",
        "\"MFAUsed\": \"No\"",
    ] {
        assert!(body.contains(part), "body lacks {part:?}:\n{body}");
    }
    assert_eq!(*alert.record, fixture("console-login-iam-user-no-mfa.json"));
}

#[test]
fn root_login_without_mfa_names_root() {
    let outcome = run_payload(&data_message_of_fixtures(&[
        "console-login-root-no-mfa.json",
    ]));
    let alert = only_alert(&outcome);
    assert_eq!(
        alert.subject(),
        "[HIGH] Console login without MFA: root in 123456789012 (us-east-1)"
    );
}

#[test]
fn identity_center_sign_in_does_not_alert() {
    let outcome = run_payload(&data_message_of_fixtures(&[
        "console-login-sso-assumed-role.json",
    ]));
    assert_eq!(outcome.events_processed, 1);
    assert!(outcome.alerts.is_empty(), "{:#?}", outcome.alerts);
    assert!(outcome.skipped.is_empty());
}

#[test]
fn control_message_yields_no_events_and_no_error() {
    let payload = encode_payload(&control_message_json());
    let batch =
        parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).expect("decodes");
    assert!(batch.control_message);
    assert!(batch.records.is_empty());
    let outcome = pipeline::run(&builtin(), batch);
    assert_eq!(outcome.control_messages, 1);
    assert_eq!(outcome.events_read(), 0);
    assert!(outcome.alerts.is_empty());
}

#[test]
fn non_json_message_is_skipped_with_its_log_event_id_and_the_rest_alert() {
    let no_mfa = compact("console-login-iam-user-no-mfa.json");
    let stop = compact("stop-logging-success.json");
    let payload = data_message(&[&no_mfa, "this is not JSON {", &stop]);
    let outcome = run_payload(&payload);
    assert_eq!(outcome.events_processed, 2);
    assert_eq!(outcome.events_read(), 3);
    assert_eq!(
        rule_names(&outcome),
        ["console-login-without-mfa", "cloudtrail-logging-changed"]
    );
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].id, RecordId::LogEvent(log_event_id(1)));
    assert!(
        matches!(
            &outcome.skipped[0].reason,
            SkipReason::NotCloudTrail(RecordError::NotJson(_))
        ),
        "{:?}",
        outcome.skipped[0]
    );
}

#[test]
fn update_trail_with_a_bad_cloudwatch_role_is_a_failed_change() {
    let outcome = run_payload(&data_message_of_fixtures(&[
        "update-trail-invalid-cwl-role.json",
    ]));
    let alert = only_alert(&outcome);
    assert_eq!(alert.rule, "cloudtrail-change-failed");
    assert_eq!(alert.severity, Severity::Medium);
    assert_eq!(
        alert.event.error_code.as_deref(),
        Some("InvalidCloudWatchLogsRoleArnException")
    );
    assert_eq!(
        alert.event.actor,
        "AWSReservedSSO_AdministratorAccess_a1b2c3d4e5f60718/maria@example.com"
    );
    assert_eq!(alert.event.region, "eu-west-1");
    assert!(
        alert
            .subject()
            .starts_with("[MEDIUM] Failed change to a CloudTrail trail: "),
        "{}",
        alert.subject()
    );
    let body = alert.text_body();
    assert!(
        body.contains(
            "UpdateTrail on cloudtrail.amazonaws.com failed (InvalidCloudWatchLogsRoleArnException)"
        ),
        "{body}"
    );
    assert!(
        body.contains("Access denied. Check the trust relationships for your role."),
        "{body}"
    );
    assert!(body.contains(&console_link(
        "eu-west-1",
        "1687f002-cc00-48af-80a6-620fb911f9a9"
    )));
}

#[test]
fn stop_logging_success_is_a_logging_change() {
    let outcome = run_payload(&data_message_of_fixtures(&["stop-logging-success.json"]));
    let alert = only_alert(&outcome);
    assert_eq!(alert.rule, "cloudtrail-logging-changed");
    assert_eq!(
        alert.rule_id.as_deref(),
        Some("53e7da70-5685-498a-8fd0-8a8c00fcf945")
    );
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.event.actor, "ec2-app-server/i-0a1b2c3d4e5f67890");
    assert_eq!(alert.event.error_code, None);
    // Too long for an SNS subject: cut to 99 characters with a marker.
    let subject = alert.subject();
    assert_eq!(subject.len(), 99, "{subject}");
    assert!(
        subject.starts_with(
            "[HIGH] CloudTrail trail changed or logging stopped: ec2-app-server/i-0a1b2c3d4e5f67890 in 1111"
        ) && subject.ends_with("..."),
        "{subject}"
    );
    assert!(alert.text_body().contains(&console_link(
        "us-east-1",
        "cc05a6c2-e572-4333-81da-3c3b1ac2e7cd"
    )));
}

/// Every fixture and the built-in rules that must fire on it.
const EXPECTED: &[(&str, &[&str])] = &[
    ("console-login-federated-user.json", &[]),
    ("console-login-iam-user-failed.json", &[]),
    (
        "console-login-iam-user-no-mfa.json",
        &["console-login-without-mfa"],
    ),
    ("console-login-iam-user-with-mfa.json", &[]),
    (
        "console-login-root-no-mfa.json",
        &["console-login-without-mfa"],
    ),
    ("console-login-root-with-mfa.json", &[]),
    ("console-login-saml-federated.json", &[]),
    ("console-login-sso-assumed-role.json", &[]),
    ("delete-trail-not-found.json", &["cloudtrail-change-failed"]),
    ("delete-trail-success.json", &["cloudtrail-logging-changed"]),
    ("describe-trails-access-denied.json", &[]),
    ("describe-trails.json", &[]),
    ("get-trail-status.json", &[]),
    ("lookup-events.json", &[]),
    (
        "put-event-selectors-management-events-off.json",
        &["cloudtrail-logging-changed"],
    ),
    (
        "start-logging-console.json",
        &["cloudtrail-logging-changed"],
    ),
    (
        "stop-logging-access-denied.json",
        &["cloudtrail-change-failed"],
    ),
    ("stop-logging-success.json", &["cloudtrail-logging-changed"]),
    (
        "update-trail-cwl-success.json",
        &["cloudtrail-logging-changed"],
    ),
    (
        "update-trail-invalid-cwl-role.json",
        &["cloudtrail-change-failed"],
    ),
];

#[test]
fn every_fixture_fires_exactly_the_expected_rules() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("tests/fixtures/events"))
        .expect("fixtures dir")
        .map(|entry| entry.expect("dir entry").file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "EXPECTED must list every fixture");

    let rules = builtin();
    let texts: Vec<String> = listed.iter().map(|name| compact(name)).collect();
    let messages: Vec<&str> = texts.iter().map(String::as_str).collect();
    let outcome = run_payload(&data_message(&messages));
    assert_eq!(outcome.events_processed, EXPECTED.len() as u64);
    for (name, expected) in EXPECTED {
        let id = event_id(name);
        let fired: Vec<&str> = outcome
            .alerts
            .iter()
            .filter(|a| a.event.event_id == id)
            .map(|a| a.rule.as_str())
            .collect();
        assert_eq!(&fired, expected, "{name}");
        let direct: Vec<&str> = rules
            .matching(&fixture(name))
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(&direct, expected, "{name} via RuleSet::matching");
    }
}

#[test]
fn alerts_keep_input_order_across_a_batch() {
    let outcome = run_payload(&data_message_of_fixtures(&[
        "stop-logging-success.json",
        "describe-trails.json",
        "console-login-iam-user-no-mfa.json",
        "update-trail-invalid-cwl-role.json",
    ]));
    assert_eq!(
        rule_names(&outcome),
        [
            "cloudtrail-logging-changed",
            "console-login-without-mfa",
            "cloudtrail-change-failed"
        ]
    );
    assert_eq!(outcome.alerts_per_rule().len(), 3);
}

#[test]
fn payloads_are_padded_like_cloudwatch_and_unpadded_is_accepted_too() {
    let payloads: Vec<String> = EXPECTED
        .iter()
        .map(|(name, _)| data_message_of_fixtures(&[name]))
        .collect();
    let datas: Vec<String> = payloads.iter().map(|p| awslogs_data(p)).collect();
    assert!(datas.iter().all(|d| d.len() % 4 == 0));
    let padded = datas
        .iter()
        .position(|d| d.ends_with('='))
        .expect("at least one payload needs '=' padding");

    let unpadded = envelope(datas[padded].trim_end_matches('='));
    let a = parse_subscription_event(payloads[padded].as_bytes(), DecodeLimits::default())
        .expect("padded decodes");
    let b = parse_subscription_event(unpadded.as_bytes(), DecodeLimits::default())
        .expect("unpadded decodes");
    assert_eq!(a, b);
    assert_eq!(a.records.len(), 1);
}

#[test]
fn invalid_base64_is_a_base64_error() {
    let err = parse_subscription_event(
        envelope("H4sI!!!not base64***").as_bytes(),
        DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::Base64(_)), "{err}");
    assert!(err.to_string().contains("awslogs.data is not valid base64"));
}

#[test]
fn truncated_gzip_in_awslogs_data_is_a_gzip_error() {
    let gz =
        gzip(subscription_json("DATA_MESSAGE", &[&compact("describe-trails.json")]).as_bytes());
    let payload = envelope(&base64_padded(&gz[..gz.len() / 2]));
    let err = parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, IngestError::Gzip(_)), "{err}");
}

#[test]
fn gzip_bomb_in_awslogs_data_stops_at_the_limit() {
    let payload = envelope(&base64_padded(gzip_bomb()));
    let err = parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(err, IngestError::TooLarge { limit } if limit == DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "{}-byte limit",
            DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES
        )),
        "{err}"
    );
    assert!(
        !err.to_string().contains("--"),
        "no shell's flag in a library error: {err}"
    );
}

#[test]
fn decoded_size_bound_applies_to_small_payloads_too() {
    let payload = data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]);
    let small = DecodeLimits {
        max_decompressed_bytes: 1000,
    };
    let err = parse_subscription_event(payload.as_bytes(), small).unwrap_err();
    assert!(
        matches!(err, IngestError::TooLarge { limit: 1000 }),
        "{err}"
    );
    let roomy = DecodeLimits {
        max_decompressed_bytes: 100_000,
    };
    assert!(parse_subscription_event(payload.as_bytes(), roomy).is_ok());
}

#[test]
fn unknown_message_type_is_an_error_naming_it() {
    let payload = encode_payload(&subscription_json("SURPRISE_MESSAGE", &[]));
    let err = parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, IngestError::UnknownMessageType(ref t) if t == "SURPRISE_MESSAGE"));
}

#[test]
fn deeply_nested_record_is_skipped_not_a_stack_overflow() {
    let deep = format!(
        "{{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"x\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let stop = compact("stop-logging-success.json");
    let outcome = run_payload(&data_message(&[&deep, &stop]));
    assert_eq!(outcome.events_processed, 1);
    assert_eq!(outcome.skipped.len(), 1);
    assert!(
        matches!(
            &outcome.skipped[0].reason,
            SkipReason::NotCloudTrail(RecordError::NotJson(message)) if message.contains("recursion limit")
        ),
        "{:?}",
        outcome.skipped
    );
    assert_eq!(rule_names(&outcome), ["cloudtrail-logging-changed"]);
}

#[test]
fn parse_input_detects_the_same_records_in_every_format() {
    let names = [
        "console-login-iam-user-no-mfa.json",
        "stop-logging-success.json",
    ];
    let texts: Vec<String> = names.iter().map(|n| compact(n)).collect();
    let messages: Vec<&str> = texts.iter().map(String::as_str).collect();
    let archive = format!("{{\"Records\":[{}]}}", texts.join(","));
    let lines = texts.join("\n");
    let cases: Vec<(Vec<u8>, InputFormat)> = vec![
        (
            data_message(&messages).into_bytes(),
            InputFormat::SubscriptionPayload,
        ),
        (
            subscription_json("DATA_MESSAGE", &messages).into_bytes(),
            InputFormat::SubscriptionData,
        ),
        (archive.clone().into_bytes(), InputFormat::Archive),
        (gzip(archive.as_bytes()), InputFormat::Archive),
        (lines.clone().into_bytes(), InputFormat::JsonLines),
        (gzip(lines.as_bytes()), InputFormat::JsonLines),
        (
            format!("[{}]", texts.join(",")).into_bytes(),
            InputFormat::RecordArray,
        ),
    ];
    let rules = builtin();
    for (bytes, format) in cases {
        let batch = parse_input(bytes, DecodeLimits::default()).expect("parses");
        assert_eq!(batch.format, Some(format));
        let outcome = pipeline::run(&rules, batch);
        assert_eq!(
            rule_names(&outcome),
            ["console-login-without-mfa", "cloudtrail-logging-changed"],
            "{format:?}"
        );
    }
}
