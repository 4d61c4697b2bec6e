//! The rule keys that need state, parsed at load time: `dedup:` (one alert per key and
//! window), `first_seen:` (alert on a combination of fields new within a history
//! window), `route:` (which SNS topic), and Sigma correlation rules (`correlation:`
//! with `event_count`, `value_count` or `temporal`), which rsigma parses and compiles and
//! trailwatch runs on the records' `eventTime`. What these keys *do* lives in
//! [`crate::stateful`]; this module only turns YAML into checked values.

use serde::{Deserialize, Serialize};
use yaml_serde::{Mapping, Value as Yaml};

use super::ProblemKind;
use super::load::FileChecker;

/// `dedup: {by: [fields], window: 1h}`: the first match per key alerts, repeats within
/// the window are counted, and the next alert after it says how many were suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// Dotted record fields whose values form the key (empty: one key per rule).
    pub by: Vec<String>,
    /// The window, in seconds.
    pub window_secs: u64,
    /// The window as written, e.g. `1h`.
    pub window: String,
}

/// `first_seen: {fields: [...], history: 14d, learning: 7d}`: alert when the combination
/// of the fields' values has not been seen within `history`; no alerts during the
/// first `learning` of the rule's life (measured on event times), while history fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSeen {
    /// Dotted record fields whose values form the combination.
    pub fields: Vec<String>,
    /// How long a combination is remembered, in seconds.
    pub history_secs: u64,
    /// The history as written, e.g. `14d`.
    pub history: String,
    /// The learning period, in seconds (default: the history).
    pub learning_secs: u64,
}

/// The topic an alert goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The main alert topic (the default).
    Main,
    /// The pager topic (e.g. critical alerts that wake someone up).
    Pager,
    /// The ticket topic (e.g. low-severity alerts for a queue).
    Ticket,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 3] = [Route::Main, Route::Pager, Route::Ticket];

    /// The spelling in rules and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Main => "main",
            Route::Pager => "pager",
            Route::Ticket => "ticket",
        }
    }

    /// Parses the spelling.
    pub fn parse(text: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The correlation types trailwatch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    /// At least N matching events per group within the timespan.
    EventCount,
    /// At least N distinct values of a field per group within the timespan.
    ValueCount,
    /// Every referenced rule matched per group within the timespan (any order).
    Temporal,
}

impl CorrelationKind {
    /// The Sigma spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationKind::EventCount => "event_count",
            CorrelationKind::ValueCount => "value_count",
            CorrelationKind::Temporal => "temporal",
        }
    }
}

/// A Sigma correlation rule, checked by rsigma and reduced to what trailwatch runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correlation {
    /// The type.
    pub kind: CorrelationKind,
    /// The referenced rules, by `name` or `id`, as written.
    pub rules: Vec<String>,
    /// Dotted record fields that group events.
    pub group_by: Vec<String>,
    /// The window, in seconds.
    pub timespan_secs: u64,
    /// The window as written, e.g. `5m`.
    pub timespan: String,
    /// The count (events or distinct values) at which the correlation fires.
    pub at_least: u64,
    /// `value_count`'s field(s).
    pub value_fields: Vec<String>,
    /// Whether the referenced rules also alert on their own (Sigma `generate`).
    pub generate: bool,
}

fn duration(
    checker: &mut FileChecker<'_>,
    line: usize,
    key: &str,
    value: Option<&Yaml>,
) -> Option<(u64, String)> {
    let text = match value {
        Some(Yaml::String(text)) => text.clone(),
        Some(other) => {
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!(
                    "`{key}` must be a duration such as 15m, 1h or 14d, not {other:?}"
                )),
            );
            return None;
        }
        None => {
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!("missing `{key}` (a duration such as 1h)")),
            );
            return None;
        }
    };
    match rsigma_parser::Timespan::parse(&text) {
        Ok(span) if span.seconds > 0 => Some((span.seconds, text)),
        _ => {
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!(
                    "`{key}: {text}` is not a duration (a number and s, m, h, d or w, e.g. 1h)"
                )),
            );
            None
        }
    }
}

fn field_list(
    checker: &mut FileChecker<'_>,
    line: usize,
    key: &str,
    value: Option<&Yaml>,
    required: bool,
) -> Option<Vec<String>> {
    let fields: Option<Vec<String>> = match value {
        None if !required => Some(Vec::new()),
        Some(Yaml::String(one)) => Some(vec![one.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    match fields {
        Some(fields)
            if !(required && fields.is_empty()) && fields.iter().all(|f| !f.is_empty()) =>
        {
            Some(fields)
        }
        _ => {
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!("`{key}` must be a list of record fields, e.g. [userIdentity.arn, sourceIPAddress]")),
            );
            None
        }
    }
}

fn mapping<'y>(
    checker: &mut FileChecker<'_>,
    map: &'y Mapping,
    key: &str,
    allowed: &[&str],
) -> Option<(&'y Mapping, usize)> {
    let value = map.get(key)?;
    let line = checker.key_line(key);
    let Some(inner) = value.as_mapping() else {
        checker.problem(
            line,
            ProblemKind::BadStatefulKey(format!("`{key}` must be a mapping")),
        );
        return None;
    };
    for other in inner.keys() {
        let name = other.as_str().unwrap_or("?");
        if !allowed.contains(&name) {
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!(
                    "`{key}` has no key `{name}` (expected {})",
                    allowed.join(", ")
                )),
            );
        }
    }
    Some((inner, line))
}

/// `dedup:`, when present and valid.
pub(super) fn dedup(checker: &mut FileChecker<'_>, map: &Mapping) -> Option<Dedup> {
    let (inner, line) = mapping(checker, map, "dedup", &["by", "window"])?;
    let by = field_list(checker, line, "dedup.by", inner.get("by"), false);
    let window = duration(checker, line, "dedup.window", inner.get("window"));
    let (window_secs, window) = window?;
    Some(Dedup {
        by: by?,
        window_secs,
        window,
    })
}

