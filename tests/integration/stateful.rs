//! `trailwatch scan` backtests stateful rules over an archive, with the Lambda's
//! semantics in memory: Sigma correlations on eventTime (the archive is out of order),
//! base rules that only feed a correlation stay quiet, and `--no-state` shows the raw
//! matches.

use crate::common::*;

fn archive() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/stateful/archive.json.gz")
}

fn count(rules: &[String], name: &str) -> usize {
    rules.iter().filter(|r| *r == name).count()
}

#[test]
fn a_backtest_fires_each_correlation_once_with_its_group_count_and_events() {
    let run = trailwatch(&args(&[
        &"scan",
        &"--rules",
        &"rules",
        &"--format",
        &"json",
        &archive(),
    ]));
    run.assert_code(0);
    let rules = run.json_alert_rules();
    assert_eq!(count(&rules, "signin-console-brute-force"), 1, "{run}");
    assert_eq!(count(&rules, "iam-backdoor-user-sequence"), 1, "{run}");
    // The failed sign-ins only feed the correlation (Sigma `generate: false`); the
    // backdoor steps alert on their own too (`generate: true`).
    assert_eq!(count(&rules, "signin-console-login-failed"), 0, "{run}");
    assert_eq!(count(&rules, "iam-user-created"), 1, "{run}");
    let alerts = run.json_alerts();
    let brute = alerts
        .iter()
        .find(|a| a["rule"] == "signin-console-brute-force")
        .expect("the brute-force alert");
    let correlation = &brute["correlation"];
    assert_eq!(correlation["group"]["sourceIPAddress"], "203.0.113.50");
    assert_eq!(correlation["timespan"], "5m");
    let fired = correlation["count"].as_u64().expect("a count");
    assert!(fired >= 5, "{correlation}");
    assert_eq!(
        correlation["event_ids"].as_array().map(Vec::len),
        Some(fired as usize)
    );
    let backdoor = alerts
        .iter()
        .find(|a| a["rule"] == "iam-backdoor-user-sequence")
        .expect("the backdoor alert");
    assert_eq!(
        backdoor["correlation"]["group"]["requestParameters.userName"],
        "svc-backup"
    );
    assert_eq!(backdoor["severity"], "critical");
}

#[test]
fn no_state_prints_every_raw_match_and_no_correlation() {
    let run = trailwatch(&args(&[
        &"scan",
        &"--rules",
        &"rules",
        &"--no-state",
        &"--format",
        &"json",
        &archive(),
    ]));
    run.assert_code(0);
    let rules = run.json_alert_rules();
    assert_eq!(count(&rules, "signin-console-login-failed"), 7, "{run}");
    assert_eq!(count(&rules, "signin-console-brute-force"), 0, "{run}");
    assert_eq!(count(&rules, "iam-backdoor-user-sequence"), 0, "{run}");
}

#[test]
fn the_email_rendering_names_the_group_the_window_and_the_events() {
    let run = trailwatch(&args(&[
        &"scan",
        &"--rules",
        &"rules",
        &"--format",
        &"email",
        &"--account-names",
        &"111122223333=prod",
        &archive(),
    ]));
    run.assert_code(0);
    run.assert_stdout_has(&[
        "Subject: [HIGH] Console sign-in brute force from one source IP: ",
        " in 5m for 203.0.113.50 in prod (",
        "Last event:   ConsoleLogin on signin.amazonaws.com failed (Failed authentication)",
        "Correlation:",
        "matching events of signin-console-login-failed within 5m",
        "Group:        sourceIPAddress=203.0.113.50",
        "Events in the window (eventID)",
        "Account:      prod (111122223333)",
    ]);
}

#[test]
fn a_bad_account_map_is_refused_with_the_entry() {
    let run = trailwatch(&args(&[
        &"scan",
        &"--rules",
        &"rules",
        &"--account-names",
        &"prod",
        &archive(),
    ]));
    run.assert_code(2);
    run.assert_stderr_has(&["\"prod\""]);
}
