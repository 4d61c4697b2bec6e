//! The prefilter: which records can match any rule at all, decided from three fields
//! read without building the record (`eventName`, `userIdentity.type`, `errorCode`).
//!
//! Most CloudTrail traffic is read-only calls that no rule mentions. Each rule gets a
//! [`Gate`]: a set of keys of which a matching record must hold at least one (its
//! `eventName` is one of these, or its identity type is `Root`, or its error code
//! starts with `AccessDenied`). A record that holds no key of any rule's gate cannot
//! match, so the pipeline skips building the full JSON value for it. The analysis is
//! conservative: anything it cannot prove (a `not`, most modifiers, wildcards in event
//! names, keyword searches, fields other than those three) makes a gate "any record",
//! never a wrong "no". Sigma rules and CloudWatch filter patterns both feed it.
//!
//! Error codes are compared lowercased and only when both the rule's text and the
//! record's code are ASCII: there lowercasing is exactly the case folding both Sigma
//! (`(?i)` regexes, lowercased literals) and this gate use. A record whose code is not
//! ASCII, or not a string, passes every error-code key.

use std::collections::{BTreeSet, HashMap, HashSet};

use rsigma_parser::{
    ConditionExpr, Detection, Modifier, Quantifier, SelectorPattern, SigmaRule, SigmaValue,
    StringPart,
};

use super::filter_pattern::Requirement;
use crate::record::{ErrorCode, RecordHead};

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
    /// `errorCode` equals this (lowercased ASCII).
    ErrorCodeIs(String),
    /// `errorCode` starts with `prefix` and ends with `suffix` (lowercased ASCII; one of
    /// them may be empty).
    ErrorCodeLike {
        /// What the code starts with.
        prefix: String,
        /// What the code ends with.
        suffix: String,
    },
}

impl Key {
    /// The key for error codes equal to `text`, or starting with `prefix` and ending with
    /// `suffix` (`exact` false): lowercased, or mere presence when the text is not ASCII
    /// or says nothing.
    fn error_code(exact: bool, prefix: &str, suffix: &str) -> Key {
        if !prefix.is_ascii()
            || !suffix.is_ascii()
            || (!exact && prefix.is_empty() && suffix.is_empty())
        {
            return Key::ErrorCode;
        }
        if exact {
            return Key::ErrorCodeIs(prefix.to_ascii_lowercase());
        }
        Key::ErrorCodeLike {
            prefix: prefix.to_ascii_lowercase(),
            suffix: suffix.to_ascii_lowercase(),
        }
    }
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
        Some("errorCode") => error_code_gate(modifiers, values),
        _ => Gate::Any,
    }
}

/// The gate of an `errorCode` item: the codes a string test can match, or presence for
/// a regex, `contains` or `exists: true`.
fn error_code_gate(modifiers: &[Modifier], values: &[SigmaValue]) -> Gate {
    if modifiers == [Modifier::Exists] {
        let present = values.iter().all(|v| matches!(v, SigmaValue::Bool(true)));
        return match present {
            true => Gate::Only(BTreeSet::from([Key::ErrorCode])),
            false => Gate::Any,
        };
    }
    let mut test = None;
    for modifier in modifiers {
        match modifier {
            Modifier::Cased => {}
            Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::Re
                if test.is_none() =>
            {
                test = Some(modifier);
            }
            _ => return Gate::Any,
        }
    }
    let keys: Option<BTreeSet<Key>> = values
        .iter()
        .map(|value| {
            let SigmaValue::String(text) = value else {
                return None;
            };
            if text.as_plain().is_some_and(|plain| plain.is_empty()) {
                return None;
            }
            // The plain text before the first wildcard and after the last.
            let mut runs = text
                .parts
                .split(|part| matches!(part, StringPart::Special(_)));
            let plain = |run: &[StringPart]| -> String {
                run.iter()
                    .filter_map(|part| match part {
                        StringPart::Plain(plain) => Some(plain.as_str()),
                        StringPart::Special(_) => None,
                    })
                    .collect()
            };
            let first = plain(runs.next().unwrap_or_default());
            let last = runs.next_back().map(plain);
            let wildcards = last.is_some();
            let last = last.unwrap_or_else(|| first.clone());
            // rsigma-eval 0.23 anchors a wildcard value under `startswith` at its end and
            // under `endswith` at its start (`startswith: 'A*'` is the regex `A.*$`), so
            // those gate on presence alone, sound whichever way the anchors point.
            Some(match test {
                None if !wildcards => Key::error_code(true, &first, ""),
                None => Key::error_code(false, &first, &last),
                Some(Modifier::StartsWith) if !wildcards => Key::error_code(false, &first, ""),
                Some(Modifier::EndsWith) if !wildcards => Key::error_code(false, "", &last),
                _ => Key::ErrorCode,
            })
        })
        .collect();
    match keys {
        Some(keys) if !keys.is_empty() => Gate::Only(keys),
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
                (["errorCode"], Some(code)) => {
                    Gate::Only(BTreeSet::from([Key::error_code(true, code, "")]))
                }
                (["errorCode"], None) => Gate::Only(BTreeSet::from([Key::ErrorCode])),
                _ => Gate::Any,
            }
        }
        Requirement::Like {
            path,
            prefix,
            suffix,
        } => match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["eventName"] if !prefix.is_empty() && prefix.is_ascii() => Gate::Only(BTreeSet::from(
                [Key::EventNamePrefix(prefix.to_ascii_lowercase())],
            )),
            ["errorCode"] => Gate::Only(BTreeSet::from([Key::error_code(false, prefix, suffix)])),
            _ => Gate::Any,
        },
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
    error_codes: ErrorCodeRules,
}

