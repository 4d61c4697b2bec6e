//! One Lambda invocation: decode the subscription batch, run the pipeline, run the
//! matches through stateful alerting, claim each alert, publish what this invocation
//! holds, settle the claims, send the metrics, and decide whether the invocation failed.
//!
//! Failure semantics live here. A record that is not CloudTrail is skipped, logged with
//! its log-event id and counted; it never fails the invocation. An alert that cannot be
//! published (after the SDK's and our own entry-level retries), a state table that
//! cannot be reached, or an alert another instance is still publishing fails the
//! invocation, so Lambda's retries (and then the on-failure destination) keep the
//! batch; the claims make a retry publish only what is missing. A metrics failure is
//! logged and counted but never fails the invocation. The sinks and the store are
//! traits, so this is tested with fakes; [`crate::aws`] implements them for real.

use serde::Serialize;

use futures_util::stream::{self, StreamExt};

use crate::alert::Alert;
use crate::config::Config;
use crate::delivery::{AlertSink, Delivery, DeliveryReport, MetricsSink};
use crate::ingest::{IngestError, SubscriptionEnvelope};
use crate::metrics::{DeliveryCounts, metric_points};
use crate::pipeline;
use crate::rules::RuleSet;
use crate::state::{StateError, StateStore};
use crate::stateful::{Claim, Claims, Settled, Stateful};

/// What an invocation did (the function's response, and a log line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    /// True for a CloudWatch Logs control message (nothing to do).
    pub control_message: bool,
    /// Records read from the batch: always `events_processed + events_skipped`.
    pub events_read: u64,
    /// Records matched against the rules.
    pub events_processed: u64,
    /// Records skipped (not JSON, not CloudTrail).
    pub events_skipped: u64,
    /// Alerts decided (after correlations, first-seen and dedup): always
    /// `alerts_published + alerts_failed + alerts_duplicate`.
    pub alerts: usize,
    /// Alerts the transport confirmed.
    pub alerts_published: usize,
    /// Alerts not confirmed, or held by another invocation (the invocation fails when
    /// this is not zero).
    pub alerts_failed: usize,
    /// Alerts an earlier try (or another instance) already published: not sent again.
    pub alerts_duplicate: usize,
    /// Matches a dedup window held back (counted in the `Suppressed` metric).
    pub deduplicated: usize,
    /// Why metrics could not be sent, if they could not.
    pub metrics_error: Option<String>,
}

/// Why an invocation failed (Lambda will retry it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload could not be decoded at all.
    #[error("cannot decode the subscription payload: {0}")]
    Decode(#[from] IngestError),
    /// Some alerts could not be published.
    #[error(
        "{failed} of {total} alert(s) could not be published (first: {first_reason}); failing so Lambda retries the batch"
    )]
    Publish {
        /// Alerts not published.
        failed: usize,
        /// Alerts produced.
        total: usize,
        /// The first failure's reason.
        first_reason: String,
    },
    /// The state table could not be read or written: failing rather than dropping or
    /// flooding alerts.
    #[error("state table: {0}; failing so Lambda retries the batch")]
    State(#[from] StateError),
}

impl InvocationError {
    /// A short machine-readable error type for Lambda's error response.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Decode(_) => "BadPayload",
            InvocationError::Publish { .. } => "PublishFailed",
            InvocationError::State(_) => "StateUnavailable",
        }
    }
}

/// The state an invocation uses: the store (DynamoDB, or memory in local runs) and the
/// stateful stage (which remembers what it learned across warm invocations).
#[derive(Debug, Default)]
pub struct State<S> {
    /// The store.
    pub store: S,
    /// The stage.
    pub stateful: Stateful,
    /// Alerts SNS accepted whose claim could not be marked published (alert id → claim
    /// version): this process never publishes them again, and settles them on the next
    /// invocation. Only a process that dies in between can send such an alert twice.
    unsettled: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// At most this many unsettled alerts are remembered (a table down for long).
const MAX_UNSETTLED: usize = 10_000;

impl<S: StateStore> State<S> {
    /// State on `store`.
    pub fn new(store: S) -> State<S> {
        State {
            store,
            stateful: Stateful::new(),
            unsettled: std::sync::Mutex::default(),
        }
    }

