//! The prefilter: which records can match any rule at all, decided from three fields
//! read without building the record (`eventName`, `userIdentity.type`, whether there is
//! an `errorCode`).
//!
//! Most CloudTrail traffic is read-only calls that no rule mentions. Each rule gets a
//! [`Gate`]: a set of keys of which a matching record must hold at least one (its
//! `eventName` is one of these, or its identity type is `Root`, or it has an error
//! code). A record that holds no key of any rule's gate cannot match, so the pipeline
//! skips building the full JSON value for it. The analysis is conservative: anything it
//! cannot prove (a `not`, most modifiers, wildcards, keyword searches, fields other than
//! those three) makes a gate "any record", never a wrong "no". Sigma rules and
//! CloudWatch filter patterns both feed it.

use std::collections::{BTreeSet, HashMap, HashSet};

use rsigma_parser::{
    ConditionExpr, Detection, Modifier, Quantifier, SelectorPattern, SigmaRule, SigmaValue,
};

use super::filter_pattern::Requirement;
use crate::record::RecordHead;

/// One thing a record can hold, cheap to check.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Key {
    /// `eventName` equals this (lowercased).
    EventName(String),
    /// `eventName` starts with this (lowercased).
    EventNamePrefix(String),
    /// `userIdentity.type` equals this (lowercased).
    IdentityType(String),
    /// `errorCode` is present (not null).
    ErrorCode,
}

/// What a rule (or part of one) needs of a record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Gate {
    /// Any record may match.
    Any,
    /// Only records holding one of these keys may match (none: no record can).
    Only(BTreeSet<Key>),
}

impl Gate {
    fn only_event_names(keys: &BTreeSet<Key>) -> bool {
        keys.iter().all(|k| matches!(k, Key::EventName(_)))
    }

    fn only_event_name_keys(keys: &BTreeSet<Key>) -> bool {
        keys.iter()
            .all(|k| matches!(k, Key::EventName(_) | Key::EventNamePrefix(_)))
    }

    /// Both must hold. Two `eventName` sets intersect; otherwise either side alone is
    /// a sound (weaker) requirement, and the more selective one is kept.
    fn and(self, other: Gate) -> Gate {
        match (self, other) {
            (Gate::Any, x) | (x, Gate::Any) => x,
            (Gate::Only(a), Gate::Only(b)) => {
                if Gate::only_event_names(&a) && Gate::only_event_names(&b) {
                    return Gate::Only(a.intersection(&b).cloned().collect());
                }
                match (
                    Gate::only_event_name_keys(&a),
                    Gate::only_event_name_keys(&b),
                ) {
                    (true, false) => Gate::Only(a),
                    (false, true) => Gate::Only(b),
                    _ if a.len() <= b.len() => Gate::Only(a),
                    _ => Gate::Only(b),
                }
            }
        }
    }

    /// Either may hold.
    fn or(self, other: Gate) -> Gate {
        match (self, other) {
            (Gate::Any, _) | (_, Gate::Any) => Gate::Any,
            (Gate::Only(mut a), Gate::Only(b)) => {
                a.extend(b);
                Gate::Only(a)
            }
        }
    }

    /// True when no record at all can pass.
    pub(crate) fn is_never(&self) -> bool {
        matches!(self, Gate::Only(keys) if keys.is_empty())
    }
}

fn plain_lowercase(value: &SigmaValue) -> Option<String> {
    match value {
        SigmaValue::String(s) => s.as_plain().map(|p| p.to_lowercase()),
        _ => None,
    }
}

