//! Rules: compiles rule files into one [`RuleSet`] and matches records against it.
//!
//! This module is the only place that knows rsigma exists. It owns the rule file format
//! (a Sigma rule, or a CloudWatch Logs `filter_pattern`, plus trailwatch's `name`,
//! `runbook`, `tests` and `exempt_from` keys), exclusions (Sigma filter rules, see
//! [`exclusion`]), the load-time checks that report every problem in every file at once
//! as `path:line: reason` with a typed [`ProblemKind`], the built-in rules compiled into
//! the binary, and the inline tests. Compiling happens once; matching a record never
//! re-reads YAML.

mod builtin;
mod bundle;
mod exclusion;
pub mod filter_pattern;
mod literals;
mod load;
mod prefilter;
mod selftest;
mod source_digest;
mod stateful;
mod view;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use builtin::{builtin_sources, read_rule_dir};
pub use bundle::BUNDLE_FILE_NAME;
pub use selftest::{InlineTestFailure, InlineTestReport};
pub use stateful::{Correlation, CorrelationKind, Dedup, FirstSeen, Route};

/// How bad a match is: the Sigma `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Fed `events` in order, with state (correlations, first-seen, dedup) in memory, the
    /// rule must alert this many times.
    Alerts(usize),
}

/// An example event in a rule file, with the verdict the rule must give.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineTest {
    /// What the example shows.
    pub name: String,
    /// The verdict the rule must give.
    pub expect: Expectation,
    /// The CloudTrail record (`Null` for a sequence test).
    pub event: Value,
    /// A sequence test's records, in order (empty otherwise).
    pub events: Vec<Value>,
    /// The line of the test in its file.
    pub line: usize,
}

/// A loaded rule's metadata (its detection lives in the set's matchers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The CloudWatch Logs filter pattern, for rules written as one (`None` for Sigma).
    pub filter_pattern: Option<String>,
    /// Exclusions (by name) that do not apply to this rule.
    pub exempt_from: Vec<String>,
    /// Inline tests (not carried in a compiled bundle).
    #[serde(skip)]
    pub tests: Vec<InlineTest>,
    /// `dedup:`: one alert per key and window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<Dedup>,
    /// `first_seen:`: alert on combinations new within a history window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<FirstSeen>,
    /// `route:`: the topic this rule's alerts go to (else the severity table decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// For a Sigma correlation rule: what it correlates (it has no matcher of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Correlation>,
    /// Text the alert module derives from the rule once and every alert shares (the
    /// email body's prose sections).
    #[serde(skip)]
    pub(crate) rendered: RenderedOnce,
}

/// A slot for text derived from a rule on first use, then shared by the alerts of that
/// rule. Rules compare equal whether or not it is filled, and a clone starts empty, so
/// a rule cloned and then edited renders from its own fields.
#[derive(Debug, Default)]
pub(crate) struct RenderedOnce(std::sync::OnceLock<std::sync::Arc<str>>);

impl Clone for RenderedOnce {
    fn clone(&self) -> Self {
        RenderedOnce::default()
    }
}

impl RenderedOnce {
    /// The text, rendered by `render` the first time.
    pub(crate) fn get_or_render(&self, render: impl FnOnce() -> String) -> std::sync::Arc<str> {
        self.0.get_or_init(|| render().into()).clone()
    }
}

impl PartialEq for RenderedOnce {
    fn eq(&self, _: &Self) -> bool {
        true
    }
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
            filter_pattern: None,
            exempt_from: Vec::new(),
            tests: Vec::new(),
            dedup: None,
            first_seen: None,
            route: None,
            correlation: None,
            rendered: RenderedOnce::default(),
        }
    }
}

