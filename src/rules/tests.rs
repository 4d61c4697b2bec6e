//! Rule loading and matching, one behaviour per test.

use super::*;
use serde_json::json;

const VALID: &str = r#"title: Stop logging
id: 11111111-2222-4333-8444-555555555555
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: StopLogging
  condition: selection
level: high
runbook: Call the owner.
tests:
  - name: stop
    expect: match
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com}
  - name: start
    expect: no_match
    event: {eventName: StartLogging, eventSource: cloudtrail.amazonaws.com}
"#;

fn source(path: &str, text: &str) -> RuleSource {
    RuleSource {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

fn compile_one(text: &str) -> Result<RuleSet, RuleLoadError> {
    RuleSet::compile(&[source("rules/r.yml", text)])
}

/// The `path:line: reason` lines of a failed load.
fn problems(text: &str) -> Vec<String> {
    compile_one(text)
        .expect_err("the rule should not load")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_problem(text: &str, line: usize, reason_part: &str) {
    let found = problems(text);
    let prefix = format!("rules/r.yml:{line}: ");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&prefix) && p.contains(reason_part)),
        "expected `{prefix}…{reason_part}…` in {found:#?}"
    );
}

#[test]
fn valid_rule_loads_with_metadata() {
    let set = compile_one(VALID).unwrap();
    let rule = &set.rules()[0];
    assert_eq!(rule.name, "r");
    assert_eq!(rule.severity, Severity::High);
    assert_eq!(rule.runbook.as_deref(), Some("Call the owner."));
    assert_eq!(rule.tests.len(), 2);
    assert_eq!(rule.tests[1].expect, Expectation::NoMatch);
    assert_eq!(rule.tests[0].line, 14);
}

#[test]
fn matching_returns_the_matching_rule() {
    let set = compile_one(VALID).unwrap();
    let hit = json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com"});
    let miss = json!({"eventName": "StopLogging", "eventSource": "other.amazonaws.com"});
    assert_eq!(set.matching(&hit).len(), 1);
    assert!(set.matching(&miss).is_empty());
}

#[test]
fn inline_tests_pass_and_fail() {
    let set = compile_one(VALID).unwrap();
    let report = set.run_inline_tests();
    assert_eq!((report.run, report.passed), (2, 2));

    let wrong = VALID.replace("expect: no_match", "expect: match");
    let report = compile_one(&wrong).unwrap().run_inline_tests();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].test, "start");
    assert_eq!(report.failures[0].location, "rules/r.yml:17");
}

#[test]
fn yaml_syntax_error_has_its_line() {
    assert_problem("title: x\nlevel: [high\n", 3, "YAML syntax");
}

#[test]
fn unknown_level_is_reported() {
    assert_problem(
        &VALID.replace("level: high", "level: severe"),
        11,
        "unknown level \"severe\"",
    );
}

#[test]
fn missing_logsource_is_reported() {
    let text = VALID.replace("logsource:\n  product: aws\n  service: cloudtrail\n", "");
    assert_problem(&text, 1, "missing `logsource`");
}

#[test]
fn foreign_logsource_is_reported() {
    assert_problem(
        &VALID.replace("product: aws", "product: windows"),
        3,
        "product: windows",
    );
}

#[test]
fn condition_naming_a_missing_selection_is_reported() {
    let found = problems(&VALID.replace(
        "condition: selection",
        "condition: selection and not filter",
    ));
    assert!(found.iter().any(|p| p.contains("filter")), "{found:#?}");
}

#[test]
fn unsupported_modifier_is_reported() {
    let text = VALID.replace(
        "eventName: StopLogging\n  condition",
        "eventName|sounds_like: StopLogging\n  condition",
    );
    assert_problem(&text, 9, "sounds_like");
}