/// The gate of one detection item (`field|modifiers: values`).
fn item_gate(field: Option<&str>, modifiers: &[Modifier], values: &[SigmaValue]) -> Gate {
    let literal_set = |wrap: fn(String) -> Key| {
        let values: Option<BTreeSet<Key>> = values
            .iter()
            .map(|v| plain_lowercase(v).map(wrap))
            .collect();
        values.map_or(Gate::Any, Gate::Only)
    };
    match field {
        Some("eventName") if modifiers.is_empty() => literal_set(Key::EventName),
        Some("eventName") if modifiers == [Modifier::StartsWith] => {
            literal_set(Key::EventNamePrefix)
        }
        Some("userIdentity.type") if modifiers.is_empty() => literal_set(Key::IdentityType),
        Some("errorCode") => {
            let string_test = modifiers.iter().all(|m| {
                matches!(
                    m,
                    Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::Re
                )
            }) && !values.is_empty()
                && values
                    .iter()
                    .all(|v| matches!(v, SigmaValue::String(s) if s.as_plain().is_none_or(|p| !p.is_empty())));
            let exists = modifiers == [Modifier::Exists]
                && values.iter().all(|v| matches!(v, SigmaValue::Bool(true)));
            if string_test || exists {
                Gate::Only(BTreeSet::from([Key::ErrorCode]))
            } else {
                Gate::Any
            }
        }
        _ => Gate::Any,
    }
}

fn detection_gate(detection: &Detection) -> Gate {
    match detection {
        Detection::AllOf(items) => items
            .iter()
            .map(|item| {
                item_gate(
                    item.field.name.as_deref(),
                    &item.field.modifiers,
                    &item.values,
                )
            })
            .fold(Gate::Any, Gate::and),
        Detection::AnyOf(children) => children
            .iter()
            .map(detection_gate)
            .reduce(Gate::or)
            .unwrap_or(Gate::Any),
        _ => Gate::Any,
    }
}

fn condition_gate(condition: &ConditionExpr, named: &HashMap<String, Detection>) -> Gate {
    match condition {
        ConditionExpr::And(parts) => parts
            .iter()
            .map(|p| condition_gate(p, named))
            .fold(Gate::Any, Gate::and),
        ConditionExpr::Or(parts) => parts
            .iter()
            .map(|p| condition_gate(p, named))
            .reduce(Gate::or)
            .unwrap_or(Gate::Any),
        ConditionExpr::Not(_) => Gate::Any,
        ConditionExpr::Identifier(name) => named.get(name).map_or(Gate::Any, detection_gate),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let selected = selected_detections(pattern, named).map(detection_gate);
            match quantifier {
                Quantifier::All => selected.fold(Gate::Any, Gate::and),
                Quantifier::Any => selected.reduce(Gate::or).unwrap_or(Gate::Any),
                Quantifier::Count(_) => Gate::Any,
            }
        }
    }
}

/// The named detections a `1 of` / `all of` selector picks, by rsigma's own rule
/// (`them`: every name not starting with `_`).
pub(crate) fn selected_detections<'a, D>(
    pattern: &'a SelectorPattern,
    named: &'a HashMap<String, D>,
) -> impl Iterator<Item = &'a D> {
    named
        .iter()
        .filter(|(name, _)| pattern.matches_detection_name(name))
        .map(|(_, detection)| detection)
}

/// The gate of a Sigma rule.
pub(crate) fn sigma_gate(rule: &SigmaRule) -> Gate {
    let detection = &rule.detection;
    detection
        .conditions
        .iter()
        .map(|c| condition_gate(c, &detection.named))
        .reduce(Gate::or)
        .unwrap_or(Gate::Any)
}

/// The gate of a CloudWatch filter pattern (its exact strings are case-sensitive; the
/// gate compares lowercased, which only lets more records through).
pub(crate) fn pattern_gate(requirement: &Requirement) -> Gate {
    match requirement {
        Requirement::Any => Gate::Any,
        Requirement::Field { path, value } => {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            match (path.as_slice(), value) {
                (["eventName"], Some(name)) => {
                    Gate::Only(BTreeSet::from([Key::EventName(name.to_lowercase())]))
                }
                (["userIdentity", "type"], Some(kind)) => {
                    Gate::Only(BTreeSet::from([Key::IdentityType(kind.to_lowercase())]))
                }
                (["errorCode"], _) => Gate::Only(BTreeSet::from([Key::ErrorCode])),
                _ => Gate::Any,
            }
        }
        Requirement::All(items) => items.iter().map(pattern_gate).fold(Gate::Any, Gate::and),
        Requirement::AnyOf(items) => items
            .iter()
            .map(pattern_gate)
            .reduce(Gate::or)
            .unwrap_or(Gate::Any),
    }
}

