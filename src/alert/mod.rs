//! Alerts: what one rule match becomes, and how it reads to people and machines.
//!
//! An [`Alert`] joins the matching rule's metadata with the event's summary and the full
//! record. Rendering is pure: an SNS subject (≤ 100 ASCII characters, one line), a text
//! body for email that stays under SNS's 256 KB limit by shortening only the record, and
//! a JSON object. Nothing here sends anything.

mod render;

use serde::Serialize;
use serde_json::Value;

use crate::record::EventSummary;
use crate::rules::{Rule, Severity};

pub use render::{MAX_BODY_BYTES, MAX_SUBJECT_CHARS, TRUNCATION_MARKER};

/// One rule match on one CloudTrail event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The rule's name (slug).
    pub rule: String,
    /// The rule's Sigma id.
    pub rule_id: Option<String>,
    /// The rule's title.
    pub title: String,
    /// The rule's level.
    pub severity: Severity,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// Why it matters.
    pub description: Option<String>,
    /// What to do.
    pub runbook: Option<String>,
    /// Known benign causes.
    pub falsepositives: Vec<String>,
    /// What happened, who, where and when.
    #[serde(flatten)]
    pub event: EventSummary,
    /// The CloudTrail record.
    pub record: Value,
}

impl Alert {
    /// Builds the alert for `rule` matching `record`.
    pub fn new(rule: &Rule, record: Value) -> Alert {
        Alert {
            rule: rule.name.clone(),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            tags: rule.tags.clone(),
            description: rule.description.clone(),
            runbook: rule.runbook.clone(),
            falsepositives: rule.falsepositives.clone(),
            event: EventSummary::from_record(&record),
            record,
        }
    }

    /// A stable key for this match: the same rule on the same event always gives the
    /// same key, so retries can be recognised (SNS FIFO deduplication, logs).
    pub fn dedup_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.rule.as_bytes());
        hasher.update([0]);
        if self.event.event_id.is_empty() {
            hasher.update(self.record.to_string().as_bytes());
        } else {
            hasher.update(self.event.event_id.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The CloudTrail console page of the event, when the event id and region are known
    /// and look like CloudTrail's own (at most 64 ASCII letters, digits and `-`): the link
    /// goes into the body whole, so a record must not make it long or point elsewhere.
    pub fn console_url(&self) -> Option<String> {
        let (region, id) = (&self.event.region, &self.event.event_id);
        let plain = |text: &str| {
            (1..=64).contains(&text.len())
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        (plain(region) && plain(id)).then(|| {
            format!("https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{id}")
        })
    }

    /// The SNS subject: `[HIGH] Title: actor in account (region)`, one ASCII line of at
    /// most 100 characters.
    pub fn subject(&self) -> String {
        render::subject(self)
    }

    /// The email body: summary, description, runbook, console link, then the record.
    pub fn text_body(&self) -> String {
        render::text_body(self, MAX_BODY_BYTES)
    }

    /// The alert as one JSON object, for machines.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests;
