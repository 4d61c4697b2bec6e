//! Required literals: text that must appear in a record's raw JSON for a rule to match,
//! so the screen can rule out rules the prefilter cannot gate without reading a field.
//!
//! A rule the prefilter cannot gate (a regex on `userIdentity.arn`, a `userAgent` value)
//! would otherwise be evaluated on every record. Most of those rules still name a string
//! the record must contain: [`RequiredLiterals`] holds, for a set of rules, literals of
//! which at least one is in the text of every record any of the rules matches. A record
//! whose text holds none of them is skipped without building a value.
//!
//! The analysis is conservative (anything unproven gives no literal, and then the rules
//! are screened as before), and the check only trusts text it can reason about:
//! - **What counts as a literal.** A matched value (`Exact`, `Contains`, `StartsWith`,
//!   `EndsWith`, an Aho-Corasick set, the text a regex requires), or the longest piece of
//!   one between characters JSON may escape (`"`, `\`, control characters) or that are not
//!   ASCII. A literal must hold a character that only a string's contents can hold (not
//!   whitespace, JSON punctuation, a digit, a sign, a dot, nor a letter of `true`,
//!   `false`, `null` or an exponent): rsigma also matches numbers, booleans and objects
//!   re-serialised as text, and such a literal cannot come from those.
//! - **What text is trusted.** ASCII only (rsigma folds case with Unicode rules, the
//!   search here with ASCII ones) and without `\u` or `\/` escapes (which could spell a
//!   literal's characters differently). Other text is screened as before.
//! - **How.** The text is lowercased (ASCII) and searched for the lowercased literals,
//!   a superset of both case-sensitive and case-insensitive matching: with a
//!   `memmem` finder each (rare-byte SIMD scans) when there are a few, with one
//!   Aho-Corasick automaton when there are many.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use regex_syntax::hir::{Class, Hir, HirKind};
use rsigma_eval::matcher::{CompiledMatcher, GroupMode};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};

/// Literals shorter than this are too common to be worth a search.
const MIN_LITERAL_LEN: usize = 3;

/// Up to this many literals, one `memmem` scan each beats an automaton: Aho-Corasick's
/// prefilter looks for the literals' first bytes, and a literal such as
/// `:assumed-role/aws:` starts with a byte every JSON record is full of.
const MAX_SEPARATE_SCANS: usize = 4;

/// Literals of which at least one is in the text of any record one of the rules matches.
#[derive(Debug, Clone)]
pub(crate) struct RequiredLiterals {
    search: Search,
}

#[derive(Debug, Clone)]
enum Search {
    Each(Vec<memchr::memmem::Finder<'static>>),
    Automaton(AhoCorasick),
}

impl RequiredLiterals {
    /// The literals of every rule, or `None` when some rule has none that can be proven.
    pub(crate) fn of<'a>(rules: impl IntoIterator<Item = &'a CompiledRule>) -> Option<Self> {
        let mut literals = Vec::new();
        for rule in rules {
            literals.extend(rule_literals(rule)?);
        }
        if literals.is_empty() {
            return None;
        }
        literals.sort();
        literals.dedup();
        let search = if literals.len() <= MAX_SEPARATE_SCANS {
            Search::Each(
                (literals.iter())
                    .map(|l| memchr::memmem::Finder::new(l.as_bytes()).into_owned())
                    .collect(),
            )
        } else {
            Search::Automaton(AhoCorasick::new(&literals).ok()?)
        };
        Some(RequiredLiterals { search })
    }

    /// True only when no record with this text can match any of the rules: the text is
    /// one this module can reason about, and it holds none of the literals.
    pub(crate) fn rule_out(&self, text: &str) -> bool {
        if !text.is_ascii() || has_escape_that_may_spell_a_literal(text.as_bytes()) {
            return false;
        }
        let lowered = text.to_ascii_lowercase();
        match &self.search {
            Search::Each(finders) => finders.iter().all(|f| f.find(lowered.as_bytes()).is_none()),
            Search::Automaton(automaton) => !automaton.is_match(&lowered),
        }
    }
}

/// True when the text has a `\u` or `\/` escape (or a backslash before a `u` or `/`
/// that an escaped backslash wrote, which only makes the check more careful): one scan
/// for backslashes, which most records have few of.
fn has_escape_that_may_spell_a_literal(text: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', text).any(|at| matches!(text.get(at + 1), Some(b'u' | b'/')))
}

/// An OR-set: at least one of these is in the text of every record the part matches.
type Literals = Vec<String>;

