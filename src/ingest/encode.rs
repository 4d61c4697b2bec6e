//! Building subscription payloads: the inverse of decoding, for replaying records into
//! the function, for benchmarks and fuzz seeds, and for every test that needs a batch.
//!
//! CloudWatch Logs delivers `{"awslogs":{"data": base64(gzip(JSON))}}` where the JSON
//! holds `messageType`, the log group and stream, and `logEvents` (`id`, `timestamp`,
//! `message`). [`SubscriptionBuilder`] writes exactly that shape.

use std::io::Write;

use base64::Engine as _;
use serde_json::json;

use super::{AwsLogsData, SubscriptionEnvelope};

/// A CloudWatch Logs subscription batch under construction.
#[derive(Debug, Clone)]
pub struct SubscriptionBuilder {
    message_type: &'static str,
    owner: String,
    log_group: String,
    log_stream: String,
    /// The first log event's timestamp (ms); each next one is a second later.
    first_timestamp: i64,
    events: Vec<(String, i64, String)>,
}

impl SubscriptionBuilder {
    /// A `DATA_MESSAGE` batch with no log events yet.
    pub fn data_message() -> SubscriptionBuilder {
        SubscriptionBuilder {
            message_type: "DATA_MESSAGE",
            owner: "111122223333".into(),
            log_group: "aws-cloudtrail-logs-111122223333".into(),
            log_stream: "111122223333_CloudTrail_us-east-1".into(),
            first_timestamp: FIRST_TIMESTAMP,
            events: Vec::new(),
        }
    }

    /// The health check CloudWatch Logs sends when a subscription is created.
    pub fn control_message() -> SubscriptionBuilder {
        SubscriptionBuilder {
            message_type: "CONTROL_MESSAGE",
            owner: "CloudwatchLogs".into(),
            log_group: String::new(),
            log_stream: String::new(),
            first_timestamp: FIRST_TIMESTAMP,
            events: Vec::new(),
        }
        .event(
            "0",
            "CWL CONTROL MESSAGE: Checking health of destination Lambda.",
        )
    }

    /// Any `messageType` (for testing how unknown types are refused).
    pub fn with_message_type(mut self, message_type: &'static str) -> SubscriptionBuilder {
        self.message_type = message_type;
        self
    }

    /// The next log event added is timestamped `ms` (milliseconds since the epoch), and
    /// each after it a second later.
    pub fn first_timestamp(mut self, ms: i64) -> SubscriptionBuilder {
        self.first_timestamp = ms - 1000 * self.events.len() as i64;
        self
    }

    /// Adds one log event with an explicit id.
    pub fn event(mut self, id: impl Into<String>, message: impl Into<String>) -> Self {
        let timestamp = self.first_timestamp + 1000 * self.events.len() as i64;
        self.events.push((id.into(), timestamp, message.into()));
        self
    }

    /// Adds log events whose ids are their positions, 56 digits long like CloudWatch's
    /// (`3719` and the zero-padded position).
    pub fn messages<I, S>(mut self, messages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for message in messages {
            let id = log_event_id(self.events.len());
            self = self.event(id, message);
        }
        self
    }

    /// The decoded subscription JSON (what `awslogs.data` holds once gunzipped).
    pub fn data_json(&self) -> String {
        let events: Vec<_> = self
            .events
            .iter()
            .map(|(id, timestamp, message)| json!({"id": id, "timestamp": timestamp, "message": message}))
            .collect();
        json!({
            "messageType": self.message_type,
            "owner": self.owner,
            "logGroup": self.log_group,
            "logStream": self.log_stream,
            "subscriptionFilters": ["trailwatch"],
            "logEvents": events,
        })
        .to_string()
    }

    /// The `awslogs.data` string: base64 (padded) of the gzipped JSON.
    pub fn encoded_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(gzip(self.data_json().as_bytes()))
    }

    /// The event as Lambda receives it.
    pub fn envelope(&self) -> SubscriptionEnvelope {
        SubscriptionEnvelope {
            awslogs: AwsLogsData {
                data: self.encoded_data(),
            },
        }
    }

    /// The event as JSON text (`{"awslogs":{"data":"..."}}`).
    pub fn payload_json(&self) -> String {
        serde_json::to_string(&self.envelope()).unwrap_or_default()
    }
}

/// The first log event's timestamp unless [`SubscriptionBuilder::first_timestamp`] says
/// otherwise (November 2026).
pub const FIRST_TIMESTAMP: i64 = 1_795_000_000_000;

/// The id [`SubscriptionBuilder::messages`] gives the `index`th log event.
pub fn log_event_id(index: usize) -> String {
    format!("3719{index:052}")
}

/// Gzips bytes (one member, default compression).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{DecodeLimits, RecordId, parse_subscription_event};

    #[test]
    fn built_payload_decodes_to_its_events() {
        let payload = SubscriptionBuilder::data_message()
            .messages(["{\"a\":1}", "x"])
            .event("custom", "y")
            .payload_json();
        let batch = parse_subscription_event(payload.as_bytes(), DecodeLimits::default()).unwrap();
        let texts: Vec<&str> = batch.records.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "x", "y"]);
        assert_eq!(batch.records[1].id, RecordId::LogEvent(log_event_id(1)));
        assert_eq!(log_event_id(1).len(), 56);
        assert_eq!(batch.records[2].id, RecordId::LogEvent("custom".into()));
    }

    #[test]
    fn log_events_are_a_second_apart_from_the_first_timestamp() {
        let timestamps = |builder: SubscriptionBuilder| -> Vec<i64> {
            let data: serde_json::Value = serde_json::from_str(&builder.data_json()).unwrap();
            (data["logEvents"].as_array().unwrap().iter())
                .map(|event| event["timestamp"].as_i64().unwrap())
                .collect()
        };
        let plain = SubscriptionBuilder::data_message().messages(["a", "b"]);
        assert_eq!(timestamps(plain), [FIRST_TIMESTAMP, FIRST_TIMESTAMP + 1000]);
        let later = SubscriptionBuilder::data_message()
            .event("1", "a")
            .first_timestamp(5_000_000)
            .messages(["b", "c"]);
        assert_eq!(timestamps(later), [FIRST_TIMESTAMP, 5_000_000, 5_001_000]);
    }

    #[test]
    fn control_message_decodes_as_control() {
        let batch = SubscriptionBuilder::control_message()
            .envelope()
            .decode(DecodeLimits::default())
            .unwrap();
        assert!(batch.control_message);
        assert!(batch.records.is_empty());
    }
}
