//! Stateful alerting: what happens to rule matches between the engine and the
//! transport. Sigma correlations count matches per group on the records' `eventTime`,
//! `first_seen` rules alert on combinations new within their history, `dedup` rules
//! alert once per key and window, and claims make each alert (rule, `eventID`) go out
//! once across Lambda retries, redelivery and concurrent instances.
//!
//! Everything is read and written through a [`StateStore`] with compare-and-set, and
//! decided by the pure functions of [`windows`], so the Lambda (DynamoDB) and
//! `trailwatch scan` (memory) give the same alerts for the same events: a backtest over
//! archives is what live would have sent. The store is called only for matches of rules
//! that need it, never per event.

pub mod windows;

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::alert::{Alert, CorrelationSummary, DedupSummary, FirstSeenSummary};
use crate::rules::{CorrelationKind, Rule, RuleSet};
use crate::state::{StateError, StateStore, Written};
use windows::{ClaimItem, Counted, Counting, Decision, Learning};

/// State items outlive their windows by a day, so a late redelivery still finds them.
const GRACE_SECS: i64 = 86_400;

/// Compare-and-set attempts on one item before giving up (the invocation then fails
/// and Lambda retries it).
const ATTEMPTS: u32 = 6;

/// What stateful alerting made of a batch's matches.
#[derive(Debug, Default, PartialEq)]
pub struct Decided {
    /// The alerts to publish, in input order (correlation alerts where they fired).
    pub alerts: Vec<Alert>,
    /// Rule names of matches a dedup window suppressed, one per match.
    pub suppressed: Vec<String>,
    /// Matches that fed a correlation or a learning first-seen rule, or repeated a
    /// known combination, without alerting.
    pub absorbed: u64,
}

/// The stateful stage. Holds what never changes once written (when each first-seen rule
/// started learning), so warm invocations skip that read, and the items it last read or
/// wrote, decoded.
#[derive(Debug, Default)]
pub struct Stateful {
    learning_started: Mutex<HashMap<String, i64>>,
    decoded: Mutex<DecodedItems>,
}

/// The memory decoded items may take, as [`DecodedItems::cost`] estimates it: a few busy
/// correlation windows' worth.
const DECODED_BYTES_KEPT: usize = 4 * 1024 * 1024;

/// Items as last read or written, by key: each with the exact text it was decoded from
/// (or encoded to). An item read back with the same text is not decoded again: a busy
/// correlation's window is read, decided on and written back for every match, and
/// decoding it was most of what that cost. A changed text (another invocation wrote)
/// is decoded afresh. Bounded by [`DECODED_BYTES_KEPT`]: past it, all are dropped.
#[derive(Default)]
struct DecodedItems {
    by_key: HashMap<String, (String, Arc<dyn Any + Send + Sync>)>,
    /// The sum of the kept items' [`DecodedItems::cost`].
    kept_cost: usize,
}

impl std::fmt::Debug for DecodedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedItems")
            .field("items", &self.by_key.len())
            .field("kept_cost", &self.kept_cost)
            .finish()
    }
}

impl DecodedItems {
    /// The item at `key` decoded, if what is kept was decoded from exactly `text`.
    fn get<T: Send + Sync + 'static>(&self, key: &str, text: &str) -> Option<Arc<T>> {
        let (kept_text, value) = self.by_key.get(key)?;
        (kept_text == text).then(|| value.clone().downcast().ok())?
    }

    /// What an item costs kept, estimated: its key, its text, the decoded value (about
    /// its text again: the same strings and numbers) and a fixed part for the map slot,
    /// the `Arc` and small allocations.
    fn cost(key: &str, text: &str) -> usize {
        key.len() + 2 * text.len() + 128
    }

    /// Keeps `value`, decoded from (or encoded to) `text`, as the item at `key`.
    fn keep<T: Send + Sync + 'static>(&mut self, key: &str, text: String, value: Arc<T>) {
        if let Some((old, _)) = self.by_key.remove(key) {
            self.kept_cost -= DecodedItems::cost(key, &old);
        }
        let cost = DecodedItems::cost(key, &text);
        if self.kept_cost + cost > DECODED_BYTES_KEPT {
            self.by_key.clear();
            self.kept_cost = 0;
            if cost > DECODED_BYTES_KEPT / 2 {
                return;
            }
        }
        self.kept_cost += cost;
        self.by_key.insert(key.to_owned(), (text, value));
    }
}