/// What is wrong in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The file is not valid YAML.
    #[error("YAML syntax: {0}")]
    YamlSyntax(String),
    /// The document is not a mapping.
    #[error("a rule file must be a YAML mapping (a Sigma rule)")]
    NotAMapping,
    /// A required key is missing.
    #[error("missing `{0}`")]
    MissingKey(&'static str),
    /// No `level`.
    #[error("missing `level` (informational, low, medium, high or critical)")]
    MissingLevel,
    /// A `level` that is not a Sigma level.
    #[error("unknown level {0} (expected informational, low, medium, high or critical)")]
    UnknownLevel(String),
    /// No `logsource`.
    #[error("missing `logsource` (expected product: aws, service: cloudtrail)")]
    MissingLogsource,
    /// A `logsource` for other logs.
    #[error(
        "logsource is product: {product}, service: {service}; trailwatch evaluates product: aws, service: cloudtrail"
    )]
    WrongLogsource {
        /// The file's product.
        product: String,
        /// The file's service.
        service: String,
    },
    /// A name that cannot be a metric dimension or SNS attribute.
    #[error(
        "rule name {0:?} must be 1-128 characters of letters, digits, '-', '_' or '.' (set `name:` or rename the file)"
    )]
    BadName(String),
    /// A malformed inline test.
    #[error("{0}")]
    BadInlineTest(String),
    /// Neither `detection` nor `filter_pattern`.
    #[error(
        "missing `detection` (a Sigma rule) or `filter_pattern` (a CloudWatch Logs filter pattern)"
    )]
    NoDetection,
    /// Both `detection` and `filter_pattern`.
    #[error("a rule has `detection` or `filter_pattern`, not both")]
    DetectionAndFilterPattern,
    /// A filter pattern that does not parse.
    #[error("filter_pattern: {0}")]
    BadFilterPattern(String),
    /// The old Sigma aggregation syntax.
    #[error(
        "unsupported: aggregation `{construct}` (the old Sigma `| count() by ...`, `| near` and `timeframe` syntax); write it as a Sigma correlation rule"
    )]
    UnsupportedAggregation {
        /// The construct: the condition with its pipe, or the `timeframe` key.
        construct: String,
    },
    /// A field modifier Sigma does not define.
    #[error("unknown modifier `{modifier}` in `{field}`")]
    BadModifier {
        /// The detection key.
        field: String,
        /// The modifier.
        modifier: String,
    },
    /// A problem rsigma found in the Sigma part, in its words.
    #[error("{0}")]
    Sigma(String),
    /// Not exactly one detection rule in the file.
    #[error(
        "expected one detection rule per file, found {rules} rule(s), {correlations} correlation(s), {filters} filter(s)"
    )]
    NotOneRule {
        /// Rules found.
        rules: usize,
        /// Correlations found.
        correlations: usize,
        /// Filters found.
        filters: usize,
    },
    /// A rule no single event can match (e.g. two selections that need different
    /// `eventName`s: a sequence of events, which is a correlation, not a rule).
    #[error(
        "this rule can never match a single event: its condition needs one event to have several different eventNames at once (a sequence of events is a Sigma correlation)"
    )]
    NeverMatches,
    /// A compiled rule bundle that cannot be read.
    #[error("rule bundle: {0}")]
    BadBundle(String),
    /// A malformed exclusion (Sigma filter) file.
    #[error("exclusion: {0}")]
    BadExclusion(String),
    /// A malformed `dedup`, `first_seen` or `route`.
    #[error("{0}")]
    BadStatefulKey(String),
    /// A Sigma correlation trailwatch cannot run.
    #[error("unsupported correlation: {0}")]
    UnsupportedCorrelation(String),
    /// A correlation naming a rule no loaded file has.
    #[error("correlation refers to rule {0:?}, which no loaded detection rule has as name or id")]
    UnknownRuleReference(String),
    /// A name or id used by two files.
    #[error("duplicate rule {key} {value:?} (also used by {first})")]
    Duplicate {
        /// `name` or `id`.
        key: &'static str,
        /// The duplicated value.
        value: String,
        /// The file that used it first.
        first: String,
    },
}

/// One problem in one rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The file.
    pub path: String,
    /// The 1-based line the problem is on (best effort for rsigma's own errors).
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.kind)
    }
}

/// Something in a rule set that works but deserves attention (`rules lint` prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWarning {
    /// The file.
    pub path: String,
    /// The line.
    pub line: usize,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for RuleWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.path, self.line, self.message)
    }
}

/// A `rules lint` warning for each item giving a wildcard value to `startswith` or
/// `endswith` (see [`load::anchored_wildcards`]), at the line that names it.
fn anchored_wildcard_warnings(
    loaded: &[load::LoadedRule],
    sources: &[RuleSource],
) -> Vec<RuleWarning> {
    let mut warnings = Vec::new();
    for rule in loaded {
        let load::Matcher::Sigma { sigma, .. } = &rule.matcher else {
            continue;
        };
        let text = sources.iter().find(|s| s.path == rule.rule.path);
        for (name, which) in load::anchored_wildcards(sigma) {
            let line = text
                .and_then(|s| {
                    s.text.lines().position(|l| {
                        let l = l.trim_start();
                        l.starts_with(name.as_str()) && l.contains(which)
                    })
                })
                .map_or(1, |i| i + 1);
            warnings.push(RuleWarning {
                path: rule.rule.path.clone(),
                line,
                message: format!(
                    "`{name}|{which}` has a value with a wildcard, which rsigma anchors at the other \
                     end (`startswith: 'A*'` matches any text containing A, `endswith: '*B'` \
                     any text containing B): write the value without the wildcard, or use `|re`"
                ),
            });
        }
    }
    warnings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    warnings
}

