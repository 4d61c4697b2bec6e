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
use crate::state::{MemoryStore, StateError, StateStore};

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
        ..Config::from_lookup(|name| (name == "ALERT_TOPIC_ARN").then(|| TOPIC.to_owned())).unwrap()
    }
}

const NOW: i64 = 1_800_000_000_000;

fn memory() -> State<MemoryStore> {
    State::new(MemoryStore::new())
}

/// A store that is down.
struct DownStore;

impl StateStore for DownStore {
    async fn get(&self, key: &str) -> Result<Option<crate::state::Stored>, StateError> {
        Err(down("get", key))
    }
    async fn put(
        &self,
        key: &str,
        _: &str,
        _: i64,
        _: Option<u64>,
    ) -> Result<crate::state::Written, StateError> {
        Err(down("put", key))
    }
    async fn delete(&self, key: &str, _: u64) -> Result<crate::state::Written, StateError> {
        Err(down("delete", key))
    }
}

fn down(operation: &'static str, key: &str) -> StateError {
    StateError::Unavailable {
        operation,
        key: key.to_owned(),
        reason: "ResourceNotFoundException: table not found".into(),
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
        summary.alerts_published + summary.alerts_failed + summary.alerts_duplicate
    );
    assert_eq!(
        point(metrics, "EventsRead"),
        point(metrics, "EventsProcessed") + point(metrics, "EventsSkipped")
    );
    assert_eq!(
        point(metrics, "Alerts"),
        point(metrics, "AlertsPublished")
            + point(metrics, "PublishFailures")
            + point(metrics, "Duplicates")
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
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
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
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
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
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
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
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
    .await
    .unwrap();
    assert_eq!(summary.alerts_published, 1);
    assert_eq!(
        summary.metrics_error.as_deref(),
        Some("0 of 11 metric point(s) sent: cloudwatch unreachable")
    );
}

#[tokio::test]
async fn control_message_publishes_nothing() {
    let rules = core_rules();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = SubscriptionBuilder::control_message().envelope();
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
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
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &memory(),
        Clock::at(NOW),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "BadPayload");
    assert!(err.to_string().contains("base64"), "{err}");
}

#[tokio::test]
async fn a_retry_publishes_only_what_is_missing_and_counts_the_rest_as_duplicates() {
    let rules = core_rules();
    let state = memory();
    let event = envelope(&[stop_logging("e-1"), stop_logging("e-2")]);
    let flaky = FakeSns {
        forget_event: Some("e-2"),
        ..FakeSns::default()
    };
    let metrics = FakeMetrics::default();
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &flaky,
        &metrics,
        &state,
        Clock::at(NOW),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "PublishFailed");
    assert_eq!(flaky.published.borrow().len(), 1);

    // Lambda retries the same batch: e-2's claim was released, e-1's is published.
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW + 60_000),
    )
    .await
    .unwrap();
    let ids: Vec<String> = sns
        .published
        .borrow()
        .iter()
        .map(|a| a.event.event_id.clone())
        .collect();
    assert_eq!(ids, ["e-2"]);
    assert_eq!(
        (
            summary.alerts,
            summary.alerts_published,
            summary.alerts_duplicate
        ),
        (2, 1, 1)
    );
    assert_reconciles(&summary, &metrics);
    assert_eq!(point(&metrics, "Duplicates"), 1.0);

    // Subscription redelivery a day later: nothing goes out again.
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW + 86_400_000),
    )
    .await
    .unwrap();
    assert!(sns.published.borrow().is_empty());
    assert_eq!(summary.alerts_duplicate, 2);
}

#[tokio::test]
async fn an_alert_another_invocation_holds_fails_this_one_without_publishing() {
    let rules = core_rules();
    let state = memory();
    let event = envelope(&[stop_logging("e-1")]);
    let alert_id = {
        let record: serde_json::Value = serde_json::from_str(&stop_logging("e-1")).unwrap();
        Alert::new(&rules.evaluate(&record).matched[0].clone(), record).dedup_key()
    };
    let claims = Claims {
        lease_ms: 60_000,
        retention_secs: 86_400,
    };
    assert!(matches!(
        claims.claim(&state.store, &alert_id, NOW).await,
        Ok(Claim::Mine(_))
    ));
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW + 1_000),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("another invocation"), "{err}");
    assert!(sns.published.borrow().is_empty());
}

#[tokio::test]
async fn an_unreachable_state_table_fails_the_invocation_and_publishes_nothing() {
    let rules = core_rules();
    let state = State::new(DownStore);
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope(&[stop_logging("e-1")]);
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "StateUnavailable");
    assert!(err.to_string().contains("table not found"), "{err}");
    assert!(sns.published.borrow().is_empty());
    assert_eq!(point(&metrics, "StateErrors"), 1.0);
    assert_eq!(point(&metrics, "AlertsPublished"), 0.0);
}

