//! Loading one rule file: YAML syntax, trailwatch's own keys, then either rsigma parsing
//! and compilation (`detection:`), a CloudWatch Logs filter pattern (`filter_pattern:`),
//! or a Sigma filter (`filter:`, an exclusion), each problem reported with its file,
//! line and typed kind. A file with any problem yields nothing.

use std::collections::HashMap;

use rsigma_eval::CompiledRule;
use rsigma_parser::{SigmaParserError, SigmaRule};
use yaml_serde::{Mapping, Value as Yaml};

use super::filter_pattern::FilterPattern;
use super::{
    Expectation, InlineTest, ProblemKind, Rule, RuleProblem, RuleSource, Severity,
    exclusion::LoadedExclusion,
};

/// How a loaded rule matches.
pub(super) enum Matcher {
    /// A Sigma detection, compiled by rsigma (the parsed rule is kept until the set's
    /// prefilter is built).
    Sigma {
        compiled: Box<CompiledRule>,
        sigma: Box<SigmaRule>,
    },
    /// A CloudWatch Logs filter pattern.
    Pattern(FilterPattern),
    /// A gated Sigma rule of a compiled bundle: its text and gate, compiled on first use.
    Bundled {
        text: String,
        gate: super::prefilter::Gate,
    },
}

/// A rule that passed every check, with its compiled matcher.
pub(super) struct LoadedRule {
    pub(super) rule: Rule,
    pub(super) matcher: Matcher,
}

/// What one file holds.
pub(super) enum Loaded {
    /// A detection rule.
    Rule(Box<LoadedRule>),
    /// An exclusion (a Sigma filter).
    Exclusion(Box<LoadedExclusion>),
    /// A Sigma correlation rule (its metadata, with `correlation` set).
    Correlation(Box<Rule>),
}

/// Finds lines in a rule file's text. rsigma and serde report no spans for most
/// problems, so lines come from where the offending key or token first appears.
struct Lines<'a> {
    text: &'a str,
}

impl<'a> Lines<'a> {
    /// The line of a top-level `key:`.
    fn top_key(&self, key: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|line| {
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
            .map(|i| i + 1)
    }

    /// The first line at or after `from` (1-based) that contains `needle`.
    fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, line)| line.contains(needle))
            .map(|(i, _)| i + 1)
    }

    /// Where an rsigma error about the detection points: the first line at or after
    /// `detection` holding the message's first quoted token, else its trailing
    /// identifier (`unknown detection identifier: nosuch`), else a line of the message
    /// echoed from the file (regex errors echo the pattern), else `detection` itself.
    fn of_message(&self, message: &str, detection: usize) -> usize {
        let first_line = message.lines().next().unwrap_or_default();
        let trailing_identifier = first_line
            .rsplit_once(": ")
            .map(|(_, tail)| tail.trim())
            .filter(|tail| !tail.is_empty() && !tail.contains(' '));
        let echoed =
            message.lines().skip(1).map(str::trim).filter(|l| {
                l.len() >= 2 && !l.starts_with("error:") && l.chars().any(|c| c != '^')
            });
        quoted_tokens(message)
            .into_iter()
            .chain(trailing_identifier)
            .chain(echoed)
            .find_map(|token| self.find_from(detection, token))
            .unwrap_or(detection)
    }
}

/// Tokens inside '…' or "…" in a message, longest first (most specific).
fn quoted_tokens(message: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    for quote in ['\'', '"'] {
        let mut parts = message.split(quote);
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            if !inside.trim().is_empty() {
                tokens.push(inside);
            }
        }
    }
    tokens.sort_by_key(|t| std::cmp::Reverse(t.len()));
    tokens
}

/// The file stem of a path: `rules/a-b.yml` → `a-b`.
fn file_stem(path: &str) -> &str {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn string_at<'y>(map: &'y Mapping, key: &str) -> Option<&'y str> {
    map.get(key).and_then(Yaml::as_str)
}

