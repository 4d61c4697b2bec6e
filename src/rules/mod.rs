//! Rules: compiles Sigma rule files into one [`RuleSet`] and matches records against it.
//!
//! This module is the only place that knows rsigma exists. It owns the rule file format
//! (a Sigma rule plus trailwatch's `name`, `runbook` and `tests` keys), the load-time
//! checks that report every problem in every file at once as `path:line: reason`, the
//! built-in rules compiled into the binary, and the inline tests. Compiling happens once;
//! matching a record never re-reads YAML.

mod builtin;
mod load;
mod prefilter;
mod selftest;
mod view;

use std::fmt;

use rsigma_eval::Engine;
use serde::Serialize;
use serde_json::Value;

pub use builtin::builtin_sources;
pub use selftest::{InlineTestFailure, InlineTestReport};

/// How bad a match is: the Sigma `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Severity {
    /// Every level, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The Sigma spelling, e.g. `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the Sigma spelling.
    pub fn parse(level: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == level)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule file's text and the path to show in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The path shown in errors and `rules list` (e.g. `rules/console-login-without-mfa.yml`).
    pub path: String,
    /// The YAML text.
    pub text: String,
}

/// What an inline test expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// The rule must match the event.
    Match,
    /// The rule must not match the event.
    NoMatch,
}

/// An example event in a rule file, with the verdict the rule must give.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineTest {
    /// What the example shows.
    pub name: String,
    /// The verdict the rule must give.
    pub expect: Expectation,
    /// The CloudTrail record.
    pub event: Value,
    /// The line of the test in its file.
    pub line: usize,
}

/// A loaded rule's metadata (its detection lives in the compiled engine).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Slug used in alerts, metrics and SNS attributes (`name`, or the file stem).
    pub name: String,
    /// The Sigma `id`, when the file has one.
    pub id: Option<String>,
    /// The Sigma `title`.
    pub title: String,
    /// The Sigma `level`.
    pub severity: Severity,
    /// Why a match matters.
    pub description: Option<String>,
    /// What a responder should do.
    pub runbook: Option<String>,
    /// Sigma `tags` (e.g. ATT&CK techniques).
    pub tags: Vec<String>,
    /// Known benign causes.
    pub falsepositives: Vec<String>,
    /// Links.
    pub references: Vec<String>,
    /// The Sigma `author`.
    pub author: Option<String>,
    /// The file the rule came from.
    pub path: String,
    /// Inline tests.
    pub tests: Vec<InlineTest>,
}

impl Rule {
    /// A minimal rule for unit tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, title: &str, severity: Severity) -> Rule {
        Rule {
            name: name.to_owned(),
            id: None,
            title: title.to_owned(),
            severity,
            description: None,
            runbook: None,
            tags: Vec::new(),
            falsepositives: Vec::new(),
            references: Vec::new(),
            author: None,
            path: format!("rules/{name}.yml"),
            tests: Vec::new(),
        }
    }
}

/// One problem in one rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The file.
    pub path: String,
    /// The 1-based line the problem is on (best effort for rsigma's own errors).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.reason)
    }
}

/// Every problem found while loading a rule set; no rule set is built when any exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in rule files:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleLoadError(pub Vec<RuleProblem>);

/// The custom attribute that carries a rule's index through rsigma to its match result.
const INDEX_ATTRIBUTE: &str = "trailwatch_rule_index";

/// Compiled rules, ready to match records.
pub struct RuleSet {
    rules: Vec<Rule>,
    engine: Engine,
    name_filter: prefilter::EventNameFilter,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl RuleSet {
    /// Compiles rule files; any problem in any file fails the whole set, and every
    /// problem is reported.
    pub fn compile(sources: &[RuleSource]) -> Result<RuleSet, RuleLoadError> {
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        for source in sources {
            match load::load_rule_file(source) {
                Ok(rule) => loaded.push(rule),
                Err(mut file_problems) => problems.append(&mut file_problems),
            }
        }
        let mut duplicates = load::duplicate_problems(&loaded);
        load::locate_duplicates(&mut duplicates, sources);
        problems.extend(duplicates);
        if !problems.is_empty() {
            return Err(RuleLoadError(problems));
        }

        let name_filter = prefilter::EventNameFilter::for_rules(loaded.iter().map(|l| &l.sigma));
        let mut compiled_rules = Vec::with_capacity(loaded.len());
        let mut rules = Vec::with_capacity(loaded.len());
        for (index, mut loaded_rule) in loaded.into_iter().enumerate() {
            load::tag_with_index(&mut loaded_rule.compiled, INDEX_ATTRIBUTE, index);
            compiled_rules.push(loaded_rule.compiled);
            rules.push(loaded_rule.rule);
        }
        let mut engine = Engine::new();
        engine.extend_compiled_rules(compiled_rules);
        Ok(RuleSet {
            rules,
            engine,
            name_filter,
        })
    }

    /// Compiles the built-in rules that ship inside the binary, for matching: their
    /// inline tests are left out (run them with `RuleSet::compile(&builtin_sources())`).
    pub fn builtin() -> Result<RuleSet, RuleLoadError> {
        RuleSet::compile(&builtin::builtin_runtime_sources())
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the set holds no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// False only when no rule can match a record with this `eventName` (see
    /// the prefilter); lets the pipeline skip building records nothing could match.
    pub fn may_match_event_name(&self, event_name: &str) -> bool {
        self.name_filter.may_match(event_name)
    }

    /// True when [`RuleSet::may_match_event_name`] can rule anything out.
    pub fn has_event_name_prefilter(&self) -> bool {
        self.name_filter.is_selective()
    }

    /// The rules that match a CloudTrail record, in load order.
    pub fn matching(&self, record: &Value) -> Vec<&Rule> {
        let view = view::RecordView::new(record);
        let mut indices: Vec<usize> = self
            .engine
            .evaluate(&view)
            .iter()
            .filter_map(|result| result.header.custom_attributes.get(INDEX_ATTRIBUTE))
            .filter_map(Value::as_u64)
            .map(|index| index as usize)
            .collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .filter_map(|i| self.rules.get(i))
            .collect()
    }

    /// Runs every rule's inline tests through the same matcher that production uses.
    pub fn run_inline_tests(&self) -> InlineTestReport {
        selftest::run(self)
    }
}

#[cfg(test)]
mod tests;