#[test]
fn invalid_regex_is_reported() {
    let text = VALID.replace(
        "eventName: StopLogging\n  condition",
        "eventName|re: 'Stop(Logging'\n  condition",
    );
    let found = problems(&text);
    assert!(
        found.iter().any(|p| p.starts_with("rules/r.yml:9: ")),
        "{found:#?}"
    );
}

#[test]
fn bad_inline_test_is_reported_at_its_line() {
    assert_problem(
        &VALID.replace("expect: no_match", "expect: maybe"),
        17,
        "use match or no_match",
    );
    assert_problem(
        &VALID.replace("{eventName: StartLogging, ", "{"),
        17,
        "eventName",
    );
}

#[test]
fn duplicate_names_and_ids_are_reported() {
    let err = RuleSet::compile(&[source("a/r.yml", VALID), source("b/r.yml", VALID)]).unwrap_err();
    let found: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("b/r.yml:") && p.contains("duplicate rule name \"r\"")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("b/r.yml:2: ") && p.contains("duplicate rule id")),
        "{found:#?}"
    );
}

#[test]
fn every_problem_in_every_file_is_reported_and_nothing_half_loads() {
    let bad_level = VALID.replace("level: high", "level: severe");
    let bad_source = VALID
        .replace("product: aws", "product: gcp")
        .replace("id: 1111", "id: 2222");
    let err = RuleSet::compile(&[
        source("one.yml", &bad_level),
        source("two.yml", &bad_source),
        source("three.yml", &VALID.replace("id: 1111", "id: 3333")),
    ])
    .unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["one.yml", "two.yml"]);
}

#[test]
fn contains_on_an_object_field_matches_its_json_text() {
    let text = VALID.replace(
        "eventName: StopLogging\n  condition",
        "eventName: PutBucketVersioning\n    requestParameters|contains: Suspended\n  condition",
    );
    let set = compile_one(&text.replace(
        "cloudtrail.amazonaws.com\n    eventName: Put",
        "s3.amazonaws.com\n    eventName: Put",
    ))
    .unwrap();
    let suspended = json!({
        "eventSource": "s3.amazonaws.com", "eventName": "PutBucketVersioning",
        "requestParameters": {"bucketName": "logs", "VersioningConfiguration": {"Status": "Suspended"}}
    });
    let enabled = json!({
        "eventSource": "s3.amazonaws.com", "eventName": "PutBucketVersioning",
        "requestParameters": {"bucketName": "logs", "VersioningConfiguration": {"Status": "Enabled"}}
    });
    assert_eq!(set.matching(&suspended).len(), 1);
    assert!(set.matching(&enabled).is_empty());
}

#[test]
fn builtin_rules_load_and_their_inline_tests_pass() {
    let set = RuleSet::compile(&builtin_sources()).unwrap_or_else(|err| panic!("{err}"));
    assert!(set.len() >= 60, "the pack has {} rules", set.len());
    for rule in set.rules() {
        let matches = rule
            .tests
            .iter()
            .filter(|t| t.expect == Expectation::Match)
            .count();
        let misses = rule.tests.len() - matches;
        assert!(
            matches >= 2 && misses >= 2,
            "{} needs ≥2 match and ≥2 no_match tests",
            rule.name
        );
    }
    let report = set.run_inline_tests();
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(report.all_passed(), "{failures:#?}");
    assert!(report.rules_without_tests.is_empty());
}

