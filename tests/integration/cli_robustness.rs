//! Hostile and malformed input: the CLI never panics, never overflows its stack, and
//! either skips the bad part (exit 0) or says what is wrong (exit 2).

use crate::common::*;

fn scan_bytes(name: &str, bytes: impl AsRef<[u8]>, extra: &[&str]) -> Run {
    let dir = TempDir::new();
    let path = dir.write(name, bytes);
    scan(&path, extra)
}

#[test]
fn gzip_bomb_file_fails_on_the_default_limit() {
    let run = scan_bytes("bomb.json.gz", gzip_bomb(), &[]);
    run.assert_code(2).assert_stderr_has(&[
        "input exceeds the 33554432-byte limit on decompressed size",
        "--max-bytes",
    ]);
    assert_eq!(run.stdout, "");
}

#[test]
fn gzip_bomb_inside_awslogs_data_fails_on_the_default_limit() {
    let run = scan_bytes(
        "bomb-payload.json",
        envelope(&base64_padded(gzip_bomb())),
        &[],
    );
    run.assert_code(2)
        .assert_stderr_has(&["input exceeds the 33554432-byte limit"]);
}

#[test]
fn max_bytes_bounds_a_small_gzipped_payload() {
    let payload = data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]);
    // The compressed file is under 1000 bytes; what it decompresses to is not.
    let gz = gzip(payload.as_bytes());
    assert!(gz.len() < 1000 && payload.len() > 1000);
    scan_bytes("small.json.gz", &gz, &["--max-bytes", "1000"])
        .assert_code(2)
        .assert_stderr_has(&["input exceeds the 1000-byte limit", "--max-bytes"]);
}

#[test]
fn max_bytes_bounds_an_encoded_payload() {
    let payload = data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]);
    scan_bytes("payload.json", &payload, &["--max-bytes", "1000"])
        .assert_code(2)
        .assert_stderr_has(&["input exceeds the 1000-byte limit"]);
}

#[test]
fn max_bytes_above_the_input_size_lets_it_through() {
    let payload = data_message_of_fixtures(&["console-login-iam-user-no-mfa.json"]);
    let run = scan_bytes("payload.json", &payload, &["--max-bytes", "100000"]);
    run.assert_code(0);
    assert_eq!(run.text_alert_rules(), ["console-login-without-mfa"]);
}

#[test]
fn max_bytes_must_be_a_number() {
    let run = trailwatch(&args(&[
        &"scan",
        &"--max-bytes",
        &"lots",
        &fixture_path("describe-trails.json"),
    ]));
    run.assert_code(2).assert_stderr_has(&["--max-bytes"]);
}

#[test]
fn invalid_base64_is_an_error_not_a_panic() {
    for data in ["!!!!", "H4sI", "=", "", "\u{e9}\u{e9}\u{e9}\u{e9}"] {
        let run = scan_bytes("payload.json", envelope(data), &[]);
        run.assert_code(2);
        assert!(
            run.stderr.contains("awslogs.data is not valid base64")
                || run.stderr.contains("gzip stream is corrupt or truncated")
                || run.stderr.contains("not CloudWatch Logs subscription JSON"),
            "data {data:?}\n{run}"
        );
    }
}

#[test]
fn awslogs_data_that_is_not_a_string_is_an_envelope_error() {
    let run = scan_bytes("payload.json", r#"{"awslogs":{"data":42}}"#, &[]);
    run.assert_code(2)
        .assert_stderr_has(&["not a CloudWatch Logs subscription payload"]);
}

#[test]
fn awslogs_data_that_is_not_gzip_is_an_error() {
    let data = base64_padded(subscription_json("DATA_MESSAGE", &[]).as_bytes());
    scan_bytes("payload.json", envelope(&data), &[])
        .assert_code(2)
        .assert_stderr_has(&["gzip stream is corrupt or truncated"]);
}

#[test]
fn gzip_of_garbage_inside_awslogs_data_is_a_subscription_error() {
    let data = base64_padded(&gzip(b"definitely not json"));
    scan_bytes("payload.json", envelope(&data), &[])
        .assert_code(2)
        .assert_stderr_has(&["decoded awslogs.data is not CloudWatch Logs subscription JSON"]);
}

#[test]
fn unknown_message_type_is_an_error_naming_it() {
    let payload = encode_payload(&subscription_json("SURPRISE_MESSAGE", &[]));
    scan_bytes("payload.json", payload, &[])
        .assert_code(2)
        .assert_stderr_has(&["unknown subscription messageType \"SURPRISE_MESSAGE\""]);
}

#[test]
fn non_utf8_line_in_json_lines_is_a_counted_skip() {
    let mut bytes = compact("stop-logging-success.json").into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe{\"eventName\":\"\xc3\x28\"}\n");
    bytes.extend_from_slice(compact("console-login-root-no-mfa.json").as_bytes());
    bytes.push(b'\n');
    let dir = TempDir::new();
    let path = dir.write("events.jsonl", &bytes);
    let run = scan(&path, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "3 event(s) read from 1 input(s): 2 processed, 1 skipped; 2 alert(s)",
        &format!("  skipped {}: line 2: not UTF-8", path.display()),
    ]);
    assert_eq!(
        run.text_alert_rules(),
        ["cloudtrail-logging-changed", "console-login-without-mfa"]
    );
}