/// The union of every gated rule's gate (rules with `Gate::Any` are screened another
/// way, see `RuleSet::screen`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordFilter {
    event_names: HashSet<String>,
    event_name_prefixes: Vec<String>,
    identity_types: HashSet<String>,
    error_code: bool,
}

/// Runs `f` on `text` lowercased: on the stack when it is short ASCII (every CloudTrail
/// event name and identity type), else on the heap.
fn with_lowercase<R>(text: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buffer = [0u8; 64];
    match buffer.get_mut(..text.len()) {
        Some(lower) if text.is_ascii() => {
            lower.copy_from_slice(text.as_bytes());
            lower.make_ascii_lowercase();
            f(std::str::from_utf8(lower).unwrap_or_default())
        }
        _ => f(&text.to_lowercase()),
    }
}

impl crate::ingest::HeadScreen for RecordFilter {
    fn may_match(&self, head: &RecordHead<'_>) -> bool {
        RecordFilter::may_match(self, head)
    }
}

impl RecordFilter {
    /// The filter letting through what any of `gates` lets through (`Gate::Any` gates
    /// are left out: the caller screens those rules another way).
    pub(crate) fn from_gates<'a>(gates: impl IntoIterator<Item = &'a Gate>) -> RecordFilter {
        let mut filter = RecordFilter::default();
        for key in gates.into_iter().flat_map(|gate| match gate {
            Gate::Any => None,
            Gate::Only(keys) => Some(keys),
        }) {
            for key in key {
                match key {
                    Key::EventName(name) => {
                        filter.event_names.insert(name.clone());
                    }
                    Key::EventNamePrefix(prefix) => filter.event_name_prefixes.push(prefix.clone()),
                    Key::IdentityType(kind) => {
                        filter.identity_types.insert(kind.clone());
                    }
                    Key::ErrorCode => filter.error_code = true,
                }
            }
        }
        filter
    }

    /// False only when no gated rule can match a record with this head.
    pub(crate) fn may_match(&self, record: &RecordHead<'_>) -> bool {
        (self.error_code && record.has_error_code)
            || with_lowercase(&record.event_name, |name| {
                self.event_names.contains(name)
                    || self
                        .event_name_prefixes
                        .iter()
                        .any(|prefix| name.starts_with(prefix.as_str()))
            })
            || record
                .identity_type
                .as_deref()
                .is_some_and(|kind| with_lowercase(kind, |kind| self.identity_types.contains(kind)))
    }
}

/// The rules worth evaluating on a record: each rule is filed under its gate's keys, so
/// a record is checked only against the rules whose gate it passes (the rules of its
/// `eventName`, of its identity type, those needing an error code when it has one, and
/// the ungated ones). Gates over-approximate, so no rule that would match is left out.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    by_event_name: HashMap<String, Vec<usize>>,
    by_event_name_prefix: Vec<(String, usize)>,
    by_identity_type: HashMap<String, Vec<usize>>,
    on_error_code: Vec<usize>,
    always: Vec<usize>,
    rules: usize,
}

impl Candidates {
    /// Files rule `i` under the keys of `gates[i]`.
    pub(crate) fn from_gates(gates: &[Gate]) -> Candidates {
        let mut candidates = Candidates {
            rules: gates.len(),
            ..Candidates::default()
        };
        for (index, gate) in gates.iter().enumerate() {
            let Gate::Only(keys) = gate else {
                candidates.always.push(index);
                continue;
            };
            for key in keys {
                match key {
                    Key::EventName(name) => candidates
                        .by_event_name
                        .entry(name.clone())
                        .or_default()
                        .push(index),
                    Key::EventNamePrefix(prefix) => {
                        candidates
                            .by_event_name_prefix
                            .push((prefix.clone(), index));
                    }
                    Key::IdentityType(kind) => candidates
                        .by_identity_type
                        .entry(kind.clone())
                        .or_default()
                        .push(index),
                    Key::ErrorCode => candidates.on_error_code.push(index),
                }
            }
        }
        candidates
    }

