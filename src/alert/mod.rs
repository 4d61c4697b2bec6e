//! Alerts: what one rule match becomes, and how it reads to people and machines.
//!
//! An [`Alert`] joins the matching rule's metadata with the event's summary and the full
//! record. Rendering is pure: an SNS subject (≤ 100 ASCII characters, one line), a text
//! body for email that stays under SNS's 256 KB limit by shortening only the record, and
//! a JSON object. Nothing here sends anything.

mod render;
mod shared_record;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::record::EventSummary;
use crate::rules::{Route, Rule, Severity};

pub use render::{MAX_BODY_BYTES, MAX_SUBJECT_CHARS, TRUNCATION_MARKER};
pub use shared_record::SharedRecord;

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
    /// Why it matters. (The email body's prose sections are rendered from the rule when
    /// the alert is made: editing this field changes the JSON alert, not the email.)
    pub description: Option<String>,
    /// What to do.
    pub runbook: Option<String>,
    /// Known benign causes.
    pub falsepositives: Vec<String>,
    /// What happened, who, where and when.
    #[serde(flatten)]
    pub event: EventSummary,
    /// The topic the alert goes to: the rule's `route`, else the severity table's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// The account's name, from the configured account map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// For a correlation rule: the group, the count, the window and the events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<CorrelationSummary>,
    /// For a rule with `dedup`: its key, window, and the repeats suppressed before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup: Option<DedupSummary>,
    /// For a `first_seen` rule: the combination seen for the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<FirstSeenSummary>,
    /// The CloudTrail record (for a correlation: the event that made it fire), shared
    /// with the other alerts it raised.
    #[serde(serialize_with = "shared_record_json")]
    pub record: Arc<SharedRecord>,
    /// The email body's prose sections (why it matters, what to do, known false
    /// positives), rendered from the rule once and shared by all its alerts.
    #[serde(skip)]
    prose: Arc<str>,
}

/// A shared record as its compact JSON, made once for all the alerts that share it.
fn shared_record_json<S: serde::Serializer>(
    record: &Arc<SharedRecord>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    record.compact().serialize(serializer)
}

/// Field/value pairs as a JSON object (`{"sourceIPAddress": "203.0.113.9"}`).
fn as_map<S: serde::Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (field, value) in pairs {
        map.serialize_entry(field, value)?;
    }
    map.end()
}

/// What made a correlation fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrelationSummary {
    /// `event_count`, `value_count` or `temporal`.
    pub kind: String,
    /// The group-by fields and this group's values.
    #[serde(serialize_with = "as_map")]
    pub group: Vec<(String, String)>,
    /// Events (or distinct values, or rules) counted in the window.
    pub count: u64,
    /// The window, as written (e.g. `5m`).
    pub timespan: String,
    /// The referenced rules.
    pub rules: Vec<String>,
    /// The `eventID`s of the events in the window that fired (at most 50).
    pub event_ids: Vec<String>,
}

/// A deduplicated rule's alert: the first match of its key in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DedupSummary {
    /// The `by` fields and this alert's values.
    #[serde(serialize_with = "as_map")]
    pub key: Vec<(String, String)>,
    /// The window, as written (e.g. `1h`).
    pub window: String,
    /// Matches of this key suppressed in the window before this alert.
    pub suppressed_before: u64,
}

/// A first-seen rule's alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstSeenSummary {
    /// The fields and the values not seen before.
    #[serde(serialize_with = "as_map")]
    pub values: Vec<(String, String)>,
    /// The history window, as written (e.g. `14d`).
    pub history: String,
}

impl Alert {
    /// Builds the alert for `rule` matching `record`.
    pub fn new(rule: &Rule, record: Value) -> Alert {
        Alert::for_shared_record(rule, Arc::new(SharedRecord::new(record)))
    }