/// An event's time in epoch seconds, from `eventTime`, else `fallback`.
pub fn event_time(alert: &Alert, fallback: i64) -> i64 {
    time::OffsetDateTime::parse(
        &alert.event.event_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_or(fallback, |t| t.unix_timestamp())
}

/// The values of dotted `fields` in `record` as text ("" when absent).
pub fn field_values(record: &Value, fields: &[String]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|field| {
            let mut value = Some(record);
            for part in field.split('.') {
                value = value.and_then(|v| v.get(part));
            }
            let text = match value {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (field.clone(), text)
        })
        .collect()
}

/// The first `bytes` bytes of a hash of `values` as hex, each value length-prefixed so
/// no two lists of values share it.
fn values_digest(values: &[(String, String)], bytes: usize) -> String {
    let mut hasher = Sha256::new();
    for (_, value) in values {
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    let digest = hasher.finalize();
    crate::alert::lower_hex(&digest[..bytes.min(digest.len())])
}

/// The item key for a rule and some values: bounded in size whatever the values.
fn item_key(kind: &str, rule: &str, values: &[(String, String)]) -> String {
    format!("{kind}#{rule}#{}", values_digest(values, 12))
}

/// An event's identity for counting: its `eventID`, else the alert's hash.
fn event_identity(alert: &Alert) -> String {
    if alert.event.event_id.is_empty() {
        alert.dedup_key()
    } else {
        alert.event.event_id.clone()
    }
}

impl Stateful {
    /// Reads `key`, decides, and writes back only if nobody wrote in between; decides again
    /// on a conflict. An item whose text is what `self.decoded` kept is not decoded again.
    async fn update<S, T, R>(
        &self,
        store: &S,
        key: &str,
        expires_at: i64,
        mut decide: impl FnMut(Option<&T>) -> (Option<T>, R),
    ) -> Result<R, StateError>
    where
        S: StateStore,
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let decoded = || self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..ATTEMPTS {
            let stored = store.get(key).await?;
            let (version, current) = match &stored {
                None => (None, None),
                Some(item) => {
                    let kept = decoded().get::<T>(key, &item.data);
                    let value = match kept {
                        Some(value) => value,
                        None => {
                            let value: T = serde_json::from_str(&item.data).map_err(|err| {
                                StateError::Corrupt {
                                    key: key.to_owned(),
                                    reason: err.to_string(),
                                }
                            })?;
                            let value = Arc::new(value);
                            decoded().keep(key, item.data.clone(), value.clone());
                            value
                        }
                    };
                    (Some(item.version), Some(value))
                }
            };
            let (write, result) = decide(current.as_deref());
            let Some(write) = write else {
                return Ok(result);
            };
            let data = serde_json::to_string(&write).unwrap_or_default();
            if store.put(key, &data, expires_at, version).await? == Written::Yes {
                decoded().keep(key, data, Arc::new(write));
                return Ok(result);
            }
        }
        Err(StateError::Contended {
            key: key.to_owned(),
            attempts: ATTEMPTS,
        })
    }

    /// A stage with nothing learned yet.
    pub fn new() -> Stateful {
        Stateful::default()
    }

    /// Runs a batch's matches (alerts in input order, as the pipeline made them)
    /// through correlations, first-seen and dedup. `now` (epoch seconds) stands in for
    /// a missing `eventTime` and dates the items' expiry.
    pub async fn apply<S: StateStore>(
        &self,
        rules: &RuleSet,
        store: &S,
        matches: Vec<Alert>,
        now: i64,
    ) -> Result<Decided, StateError> {
        if !rules.needs_state() {
            return Ok(Decided {
                alerts: matches,
                ..Decided::default()
            });
        }
        let mut decided = Decided::default();
        for mut alert in matches {
            let time = event_time(&alert, now);
            for correlation in rules.correlations_fed_by(&alert.rule) {
                match self
                    .correlate(rules, correlation, &alert, time, now, store)
                    .await?
                {
                    Some(fired) => decided.alerts.push(fired),
                    None => decided.absorbed += 1,
                }
            }
            if !rules.alerts_alone(&alert.rule) {
                continue;
            }
            let Some(rule) = rules.by_name(&alert.rule) else {
                decided.alerts.push(alert);
                continue;
            };
            if rule.first_seen.is_some() {
                match self.first_seen(rule, &alert, time, now, store).await? {
                    Some(summary) => alert.first_seen = Some(summary),
                    None => {
                        decided.absorbed += 1;
                        continue;
                    }
                }
            }
            if let Some(dedup) = &rule.dedup {
                let key = field_values(&alert.record, &dedup.by);
                let item = item_key("dedup", &rule.name, &key);
                let id = event_identity(&alert);
                let window = i64::try_from(dedup.window_secs).unwrap_or(i64::MAX);
                let expires = now
                    .max(time)
                    .saturating_add(window)
                    .saturating_add(GRACE_SECS);
                let decision = self
                    .update(store, &item, expires, |current| {
                        windows::dedup(current, &id, time, window)
                    })
                    .await?;
                match decision {
                    Decision::Alert(suppressed_before) => {
                        alert.dedup = Some(DedupSummary {
                            key,
                            window: dedup.window.clone(),
                            suppressed_before,
                        });
                    }
                    Decision::Quiet => {
                        decided.suppressed.push(alert.rule.clone());
                        continue;
                    }
                }
            }
            decided.alerts.push(alert);
        }
        Ok(decided)
    }

    async fn correlate<S: StateStore>(
        &self,
        rules: &RuleSet,
        correlation: &Rule,
        alert: &Alert,
        time: i64,
        now: i64,
        store: &S,
    ) -> Result<Option<Alert>, StateError> {
        let Some(spec) = &correlation.correlation else {
            return Ok(None);
        };
        let group = field_values(&alert.record, &spec.group_by);
        let item = item_key("corr", &correlation.name, &group);
        let (counting, tag) = match spec.kind {
            CorrelationKind::EventCount => (Counting::Events, String::new()),
            CorrelationKind::ValueCount => {
                // The value (or tuple) hashed: bounded in the item whatever its length.
                let values = field_values(&alert.record, &spec.value_fields);
                (Counting::DistinctTags, values_digest(&values, 8))
            }
            CorrelationKind::Temporal => (Counting::DistinctTags, alert.rule.clone()),
        };
        let event = Counted {
            id: event_identity(alert),
            t: time,
            tag,
        };
        let span = i64::try_from(spec.timespan_secs).unwrap_or(i64::MAX);
        let expires = now
            .max(time)
            .saturating_add(span)
            .saturating_add(GRACE_SECS);
        let decision = self
            .update(store, &item, expires, |current| {
                windows::correlate(current, event.clone(), span, counting, spec.at_least)
            })
            .await?;
        let Decision::Alert(fired) = decision else {
            return Ok(None);
        };
        let mut fired_alert = Alert::for_shared_record(correlation, alert.record.clone());
        fired_alert.correlation = Some(CorrelationSummary {
            kind: spec.kind.as_str().to_owned(),
            group,
            count: fired.count,
            timespan: spec.timespan.clone(),
            rules: rules
                .referenced_rules(&correlation.name)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            event_ids: fired.ids,
        });
        Ok(Some(fired_alert))
    }

    /// A first-seen rule's verdict: the summary when the combination is new and the
    /// rule is past its learning period.
    async fn first_seen<S: StateStore>(
        &self,
        rule: &Rule,
        alert: &Alert,
        time: i64,
        now: i64,
        store: &S,
    ) -> Result<Option<FirstSeenSummary>, StateError> {
        let Some(spec) = &rule.first_seen else {
            return Ok(None);
        };
        let history = i64::try_from(spec.history_secs).unwrap_or(i64::MAX);
        let learning = i64::try_from(spec.learning_secs).unwrap_or(i64::MAX);
        // Learning is over for events at or after `started + learning`: decided per
        // event, so a batch from the learning period redelivered later still learns.
        let learning_now = if learning == 0 {
            false
        } else {
            let cached = self
                .learning_started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&rule.name)
                .copied();
            let started = match cached {
                Some(started) => started,
                None => {
                    let key = format!("learn#{}", rule.name);
                    let started =
                        self.update(store, &key, i64::MAX, |current: Option<&Learning>| {
                            match current {
                                Some(l) => (None, l.started),
                                None => (Some(Learning { started: time }), time),
                            }
                        })
                        .await?;
                    self.learning_started
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(rule.name.clone(), started);
                    started
                }
            };
            time < started.saturating_add(learning)
        };
        let values = field_values(&alert.record, &spec.fields);
        let item = item_key("seen", &rule.name, &values);
        let id = event_identity(alert);
        let expires = now
            .max(time)
            .saturating_add(history)
            .saturating_add(GRACE_SECS);
        let decision = self
            .update(store, &item, expires, |current| {
                windows::first_seen(current, &id, time, history)
            })
            .await?;
        Ok(match decision {
            Decision::Alert(()) if !learning_now => Some(FirstSeenSummary {
                values,
                history: spec.history.clone(),
            }),
            _ => None,
        })
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This invocation holds the alert (at this item version) and must publish it.
    Mine(u64),
    /// Already published (by an earlier try or another instance): skip it.
    Published,
    /// Another invocation holds an unexpired lease on it: fail so Lambda retries later.
    InFlight,
}

/// What settling a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The outcome is recorded (or an earlier attempt of this same write already was).
    Recorded,
    /// The alert was published, but the claim had expired and another invocation took
    /// it over first: that one may have published it too.
    TakenOver,
}

