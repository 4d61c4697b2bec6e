//! SNS: the alert sink. Turns alerts into SNS messages (FIFO or standard, decided from
//! the topic ARN), packs them into `PublishBatch` requests, sends at most
//! [`MAX_CONCURRENT_REQUESTS`] requests at a time, and retries only the entries SNS
//! reports as failed for reasons that may pass.
//!
//! Accounting holds by construction: every alert starts "not confirmed" in the
//! [`DeliveryReport`] and only an entry SNS lists in `Successful`, under an id this
//! adapter issued, becomes published. An entry SNS lists in neither `Successful` nor
//! `Failed`, or under an id that does not parse, stays a failure with that reason.

mod message;

use std::time::Duration;

use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures_util::stream::{self, StreamExt};

use crate::alert::Alert;
use crate::delivery::{AlertSink, DeliveryReport, Routes};
use crate::rules::Route;

pub use message::{
    MAX_BATCH_BYTES, MAX_ENTRIES_PER_BATCH, MessageFormat, SnsMessage, is_fifo_topic,
};

/// Attempts per entry, counting the first (the SDK also retries whole requests).
const MAX_ENTRY_ATTEMPTS: u32 = 3;

/// `PublishBatch` requests in flight at once: enough to publish a burst of alerts in
/// one round trip's time, few enough not to trip SNS throttling or exhaust sockets.
pub const MAX_CONCURRENT_REQUESTS: usize = 4;

/// Publishes alerts to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
    fifo: bool,
    format: MessageFormat,
}

/// What one planned request achieved: (index into the invocation's alerts, result).
type EntryResults = Vec<(usize, Result<(), String>)>;

impl SnsPublisher {
    /// A publisher for `topic_arn` using `client`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsPublisher {
        let topic_arn = topic_arn.into();
        SnsPublisher {
            client,
            fifo: is_fifo_topic(&topic_arn),
            topic_arn,
            format: MessageFormat::TEXT,
        }
    }

    /// The same publisher with messages in `format`.
    pub fn with_format(mut self, format: MessageFormat) -> SnsPublisher {
        self.format = format;
        self
    }

    /// The topic.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// A publisher built from shared SDK configuration.
    pub fn from_conf(
        sdk_config: &aws_types::SdkConfig,
        topic_arn: impl Into<String>,
    ) -> SnsPublisher {
        SnsPublisher::new(Client::new(sdk_config), topic_arn)
    }

    /// Sends one planned batch (`first` is the index of its first message among all the
    /// invocation's messages), retrying entries that failed for retryable reasons.
    /// Returns a result for each entry SNS answered about; the caller treats every
    /// other entry as not confirmed.
    async fn send_batch(&self, first: usize, messages: &[SnsMessage]) -> EntryResults {
        let mut results = Vec::with_capacity(messages.len());
        // Offsets (within `messages`) still to send.
        let mut pending: Vec<usize> = (0..messages.len()).collect();
        for attempt in 1..=MAX_ENTRY_ATTEMPTS {
            let entries: Result<Vec<_>, _> = pending
                .iter()
                .map(|&offset| entry(offset, &messages[offset]))
                .collect();
            let entries = match entries {
                Ok(entries) => entries,
                Err(err) => {
                    let reason = format!("cannot build request: {err}");
                    results.extend(pending.iter().map(|&o| (first + o, Err(reason.clone()))));
                    return results;
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
                    let reason = DisplayErrorContext(&err).to_string();
                    results.extend(pending.iter().map(|&o| (first + o, Err(reason.clone()))));
                    return results;
                }
            };
            let issued = |id: Option<&str>| {
                id.and_then(|id| id.parse::<usize>().ok())
                    .filter(|offset| pending.contains(offset))
            };
            for success in output.successful() {
                match issued(success.id()) {
                    Some(offset) => results.push((first + offset, Ok(()))),
                    None => {
                        tracing::error!(id = ?success.id(), "SNS confirmed an entry id this request did not send")
                    }
                }
            }
            let mut retry = Vec::new();
            for failed in output.failed() {
                let Some(offset) = issued(Some(failed.id())) else {
                    tracing::error!(
                        id = failed.id(),
                        code = failed.code(),
                        "SNS failed an entry id this request did not send"
                    );
                    continue;
                };
                let reason = format!(
                    "{}: {}",
                    failed.code(),
                    failed.message().unwrap_or("no message")
                );
                if failed.sender_fault() || attempt == MAX_ENTRY_ATTEMPTS {
                    results.push((first + offset, Err(reason)));
                } else {
                    let alert_id = &messages[offset].alert_id;
                    tracing::warn!(%alert_id, %reason, attempt, "retrying a failed SNS entry");
                    retry.push(offset);
                }
            }
            if retry.is_empty() {
                break;
            }
            pending = retry;
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        results
    }
}