fn string_list(map: &Mapping, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Yaml::as_sequence)
        .map(|items| {
            items
                .iter()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) struct FileChecker<'a> {
    source: &'a RuleSource,
    lines: Lines<'a>,
    problems: Vec<RuleProblem>,
}

impl<'a> FileChecker<'a> {
    /// The file being checked.
    pub(super) fn path(&self) -> &str {
        &self.source.path
    }

    /// Records a problem.
    pub(super) fn problem(&mut self, line: usize, kind: ProblemKind) {
        self.problems.push(RuleProblem {
            path: self.source.path.clone(),
            line,
            kind,
        });
    }

    /// Records a problem in rsigma's own words; multi-line messages (regex errors)
    /// become one line.
    pub(super) fn sigma_problem(&mut self, line: usize, message: &str) {
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        self.problem(line, ProblemKind::Sigma(message));
    }

    /// Records a problem with an inline test.
    fn test_problem(&mut self, line: usize, message: String) {
        self.problem(line, ProblemKind::BadInlineTest(message));
    }

    pub(super) fn key_line(&self, key: &str) -> usize {
        self.lines.top_key(key).unwrap_or(1)
    }

    fn severity(&mut self, map: &Mapping) -> Option<Severity> {
        let line = self.key_line("level");
        match map.get("level") {
            None => self.problem(1, ProblemKind::MissingLevel),
            Some(level) => match level.as_str().and_then(Severity::parse) {
                Some(severity) => return Some(severity),
                None => self.problem(line, ProblemKind::UnknownLevel(yaml_inline(level))),
            },
        }
        None
    }

    pub(super) fn check_logsource(&mut self, map: &Mapping) {
        let line = self.key_line("logsource");
        let Some(logsource) = map.get("logsource").and_then(Yaml::as_mapping) else {
            self.problem(line, ProblemKind::MissingLogsource);
            return;
        };
        let product = string_at(logsource, "product");
        let service = string_at(logsource, "service");
        if product != Some("aws") || service.is_some_and(|s| s != "cloudtrail") {
            self.problem(
                line,
                ProblemKind::WrongLogsource {
                    product: product.unwrap_or("(none)").to_owned(),
                    service: service.unwrap_or("(none)").to_owned(),
                },
            );
        }
    }

    pub(super) fn name(&mut self, map: &Mapping) -> String {
        let name = match map.get("name") {
            None => file_stem(&self.source.path).to_owned(),
            Some(value) => value.as_str().unwrap_or_default().to_owned(),
        };
        if !is_valid_name(&name) {
            let line = self.key_line("name");
            self.problem(line, ProblemKind::BadName(name.clone()));
        }
        name
    }