#[test]
fn non_utf8_line_in_gzipped_json_lines_is_a_counted_skip() {
    let mut bytes = b"\x80\x81\x82\n".to_vec();
    bytes.extend_from_slice(compact("stop-logging-success.json").as_bytes());
    let run = scan_bytes("events.jsonl.gz", gzip(&bytes), &[]);
    run.assert_code(0)
        .assert_stderr_has(&["1 processed, 1 skipped", ": line 1: not UTF-8"]);
}

#[test]
fn non_utf8_inside_a_subscription_message_is_an_error_or_a_skip() {
    // Raw invalid UTF-8 inside the JSON string of a log event's message.
    let json = subscription_json(
        "DATA_MESSAGE",
        &["PLACEHOLDER", &compact("stop-logging-success.json")],
    );
    let mut bytes = Vec::new();
    let (before, after) = json.split_once("PLACEHOLDER").unwrap();
    bytes.extend_from_slice(before.as_bytes());
    bytes.extend_from_slice(b"{\\\"eventName\\\":\\\"\xff\xfe\\\"}");
    bytes.extend_from_slice(after.as_bytes());
    let payload = envelope(&base64_padded(&gzip(&bytes)));
    let run = scan_bytes("payload.json", payload, &[]);
    run.assert_no_panic();
    match run.code {
        Some(2) => run.assert_stderr_has(&["not CloudWatch Logs subscription JSON"]),
        Some(0) => run.assert_stderr_has(&["1 skipped"]),
        _ => panic!("expected an error or a skip\n{run}"),
    };
}