fn entry(
    offset: usize,
    message: &SnsMessage,
) -> Result<PublishBatchRequestEntry, aws_sdk_sns::error::BuildError> {
    let mut entry = PublishBatchRequestEntry::builder()
        .id(offset.to_string())
        .subject(&message.subject)
        .message(&message.body)
        .set_message_structure(message.structured.then(|| "json".to_owned()))
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
    async fn publish(&self, alerts: &[Alert]) -> DeliveryReport {
        let mut report = DeliveryReport::unconfirmed(alerts.len());
        let mut answers = stream::iter(message::Batches::new(alerts, self.fifo, self.format))
            .map(|(first, messages)| async move { self.send_batch(first, &messages).await })
            .buffer_unordered(MAX_CONCURRENT_REQUESTS);
        while let Some(results) = answers.next().await {
            for (index, result) in results {
                match result {
                    Ok(()) => report.confirm(index),
                    Err(reason) => report.fail(index, reason),
                }
            }
        }
        for (index, reason) in report.failures() {
            if reason == crate::delivery::NOT_CONFIRMED {
                tracing::error!(alert_id = %alerts[index].dedup_key(), "SNS answered neither success nor failure for this entry");
            }
        }
        report
    }
}

/// Alerts to up to three topics by route (`main`, `pager`, `ticket`): routes without a
/// topic of their own go to the main one.
#[derive(Debug, Clone)]
pub struct RoutedPublisher {
    main: SnsPublisher,
    pager: Option<SnsPublisher>,
    ticket: Option<SnsPublisher>,
    routes: Routes,
}

impl RoutedPublisher {
    /// Routes alerts by `routes` to `main`, `pager` and `ticket`.
    pub fn new(
        main: SnsPublisher,
        pager: Option<SnsPublisher>,
        ticket: Option<SnsPublisher>,
        routes: Routes,
    ) -> RoutedPublisher {
        RoutedPublisher {
            main,
            pager,
            ticket,
            routes,
        }
    }

    fn publisher(&self, route: Route) -> &SnsPublisher {
        match route {
            Route::Pager => self.pager.as_ref(),
            Route::Ticket => self.ticket.as_ref(),
            Route::Main => None,
        }
        .unwrap_or(&self.main)
    }
}

impl AlertSink for RoutedPublisher {
    async fn publish(&self, alerts: &[Alert]) -> DeliveryReport {
        let mut report = DeliveryReport::unconfirmed(alerts.len());
        let mut by_topic: Vec<(&SnsPublisher, Vec<usize>)> = Vec::new();
        for (index, alert) in alerts.iter().enumerate() {
            let publisher = self.publisher(self.routes.route(alert));
            match by_topic
                .iter_mut()
                .find(|(p, _)| p.topic_arn == publisher.topic_arn)
            {
                Some((_, indices)) => indices.push(index),
                None => by_topic.push((publisher, vec![index])),
            }
        }
        if let [(publisher, _)] = by_topic.as_slice() {
            // One topic for all (the usual case): no copies.
            return publisher.publish(alerts).await;
        }
        for (publisher, indices) in by_topic {
            let subset: Vec<Alert> = indices.iter().map(|&i| alerts[i].clone()).collect();
            let sub_report = publisher.publish(&subset).await;
            for (offset, result) in sub_report.results().iter().enumerate() {
                match result {
                    crate::delivery::Delivery::Published => report.confirm(indices[offset]),
                    crate::delivery::Delivery::Failed(reason) => {
                        report.fail(indices[offset], reason.clone())
                    }
                }
            }
        }
        report
    }
}

#[cfg(all(test, feature = "aws-tests"))]
mod tests;