    /// Builds the alert for `rule` matching a record other alerts share.
    pub fn for_shared_record(rule: &Rule, record: Arc<SharedRecord>) -> Alert {
        Alert {
            rule: rule.name.clone(),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            tags: rule.tags.clone(),
            description: rule.description.clone(),
            runbook: rule.runbook.clone(),
            falsepositives: rule.falsepositives.clone(),
            event: EventSummary::from_record(record.value()),
            route: rule.route,
            account_name: None,
            correlation: None,
            dedup: None,
            first_seen: None,
            record,
            prose: rule.rendered.get_or_render(|| render::rule_prose(rule)),
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
        lower_hex(&hasher.finalize())
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

    /// The alert as one JSON object, for machines (the record is copied as it is, not
    /// read back from its JSON text).
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self.clone_without_record()).unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.insert("record".to_owned(), self.record.value().clone());
        }
        value
    }

    /// The email body cut to at most `max_bytes` (the record is what gets cut).
    pub fn text_body_within(&self, max_bytes: usize) -> String {
        render::text_body(self, max_bytes)
    }

    /// The JSON alert as text, with the record replaced by a note when the whole would
    /// be over `max_bytes` (the note keeps the event id, to find the record in
    /// CloudTrail). Serialised straight from the alert (no copy of the record as a JSON
    /// value).
    pub fn json_text_within(&self, max_bytes: usize) -> String {
        let full = serde_json::to_string(self).unwrap_or_default();
        if full.len() <= max_bytes {
            return full;
        }
        let mut cut = self.clone_without_record();
        cut.record = Arc::new(SharedRecord::new(serde_json::json!({
            "truncated": "the record is too large for an SNS message; see the event in CloudTrail",
            "eventID": self.event.event_id,
        })));
        serde_json::to_string(&cut).unwrap_or_default()
    }

    fn clone_without_record(&self) -> Alert {
        Alert {
            rule: self.rule.clone(),
            rule_id: self.rule_id.clone(),
            title: self.title.clone(),
            severity: self.severity,
            tags: self.tags.clone(),
            description: self.description.clone(),
            runbook: self.runbook.clone(),
            falsepositives: self.falsepositives.clone(),
            event: self.event.clone(),
            route: self.route,
            account_name: self.account_name.clone(),
            correlation: self.correlation.clone(),
            dedup: self.dedup.clone(),
            first_seen: self.first_seen.clone(),
            record: Arc::default(),
            prose: self.prose.clone(),
        }
    }

    /// An AWS Chatbot custom notification (Slack, Microsoft Teams): a title, a short
    /// Markdown summary, the runbook's first steps, threaded by rule.
    pub fn chatbot_notification(&self) -> Value {
        render::chatbot_notification(self)
    }
}

/// Account ids and the names people know them by (`ACCOUNT_NAMES`, `--account-names`):
/// `111122223333=prod,444455556666=staging`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountNames(std::collections::HashMap<String, String>);

/// Why an account map does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account names: {entry:?} is not ACCOUNT_ID=NAME with a 12-digit account id")]
pub struct BadAccountName {
    /// The offending entry.
    pub entry: String,
}

impl AccountNames {
    /// Parses `id=name` pairs separated by commas (empty: no names).
    pub fn parse(text: &str) -> Result<AccountNames, BadAccountName> {
        let mut names = std::collections::HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once('=') {
                Some((id, name))
                    if id.trim().len() == 12
                        && id.trim().bytes().all(|b| b.is_ascii_digit())
                        && !name.trim().is_empty() =>
                {
                    names.insert(id.trim().to_owned(), name.trim().to_owned());
                }
                _ => {
                    return Err(BadAccountName {
                        entry: entry.to_owned(),
                    });
                }
            }
        }
        Ok(AccountNames(names))
    }

    /// Names the alert's account, when the map knows it.
    pub fn name(&self, alert: &mut Alert) {
        if let Some(name) = self.0.get(&alert.event.account_id) {
            alert.account_name = Some(name.clone());
        }
    }

    /// True when no account is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `bytes` as lowercase hex, into one string (alert ids; stateful alerting's state keys).
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests;