/// The committed bundle is what `trailwatch scan` loads; a rule edit, or an engine change
/// that changes what a bundle holds (gates, metadata), must come with a regenerated one.
#[cfg(feature = "embedded-rules")]
#[test]
fn the_committed_builtin_bundle_is_current() {
    let fresh: Value = serde_json::from_str(&RuleSet::bundle(&builtin_sources()).unwrap()).unwrap();
    let committed: Value = serde_json::from_str(include_str!("builtin.bundle.json"))
        .expect("src/rules/builtin.bundle.json is a bundle");
    assert!(
        fresh == committed,
        "src/rules/builtin.bundle.json is stale: run `cargo run --bin trailwatch -- rules compile --output src/rules/builtin.bundle.json`"
    );
    assert!(
        builtin::BUILTIN_BUNDLE.is_some(),
        "build.rs did not embed the committed bundle"
    );
    // The embedded bundle itself: `RuleSet::builtin` would fall back to the YAML.
    let from_bundle = RuleSet::from_bundle(builtin::BUILTIN_BUNDLE.unwrap()).unwrap();
    let from_yaml = RuleSet::compile_builtin_yaml().unwrap();
    assert_eq!(from_bundle.rules(), from_yaml.rules());
    assert_eq!(from_bundle.correlations(), from_yaml.correlations());
    assert_eq!(
        from_bundle.exclusions().collect::<Vec<_>>(),
        from_yaml.exclusions().collect::<Vec<_>>()
    );
}

#[test]
fn runtime_builtin_rules_match_like_the_full_files_without_parsing_tests() {
    let full = RuleSet::compile(&builtin_sources()).unwrap();
    let runtime = RuleSet::builtin().unwrap();
    assert!(runtime.rules().iter().all(|r| r.tests.is_empty()));
    let names = |set: &RuleSet| {
        set.rules()
            .iter()
            .map(|r| (r.name.clone(), r.severity))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&full), names(&runtime));
    for rule in full.rules() {
        for test in &rule.tests {
            let full_hits: Vec<&str> = full
                .matching(&test.event)
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            let runtime_hits: Vec<&str> = runtime
                .matching(&test.event)
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            assert_eq!(full_hits, runtime_hits, "{} / {}", rule.name, test.name);
        }
    }
}

const PATTERN_RULE: &str = r#"title: Trail stopped (metric filter)
logsource: {product: aws, service: cloudtrail}
filter_pattern: '{ ($.eventSource = cloudtrail.amazonaws.com) && ($.eventName = StopLogging) }'
level: medium
"#;

const AWS_SERVICE_FILTER: &str = r#"title: AWS services
name: aws-service-callers
reason: AWS acting for the account
logsource: {product: aws, service: cloudtrail}
filter:
  rules: any
  service:
    userIdentity.invokedBy|endswith: '.amazonaws.com'
  condition: not service
"#;

fn stop_logging(invoked_by: Option<&str>) -> Value {
    let mut record = json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
                            "userIdentity": {"type": "AssumedRole"}});
    if let Some(service) = invoked_by {
        record["userIdentity"]["invokedBy"] = json!(service);
    }
    record
}

