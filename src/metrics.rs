//! Metrics: what one invocation counts, as plain data, and its CloudWatch Embedded
//! Metric Format (EMF) rendering.
//!
//! Building the list is pure so it is unit-tested here; [`crate::aws`] only turns the
//! points into `PutMetricData` calls. Metric names and dimensions are a public contract
//! (alarms and dashboards depend on them): `Matches` by `Rule` and by `Severity`,
//! `EventsRead` (= `EventsProcessed` + `EventsSkipped`) and `Alerts`
//! (= `AlertsPublished` + `PublishFailures` + `Duplicates`), so a reader can reconcile
//! every invocation,
//! `Suppressed` (matches an exclusion or a dedup window dropped), in total and by `Rule`,
//! `Duplicates` (alerts an earlier try already published) and `StateErrors`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::pipeline::Outcome;

/// The default CloudWatch namespace.
pub const DEFAULT_NAMESPACE: &str = "Trailwatch";

/// One metric value with its dimensions (all metrics are counts).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Metric name, e.g. `Matches`.
    pub name: &'static str,
    /// Dimension name/value pairs (empty for pipeline-wide counts).
    pub dimensions: Vec<(&'static str, String)>,
    /// The count.
    pub value: f64,
}

impl MetricPoint {
    fn count(name: &'static str, value: u64) -> MetricPoint {
        MetricPoint {
            name,
            dimensions: Vec::new(),
            value: value as f64,
        }
    }
}

/// How delivery of an invocation's alerts went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Alerts SNS accepted.
    pub published: u64,
    /// Alerts that could not be published after retries.
    pub failed: u64,
    /// Alerts not published because an earlier try or another instance already had.
    pub duplicates: u64,
    /// State store calls that failed (the invocation then fails and is retried).
    pub state_errors: u64,
}

/// The metric points for one invocation.
///
/// Pipeline-wide counts are always sent (zeros included, so alarms on missing data
/// behave); `Matches` is sent once per rule and once per severity that matched.
pub fn metric_points(outcome: &Outcome, delivery: DeliveryCounts) -> Vec<MetricPoint> {
    let mut points = vec![
        MetricPoint::count("EventsRead", outcome.events_read()),
        MetricPoint::count("EventsProcessed", outcome.events_processed),
        MetricPoint::count("EventsSkipped", outcome.events_skipped()),
        MetricPoint::count(
            "Alerts",
            delivery.published + delivery.failed + delivery.duplicates,
        ),
        MetricPoint::count("AlertsPublished", delivery.published),
        MetricPoint::count("PublishFailures", delivery.failed),
        MetricPoint::count("Duplicates", delivery.duplicates),
        MetricPoint::count("StateErrors", delivery.state_errors),
    ];
    let matched = outcome.matched();
    let mut per_rule: BTreeMap<&str, u64> = BTreeMap::new();
    let mut per_severity = BTreeMap::new();
    for (rule, severity) in &matched {
        *per_rule.entry(rule).or_default() += 1;
        *per_severity.entry(*severity).or_insert(0u64) += 1;
    }
    for (rule, count) in per_rule {
        points.push(MetricPoint {
            name: "Matches",
            dimensions: vec![("Rule", rule.to_owned())],
            value: count as f64,
        });
    }
    let mut suppressed: BTreeMap<&str, u64> = BTreeMap::new();
    for rule in outcome
        .suppressed
        .iter()
        .map(|(rule, _)| rule)
        .chain(&outcome.deduplicated)
    {
        *suppressed.entry(rule.as_str()).or_default() += 1;
    }
    points.push(MetricPoint::count(
        "Suppressed",
        (outcome.suppressed.len() + outcome.deduplicated.len()) as u64,
    ));
    for (rule, count) in suppressed {
        points.push(MetricPoint {
            name: "Suppressed",
            dimensions: vec![("Rule", rule.to_owned())],
            value: count as f64,
        });
    }
    for (severity, count) in per_severity {
        points.push(MetricPoint {
            name: "Matches",
            dimensions: vec![("Severity", severity.as_str().to_owned())],
            value: count as f64,
        });
    }
    points
}

