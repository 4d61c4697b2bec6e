//! Invocation semantics with fake sinks: what is published, counted and failed.

use std::cell::RefCell;
use std::io::Write;

use base64::Engine as _;
use serde_json::json;

use super::*;
use crate::config::MetricsMode;
use crate::ingest::{AwsLogsData, DecodeLimits};

#[derive(Default)]
struct FakeSns {
    published: RefCell<Vec<SnsMessage>>,
    fail_rule: Option<&'static str>,
}

impl AlertSink for FakeSns {
    async fn publish(&self, messages: &[SnsMessage]) -> PublishReport {
        let mut report = PublishReport::default();
        for message in messages {
            if Some(message.rule.as_str()) == self.fail_rule {
                report.failures.push(PublishFailure {
                    alert_id: message.alert_id.clone(),
                    reason: "InternalError: try later".into(),
                });
            } else {
                report.published += 1;
                self.published.borrow_mut().push(message.clone());
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
    async fn put(&self, points: &[MetricPoint]) -> Result<(), String> {
        if self.fail {
            return Err("cloudwatch unreachable".into());
        }
        self.points.borrow_mut().extend_from_slice(points);
        Ok(())
    }
}

fn config(topic: &str) -> Config {
    Config {
        alert_topic_arn: topic.into(),
        metrics_namespace: "Trailwatch".into(),
        metrics_mode: MetricsMode::Api,
        limits: DecodeLimits::default(),
    }
}

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:alerts";

fn envelope(message_type: &str, messages: &[String]) -> SubscriptionEnvelope {
    let events: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("3719{i:04}"), "timestamp": 1_700_000_000_000u64, "message": m}))
        .collect();
    let data = json!({
        "messageType": message_type, "owner": "111122223333", "logGroup": "trail",
        "logStream": "s", "subscriptionFilters": ["trailwatch"], "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data.to_string().as_bytes()).unwrap();
    SubscriptionEnvelope {
        awslogs: AwsLogsData {
            data: base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap()),
        },
    }
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
    let rules = RuleSet::builtin().unwrap();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope(
        "DATA_MESSAGE",
        &[stop_logging("e-1"), "not json".into(), stop_logging("e-2")],
    );
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert_eq!((summary.events_processed, summary.events_skipped), (2, 1));
    assert_eq!((summary.alerts, summary.alerts_published), (2, 2));
    let published = sns.published.borrow();
    assert!(
        published
            .iter()
            .all(|m| m.rule == "cloudtrail-logging-changed")
    );
    assert_eq!(published[0].group_id, None);
    assert_eq!(point(&metrics, "EventsSkipped"), 1.0);
    assert_eq!(point(&metrics, "AlertsPublished"), 2.0);
    assert_eq!(point(&metrics, "PublishFailures"), 0.0);
}

#[tokio::test]
async fn fifo_topics_get_group_and_deduplication_ids() {
    let rules = RuleSet::builtin().unwrap();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope("DATA_MESSAGE", &[stop_logging("e-1")]);
    handle_event(
        &rules,
        &config(&format!("{TOPIC}.fifo")),
        &event,
        &sns,
        &metrics,
    )
    .await
    .unwrap();
    let published = sns.published.borrow();
    assert_eq!(
        published[0].group_id.as_deref(),
        Some("cloudtrail-logging-changed")
    );
    assert!(published[0].deduplication_id.is_some());
}

#[tokio::test]
async fn publish_failure_fails_the_invocation_and_is_counted() {
    let rules = RuleSet::builtin().unwrap();
    let sns = FakeSns {
        fail_rule: Some("cloudtrail-logging-changed"),
        ..FakeSns::default()
    };
    let metrics = FakeMetrics::default();
    let event = envelope("DATA_MESSAGE", &[stop_logging("e-1")]);
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
    let rules = RuleSet::builtin().unwrap();
    let sns = FakeSns::default();
    let metrics = FakeMetrics {
        fail: true,
        ..FakeMetrics::default()
    };
    let event = envelope("DATA_MESSAGE", &[stop_logging("e-1")]);
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert_eq!(summary.alerts_published, 1);
    assert_eq!(
        summary.metrics_error.as_deref(),
        Some("cloudwatch unreachable")
    );
}

#[tokio::test]
async fn control_message_publishes_nothing() {
    let rules = RuleSet::builtin().unwrap();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope(
        "CONTROL_MESSAGE",
        &["CWL CONTROL MESSAGE: Checking health of destination".into()],
    );
    let summary = handle_event(&rules, &config(TOPIC), &event, &sns, &metrics)
        .await
        .unwrap();
    assert!(summary.control_message);
    assert!(sns.published.borrow().is_empty());
    assert!(metrics.points.borrow().is_empty());
}

#[tokio::test]
async fn undecodable_payload_fails_with_a_clear_error() {
    let rules = RuleSet::builtin().unwrap();
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
