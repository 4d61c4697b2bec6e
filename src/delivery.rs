//! Delivery: the seam between deciding what to say (alerts, metric points) and the
//! transport that says it, and the accounting that proves nothing was lost.
//!
//! A sink takes alerts and answers, for each one, [`Delivery::Published`] or
//! [`Delivery::Failed`] with a reason. The [`DeliveryReport`] starts with every alert
//! failed ("not confirmed") and only an explicit confirmation flips one to published,
//! so an alert a transport forgets about is a failure by construction, never a silent
//! drop. How a transport packs, retries or deduplicates is its own business (the SNS
//! adapter lives in `aws`); this module knows no transport.

use std::future::Future;

use crate::alert::Alert;
use crate::metrics::MetricPoint;
use crate::rules::{Route, Severity};

/// Which topic an alert goes to: the rule's `route:`, else the table by severity
/// (`SEVERITY_ROUTES`, e.g. `critical=pager`), else the main topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    by_severity: Vec<(Severity, Route)>,
}

impl Routes {
    /// Parses `level=route` pairs separated by commas.
    pub fn parse(text: &str) -> Result<Routes, String> {
        let mut by_severity = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(level, route)| {
                Some((Severity::parse(level.trim())?, Route::parse(route.trim())?))
            });
            match parsed {
                Some(pair) => by_severity.push(pair),
                None => return Err(entry.to_owned()),
            }
        }
        Ok(Routes { by_severity })
    }

    /// The route of `alert`.
    pub fn route(&self, alert: &Alert) -> Route {
        alert.route.unwrap_or_else(|| {
            self.by_severity
                .iter()
                .find(|(severity, _)| *severity == alert.severity)
                .map_or(Route::Main, |(_, route)| *route)
        })
    }
}

/// What happened to one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The transport confirmed it accepted the alert.
    Published,
    /// The alert was not confirmed; the reason says what the transport reported.
    Failed(String),
}

/// The reason an alert carries until its transport confirms it.
pub const NOT_CONFIRMED: &str = "not confirmed by the transport";

/// One [`Delivery`] per alert, in the order the alerts were handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    results: Vec<Delivery>,
}

impl DeliveryReport {
    /// A report for `alerts` alerts, none of them confirmed yet.
    pub fn unconfirmed(alerts: usize) -> DeliveryReport {
        DeliveryReport {
            results: vec![Delivery::Failed(NOT_CONFIRMED.to_owned()); alerts],
        }
    }

    /// Marks alert `index` published. Out-of-range indices are ignored (a transport
    /// confirming something it was never given confirms nothing).
    pub fn confirm(&mut self, index: usize) {
        if let Some(result) = self.results.get_mut(index) {
            *result = Delivery::Published;
        }
    }

    /// Marks alert `index` failed with `reason`, unless it is already confirmed
    /// published (a confirmation is final).
    pub fn fail(&mut self, index: usize, reason: impl Into<String>) {
        if let Some(result) = self.results.get_mut(index)
            && *result != Delivery::Published
        {
            *result = Delivery::Failed(reason.into());
        }
    }

    /// Each alert's result, in input order.
    pub fn results(&self) -> &[Delivery] {
        &self.results
    }

    /// Alerts handed over: always `published() + failed()`.
    pub fn alerts(&self) -> usize {
        self.results.len()
    }

    /// Alerts confirmed published.
    pub fn published(&self) -> usize {
        self.results
            .iter()
            .filter(|r| **r == Delivery::Published)
            .count()
    }

    /// Alerts not confirmed.
    pub fn failed(&self) -> usize {
        self.alerts() - self.published()
    }

    /// `(index, reason)` of every alert not confirmed.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &str)> {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(index, result)| match result {
                Delivery::Failed(reason) => Some((index, reason.as_str())),
                Delivery::Published => None,
            })
    }
}

/// Publishes alerts (SNS in production, a fake in unit tests).
pub trait AlertSink {
    /// Publishes every alert, retrying what can be retried; the report has one result
    /// per alert.
    fn publish(&self, alerts: &[Alert]) -> impl Future<Output = DeliveryReport>;
}

/// Why metric points were not all sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sent} of {total} metric point(s) sent: {reason}")]
pub struct MetricsError {
    /// Points the transport accepted before it failed.
    pub sent: usize,
    /// Points handed over.
    pub total: usize,
    /// What the transport reported.
    pub reason: String,
}

/// Records metric points (CloudWatch in production).
pub trait MetricsSink {
    /// Sends the points; an error says how many were sent before it happened.
    fn put(&self, points: &[MetricPoint]) -> impl Future<Output = Result<(), MetricsError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_starts_unconfirmed_and_counts_add_up() {
        let mut report = DeliveryReport::unconfirmed(4);
        assert_eq!((report.published(), report.failed()), (0, 4));
        report.confirm(0);
        report.confirm(2);
        report.confirm(9);
        report.fail(1, "Throttled: slow down");
        assert_eq!((report.published(), report.failed()), (2, 2));
        assert_eq!(report.alerts(), report.published() + report.failed());
        let failures: Vec<_> = report.failures().collect();
        assert_eq!(failures, [(1, "Throttled: slow down"), (3, NOT_CONFIRMED)]);
    }

    #[test]
    fn a_confirmation_is_final() {
        let mut report = DeliveryReport::unconfirmed(1);
        report.confirm(0);
        report.fail(0, "late error");
        assert_eq!(report.results(), [Delivery::Published]);
    }
}