    fn inline_tests(&mut self, map: &Mapping) -> Vec<InlineTest> {
        let Some(tests) = map.get("tests") else {
            return Vec::new();
        };
        let tests_line = self.key_line("tests");
        let Some(items) = tests.as_sequence() else {
            self.test_problem(
                tests_line,
                "`tests` must be a list of {name, expect, event}".to_owned(),
            );
            return Vec::new();
        };
        let mut parsed = Vec::new();
        let mut search_from = tests_line;
        for (index, item) in items.iter().enumerate() {
            let name = item.get("name").and_then(Yaml::as_str);
            let line = name
                .and_then(|n| self.lines.find_from(search_from, n))
                .or_else(|| self.lines.find_from(search_from, "- "))
                .unwrap_or(tests_line);
            search_from = line + 1;
            let label = name.map_or_else(|| format!("#{}", index + 1), |n| format!("{n:?}"));
            let Some(name) = name else {
                self.test_problem(line, format!("test #{} has no `name`", index + 1));
                continue;
            };
            if let Some(events) = item.get("events") {
                // A sequence test: records fed in order, with state, and the number of
                // alerts the rule must give.
                let alerts = item.get("alerts").and_then(Yaml::as_u64);
                let records: Option<Vec<serde_json::Value>> = events.as_sequence().map(|list| {
                    list.iter()
                        .filter_map(|e| serde_json::to_value(e).ok())
                        .filter(serde_json::Value::is_object)
                        .collect()
                });
                match (alerts, records) {
                    (Some(alerts), Some(records))
                        if !records.is_empty()
                            && records.len() == events.as_sequence().map_or(0, Vec::len) =>
                    {
                        parsed.push(InlineTest {
                            name: name.to_owned(),
                            expect: Expectation::Alerts(alerts as usize),
                            event: serde_json::Value::Null,
                            events: records,
                            line,
                        });
                    }
                    _ => self.test_problem(
                        line,
                        format!(
                            "test {label}: a sequence test has `events` (a list of CloudTrail records) and `alerts` (how many alerts they give)"
                        ),
                    ),
                }
                continue;
            }
            let expect = match item.get("expect").and_then(Yaml::as_str) {
                Some("match") => Expectation::Match,
                Some("no_match") => Expectation::NoMatch,
                other => {
                    self.test_problem(
                        line,
                        format!(
                            "test {label}: `expect` is {}; use match or no_match",
                            other.unwrap_or("missing")
                        ),
                    );
                    continue;
                }
            };
            let event = match item.get("event").map(serde_json::to_value) {
                Some(Ok(event @ serde_json::Value::Object(_))) => event,
                Some(Ok(_)) | None => {
                    self.test_problem(
                        line,
                        format!("test {label}: `event` must be a CloudTrail record (a mapping)"),
                    );
                    continue;
                }
                Some(Err(err)) => {
                    self.test_problem(
                        line,
                        format!("test {label}: `event` is not JSON-compatible: {err}"),
                    );
                    continue;
                }
            };
            if let Err(err) = crate::record::parse_record(&event.to_string()) {
                self.test_problem(line, format!("test {label}: {err}"));
                continue;
            }
            parsed.push(InlineTest {
                name: name.to_owned(),
                expect,
                event,
                events: Vec::new(),
                line,
            });
        }
        parsed
    }

    /// Finds conditions in the old aggregation syntax (`selection | count() by x > 5`),
    /// which rsigma would reject with a parse error that hides the reason.
    fn check_aggregation(&mut self, detection: &Mapping) -> bool {
        let conditions: Vec<&str> = match detection.get("condition") {
            Some(Yaml::String(condition)) => vec![condition.as_str()],
            Some(Yaml::Sequence(items)) => items.iter().filter_map(Yaml::as_str).collect(),
            _ => Vec::new(),
        };
        let mut found = false;
        if let Some(timeframe) = detection.get("timeframe") {
            let line = self
                .lines
                .find_from(self.key_line("detection"), "timeframe")
                .unwrap_or(1);
            self.problem(
                line,
                ProblemKind::UnsupportedAggregation {
                    construct: format!("timeframe: {}", yaml_inline(timeframe)),
                },
            );
            found = true;
        }
        for condition in conditions.into_iter().filter(|c| c.contains('|')) {
            let line = self
                .lines
                .find_from(self.key_line("detection"), "condition")
                .unwrap_or(1);
            self.problem(
                line,
                ProblemKind::UnsupportedAggregation {
                    construct: condition.to_owned(),
                },
            );
            found = true;
        }
        found
    }

    /// Checks every `field|modifier` key of the detection with rsigma's own field-spec
    /// parser, so an unknown modifier is a typed problem at the line of its key.
    fn check_modifiers(&mut self, value: &Yaml) -> bool {
        let mut ok = true;
        match value {
            Yaml::Mapping(map) => {
                for (key, inner) in map {
                    if let Some(key) = key.as_str()
                        && key.contains('|')
                        && let Err(SigmaParserError::UnknownModifier(modifier)) =
                            rsigma_parser::parse_field_spec(key)
                    {
                        let line = self.lines.find_from(1, key).unwrap_or(1);
                        self.problem(
                            line,
                            ProblemKind::BadModifier {
                                field: key.to_owned(),
                                modifier,
                            },
                        );
                        ok = false;
                    }
                    ok &= self.check_modifiers(inner);
                }
            }
            Yaml::Sequence(items) => {
                for item in items {
                    ok &= self.check_modifiers(item);
                }
            }
            _ => {}
        }
        ok
    }