/// A match an exclusion dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suppression<'a> {
    /// The rule that matched.
    pub rule: &'a Rule,
    /// The exclusion that dropped the match.
    pub exclusion: &'a str,
}

/// What the rules say about one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict<'a> {
    /// Rules whose match stands, in load order.
    pub matched: Vec<&'a Rule>,
    /// Matches an exclusion dropped.
    pub suppressed: Vec<Suppression<'a>>,
}

/// Every problem found while loading a rule set; no rule set is built when any exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in rule files:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleLoadError(pub Vec<RuleProblem>);

/// The custom attribute that carries a rule's index through rsigma to its match result.
/// A rule's matcher in a set.
enum RuleMatcher {
    /// A Sigma detection.
    Sigma(Box<SigmaMatcher>),
    /// A CloudWatch Logs filter pattern.
    Pattern(filter_pattern::FilterPattern),
}

/// A Sigma detection, compiled at load (YAML rules) or on its first candidate record (a
/// bundle's gated rules: the bundle was linted and compiled when it was built, and most
/// rules never see a record their gate lets through in a given container's life).
struct SigmaMatcher {
    compiled: std::sync::OnceLock<Option<rsigma_eval::CompiledRule>>,
    /// The Sigma part of the rule file, for a compile on first use.
    text: String,
}

impl SigmaMatcher {
    fn compiled(compiled: rsigma_eval::CompiledRule) -> SigmaMatcher {
        SigmaMatcher {
            compiled: std::sync::OnceLock::from(Some(compiled)),
            text: String::new(),
        }
    }

    fn lazy(text: String) -> SigmaMatcher {
        SigmaMatcher {
            compiled: std::sync::OnceLock::new(),
            text,
        }
    }

    /// The compiled rule. A bundled rule's text compiled when the bundle was made with
    /// this very build (the bundle records it), so `None` cannot happen short of a
    /// corrupted bundle; such a rule then matches nothing.
    fn get(&self) -> Option<&rsigma_eval::CompiledRule> {
        self.compiled
            .get_or_init(|| {
                let collection = rsigma_parser::parse_sigma_yaml(&self.text).ok()?;
                let rule = collection.rules.first()?;
                rsigma_eval::compile_rule(rule).ok()
            })
            .as_ref()
    }

    fn matches(&self, view: &view::RecordView<'_>) -> bool {
        self.get().is_some_and(|rule| sigma_matches(rule, view))
    }
}

/// Whether a compiled Sigma rule matches `event`. `rsigma_eval::evaluate_rule` gives the
/// same verdict, but for a match it evaluates the condition a second time and builds a
/// report (the rule's title and tags copied, the matched fields) that trailwatch never
/// reads. Here `and`, `or` and `not` short-circuit as rsigma's own yes/no pass does, and
/// each detection or `1 of`/`all of` selector is left to rsigma's `eval_condition`.
pub(crate) fn sigma_matches(
    rule: &rsigma_eval::CompiledRule,
    event: &impl rsigma_eval::Event,
) -> bool {
    fn holds(
        condition: &rsigma_parser::ConditionExpr,
        detections: &std::collections::HashMap<String, rsigma_eval::CompiledDetection>,
        event: &impl rsigma_eval::Event,
        matched: &mut Vec<String>,
    ) -> bool {
        use rsigma_parser::ConditionExpr;
        match condition {
            ConditionExpr::And(parts) => parts.iter().all(|p| holds(p, detections, event, matched)),
            ConditionExpr::Or(parts) => parts.iter().any(|p| holds(p, detections, event, matched)),
            ConditionExpr::Not(inner) => !holds(inner, detections, event, matched),
            ConditionExpr::Identifier(_) | ConditionExpr::Selector { .. } => {
                matched.clear();
                rsigma_eval::compiler::eval_condition(condition, detections, event, matched)
            }
        }
    }
    let mut matched = Vec::new();
    (rule.conditions.iter())
        .any(|condition| holds(condition, &rule.detections, event, &mut matched))
}

/// The ungated rules again, evaluated on a projection of each record.
struct UngatedScreen {
    /// Each evaluated directly: rsigma's `Engine` would first work out the record's
    /// logsource candidates, which costs more than the rules themselves here.
    rules: Vec<rsigma_eval::CompiledRule>,
    patterns: Vec<filter_pattern::FilterPattern>,
    keys: Option<crate::record::Projection>,
    /// When every ungated rule is Sigma and names text a match leaves in the record:
    /// a record whose text holds none of it is not read for them at all.
    literals: Option<literals::RequiredLiterals>,
}