/// Renders points as EMF log lines (one JSON object per line), for `METRICS_MODE=emf`.
/// Points that share dimensions share a line.
pub fn emf_lines(namespace: &str, points: &[MetricPoint], timestamp_millis: i64) -> Vec<String> {
    let mut groups: BTreeMap<Vec<(&'static str, String)>, Vec<&MetricPoint>> = BTreeMap::new();
    for point in points {
        groups
            .entry(point.dimensions.clone())
            .or_default()
            .push(point);
    }
    groups
        .into_iter()
        .map(|(dimensions, points)| {
            let dimension_names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
            let metrics: Vec<Value> = points
                .iter()
                .map(|p| json!({"Name": p.name, "Unit": "Count"}))
                .collect();
            let mut line = Map::new();
            line.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_millis,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimension_names],
                        "Metrics": metrics,
                    }],
                }),
            );
            for (name, value) in &dimensions {
                line.insert((*name).into(), Value::String(value.clone()));
            }
            for point in points {
                line.insert(point.name.into(), json!(point.value));
            }
            Value::Object(line).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::rules::{Rule, Severity};

    fn outcome_with_alerts(rules: &[(&str, Severity)]) -> Outcome {
        let alerts = rules
            .iter()
            .map(|(name, severity)| {
                let rule = Rule::for_tests(name, "t", *severity);
                Alert::new(&rule, json!({"eventName": "X", "eventSource": "s"}))
            })
            .collect();
        Outcome {
            alerts,
            events_processed: 10,
            ..Outcome::default()
        }
    }

    fn find<'a>(
        points: &'a [MetricPoint],
        name: &str,
        dims: &[(&str, &str)],
    ) -> Option<&'a MetricPoint> {
        points.iter().find(|p| {
            p.name == name
                && p.dimensions.len() == dims.len()
                && p.dimensions
                    .iter()
                    .zip(dims)
                    .all(|((a, b), (c, d))| a == c && b == d)
        })
    }

    #[test]
    fn points_count_matches_per_rule_and_severity() {
        let outcome = outcome_with_alerts(&[
            ("a", Severity::High),
            ("a", Severity::High),
            ("b", Severity::Low),
        ]);
        let points = metric_points(
            &outcome,
            DeliveryCounts {
                published: 2,
                failed: 1,
                duplicates: 1,
                state_errors: 0,
            },
        );
        assert_eq!(
            find(&points, "Matches", &[("Rule", "a")]).unwrap().value,
            2.0
        );
        assert_eq!(
            find(&points, "Matches", &[("Rule", "b")]).unwrap().value,
            1.0
        );
        assert_eq!(
            find(&points, "Matches", &[("Severity", "high")])
                .unwrap()
                .value,
            2.0
        );
        assert_eq!(find(&points, "EventsProcessed", &[]).unwrap().value, 10.0);
        assert_eq!(find(&points, "AlertsPublished", &[]).unwrap().value, 2.0);
        assert_eq!(find(&points, "PublishFailures", &[]).unwrap().value, 1.0);
        assert_eq!(find(&points, "EventsSkipped", &[]).unwrap().value, 0.0);
        assert_eq!(find(&points, "EventsRead", &[]).unwrap().value, 10.0);
        assert_eq!(find(&points, "Duplicates", &[]).unwrap().value, 1.0);
        assert_eq!(find(&points, "Alerts", &[]).unwrap().value, 4.0);
    }

    #[test]
    fn quiet_invocation_still_reports_zeros() {
        let points = metric_points(&Outcome::default(), DeliveryCounts::default());
        assert_eq!(points.len(), 9);
        assert!(points.iter().all(|p| p.value == 0.0));
    }

    #[test]
    fn emf_groups_points_by_dimensions() {
        let outcome = outcome_with_alerts(&[("a", Severity::High)]);
        let points = metric_points(
            &outcome,
            DeliveryCounts {
                published: 1,
                ..DeliveryCounts::default()
            },
        );
        let lines = emf_lines("Trailwatch", &points, 1_700_000_000_000);
        assert_eq!(lines.len(), 3);
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let pipeline = parsed
            .iter()
            .find(|v| v.get("EventsProcessed").is_some())
            .unwrap();
        assert_eq!(
            pipeline["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Trailwatch"
        );
        assert_eq!(
            pipeline["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(
            pipeline["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
        let by_rule = parsed.iter().find(|v| v.get("Rule").is_some()).unwrap();
        assert_eq!(by_rule["Rule"], "a");
        assert_eq!(by_rule["Matches"], 1.0);
        assert_eq!(
            by_rule["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Rule"]])
        );
        assert_eq!(by_rule["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
