//! Loading one rule file: YAML syntax, trailwatch's own keys, rsigma parsing and
//! compilation, each problem reported with its file and line. A file with any problem
//! yields no rule.

use std::collections::HashMap;
use std::sync::Arc;

use rsigma_eval::CompiledRule;
use rsigma_parser::SigmaRule;
use yaml_serde::{Mapping, Value as Yaml};

use super::{Expectation, InlineTest, Rule, RuleProblem, RuleSource, Severity};

/// A rule that passed every check, with its compiled matcher.
pub(super) struct LoadedRule {
    pub(super) rule: Rule,
    pub(super) compiled: CompiledRule,
    /// The parsed rule, kept until the set's prefilter is built.
    pub(super) sigma: SigmaRule,
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

fn string_at<'y>(map: &'y Mapping, key: &str) -> Option<&'y str> {
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

struct FileChecker<'a> {
    source: &'a RuleSource,
    lines: Lines<'a>,
    problems: Vec<RuleProblem>,
}

impl<'a> FileChecker<'a> {
    /// Records a problem; multi-line reasons (regex errors) become one line.
    fn problem(&mut self, line: usize, reason: impl Into<String>) {
        let reason = reason
            .into()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        self.problems.push(RuleProblem {
            path: self.source.path.clone(),
            line,
            reason,
        });
    }

    fn key_line(&self, key: &str) -> usize {
        self.lines.top_key(key).unwrap_or(1)
    }

    fn severity(&mut self, map: &Mapping) -> Option<Severity> {
        let line = self.key_line("level");
        match map.get("level") {
            None => self.problem(
                1,
                "missing `level` (informational, low, medium, high or critical)",
            ),
            Some(level) => match level.as_str().and_then(Severity::parse) {
                Some(severity) => return Some(severity),
                None => self.problem(
                    line,
                    format!(
                        "unknown level {} (expected informational, low, medium, high or critical)",
                        yaml_inline(level)
                    ),
                ),
            },
        }
        None
    }

    fn check_logsource(&mut self, map: &Mapping) {
        let line = self.key_line("logsource");
        let Some(logsource) = map.get("logsource").and_then(Yaml::as_mapping) else {
            self.problem(
                line,
                "missing `logsource` (expected product: aws, service: cloudtrail)",
            );
            return;
        };
        let product = string_at(logsource, "product");
        let service = string_at(logsource, "service");
        if product != Some("aws") || service.is_some_and(|s| s != "cloudtrail") {
            self.problem(
                line,
                format!(
                    "logsource is product: {}, service: {}; trailwatch evaluates product: aws, service: cloudtrail",
                    product.unwrap_or("(none)"),
                    service.unwrap_or("(none)")
                ),
            );
        }
    }

    fn name(&mut self, map: &Mapping) -> String {
        let name = match map.get("name") {
            None => file_stem(&self.source.path).to_owned(),
            Some(value) => value.as_str().unwrap_or_default().to_owned(),
        };
        if !is_valid_name(&name) {
            let line = self.key_line("name");
            self.problem(
                line,
                format!("rule name {name:?} must be 1-128 characters of letters, digits, '-', '_' or '.' (set `name:` or rename the file)"),
            );
        }
        name
    }