/// What [`RuleSet::screen`] decided about a record from its text alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// A valid CloudTrail record no rule can match: count it, do not build it.
    Skip,
    /// Build the record and evaluate every rule.
    Evaluate,
}

/// Compiled rules, ready to match records.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Each rule's matcher, by index into `rules`.
    matchers: Vec<RuleMatcher>,
    /// Each rule's gate, by index (bundled, so a bundle loads without parsing rules).
    gates: Vec<prefilter::Gate>,
    /// Which rules a record may match, from its gate keys.
    candidates: prefilter::Candidates,
    exclusions: Vec<exclusion::Exclusion>,
    record_filter: prefilter::RecordFilter,
    /// Rules (by index) the prefilter cannot gate: they see every record.
    ungated: Vec<usize>,
    /// What screens records for the ungated rules: their compiled rules again,
    /// their filter patterns, and the parts of a record they read (`None`: any key).
    ungated_screen: Option<UngatedScreen>,
    warnings: Vec<RuleWarning>,
    /// Sigma correlation rules (metadata with `correlation` set).
    correlations: Vec<Rule>,
    /// For each rule (by index): the correlations (by index) its matches feed.
    feeds: Vec<Vec<usize>>,
    /// For each correlation (by index): the rules (by index) it references.
    references: Vec<Vec<usize>>,
    /// Rule name → index.
    by_name: std::collections::HashMap<String, usize>,
}

/// Resolves each correlation's `rules:` (names or ids) to rule indices; an unknown
/// reference is a problem on the correlation's `rules:` line.
fn resolve_references(
    loaded: &[load::LoadedRule],
    correlations: &[Rule],
    sources: &[RuleSource],
    problems: &mut Vec<RuleProblem>,
) -> Vec<Vec<usize>> {
    correlations
        .iter()
        .map(|correlation| {
            let Some(spec) = &correlation.correlation else {
                return Vec::new();
            };
            let mut indices = Vec::new();
            for reference in &spec.rules {
                let found = loaded.iter().position(|l| {
                    l.rule.name == *reference || l.rule.id.as_deref() == Some(reference.as_str())
                });
                match found {
                    Some(index) if indices.contains(&index) => {}
                    Some(index) => indices.push(index),
                    None => {
                        let line = sources
                            .iter()
                            .find(|s| s.path == correlation.path)
                            .and_then(|s| {
                                s.text.lines().position(|l| l.contains(reference.as_str()))
                            })
                            .map_or(1, |i| i + 1);
                        let chained = correlations.iter().any(|c| {
                            c.name == *reference || c.id.as_deref() == Some(reference.as_str())
                        });
                        problems.push(RuleProblem {
                            path: correlation.path.clone(),
                            line,
                            kind: if chained {
                                ProblemKind::UnsupportedCorrelation(format!(
                                    "rules: {reference} is a correlation; trailwatch correlates detection rules only"
                                ))
                            } else {
                                ProblemKind::UnknownRuleReference(reference.clone())
                            },
                        });
                    }
                }
            }
            indices
        })
        .collect()
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("exclusions", &self.exclusions.len())
            .finish()
    }
}

impl RuleSet {
    /// Compiles rule files; any problem in any file fails the whole set, and every
    /// problem is reported. Exclusions expire against today's date (UTC).
    pub fn compile(sources: &[RuleSource]) -> Result<RuleSet, RuleLoadError> {
        RuleSet::compile_on(sources, time::OffsetDateTime::now_utc().date())
    }

    /// [`RuleSet::compile`] as of `today`: an exclusion whose `expires` is on or
    /// before `today` no longer applies (and is reported as a warning).
    pub fn compile_on(sources: &[RuleSource], today: time::Date) -> Result<RuleSet, RuleLoadError> {
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        let mut loaded_exclusions = Vec::new();
        let mut correlations = Vec::new();
        for source in sources {
            match load::load_rule_file(source) {
                Ok(load::Loaded::Rule(rule)) => loaded.push(*rule),
                Ok(load::Loaded::Exclusion(exclusion)) => loaded_exclusions.push(*exclusion),
                Ok(load::Loaded::Correlation(rule)) => correlations.push(*rule),
                Err(mut file_problems) => problems.append(&mut file_problems),
            }
        }
        RuleSet::assemble(
            loaded,
            loaded_exclusions,
            correlations,
            sources,
            problems,
            today,
        )
    }

