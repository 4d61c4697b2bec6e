//! Evaluation of a compiled [`Expr`] against a JSON record, and the `eventName` prefilter hint.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use super::parse::number_literal;
use super::{Condition, Expr, Num, NumLiteral, NumOp, Segment, Test, TextPattern};

impl Expr {
    pub(super) fn eval(&self, record: &Value) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(record)),
            Expr::Or(items) => items.iter().any(|e| e.eval(record)),
            Expr::Cond(c) => c.eval(record),
        }
    }
}

/// Follows a selector path; `None` when any step is missing or of the wrong JSON type.
fn resolve<'a>(record: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut current = record;
    for segment in path {
        current = match (segment, current) {
            (Segment::Key(key), Value::Object(map)) => map.get(key)?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

impl Condition {
    fn eval(&self, record: &Value) -> bool {
        let value = resolve(record, &self.selector.path);
        match &self.test {
            Test::NotExists => value.is_none(),
            Test::IsNull => matches!(value, Some(Value::Null)),
            Test::IsTrue => matches!(value, Some(Value::Bool(true))),
            Test::IsFalse => matches!(value, Some(Value::Bool(false))),
            Test::Text { negated, pattern } => {
                text_test(value, |s| pattern.matches(s)).is_some_and(|m| m != *negated)
            }
            Test::Regex { negated, regex } => {
                text_test(value, |s| regex.is_match(s)).is_some_and(|m| m != *negated)
            }
            Test::Number { op, literal } => number_test(value, *op, literal),
        }
    }
}

/// Applies a string test to a value node (a string, or a number through its JSON text);
/// `None` for anything else (absent, null, boolean, array, object).
fn text_test(value: Option<&Value>, test: impl Fn(&str) -> bool) -> Option<bool> {
    match value? {
        Value::String(s) => Some(test(s)),
        Value::Number(n) => Some(test(&n.to_string())),
        _ => None,
    }
}

fn number_test(value: Option<&Value>, op: NumOp, literal: &NumLiteral) -> bool {
    match value {
        Some(Value::Number(n)) => {
            let int = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from));
            let Some(value) = n.as_f64() else {
                return false;
            };
            compare(Num { value, int }, literal.num).is_some_and(|ord| op.holds(ord))
        }
        // An untyped literal (`= 200`) also equals the string "200" (module choice 3).
        Some(Value::String(s)) => {
            let equal = || {
                *s == literal.text
                    || number_literal(s)
                        .and_then(|n| compare(n.num, literal.num))
                        .is_some_and(Ordering::is_eq)
            };
            match op {
                NumOp::Eq => equal(),
                NumOp::Ne => !equal(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Exact for two integers, `f64` otherwise.
fn compare(a: Num, b: Num) -> Option<Ordering> {
    match (a.int, b.int) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.value.partial_cmp(&b.value),
    }
}

impl NumOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            NumOp::Eq => ord.is_eq(),
            NumOp::Ne => ord.is_ne(),
            NumOp::Lt => ord.is_lt(),
            NumOp::Le => ord.is_le(),
            NumOp::Gt => ord.is_gt(),
            NumOp::Ge => ord.is_ge(),
        }
    }
}

impl TextPattern {
    pub(super) fn matches(&self, s: &str) -> bool {
        match self {
            TextPattern::Exact(exact) => s == exact,
            TextPattern::Wildcard(parts) => wildcard_match(parts, s),
        }
    }
}

/// `parts` are the literal pieces between `*`s: `s` must start with the first, end with the last
/// (without overlap), and contain the middle ones in order. Leftmost matching is exact for `*`-only
/// globs.
fn wildcard_match(parts: &[String], s: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return s == first;
    };
    let Some(s) = s.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some(mut s) = s.strip_suffix(last.as_str()) else {
        return false;
    };
    for part in middle.iter().filter(|p| !p.is_empty()) {
        match s.find(part.as_str()) {
            Some(i) => s = s.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

/// The set of exact `$.eventName` values every match needs, if there is one.
pub(super) fn required_event_names(expr: &Expr) -> Option<BTreeSet<String>> {
    match expr {
        Expr::Cond(c) => match (c.selector.path.as_slice(), &c.test) {
            (
                [Segment::Key(key)],
                Test::Text {
                    negated: false,
                    pattern: TextPattern::Exact(name),
                },
            ) if key == "eventName" => Some(BTreeSet::from([name.clone()])),
            _ => None,
        },
        // Every item must hold: any constrained item constrains the whole (intersected).
        Expr::And(items) => items
            .iter()
            .filter_map(required_event_names)
            .reduce(|a, b| a.intersection(&b).cloned().collect()),
        // Some item must hold: constrained only when every item is (united).
        Expr::Or(items) => items.iter().try_fold(BTreeSet::new(), |mut acc, item| {
            acc.extend(required_event_names(item)?);
            Some(acc)
        }),
    }
}

/// What every match of `expr` needs (see [`super::Requirement`]).
pub(super) fn requirement(expr: &Expr) -> super::Requirement {
    use super::Requirement;
    match expr {
        Expr::Cond(c) => {
            let Some(path) = c
                .selector
                .path
                .iter()
                .map(|segment| match segment {
                    Segment::Key(key) => Some(key.clone()),
                    Segment::Index(_) => None,
                })
                .collect::<Option<Vec<String>>>()
            else {
                return Requirement::Any;
            };
            match &c.test {
                Test::Text {
                    negated: false,
                    pattern: TextPattern::Exact(value),
                } => Requirement::Field {
                    path,
                    value: Some(value.clone()),
                },
                Test::Text {
                    negated: false,
                    pattern: TextPattern::Wildcard(parts),
                } => Requirement::Like {
                    path,
                    prefix: parts.first().cloned().unwrap_or_default(),
                    suffix: parts.last().cloned().unwrap_or_default(),
                },
                // A positive regex or boolean test needs the field to be there; `!=`,
                // `NOT EXISTS` and `IS NULL` hold on absent fields or say little.
                Test::Regex { negated: false, .. } | Test::IsTrue | Test::IsFalse => {
                    Requirement::Field { path, value: None }
                }
                _ => Requirement::Any,
            }
        }
        Expr::And(items) => Requirement::All(items.iter().map(requirement).collect()),
        Expr::Or(items) => Requirement::AnyOf(items.iter().map(requirement).collect()),
    }
}

/// Adds the first key of every selector in `expr` to `keys`.
pub(super) fn top_level_keys(expr: &Expr, keys: &mut BTreeSet<String>) {
    match expr {
        Expr::Cond(c) => {
            if let Some(Segment::Key(key)) = c.selector.path.first() {
                keys.insert(key.clone());
            }
        }
        Expr::And(items) | Expr::Or(items) => {
            for item in items {
                top_level_keys(item, keys);
            }
        }
    }
}
