//! SNS message planning: what each alert's SNS message holds (subject, body, attributes,
//! FIFO group and deduplication ids) and how messages pack into `PublishBatch` requests
//! (at most 10 entries and 256 KiB per request).
//!
//! Pure data, so the packing rules are unit-tested here; the publisher beside it only
//! sends the planned requests. Message attributes are a public contract for SNS
//! subscription filter policies: `severity`, `rule`, `account`, `region`, `event_name`,
//! plus `alert_id` (a stable hash of rule and event id) for deduplication downstream.

use crate::alert::Alert;
use crate::config::MessageStructure;

/// How messages are formatted for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageFormat {
    /// One text for all protocols, or per-protocol messages.
    pub structure: MessageStructure,
    /// With `json`: HTTPS subscribers (AWS Chatbot) get a Chatbot custom notification.
    pub chatbot: bool,
}

impl MessageFormat {
    /// Text for every protocol: the format before `MessageStructure: json` existed.
    pub const TEXT: MessageFormat = MessageFormat {
        structure: MessageStructure::Text,
        chatbot: false,
    };
}

/// The largest message this adapter builds (SNS allows 256 KiB with the subject and
/// attributes; the rest is headroom).
const MAX_MESSAGE_BYTES: usize = 250 * 1024;

/// SNS's limit on entries per `PublishBatch` request.
pub const MAX_ENTRIES_PER_BATCH: usize = 10;

/// SNS's limit on the total size of one `PublishBatch` request's messages.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One SNS message, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// The alert's stable id (see [`Alert::dedup_key`]).
    pub alert_id: String,
    /// The rule that matched (for logs).
    pub rule: String,
    /// The CloudTrail event id (for logs).
    pub event_id: String,
    /// The subject line.
    pub subject: String,
    /// The message: the text body, or with `MessageStructure: json` one JSON object
    /// holding a message per protocol.
    pub body: String,
    /// True when `body` is per-protocol JSON (`MessageStructure: json`).
    pub structured: bool,
    /// String message attributes, name → value (empty values are left out: SNS
    /// rejects them).
    pub attributes: Vec<(&'static str, String)>,
    /// For FIFO topics: the message group (the rule name).
    pub group_id: Option<String>,
    /// For FIFO topics: the deduplication id (the alert id), so retries within SNS's
    /// five-minute window are not delivered twice.
    pub deduplication_id: Option<String>,
}