/// `first_seen:`, when present and valid.
pub(super) fn first_seen(checker: &mut FileChecker<'_>, map: &Mapping) -> Option<FirstSeen> {
    let (inner, line) = mapping(
        checker,
        map,
        "first_seen",
        &["fields", "history", "learning"],
    )?;
    let fields = field_list(
        checker,
        line,
        "first_seen.fields",
        inner.get("fields"),
        true,
    );
    let history = duration(checker, line, "first_seen.history", inner.get("history"));
    let learning = match inner.get("learning") {
        None => history.as_ref().map(|(secs, _)| *secs),
        Some(Yaml::String(text)) if text.trim() == "0" || text.trim() == "0s" => Some(0),
        Some(Yaml::Number(n)) if n.as_u64() == Some(0) => Some(0),
        value => duration(checker, line, "first_seen.learning", value).map(|(secs, _)| secs),
    };
    let (history_secs, history) = history?;
    Some(FirstSeen {
        fields: fields?,
        history_secs,
        history,
        learning_secs: learning?,
    })
}

/// `route:`, when present and valid.
pub(super) fn route(checker: &mut FileChecker<'_>, map: &Mapping) -> Option<Route> {
    let value = map.get("route")?;
    match value.as_str().and_then(Route::parse) {
        Some(route) => Some(route),
        None => {
            let line = checker.key_line("route");
            checker.problem(
                line,
                ProblemKind::BadStatefulKey(format!(
                    "`route` is {value:?}; use main, pager or ticket"
                )),
            );
            None
        }
    }
}

/// Reduces an rsigma correlation rule to what trailwatch runs, or says why it cannot.
pub(super) fn correlation(
    checker: &mut FileChecker<'_>,
    parsed: &rsigma_parser::CorrelationRule,
) -> Option<Correlation> {
    use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType, WindowMode};
    let line = checker.key_line("correlation");
    let unsupported = |checker: &mut FileChecker<'_>, what: String| {
        checker.problem(line, ProblemKind::UnsupportedCorrelation(what));
    };
    if let Err(err) = rsigma_eval::correlation::compile_correlation(parsed) {
        checker.sigma_problem(line, &err.to_string());
        return None;
    }
    let kind = match parsed.correlation_type {
        CorrelationType::EventCount => CorrelationKind::EventCount,
        CorrelationType::ValueCount => CorrelationKind::ValueCount,
        CorrelationType::Temporal => CorrelationKind::Temporal,
        other => {
            unsupported(
                checker,
                format!(
                    "type {} (trailwatch runs event_count, value_count and temporal)",
                    other.as_str()
                ),
            );
            return None;
        }
    };
    if parsed.window != WindowMode::Sliding {
        unsupported(checker, "a window other than sliding".to_owned());
        return None;
    }
    if parsed.timespan.seconds == 0 {
        unsupported(checker, "a timespan of 0".to_owned());
        return None;
    }
    let mut distinct_rules: Vec<String> = Vec::new();
    for rule in &parsed.rules {
        if !distinct_rules.contains(rule) {
            distinct_rules.push(rule.clone());
        }
    }
    let (at_least, value_fields) = match (&parsed.condition, kind) {
        (CorrelationCondition::Extended(_), CorrelationKind::Temporal) => {
            unsupported(
                checker,
                "an extended temporal condition (trailwatch's temporal needs every referenced rule, or a gte/gt count of them)".to_owned(),
            );
            return None;
        }
        // No condition: every referenced rule (rsigma fills in `gte: 1` then, which for
        // a sequence means nothing else).
        (CorrelationCondition::Threshold { predicates, .. }, CorrelationKind::Temporal)
            if predicates.is_empty() || predicates == &[(ConditionOperator::Gte, 1)] =>
        {
            (distinct_rules.len() as u64, Vec::new())
        }
        (
            CorrelationCondition::Threshold {
                predicates, field, ..
            },
            _,
        ) => {
            let mut at_least = None;
            for (op, value) in predicates {
                match op {
                    ConditionOperator::Gte => at_least = Some(at_least.unwrap_or(0).max(*value)),
                    ConditionOperator::Gt => {
                        at_least = Some(at_least.unwrap_or(0).max(value.saturating_add(1)))
                    }
                    _ => {
                        unsupported(
                            checker,
                            "a condition with lt, lte, eq or neq (trailwatch fires when a count reaches a threshold: use gte or gt)".to_owned(),
                        );
                        return None;
                    }
                }
            }
            let Some(at_least) = at_least.filter(|n| *n >= 1) else {
                unsupported(
                    checker,
                    "a condition without gte or gt of at least 1".to_owned(),
                );
                return None;
            };
            let fields = field.clone().unwrap_or_default();
            if kind == CorrelationKind::ValueCount && fields.is_empty() {
                unsupported(
                    checker,
                    "value_count without `field` in its condition".to_owned(),
                );
                return None;
            }
            (at_least, fields)
        }
        (CorrelationCondition::Extended(_), _) => {
            unsupported(checker, "an extended condition outside temporal".to_owned());
            return None;
        }
    };
    if !parsed.aliases.is_empty() {
        unsupported(checker, "field aliases".to_owned());
        return None;
    }
    Some(Correlation {
        kind,
        rules: distinct_rules,
        group_by: parsed.group_by.clone(),
        timespan_secs: parsed.timespan.seconds,
        timespan: parsed.timespan.original.clone(),
        at_least,
        value_fields,
        generate: parsed.generate,
    })
}
