//! `trailwatch rules lint|test|list`: inline tests of the built-in rules pass, a wrong
//! expectation names rule, test and reason, and lint reports every problem in every file
//! as `path:line: reason` in one run.

use trailwatch::rules::RuleSet;

use crate::common::*;

/// A valid rule for `eventName`, with a `level` and a `name`.
fn rule(title: &str, name: &str, event_name: &str) -> String {
    format!(
        "title: {title}
name: {name}
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: {event_name}
  condition: selection
level: high
"
    )
}

fn builtin_test_count() -> usize {
    RuleSet::compile(&trailwatch::rules::builtin_sources())
        .expect("built-in rules load")
        .rules()
        .iter()
        .map(|r| r.tests.len())
        .sum()
}

#[test]
fn builtin_inline_tests_pass() {
    let run = trailwatch(&["rules", "test"]);
    run.assert_code(0);
    let count = builtin_test_count();
    assert!(count >= 20, "the built-in rules carry their examples");
    let rules = trailwatch::rules::RuleSet::builtin().expect("pack").len();
    assert!(rules >= 60, "{rules} rules");
    assert_eq!(
        run.stdout.trim_end(),
        format!("{count} passed, 0 failed ({rules} rule(s))")
    );
    assert!(!run.stdout.contains("FAIL"));
}

#[test]
fn repository_rules_dir_passes_its_inline_tests_too() {
    let run = trailwatch(&args(&[&"rules", &"test", &repo_root().join("rules")]));
    run.assert_code(0);
    let rules = trailwatch::rules::RuleSet::builtin().expect("pack").len();
    assert!(
        run.stdout
            .contains(&format!(", 0 failed ({rules} rule(s))")),
        "{run}"
    );
}

#[test]
fn builtin_rules_lint_clean() {
    let run = trailwatch(&["rules", "lint"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim_end(),
        format!(
            "{} rule file(s) OK ({} inline test(s), 1 exclusion(s) in force, 0 warning(s))",
            trailwatch::rules::RuleSet::builtin().expect("pack").len(),
            builtin_test_count()
        )
    );
}

#[test]
fn rules_list_shows_name_level_title_and_file() {
    let run = trailwatch(&["rules", "list"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let rules = trailwatch::rules::RuleSet::builtin().expect("pack").len();
    assert_eq!(lines.len(), rules, "{run}");
    let find = |name: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{run}"))
    };
    let mfa = find("console-login-without-mfa ");
    assert!(mfa.contains(" high ") && mfa.contains("Console login without MFA"));
    assert!(
        mfa.ends_with("(rules/console-login-without-mfa.yml)"),
        "{mfa}"
    );
    let failed = find("cloudtrail-change-failed ");
    assert!(
        failed.contains(" medium ") && failed.ends_with("(rules/cloudtrail-change-failed.yml)")
    );
    assert!(find("cloudtrail-logging-changed ").contains(" high "));
}

#[test]
fn rules_list_with_a_custom_dir() {
    let dir = TempDir::new();
    let path = dir.write("stop.yml", rule("Stop", "stop-watch", "StopLogging"));
    let run = trailwatch(&args(&[&"rules", &"list", &"--rules", &dir.path()]));
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim_end(),
        format!("stop-watch  high           Stop  ({})", path.display())
    );
}

#[test]
fn wrong_expectations_name_rule_test_and_reason_and_exit_one() {
    let text = rule("Stop", "stop-watch", "StopLogging")
        + "tests:
  - name: stop alerts
    expect: match
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}
  - name: stop is quiet
    expect: no_match
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}
  - name: start alerts
    expect: match
    event: {eventName: StartLogging, eventSource: cloudtrail.amazonaws.com}