    /// Checks the loaded rules as a set (rules no event can match, duplicate names and
    /// ids), then builds the matchers, the prefilter and the exclusions.
    fn assemble(
        loaded: Vec<load::LoadedRule>,
        loaded_exclusions: Vec<exclusion::LoadedExclusion>,
        correlations: Vec<Rule>,
        sources: &[RuleSource],
        mut problems: Vec<RuleProblem>,
        today: time::Date,
    ) -> Result<RuleSet, RuleLoadError> {
        let references = resolve_references(&loaded, &correlations, sources, &mut problems);
        let gates: Vec<prefilter::Gate> = loaded
            .iter()
            .map(|l| match &l.matcher {
                load::Matcher::Sigma { sigma, .. } => prefilter::sigma_gate(sigma),
                load::Matcher::Pattern(pattern) => prefilter::pattern_gate(&pattern.requirement()),
                load::Matcher::Bundled { gate, .. } => gate.clone(),
            })
            .collect();
        let wildcard_warnings = anchored_wildcard_warnings(&loaded, sources);
        for (rule, gate) in loaded.iter().zip(&gates) {
            if gate.is_never() {
                let line = sources
                    .iter()
                    .find(|s| s.path == rule.rule.path)
                    .and_then(|s| {
                        s.text.lines().position(|l| {
                            l.trim_start().starts_with("condition:")
                                || l.starts_with("filter_pattern:")
                        })
                    })
                    .map_or(1, |i| i + 1);
                problems.push(RuleProblem {
                    path: rule.rule.path.clone(),
                    line,
                    kind: ProblemKind::NeverMatches,
                });
            }
        }
        let mut duplicates = load::duplicate_problems(&loaded, &correlations);
        load::locate_duplicates(&mut duplicates, sources);
        problems.extend(duplicates);
        if !problems.is_empty() {
            return Err(RuleLoadError(problems));
        }

        let record_filter = prefilter::RecordFilter::from_gates(&gates);
        let candidates = prefilter::Candidates::from_gates(&gates);
        let mut ungated = Vec::new();
        let mut matchers = Vec::with_capacity(loaded.len());
        let mut rules = Vec::with_capacity(loaded.len());
        let mut screen_rules = Vec::new();
        let mut screen_patterns = Vec::new();
        let mut screen_keys = Some(crate::record::Projection::default());
        for (index, loaded_rule) in loaded.into_iter().enumerate() {
            let is_ungated = gates[index] == prefilter::Gate::Any;
            if is_ungated {
                ungated.push(index);
            }
            match loaded_rule.matcher {
                load::Matcher::Sigma { compiled, sigma } => {
                    if is_ungated {
                        match (prefilter::sigma_field_paths(&sigma), &mut screen_keys) {
                            (Some(paths), Some(all)) => paths.iter().for_each(|p| all.add_path(p)),
                            _ => screen_keys = None,
                        }
                        screen_rules.push((*compiled).clone());
                    }
                    matchers.push(RuleMatcher::Sigma(Box::new(SigmaMatcher::compiled(
                        *compiled,
                    ))));
                }
                load::Matcher::Bundled { text, .. } => {
                    // Only gated rules are bundled lazily (see `from_bundle_on`).
                    matchers.push(RuleMatcher::Sigma(Box::new(SigmaMatcher::lazy(text))));
                }
                load::Matcher::Pattern(pattern) => {
                    if is_ungated {
                        if let Some(all) = &mut screen_keys {
                            pattern
                                .top_level_keys()
                                .iter()
                                .for_each(|k| all.add_whole(k));
                        }
                        screen_patterns.push(pattern.clone());
                    }
                    matchers.push(RuleMatcher::Pattern(pattern));
                }
            }
            rules.push(loaded_rule.rule);
        }
        let ungated_screen = (!ungated.is_empty()).then(|| {
            UngatedScreen {
                literals: screen_patterns
                    .is_empty()
                    .then(|| literals::RequiredLiterals::of(&screen_rules))
                    .flatten(),
                rules: screen_rules,
                patterns: screen_patterns,
                // The head read needs the identity type even where the rules take
                // only some of userIdentity's fields.
                keys: screen_keys.map(|mut keys| {
                    keys.add_path("userIdentity.type");
                    keys
                }),
            }
        });
        let mut warnings = wildcard_warnings;
        let known: Vec<&str> = loaded_exclusions.iter().map(|e| e.name.as_str()).collect();
        for rule in &rules {
            for name in rule
                .exempt_from
                .iter()
                .filter(|n| !known.contains(&n.as_str()))
            {
                warnings.push(RuleWarning {
                    path: rule.path.clone(),
                    line: 1,
                    message: format!("exempt_from names {name:?}, which no loaded exclusion has"),
                });
            }
        }
        let mut exclusions = Vec::new();
        for loaded_exclusion in loaded_exclusions {
            let (path, line, name) = (
                loaded_exclusion.path.clone(),
                loaded_exclusion.line,
                loaded_exclusion.name.clone(),
            );
            let expires = loaded_exclusion.expires;
            match exclusion::Exclusion::resolve(loaded_exclusion, &rules, today) {
                Some(resolved) => exclusions.push(resolved),
                None => warnings.push(RuleWarning {
                    path,
                    line,
                    message: format!(
                        "exclusion {name:?} expired on {} and no longer applies: renew or delete it",
                        expires.map_or_else(String::new, |d| d.to_string())
                    ),
                }),
            }
        }
        let mut feeds = vec![Vec::new(); rules.len()];
        for (correlation, referenced) in references.iter().enumerate() {
            for &rule in referenced {
                feeds[rule].push(correlation);
            }
        }
        let by_name = rules
            .iter()
            .chain(&correlations)
            .enumerate()
            .map(|(index, rule)| (rule.name.clone(), index))
            .collect();
        Ok(RuleSet {
            rules,
            matchers,
            gates,
            candidates,
            exclusions,
            record_filter,
            ungated,
            ungated_screen,
            warnings,
            correlations,
            feeds,
            references,
            by_name,
        })
    }

