//! `--format json` lines and the CLI's exit codes: 0 normally, 1 with `--fail-on-alert`
//! when something alerted, 2 on unreadable input or broken rules.

use serde_json::{Value, json};

use crate::common::*;

/// A rule of our own, used with `--rules`.
const DESCRIBE_RULE: &str = "title: Trails described
name: trails-described
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: DescribeTrails
  condition: selection
level: low
";

fn fields(alert: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    alert.get(*k).cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

const KEYS: &[&str] = &[
    "rule",
    "rule_id",
    "title",
    "severity",
    "event_id",
    "event_name",
    "event_source",
    "event_time",
    "account_id",
    "region",
    "actor",
    "actor_type",
    "source_ip",
    "error_code",
];

#[test]
fn json_alert_lines_carry_the_summary_fields() {
    let dir = TempDir::new();
    let path = dir.write(
        "payload.json",
        data_message_of_fixtures(&[
            "console-login-iam-user-no-mfa.json",
            "update-trail-invalid-cwl-role.json",
        ]),
    );
    let run = scan_json(&path, &[]);
    run.assert_code(0);
    assert_eq!(run.stdout.lines().count(), 2, "one JSON object per line");
    let alerts = run.json_alerts();
    assert_eq!(
        fields(&alerts[0], KEYS),
        json!({
            "rule": "console-login-without-mfa",
            "rule_id": alerts[0]["rule_id"],
            "title": "Console login without MFA",
            "severity": "high",
            "event_id": "e98a9db4-d1d1-476b-b0a3-5b7cbdb8c04c",
            "event_name": "ConsoleLogin",
            "event_source": "signin.amazonaws.com",
            "event_time": "2026-11-21T07:48:13Z",
            "account_id": "111122223333",
            "region": "us-east-1",
            "actor": "maria",
            "actor_type": "IAMUser",
            "source_ip": "203.0.113.47",
            "error_code": null,
        })
    );
    assert!(
        alerts[0]["rule_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "rule_id is the Sigma UUID: {}",
        alerts[0]
    );
    assert_eq!(
        fields(&alerts[1], KEYS),
        json!({
            "rule": "cloudtrail-change-failed",
            "rule_id": "60f13e0a-921f-4eaa-9be2-6af147bb8621",
            "title": "Failed change to a CloudTrail trail",
            "severity": "medium",
            "event_id": "1687f002-cc00-48af-80a6-620fb911f9a9",
            "event_name": "UpdateTrail",
            "event_source": "cloudtrail.amazonaws.com",
            "event_time": "2026-11-21T09:14:38Z",
            "account_id": "111122223333",
            "region": "eu-west-1",
            "actor": "AWSReservedSSO_AdministratorAccess_a1b2c3d4e5f60718/maria@example.com",
            "actor_type": "AssumedRole",
            "source_ip": "203.0.113.47",
            "error_code": "InvalidCloudWatchLogsRoleArnException",
        })
    );
    assert_eq!(
        alerts[1]["error_message"],
        "Access denied. Check the trust relationships for your role."
    );
    assert_eq!(
        alerts[1]["record"],
        fixture("update-trail-invalid-cwl-role.json")
    );
    assert!(alerts[1]["tags"].is_array());
    for alert in &alerts {
        for prose in ["description", "runbook", "falsepositives"] {
            assert!(alert.get(prose).is_none(), "{prose} is left out: {alert}");
        }
    }
}

#[test]
fn json_format_prints_nothing_on_stdout_without_alerts() {
    let run = scan_json(&fixture_path("describe-trails.json"), &[]);
    run.assert_code(0);
    assert_eq!(run.stdout, "");
}

#[test]
fn alerts_without_fail_on_alert_exit_zero() {
    scan(&fixture_path("stop-logging-success.json"), &[]).assert_code(0);
}

#[test]
fn fail_on_alert_exits_one_when_something_alerted() {
    let run = scan(
        &fixture_path("console-login-root-no-mfa.json"),
        &["--fail-on-alert"],
    );
    run.assert_code(1);
    assert_eq!(run.text_alert_rules(), ["console-login-without-mfa"]);
    assert!(run.summary().contains("1 alert(s)"));
}

#[test]
fn fail_on_alert_exits_zero_when_nothing_alerted() {
    let run = scan(
        &fixture_path("console-login-iam-user-with-mfa.json"),
        &["--fail-on-alert"],
    );
    run.assert_code(0);
    assert!(run.summary().contains("0 alert(s)"));
}

#[test]
fn missing_file_exits_two_and_names_it() {
    let dir = TempDir::new();
    let missing = dir.path().join("no-such-file.json");
    let run = scan(&missing, &[]);
    run.assert_code(2).assert_stderr_has(&[
        &format!("trailwatch: {0}: cannot read {0}", missing.display()),
        "No such file or directory",
        "1 input(s) unreadable",
    ]);
    assert_eq!(run.stdout, "");
}

#[test]
fn one_unreadable_input_still_scans_the_others_and_exits_two() {
    let dir = TempDir::new();
    let good = dir.write(
        "good.json",
        data_message_of_fixtures(&["stop-logging-success.json"]),
    );
    let missing = dir.path().join("missing.json");
    let run = trailwatch(&args(&[&"scan", &"--fail-on-alert", &missing, &good]));
    run.assert_code(2);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
    assert_eq!(
        run.summary(),
        "trailwatch: 1 event(s) read from 1 input(s): 1 processed, 0 skipped; 1 alert(s); 1 input(s) unreadable"
    );
}

#[test]
fn invalid_base64_exits_two_and_says_so() {
    let dir = TempDir::new();
    let path = dir.write("bad64.json", envelope("H4sIAAAA%%%%not-base64%%%%"));
    scan(&path, &[])
        .assert_code(2)
        .assert_stderr_has(&["awslogs.data is not valid base64"]);
}

#[test]
fn truncated_gzip_file_exits_two_and_says_so() {
    let gz = gzip(format!("{{\"Records\":[{}]}}", compact("stop-logging-success.json")).as_bytes());
    let dir = TempDir::new();
    let path = dir.write("truncated.json.gz", &gz[..gz.len() * 2 / 3]);
    let run = scan(&path, &[]);
    run.assert_code(2)
        .assert_stderr_has(&["gzip stream is corrupt or truncated"]);
    assert_eq!(run.stdout, "");
}

#[test]
fn truncated_gzip_inside_awslogs_data_exits_two() {
    let json = subscription_json("DATA_MESSAGE", &[&compact("stop-logging-success.json")]);
    let gz = gzip(json.as_bytes());
    let dir = TempDir::new();
    let path = dir.write(
        "payload.json",
        envelope(&base64_padded(&gz[..gz.len() - 9])),
    );
    scan(&path, &[])
        .assert_code(2)
        .assert_stderr_has(&["gzip stream is corrupt or truncated"]);
}

#[test]
fn unreadable_input_beats_fail_on_alert() {
    let dir = TempDir::new();
    let path = dir.write("bad64.json", envelope("***"));
    scan(&path, &["--fail-on-alert"]).assert_code(2);
}

#[test]
fn custom_rules_dir_replaces_the_builtin_rules() {
    let dir = TempDir::new();
    dir.write("rules/trails-described.yml", DESCRIBE_RULE);
    let rules = dir.path().join("rules");
    let payload = dir.write(
        "payload.json",
        data_message_of_fixtures(&["describe-trails.json", "stop-logging-success.json"]),
    );
    let run = trailwatch(&args(&[
        &"scan",
        &"--format",
        &"json",
        &"--rules",
        &rules,
        &payload,
    ]));
    run.assert_code(0);
    assert_eq!(run.json_alert_rules(), ["trails-described"]);
    assert_eq!(run.json_alerts()[0]["severity"], "low");
    assert_eq!(run.json_alerts()[0]["rule_id"], Value::Null);
}

#[test]
fn broken_rules_dir_exits_two_with_path_line_reason() {
    let dir = TempDir::new();
    dir.write("rules/good.yml", DESCRIBE_RULE);
    let broken = dir.write(
        "rules/broken.yml",
        DESCRIBE_RULE
            .replace("name: trails-described", "name: broken")
            .replace("level: low", "level: urgent"),
    );
    let rules = dir.path().join("rules");
    let payload = fixture_path("describe-trails.json");
    let run = trailwatch(&args(&[&"scan", &"--rules", &rules, &payload]));
    run.assert_code(2).assert_stderr_has(&[
        &format!("{}:11: unknown level \"urgent\"", broken.display()),
        "trailwatch: 1 problem(s) in rule files",
    ]);
    assert_eq!(run.stdout, "", "no scan happens with broken rules");
}

#[test]
fn missing_rules_dir_exits_two() {
    let dir = TempDir::new();
    let rules = dir.path().join("nope");
    let run = trailwatch(&args(&[
        &"scan",
        &"--rules",
        &rules,
        &fixture_path("describe-trails.json"),
    ]));
    run.assert_code(2)
        .assert_stderr_has(&["cannot read rule directory", "nope"]);
}
