//! Every input format `trailwatch scan` accepts, detected from the content rather than the
//! file name: each case holds the same two records and must give the same two alerts.

use crate::common::*;

const NO_MFA: &str = "console-login-iam-user-no-mfa.json";
const STOP: &str = "stop-logging-success.json";
const SSO: &str = "console-login-sso-assumed-role.json";

/// The three records every format carries: two that alert, one that does not.
fn records() -> Vec<String> {
    [NO_MFA, SSO, STOP].iter().map(|n| compact(n)).collect()
}

fn archive() -> String {
    format!("{{\"Records\":[{}]}}", records().join(","))
}

fn json_lines() -> String {
    records().join("\n") + "\n"
}

fn subscription_data() -> String {
    let records = records();
    let messages: Vec<&str> = records.iter().map(String::as_str).collect();
    subscription_json("DATA_MESSAGE", &messages)
}

/// Asserts the run found the three records and alerted on exactly the two expected ones.
#[track_caller]
fn assert_two_alerts(run: &Run) {
    run.assert_code(0);
    let alerts = run.json_alerts();
    let got: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or_default(),
                a["event_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let (no_mfa, stop) = (event_id(NO_MFA), event_id(STOP));
    assert_eq!(
        got,
        [
            ("console-login-without-mfa", no_mfa.as_str()),
            ("cloudtrail-logging-changed", stop.as_str())
        ],
        "{run}"
    );
    assert!(
        run.summary()
            .contains("3 event(s) read from 1 input(s): 3 processed, 0 skipped; 2 alert(s)"),
        "{run}"
    );
}

fn scan_file(name: &str, bytes: impl AsRef<[u8]>) -> Run {
    let dir = TempDir::new();
    let path = dir.write(name, bytes);
    scan_json(&path, &[])
}

#[test]
fn encoded_subscription_payload() {
    let records = records();
    let messages: Vec<&str> = records.iter().map(String::as_str).collect();
    assert_two_alerts(&scan_file("payload.json", data_message(&messages)));
}

#[test]
fn decoded_subscription_json() {
    assert_two_alerts(&scan_file("decoded.json", subscription_data()));
}

#[test]
fn decoded_subscription_json_gzipped() {
    assert_two_alerts(&scan_file(
        "decoded.json.gz",
        gzip(subscription_data().as_bytes()),
    ));
}

#[test]
fn cloudtrail_archive_json() {
    assert_two_alerts(&scan_file("archive.json", archive()));
}

#[test]
fn cloudtrail_archive_pretty_printed() {
    let value: serde_json::Value = serde_json::from_str(&archive()).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    assert_two_alerts(&scan_file("archive.json", pretty));
}

#[test]
fn cloudtrail_archive_json_gz() {
    // The name CloudTrail gives S3 log files.
    assert_two_alerts(&scan_file(
        "111122223333_CloudTrail_us-east-1_20261121T0750Z_a1b2c3d4e5f60718.json.gz",
        gzip(archive().as_bytes()),
    ));
}

#[test]
fn json_lines_file() {
    assert_two_alerts(&scan_file("events.jsonl", json_lines()));
}

#[test]
fn json_lines_gz() {
    assert_two_alerts(&scan_file("events.jsonl.gz", gzip(json_lines().as_bytes())));
}

#[test]
fn json_lines_with_crlf_and_blank_lines() {
    let text = format!("\r\n{}\r\n\r\n", records().join("\r\n\r\n"));
    assert_two_alerts(&scan_file("events.jsonl", text));
}

#[test]
fn json_array_of_records() {
    assert_two_alerts(&scan_file(
        "array.json",
        format!("[{}]", records().join(",")),
    ));
}

#[test]
fn single_pretty_printed_record_file() {
    let run = scan_json(&fixture_path(NO_MFA), &[]);
    run.assert_code(0);
    assert_eq!(run.json_alert_rules(), ["console-login-without-mfa"]);
    assert!(run.summary().contains("1 processed, 0 skipped; 1 alert(s)"));
}

#[test]
fn archive_named_txt_is_detected_from_content() {
    assert_two_alerts(&scan_file("notes.txt", archive()));
}

#[test]
fn gzip_without_gz_extension_is_detected_from_content() {
    assert_two_alerts(&scan_file("archive.json", gzip(archive().as_bytes())));
}

#[test]
fn gzipped_json_lines_named_log_is_detected_from_content() {
    assert_two_alerts(&scan_file("cloudtrail.log", gzip(json_lines().as_bytes())));
}

#[test]
fn payload_without_extension_is_detected_from_content() {
    let records = records();
    let messages: Vec<&str> = records.iter().map(String::as_str).collect();
    assert_two_alerts(&scan_file("lambda-event", data_message(&messages)));
}

#[test]
fn json_lines_named_json_is_detected_from_content() {
    assert_two_alerts(&scan_file("events.json", json_lines()));
}

#[test]
fn byte_order_mark_is_ignored() {
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(archive().as_bytes());
    assert_two_alerts(&scan_file("bom.json", bytes));
}

#[test]
fn stdin_payload_via_dash() {
    let records = records();
    let messages: Vec<&str> = records.iter().map(String::as_str).collect();
    let run = trailwatch_stdin(
        &["scan", "--format", "json", "-"],
        data_message(&messages).as_bytes(),
    );
    assert_two_alerts(&run);
}

#[test]
fn stdin_gzipped_archive_via_dash() {
    let run = trailwatch_stdin(
        &["scan", "--format", "json", "-"],
        &gzip(archive().as_bytes()),
    );
    assert_two_alerts(&run);
}

#[test]
fn stdin_and_files_mix() {
    let dir = TempDir::new();
    let path = dir.write("archive.json", archive());
    let path = path.to_str().expect("UTF-8 temp path");
    let run = trailwatch_stdin(
        &["scan", "--format", "json", "-", path],
        json_lines().as_bytes(),
    );
    run.assert_code(0);
    assert_eq!(run.json_alerts().len(), 4);
    assert!(
        run.summary()
            .contains("6 event(s) read from 2 input(s): 6 processed, 0 skipped; 4 alert(s)"),
        "{run}"
    );
}

#[test]
fn stdin_skips_are_reported_with_dash_as_the_input_name() {
    let text = format!("{}\nnot json at all\n", compact(STOP));
    let run = trailwatch_stdin(&["scan", "-"], text.as_bytes());
    run.assert_code(0)
        .assert_stderr_has(&["  skipped -: line 2: not JSON"]);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
}
