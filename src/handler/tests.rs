//! Invocation semantics with fake sinks: what is published, counted and failed, and
//! that every invocation reconciles (read = processed + skipped, alerts = published +
//! failed).

use std::cell::RefCell;

use serde_json::json;

use super::*;
use crate::alert::Alert;
use crate::config::MetricsMode;
use crate::delivery::MetricsError;
use crate::ingest::{AwsLogsData, DecodeLimits, SubscriptionBuilder};
use crate::metrics::MetricPoint;

#[derive(Default)]
struct FakeSns {
    published: RefCell<Vec<Alert>>,
    /// Alerts of this rule fail with a reason.
    fail_rule: Option<&'static str>,
    /// Alerts of this event id get no answer at all.
    forget_event: Option<&'static str>,
}

impl AlertSink for FakeSns {
    async fn publish(&self, alerts: &[Alert]) -> DeliveryReport {
        let mut report = DeliveryReport::unconfirmed(alerts.len());
        for (index, alert) in alerts.iter().enumerate() {
            if Some(alert.rule.as_str()) == self.fail_rule {
                report.fail(index, "InternalError: try later");
            } else if Some(alert.event.event_id.as_str()) == self.forget_event {
                continue;
            } else {
                report.confirm(index);
                self.published.borrow_mut().push(alert.clone());
            }
        }
        report
    }
}

#[derive(Default)]
struct FakeMetrics {
    points: RefCell<Vec<MetricPoint>>,
    fail: bool,
}

impl MetricsSink for FakeMetrics {
    async fn put(&self, points: &[MetricPoint]) -> Result<(), MetricsError> {
        if self.fail {
            return Err(MetricsError {
                sent: 0,
                total: points.len(),
                reason: "cloudwatch unreachable".into(),
            });
        }
        self.points.borrow_mut().extend_from_slice(points);
        Ok(())
    }
}

/// The three core rules of `tests/fixtures/rules` (the built-in pack grows; these tests
/// are about invocation semantics).
fn core_rules() -> RuleSet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    RuleSet::compile(&crate::rules::read_rule_dir(&dir).unwrap()).unwrap()
}

fn config(topic: &str) -> Config {
    Config {
        alert_topic_arn: topic.into(),
        metrics_namespace: "Trailwatch".into(),
        metrics_mode: MetricsMode::Api,
        limits: DecodeLimits::default(),
        rules_dir: None,
    }
}

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:alerts";

fn envelope(messages: &[String]) -> SubscriptionEnvelope {
    SubscriptionBuilder::data_message()
        .messages(messages.iter().cloned())
        .envelope()
}

/// Asserts the two reconciliation identities on the summary and on the metrics.
fn assert_reconciles(summary: &InvocationSummary, metrics: &FakeMetrics) {
    assert_eq!(
        summary.events_read,
        summary.events_processed + summary.events_skipped
    );
    assert_eq!(
        summary.alerts,
        summary.alerts_published + summary.alerts_failed
    );
    assert_eq!(
        point(metrics, "EventsRead"),
        point(metrics, "EventsProcessed") + point(metrics, "EventsSkipped")
    );
    assert_eq!(
        point(metrics, "Alerts"),
        point(metrics, "AlertsPublished") + point(metrics, "PublishFailures")
    );
}

fn stop_logging(event_id: &str) -> String {
    json!({
        "eventVersion": "1.09", "eventID": event_id, "eventName": "StopLogging",
        "eventSource": "cloudtrail.amazonaws.com", "eventTime": "2026-11-01T10:00:00Z",
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "bob", "accountId": "111122223333"},
        "requestParameters": {"name": "management-events"}, "responseElements": null
    })
    .to_string()
}

fn point(metrics: &FakeMetrics, name: &str) -> f64 {
    metrics
        .points
        .borrow()
        .iter()
        .find(|p| p.name == name && p.dimensions.is_empty())
        .map_or(-1.0, |p| p.value)
}

#[tokio::test]
async fn good_records_alert_and_bad_records_are_counted() {
    let rules = core_rules();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope(&[stop_logging("e-1"), "not json".into(), stop_logging("e-2")]);
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert_eq!((summary.events_processed, summary.events_skipped), (2, 1));
    assert_eq!((summary.alerts, summary.alerts_published), (2, 2));
    assert_reconciles(&summary, &metrics);
    let published = sns.published.borrow();
    assert!(
        published
            .iter()
            .all(|a| a.rule == "cloudtrail-logging-changed")
    );
    assert_eq!(point(&metrics, "EventsSkipped"), 1.0);
    assert_eq!(point(&metrics, "AlertsPublished"), 2.0);
    assert_eq!(point(&metrics, "PublishFailures"), 0.0);
}

#[tokio::test]
async fn an_alert_the_sink_never_confirms_fails_the_invocation() {
    let rules = core_rules();
    let sns = FakeSns {
        forget_event: Some("e-2"),
        ..FakeSns::default()
    };
    let metrics = FakeMetrics::default();
    let event = envelope(&[stop_logging("e-1"), stop_logging("e-2"), "{}".into()]);
    let err = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvocationError::Publish {
                failed: 1,
                total: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(point(&metrics, "AlertsPublished"), 1.0);
    assert_eq!(point(&metrics, "PublishFailures"), 1.0);
    assert_eq!(point(&metrics, "EventsRead"), 3.0);
    assert_eq!(
        point(&metrics, "Alerts"),
        point(&metrics, "AlertsPublished") + point(&metrics, "PublishFailures")
    );
}

#[tokio::test]
async fn publish_failure_fails_the_invocation_and_is_counted() {
    let rules = core_rules();
    let sns = FakeSns {
        fail_rule: Some("cloudtrail-logging-changed"),
        ..FakeSns::default()
    };
    let metrics = FakeMetrics::default();
    let event = envelope(&[stop_logging("e-1")]);
    let err = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvocationError::Publish {
                failed: 1,
                total: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.error_type(), "PublishFailed");
    assert_eq!(point(&metrics, "PublishFailures"), 1.0);
}

#[tokio::test]
async fn metrics_failure_does_not_fail_the_invocation() {
    let rules = core_rules();
    let sns = FakeSns::default();
    let metrics = FakeMetrics {
        fail: true,
        ..FakeMetrics::default()
    };
    let event = envelope(&[stop_logging("e-1")]);
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert_eq!(summary.alerts_published, 1);
    assert_eq!(
        summary.metrics_error.as_deref(),
        Some("0 of 9 metric point(s) sent: cloudwatch unreachable")
    );
}

#[tokio::test]
async fn control_message_publishes_nothing() {
    let rules = core_rules();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = SubscriptionBuilder::control_message().envelope();
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert!(summary.control_message);
    assert!(sns.published.borrow().is_empty());
    assert!(metrics.points.borrow().is_empty());
}

#[tokio::test]
async fn undecodable_payload_fails_with_a_clear_error() {
    let rules = core_rules();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = SubscriptionEnvelope {
        awslogs: AwsLogsData {
            data: "%%%not base64".into(),
        },
    };
    let err = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "BadPayload");
    assert!(err.to_string().contains("base64"), "{err}");
}
