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

pub(super) fn run(rule_set: &RuleSet) -> InlineTestReport {
    let mut report = InlineTestReport::default();
    for rule in rule_set.rules() {
        if rule.tests.is_empty() {
            report.rules_without_tests.push(rule.name.clone());
        }
        for test in &rule.tests {
            report.run += 1;
            let matched = rule_set
                .matching(&test.event)
                .iter()
                .any(|m| m.name == rule.name);
            let reason = match (test.expect, matched) {
                (Expectation::Match, false) => {
                    "expected a match, but the rule did not match the event"
                }
                (Expectation::NoMatch, true) => "expected no match, but the rule matched the event",
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