    /// Lints and compiles `sources` and writes them as a bundle: JSON holding each rule's
    /// metadata and only the part its matcher needs, plus the exclusion files, which
    /// [`RuleSet::from_bundle`] loads several times faster than YAML (no prose to parse).
    /// Inline tests are left out. `sam build` makes one for the Lambda's rules layer.
    pub fn bundle(sources: &[RuleSource]) -> Result<String, RuleLoadError> {
        let set = RuleSet::compile(sources)?;
        let rules: Vec<bundle::BundledRule> = set
            .rules
            .iter()
            .zip(&set.gates)
            .map(|(rule, gate)| {
                let matcher = match &rule.filter_pattern {
                    Some(pattern) => bundle::BundledMatcher::FilterPattern(pattern.clone()),
                    None => {
                        let text = sources
                            .iter()
                            .find(|s| s.path == rule.path)
                            .map_or_else(String::new, |s| load::sigma_part(&s.text).into_owned());
                        bundle::BundledMatcher::Sigma(text)
                    }
                };
                bundle::BundledRule {
                    rule: rule.clone(),
                    matcher,
                    gate: gate.clone(),
                }
            })
            .collect();
        let exclusions = sources
            .iter()
            .filter(|s| {
                !set.rules
                    .iter()
                    .chain(&set.correlations)
                    .any(|r| r.path == s.path)
            })
            .cloned()
            .map(|s| bundle::BundledSource {
                path: s.path,
                text: s.text,
            })
            .collect();
        let digest = source_digest::sources_digest(
            sources.iter().map(|s| (s.path.as_str(), s.text.as_str())),
        );
        Ok(bundle::to_json(&bundle::Bundle::new(
            digest,
            rules,
            exclusions,
            set.correlations.clone(),
        )))
    }

    /// Loads a bundle written by [`RuleSet::bundle`]: the same rules, checks and
    /// matchers as compiling the YAML, minus the prose parsing. Exclusions expire against
    /// today's date (UTC).
    pub fn from_bundle(json: &str) -> Result<RuleSet, RuleLoadError> {
        RuleSet::from_bundle_on(json, time::OffsetDateTime::now_utc().date())
    }

    /// [`RuleSet::from_bundle`] as of `today` (see [`RuleSet::compile_on`]).
    pub fn from_bundle_on(json: &str, today: time::Date) -> Result<RuleSet, RuleLoadError> {
        let bundle = bundle::from_json(json)?;
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        let mut sources = Vec::new();
        for bundled in bundle.rules {
            let text = match &bundled.matcher {
                bundle::BundledMatcher::Sigma(text) => text.clone(),
                bundle::BundledMatcher::FilterPattern(pattern) => {
                    format!("filter_pattern: {pattern:?}\n")
                }
            };
            let source = RuleSource {
                path: bundled.rule.path.clone(),
                text,
            };
            // A gated Sigma rule is not even parsed: it compiles on its first candidate
            // record. Ungated ones compile now (the screen needs them).
            if let (bundle::BundledMatcher::Sigma(text), false) =
                (&bundled.matcher, bundled.gate == prefilter::Gate::Any)
            {
                loaded.push(load::LoadedRule {
                    rule: bundled.rule,
                    matcher: load::Matcher::Bundled {
                        text: text.clone(),
                        gate: bundled.gate,
                    },
                });
                sources.push(source);
                continue;
            }
            match load::load_bundled(bundled.rule, &bundled.matcher, &source) {
                Ok(rule) => loaded.push(rule),
                Err(mut file_problems) => problems.append(&mut file_problems),
            }
            sources.push(source);
        }
        let mut loaded_exclusions = Vec::new();
        for bundled in bundle.exclusions {
            let source = RuleSource {
                path: bundled.path,
                text: bundled.text,
            };
            match load::load_rule_file(&source) {
                Ok(load::Loaded::Exclusion(exclusion)) => loaded_exclusions.push(*exclusion),
                Ok(load::Loaded::Rule(_) | load::Loaded::Correlation(_)) => {
                    problems.push(RuleProblem {
                        path: source.path.clone(),
                        line: 1,
                        kind: ProblemKind::BadExclusion("a bundle's exclusion is a rule".into()),
                    })
                }
                Err(mut file_problems) => problems.append(&mut file_problems),
            }
            sources.push(source);
        }
        RuleSet::assemble(
            loaded,
            loaded_exclusions,
            bundle.correlations,
            &sources,
            problems,
            today,
        )
    }