    /// Parses Sigma text with rsigma, reporting every error it finds (at its line when
    /// rsigma knows it, else where its quoted token appears, else at `fallback_line`).
    fn parse_collection(
        &mut self,
        text: &str,
        fallback_line: usize,
    ) -> Option<rsigma_parser::SigmaCollection> {
        let collection = match rsigma_parser::parse_sigma_yaml(text) {
            Ok(collection) => collection,
            Err(err) => {
                let line = err
                    .location()
                    .map(|loc| loc.line as usize)
                    .unwrap_or_else(|| self.lines.of_message(&err.to_string(), fallback_line));
                self.sigma_problem(line, &err.to_string());
                return None;
            }
        };
        for err in &collection.errors {
            let line = self.lines.of_message(err, fallback_line);
            self.sigma_problem(line, err);
        }
        collection.errors.is_empty().then_some(collection)
    }

    /// Parses and compiles the Sigma part with rsigma. `text` is the file's text, or
    /// (when `level` was invalid, which trailwatch reports itself) the same rule
    /// without its `level`.
    fn sigma(&mut self, text: &str) -> Option<Matcher> {
        let detection_line = self.key_line("detection");
        let collection = self.parse_collection(text, detection_line)?;
        if !collection.correlations.is_empty()
            || !collection.filters.is_empty()
            || collection.rules.len() != 1
        {
            self.problem(
                1,
                ProblemKind::NotOneRule {
                    rules: collection.rules.len(),
                    correlations: collection.correlations.len(),
                    filters: collection.filters.len(),
                },
            );
            return None;
        }
        let sigma: SigmaRule = collection.rules.into_iter().next()?;
        match rsigma_eval::compile_rule(&sigma) {
            Ok(compiled) => Some(Matcher::Sigma {
                compiled: Box::new(compiled),
                sigma: Box::new(sigma),
            }),
            Err(err) => {
                let message = err.to_string();
                let line = self.lines.of_message(&message, detection_line);
                self.sigma_problem(line, &message);
                None
            }
        }
    }

    /// Parses a correlation rule file with rsigma and reduces it to what trailwatch runs.
    fn correlation_rule(&mut self, text: &str) -> Option<super::stateful::Correlation> {
        let collection = self.parse_collection(text, self.key_line("correlation"))?;
        if collection.correlations.len() != 1
            || !collection.rules.is_empty()
            || !collection.filters.is_empty()
        {
            self.problem(
                1,
                ProblemKind::NotOneRule {
                    rules: collection.rules.len(),
                    correlations: collection.correlations.len(),
                    filters: collection.filters.len(),
                },
            );
            return None;
        }
        super::stateful::correlation(self, &collection.correlations[0])
    }

    /// Compiles `filter_pattern:`.
    fn filter_pattern(&mut self, value: &Yaml) -> Option<Matcher> {
        let line = self.key_line("filter_pattern");
        let Some(text) = value.as_str() else {
            self.problem(
                line,
                ProblemKind::BadFilterPattern("must be a string".to_owned()),
            );
            return None;
        };
        match FilterPattern::parse(text) {
            Ok(pattern) => Some(Matcher::Pattern(pattern)),
            Err(err) => {
                self.problem(line, ProblemKind::BadFilterPattern(err.to_string()));
                None
            }
        }
    }

