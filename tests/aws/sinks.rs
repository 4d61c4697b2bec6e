//! The real SNS and CloudWatch sinks against moto, read back through SQS and CloudWatch.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use serde_json::Value;
use trailwatch::alert::Alert;
use trailwatch::aws::{CloudWatchMetrics, DynamoStore, SnsPublisher};
use trailwatch::config::{Config, MessageStructure};
use trailwatch::delivery::{AlertSink, MetricsSink};
use trailwatch::handler::{Clock, State, handle_event};
use trailwatch::ingest::SubscriptionEnvelope;
use trailwatch::metrics::{DeliveryCounts, metric_points};
use trailwatch::pipeline::Outcome;

use crate::common::{
    attribute, core_rules, fixture_event, moto_endpoint, sdk_config, sorted_attribute,
    subscription_event, topic_with_queue, unique_name,
};

fn alerts_for(fixtures: &[&str]) -> Vec<Alert> {
    let rules = core_rules();
    fixtures
        .iter()
        .flat_map(|name| {
            let record = fixture_event(name);
            rules
                .matching(&record)
                .into_iter()
                .map(move |rule| Alert::new(rule, record.clone()))
        })
        .collect()
}

#[tokio::test]
async fn alerts_arrive_with_subject_body_and_filterable_attributes() {
    let Some(_) = moto_endpoint("alerts_arrive_with_subject_body_and_filterable_attributes") else {
        return;
    };
    let wiring = topic_with_queue(false).await;
    let alerts = alerts_for(&[
        "console-login-iam-user-no-mfa.json",
        "update-trail-invalid-cwl-role.json",
    ]);
    assert_eq!(alerts.len(), 2, "fixtures should raise one alert each");
    let publisher = SnsPublisher::from_conf(&sdk_config().await, &wiring.topic_arn);

    let report = publisher.publish(&alerts).await;
    assert_eq!(report.published(), 2, "{report:?}");

    let envelopes = wiring.receive(2).await;
    assert_eq!(envelopes.len(), 2);
    for alert in &alerts {
        let envelope = envelopes
            .iter()
            .find(|e| attribute(e, "rule") == Some(alert.rule.as_str()))
            .unwrap_or_else(|| panic!("no message for {}", alert.rule));
        assert_eq!(envelope["Subject"], Value::from(alert.subject()));
        assert_eq!(envelope["Message"], Value::from(alert.text_body()));
        assert_eq!(
            attribute(envelope, "severity"),
            Some(alert.severity.as_str())
        );
        assert_eq!(
            attribute(envelope, "account"),
            Some(alert.event.account_id.as_str())
        );
        assert_eq!(
            attribute(envelope, "region"),
            Some(alert.event.region.as_str())
        );
        assert_eq!(
            attribute(envelope, "event_name"),
            Some(alert.event.event_name.as_str())
        );
        assert_eq!(
            attribute(envelope, "alert_id"),
            Some(alert.dedup_key().as_str())
        );
        let body = envelope["Message"].as_str().unwrap();
        assert!(
            body.contains(&format!("#/events/{}", alert.event.event_id)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn many_alerts_go_out_in_batches_of_ten_and_all_arrive() {
    let Some(_) = moto_endpoint("many_alerts_go_out_in_batches_of_ten_and_all_arrive") else {
        return;
    };
    let wiring = topic_with_queue(false).await;
    let base = alerts_for(&["stop-logging-success.json"]).remove(0);
    let alerts: Vec<Alert> = (0..23)
        .map(|i| {
            let mut alert = base.clone();
            alert.event.event_id = format!("evt-{i}");
            alert
        })
        .collect();
    let report = SnsPublisher::from_conf(&sdk_config().await, &wiring.topic_arn)
        .publish(&alerts)
        .await;
    assert_eq!((report.published(), report.failed()), (23, 0));
    let mut ids = sorted_attribute(&wiring.receive(23).await, "alert_id");
    ids.dedup();
    assert_eq!(ids.len(), 23);
}

#[tokio::test]
async fn fifo_topic_accepts_grouped_deduplicated_messages() {
    let Some(_) = moto_endpoint("fifo_topic_accepts_grouped_deduplicated_messages") else {
        return;
    };
    let wiring = topic_with_queue(true).await;
    let alert = alerts_for(&["stop-logging-success.json"]).remove(0);
    let publisher = SnsPublisher::from_conf(&sdk_config().await, &wiring.topic_arn);
    // A retried invocation publishes the same alert again; the deduplication id
    // (rule + event id) makes SNS FIFO drop the second copy.
    for _ in 0..2 {
        let report = publisher.publish(std::slice::from_ref(&alert)).await;
        assert_eq!(report.published(), 1, "{report:?}");
    }
    let envelopes = wiring.receive(1).await;
    assert_eq!(envelopes.len(), 1, "{envelopes:#?}");
    assert_eq!(
        attribute(&envelopes[0], "rule"),
        Some("cloudtrail-logging-changed")
    );
}

#[tokio::test]
async fn unreachable_sns_reports_every_alert_as_failed() {
    let Some(_) = moto_endpoint("unreachable_sns_reports_every_alert_as_failed") else {
        return;
    };
    let config = sdk_config().await;
    let client = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    let publisher = SnsPublisher::new(client, "arn:aws:sns:us-east-1:123456789012:nowhere");
    let alerts = alerts_for(&[
        "stop-logging-success.json",
        "console-login-root-no-mfa.json",
    ]);
    let report = publisher.publish(&alerts).await;
    assert_eq!(report.published(), 0);
    assert_eq!(report.failed(), alerts.len());
}

async fn metric_sum(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: Vec<Dimension>,
) -> f64 {
    let now = SystemTime::now();
    let stats = cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(dimensions))
        .start_time(DateTime::from(now - Duration::from_secs(600)))
        .end_time(DateTime::from(now + Duration::from_secs(600)))
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics");
    stats.datapoints().iter().filter_map(|d| d.sum()).sum()
}

#[tokio::test]
async fn metrics_are_readable_with_list_metrics_and_statistics() {
    let Some(_) = moto_endpoint("metrics_are_readable_with_list_metrics_and_statistics") else {
        return;
    };
    let namespace = unique_name("TrailwatchTest");
    let config = sdk_config().await;
    let outcome = Outcome {
        alerts: alerts_for(&[
            "console-login-iam-user-no-mfa.json",
            "console-login-root-no-mfa.json",
            "stop-logging-success.json",
        ]),
        events_processed: 7,
        ..Outcome::default()
    };
    let points = metric_points(
        &outcome,
        DeliveryCounts {
            published: 3,
            ..DeliveryCounts::default()
        },
    );
    CloudWatchMetrics::from_conf(&config, &namespace)
        .put(&points)
        .await
        .expect("PutMetricData");

    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let listed = cloudwatch
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .expect("ListMetrics");
    let mut names: Vec<String> = listed
        .metrics()
        .iter()
        .map(|m| {
            let dims: Vec<String> = m
                .dimensions()
                .iter()
                .map(|d| format!("{}={}", d.name().unwrap_or(""), d.value().unwrap_or("")))
                .collect();
            format!("{}[{}]", m.metric_name().unwrap_or(""), dims.join(","))
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "AlertsPublished[]",
            "Alerts[]",
            "Duplicates[]",
            "EventsProcessed[]",
            "EventsRead[]",
            "EventsSkipped[]",
            "Matches[Rule=cloudtrail-logging-changed]",
            "Matches[Rule=console-login-without-mfa]",
            "Matches[Severity=high]",
            "PublishFailures[]",
            "StateErrors[]",
            "Suppressed[]",
        ]
    );
    let by_rule = vec![
        Dimension::builder()
            .name("Rule")
            .value("console-login-without-mfa")
            .build(),
    ];
    assert_eq!(
        metric_sum(&cloudwatch, &namespace, "Matches", by_rule).await,
        2.0
    );
    assert_eq!(
        metric_sum(&cloudwatch, &namespace, "EventsProcessed", vec![]).await,
        7.0
    );
}

#[tokio::test]
async fn a_batch_with_a_bad_record_still_delivers_the_good_ones() {
    let Some(_) = moto_endpoint("a_batch_with_a_bad_record_still_delivers_the_good_ones") else {
        return;
    };
    let wiring = topic_with_queue(false).await;
    let namespace = unique_name("TrailwatchTest");
    let sdk = sdk_config().await;
    let table = crate::state::state_table().await;
    let config = Config::from_lookup(|name| match name {
        "ALERT_TOPIC_ARN" => Some(wiring.topic_arn.clone()),
        "METRICS_NAMESPACE" => Some(namespace.clone()),
        "STATE_TABLE" => Some(table.clone()),
        _ => None,
    })
    .expect("config");
    let state = State::new(DynamoStore::from_conf(&sdk, &table));
    let event = subscription_event(&[
        fixture_event("console-login-iam-user-no-mfa.json").to_string(),
        "{\"this is\": not json".to_owned(),
        fixture_event("console-login-sso-assumed-role.json").to_string(),
        fixture_event("stop-logging-access-denied.json").to_string(),
    ]);
    let envelope: SubscriptionEnvelope = serde_json::from_value(event).unwrap();
    let summary = handle_event(
        &core_rules(),
        &config,
        &envelope,
        &SnsPublisher::from_conf(&sdk, &config.alert_topic_arn),
        &CloudWatchMetrics::from_conf(&sdk, &namespace),
        &state,
        Clock::at(now_ms()),
    )
    .await
    .expect("the invocation succeeds");
    assert_eq!(
        (
            summary.events_processed,
            summary.events_skipped,
            summary.alerts_published
        ),
        (3, 1, 2)
    );
    assert_eq!(
        sorted_attribute(&wiring.receive(2).await, "rule"),
        ["cloudtrail-change-failed", "console-login-without-mfa"]
    );
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    assert_eq!(
        metric_sum(&cloudwatch, &namespace, "EventsSkipped", vec![]).await,
        1.0
    );
    // The reconciliation a reader can check in CloudWatch.
    let sum = |name| metric_sum(&cloudwatch, &namespace, name, vec![]);
    assert_eq!(sum("EventsRead").await, 4.0);
    assert_eq!(
        sum("EventsRead").await,
        sum("EventsProcessed").await + sum("EventsSkipped").await
    );
    assert_eq!(
        sum("Alerts").await,
        sum("AlertsPublished").await + sum("PublishFailures").await + sum("Duplicates").await
    );

    // The same batch again (a subscription redelivery): the table remembers both
    // alerts, nothing is published twice.
    let again = handle_event(
        &core_rules(),
        &config,
        &envelope,
        &SnsPublisher::from_conf(&sdk, &config.alert_topic_arn),
        &CloudWatchMetrics::from_conf(&sdk, &namespace),
        &state,
        Clock::at(now_ms()),
    )
    .await
    .expect("the redelivery succeeds");
    assert_eq!((again.alerts_published, again.alerts_duplicate), (0, 2));
    assert!(wiring.receive(0).await.is_empty());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test]
async fn structured_messages_and_routes_reach_each_topic_in_their_form() {
    let Some(_) = moto_endpoint("structured_messages_and_routes_reach_each_topic_in_their_form")
    else {
        return;
    };
    let (main, pager) = (topic_with_queue(false).await, topic_with_queue(false).await);
    let sdk = sdk_config().await;
    let format = trailwatch::aws::MessageFormat {
        structure: MessageStructure::Json,
        chatbot: false,
    };
    let publisher = trailwatch::aws::RoutedPublisher::new(
        SnsPublisher::from_conf(&sdk, &main.topic_arn).with_format(format),
        Some(SnsPublisher::from_conf(&sdk, &pager.topic_arn).with_format(format)),
        None,
        trailwatch::delivery::Routes::parse("high=pager").unwrap(),
    );
    let alerts = alerts_for(&[
        "console-login-iam-user-no-mfa.json",
        "stop-logging-success.json",
    ]);
    let severities: Vec<String> = alerts.iter().map(|a| a.severity.to_string()).collect();
    let report = publisher.publish(&alerts).await;
    assert_eq!(report.published(), 2);
    let expected_pager = severities.iter().filter(|s| *s == "high").count();
    let on_pager = pager.receive(expected_pager).await;
    let on_main = main.receive(2 - expected_pager).await;
    assert_eq!(on_pager.len(), expected_pager);
    assert_eq!(on_main.len(), 2 - expected_pager);
    for envelope in on_pager.iter().chain(&on_main) {
        // SQS subscribers get the JSON alert, not the email text.
        let alert: Value = serde_json::from_str(envelope["Message"].as_str().unwrap())
            .expect("the SQS message is the JSON alert");
        assert!(alert["rule"].is_string());
        assert_eq!(attribute(envelope, "severity"), alert["severity"].as_str());
    }
    for envelope in &on_pager {
        assert_eq!(attribute(envelope, "severity"), Some("high"));
    }
}
