//! `trailwatch scan` on encoded CloudWatch Logs subscription payloads, the way a Lambda
//! receives them, built on the fly from the fixtures.

use crate::common::*;

/// Writes an encoded payload to a temp file and scans it (text output).
fn scan_payload(payload: &str) -> (TempDir, Run) {
    let dir = TempDir::new();
    let path = dir.write("payload.json", payload);
    let run = scan(&path, &[]);
    (dir, run)
}

#[test]
fn console_login_without_mfa_prints_an_alert() {
    let (_dir, run) = scan_payload(&data_message_of_fixtures(&[
        "console-login-iam-user-no-mfa.json",
    ]));
    run.assert_code(0).assert_stdout_has(&[
        "HIGH Console login without MFA  [console-login-without-mfa]",
        "ConsoleLogin on signin.amazonaws.com succeeded",
        "who:     maria (IAMUser)",
        "where:   account 111122223333 region us-east-1 from 203.0.113.47",
        "when:    2026-11-21T07:48:13Z",
        "event:   e98a9db4-d1d1-476b-b0a3-5b7cbdb8c04c",
    ]);
    assert_eq!(run.text_alert_rules(), ["console-login-without-mfa"]);
    assert_eq!(
        run.summary(),
        "trailwatch: 1 event(s) read from 1 input(s): 1 processed, 0 skipped; 1 alert(s)"
    );
    run.assert_stderr_has(&["1  console-login-without-mfa"]);
}

#[test]
fn identity_center_sign_in_prints_nothing() {
    let (_dir, run) = scan_payload(&data_message_of_fixtures(&[
        "console-login-sso-assumed-role.json",
    ]));
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.summary(),
        "trailwatch: 1 event(s) read from 1 input(s): 1 processed, 0 skipped; 0 alert(s)"
    );
}

#[test]
fn control_message_has_no_events_and_exits_zero() {
    let (_dir, run) = scan_payload(&encode_payload(&control_message_json()));
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.summary(),
        "trailwatch: 0 event(s) read from 1 input(s): 0 processed, 0 skipped; 0 alert(s)"
    );
    assert!(!run.stderr.contains("error"), "{run}");
    assert!(!run.stderr.contains("skipped "), "{run}");
}

#[test]
fn control_message_with_fail_on_alert_still_exits_zero() {
    let dir = TempDir::new();
    let path = dir.write("control.json", encode_payload(&control_message_json()));
    scan(&path, &["--fail-on-alert"]).assert_code(0);
}

#[test]
fn non_json_message_is_skipped_by_log_event_id_and_the_good_ones_alert() {
    let no_mfa = compact("console-login-iam-user-no-mfa.json");
    let failed = compact("update-trail-invalid-cwl-role.json");
    let stop = compact("stop-logging-success.json");
    let payload = data_message(&[&no_mfa, "CloudTrail says hello", &failed, &stop]);
    let dir = TempDir::new();
    let path = dir.write("mixed.json", payload);
    let run = scan(&path, &[]);
    run.assert_code(0);
    assert_eq!(
        run.text_alert_rules(),
        [
            "console-login-without-mfa",
            "cloudtrail-change-failed",
            "cloudtrail-logging-changed"
        ]
    );
    assert_eq!(
        run.summary(),
        "trailwatch: 4 event(s) read from 1 input(s): 3 processed, 1 skipped; 3 alert(s)"
    );
    let skip_line = format!(
        "  skipped {}: log event {}: not JSON",
        path.display(),
        log_event_id(1)
    );
    run.assert_stderr_has(&[&skip_line]);
    assert_eq!(run.stderr.matches("  skipped ").count(), 1, "{run}");
}

#[test]
fn log_event_that_is_json_but_not_a_record_is_skipped_with_the_reason() {
    let stop = compact("stop-logging-success.json");
    let payload = data_message(&[r#"{"hello":"world"}"#, "[1,2]", &stop]);
    let dir = TempDir::new();
    let path = dir.write("odd.json", payload);
    let run = scan(&path, &[]);
    run.assert_code(0);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
    run.assert_stderr_has(&[
        &format!(
            "log event {}: not a CloudTrail record: no string `eventName`",
            log_event_id(0)
        ),
        &format!(
            "log event {}: not a CloudTrail record: JSON array instead of an object",
            log_event_id(1)
        ),
        "3 event(s) read from 1 input(s): 1 processed, 2 skipped; 1 alert(s)",
    ]);
}

#[test]
fn update_trail_invalid_cloudwatch_role_is_a_failed_change() {
    let (_dir, run) = scan_payload(&data_message_of_fixtures(&[
        "update-trail-invalid-cwl-role.json",
    ]));
    run.assert_code(0).assert_stdout_has(&[
        "MEDIUM Failed change to a CloudTrail trail  [cloudtrail-change-failed]",
        "UpdateTrail on cloudtrail.amazonaws.com failed: InvalidCloudWatchLogsRoleArnException (Access denied. Check the trust relationships for your role.)",
        "region eu-west-1",
    ]);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-change-failed"]);
}

#[test]
fn stop_logging_success_is_a_logging_change() {
    let (_dir, run) = scan_payload(&data_message_of_fixtures(&["stop-logging-success.json"]));
    run.assert_code(0).assert_stdout_has(&[
        "HIGH CloudTrail trail changed or logging stopped  [cloudtrail-logging-changed]",
        "StopLogging on cloudtrail.amazonaws.com succeeded",
        "who:     ec2-app-server/i-0a1b2c3d4e5f67890 (AssumedRole)",
    ]);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
}

#[test]
fn several_payload_files_share_one_summary() {
    let dir = TempDir::new();
    let a = dir.write(
        "a.json",
        data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]),
    );
    let b = dir.write("b.json", encode_payload(&control_message_json()));
    let c = dir.write(
        "c.json",
        data_message_of_fixtures(&["stop-logging-access-denied.json", "describe-trails.json"]),
    );
    let run = trailwatch(&args(&[&"scan", &"--format", &"json", &a, &b, &c]));
    run.assert_code(0);
    assert_eq!(
        run.json_alert_rules(),
        ["console-login-without-mfa", "cloudtrail-change-failed"]
    );
    assert_eq!(
        run.summary(),
        "trailwatch: 3 event(s) read from 3 input(s): 3 processed, 0 skipped; 2 alert(s)"
    );
}