    fn inline_tests(&mut self, map: &Mapping) -> Vec<InlineTest> {
        let Some(tests) = map.get("tests") else {
            return Vec::new();
        };
        let tests_line = self.key_line("tests");
        let Some(items) = tests.as_sequence() else {
            self.problem(
                tests_line,
                "`tests` must be a list of {name, expect, event}",
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
                self.problem(line, format!("test #{} has no `name`", index + 1));
                continue;
            };
            let expect = match item.get("expect").and_then(Yaml::as_str) {
                Some("match") => Expectation::Match,
                Some("no_match") => Expectation::NoMatch,
                other => {
                    self.problem(
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
                    self.problem(
                        line,
                        format!("test {label}: `event` must be a CloudTrail record (a mapping)"),
                    );
                    continue;
                }
                Some(Err(err)) => {
                    self.problem(
                        line,
                        format!("test {label}: `event` is not JSON-compatible: {err}"),
                    );
                    continue;
                }
            };
            if let Err(err) = crate::record::parse_record(&event.to_string()) {
                self.problem(line, format!("test {label}: {err}"));
                continue;
            }
            parsed.push(InlineTest {
                name: name.to_owned(),
                expect,
                event,
                line,
            });
        }
        parsed
    }

    /// Parses and compiles the Sigma part with rsigma.
    fn sigma(&mut self) -> Option<(CompiledRule, SigmaRule)> {
        let detection_line = self.key_line("detection");
        let collection = match rsigma_parser::parse_sigma_yaml(&self.source.text) {
            Ok(collection) => collection,
            Err(err) => {
                let line = err
                    .location()
                    .map(|loc| loc.line as usize)
                    .unwrap_or_else(|| self.lines.of_message(&err.to_string(), detection_line));
                self.problem(line, err.to_string());
                return None;
            }
        };
        // trailwatch checks `level` itself, with the list of valid levels.
        let errors = collection
            .errors
            .iter()
            .filter(|e| !e.starts_with("invalid level"));
        let mut any_error = false;
        for err in errors {
            any_error = true;
            let line = self.lines.of_message(err, detection_line);
            self.problem(line, err.clone());
        }
        if any_error || !collection.errors.is_empty() {
            return None;
        }
        if !collection.correlations.is_empty()
            || !collection.filters.is_empty()
            || collection.rules.len() != 1
        {
            self.problem(
                1,
                format!(
                    "expected one detection rule per file, found {} rule(s), {} correlation(s), {} filter(s)",
                    collection.rules.len(),
                    collection.correlations.len(),
                    collection.filters.len()
                ),
            );
            return None;
        }
        let sigma: SigmaRule = collection.rules.into_iter().next()?;
        match rsigma_eval::compile_rule(&sigma) {
            Ok(compiled) => Some((compiled, sigma)),
            Err(err) => {
                let message = err.to_string();
                let line = self.lines.of_message(&message, detection_line);
                self.problem(line, message);
                None
            }
        }
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

/// Loads one rule file, collecting every problem in it.
pub(super) fn load_rule_file(source: &RuleSource) -> Result<LoadedRule, Vec<RuleProblem>> {
    let mut checker = FileChecker {
        source,
        lines: Lines { text: &source.text },
        problems: Vec::new(),
    };
    let document: Yaml = match yaml_serde::from_str(&source.text) {
        Ok(document) => document,
        Err(err) => {
            let line = err.location().map_or(1, |loc| loc.line());
            checker.problem(line, format!("YAML syntax: {err}"));
            return Err(checker.problems);
        }
    };
    let Some(map) = document.as_mapping() else {
        checker.problem(1, "a rule file must be a YAML mapping (a Sigma rule)");
        return Err(checker.problems);
    };
    let title = string_at(map, "title").map(str::to_owned);
    if title.is_none() {
        checker.problem(checker.key_line("title"), "missing `title`");
    }
    let severity = checker.severity(map);
    checker.check_logsource(map);
    let name = checker.name(map);
    let tests = checker.inline_tests(map);
    let compiled = checker.sigma();

    match (title, severity, compiled) {
        (Some(title), Some(severity), Some((compiled, sigma))) if checker.problems.is_empty() => {
            Ok(LoadedRule {
                rule: Rule {
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
                    tests,
                },
                compiled,
                sigma,
            })
        }
        _ => Err(checker.problems),
    }
}

/// Problems for names and ids used by more than one rule.
pub(super) fn duplicate_problems(loaded: &[LoadedRule]) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    let mut seen_names: HashMap<&str, &Rule> = HashMap::new();
    let mut seen_ids: HashMap<&str, &Rule> = HashMap::new();
    for LoadedRule { rule, .. } in loaded {
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

fn duplicate(rule: &Rule, key: &str, value: &str, first: &Rule) -> RuleProblem {
    RuleProblem {
        path: rule.path.clone(),
        line: 1,
        reason: format!(
            "duplicate rule {key} {value:?} (also used by {})",
            first.path
        ),
    }
}

/// Tags a compiled rule with its index so match results lead back to the [`Rule`].
pub(super) fn tag_with_index(compiled: &mut CompiledRule, attribute: &str, index: usize) {
    Arc::make_mut(&mut compiled.custom_attributes).insert(attribute.to_owned(), index.into());
}

/// Fixes a duplicate problem's line to the line of the duplicated key.
pub(super) fn locate_duplicates(problems: &mut [RuleProblem], sources: &[RuleSource]) {
    for problem in problems {
        let Some(source) = sources.iter().find(|s| s.path == problem.path) else {
            continue;
        };
        let lines = Lines { text: &source.text };
        let key = if problem.reason.starts_with("duplicate rule id") {
            "id"
        } else {
            "name"
        };
        if let Some(line) = lines.top_key(key) {
            problem.line = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
