//! CloudWatch metrics: `PutMetricData` (at most 1,000 datums a call) or Embedded Metric
//! Format lines on stdout, which Lambda ships to CloudWatch Logs for free. When a call
//! fails part way, the points not yet sent go out as EMF, so every number arrives once.

use std::time::SystemTime;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::delivery::{MetricsError, MetricsSink};
use crate::metrics::{MetricPoint, emf_lines};

/// CloudWatch's limit on datums per `PutMetricData` call.
const MAX_DATUMS_PER_CALL: usize = 1000;

/// Sends metrics with `PutMetricData`.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
    namespace: String,
}

impl CloudWatchMetrics {
    /// Metrics into `namespace` using `client`.
    pub fn new(client: Client, namespace: impl Into<String>) -> CloudWatchMetrics {
        CloudWatchMetrics {
            client,
            namespace: namespace.into(),
        }
    }

    /// Metrics built from shared SDK configuration.
    pub fn from_conf(
        sdk_config: &aws_types::SdkConfig,
        namespace: impl Into<String>,
    ) -> CloudWatchMetrics {
        CloudWatchMetrics::new(Client::new(sdk_config), namespace)
    }
}

fn datum(point: &MetricPoint, timestamp: DateTime) -> MetricDatum {
    let dimensions = point
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    MetricDatum::builder()
        .metric_name(point.name)
        .set_dimensions(Some(dimensions))
        .value(point.value)
        .unit(StandardUnit::Count)
        .timestamp(timestamp)
        .build()
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl MetricsSink for CloudWatchMetrics {
    async fn put(&self, points: &[MetricPoint]) -> Result<(), MetricsError> {
        let timestamp = DateTime::from(SystemTime::now());
        for (index, chunk) in points.chunks(MAX_DATUMS_PER_CALL).enumerate() {
            let datums = chunk.iter().map(|p| datum(p, timestamp)).collect();
            let sent = self
                .client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(datums))
                .send()
                .await;
            if let Err(err) = sent {
                // Keep the numbers: EMF on stdout reaches CloudWatch through the logs.
                // Only what was not sent: earlier chunks are already in CloudWatch.
                let sent = index * MAX_DATUMS_PER_CALL;
                EmfMetrics::new(&self.namespace).write(&points[sent..]);
                return Err(MetricsError {
                    sent,
                    total: points.len(),
                    reason: format!(
                        "PutMetricData failed (the rest written as EMF instead): {}",
                        DisplayErrorContext(&err)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Writes metrics as Embedded Metric Format lines on stdout.
#[derive(Debug, Clone)]
pub struct EmfMetrics {
    namespace: String,
}

impl EmfMetrics {
    /// EMF metrics into `namespace`.
    pub fn new(namespace: impl Into<String>) -> EmfMetrics {
        EmfMetrics {
            namespace: namespace.into(),
        }
    }

    fn write(&self, points: &[MetricPoint]) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        for line in emf_lines(&self.namespace, points, now_millis()) {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }
}

impl MetricsSink for EmfMetrics {
    async fn put(&self, points: &[MetricPoint]) -> Result<(), MetricsError> {
        self.write(points);
        Ok(())
    }
}

/// The metrics output chosen by `METRICS_MODE`.
#[derive(Debug, Clone)]
pub enum MetricsOutput {
    /// `PutMetricData`.
    Api(CloudWatchMetrics),
    /// EMF on stdout.
    Emf(EmfMetrics),
}

impl MetricsSink for MetricsOutput {
    async fn put(&self, points: &[MetricPoint]) -> Result<(), MetricsError> {
        match self {
            MetricsOutput::Api(api) => api.put(points).await,
            MetricsOutput::Emf(emf) => emf.put(points).await,
        }
    }
}

#[cfg(all(test, feature = "aws-tests"))]
mod tests {
    //! The fallback's accounting against canned `PutMetricData` responses: the real SDK
    //! client over an HTTP client that answers from a script.

    use std::sync::{Arc, Mutex};

    use aws_smithy_http_client::test_util::infallible_client_fn;

    use super::*;

    #[tokio::test]
    async fn a_failed_metrics_chunk_reports_how_many_points_were_sent() {
        let calls = Arc::new(Mutex::new(0usize));
        let seen = Arc::clone(&calls);
        let http = infallible_client_fn(move |_| {
            let call = {
                let mut calls = seen.lock().unwrap();
                *calls += 1;
                *calls
            };
            if call == 1 {
                http::Response::builder()
                .status(200)
                .body("<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutMetricDataResponse>".to_owned())
                .unwrap()
            } else {
                http::Response::builder()
                .status(400)
                .body("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>scripted</Message></Error></ErrorResponse>".to_owned())
                .unwrap()
            }
        });
        let metrics = CloudWatchMetrics::from_conf(&crate::aws::test_sdk_config(http), "Test");
        let points: Vec<MetricPoint> = (0..1500)
            .map(|i| MetricPoint {
                name: "Matches",
                dimensions: vec![("Rule", format!("r{i}"))],
                value: 1.0,
            })
            .collect();
        let err = metrics.put(&points).await.unwrap_err();
        assert_eq!((err.sent, err.total), (1000, 1500), "{err}");
        assert_eq!(*calls.lock().unwrap(), 2);
    }
}