/// Claims, publishes' bookkeeping: each alert id is published once.
#[derive(Debug, Clone, Copy)]
pub struct Claims {
    /// How long a claim is exclusive (milliseconds): at least the function timeout.
    pub lease_ms: i64,
    /// How long a published alert is remembered (seconds): at least a day.
    pub retention_secs: i64,
}

impl Claims {
    /// Claims `alert_id` at `now_ms`: one conditional write when nobody holds it.
    pub async fn claim<S: StateStore>(
        &self,
        store: &S,
        alert_id: &str,
        now_ms: i64,
    ) -> Result<Claim, StateError> {
        let key = format!("alert#{alert_id}");
        let pending = serde_json::to_string(&ClaimItem {
            published: false,
            lease_until_ms: now_ms.saturating_add(self.lease_ms),
        })
        .unwrap_or_default();
        let expires = now_ms / 1000 + self.retention_secs;
        let mut expected = None;
        for _ in 0..ATTEMPTS {
            if store.put(&key, &pending, expires, expected).await? == Written::Yes {
                return Ok(Claim::Mine(expected.map_or(1, |v| v + 1)));
            }
            let Some(item) = store.get(&key).await? else {
                expected = None;
                continue;
            };
            let claim: ClaimItem =
                serde_json::from_str(&item.data).map_err(|err| StateError::Corrupt {
                    key: key.clone(),
                    reason: err.to_string(),
                })?;
            if claim.published {
                return Ok(Claim::Published);
            }
            if claim.lease_until_ms > now_ms {
                return Ok(Claim::InFlight);
            }
            expected = Some(item.version);
        }
        Err(StateError::Contended {
            key,
            attempts: ATTEMPTS,
        })
    }