";
    let dir = TempDir::new();
    let path = dir.write("stop.yml", text);
    dir.write("quiet.yml", rule("Quiet", "quiet", "DescribeTrails"));
    let run = trailwatch(&args(&[&"rules", &"test", &dir.path()]));
    run.assert_code(1).assert_stdout_has(&[
        &format!(
            "FAIL {}:16: rule stop-watch test \"stop is quiet\": expected no match, but the rule matched the event",
            path.display()
        ),
        &format!(
            "FAIL {}:19: rule stop-watch test \"start alerts\": expected a match, but the rule did not match the event",
            path.display()
        ),
        "1 passed, 2 failed (2 rule(s))",
    ]);
    assert_eq!(run.stdout.matches("FAIL ").count(), 2, "{run}");
    run.assert_stderr_has(&["note: 1 rule(s) have no inline tests: quiet"]);
}

#[test]
fn rules_test_on_a_broken_rule_exits_two() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.yml",
        rule("Bad", "bad", "StopLogging").replace("level: high", "level: severe"),
    );
    trailwatch(&args(&[&"rules", &"test", &dir.path()]))
        .assert_code(2)
        .assert_stderr_has(&[&format!("{}:11: unknown level \"severe\"", path.display())]);
}

#[test]
fn rules_test_on_a_single_file() {
    let dir = TempDir::new();
    let text = rule("Stop", "stop-watch", "StopLogging")
        + "tests:
  - name: stop alerts
    expect: match
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}
";
    let path = dir.write("stop.yml", text);
    let run = trailwatch(&args(&[&"rules", &"test", &path]));
    run.assert_code(0);
    assert_eq!(run.stdout.trim_end(), "1 passed, 0 failed (1 rule(s))");
}

/// One file per kind of problem; `lint` must report all of them in one run.
fn broken_rules_dir() -> (TempDir, Vec<(String, usize, &'static str)>) {
    let dir = TempDir::new();
    let mut expected = Vec::new();
    let mut add = |dir: &TempDir, file: &str, text: String, line: usize, reason: &'static str| {
        let path = dir.write(file, text);
        expected.push((path.display().to_string(), line, reason));
    };
    add(
        &dir,
        "a-yaml-syntax.yml",
        "title: Broken\nlogsource: [unclosed\ndetection:\n  sel: {a: b}\n".into(),
        3,
        "YAML syntax: ",
    );
    add(
        &dir,
        "b-unknown-level.yml",
        rule("Level", "bad-level", "StopLogging").replace("level: high", "level: severe"),
        11,
        "unknown level \"severe\" (expected informational, low, medium, high or critical)",
    );
    add(
        &dir,
        "d-unsupported-modifier.yml",
        rule("Modifier", "modifier", "StopLogging").replace("eventName:", "eventName|foo:"),
        9,
        "unknown modifier `foo` in `eventName|foo`",
    );
    add(
        &dir,
        "e-invalid-regex.yml",
        rule("Regex", "regex", "StopLogging")
            .replace("eventName: StopLogging", "eventName|re: 'Stop(['"),
        9,
        "invalid regex pattern",
    );
    add(
        &dir,
        "f-duplicate-one.yml",
        rule("Dup one", "dup", "StopLogging"),
        0,
        "",
    );
    add(
        &dir,
        "g-duplicate-two.yml",
        rule("Dup two", "dup", "StartLogging"),
        2,
        "duplicate rule name \"dup\" (also used by ",
    );
    add(
        &dir,
        "h-missing-logsource.yml",
        rule("No logsource", "no-logsource", "StopLogging")
            .replace("logsource:\n  product: aws\n  service: cloudtrail\n", ""),
        1,
        "missing `logsource` (expected product: aws, service: cloudtrail)",
    );
    add(
        &dir,
        "i-wrong-logsource.yml",
        rule("Windows", "windows", "StopLogging")
            .replace("product: aws", "product: windows")
            .replace("service: cloudtrail", "service: security"),
        3,
        "logsource is product: windows, service: security",
    );
    add(
        &dir,
        "j-missing-title.yml",
        rule("x", "untitled", "StopLogging").replace("title: x\n", ""),
        1,
        "missing `title`",
    );
    add(
        &dir,
        "k-bad-test.yml",
        rule("Bad test", "bad-test", "StopLogging")
            + "tests:\n  - name: no verdict\n    event: {eventName: StopLogging, eventSource: s}\n",
        13,
        "test \"no verdict\": `expect` is missing; use match or no_match",
    );
    expected.retain(|(_, line, _)| *line != 0);
    (dir, expected)
}