    fn unsettled(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.unsettled.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Claims in flight at once (each is one conditional write when nobody holds the alert).
const CONCURRENT_STATE_CALLS: usize = 8;

/// Unsettled alerts settled at the start of each invocation, at most.
const SETTLE_PER_INVOCATION: usize = 64;

/// The invocation's clock: now, and when Lambda will stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Wall clock, epoch milliseconds.
    pub now_ms: i64,
    /// The invocation's deadline (epoch milliseconds), when known: a claim's lease
    /// outlasts it, so no other instance takes over an alert this one may still publish.
    pub deadline_ms: Option<i64>,
}

impl Clock {
    /// A clock at `now_ms` with no known deadline.
    pub fn at(now_ms: i64) -> Clock {
        Clock {
            now_ms,
            deadline_ms: None,
        }
    }
}

/// Margin on the deadline for clocks that disagree between instances.
const LEASE_MARGIN_MS: i64 = 10_000;

/// Handles one subscription event end to end; `now_ms` is the wall clock (epoch ms).
pub async fn handle_event<S: StateStore>(
    rules: &RuleSet,
    config: &Config,
    envelope: &SubscriptionEnvelope,
    alerts: &impl AlertSink,
    metrics: &impl MetricsSink,
    state: &State<S>,
    clock: Clock,
) -> Result<InvocationSummary, InvocationError> {
    let now_ms = clock.now_ms;
    // Records no rule can match are ruled out by their head as they are read.
    let batch = envelope.decode_screened(config.limits, rules.head_screen())?;
    if batch.control_message {
        tracing::info!("CloudWatch Logs control message: nothing to do");
        return Ok(InvocationSummary {
            control_message: true,
            ..InvocationSummary::default()
        });
    }
    let mut outcome = pipeline::run(rules, batch);
    for skipped in &outcome.skipped {
        tracing::warn!(record = %skipped.id, reason = %skipped.reason, "skipped a record that is not a CloudTrail event");
    }

    // Correlations, first-seen and dedup: state calls only for matches of rules that
    // need them.
    let matches = outcome.take_matches();
    let decided = match state
        .stateful
        .apply(rules, &state.store, matches, now_ms / 1000)
        .await
    {
        Ok(decided) => decided,
        Err(err) => {
            send_metrics(
                metrics,
                &outcome,
                DeliveryCounts {
                    state_errors: 1,
                    ..DeliveryCounts::default()
                },
            )
            .await;
            return Err(err.into());
        }
    };
    outcome.apply_state(decided);
    for alert in &mut outcome.alerts {
        config.account_names.name(alert);
    }

    // Claims: each alert is published by one invocation, once.
    let claims = Claims {
        lease_ms: config.state_lease_ms.max(
            clock
                .deadline_ms
                .map_or(0, |deadline| deadline - now_ms + LEASE_MARGIN_MS),
        ),
        retention_secs: config.idempotency_secs,
    };
    settle_journal(state, &claims, now_ms).await;
    let ids: Vec<String> = outcome.alerts.iter().map(Alert::dedup_key).collect();
    // The same alert twice in one batch (CloudTrail delivering an event twice): one
    // claim, the repeats count as duplicates.
    let mut first_seen_ids = std::collections::HashSet::new();
    let repeat: Vec<bool> = ids.iter().map(|id| !first_seen_ids.insert(id)).collect();
    let known_unsettled: Vec<Option<u64>> = {
        let unsettled = state.unsettled();
        ids.iter().map(|id| unsettled.get(id).copied()).collect()
    };
    let claimed: Vec<Result<Claim, StateError>> =
        stream::iter(ids.iter().zip(&known_unsettled).zip(&repeat))
            .map(|((id, unsettled), repeat)| async move {
                if *repeat {
                    return Ok(Claim::Published);
                }
                match unsettled {
                    // Published by this process already: settle it now, never send it again.
                    Some(version) => {
                        settle_unsettled(state, &claims, id, *version, now_ms).await;
                        Ok(Claim::Published)
                    }
                    None => claims.claim(&state.store, id, now_ms).await,
                }
            })
            .buffered(CONCURRENT_STATE_CALLS)
            .collect()
            .await;
    let mut report = DeliveryReport::unconfirmed(outcome.alerts.len());
    let mut mine: Vec<(usize, u64)> = Vec::new();
    let mut duplicate = vec![false; outcome.alerts.len()];
    let mut state_error = None;
    for (index, claim) in claimed.into_iter().enumerate() {
        match claim {
            Ok(Claim::Mine(version)) => mine.push((index, version)),
            Ok(Claim::Published) => duplicate[index] = true,
            Ok(Claim::InFlight) => report.fail(
                index,
                "another invocation is publishing this alert (its claim has not expired)",
            ),
            Err(err) => {
                report.fail(index, err.to_string());
                state_error.get_or_insert(err);
            }
        }
    }
    let mut state_errors = u64::from(state_error.is_some());

    // Publish what this invocation holds.
    if !mine.is_empty() {
        // Usually every alert is this invocation's: publish them in place (a copy would
        // double the records in memory); after a partial failure, only the missing ones.
        let published = if mine.len() == outcome.alerts.len() {
            alerts.publish(&outcome.alerts).await
        } else {
            let to_publish: Vec<Alert> = mine
                .iter()
                .map(|&(i, _)| outcome.alerts[i].clone())
                .collect();
            alerts.publish(&to_publish).await
        };
        for (&(index, _), result) in mine.iter().zip(published.results()) {
            match result {
                Delivery::Published => report.confirm(index),
                Delivery::Failed(reason) => report.fail(index, reason.clone()),
            }
        }
        // Settle: published alerts are remembered; failed ones are released so the
        // retry takes them at once. A settle that fails only costs a later redelivery
        // a duplicate (published) or a lease's wait (released): never a lost alert.
        let settled: Vec<Result<Settled, StateError>> = stream::iter(&mine)
            .map(|&(index, version)| {
                let published = report.results()[index] == Delivery::Published;
                claims.settle(&state.store, &ids[index], version, published, now_ms)
            })
            .buffered(CONCURRENT_STATE_CALLS)
            .collect()
            .await;
        for (&(index, version), result) in mine.iter().zip(settled) {
            match result {
                Ok(settled) => warn_if_taken_over(&ids[index], settled),
                Err(err) => {
                    tracing::warn!(alert_id = %ids[index], error = %err, "claim not settled");
                    state_errors += 1;
                    let mut unsettled = state.unsettled();
                    if report.results()[index] == Delivery::Published
                        && unsettled.len() < MAX_UNSETTLED
                    {
                        unsettled.insert(ids[index].clone(), version);
                    }
                }
            }
        }
    }
    let duplicate_count = duplicate.iter().filter(|d| **d).count();
    let failures: Vec<(usize, &str)> = report
        .failures()
        .filter(|(index, _)| !duplicate[*index])
        .collect();
    for &(index, reason) in &failures {
        let alert = &outcome.alerts[index];
        tracing::error!(
            alert_id = %ids[index],
            rule = %alert.rule,
            event_id = %alert.event.event_id,
            %reason,
            "alert not published"
        );
    }
    let published = report.published();
    let failed = failures.len();
    let delivery = DeliveryCounts {
        published: published as u64,
        failed: failed as u64,
        duplicates: duplicate_count as u64,
        state_errors,
    };
    let metrics_error = send_metrics(metrics, &outcome, delivery).await;

    let summary = InvocationSummary {
        control_message: false,
        events_read: outcome.events_read(),
        events_processed: outcome.events_processed,
        events_skipped: outcome.events_skipped(),
        alerts: outcome.alerts.len(),
        alerts_published: published,
        alerts_failed: failed,
        alerts_duplicate: duplicate_count,
        deduplicated: outcome.deduplicated.len(),
        metrics_error,
    };
    tracing::info!(
        events_read = summary.events_read,
        events_processed = summary.events_processed,
        events_skipped = summary.events_skipped,
        alerts = summary.alerts,
        alerts_published = summary.alerts_published,
        alerts_failed = summary.alerts_failed,
        alerts_duplicate = summary.alerts_duplicate,
        deduplicated = summary.deduplicated,
        "batch done: events read = processed + skipped, alerts = published + failed + duplicate"
    );
    if let Some(err) = state_error {
        return Err(err.into());
    }
    let first_failure = failures.first().map(|(_, reason)| (*reason).to_owned());
    match first_failure {
        None => Ok(summary),
        Some(first_reason) => Err(InvocationError::Publish {
            failed,
            total: summary.alerts,
            first_reason,
        }),
    }
}

/// Marks published the alerts this process published but could not mark (bounded per
/// invocation); what still fails stays in the journal for the next one.
async fn settle_journal<S: StateStore>(state: &State<S>, claims: &Claims, now_ms: i64) {
    let pending: Vec<(String, u64)> = state
        .unsettled()
        .iter()
        .take(SETTLE_PER_INVOCATION)
        .map(|(id, version)| (id.clone(), *version))
        .collect();
    for (id, version) in pending {
        settle_unsettled(state, claims, &id, version, now_ms).await;
    }
}

/// Marks published an alert of the journal; it leaves the journal once marked.
async fn settle_unsettled<S: StateStore>(
    state: &State<S>,
    claims: &Claims,
    id: &str,
    version: u64,
    now_ms: i64,
) {
    if let Ok(settled) = claims.settle(&state.store, id, version, true, now_ms).await {
        warn_if_taken_over(id, settled);
        state.unsettled().remove(id);
    }
}

/// A published alert whose claim another invocation had taken over may have gone out
/// twice: worth a line in the log (it needs an invocation outliving its lease).
fn warn_if_taken_over(alert_id: &str, settled: Settled) {
    if settled == Settled::TakenOver {
        tracing::warn!(
            %alert_id,
            "published, but the claim had expired and another invocation took it over: it may have sent this alert too (same alert_id)"
        );
    }
}

async fn send_metrics(
    metrics: &impl MetricsSink,
    outcome: &pipeline::Outcome,
    delivery: DeliveryCounts,
) -> Option<String> {
    let error = metrics
        .put(&metric_points(outcome, delivery))
        .await
        .err()
        .map(|err| err.to_string());
    if let Some(err) = &error {
        tracing::error!(error = %err, "metrics not all sent (alerts are unaffected)");
    }
    error
}

#[cfg(test)]
mod tests;