#[test]
fn filter_pattern_rules_match_like_sigma_rules_and_feed_the_prefilter() {
    let set = RuleSet::compile(&[source("rules/p.yml", PATTERN_RULE)]).unwrap();
    let rule = &set.rules()[0];
    assert_eq!(rule.name, "p");
    assert!(
        rule.filter_pattern
            .as_deref()
            .unwrap()
            .contains("StopLogging")
    );
    assert_eq!(set.matching(&stop_logging(None)).len(), 1);
    let start = json!({"eventName": "StartLogging", "eventSource": "cloudtrail.amazonaws.com"});
    assert!(set.matching(&start).is_empty());
    // The pattern's eventName is case-sensitive in CloudWatch; the prefilter only
    // needs to keep what could match.
    let record = |name: &str| {
        format!(r#"{{"eventName":"{name}","eventSource":"cloudtrail.amazonaws.com"}}"#)
    };
    assert!(set.has_prefilter());
    assert_eq!(set.screen(&record("StopLogging")), Screen::Evaluate);
    assert_eq!(set.screen(&record("DescribeTrails")), Screen::Skip);
}

#[test]
fn a_bad_filter_pattern_names_its_line_and_column() {
    assert_problem(
        &PATTERN_RULE.replace("($.eventName = StopLogging)", "($.eventName = )"),
        3,
        "filter_pattern: column",
    );
}

#[test]
fn detection_and_filter_pattern_together_or_neither_are_problems() {
    let both = format!("{PATTERN_RULE}detection:\n  sel: {{eventName: X}}\n  condition: sel\n");
    let found = compile_one(&both).unwrap_err();
    assert!(matches!(
        found.0[0].kind,
        ProblemKind::DetectionAndFilterPattern
    ));
    let neither = PATTERN_RULE.replace("filter_pattern:", "# filter_pattern:");
    let found = compile_one(&neither).unwrap_err();
    assert!(matches!(found.0[0].kind, ProblemKind::NoDetection));
}

#[test]
fn the_old_aggregation_syntax_is_unsupported_by_name() {
    let text = VALID.replace(
        "condition: selection",
        "condition: selection | count() by userIdentity.arn > 5",
    );
    let found = compile_one(&text).unwrap_err();
    assert!(
        found.0.iter().any(|p| matches!(
            &p.kind,
            ProblemKind::UnsupportedAggregation { construct } if construct.contains("count()")
        )),
        "{found}"
    );
    assert!(found.to_string().contains("unsupported: aggregation"));
}

#[test]
fn problems_carry_typed_kinds() {
    let found = compile_one(&VALID.replace("level: high", "level: severe")).unwrap_err();
    assert_eq!(found.0.len(), 1, "only trailwatch's own report: {found}");
    assert!(matches!(&found.0[0].kind, ProblemKind::UnknownLevel(level) if level == "\"severe\""));
    let found = compile_one(&VALID.replacen(
        "eventName: StopLogging",
        "eventName|sounds_like: StopLogging",
        1,
    ))
    .unwrap_err();
    assert!(matches!(
        &found.0[0].kind,
        ProblemKind::BadModifier { modifier, .. } if modifier == "sounds_like"
    ));
}

#[test]
fn exclusions_drop_matches_as_suppressed_unless_a_rule_is_exempt() {
    let exempt = VALID.replace(
        "id: 11111111-2222-4333-8444-555555555555\n",
        "exempt_from: [aws-service-callers]\n",
    );
    let set = RuleSet::compile(&[
        source("rules/a.yml", VALID),
        source("rules/b.yml", &exempt),
        source("rules/filters/aws.yml", AWS_SERVICE_FILTER),
    ])
    .unwrap();
    assert_eq!(
        set.exclusions().collect::<Vec<_>>(),
        [("aws-service-callers", "AWS acting for the account")]
    );
    let by_person = set.evaluate(&stop_logging(None));
    assert_eq!(by_person.matched.len(), 2);
    assert!(by_person.suppressed.is_empty());

    let by_service = set.evaluate(&stop_logging(Some("cloudformation.amazonaws.com")));
    let matched: Vec<&str> = by_service.matched.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(matched, ["b"], "the exempt rule still alerts");
    assert_eq!(by_service.suppressed.len(), 1);
    assert_eq!(by_service.suppressed[0].rule.name, "a");
    assert_eq!(by_service.suppressed[0].exclusion, "aws-service-callers");
}

#[test]
fn a_named_exclusion_applies_only_to_its_rules() {
    let named = AWS_SERVICE_FILTER.replace("rules: any", "rules: [b]");
    let other = VALID.replace(
        "11111111-2222-4333-8444-555555555555",
        "21111111-2222-4333-8444-555555555555",
    );
    let set = RuleSet::compile(&[
        source("rules/a.yml", VALID),
        source("rules/b.yml", &other),
        source("rules/filters/aws.yml", &named),
    ])
    .unwrap();
    let verdict = set.evaluate(&stop_logging(Some("config.amazonaws.com")));
    let matched: Vec<&str> = verdict.matched.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(matched, ["a"]);
    assert_eq!(verdict.suppressed.len(), 1);
}

#[test]
fn an_expired_suppression_stops_applying_and_warns() {
    let suppression = AWS_SERVICE_FILTER.replace(
        "reason: AWS acting for the account",
        "reason: migration window agreed with the platform team\nexpires: 2026-12-01",
    );
    let sources = [
        source("rules/a.yml", VALID),
        source("rules/filters/aws.yml", &suppression),
    ];
    let record = stop_logging(Some("cloudformation.amazonaws.com"));
    let before = RuleSet::compile_on(&sources, time::macros::date!(2026 - 11 - 30)).unwrap();
    assert!(before.matching(&record).is_empty());
    assert!(before.warnings().is_empty());

    let after = RuleSet::compile_on(&sources, time::macros::date!(2026 - 12 - 01)).unwrap();
    assert_eq!(
        after.matching(&record).len(),
        1,
        "expired: no longer applies"
    );
    assert_eq!(after.exclusions().count(), 0);
    let warnings: Vec<String> = after.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("expired on 2026-12-01"),
        "{warnings:?}"
    );
}