/// Either side alone is required: keep the more selective one (longest shortest
/// literal, then fewer literals).
fn either(a: Option<Literals>, b: Option<Literals>) -> Option<Literals> {
    fn rank(set: &Literals) -> (usize, std::cmp::Reverse<usize>) {
        let shortest = set.iter().map(String::len).min().unwrap_or(0);
        (shortest, std::cmp::Reverse(set.len()))
    }
    match (a, b) {
        (Some(a), Some(b)) => Some(if rank(&b) > rank(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// One of the parts matched: every part must have literals, and they are united.
fn union(parts: impl IntoIterator<Item = Option<Literals>>) -> Option<Literals> {
    let mut all = Vec::new();
    let mut any = false;
    for part in parts {
        all.extend(part?);
        any = true;
    }
    any.then_some(all)
}

/// All of the parts matched: any one part's literals are required.
fn best(parts: impl IntoIterator<Item = Option<Literals>>) -> Option<Literals> {
    parts.into_iter().fold(None, either)
}

/// A group of matchers: one matched (`Any`) or all did (`All`).
fn grouped(mode: GroupMode, parts: impl IntoIterator<Item = Option<Literals>>) -> Option<Literals> {
    match mode {
        GroupMode::Any => union(parts),
        GroupMode::All => best(parts),
    }
}

/// A value that must be in the text, as the literal set of its usable piece.
fn single(text: &str) -> Option<Literals> {
    usable_piece(text).map(|l| vec![l])
}

fn rule_literals(rule: &CompiledRule) -> Option<Literals> {
    union(
        rule.conditions
            .iter()
            .map(|condition| condition_literals(condition, &rule.detections)),
    )
}

fn condition_literals(
    condition: &ConditionExpr,
    named: &HashMap<String, CompiledDetection>,
) -> Option<Literals> {
    match condition {
        ConditionExpr::And(parts) => best(parts.iter().map(|p| condition_literals(p, named))),
        ConditionExpr::Or(parts) => union(parts.iter().map(|p| condition_literals(p, named))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Identifier(name) => named.get(name).and_then(detection_literals),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let selected =
                super::prefilter::selected_detections(pattern, named).map(detection_literals);
            match quantifier {
                Quantifier::All => best(selected),
                Quantifier::Any | Quantifier::Count(1..) => union(selected),
                Quantifier::Count(0) => None,
            }
        }
    }
}

fn detection_literals(detection: &CompiledDetection) -> Option<Literals> {
    match detection {
        CompiledDetection::AllOf(items) => best(items.iter().map(item_literals)),
        CompiledDetection::AnyOf(children) => union(children.iter().map(detection_literals)),
        CompiledDetection::And(children) => best(children.iter().map(detection_literals)),
        CompiledDetection::Keywords(matcher) => matcher_literals(matcher),
        // Array scopes (`all` holds on an empty array) and element conditions.
        _ => None,
    }
}

fn item_literals(item: &CompiledDetectionItem) -> Option<Literals> {
    // `exists: false` matches an absent field; `exists: true` names no text.
    if item.exists.is_some() {
        return None;
    }
    matcher_literals(&item.matcher)
}

fn matcher_literals(matcher: &CompiledMatcher) -> Option<Literals> {
    match matcher {
        CompiledMatcher::Exact { value, .. }
        | CompiledMatcher::Contains { value, .. }
        | CompiledMatcher::StartsWith { value, .. }
        | CompiledMatcher::EndsWith { value, .. } => single(value),
        CompiledMatcher::AhoCorasickSet { needles, .. } => union(needles.iter().map(|n| single(n))),
        CompiledMatcher::Regex(regex) => regex_literals(regex.as_str()),
        CompiledMatcher::RegexSetMatch { set, mode } => {
            grouped(*mode, set.patterns().iter().map(|p| regex_literals(p)))
        }
        CompiledMatcher::AnyOf(children) => union(children.iter().map(matcher_literals)),
        CompiledMatcher::AllOf(children) => best(children.iter().map(matcher_literals)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
            grouped(*mode, children.iter().map(matcher_literals))
        }
        _ => None,
    }
}

/// What a regex requires of any text it matches, as literals.
fn regex_literals(pattern: &str) -> Option<Literals> {
    hir_literals(&regex_syntax::Parser::new().parse(pattern).ok()?)
}

/// Literals one of which is in any text the expression matches, or `None`.
fn hir_literals(hir: &Hir) -> Option<Literals> {
    match hir.kind() {
        HirKind::Concat(parts) => {
            // Runs of adjacent plain characters join into one longer literal.
            let mut found = None;
            let mut run = String::new();
            for part in parts {
                match plain_text(part) {
                    Some(text) => run.push_str(&text),
                    None => {
                        found = either(found, run_literal(&mut run));
                        found = either(found, hir_literals(part));
                    }
                }
            }
            either(found, run_literal(&mut run))
        }
        HirKind::Alternation(parts) => union(parts.iter().map(hir_literals)),
        HirKind::Repetition(repetition) if repetition.min >= 1 => hir_literals(&repetition.sub),
        HirKind::Capture(capture) => hir_literals(&capture.sub),
        _ => single(&plain_text(hir)?),
    }
}

fn run_literal(run: &mut String) -> Option<Literals> {
    single(&std::mem::take(run))
}

/// The text an expression matches when it is plain characters, compared ASCII
/// case-insensitively (`(?i)k` is `[Kk\u{212A}]`: in ASCII text, the letter k).
fn plain_text(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(literal) => String::from_utf8(literal.0.to_vec()).ok(),
        HirKind::Class(class) => {
            let mut ascii: Vec<u8> = match class {
                Class::Unicode(set) => set
                    .ranges()
                    .iter()
                    .flat_map(|r| (r.start() as u32)..=(r.end() as u32).min(0x7f))
                    .filter_map(|c| u8::try_from(c).ok())
                    .collect(),
                Class::Bytes(set) => set
                    .ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end().min(0x7f))
                    .collect(),
            };
            ascii.iter_mut().for_each(|b| b.make_ascii_lowercase());
            ascii.sort_unstable();
            ascii.dedup();
            match ascii.as_slice() {
                [one] => Some(char::from(*one).to_string()),
                _ => None,
            }
        }
        HirKind::Capture(capture) => plain_text(&capture.sub),
        HirKind::Concat(parts) => parts.iter().map(plain_text).collect(),
        _ => None,
    }
}

/// The longest piece of `text` that is a sound literal (see the module documentation),
/// lowercased.
fn usable_piece(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii() || c.is_ascii_control() || c == '"' || c == '\\')
        .filter(|piece| piece.len() >= MIN_LITERAL_LEN && piece.chars().any(only_in_strings))
        .max_by_key(|piece| piece.len())
        .map(str::to_ascii_lowercase)
}

/// A character JSON writes only inside a string (so not in a number, `true`, `false`,
/// `null`, or between tokens).
fn only_in_strings(c: char) -> bool {
    !(c.is_ascii_whitespace()
        || c.is_ascii_digit()
        || "{}[]:,+-.".contains(c)
        || "truefalsn".contains(c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(detection: &str) -> CompiledRule {
        let yaml = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
        );
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).expect("rule parses");
        rsigma_eval::compile_rule(&collection.rules[0]).expect("rule compiles")
    }

    fn literals(detection: &str) -> Option<Vec<String>> {
        let mut found = rule_literals(&rule(detection))?;
        found.sort();
        Some(found)
    }

    #[test]
    fn values_and_the_text_a_regex_requires_are_literals() {
        assert_eq!(
            literals("  sel:\n    userAgent: TruffleHog\n  condition: sel\n"),
            Some(vec!["trufflehog".into()])
        );
        assert_eq!(
            literals(
                "  sel:\n    userIdentity.arn|re: '.+:assumed-role/aws:.+'\n  condition: sel\n"
            ),
            Some(vec![":assumed-role/aws:".into()])
        );
        assert_eq!(
            literals("  sel:\n    userAgent|re: '(?i)^(kali|parrot)'\n  condition: sel\n"),
            Some(vec!["kali".into(), "parrot".into()]),
            "an alternation needs each branch; a case-insensitive class is its letter"
        );
        assert_eq!(
            literals("  sel:\n    userAgent|re: '(?i)(kali|parrot)-linux'\n  condition: sel\n"),
            Some(vec!["-linux".into()]),
            "of a sequence, the most selective part"
        );
        assert_eq!(
            literals(
                "  sel:\n    userAgent|contains:\n      - boto3\n      - Terraform\n  condition: sel\n"
            ),
            Some(vec!["boto3".into(), "terraform".into()])
        );
    }

    #[test]
    fn and_keeps_one_side_or_needs_both_not_gives_none() {
        assert_eq!(
            literals(concat!(
                "  a:\n    userAgent: TruffleHog\n  b:\n    sourceIPAddress|contains: x.example\n",
                "  condition: a and b\n"
            )),
            Some(vec!["trufflehog".into()]),
            "the longer literal is more selective"
        );
        assert_eq!(
            literals(concat!(
                "  a:\n    userAgent: TruffleHog\n  b:\n    sourceIPAddress|contains: x.example\n",
                "  condition: a or b\n"
            )),
            Some(vec!["trufflehog".into(), "x.example".into()])
        );
        assert_eq!(
            literals(concat!(
                "  a:\n    userAgent: TruffleHog\n  b:\n    sourceIPAddress|cidr: 10.0.0.0/8\n",
                "  condition: a or b\n"
            )),
            None,
            "a CIDR gives no literal, so neither does the OR"
        );
        assert_eq!(
            literals("  a:\n    userAgent: TruffleHog\n  condition: not a\n"),
            None
        );
    }

    #[test]
    fn selectors_need_a_literal_from_each_detection_they_may_pick() {
        let two = "  sel_a:\n    userAgent: TruffleHog\n  sel_b:\n    userAgent: Kali-Linux\n";
        assert_eq!(
            literals(&format!("{two}  condition: 1 of sel_*\n")),
            Some(vec!["kali-linux".into(), "trufflehog".into()])
        );
        assert_eq!(
            literals(&format!("{two}  condition: all of sel_*\n")).map(|l| l.len()),
            Some(1)
        );
        for condition in ["all of nothing_*", "1 of nothing_*", "0 of them"] {
            assert_eq!(
                literals(&format!("{two}  condition: {condition}\n")),
                None,
                "{condition}"
            );
        }
        assert_eq!(
            literals(&format!(
                "{two}  sel_c:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: 1 of them\n"
            )),
            None,
            "one detection without a literal"
        );
        assert_eq!(
            literals(&format!(
                "{two}  _filter:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: 1 of them\n"
            )),
            Some(vec!["kali-linux".into(), "trufflehog".into()]),
            "`them` leaves out names starting with _"
        );
        assert_eq!(
            literals("  sel:\n    userAgent|exists: true\n  condition: sel\n"),
            None
        );
    }

    #[test]
    fn text_a_number_boolean_or_json_punctuation_could_spell_is_no_literal() {
        for value in [
            "'12345'", "'true'", "'false'", "'1.5e-3'", "'\":{\"'", "'null'",
        ] {
            assert_eq!(
                literals(&format!(
                    "  sel:\n    a|contains: {value}\n  condition: sel\n"
                )),
                None,
                "{value}"
            );
        }
        assert_eq!(
            literals("  sel:\n    a|re: '^\\d+$'\n  condition: sel\n"),
            None
        );
        assert_eq!(
            literals("  sel:\n    a: 'ab'\n  condition: sel\n"),
            None,
            "too short to be worth a search"
        );
        assert_eq!(
            literals("  sel:\n    a|contains: 'Status\":\"Suspended'\n  condition: sel\n"),
            Some(vec!["suspended".into()]),
            "the longest piece between characters JSON may escape"
        );
    }

    #[test]
    fn only_text_without_unicode_or_slash_escapes_is_ruled_out() {
        let required = RequiredLiterals::of([&rule(
            "  sel:\n    userAgent: TruffleHog\n  condition: sel\n",
        )])
        .expect("a literal");
        assert!(required.rule_out(r#"{"userAgent":"aws-cli/2"}"#));
        assert!(!required.rule_out(r#"{"userAgent":"TRUFFLEHOG"}"#));
        assert!(!required.rule_out(r#"{"userAgent":"Truffle\u0048og"}"#));
        assert!(!required.rule_out(r#"{"userAgent":"aws-cli\/2"}"#));
        assert!(
            !required.rule_out(r#"{"userAgent":"TruﬄeHog"}"#),
            "not ASCII"
        );
    }

    #[test]
    fn many_literals_are_searched_with_one_automaton() {
        let values: Vec<String> = (0..=MAX_SEPARATE_SCANS)
            .map(|i| format!("      - agent-{i}x\n"))
            .collect();
        let required = RequiredLiterals::of([&rule(&format!(
            "  sel:\n    userAgent:\n{}  condition: sel\n",
            values.concat()
        ))])
        .expect("literals");
        assert!(matches!(required.search, Search::Automaton(_)));
        assert!(required.rule_out(r#"{"userAgent":"agent-9x"}"#));
        assert!(!required.rule_out(&format!(r#"{{"userAgent":"AGENT-{MAX_SEPARATE_SCANS}X"}}"#)));
    }
}