impl SnsMessage {
    /// Builds the message for an alert; `fifo` adds group and deduplication ids.
    pub fn for_alert(alert: &Alert, fifo: bool, format: MessageFormat) -> SnsMessage {
        let alert_id = alert.dedup_key();
        let event = &alert.event;
        let attributes = [
            ("severity", alert.severity.as_str().to_owned()),
            ("rule", alert.rule.clone()),
            ("account", event.account_id.clone()),
            ("region", event.region.clone()),
            ("event_name", event.event_name.clone()),
            ("alert_id", alert_id.clone()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
        SnsMessage {
            rule: alert.rule.clone(),
            event_id: event.event_id.clone(),
            subject: alert.subject(),
            body: match format.structure {
                MessageStructure::Text => alert.text_body(),
                MessageStructure::Json => structured_body(alert, format.chatbot),
            },
            structured: format.structure == MessageStructure::Json,
            attributes,
            group_id: fifo.then(|| alert.rule.clone()),
            deduplication_id: fifo.then(|| alert_id.clone()),
            alert_id,
        }
    }

    /// The bytes this message counts against the request size limit.
    pub fn size(&self) -> usize {
        // `structured` adds nothing: it is the MessageStructure parameter.
        self.body.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }
}

/// The per-protocol message: readable text for email (and the default, which protocols
/// without a key of their own get: http, email-json), the JSON alert for SQS and Lambda,
/// and for HTTPS the JSON alert or a Chatbot custom notification. The text and the JSON
/// are cut (the record first) until the whole fits SNS's limit. Serialised from borrowed
/// parts: no copy of the text or the JSON beyond the message itself.
fn structured_body(alert: &Alert, chatbot: bool) -> String {
    #[derive(serde::Serialize)]
    struct PerProtocol<'a> {
        default: &'a str,
        email: &'a str,
        sqs: &'a str,
        lambda: &'a str,
        https: &'a str,
    }
    let mut limit = 96 * 1024;
    loop {
        let text = alert.text_body_within(limit);
        let json = alert.json_text_within(limit);
        let notification = chatbot.then(|| alert.chatbot_notification().to_string());
        let body = serde_json::to_string(&PerProtocol {
            default: &text,
            email: &text,
            sqs: &json,
            lambda: &json,
            https: notification.as_deref().unwrap_or(&json),
        })
        .unwrap_or_default();
        if body.len() <= MAX_MESSAGE_BYTES {
            return body;
        }
        if limit <= 4 * 1024 {
            return minimal_body(alert);
        }
        limit /= 2;
    }
}

/// The message when even the cut alert is too large (values of the record, such as a
/// huge user agent, fill the summary): the subject, the rule and the event's id.
fn minimal_body(alert: &Alert) -> String {
    let event_id: String = alert.event.event_id.chars().take(128).collect();
    let text = format!(
        "{}\n\nThis alert is too large for an SNS message. Rule: {}. Find event {event_id} in CloudTrail.\n",
        alert.subject(),
        alert.rule
    );
    let json = serde_json::json!({
        "rule": alert.rule,
        "title": alert.title,
        "severity": alert.severity,
        "alert_id": alert.dedup_key(),
        "event_id": event_id,
        "truncated": "the alert is too large for an SNS message; see the event in CloudTrail",
    })
    .to_string();
    serde_json::json!({
        "default": text, "email": text, "sqs": json, "lambda": json, "https": json,
    })
    .to_string()
}

/// True for FIFO topic ARNs (`...:name.fifo`).
pub fn is_fifo_topic(topic_arn: &str) -> bool {
    topic_arn.ends_with(".fifo")
}

/// Splits messages into `PublishBatch` requests: index ranges of at most
/// [`MAX_ENTRIES_PER_BATCH`] messages and [`MAX_BATCH_BYTES`] bytes, in order.
#[cfg(test)]
pub(super) fn plan_batches(messages: &[SnsMessage]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, message) in messages.iter().enumerate() {
        let size = message.size();
        let full = index - start == MAX_ENTRIES_PER_BATCH || bytes + size > MAX_BATCH_BYTES;
        if full && index > start {
            batches.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        batches.push(start..messages.len());
    }
    batches
}

/// Builds the messages one alert at a time and yields them in `PublishBatch`-sized
/// groups, `(index of the group's first alert, its messages)`, packed as
/// [`plan_batches`] packs them. Only the groups in flight are in memory: a message with
/// `MessageStructure: json` holds the text and several copies of the JSON alert, and
/// building every message of a large batch first doubled the function's peak memory.
pub(super) struct Batches<'a> {
    alerts: &'a [Alert],
    fifo: bool,
    format: MessageFormat,
    next: usize,
    pending: Option<SnsMessage>,
}

impl<'a> Batches<'a> {
    pub(super) fn new(alerts: &'a [Alert], fifo: bool, format: MessageFormat) -> Batches<'a> {
        Batches {
            alerts,
            fifo,
            format,
            next: 0,
            pending: None,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = (usize, Vec<SnsMessage>);

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.next - usize::from(self.pending.is_some());
        let (mut batch, mut bytes) = (Vec::new(), 0);
        loop {
            let message = match self.pending.take() {
                Some(message) => message,
                None => {
                    let alert = self.alerts.get(self.next)?;
                    self.next += 1;
                    SnsMessage::for_alert(alert, self.fifo, self.format)
                }
            };
            let size = message.size();
            if !batch.is_empty()
                && (batch.len() == MAX_ENTRIES_PER_BATCH || bytes + size > MAX_BATCH_BYTES)
            {
                self.pending = Some(message);
                break;
            }
            bytes += size;
            batch.push(message);
            if self.next == self.alerts.len() && self.pending.is_none() {
                break;
            }
        }
        Some((first, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Rule, Severity};
    use serde_json::json;

    fn alert(rule_name: &str, body_padding: usize) -> Alert {
        let rule = Rule::for_tests(rule_name, "Trail stopped", Severity::High);
        Alert::new(
            &rule,
            json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
                   "eventID": "e-1", "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
                   "pad": "x".repeat(body_padding)}),
        )
    }

    #[test]
    fn message_carries_filterable_attributes() {
        let message = SnsMessage::for_alert(&alert("stop", 0), false, MessageFormat::TEXT);
        let names: Vec<&str> = message.attributes.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "severity",
                "rule",
                "account",
                "region",
                "event_name",
                "alert_id"
            ]
        );
        assert_eq!(message.attributes[0].1, "high");
        assert_eq!(message.group_id, None);
        assert_eq!(message.deduplication_id, None);
    }

