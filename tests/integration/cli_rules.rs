//! `trailwatch rules lint|test|list`: inline tests of the built-in rules pass, a wrong
//! expectation names rule, test and reason (on stdout and in the `--junit` report), lint
//! reports every problem in every file as `path:line: reason` in one run, and `list`
//! prints text, JSON or Markdown. Also: `trailwatch scan ... | head -1` exits quietly.

use std::io::Read as _;
use std::process::{Command, Stdio};

use serde_json::Value;
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

/// The `stop-watch` rule with three inline tests, the last two wrong: the second (named
/// `quiet_test`, YAML-quoted as needed) expects no match on StopLogging, the third
/// expects a match on StartLogging.
fn stop_watch_with_two_wrong_tests(quiet_test: &str) -> String {
    rule("Stop", "stop-watch", "StopLogging")
        + &format!(
            "tests:
  - name: stop alerts
    expect: match
    event: {{eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}}
  - name: {quiet_test}
    expect: no_match
    event: {{eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}}
  - name: start alerts
    expect: match
    event: {{eventName: StartLogging, eventSource: cloudtrail.amazonaws.com}}
"
        )
}

fn builtin_test_count() -> usize {
    let set = RuleSet::compile(&trailwatch::rules::builtin_sources()).expect("built-in rules load");
    set.rules()
        .iter()
        .chain(set.correlations())
        .map(|r| r.tests.len())
        .sum()
}

/// Detection rules plus correlation rules: the rule files of the pack.
fn builtin_rule_files() -> usize {
    let set = RuleSet::builtin().expect("pack");
    set.len() + set.correlations().len()
}

#[test]
fn builtin_inline_tests_pass() {
    let run = trailwatch(&["rules", "test"]);
    run.assert_code(0);
    let count = builtin_test_count();
    assert!(count >= 20, "the built-in rules carry their examples");
    let rules = builtin_rule_files();
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
    let rules = builtin_rule_files();
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
            "{} rule file(s) OK ({} correlation(s), {} inline test(s), 1 exclusion(s) in force, 0 warning(s))",
            builtin_rule_files(),
            RuleSet::builtin().expect("pack").correlations().len(),
            builtin_test_count()
        )
    );
}

#[test]
fn rules_list_shows_name_level_title_and_file() {
    let run = trailwatch(&["rules", "list"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let rules = builtin_rule_files();
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
    let text = stop_watch_with_two_wrong_tests("stop is quiet");
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
    assert_eq!(
        run.stdout.lines().last(),
        Some("1 rule(s) without tests: quiet"),
        "the rules without tests are listed after the results\n{run}"
    );
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

/// One element of a parsed XML document.
#[derive(Debug)]
struct XmlElement {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    parent: Option<usize>,
}

impl XmlElement {
    #[track_caller]
    fn attr(&self, key: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {key}: {self:?}", self.name))
    }
}

/// A rough XML parse that fails on what is not well-formed for the report's subset of
/// XML: unbalanced or mismatched tags, unquoted attributes, unknown entities, a raw `<`
/// in an attribute, text outside the root, more than one root. Elements in document order.
#[track_caller]
fn parse_xml(xml: &str) -> Vec<XmlElement> {
    let mut rest = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("an XML declaration");
    let mut elements: Vec<XmlElement> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = xml_unescape(&rest[..lt]);
        match open.last() {
            Some(&index) => elements[index].text.push_str(&text),
            None => assert!(text.trim().is_empty(), "text outside the root: {text:?}"),
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').expect("an unterminated tag");
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let index = open.pop().expect("a closing tag with no open element");
            assert_eq!(elements[index].name, name, "mismatched closing tag");
            continue;
        }
        let (tag, self_closing) = match tag.strip_suffix('/') {
            Some(tag) => (tag, true),
            None => (tag, false),
        };
        let (name, mut attr_text) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()),
            "bad element name {name:?}"
        );
        let mut attrs = Vec::new();
        loop {
            attr_text = attr_text.trim_start();
            if attr_text.is_empty() {
                break;
            }
            let (key, after) = attr_text
                .split_once("=\"")
                .unwrap_or_else(|| panic!("not key=\"value\": {attr_text:?}"));
            let (value, after) = after.split_once('"').expect("a closing quote");
            assert!(!value.contains('<'), "raw < in an attribute: {value:?}");
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic()),
                "bad attribute name {key:?}"
            );
            assert!(
                attrs.iter().all(|(k, _)| k != key),
                "attribute {key} twice in <{name}>"
            );
            attrs.push((key.to_owned(), xml_unescape(value)));
            attr_text = after;
        }
        assert!(
            elements.is_empty() || !open.is_empty(),
            "a second root element <{name}>"
        );
        elements.push(XmlElement {
            name: name.to_owned(),
            attrs,
            text: String::new(),
            parent: open.last().copied(),
        });
        if !self_closing {
            open.push(elements.len() - 1);
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    assert!(!elements.is_empty(), "no root element");
    elements
}