#[test]
fn an_exclusion_without_a_reason_or_with_a_bad_date_is_a_problem() {
    let text = AWS_SERVICE_FILTER.replace("reason: AWS acting for the account\n", "");
    let found = RuleSet::compile(&[source("rules/filters/f.yml", &text)]).unwrap_err();
    assert!(found.to_string().contains("missing `reason`"), "{found}");
    let text = AWS_SERVICE_FILTER.replace("reason:", "expires: next week\nreason:");
    let found = RuleSet::compile(&[source("rules/filters/f.yml", &text)]).unwrap_err();
    assert!(
        found
            .to_string()
            .contains("f.yml:3: exclusion: `expires` must be a date"),
        "{found}"
    );
}

#[test]
fn a_rule_that_needs_two_event_names_at_once_never_matches_and_is_a_problem() {
    let text = VALID.replace(
        "  condition: selection",
        "  other:\n    eventName: StartLogging\n  condition: selection and other",
    );
    let found = compile_one(&text).unwrap_err();
    assert!(
        found
            .0
            .iter()
            .any(|p| p.kind == ProblemKind::NeverMatches && p.line == 12),
        "{found}"
    );
    let pattern = PATTERN_RULE.replace(
        "($.eventSource = cloudtrail.amazonaws.com)",
        "($.eventName = StartLogging)",
    );
    let found = compile_one(&pattern).unwrap_err();
    assert_eq!(found.0[0].kind, ProblemKind::NeverMatches);
}

#[test]
fn a_bundle_loads_the_same_rules_with_the_same_verdicts() {
    let sources = builtin_sources();
    let from_yaml = RuleSet::compile(&sources).unwrap();
    let bundle = RuleSet::bundle(&sources).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let from_bundle = RuleSet::from_bundle_on(&bundle, today).unwrap();
    assert!(bundle.len() < sources.iter().map(|s| s.text.len()).sum::<usize>() / 2);
    let strip = |rules: &[Rule]| -> Vec<Rule> {
        rules
            .iter()
            .map(|r| Rule {
                tests: Vec::new(),
                ..r.clone()
            })
            .collect()
    };
    assert_eq!(strip(from_bundle.rules()), strip(from_yaml.rules()));
    assert_eq!(
        from_bundle.exclusions().collect::<Vec<_>>(),
        from_yaml.exclusions().collect::<Vec<_>>()
    );
    let names = |verdict: Verdict<'_>| -> (Vec<String>, Vec<String>) {
        (
            verdict.matched.iter().map(|r| r.name.clone()).collect(),
            verdict
                .suppressed
                .iter()
                .map(|s| s.rule.name.clone())
                .collect(),
        )
    };
    let mut checked = 0;
    for rule in from_yaml.rules() {
        for test in &rule.tests {
            assert_eq!(
                names(from_bundle.evaluate(&test.event)),
                names(from_yaml.evaluate(&test.event)),
                "{}: {}",
                rule.name,
                test.name
            );
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked}");
}