    /// The indices of the rules `record` may match, sorted, each once. A record whose
    /// `eventName` or `userIdentity.type` is present but not a string gets every rule
    /// (the gates reason about strings).
    pub(crate) fn for_record(&self, record: &serde_json::Value, out: &mut Vec<usize>) {
        out.clear();
        let event_name = record.get("eventName");
        let identity_type = record.get("userIdentity").and_then(|u| u.get("type"));
        let not_text = |v: Option<&serde_json::Value>| v.is_some_and(|v| !v.is_string());
        if not_text(event_name) || not_text(identity_type) {
            out.extend(0..self.rules);
            return;
        }
        out.extend_from_slice(&self.always);
        if let Some(name) = event_name.and_then(serde_json::Value::as_str) {
            with_lowercase(name, |name| {
                if let Some(rules) = self.by_event_name.get(name) {
                    out.extend_from_slice(rules);
                }
                out.extend(
                    self.by_event_name_prefix
                        .iter()
                        .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
                        .map(|(_, index)| *index),
                );
            });
        }
        if let Some(kind) = identity_type.and_then(serde_json::Value::as_str) {
            with_lowercase(kind, |kind| {
                if let Some(rules) = self.by_identity_type.get(kind) {
                    out.extend_from_slice(rules);
                }
            });
        }
        if record.get("errorCode").is_some_and(|code| !code.is_null()) {
            out.extend_from_slice(&self.on_error_code);
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// The field paths a Sigma rule reads (`userIdentity.arn`, as written), or `None` when
/// it may read anything (keyword searches, array blocks).
pub(crate) fn sigma_field_paths(rule: &SigmaRule) -> Option<BTreeSet<String>> {
    fn add_field(keys: &mut BTreeSet<String>, field: &str) {
        keys.insert(field.to_owned());
    }
    fn walk(detection: &Detection, keys: &mut BTreeSet<String>) -> Option<()> {
        match detection {
            Detection::AllOf(items) => {
                for item in items {
                    add_field(keys, item.field.name.as_deref()?);
                    if item.field.modifiers.contains(&Modifier::FieldRef) {
                        for value in &item.values {
                            add_field(keys, &plain_lowercase(value).and(value_text(value))?);
                        }
                    }
                }
                Some(())
            }
            Detection::AnyOf(children) => children.iter().try_for_each(|c| walk(c, keys)),
            _ => None,
        }
    }
    fn value_text(value: &SigmaValue) -> Option<String> {
        match value {
            SigmaValue::String(s) => s.as_plain(),
            _ => None,
        }
    }
    let mut keys = BTreeSet::new();
    for detection in rule.detection.named.values() {
        walk(detection, &mut keys)?;
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(detection: &str) -> RecordFilter {
        let yaml = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}\nlevel: low\n"
        );
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap();
        assert!(collection.errors.is_empty(), "{:?}", collection.errors);
        let gates: Vec<Gate> = collection.rules.iter().map(sigma_gate).collect();
        RecordFilter::from_gates(&gates)
    }

    fn named(name: &str) -> RecordHead<'_> {
        RecordHead {
            event_name: name.into(),
            identity_type: Some("IAMUser".into()),
            has_error_code: false,
        }
    }

    #[test]
    fn plain_names_in_a_selection_are_required() {
        let f = filter("  sel:\n    eventName: [StopLogging, DeleteTrail]\n  condition: sel");
        assert!(f.may_match(&named("StopLogging")) && f.may_match(&named("deletetrail")));
        assert!(!f.may_match(&named("DescribeTrails")));
    }

    #[test]
    fn and_intersects_or_unites() {
        let f = filter(
            "  a:\n    eventName: [A, B]\n  b:\n    eventName: [B, C]\n  condition: a and b",
        );
        assert!(f.may_match(&named("b")) && !f.may_match(&named("a")) && !f.may_match(&named("c")));
        let f = filter("  a:\n    eventName: A\n  b:\n    eventName: C\n  condition: 1 of them");
        assert!(f.may_match(&named("a")) && f.may_match(&named("c")) && !f.may_match(&named("b")));
    }

    #[test]
    fn a_filter_with_not_keeps_the_selection_requirement() {
        let f = filter(
            "  sel:\n    eventName: ConsoleLogin\n  filter:\n    eventName: Other\n  condition: sel and not filter",
        );
        assert!(f.may_match(&named("ConsoleLogin")) && !f.may_match(&named("Other")));
    }

    #[test]
    fn root_identity_and_error_codes_gate_rules_without_event_names() {
        let f = filter("  sel:\n    userIdentity.type: Root\n  condition: sel");
        let mut root = named("ListBuckets");
        assert!(!f.may_match(&root));
        root.identity_type = Some("Root".into());
        assert!(f.may_match(&root));

        let f = filter("  sel:\n    errorCode|startswith: AccessDenied\n  condition: sel");
        let mut denied = named("GetObject");
        assert!(!f.may_match(&denied));
        denied.has_error_code = true;
        assert!(f.may_match(&denied));
    }

    #[test]
    fn a_pattern_gate_reads_the_same_three_fields() {
        let pattern = super::super::filter_pattern::FilterPattern::parse(
            r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
        )
        .unwrap();
        assert_eq!(
            pattern_gate(&pattern.requirement()),
            Gate::Only(BTreeSet::from([Key::ErrorCode]))
        );
        let root = super::super::filter_pattern::FilterPattern::parse(
            r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        )
        .unwrap();
        assert_eq!(
            pattern_gate(&root.requirement()),
            Gate::Only(BTreeSet::from([Key::IdentityType("root".into())]))
        );
    }

    fn gate(detection: &str) -> Gate {
        let yaml = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}\nlevel: low\n"
        );
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap();
        sigma_gate(&collection.rules[0])
    }

    #[test]
    fn event_name_prefixes_gate_too() {
        let f = filter("  sel:\n    eventName|startswith: UpdateFunctionCode\n  condition: sel");
        assert!(f.may_match(&named("UpdateFunctionCode20150331v2")));
        assert!(!f.may_match(&named("GetFunction20150331v2")));
    }

    #[test]
    fn anything_unprovable_is_ungated() {
        for detection in [
            "  sel:\n    eventName: Stop*\n  condition: sel",
            "  sel:\n    userIdentity.arn|contains: root\n  condition: sel",
            "  sel:\n    errorCode|exists: false\n  condition: sel",
            "  sel:\n    eventName: A\n  condition: not sel",
            "  sel:\n    eventName: A\n  other:\n    eventSource: x\n  condition: sel or other",
        ] {
            assert_eq!(gate(detection), Gate::Any, "{detection}");
        }
    }

    #[test]
    fn ungated_rules_read_their_field_paths() {
        let yaml = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    userIdentity.arn|re: 'x'\n    requestParameters.userName|fieldref: userIdentity.userName\n  filter:\n    - sourceIPAddress: AWS Internal\n  condition: sel and not filter\nlevel: low\n";
        let collection = rsigma_parser::parse_sigma_yaml(yaml).unwrap();
        let keys = sigma_field_paths(&collection.rules[0]).unwrap();
        for key in [
            "userIdentity.arn",
            "requestParameters.userName",
            "userIdentity.userName",
            "sourceIPAddress",
        ] {
            assert!(keys.contains(key), "{key} in {keys:?}");
        }
        let keywords = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  words:\n    - evil\n  condition: words\nlevel: low\n";
        let collection = rsigma_parser::parse_sigma_yaml(keywords).unwrap();
        assert_eq!(sigma_field_paths(&collection.rules[0]), None);
    }
}
