//! One Lambda invocation: decode the subscription batch, run the pipeline, publish the
//! alerts, send the metrics, and decide whether the invocation failed.
//!
//! Failure semantics live here. A record that is not CloudTrail is skipped, logged with
//! its log-event id and counted; it never fails the invocation. An alert that cannot be
//! published (after the SDK's and our own entry-level retries) fails the invocation so
//! Lambda's retries and then the on-failure destination keep the batch. A metrics
//! failure is logged and counted but never fails the invocation: failing would
//! re-publish alerts that already went out. The sinks are traits so this is tested
//! with fakes; [`crate::aws`] implements them for real.

use serde::Serialize;

use crate::config::Config;
use crate::delivery::{AlertSink, DeliveryReport, MetricsSink};
use crate::ingest::{IngestError, SubscriptionEnvelope};
use crate::metrics::{DeliveryCounts, metric_points};
use crate::pipeline;
use crate::rules::RuleSet;

/// What an invocation did (the function's response, and a log line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    /// True for a CloudWatch Logs control message (nothing to do).
    pub control_message: bool,
    /// Records read from the batch: always `events_processed + events_skipped`.
    pub events_read: u64,
    /// Records matched against the rules.
    pub events_processed: u64,
    /// Records skipped (not JSON, not CloudTrail).
    pub events_skipped: u64,
    /// Alerts produced: always `alerts_published + alerts_failed`.
    pub alerts: usize,
    /// Alerts the transport confirmed.
    pub alerts_published: usize,
    /// Alerts not confirmed (the invocation fails when this is not zero).
    pub alerts_failed: usize,
    /// Why metrics could not be sent, if they could not.
    pub metrics_error: Option<String>,
}

/// Why an invocation failed (Lambda will retry it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload could not be decoded at all.
    #[error("cannot decode the subscription payload: {0}")]
    Decode(#[from] IngestError),
    /// Some alerts could not be published.
    #[error(
        "{failed} of {total} alert(s) could not be published (first: {first_reason}); failing so Lambda retries the batch"
    )]
    Publish {
        /// Alerts not published.
        failed: usize,
        /// Alerts produced.
        total: usize,
        /// The first failure's reason.
        first_reason: String,
    },
}

impl InvocationError {
    /// A short machine-readable error type for Lambda's error response.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Decode(_) => "BadPayload",
            InvocationError::Publish { .. } => "PublishFailed",
        }
    }
}

/// Handles one subscription event end to end.
pub async fn handle_event(
    rules: &RuleSet,
    config: &Config,
    envelope: &SubscriptionEnvelope,
    alerts: &impl AlertSink,
    metrics: &impl MetricsSink,
) -> Result<InvocationSummary, InvocationError> {
    let batch = envelope.decode(config.limits)?;
    if batch.control_message {
        tracing::info!("CloudWatch Logs control message: nothing to do");
        return Ok(InvocationSummary {
            control_message: true,
            ..InvocationSummary::default()
        });
    }
    let outcome = pipeline::run(rules, batch);
    for skipped in &outcome.skipped {
        tracing::warn!(record = %skipped.id, reason = %skipped.reason, "skipped a record that is not a CloudTrail event");
    }

    let report = if outcome.alerts.is_empty() {
        DeliveryReport::unconfirmed(0)
    } else {
        alerts.publish(&outcome.alerts).await
    };
    for (index, reason) in report.failures() {
        let alert = &outcome.alerts[index];
        tracing::error!(
            alert_id = %alert.dedup_key(),
            rule = %alert.rule,
            event_id = %alert.event.event_id,
            %reason,
            "alert not published"
        );
    }

    let delivery = DeliveryCounts {
        published: report.published() as u64,
        failed: report.failed() as u64,
    };
    let metrics_error = metrics
        .put(&metric_points(&outcome, delivery))
        .await
        .err()
        .map(|err| err.to_string());
    if let Some(err) = &metrics_error {
        tracing::error!(error = %err, "metrics not all sent (alerts are unaffected)");
    }

    let summary = InvocationSummary {
        control_message: false,
        events_read: outcome.events_read(),
        events_processed: outcome.events_processed,
        events_skipped: outcome.events_skipped(),
        alerts: report.alerts(),
        alerts_published: report.published(),
        alerts_failed: report.failed(),
        metrics_error,
    };
    tracing::info!(
        events_read = summary.events_read,
        events_processed = summary.events_processed,
        events_skipped = summary.events_skipped,
        alerts = summary.alerts,
        alerts_published = summary.alerts_published,
        alerts_failed = summary.alerts_failed,
        "batch done: events read = processed + skipped, alerts = published + failed"
    );
    match report.failures().next() {
        None => Ok(summary),
        Some((_, first_reason)) => Err(InvocationError::Publish {
            failed: report.failed(),
            total: report.alerts(),
            first_reason: first_reason.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