#[test]
fn a_bundle_of_another_format_or_garbage_is_refused() {
    let today = time::OffsetDateTime::now_utc().date();
    let bundle = RuleSet::bundle(&[source("rules/a.yml", VALID)]).unwrap();
    let other = bundle.replace(
        "\"trailwatch_rule_bundle\":4",
        "\"trailwatch_rule_bundle\":99",
    );
    assert_ne!(other, bundle, "the bundle names its format first");
    let err = RuleSet::from_bundle_on(&other, today).unwrap_err();
    assert!(
        matches!(&err.0[0].kind, ProblemKind::BadBundle(m) if m.contains("format 99")),
        "{err}"
    );
    // Gated rules compile on first use: only with the engine that checked them.
    let older = bundle.replacen(
        concat!("\"trailwatch ", env!("CARGO_PKG_VERSION"), "\""),
        "\"trailwatch 0.0.1\"",
        1,
    );
    let err = RuleSet::from_bundle_on(&older, today).unwrap_err();
    assert!(
        matches!(&err.0[0].kind, ProblemKind::BadBundle(m) if m.contains("trailwatch 0.0.1")),
        "{err}"
    );
    let err = RuleSet::from_bundle_on("%PDF", today).unwrap_err();
    assert!(matches!(&err.0[0].kind, ProblemKind::BadBundle(_)), "{err}");
    // A future format this build cannot parse at all still says which format it is.
    let future = r#"{"trailwatch_rule_bundle":5,"built_by":"trailwatch 9.9.9","rules":{}}"#;
    let err = RuleSet::from_bundle_on(future, today).unwrap_err();
    assert!(
        matches!(&err.0[0].kind, ProblemKind::BadBundle(m) if m.contains("format 5")),
        "{err}"
    );
    // This build's format, broken.
    let broken = bundle.replace("\"rules\":[", "\"rules\":[7,");
    let err = RuleSet::from_bundle_on(&broken, today).unwrap_err();
    assert!(
        matches!(&err.0[0].kind, ProblemKind::BadBundle(m) if m.starts_with("malformed bundle")),
        "{err}"
    );
}

/// The rule set in `tests/fixtures/<name>`.
fn fixture_rules(name: &str) -> RuleSet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    RuleSet::compile(&read_rule_dir(&dir).unwrap()).unwrap()
}

/// Each case's fields make a record (after an `eventName` no rule gates on): `set`
/// matches it with `expected` (a rule name, or none) and screens it as `screen`.
fn assert_screens(set: &RuleSet, cases: &[(&str, Option<&str>, Screen)]) {
    for &(fields, expected, screen) in cases {
        let text = format!(
            r#"{{"eventName":"Any","eventSource":"s.amazonaws.com",{}"#,
            &fields[1..]
        );
        let record: Value = serde_json::from_str(&text).unwrap();
        let matched: Vec<&str> = set
            .matching(&record)
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(matched, expected.into_iter().collect::<Vec<_>>(), "{text}");
        assert_eq!(set.screen(&text), screen, "{text}");
    }
}