    #[test]
    fn empty_attributes_are_left_out() {
        let mut a = alert("stop", 0);
        a.event.region.clear();
        let message = SnsMessage::for_alert(&a, false, MessageFormat::TEXT);
        assert!(message.attributes.iter().all(|(n, _)| *n != "region"));
    }

    #[test]
    fn fifo_messages_group_by_rule_and_dedupe_by_rule_and_event() {
        let message = SnsMessage::for_alert(&alert("stop", 0), true, MessageFormat::TEXT);
        assert_eq!(message.group_id.as_deref(), Some("stop"));
        assert_eq!(
            message.deduplication_id.as_deref(),
            Some(message.alert_id.as_str())
        );
        let again = SnsMessage::for_alert(&alert("stop", 0), true, MessageFormat::TEXT);
        assert_eq!(message.deduplication_id, again.deduplication_id);
        assert!(is_fifo_topic(
            "arn:aws:sns:us-east-1:111122223333:alerts.fifo"
        ));
        assert!(!is_fifo_topic("arn:aws:sns:us-east-1:111122223333:alerts"));
    }

    #[test]
    fn batches_hold_at_most_ten_messages() {
        let messages: Vec<_> = (0..23)
            .map(|_| SnsMessage::for_alert(&alert("r", 0), false, MessageFormat::TEXT))
            .collect();
        assert_eq!(plan_batches(&messages), [0..10, 10..20, 20..23]);
        assert!(plan_batches(&[]).is_empty());
    }

    #[test]
    fn batches_stay_under_the_request_size_limit() {
        let messages: Vec<_> = (0..5)
            .map(|_| SnsMessage::for_alert(&alert("r", 100 * 1024), false, MessageFormat::TEXT))
            .collect();
        let batches = plan_batches(&messages);
        assert_eq!(batches, [0..2, 2..4, 4..5]);
        for batch in batches {
            let bytes: usize = messages[batch].iter().map(SnsMessage::size).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
        }
    }

    #[test]
    fn structured_messages_give_each_protocol_its_form_and_fit_sns() {
        let format = MessageFormat {
            structure: MessageStructure::Json,
            chatbot: true,
        };
        for padding in [0, 300 * 1024] {
            let a = alert("stop", padding);
            let message = SnsMessage::for_alert(&a, false, format);
            assert!(message.structured);
            assert!(message.size() <= MAX_BATCH_BYTES, "{}", message.size());
            let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
            assert!(body["email"].as_str().unwrap().starts_with("[HIGH]"));
            assert_eq!(body["default"], body["email"]);
            let sqs: serde_json::Value =
                serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
            assert_eq!(sqs["rule"], "stop");
            let https: serde_json::Value =
                serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
            assert_eq!(https["source"], "custom");
            assert_eq!(https["version"], "1.0");
            if padding > 0 {
                assert!(sqs["record"]["truncated"].is_string());
            }
        }
        // Even a record whose summary values are huge fits.
        let mut huge = alert("stop", 0);
        huge.event.user_agent = Some("x".repeat(400 * 1024));
        huge.event.error_message = Some("\"".repeat(200 * 1024));
        let message = SnsMessage::for_alert(&huge, false, format);
        assert!(message.size() <= MAX_BATCH_BYTES, "{}", message.size());
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert!(body["email"].as_str().unwrap().starts_with("[HIGH]"));
    }

    #[test]
    fn lazy_batches_pack_like_the_plan() {
        let alerts: Vec<Alert> = (0..23)
            .map(|i| alert("r", if i % 5 == 0 { 120 * 1024 } else { 10 }))
            .collect();
        let messages: Vec<SnsMessage> = alerts
            .iter()
            .map(|a| SnsMessage::for_alert(a, false, MessageFormat::TEXT))
            .collect();
        let lazy: Vec<std::ops::Range<usize>> = Batches::new(&alerts, false, MessageFormat::TEXT)
            .map(|(first, batch)| first..first + batch.len())
            .collect();
        assert_eq!(lazy, plan_batches(&messages));
        assert!(
            Batches::new(&[], false, MessageFormat::TEXT)
                .next()
                .is_none()
        );
    }
}
