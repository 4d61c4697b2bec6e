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

use std::future::Future;

use serde::Serialize;

use crate::config::Config;
use crate::delivery::{SnsMessage, is_fifo_topic};
use crate::ingest::{IngestError, SubscriptionEnvelope};
use crate::metrics::{DeliveryCounts, MetricPoint, metric_points};
use crate::pipeline;
use crate::rules::RuleSet;

/// An alert that could not be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    /// The alert's stable id.
    pub alert_id: String,
    /// Why publishing failed (SNS error code and message, or the request error).
    pub reason: String,
}

/// What publishing a set of messages achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Messages SNS accepted.
    pub published: usize,
    /// Messages that were not accepted after retries.
    pub failures: Vec<PublishFailure>,
}

/// Publishes alert messages (SNS in production).
pub trait AlertSink {
    /// Publishes every message, retrying what can be retried; reports the rest.
    fn publish(&self, messages: &[SnsMessage]) -> impl Future<Output = PublishReport>;
}

/// Records metrics (CloudWatch in production).
pub trait MetricsSink {
    /// Sends the points; an error is reported, never retried by the caller.
    fn put(&self, points: &[MetricPoint]) -> impl Future<Output = Result<(), String>>;
}

/// What an invocation did (the function's response, and a log line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    /// True for a CloudWatch Logs control message (nothing to do).
    pub control_message: bool,
    /// Records matched against the rules.
    pub events_processed: u64,
    /// Records skipped (not JSON, not CloudTrail).
    pub events_skipped: u64,
    /// Alerts produced.
    pub alerts: usize,
    /// Alerts SNS accepted.
    pub alerts_published: usize,
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
        "{failed} of {total} alert(s) could not be published to SNS (first: {first_reason}); failing so Lambda retries the batch"
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

    let fifo = is_fifo_topic(&config.alert_topic_arn);
    let messages: Vec<SnsMessage> = outcome
        .alerts
        .iter()
        .map(|a| SnsMessage::for_alert(a, fifo))
        .collect();
    let report = if messages.is_empty() {
        PublishReport::default()
    } else {
        alerts.publish(&messages).await
    };
    for failure in &report.failures {
        let message = messages.iter().find(|m| m.alert_id == failure.alert_id);
        tracing::error!(
            alert_id = %failure.alert_id,
            rule = message.map_or("?", |m| m.rule.as_str()),
            event_id = message.map_or("?", |m| m.event_id.as_str()),
            reason = %failure.reason,
            "alert not published"
        );
    }

    let delivery = DeliveryCounts {
        published: report.published as u64,
        failed: report.failures.len() as u64,
    };
    let metrics_error = metrics.put(&metric_points(&outcome, delivery)).await.err();
    if let Some(err) = &metrics_error {
        tracing::error!(error = %err, "metrics not sent (alerts are unaffected)");
    }

    let summary = InvocationSummary {
        control_message: false,
        events_processed: outcome.events_processed,
        events_skipped: outcome.events_skipped(),
        alerts: messages.len(),
        alerts_published: report.published,
        metrics_error,
    };
    tracing::info!(
        events_processed = summary.events_processed,
        events_skipped = summary.events_skipped,
        alerts = summary.alerts,
        alerts_published = summary.alerts_published,
        "batch done"
    );
    match report.failures.first() {
        None => Ok(summary),
        Some(first) => Err(InvocationError::Publish {
            failed: report.failures.len(),
            total: messages.len(),
            first_reason: first.reason.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