#[track_caller]
fn xml_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = amp + rest[amp..].find(';').expect("an entity ends with ;");
        let entity = &rest[amp + 1..semi];
        out.push(match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => entity
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32)
                .unwrap_or_else(|| panic!("unknown entity &{entity};")),
        });
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    out
}

fn named<'a>(elements: &'a [XmlElement], name: &str) -> Vec<&'a XmlElement> {
    elements.iter().filter(|e| e.name == name).collect()
}

#[test]
fn junit_report_has_a_suite_per_rule_a_case_per_test_and_each_failure() {
    let text = stop_watch_with_two_wrong_tests(r#"'stop is <quiet> & "silent"'"#);
    let rules = TempDir::new();
    let stop = rules.write("stop.yml", text);
    rules.write("quiet.yml", rule("Quiet", "quiet", "DescribeTrails"));
    let out = TempDir::new();
    let report = out.path().join("junit.xml");
    let run = trailwatch(&args(&[
        &"rules",
        &"test",
        &rules.path(),
        &"--junit",
        &report,
    ]));
    run.assert_code(1)
        .assert_stdout_has(&["1 passed, 2 failed (2 rule(s))"]);
    let xml = std::fs::read_to_string(&report).expect("the JUnit report is written");
    let elements = parse_xml(&xml);

    let root = &elements[0];
    assert_eq!(root.name, "testsuites", "{xml}");
    assert_eq!((root.attr("tests"), root.attr("failures")), ("3", "2"));

    let suites = named(&elements, "testsuite");
    let suite_names: Vec<&str> = suites.iter().map(|s| s.attr("name")).collect();
    assert_eq!(suite_names, ["quiet", "stop-watch"], "{xml}");
    assert_eq!(
        suites[0].attr("tests"),
        "0",
        "a rule without tests: an empty suite"
    );
    assert_eq!(
        (suites[1].attr("tests"), suites[1].attr("failures")),
        ("3", "2")
    );
    assert_eq!(suites[1].attr("file"), stop.display().to_string());

    let cases = named(&elements, "testcase");
    let case_names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
    assert_eq!(
        case_names,
        [
            "stop-watch: stop alerts",
            "stop-watch: stop is <quiet> & \"silent\"",
            "stop-watch: start alerts",
        ],
        "{xml}"
    );
    assert!(
        xml.contains("stop-watch: stop is &lt;quiet&gt; &amp; &quot;silent&quot;"),
        "{xml}"
    );
    for case in &cases {
        let parent = case.parent.map(|p| &elements[p]);
        assert_eq!(parent.map(|p| p.attr("name")), Some("stop-watch"));
    }

    let failures = named(&elements, "failure");
    assert_eq!(failures.len(), 2, "{xml}");
    let failed_case = |failure: &XmlElement| {
        elements[failure.parent.expect("a failure sits in a testcase")]
            .attr("name")
            .to_owned()
    };
    assert_eq!(
        failed_case(failures[0]),
        "stop-watch: stop is <quiet> & \"silent\""
    );
    assert_eq!(
        failures[0].attr("message"),
        "expected no match, but the rule matched the event"
    );
    assert!(
        failures[0]
            .text
            .starts_with(&format!("{}:16: rule stop-watch", stop.display())),
        "{xml}"
    );
    assert_eq!(failed_case(failures[1]), "stop-watch: start alerts");
    assert_eq!(
        failures[1].attr("message"),
        "expected a match, but the rule did not match the event"
    );
}

#[test]
fn junit_report_of_the_builtin_rules_counts_every_inline_test() {
    let out = TempDir::new();
    let report = out.path().join("report.xml");
    trailwatch(&args(&[&"rules", &"test", &"--junit", &report])).assert_code(0);
    let xml = std::fs::read_to_string(&report).expect("the JUnit report is written");
    let elements = parse_xml(&xml);
    let count = builtin_test_count();
    let rules = builtin_rule_files();
    assert_eq!(elements[0].attr("tests"), count.to_string());
    assert_eq!(elements[0].attr("failures"), "0");
    assert_eq!(named(&elements, "testsuite").len(), rules);
    assert_eq!(named(&elements, "testcase").len(), count);
    assert!(named(&elements, "failure").is_empty());
}

#[test]
fn junit_report_that_cannot_be_written_exits_two() {
    let out = TempDir::new();
    let report = out.path().join("no/such/dir/report.xml");
    trailwatch(&args(&[&"rules", &"test", &"--junit", &report]))
        .assert_code(2)
        .assert_stderr_has(&["cannot write the JUnit report to "]);
}

#[test]
fn rules_without_tests_are_listed_after_the_results_without_failing() {
    let dir = TempDir::new();
    dir.write(
        "a.yml",
        rule("A", "alpha", "StopLogging")
            + "tests:\n  - name: stop\n    expect: match\n    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}\n",
    );
    dir.write("b.yml", rule("B", "bravo", "StartLogging"));
    dir.write("c.yml", rule("C", "charlie", "DeleteTrail"));
    let run = trailwatch(&args(&[&"rules", &"test", &dir.path()]));
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "1 passed, 0 failed (3 rule(s))\n2 rule(s) without tests: bravo, charlie\n"
    );
}