#[test]
fn lone_surrogate_escape_in_a_message_is_an_error_or_a_skip() {
    let json = subscription_json(
        "DATA_MESSAGE",
        &[r#"{"eventName":"\udc00","eventSource":"x"}"#],
    );
    let run = scan_bytes("payload.json", encode_payload(&json), &[]);
    run.assert_no_panic();
    assert!(
        run.code == Some(2) || run.stderr.contains("1 skipped"),
        "expected an error or a skip\n{run}"
    );
}

#[test]
fn empty_file_is_zero_events() {
    let run = scan_bytes("empty.json", b"", &["--fail-on-alert"]);
    run.assert_code(0);
    assert_eq!(
        run.summary(),
        "trailwatch: 0 event(s) read from 1 input(s): 0 processed, 0 skipped; 0 alert(s)"
    );
}

#[test]
fn whitespace_only_file_is_zero_events() {
    let run = scan_bytes("blank.json", b"\n \r\n\t\n", &[]);
    run.assert_code(0);
    assert!(run.summary().contains("0 event(s) read"));
}

#[test]
fn empty_gzip_is_zero_events() {
    scan_bytes("empty.json.gz", gzip(b""), &[]).assert_code(0);
}

#[test]
fn empty_object_is_an_unrecognised_input() {
    scan_bytes("empty-object.json", b"{}", &[])
        .assert_code(2)
        .assert_stderr_has(&["unrecognised input"]);
}

#[test]
fn empty_array_is_zero_events() {
    let run = scan_bytes("empty-array.json", b"[]", &[]);
    run.assert_code(0);
    assert!(run.summary().contains("0 event(s) read"), "{run}");
}

#[test]
fn binary_input_with_no_json_line_is_unreadable_and_exits_two() {
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
    let run = scan_bytes("report.pdf", pdf, &[]);
    run.assert_code(2)
        .assert_stderr_has(&["report.pdf: unreadable input: not one of its"]);
    assert!(!run.stderr.contains("skipped line"), "{run}");
}

#[test]
fn empty_records_archive_is_zero_events() {
    let run = scan_bytes("archive.json", br#"{"Records":[]}"#, &[]);
    run.assert_code(0);
    assert!(run.summary().contains("0 event(s) read"), "{run}");
}

#[test]
fn json_number_is_a_skipped_non_record() {
    let run = scan_bytes("number.json", b"42", &[]);
    run.assert_code(0).assert_stderr_has(&[
        "1 event(s) read from 1 input(s): 0 processed, 1 skipped",
        "not a CloudTrail record: JSON number instead of an object",
    ]);
}

#[test]
fn json_string_and_null_are_skipped_non_records() {
    let run = scan_bytes("scalars.jsonl", b"\"hello\"\nnull\ntrue\n", &[]);
    run.assert_code(0).assert_stderr_has(&[
        "3 event(s) read from 1 input(s): 0 processed, 3 skipped",
        "JSON string instead of an object",
        "JSON null instead of an object",
        "JSON boolean instead of an object",
    ]);
}

#[test]
fn records_that_are_not_objects_inside_an_archive_are_skipped() {
    let text = format!(
        "{{\"Records\":[1,\"x\",{},{{}}]}}",
        compact("stop-logging-success.json")
    );
    let run = scan_bytes("archive.json", text, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "4 event(s) read from 1 input(s): 1 processed, 3 skipped; 1 alert(s)",
        ": record 0: not a CloudTrail record: JSON number",
        ": record 3: not a CloudTrail record: no string `eventName`",
    ]);
}

#[test]
fn truncated_archive_is_an_error() {
    let text = format!("{{\"Records\":[{},", compact("stop-logging-success.json"));
    scan_bytes("archive.json", text, &[])
        .assert_code(2)
        .assert_stderr_has(&["not a CloudTrail archive"]);
}

#[test]
fn deeply_nested_single_record_does_not_overflow_the_stack() {
    let text = format!(
        "{{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"x\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let run = scan_bytes("deep.json", text, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "1 event(s) read from 1 input(s): 0 processed, 1 skipped",
        ": record 0: not JSON: recursion limit exceeded",
    ]);
    assert_eq!(run.stdout, "");
}

#[test]
fn deeply_nested_line_in_json_lines_is_a_counted_skip() {
    let deep = format!(
        "{{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"x\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let text = format!("{}\n{deep}\n", compact("stop-logging-success.json"));
    let run = scan_bytes("deep.jsonl", text, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "1 processed, 1 skipped",
        ": line 2: not JSON: recursion limit",
    ]);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
}

#[test]
fn deeply_nested_archive_does_not_overflow_the_stack() {
    let text = format!(
        "{{\"Records\":[{}{}]}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let run = scan_bytes("deep-archive.json", text, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "0 processed, 1 skipped",
        ": record 0: not JSON: recursion limit exceeded",
    ]);
}

#[test]
fn a_million_levels_of_nesting_do_not_overflow_the_stack() {
    let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let cases = [
        ("array.json", deep.clone()),
        ("archive.json", format!("{{\"Records\":[{deep}]}}")),
        (
            "record.json",
            format!(
                "{{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"x\":{deep}}}"
            ),
        ),
    ];
    for (name, text) in cases {
        scan_bytes(name, text, &[])
            .assert_code(0)
            .assert_stderr_has(&["0 processed, 1 skipped", "recursion limit exceeded"]);
    }
    // A record whose eventName no rule mentions is read by the cheap prefilter path,
    // which skips over nesting without recursing: valid JSON, so processed, no alert.
    let unmatched = format!("{{\"eventName\":\"A\",\"eventSource\":\"b\",\"x\":{deep}}}");
    scan_bytes("unmatched.json", unmatched, &[])
        .assert_code(0)
        .assert_stderr_has(&["1 processed, 0 skipped; 0 alert(s)"]);
}