#[tokio::test]
async fn a_batch_without_matches_touches_no_state() {
    let rules = core_rules();
    let state = State::new(DownStore);
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let quiet = json!({"eventVersion": "1.09", "eventID": "q", "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com", "eventTime": "2026-11-01T10:00:00Z",
        "userIdentity": {"type": "IAMUser"}})
    .to_string();
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &envelope(&[quiet]),
        &sns,
        &metrics,
        &state,
        Clock::at(NOW),
    )
    .await
    .unwrap();
    assert_eq!((summary.events_processed, summary.alerts), (1, 0));
}

/// Memory, but the first write marking an alert published fails (after SNS took it).
#[derive(Default)]
struct SettleFailsOnce {
    inner: MemoryStore,
    failed: std::cell::Cell<bool>,
}

impl StateStore for SettleFailsOnce {
    async fn get(&self, key: &str) -> Result<Option<crate::state::Stored>, StateError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> Result<crate::state::Written, StateError> {
        if data.contains("\"published\":true") && !self.failed.replace(true) {
            return Err(down("put", key));
        }
        self.inner.put(key, data, expires_at, expected).await
    }
    async fn delete(&self, key: &str, expected: u64) -> Result<crate::state::Written, StateError> {
        self.inner.delete(key, expected).await
    }
}

#[tokio::test]
async fn an_alert_published_but_not_marked_is_never_sent_again_by_this_process() {
    let rules = core_rules();
    let state = State::new(SettleFailsOnce::default());
    let event = envelope(&[stop_logging("e-1")]);
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW),
    )
    .await
    .unwrap();
    assert_eq!(summary.alerts_published, 1);
    assert_eq!(point(&metrics, "StateErrors"), 1.0);
    // Redelivered after the claim's lease ran out: still not sent twice, and now marked.
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let later = NOW + 10 * 60_000;
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(later),
    )
    .await
    .unwrap();
    assert!(sns.published.borrow().is_empty());
    assert_eq!(summary.alerts_duplicate, 1);
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(later + 1),
    )
    .await
    .unwrap();
    assert!(
        sns.published.borrow().is_empty(),
        "the claim is marked published now"
    );
    assert_eq!(point(&metrics, "StateErrors"), 0.0);
}

#[tokio::test]
async fn the_same_event_twice_in_one_batch_is_published_once() {
    let rules = core_rules();
    let state = memory();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let event = envelope(&[stop_logging("e-1"), stop_logging("e-1")]);
    let summary = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW),
    )
    .await
    .unwrap();
    assert_eq!(sns.published.borrow().len(), 1);
    assert_eq!(
        (
            summary.alerts,
            summary.alerts_published,
            summary.alerts_duplicate
        ),
        (2, 1, 1)
    );
    assert_reconciles(&summary, &metrics);
}

/// Memory, but releasing a claim fails.
#[derive(Default)]
struct ReleaseFails(MemoryStore);

impl StateStore for ReleaseFails {
    async fn get(&self, key: &str) -> Result<Option<crate::state::Stored>, StateError> {
        self.0.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        data: &str,
        expires_at: i64,
        expected: Option<u64>,
    ) -> Result<crate::state::Written, StateError> {
        self.0.put(key, data, expires_at, expected).await
    }
    async fn delete(&self, key: &str, _: u64) -> Result<crate::state::Written, StateError> {
        Err(down("delete", key))
    }
}

#[tokio::test]
async fn a_claim_outlasts_the_invocation_deadline() {
    let rules = core_rules();
    let state = State::new(ReleaseFails::default());
    let event = envelope(&[stop_logging("e-1")]);
    let failing = FakeSns {
        fail_rule: Some("cloudtrail-logging-changed"),
        ..FakeSns::default()
    };
    // A 15-minute invocation whose publish fails and whose release fails too: its claim
    // stands until its deadline (plus a margin), not just STATE_LEASE's 60 s.
    let clock = Clock {
        now_ms: NOW,
        deadline_ms: Some(NOW + 15 * 60_000),
    };
    let metrics = FakeMetrics::default();
    handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &failing,
        &metrics,
        &state,
        clock,
    )
    .await
    .unwrap_err();
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    let err = handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW + 120_000),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("another invocation"), "{err}");
    assert!(sns.published.borrow().is_empty());
    // After the deadline and its margin, a retry takes the alert over.
    let (sns, metrics) = (FakeSns::default(), FakeMetrics::default());
    handle_event(
        &rules,
        &config(TOPIC),
        &event,
        &sns,
        &metrics,
        &state,
        Clock::at(NOW + 16 * 60_000),
    )
    .await
    .unwrap();
    assert_eq!(sns.published.borrow().len(), 1);
}