    /// The matcher: exactly one of `detection` and `filter_pattern`.
    fn matcher(&mut self, map: &Mapping, level_ok: bool) -> Option<Matcher> {
        match (map.get("detection"), map.get("filter_pattern")) {
            (Some(_), Some(_)) => {
                let line = self.key_line("filter_pattern");
                self.problem(line, ProblemKind::DetectionAndFilterPattern);
                None
            }
            (None, None) => {
                self.problem(1, ProblemKind::NoDetection);
                None
            }
            (None, Some(pattern)) => self.filter_pattern(pattern),
            (Some(detection), None) => {
                if let Some(detection) = detection.as_mapping()
                    && self.check_aggregation(detection)
                {
                    return None;
                }
                if !self.check_modifiers(detection) {
                    return None;
                }
                // trailwatch checks `level` itself (with the list of valid levels), so
                // rsigma never sees it; only a file passed whole still holds it, and then
                // an invalid one is taken out.
                match sigma_part(&self.source.text) {
                    std::borrow::Cow::Borrowed(_) if !level_ok => {
                        let mut without_level = map.clone();
                        without_level.remove("level");
                        let text = yaml_serde::to_string(&without_level).unwrap_or_default();
                        self.sigma(&text)
                    }
                    part => self.sigma(&part),
                }
            }
        }
    }
}

/// The part of a rule file rsigma needs (`title`, `id`, `logsource`, `detection`), with
/// every other top-level block blanked line for line, so rsigma parses a
/// fraction of the text and its line numbers still point into the file. The prose
/// (description, runbook, tests) is most of a file and trailwatch reads it itself. Files
/// that are not plain block-style YAML (several documents, directives, flow style at the
/// top) are passed whole.
pub(super) fn sigma_part(text: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: [&str; 4] = ["title", "id", "logsource", "detection"];
    let mut out = String::with_capacity(text.len() / 4);
    let mut keep = false;
    let mut saw_detection = false;
    for line in text.lines() {
        let first = line.chars().next();
        if line.starts_with("---") || line.starts_with("...") || first == Some('%') {
            return text.into();
        }
        let top_level_key = first.is_some_and(|c| !c.is_whitespace() && c != '#' && c != '-');
        if top_level_key {
            let Some((key, _)) = line.split_once(':') else {
                return text.into();
            };
            keep = KEEP.contains(&key.trim_end());
            saw_detection |= key.trim_end() == "detection";
        }
        if keep {
            out.push_str(line);
        }
        out.push('\n');
    }
    if saw_detection {
        out.into()
    } else {
        text.into()
    }
}

fn yaml_inline(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => format!("{s:?}"),
        other => yaml_serde::to_string(other)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned()),
    }
}