#[test]
fn deeply_nested_message_in_a_payload_is_a_counted_skip() {
    let deep = format!(
        "{{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"x\":{}{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let payload = data_message(&[&deep, &compact("stop-logging-success.json")]);
    let run = scan_bytes("payload.json", payload, &[]);
    run.assert_code(0).assert_stderr_has(&[
        "2 event(s) read from 1 input(s): 1 processed, 1 skipped; 1 alert(s)",
        &format!("log event {}: not JSON: recursion limit", log_event_id(0)),
    ]);
}

#[test]
fn deeply_nested_subscription_json_does_not_overflow_the_stack() {
    let json = format!(
        "{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let run = scan_bytes("payload.json", encode_payload(&json), &[]);
    run.assert_code(2)
        .assert_stderr_has(&["not CloudWatch Logs subscription JSON"]);
}

#[test]
fn nested_but_legal_record_is_matched() {
    // 120 levels is under serde_json's limit of 128: the record parses and the rules run.
    let mut record = fixture("stop-logging-success.json");
    let mut nested = serde_json::json!("leaf");
    for _ in 0..60 {
        nested = serde_json::json!({ "n": [nested] });
    }
    record["requestParameters"]["deep"] = nested;
    let run = scan_bytes("nested.json", record.to_string(), &[]);
    run.assert_code(0);
    assert_eq!(run.text_alert_rules(), ["cloudtrail-logging-changed"]);
}

#[test]
fn random_bytes_never_panic() {
    // A fixed xorshift stream: the same inputs every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let dir = TempDir::new();
    let mut paths = Vec::new();
    for i in 0..12 {
        let len = (next() % 4096) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 4 {
            // Looks like gzip.
            1 => bytes.splice(0..0, [0x1f, 0x8b, 0x08, 0x00]).for_each(drop),
            // Looks like a JSON object.
            2 => bytes.insert(0, b'{'),
            // A real gzip header in front of a corrupted body.
            3 => {
                let mut gz = gzip(compact("stop-logging-success.json").as_bytes());
                let mid = gz.len() / 2;
                gz[mid] ^= 0x55;
                bytes = gz;
            }
            _ => {}
        }
        paths.push(dir.write(&format!("random-{i}.bin"), bytes));
    }
    for path in &paths {
        scan(path, &[]).assert_no_panic();
    }
}

/// The summary adds up every input, and shows at most 20 skip lines in all (the scan
/// keeps counts, not alerts, from one input to the next).
#[test]
fn summary_counts_every_input_and_caps_the_skip_lines() {
    let dir = TempDir::new();
    let mut paths = Vec::new();
    for input in 0..2 {
        let mut text = compact("stop-logging-success.json");
        text.push('\n');
        for _ in 0..15 {
            text.push_str("not json\n");
        }
        paths.push(dir.write(&format!("input-{input}.jsonl"), text.as_bytes()));
    }
    let run = trailwatch(&args(&[&"scan", &paths[0], &paths[1]]));
    run.assert_code(0).assert_stderr_has(&[
        "32 event(s) read from 2 input(s): 2 processed, 30 skipped; 2 alert(s)",
        "  ... and 10 more skipped",
        "       2  cloudtrail-logging-changed",
    ]);
    assert_eq!(run.stderr.matches("  skipped ").count(), 20, "{run}");
    assert_eq!(
        run.stderr
            .matches(&format!("  skipped {}", paths[1].display()))
            .count(),
        5,
        "{run}"
    );
}

/// Inputs are read and matched on several threads, yet alerts print in input order and
/// stateful alerting sees the inputs in that order: `--jobs 4` prints exactly what
/// `--jobs 1` prints, errors included, with the unreadable input reported in its place.
#[test]
fn inputs_matched_at_once_print_as_one_at_a_time() {
    let dir = TempDir::new();
    let fixtures = [
        "console-login-iam-user-no-mfa.json",
        "stop-logging-success.json",
        "delete-trail-success.json",
        "console-login-root-no-mfa.json",
        "update-trail-invalid-cwl-role.json",
        "console-login-federated-user.json",
    ];
    let mut paths = Vec::new();
    for round in 0..3 {
        for (index, name) in fixtures.iter().enumerate() {
            let file = format!("{round}-{index}.json");
            paths.push(dir.write(&file, data_message_of_fixtures(&[name])));
        }
    }
    paths.insert(
        7,
        dir.write("broken.json", "{\"awslogs\": {\"data\": \"@@@\"}}"),
    );
    let run = |jobs: &str| {
        let mut args: Vec<std::ffi::OsString> = ["scan", "--format", "json", "--jobs", jobs]
            .map(Into::into)
            .to_vec();
        args.extend(paths.iter().map(Into::into));
        trailwatch(&args)
    };
    let one = run("1");
    one.assert_code(2).assert_stderr_has(&["broken.json"]);
    let events: Vec<String> = (one.json_alerts().iter())
        .map(|alert| alert["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.len() >= 12, "{one}");
    let first_round: Vec<String> = fixtures.iter().map(|name| event_id(name)).collect();
    let mut deduplicated = events.clone();
    deduplicated.dedup();
    assert!(deduplicated.starts_with(&first_round[..3]), "{events:?}");
    let four = run("4");
    assert_eq!(
        (four.code, &four.stdout, &four.stderr),
        (one.code, &one.stdout, &one.stderr)
    );
}