    /// Records the outcome of publishing a claimed alert: published for good, or the
    /// claim released so the retry can take it at once. A release that finds the claim
    /// gone or taken is still recorded: this invocation sent nothing.
    pub async fn settle<S: StateStore>(
        &self,
        store: &S,
        alert_id: &str,
        version: u64,
        published: bool,
        now_ms: i64,
    ) -> Result<Settled, StateError> {
        let key = format!("alert#{alert_id}");
        if !published {
            store.delete(&key, version).await?;
            return Ok(Settled::Recorded);
        }
        let data = serde_json::to_string(&ClaimItem {
            published: true,
            lease_until_ms: 0,
        })
        .unwrap_or_default();
        let expires = now_ms / 1000 + self.retention_secs;
        if store.put(&key, &data, expires, Some(version)).await? == Written::Yes {
            return Ok(Settled::Recorded);
        }
        // The claim moved on. Either this very write landed before (an SDK retry of a
        // put whose answer was lost), or another invocation took the expired claim.
        let ours = store.get(&key).await?.is_some_and(|item| {
            item.version == version + 1
                && serde_json::from_str::<ClaimItem>(&item.data).is_ok_and(|c| c.published)
        });
        Ok(if ours {
            Settled::Recorded
        } else {
            Settled::TakenOver
        })
    }
}

#[cfg(test)]
mod tests;
