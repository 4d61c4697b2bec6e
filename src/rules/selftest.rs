//! Inline tests: runs each rule's `tests:` examples through the compiled rule set, the
//! same matcher production uses, and reports every failure by rule and test.

use std::fmt;

use super::{Expectation, RuleSet};

/// One inline test whose verdict differed from its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineTestFailure {
    /// The rule's name.
    pub rule: String,
    /// The rule file and the test's line.
    pub location: String,
    /// The test's name.
    pub test: String,
    /// Why it failed.
    pub reason: String,
}

impl fmt::Display for InlineTestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: rule {} test {:?}: {}",
            self.location, self.rule, self.test, self.reason
        )
    }
}

/// The outcome of running every inline test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineTestReport {
    /// Tests run.
    pub run: usize,
    /// Tests whose verdict was as expected.
    pub passed: usize,
    /// Rules that carry no inline test.
    pub rules_without_tests: Vec<String>,
    /// Tests whose verdict was not as expected.
    pub failures: Vec<InlineTestFailure>,
}

impl InlineTestReport {
    /// True when every test passed.
    pub fn all_passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// How many alerts of `rule` a sequence of records gives, each record its own batch,
/// with state in memory (what `trailwatch scan` and the Lambda do).
fn alerts_of(rule_set: &RuleSet, rule: &str, events: &[serde_json::Value]) -> usize {
    use crate::state::{MemoryStore, block_on};
    let (store, stage) = (MemoryStore::new(), crate::stateful::Stateful::new());
    let mut alerts = 0;
    for event in events {
        let matches: Vec<crate::alert::Alert> = rule_set
            .matching(event)
            .into_iter()
            .map(|r| crate::alert::Alert::new(r, event.clone()))
            .collect();
        // The memory store never fails.
        if let Ok(decided) = block_on(stage.apply(rule_set, &store, matches, 0)) {
            alerts += decided.alerts.iter().filter(|a| a.rule == rule).count();
        }
    }
    alerts
}

pub(super) fn run(rule_set: &RuleSet) -> InlineTestReport {
    let mut report = InlineTestReport::default();
    for rule in rule_set.rules().iter().chain(rule_set.correlations()) {
        if rule.tests.is_empty() {
            report.rules_without_tests.push(rule.name.clone());
        }
        for test in &rule.tests {
            report.run += 1;
            if let Expectation::Alerts(expected) = test.expect {
                let alerts = alerts_of(rule_set, &rule.name, &test.events);
                if alerts == expected {
                    report.passed += 1;
                } else {
                    report.failures.push(InlineTestFailure {
                        rule: rule.name.clone(),
                        location: format!("{}:{}", rule.path, test.line),
                        test: test.name.clone(),
                        reason: format!(
                            "expected {expected} alert(s) from {} event(s), got {alerts}",
                            test.events.len()
                        ),
                    });
                }
                continue;
            }
            let matched = rule_set
                .matching(&test.event)
                .iter()
                .any(|m| m.name == rule.name);
            let reason = match (test.expect, matched) {
                (Expectation::Match, false) => {
                    "expected a match, but the rule did not match the event"
                }
                (Expectation::NoMatch, true) => "expected no match, but the rule matched the event",
                (Expectation::Alerts(_), _) => "a sequence test needs `events`",
                _ => {
                    report.passed += 1;
                    continue;
                }
            };
            report.failures.push(InlineTestFailure {
                rule: rule.name.clone(),
                location: format!("{}:{}", rule.path, test.line),
                test: test.name.clone(),
                reason: reason.to_owned(),
            });
        }
    }
    report
}
