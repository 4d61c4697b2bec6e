//! Exclusions: Sigma filter rules (the Sigma specification's meta-filters) that drop a
//! rule's matches when the caller is known to be benign, applied once, visibly, instead
//! of copied into every rule.
//!
//! A filter file has a `filter:` section with `rules:` (`any`, or a list of rule names,
//! ids or titles) and a detection whose condition must hold for a match to stand (e.g.
//! `condition: not aws_service`). trailwatch adds `reason:` (required: why the matches
//! are benign) and `expires:` (optional `YYYY-MM-DD`; on and after that day the filter
//! no longer applies and `rules lint` warns). A rule opts out with
//! `exempt_from: [filter-name]`. The built-in `aws-service-callers` filter is one such
//! file; user suppressions are more of them. A match a filter drops is counted as
//! suppressed, never lost silently.

use rsigma_eval::CompiledRule;
use time::Date;
use time::macros::format_description;
use yaml_serde::{Mapping, Value as Yaml};

use super::ProblemKind;
use super::load::{FileChecker, string_at};

/// Which rules an exclusion applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExclusionTarget {
    /// Every rule that is not exempt.
    Any,
    /// Rules with one of these names, ids or titles.
    Named(Vec<String>),
}

/// An exclusion that passed every check.
pub(super) struct LoadedExclusion {
    pub(super) name: String,
    pub(super) path: String,
    pub(super) line: usize,
    pub(super) reason: String,
    pub(super) expires: Option<Date>,
    pub(super) target: ExclusionTarget,
    pub(super) compiled: CompiledRule,
}

/// Reads and compiles a filter document; problems go to `checker`.
pub(super) fn load(
    checker: &mut FileChecker<'_>,
    map: &Mapping,
    title: String,
) -> Option<LoadedExclusion> {
    let name = checker.name(map);
    let filter_line = checker.key_line("filter");
    let Some(filter) = map.get("filter").and_then(Yaml::as_mapping) else {
        checker.problem(
            filter_line,
            ProblemKind::BadExclusion(
                "`filter` must be a mapping with `rules:` and a detection".into(),
            ),
        );
        return None;
    };
    let reason = string_at(map, "reason").map(str::to_owned);
    if reason.is_none() {
        checker.problem(
            1,
            ProblemKind::BadExclusion(
                "missing `reason` (say why the matches it drops are benign)".into(),
            ),
        );
    }
    let expires = match map.get("expires") {
        None => None,
        Some(value) => {
            let text = value.as_str().unwrap_or_default();
            match Date::parse(text, format_description!("[year]-[month]-[day]")) {
                Ok(date) => Some(date),
                Err(_) => {
                    let line = checker.key_line("expires");
                    checker.problem(
                        line,
                        ProblemKind::BadExclusion(format!(
                            "`expires` must be a date YYYY-MM-DD, not {text:?}"
                        )),
                    );
                    None
                }
            }
        }
    };
    let target = match filter.get("rules") {
        Some(Yaml::String(any)) if any.eq_ignore_ascii_case("any") => ExclusionTarget::Any,
        Some(Yaml::String(one)) => ExclusionTarget::Named(vec![one.clone()]),
        Some(Yaml::Sequence(items)) => ExclusionTarget::Named(
            items
                .iter()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => {
            checker.problem(
                filter_line,
                ProblemKind::BadExclusion(
                    "`filter.rules` must be `any` or a list of rule names".into(),
                ),
            );
            return None;
        }
    };
    let mut detection = filter.clone();
    detection.remove("rules");
    let compiled = compile_detection(checker, &title, detection, filter_line)?;
    Some(LoadedExclusion {
        name,
        path: checker.path().to_owned(),
        line: filter_line,
        reason: reason?,
        expires,
        target,
        compiled,
    })
}

/// Compiles a filter's detection as a Sigma rule of its own: it "matches" when the
/// filter's condition holds, i.e. when a rule's match may stand.
fn compile_detection(
    checker: &mut FileChecker<'_>,
    title: &str,
    detection: Mapping,
    line: usize,
) -> Option<CompiledRule> {
    let mut rule = Mapping::new();
    rule.insert("title".into(), Yaml::String(format!("filter: {title}")));
    let mut logsource = Mapping::new();
    logsource.insert("product".into(), "aws".into());
    logsource.insert("service".into(), "cloudtrail".into());
    rule.insert("logsource".into(), Yaml::Mapping(logsource));
    rule.insert("detection".into(), Yaml::Mapping(detection));
    let text = yaml_serde::to_string(&rule).unwrap_or_default();
    let collection = match rsigma_parser::parse_sigma_yaml(&text) {
        Ok(collection) => collection,
        Err(err) => {
            checker.sigma_problem(line, &err.to_string());
            return None;
        }
    };
    for err in &collection.errors {
        checker.sigma_problem(line, err);
    }
    let sigma = collection.rules.into_iter().next()?;
    match rsigma_eval::compile_rule(&sigma) {
        Ok(compiled) => Some(compiled),
        Err(err) => {
            checker.sigma_problem(line, &err.to_string());
            None
        }
    }
}

/// A compiled exclusion, ready to judge matches.
pub(super) struct Exclusion {
    pub(super) name: String,
    pub(super) reason: String,
    compiled: CompiledRule,
    /// Indexed by rule: whether this exclusion applies to that rule.
    applies: Vec<bool>,
}

impl Exclusion {
    /// Resolves which of `rules` the exclusion applies to, or `None` when it has
    /// expired on `today`.
    pub(super) fn resolve(
        loaded: LoadedExclusion,
        rules: &[super::Rule],
        today: Date,
    ) -> Option<Exclusion> {
        if loaded.expires.is_some_and(|expires| expires <= today) {
            return None;
        }
        let applies = rules
            .iter()
            .map(|rule| {
                let named = match &loaded.target {
                    ExclusionTarget::Any => true,
                    ExclusionTarget::Named(names) => names.iter().any(|n| {
                        *n == rule.name || Some(n) == rule.id.as_ref() || *n == rule.title
                    }),
                };
                named && !rule.exempt_from.contains(&loaded.name)
            })
            .collect();
        Some(Exclusion {
            name: loaded.name,
            reason: loaded.reason,
            compiled: loaded.compiled,
            applies,
        })
    }

    /// True when this exclusion drops a match of rule `index` on `event`. `holds`
    /// caches, for one event, whether the exclusion's condition holds: it is evaluated
    /// once however many of the event's matches the exclusion applies to.
    pub(super) fn drops(
        &self,
        index: usize,
        event: &impl rsigma_eval::Event,
        holds: &mut Option<bool>,
    ) -> bool {
        self.applies.get(index).copied().unwrap_or(false)
            && !*holds.get_or_insert_with(|| super::sigma_matches(&self.compiled, event))
    }
}
