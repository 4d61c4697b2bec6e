//! SNS: sends planned alert messages with `PublishBatch`, all requests concurrently,
//! and retries only the entries SNS reports as failed for reasons that may pass.

use std::time::Duration;

use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures_util::future::join_all;

use crate::delivery::{SnsMessage, plan_batches};
use crate::handler::{AlertSink, PublishFailure, PublishReport};

/// Attempts per entry, counting the first (the SDK also retries whole requests).
const MAX_ENTRY_ATTEMPTS: u32 = 3;

/// Publishes alerts to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher for `topic_arn` using `client`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsPublisher {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// A publisher built from shared SDK configuration.
    pub fn from_conf(
        sdk_config: &aws_config::SdkConfig,
        topic_arn: impl Into<String>,
    ) -> SnsPublisher {
        SnsPublisher::new(Client::new(sdk_config), topic_arn)
    }

    /// Sends one planned batch, retrying entries that failed for retryable reasons.
    async fn send_batch(&self, messages: &[SnsMessage]) -> PublishReport {
        let mut report = PublishReport::default();
        let mut pending: Vec<&SnsMessage> = messages.iter().collect();
        for attempt in 1..=MAX_ENTRY_ATTEMPTS {
            let entries: Result<Vec<_>, _> = pending
                .iter()
                .enumerate()
                .map(|(i, m)| entry(i, m))
                .collect();
            let entries = match entries {
                Ok(entries) => entries,
                Err(err) => {
                    fail_all(
                        &mut report,
                        &pending,
                        &format!("cannot build request: {err}"),
                    );
                    return report;
                }
            };
            let response = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await;
            let output = match response {
                Ok(output) => output,
                Err(err) => {
                    fail_all(
                        &mut report,
                        &pending,
                        &DisplayErrorContext(&err).to_string(),
                    );
                    return report;
                }
            };
            report.published += output.successful().len();
            let mut retry = Vec::new();
            for failed in output.failed() {
                let Some(message) = failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| pending.get(i))
                else {
                    continue;
                };
                let reason = format!(
                    "{}: {}",
                    failed.code(),
                    failed.message().unwrap_or("no message")
                );
                if failed.sender_fault() || attempt == MAX_ENTRY_ATTEMPTS {
                    report.failures.push(PublishFailure {
                        alert_id: message.alert_id.clone(),
                        reason,
                    });
                } else {
                    tracing::warn!(alert_id = %message.alert_id, %reason, attempt, "retrying a failed SNS entry");
                    retry.push(*message);
                }
            }
            if retry.is_empty() {
                break;
            }
            pending = retry;
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        report
    }
}

fn fail_all(report: &mut PublishReport, messages: &[&SnsMessage], reason: &str) {
    report
        .failures
        .extend(messages.iter().map(|m| PublishFailure {
            alert_id: m.alert_id.clone(),
            reason: reason.to_owned(),
        }));
}

fn entry(
    index: usize,
    message: &SnsMessage,
) -> Result<PublishBatchRequestEntry, aws_sdk_sns::error::BuildError> {
    let mut entry = PublishBatchRequestEntry::builder()
        .id(index.to_string())
        .subject(&message.subject)
        .message(&message.body)
        .set_message_group_id(message.group_id.clone())
        .set_message_deduplication_id(message.deduplication_id.clone());
    for (name, value) in &message.attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()?;
        entry = entry.message_attributes(*name, value);
    }
    entry.build()
}

impl AlertSink for SnsPublisher {
    async fn publish(&self, messages: &[SnsMessage]) -> PublishReport {
        let batches = plan_batches(messages);
        let reports = join_all(
            batches
                .into_iter()
                .map(|range| self.send_batch(&messages[range])),
        )
        .await;
        let mut total = PublishReport::default();
        for report in reports {
            total.published += report.published;
            total.failures.extend(report.failures);
        }
        total
    }
}