#[test]
fn lint_reports_every_problem_in_every_file_in_one_run() {
    let (dir, expected) = broken_rules_dir();
    // The missing-selection file: rsigma names the identifier but not its line.
    let cond = dir.write(
        "c-missing-selection.yml",
        rule("Cond", "cond", "StopLogging")
            .replace("condition: selection", "condition: selection and nosuch"),
    );
    let run = trailwatch(&args(&[&"rules", &"lint", &dir.path()]));
    run.assert_code(2);
    assert_eq!(run.stdout, "", "nothing is OK");
    for (path, line, reason) in &expected {
        let prefix = format!("{path}:{line}: {reason}");
        assert!(
            run.stderr.lines().any(|l| l.starts_with(&prefix)),
            "missing `{prefix}`\n{run}"
        );
    }
    let cond_line = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{}:", cond.display())))
        .unwrap_or_else(|| panic!("no problem reported for the missing selection\n{run}"));
    let (location, reason) = cond_line.split_once(": ").expect("path:line: reason");
    let line: usize = location
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("a line number");
    assert!(
        (6..=10).contains(&line),
        "the problem points into the detection block: {cond_line}"
    );
    assert!(reason.contains("nosuch"), "{cond_line}");
    // The summary counts what was listed (a missing title is reported twice today:
    // once by trailwatch, once by rsigma).
    let dir_prefix = dir.path().to_str().expect("UTF-8 temp path");
    let listed = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(dir_prefix))
        .count();
    assert!(listed > expected.len(), "{run}");
    assert!(
        run.stderr
            .contains(&format!("trailwatch: {listed} problem(s) in rule files")),
        "{run}"
    );
}

#[test]
fn lint_of_a_single_broken_file_exits_two() {
    let dir = TempDir::new();
    let path = dir.write(
        "rule.yml",
        rule("Modifier", "modifier", "StopLogging").replace("eventName:", "eventName|foo:"),
    );
    trailwatch(&args(&[&"rules", &"lint", &path]))
        .assert_code(2)
        .assert_stderr_has(&[&format!(
            "{}:9: unknown modifier `foo` in `eventName|foo`",
            path.display()
        )]);
}

#[test]
fn lint_of_a_good_dir_counts_files_and_tests() {
    let dir = TempDir::new();
    dir.write("a.yml", rule("A", "a", "StopLogging"));
    dir.write(
        "nested/b.yaml",
        rule("B", "b", "StartLogging")
            + "tests:\n  - name: start\n    expect: match\n    event: {eventName: StartLogging, eventSource: cloudtrail.amazonaws.com}\n",
    );
    dir.write("README.md", "not a rule");
    let run = trailwatch(&args(&[&"rules", &"lint", &dir.path()]));
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim_end(),
        "2 rule file(s) OK (1 inline test(s), 0 exclusion(s) in force, 0 warning(s))"
    );
}

/// Precise lines and one line per problem.
#[test]
fn lint_points_at_the_offending_line_and_keeps_one_line_per_problem() {
    let dir = TempDir::new();
    let cond = dir.write(
        "cond.yml",
        rule("Cond", "cond", "StopLogging")
            .replace("condition: selection", "condition: selection and nosuch"),
    );
    let re = dir.write(
        "re.yml",
        rule("Regex", "regex", "StopLogging")
            .replace("eventName: StopLogging", "eventName|re: '(['"),
    );
    let run = trailwatch(&args(&[&"rules", &"lint", &dir.path()]));
    run.assert_code(2).assert_stderr_has(&[
        &format!("{}:10: ", cond.display()),
        &format!("{}:9: invalid regex pattern", re.display()),
    ]);
    for line in run.stderr.lines() {
        assert!(
            line.starts_with(dir.path().to_str().unwrap()) || line.starts_with("trailwatch: "),
            "every stderr line is `path:line: reason`: {line:?}\n{run}"
        );
    }
}