    /// The exclusions in force: (name, reason).
    pub fn exclusions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.exclusions
            .iter()
            .map(|e| (e.name.as_str(), e.reason.as_str()))
    }

    /// Problems that do not stop the set from working (expired exclusions,
    /// exemptions from exclusions that do not exist, wildcard values under `startswith`
    /// or `endswith`).
    pub fn warnings(&self) -> &[RuleWarning] {
        &self.warnings
    }

    /// The built-in rules that ship inside the binary, for matching: their inline tests
    /// are left out (run them with `RuleSet::compile(&builtin_sources())`). They load from
    /// the compiled bundle committed beside the YAML (`src/rules/builtin.bundle.json`),
    /// which `build.rs` embeds only while it matches `rules/`; otherwise (a rule was
    /// edited and the bundle not regenerated) the YAML is compiled, the same rules at a
    /// slower start.
    pub fn builtin() -> Result<RuleSet, RuleLoadError> {
        if let Some(set) = builtin::BUILTIN_BUNDLE.and_then(|json| RuleSet::from_bundle(json).ok())
        {
            return Ok(set);
        }
        RuleSet::compile_builtin_yaml()
    }

    /// The built-in rules compiled from their YAML (without inline tests): what
    /// [`RuleSet::builtin`] falls back to, and what the committed bundle must equal.
    pub fn compile_builtin_yaml() -> Result<RuleSet, RuleLoadError> {
        RuleSet::compile(&builtin::builtin_runtime_sources())
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The Sigma correlation rules, in load order.
    pub fn correlations(&self) -> &[Rule] {
        &self.correlations
    }

    /// A rule or correlation by name.
    pub fn by_name(&self, name: &str) -> Option<&Rule> {
        let index = *self.by_name.get(name)?;
        self.rules
            .get(index)
            .or_else(|| self.correlations.get(index - self.rules.len()))
    }

    /// The correlations a rule's matches feed, with the rules each references.
    pub fn correlations_fed_by(&self, name: &str) -> impl Iterator<Item = &Rule> {
        let fed = match self.by_name.get(name) {
            Some(&index) if index < self.rules.len() => self.feeds[index].as_slice(),
            _ => &[],
        };
        fed.iter().map(|&c| &self.correlations[c])
    }

    /// Whether a rule's matches alert on their own: not when it only feeds correlations
    /// that do not `generate` their rules' alerts.
    pub fn alerts_alone(&self, name: &str) -> bool {
        let mut fed = self.correlations_fed_by(name).peekable();
        fed.peek().is_none() || fed.any(|c| c.correlation.as_ref().is_some_and(|c| c.generate))
    }

    /// The names of the rules a correlation references (resolved from names or ids).
    pub fn referenced_rules(&self, correlation: &str) -> Vec<&str> {
        match self.by_name.get(correlation) {
            Some(&index) if index >= self.rules.len() => self.references[index - self.rules.len()]
                .iter()
                .map(|&r| self.rules[r].name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// True when some rule needs state (dedup, first-seen or a correlation): without
    /// one, alerts never touch the state store but for idempotency.
    pub fn needs_state(&self) -> bool {
        !self.correlations.is_empty()
            || self
                .rules
                .iter()
                .any(|r| r.dedup.is_some() || r.first_seen.is_some())
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the set holds no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Decides from a record's text whether it is worth building: `Skip` only for a
    /// valid CloudTrail record that no rule can match. Gated rules are checked on the
    /// record's head (see the prefilter). Rules the prefilter cannot gate are ruled out
    /// when the text holds none of the literals their matches require (see
    /// [`literals`]); otherwise they are evaluated on a projection holding just the field
    /// paths they read. Anything that cannot be decided cheaply (bad JSON, a missing
    /// field) is `Evaluate`, so the full parse reports the precise reason.
    pub fn screen(&self, text: &str) -> Screen {
        static NONE: crate::record::Projection = crate::record::Projection::empty();
        let ungated = match &self.ungated_screen {
            Some(screen) if screen.literals.as_ref().is_some_and(|l| l.rule_out(text)) => None,
            Some(UngatedScreen { keys: None, .. }) => return Screen::Evaluate,
            other => other.as_ref(),
        };
        let keys = ungated.and_then(|s| s.keys.as_ref()).unwrap_or(&NONE);
        // One pass: the head for the gates, and the paths the ungated rules read.
        let Some((head, projection)) = crate::record::read_head_and_projection(text, keys) else {
            return Screen::Evaluate;
        };
        if self.record_filter.may_match(&head) {
            return Screen::Evaluate;
        }
        let Some(screen) = ungated else {
            return Screen::Skip;
        };
        let view = view::RecordView::new(&projection);
        if (screen.rules.iter()).any(|rule| sigma_matches(rule, &view))
            || screen.patterns.iter().any(|p| p.matches(&projection))
        {
            Screen::Evaluate
        } else {
            Screen::Skip
        }
    }

    /// The screen as a test on a record's head, when the head alone decides it (no
    /// ungated rule reads more of every record): `may_match` is false for exactly the
    /// records with that head [`RuleSet::screen`] skips. Reading subscription data with
    /// it spares them from ever becoming strings.
    pub fn head_screen(&self) -> Option<&dyn crate::ingest::HeadScreen> {
        let filter: &dyn crate::ingest::HeadScreen = &self.record_filter;
        self.ungated_screen.is_none().then_some(filter)
    }

    /// Rules the prefilter cannot gate (no `eventName`, `userIdentity.type` or
    /// `errorCode` requirement it can prove): each one makes every record go through
    /// the full evaluation. `rules lint` names them.
    pub fn ungated_rules(&self) -> impl Iterator<Item = &Rule> {
        self.ungated
            .iter()
            .filter_map(|&index| self.rules.get(index))
    }

    /// True when [`RuleSet::screen`] can skip anything: false when an ungated rule may
    /// read any key of a record (a keyword search) and names no literal its matches
    /// require, so every record must be built.
    pub fn has_prefilter(&self) -> bool {
        !matches!(
            &self.ungated_screen,
            Some(UngatedScreen {
                keys: None,
                literals: None,
                ..
            })
        )
    }

    /// The rules that match a CloudTrail record, in load order (exclusions applied).
    pub fn matching(&self, record: &Value) -> Vec<&Rule> {
        self.evaluate(record).matched
    }

    /// Every rule's verdict on a CloudTrail record: the matches that stand and those an
    /// exclusion dropped.
    pub fn evaluate(&self, record: &Value) -> Verdict<'_> {
        let mut candidates = Vec::new();
        self.candidates.for_record(record, &mut candidates);
        self.verdict(record, candidates)
    }

    /// [`RuleSet::evaluate`] without the candidate index: every rule is evaluated. For
    /// tests that hold the fast path to the same verdicts.
    #[doc(hidden)]
    pub fn evaluate_every_rule(&self, record: &Value) -> Verdict<'_> {
        self.verdict(record, (0..self.rules.len()).collect())
    }

    fn verdict(&self, record: &Value, candidates: Vec<usize>) -> Verdict<'_> {
        let view = view::RecordView::new(record);
        let mut verdict = Verdict::default();
        // Whether each exclusion's condition holds on this record, once known (made at
        // the record's first match: most candidates match nothing).
        let mut exclusion_holds = Vec::new();
        for index in candidates {
            let (Some(rule), Some(matcher)) = (self.rules.get(index), self.matchers.get(index))
            else {
                continue;
            };
            let matched = match matcher {
                RuleMatcher::Sigma(sigma) => sigma.matches(&view),
                RuleMatcher::Pattern(pattern) => pattern.matches(record),
            };
            if !matched {
                continue;
            }
            exclusion_holds.resize(self.exclusions.len(), None);
            let dropped_by = (self.exclusions.iter().zip(&mut exclusion_holds)).find_map(
                |(exclusion, holds)| exclusion.drops(index, &view, holds).then_some(exclusion),
            );
            match dropped_by {
                Some(exclusion) => verdict.suppressed.push(Suppression {
                    rule,
                    exclusion: &exclusion.name,
                }),
                None => verdict.matched.push(rule),
            }
        }
        verdict
    }

    /// Runs every rule's inline tests through the same matcher that production uses.
    pub fn run_inline_tests(&self) -> InlineTestReport {
        selftest::run(self)
    }
}

#[cfg(test)]
mod tests;