/// The rules filed under error-code keys, by kind of key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ErrorCodeRules {
    /// Rules needing only that there is an error code.
    present: Vec<usize>,
    /// Rules needing one of these codes (lowercased).
    exact: HashMap<String, Vec<usize>>,
    /// Rules needing a code with this prefix and suffix (lowercased).
    like: Vec<(String, String, usize)>,
    /// Every rule above, sorted, each once: what a code the keys cannot read may match.
    all: Vec<usize>,
}

impl ErrorCodeRules {
    /// Files rule `index` under `key` when it is an error-code key.
    fn add(&mut self, key: &Key, index: usize) {
        match key {
            Key::ErrorCode => self.present.push(index),
            Key::ErrorCodeIs(code) => self.exact.entry(code.clone()).or_default().push(index),
            Key::ErrorCodeLike { prefix, suffix } => {
                self.like.push((prefix.clone(), suffix.clone(), index));
            }
            Key::EventName(_) | Key::EventNamePrefix(_) | Key::IdentityType(_) => return,
        }
        if let Err(at) = self.all.binary_search(&index) {
            self.all.insert(at, index);
        }
    }

    /// Calls `found` with the rules whose error-code key `code` holds (some may come twice);
    /// stops early when `found` returns true, and returns whether one did.
    fn find(&self, code: &ErrorCode<'_>, mut found: impl FnMut(&[usize]) -> bool) -> bool {
        let code = match code {
            ErrorCode::Text(code) if code.is_ascii() => code,
            _ => return found(&self.all),
        };
        if found(&self.present) {
            return true;
        }
        if self.exact.is_empty() && self.like.is_empty() {
            return false;
        }
        with_lowercase(code, |code| {
            self.exact.get(code).is_some_and(|rules| found(rules))
                || self.like.iter().any(|(prefix, suffix, index)| {
                    code.len() >= prefix.len() + suffix.len()
                        && code.starts_with(prefix.as_str())
                        && code.ends_with(suffix.as_str())
                        && found(std::slice::from_ref(index))
                })
        })
    }
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
        for (index, keys) in gates
            .into_iter()
            .enumerate()
            .filter_map(|(index, gate)| match gate {
                Gate::Any => None,
                Gate::Only(keys) => Some((index, keys)),
            })
        {
            for key in keys {
                match key {
                    Key::EventName(name) => {
                        filter.event_names.insert(name.clone());
                    }
                    Key::EventNamePrefix(prefix) => filter.event_name_prefixes.push(prefix.clone()),
                    Key::IdentityType(kind) => {
                        filter.identity_types.insert(kind.clone());
                    }
                    Key::ErrorCode | Key::ErrorCodeIs(_) | Key::ErrorCodeLike { .. } => {
                        filter.error_codes.add(key, index);
                    }
                }
            }
        }
        filter
    }

    /// False only when no gated rule can match a record with this head.
    pub(crate) fn may_match(&self, record: &RecordHead<'_>) -> bool {
        record
            .error_code
            .as_ref()
            .is_some_and(|code| self.error_codes.find(code, |rules| !rules.is_empty()))
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
    by_error_code: ErrorCodeRules,
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
                    Key::ErrorCode | Key::ErrorCodeIs(_) | Key::ErrorCodeLike { .. } => {
                        candidates.by_error_code.add(key, index);
                    }
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
        if let Some(code) = record.get("errorCode").and_then(ErrorCode::of_value) {
            self.by_error_code.find(&code, |rules| {
                out.extend_from_slice(rules);
                false
            });
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
            error_code: None,
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
        denied.error_code = Some(ErrorCode::Text("AccessDeniedException".into()));
        assert!(f.may_match(&denied));
    }

    fn failed(code: &str) -> RecordHead<'_> {
        RecordHead {
            error_code: Some(ErrorCode::Text(code.into())),
            ..named("GetObject")
        }
    }

    #[test]
    fn error_codes_gate_by_their_value() {
        let f = filter(
            "  sel:\n    - errorCode|startswith: AccessDenied\n    - errorCode|endswith: UnauthorizedOperation\n    - errorCode: [NoSuchKey, 'Throttl?ng*Exception']\n  condition: sel",
        );
        for code in [
            "AccessDenied",
            "accessdeniedexception",
            "Client.UnauthorizedOperation",
            "NOSUCHKEY",
            "ThrottlingException",
            "ThrottlingRateException",
        ] {
            assert!(f.may_match(&failed(code)), "{code}");
        }
        for code in [
            "",
            "Denied",
            "UnauthorizedOperation.Client",
            "NoSuchKeys",
            "ThrottlingExceptionX",
            "Throttled",
        ] {
            assert!(!f.may_match(&failed(code)), "{code}");
        }
        assert!(!f.may_match(&named("GetObject")), "no error code");
        // What the gate cannot read as ASCII text passes every error-code key.
        assert!(f.may_match(&failed("NoSuchKeyſ")));
        let not_text = RecordHead {
            error_code: Some(ErrorCode::NotText),
            ..named("GetObject")
        };
        assert!(f.may_match(&not_text));
    }

    #[test]
    fn error_code_tests_the_gate_cannot_read_need_only_a_code() {
        for detection in [
            "  sel:\n    errorCode|contains: Denied\n  condition: sel",
            "  sel:\n    errorCode|re: '^Access'\n  condition: sel",
            "  sel:\n    errorCode|exists: true\n  condition: sel",
            "  sel:\n    errorCode: '*'\n  condition: sel",
            "  sel:\n    errorCode: 'Accèss'\n  condition: sel",
            // rsigma anchors these at the other end: no prefix or suffix to rely on.
            "  sel:\n    errorCode|startswith: 'Access*'\n  condition: sel",
            "  sel:\n    errorCode|endswith: '*Denied'\n  condition: sel",
        ] {
            assert_eq!(
                gate(detection),
                Gate::Only(BTreeSet::from([Key::ErrorCode])),
                "{detection}"
            );
        }
        for detection in [
            "  sel:\n    errorCode: ''\n  condition: sel",
            "  sel:\n    errorCode: 403\n  condition: sel",
            "  sel:\n    errorCode|neq: AccessDenied\n  condition: sel",
            "  sel:\n    errorCode|contains|all: [Access, Denied]\n  condition: sel",
        ] {
            assert_eq!(gate(detection), Gate::Any, "{detection}");
        }
        assert_eq!(
            gate("  sel:\n    errorCode|cased: AccessDenied\n  condition: sel"),
            Gate::Only(BTreeSet::from([Key::ErrorCodeIs("accessdenied".into())]))
        );
    }

    #[test]
    fn rules_are_candidates_for_the_error_codes_they_test() {
        let gates: Vec<Gate> = [
            "  sel:\n    errorCode|startswith: AccessDenied\n  condition: sel",
            "  sel:\n    errorCode: NoSuchKey\n  condition: sel",
            "  sel:\n    errorCode|exists: true\n  condition: sel",
            "  sel:\n    eventName: GetObject\n  condition: sel",
        ]
        .iter()
        .map(|detection| gate(detection))
        .collect();
        let candidates = Candidates::from_gates(&gates);
        let rules_for = |record: serde_json::Value| {
            let mut out = Vec::new();
            candidates.for_record(&record, &mut out);
            out
        };
        let with_code = |code: serde_json::Value| {
            rules_for(serde_json::json!({"eventName": "PutObject", "errorCode": code}))
        };
        assert_eq!(with_code("AccessDeniedException".into()), [0, 2]);
        assert_eq!(with_code("nosuchkey".into()), [1, 2]);
        assert_eq!(with_code("ThrottlingException".into()), [2]);
        assert_eq!(with_code(serde_json::Value::Null), [] as [usize; 0]);
        assert_eq!(with_code(403.into()), [0, 1, 2]);
        assert_eq!(with_code("AccessDeniedſ".into()), [0, 1, 2]);
        assert_eq!(
            rules_for(serde_json::json!({"eventName": "GetObject", "errorCode": "AccessDenied"})),
            [0, 2, 3]
        );
    }

    #[test]
    fn a_pattern_gate_reads_the_same_three_fields() {
        let pattern = super::super::filter_pattern::FilterPattern::parse(
            r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
        )
        .unwrap();
        assert_eq!(
            pattern_gate(&pattern.requirement()),
            Gate::Only(BTreeSet::from([
                Key::ErrorCodeLike {
                    prefix: String::new(),
                    suffix: "unauthorizedoperation".into()
                },
                Key::ErrorCodeLike {
                    prefix: "accessdenied".into(),
                    suffix: String::new()
                },
            ]))
        );
        let gate_of = |text: &str| {
            let pattern = super::super::filter_pattern::FilterPattern::parse(text).unwrap();
            pattern_gate(&pattern.requirement())
        };
        assert_eq!(
            gate_of(r#"{ $.errorCode = "AccessDenied" }"#),
            Gate::Only(BTreeSet::from([Key::ErrorCodeIs("accessdenied".into())]))
        );
        assert_eq!(
            gate_of(r#"{ $.errorCode = %Denied% }"#),
            Gate::Only(BTreeSet::from([Key::ErrorCode]))
        );
        assert_eq!(
            gate_of(r#"{ $.eventName = "Delete*" }"#),
            Gate::Only(BTreeSet::from([Key::EventNamePrefix("delete".into())]))
        );
        assert_eq!(gate_of(r#"{ $.eventName = "*Bucket" }"#), Gate::Any);
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