#[test]
fn ungated_rules_screen_on_the_paths_they_read_and_never_lose_a_match() {
    let set = fixture_rules("ungated-rules");
    assert_eq!(set.ungated_rules().count(), 4);
    assert!(set.has_prefilter(), "every path they read is known");
    let cases = [
        (
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1"},"sourceIPAddress":"198.51.100.7"}"#,
            Some("service-role"),
        ),
        (
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1"},"sourceIPAddress":"AWS Internal"}"#,
            None,
        ),
        (
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/admin/s"}}"#,
            None,
        ),
        (
            r#"{"resources":[{"ARN":"arn:aws:s3:::b"},{"ARN":"arn:aws:secretsmanager:r:1:secret:db"}]}"#,
            Some("secret-resource"),
        ),
        (
            r#"{"resources":[{"ARN":"arn:aws:s3:::b","type":":secret:"}]}"#,
            None,
        ),
        (
            r#"{"requestParameters":{"VersioningConfiguration":{"Status":"Suspended"}}}"#,
            Some("suspended"),
        ),
        (
            r#"{"requestParameters":{"bucketName":"b"},"responseElements":{"s":"Suspended"}}"#,
            None,
        ),
        (r#"{"userAgent":"TruffleHog"}"#, Some("agent")),
        (r#"{"userAgent":"aws-cli/2"}"#, None),
    ];
    // Here the screen skips exactly the records no rule matches.
    let cases = cases.map(|(fields, expected)| {
        let screen = if expected.is_some() {
            Screen::Evaluate
        } else {
            Screen::Skip
        };
        (fields, expected, screen)
    });
    assert_screens(&set, &cases);
}

#[test]
fn rules_that_name_literals_are_ruled_out_by_a_search_and_never_lose_a_match() {
    let set = fixture_rules("literal-rules");
    assert_eq!(set.ungated_rules().count(), 4);
    assert!(
        set.has_prefilter(),
        "a keyword search is screened by its literal"
    );
    let cases = [
        (
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1"},"sourceIPAddress":"198.51.100.7"}"#,
            Some("service-role"),
            Screen::Evaluate,
        ),
        (
            // The search ignores case, the regex does not: built and evaluated (the
            // keyword rule reads every field, so there is no projection to screen on).
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/AWS:x/i-1"}}"#,
            None,
            Screen::Evaluate,
        ),
        (
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/admin/s"}}"#,
            None,
            Screen::Skip,
        ),
        (
            r#"{"userAgent":"trufflehog"}"#,
            Some("agent"),
            Screen::Evaluate,
        ),
        (r#"{"userAgent":"aws-cli/2"}"#, None, Screen::Skip),
        (
            r#"{"requestParameters":{"VersioningConfiguration":{"Status": "Suspended"}}}"#,
            Some("suspended"),
            Screen::Evaluate,
        ),
        (
            r#"{"requestParameters":{"VersioningConfiguration":{"Status":"Enabled"}}}"#,
            None,
            Screen::Skip,
        ),
        (
            r#"{"requestParameters":{"host":"api.evil-domain.example"}}"#,
            Some("keyword"),
            Screen::Evaluate,
        ),
        // A literal spelled with escapes, or text with other characters than ASCII,
        // is not ruled out by the search: the rules are evaluated.
        (
            r#"{"requestParameters":{"host":"evil\u002ddomain.example"}}"#,
            Some("keyword"),
            Screen::Evaluate,
        ),
        (
            r#"{"userIdentity":{"arn":"arn:aws:sts::1:assumed-role\/aws:x\/i-1"}}"#,
            Some("service-role"),
            Screen::Evaluate,
        ),
        (
            r#"{"userAgent":"ﬀ","sourceIPAddress":"1"}"#,
            None,
            Screen::Evaluate,
        ),
    ];
    assert_screens(&set, &cases);
}

/// The error-code screen never rules out a record rsigma or a filter pattern would
/// match: every `errorCode` test shape (plain, wildcards, each string modifier, cased,
/// a filter pattern's exact and wildcard values) against codes around its text, in
/// other cases, not ASCII, and not strings.
#[test]
fn the_error_code_screen_never_skips_a_match() {
    let tests = [
        "errorCode: AccessDenied",
        "errorCode: 'Access*'",
        "errorCode: '*Denied'",
        "errorCode: 'Acc?ss*Denied'",
        "errorCode|startswith: AccessDenied",
        "errorCode|startswith: 'Access*Denied'",
        "errorCode|startswith: 'AccessDenied*'",
        "errorCode|endswith: Denied",
        "errorCode|endswith: '*Denied'",
        "errorCode|endswith: 'Access*Denied'",
        "errorCode|contains: 'ess*Den'",
        "errorCode|contains: Denied",
        "errorCode|cased: AccessDenied",
        "errorCode|startswith|cased: Access",
        "errorCode|re: '^Acc'",
        "errorCode|exists: true",
        "errorCode: 403",
    ];
    let mut sources: Vec<RuleSource> = tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            source(
                &format!("rules/t{i}.yml"),
                &format!(
                    "title: t{i}\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    {test}\n  condition: sel\nlevel: low\n"
                ),
            )
        })
        .collect();
    for (i, pattern) in [
        r#"{ $.errorCode = "AccessDenied" }"#,
        r#"{ $.errorCode = "Access*" }"#,
        r#"{ $.errorCode = "*Denied" }"#,
        r#"{ $.errorCode = "Acc*Den*ied" }"#,
        r#"{ $.errorCode = 403 }"#,
    ]
    .iter()
    .enumerate()
    {
        sources.push(source(
            &format!("rules/p{i}.yml"),
            &format!(
                "title: p{i}\nlogsource: {{product: aws, service: cloudtrail}}\nfilter_pattern: '{pattern}'\nlevel: low\n"
            ),
        ));
    }
    let codes = [
        "AccessDenied",
        "accessdenied",
        "ACCESSDENIED",
        "AccessDeniedException",
        "Client.AccessDenied",
        "XAccessDeniedX",
        "Access",
        "Denied",
        "AccXssDenied",
        "AcceSSDenied",
        "AccessDeniedſ",
        "ſAccessDenied",
        "AccessDenıed",
        "",
        "Throttling",
    ];
    let mut values: Vec<serde_json::Value> = codes.iter().map(|c| serde_json::json!(c)).collect();
    values.extend([
        serde_json::json!(403),
        serde_json::json!(true),
        serde_json::json!({"a": 1}),
    ]);
    for (i, chunk) in sources.chunks(1).enumerate() {
        let rules = RuleSet::compile(chunk).unwrap_or_else(|e| panic!("{}: {e}", chunk[0].text));
        for value in &values {
            let record = serde_json::json!({
                "eventVersion": "1.08", "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject", "userIdentity": {"type": "IAMUser"},
                "errorCode": value,
            });
            let matched = !rules.evaluate_every_rule(&record).matched.is_empty();
            if matched {
                assert_eq!(
                    rules.screen(&record.to_string()),
                    Screen::Evaluate,
                    "rule {i} ({}) matches errorCode {value} but the screen skips it",
                    chunk[0].text
                );
            }
        }
    }
}

/// rsigma anchors a wildcard value under `startswith`/`endswith` at the other end, so
/// `rules lint` warns at the line that gives one; plain values and `contains` do not warn.
#[test]
fn a_wildcard_under_startswith_or_endswith_warns_at_its_line() {
    let text = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: GetObject\n    errorCode|startswith: 'Access*'\n  other:\n    userAgent|endswith: '*curl'\n    sourceIPAddress|startswith: '10.'\n    userIdentity.arn|contains: 'a*b'\n  condition: sel or other\nlevel: low\n";
    let rules = RuleSet::compile(&[source("rules/w.yml", text)]).unwrap();
    let warnings: Vec<String> = rules.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("rules/w.yml:6: warning: `errorCode|startswith`"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("rules/w.yml:8: warning: `userAgent|endswith`"),
        "{warnings:?}"
    );
    // What the warning says is what rsigma does.
    let matches =
        |record: serde_json::Value| !rules.evaluate_every_rule(&record).matched.is_empty();
    assert!(matches(
        serde_json::json!({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "errorCode": "Client.AccessDenied"})
    ));
    assert!(matches(
        serde_json::json!({"eventSource": "s3.amazonaws.com", "eventName": "X", "userAgent": "curl/8.0 extra",
            "sourceIPAddress": "10.1.2.3", "userIdentity": {"arn": "xaYYbz"}})
    ));
    let builtin = RuleSet::compile(&builtin_sources()).unwrap();
    assert!(builtin.warnings().is_empty(), "{:?}", builtin.warnings());
}