/// A rule with tags and one inline test.
fn tagged_rule(title: &str, name: &str) -> String {
    rule(title, name, "StopLogging")
        + "tags:
  - attack.defense-evasion
  - attack.t1562.008
  - cis.3.5
  - securityhub.cloudwatch.5
tests:
  - name: stop
    expect: match
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}
"
}

#[test]
fn rules_list_json_is_one_array_with_tags_cis_attack_and_test_counts() {
    let dir = TempDir::new();
    let tagged = dir.write("a.yml", tagged_rule("Stop", "stop-watch"));
    let plain = dir.write("b.yml", rule("Start", "start-watch", "StartLogging"));
    let run = trailwatch(&args(&[
        &"rules",
        &"list",
        &"--rules",
        &dir.path(),
        &"--format",
        &"json",
    ]));
    run.assert_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(
        listed,
        serde_json::json!([
            {
                "name": "stop-watch",
                "level": "high",
                "title": "Stop",
                "tags": ["attack.defense-evasion", "attack.t1562.008", "cis.3.5", "securityhub.cloudwatch.5"],
                "cis": ["3.5"],
                "attack": ["attack.defense-evasion", "attack.t1562.008"],
                "path": tagged.display().to_string(),
                "tests": 1
            },
            {
                "name": "start-watch",
                "level": "high",
                "title": "Start",
                "tags": [],
                "cis": [],
                "attack": [],
                "path": plain.display().to_string(),
                "tests": 0
            }
        ])
    );
}

#[test]
fn rules_list_json_of_the_builtin_rules() {
    let run = trailwatch(&["rules", "list", "--format", "json"]);
    run.assert_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let listed = listed.as_array().expect("an array");
    let rules = RuleSet::compile(&trailwatch::rules::builtin_sources()).expect("pack");
    assert_eq!(listed.len(), rules.len() + rules.correlations().len());
    let tests: u64 = listed.iter().filter_map(|r| r["tests"].as_u64()).sum();
    assert_eq!(tests as usize, builtin_test_count());
    let unauthorized = listed
        .iter()
        .find(|r| r["name"] == "cis-3.1-unauthorized-api-calls")
        .expect("the CIS 3.1 rule is listed");
    assert_eq!(unauthorized["cis"], serde_json::json!(["3.1"]));
    assert_eq!(
        unauthorized["path"],
        "rules/cis-3.1-unauthorized-api-calls.yml"
    );
    for rule in listed {
        let attack = rule["attack"].as_array().expect("attack is an array");
        assert!(
            attack
                .iter()
                .all(|t| t.as_str().is_some_and(|t| t.starts_with("attack."))),
            "{rule}"
        );
    }
}

#[test]
fn rules_list_markdown_is_a_table_sorted_by_name() {
    let dir = TempDir::new();
    // Load order (by file) is zeta first; the table is sorted by rule name.
    dir.write("a.yml", rule("Zeta", "zeta-watch", "StartLogging"));
    dir.write("b.yml", tagged_rule("Stop | pipe", "alpha-watch"));
    let run = trailwatch(&args(&[
        &"rules",
        &"list",
        &"--rules",
        &dir.path(),
        &"--format",
        &"markdown",
    ]));
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "Generated by `trailwatch rules list --format markdown`: 2 rule(s).

| Rule | Level | Title | Alerts | Tags | CIS |
|------|-------|-------|--------|------|-----|
| `alpha-watch` | high | Stop \\| pipe | each match | attack.defense-evasion, attack.t1562.008, cis.3.5, securityhub.cloudwatch.5 | 3.5 |
| `zeta-watch` | high | Zeta | each match |  |  |
"
    );
}

/// `trailwatch scan ... | head -1`: once the reader has gone, the CLI stops writing and
/// exits 0 without complaining about the pipe.
#[test]
fn scan_into_a_pipe_closed_early_exits_quietly() {
    let record = compact("stop-logging-success.json");
    let dir = TempDir::new();
    let path = dir.write("many.json", data_message(&vec![record.as_str(); 400]));
    // The premise: far more output than a pipe buffers.
    let full = scan(&path, &["--format", "email"]);
    full.assert_code(0);
    assert!(full.stdout.len() > 200_000, "{} bytes", full.stdout.len());

    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["scan", "--rules", CORE_RULES, "--format", "email"])
        .arg(&path)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the trailwatch binary");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut head = [0u8; 16];
    stdout.read_exact(&mut head).expect("the first bytes");
    assert!(head.starts_with(b"Subject: "), "{head:?}");
    drop(stdout);
    let output = child.wait_with_output().expect("wait for trailwatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        !stderr.contains("Broken pipe") && !stderr.to_lowercase().contains("error"),
        "stderr: {stderr}"
    );
}
