//! The event-name prefilter: which `eventName`s can match any rule at all.
//!
//! Most CloudTrail traffic is read-only calls that no rule mentions. When every rule's
//! condition requires `eventName` to be one of a fixed set of plain values, a record
//! whose name is in none of the sets cannot match, so the pipeline can skip building
//! the full JSON value for it. The analysis is conservative: anything it cannot prove
//! (a `not`, a modifier, a wildcard, a keyword search, a rule without an `eventName`
//! requirement) makes the whole filter "any name", never a wrong "no".

use std::collections::{BTreeSet, HashMap, HashSet};

use rsigma_parser::{ConditionExpr, Detection, Quantifier, SelectorPattern, SigmaRule, SigmaValue};

/// The `eventName`s a rule (or a part of one) can match, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    /// Unconstrained.
    Any,
    /// Only these (case-insensitive; stored lowercased).
    Only(BTreeSet<String>),
}

impl Names {
    fn and(self, other: Names) -> Names {
        match (self, other) {
            (Names::Any, x) | (x, Names::Any) => x,
            (Names::Only(a), Names::Only(b)) => Names::Only(a.intersection(&b).cloned().collect()),
        }
    }

    fn or(self, other: Names) -> Names {
        match (self, other) {
            (Names::Any, _) | (_, Names::Any) => Names::Any,
            (Names::Only(mut a), Names::Only(b)) => {
                a.extend(b);
                Names::Only(a)
            }
        }
    }
}

fn plain_lowercase(value: &SigmaValue) -> Option<String> {
    match value {
        SigmaValue::String(s) => s.as_plain().map(|p| p.to_lowercase()),
        _ => None,
    }
}

fn detection_names(detection: &Detection) -> Names {
    match detection {
        Detection::AllOf(items) => items
            .iter()
            .filter(|item| {
                item.field.name.as_deref() == Some("eventName") && item.field.modifiers.is_empty()
            })
            .map(|item| {
                let values: Option<BTreeSet<String>> =
                    item.values.iter().map(plain_lowercase).collect();
                values.map_or(Names::Any, Names::Only)
            })
            .fold(Names::Any, Names::and),
        Detection::AnyOf(children) => children
            .iter()
            .map(detection_names)
            .reduce(Names::or)
            .unwrap_or(Names::Any),
        _ => Names::Any,
    }
}

fn condition_names(condition: &ConditionExpr, named: &HashMap<String, Detection>) -> Names {
    match condition {
        ConditionExpr::And(parts) => parts
            .iter()
            .map(|p| condition_names(p, named))
            .fold(Names::Any, Names::and),
        ConditionExpr::Or(parts) => parts
            .iter()
            .map(|p| condition_names(p, named))
            .reduce(Names::or)
            .unwrap_or(Names::Any),
        ConditionExpr::Not(_) => Names::Any,
        ConditionExpr::Identifier(name) => named.get(name).map_or(Names::Any, detection_names),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let selected = named
                .iter()
                .filter(|(name, _)| match pattern {
                    SelectorPattern::Them => !name.starts_with('_'),
                    SelectorPattern::Pattern(p) => rsigma_parser::detection_name_matches(p, name),
                })
                .map(|(_, detection)| detection_names(detection));
            match quantifier {
                Quantifier::All => selected.fold(Names::Any, Names::and),
                Quantifier::Any => selected.reduce(Names::or).unwrap_or(Names::Any),
                Quantifier::Count(_) => Names::Any,
            }
        }
    }
}

/// The lowercased `eventName` literals a Sigma rule needs, or `None` when it can match
/// any event name.
pub(crate) fn sigma_rule_names(rule: &SigmaRule) -> Option<Vec<String>> {
    match rule_names(rule) {
        Names::Any => None,
        Names::Only(names) => Some(names.into_iter().collect()),
    }
}

fn rule_names(rule: &SigmaRule) -> Names {
    let detection = &rule.detection;
    detection
        .conditions
        .iter()
        .map(|c| condition_names(c, &detection.named))
        .reduce(Names::or)
        .unwrap_or(Names::Any)
}

/// The set of `eventName`s any rule of a set can match, when it is finite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventNameFilter {
    /// `None`: some rule can match any name, so nothing can be skipped.
    names: Option<HashSet<String>>,
}

impl EventNameFilter {
    /// Builds the filter for a set of rules.
    /// A filter from each rule's needed event names (`None`: any name); names are
    /// compared case-insensitively.
    pub(crate) fn from_rule_names(
        rules: impl IntoIterator<Item = Option<Vec<String>>>,
    ) -> EventNameFilter {
        let mut all = Names::Only(BTreeSet::new());
        for names in rules {
            all = all.or(match names {
                None => Names::Any,
                Some(names) => Names::Only(names.iter().map(|n| n.to_lowercase()).collect()),
            });
        }
        EventNameFilter {
            names: match all {
                Names::Any => None,
                Names::Only(names) => Some(names.into_iter().collect()),
            },
        }
    }

    /// False only when no rule can match a record with this `eventName`.
    pub(crate) fn may_match(&self, event_name: &str) -> bool {
        let Some(names) = &self.names else {
            return true;
        };
        // Event names are short ASCII: lowercase on the stack, not per record on the heap.
        let mut buffer = [0u8; 64];
        match buffer.get_mut(..event_name.len()) {
            Some(lower) if event_name.is_ascii() => {
                lower.copy_from_slice(event_name.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(lower).is_ok_and(|name| names.contains(name))
            }
            _ => names.contains(&event_name.to_lowercase()),
        }
    }

    /// True when the filter can skip anything.
    pub(crate) fn is_selective(&self) -> bool {
        self.names.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(detection: &str) -> EventNameFilter {
        let yaml = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}\nlevel: low\n"
        );
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap();
        assert!(collection.errors.is_empty(), "{:?}", collection.errors);
        EventNameFilter::from_rule_names(collection.rules.iter().map(sigma_rule_names))
    }

    #[test]
    fn plain_names_in_a_selection_are_required() {
        let f = filter("  sel:\n    eventName: [StopLogging, DeleteTrail]\n  condition: sel");
        assert!(f.may_match("StopLogging") && f.may_match("deletetrail"));
        assert!(!f.may_match("DescribeTrails"));
    }

    #[test]
    fn and_intersects_or_unites() {
        let f = filter(
            "  a:\n    eventName: [A, B]\n  b:\n    eventName: [B, C]\n  condition: a and b",
        );
        assert!(f.may_match("b") && !f.may_match("a") && !f.may_match("c"));
        let f = filter("  a:\n    eventName: A\n  b:\n    eventName: C\n  condition: 1 of them");
        assert!(f.may_match("a") && f.may_match("c") && !f.may_match("b"));
    }

    #[test]
    fn a_filter_with_not_keeps_the_selection_requirement() {
        let f = filter(
            "  sel:\n    eventName: ConsoleLogin\n  filter:\n    eventName: Other\n  condition: sel and not filter",
        );
        assert!(f.may_match("ConsoleLogin") && !f.may_match("Other"));
    }

    #[test]
    fn anything_unprovable_matches_every_name() {
        for detection in [
            "  sel:\n    eventName|startswith: Stop\n  condition: sel",
            "  sel:\n    eventName: Stop*\n  condition: sel",
            "  sel:\n    userIdentity.type: Root\n  condition: sel",
            "  sel:\n    eventName: A\n  condition: not sel",
            "  sel:\n    eventName: A\n  other:\n    eventSource: x\n  condition: sel or other",
        ] {
            let f = filter(detection);
            assert!(!f.is_selective() && f.may_match("Anything"), "{detection}");
        }
    }
}