/// The field and modifier (`("errorCode", "startswith")`) of each of a rule's items that
/// gives a wildcard value to `startswith` or `endswith`. rsigma-eval 0.23 compiles such a
/// value to a regex anchored at the other end (`startswith: 'A*'` becomes `A.*$`), which
/// matches more than the author meant, so `rules lint` warns about them.
pub(super) fn anchored_wildcards(rule: &SigmaRule) -> Vec<(String, &'static str)> {
    use rsigma_parser::{Detection, Modifier, SigmaValue};
    fn walk(detection: &Detection, found: &mut Vec<(String, &'static str)>) {
        match detection {
            Detection::AllOf(items) => {
                for item in items {
                    let modifiers = &item.field.modifiers;
                    let anchored = modifiers
                        .iter()
                        .any(|m| matches!(m, Modifier::StartsWith | Modifier::EndsWith));
                    let wildcard = item
                        .values
                        .iter()
                        .any(|v| matches!(v, SigmaValue::String(s) if s.contains_wildcards()));
                    if anchored && wildcard && !modifiers.contains(&Modifier::Contains) {
                        let which = match modifiers.contains(&Modifier::StartsWith) {
                            true => "startswith",
                            false => "endswith",
                        };
                        found.push((item.field.name.clone().unwrap_or_default(), which));
                    }
                }
            }
            Detection::AnyOf(children) => children.iter().for_each(|c| walk(c, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let mut named: Vec<_> = rule.detection.named.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    for (_, detection) in named {
        walk(detection, &mut found);
    }
    found
}

/// Loads one rule (or exclusion) file, collecting every problem in it.
pub(super) fn load_rule_file(source: &RuleSource) -> Result<Loaded, Vec<RuleProblem>> {
    let mut checker = FileChecker {
        source,
        lines: Lines { text: &source.text },
        problems: Vec::new(),
    };
    let document: Yaml = match yaml_serde::from_str(&source.text) {
        Ok(document) => document,
        Err(err) => {
            let line = err.location().map_or(1, |loc| loc.line());
            checker.problem(line, ProblemKind::YamlSyntax(err.to_string()));
            return Err(checker.problems);
        }
    };
    let Some(map) = document.as_mapping() else {
        checker.problem(1, ProblemKind::NotAMapping);
        return Err(checker.problems);
    };
    let title = string_at(map, "title").map(str::to_owned);
    if title.is_none() {
        checker.problem(checker.key_line("title"), ProblemKind::MissingKey("title"));
    }
    if map.contains_key("filter") {
        checker.check_logsource(map);
        let exclusion = super::exclusion::load(&mut checker, map, title.unwrap_or_default());
        return match exclusion {
            Some(exclusion) if checker.problems.is_empty() => {
                Ok(Loaded::Exclusion(Box::new(exclusion)))
            }
            _ => Err(checker.problems),
        };
    }
    let severity = checker.severity(map);
    if map.contains_key("correlation") {
        let name = checker.name(map);
        let tests = checker.inline_tests(map);
        let correlation = checker.correlation_rule(&source.text);
        let route = super::stateful::route(&mut checker, map);
        return match (title, severity, correlation) {
            (Some(title), Some(severity), Some(correlation)) if checker.problems.is_empty() => {
                let mut rule = metadata(map, source, name, title, severity);
                rule.correlation = Some(correlation);
                rule.tests = tests;
                rule.route = route;
                Ok(Loaded::Correlation(Box::new(rule)))
            }
            _ => Err(checker.problems),
        };
    }
    checker.check_logsource(map);
    let name = checker.name(map);
    let dedup = super::stateful::dedup(&mut checker, map);
    let first_seen = super::stateful::first_seen(&mut checker, map);
    let route = super::stateful::route(&mut checker, map);
    let tests = checker.inline_tests(map);
    let matcher = checker.matcher(map, severity.is_some());

    match (title, severity, matcher) {
        (Some(title), Some(severity), Some(matcher)) if checker.problems.is_empty() => {
            let filter_pattern = match &matcher {
                Matcher::Pattern(pattern) => Some(pattern.source().to_owned()),
                Matcher::Sigma { .. } | Matcher::Bundled { .. } => None,
            };
            let mut rule = metadata(map, source, name, title, severity);
            rule.filter_pattern = filter_pattern;
            rule.tests = tests;
            rule.dedup = dedup;
            rule.first_seen = first_seen;
            rule.route = route;
            Ok(Loaded::Rule(Box::new(LoadedRule { rule, matcher })))
        }
        _ => Err(checker.problems),
    }
}

/// A rule's metadata (everything but its matcher and trailwatch's stateful keys).
fn metadata(
    map: &Mapping,
    source: &RuleSource,
    name: String,
    title: String,
    severity: Severity,
) -> Rule {
    Rule {
        name,
        id: string_at(map, "id").map(str::to_owned),
        title,
        severity,
        description: string_at(map, "description").map(|d| d.trim().to_owned()),
        runbook: string_at(map, "runbook").map(|r| r.trim_end().to_owned()),
        tags: string_list(map, "tags"),
        falsepositives: string_list(map, "falsepositives"),
        references: string_list(map, "references"),
        author: string_at(map, "author").map(str::to_owned),
        path: source.path.clone(),
        filter_pattern: None,
        exempt_from: string_list(map, "exempt_from"),
        tests: Vec::new(),
        dedup: None,
        first_seen: None,
        route: None,
        correlation: None,
        rendered: super::RenderedOnce::default(),
    }
}

/// Rebuilds a rule of a compiled bundle: its metadata as bundled, its matcher compiled
/// again from the bundled text (`source` holds that text, for line numbers).
pub(super) fn load_bundled(
    rule: Rule,
    matcher: &super::bundle::BundledMatcher,
    source: &RuleSource,
) -> Result<LoadedRule, Vec<RuleProblem>> {
    let mut checker = FileChecker {
        source,
        lines: Lines { text: &source.text },
        problems: Vec::new(),
    };
    let matcher = match matcher {
        super::bundle::BundledMatcher::Sigma(text) => checker.sigma(text),
        super::bundle::BundledMatcher::FilterPattern(pattern) => {
            checker.filter_pattern(&Yaml::String(pattern.clone()))
        }
    };
    match matcher {
        Some(matcher) if checker.problems.is_empty() => Ok(LoadedRule { rule, matcher }),
        _ => Err(checker.problems),
    }
}

/// Problems for names and ids used by more than one rule.
pub(super) fn duplicate_problems(loaded: &[LoadedRule], correlations: &[Rule]) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    let mut seen_names: HashMap<&str, &Rule> = HashMap::new();
    let mut seen_ids: HashMap<&str, &Rule> = HashMap::new();
    for rule in loaded.iter().map(|loaded| &loaded.rule).chain(correlations) {
        if let Some(first) = seen_names.insert(&rule.name, rule) {
            problems.push(duplicate(rule, "name", &rule.name, first));
        }
        if let Some(id) = &rule.id
            && let Some(first) = seen_ids.insert(id, rule)
        {
            problems.push(duplicate(rule, "id", id, first));
        }
    }
    problems
}

fn duplicate(rule: &Rule, key: &'static str, value: &str, first: &Rule) -> RuleProblem {
    RuleProblem {
        path: rule.path.clone(),
        line: 1,
        kind: ProblemKind::Duplicate {
            key,
            value: value.to_owned(),
            first: first.path.clone(),
        },
    }
}

/// Fixes a duplicate problem's line to the line of the duplicated key.
pub(super) fn locate_duplicates(problems: &mut [RuleProblem], sources: &[RuleSource]) {
    for problem in problems {
        let Some(source) = sources.iter().find(|s| s.path == problem.path) else {
            continue;
        };
        let lines = Lines { text: &source.text };
        if let ProblemKind::Duplicate { key, .. } = problem.kind
            && let Some(line) = lines.top_key(key)
        {
            problem.line = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sigma_part_keeps_lines_and_drops_prose() {
        let text = "title: t\ndescription: >-\n  long\n  prose\ndetection:\n  sel:\n    eventName: A\n  condition: sel\nrunbook: |\n  1. x\nlevel: high\n";
        let part = sigma_part(text);
        assert_eq!(part.lines().count(), text.lines().count());
        assert_eq!(
            part,
            "title: t\n\n\n\ndetection:\n  sel:\n    eventName: A\n  condition: sel\n\n\n\n"
        );
        for whole in [
            "---\ntitle: t\ndetection: {}\n",
            "{title: t, detection: {}}\n",
            "title: t\n",
        ] {
            assert_eq!(sigma_part(whole), whole);
        }
    }

    #[test]
    fn quoted_tokens_prefers_longest() {
        assert_eq!(
            quoted_tokens("Unknown modifier 'foo' in 'a|foo'"),
            ["a|foo", "foo"]
        );
        assert!(quoted_tokens("no quotes").is_empty());
    }

    #[test]
    fn file_stem_strips_dirs_and_extension() {
        assert_eq!(file_stem("rules/console-login.yml"), "console-login");
        assert_eq!(file_stem("a.b.yaml"), "a.b");
        assert_eq!(file_stem("plain"), "plain");
    }

    #[test]
    fn names_are_slugs() {
        assert!(is_valid_name("aws_cloudtrail_disable_logging"));
        assert!(is_valid_name("console-login-without-mfa"));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn top_key_finds_only_top_level_keys() {
        let lines = Lines {
            text: "title: x\ndetection:\n  level: nested\nlevel: high\n",
        };
        assert_eq!(lines.top_key("level"), Some(4));
        assert_eq!(lines.top_key("detection"), Some(2));
        assert_eq!(lines.top_key("missing"), None);
    }
}
