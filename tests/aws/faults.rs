//! Proof under faults, with real parts: the Lambda binary under `cargo lambda watch`
//! (the Runtime API emulator), its SNS and DynamoDB calls going through
//! `scripts/fault_proxy.py` to moto, which throttles, fails with 5xx, resets
//! connections and fails a share of `PublishBatch` entries. Each failed invocation is
//! delivered again up to two more times, as Lambda does for asynchronous invocations;
//! then the SQS queue subscribed to the topic is read back.
//!
//! And two function processes sharing one state table, fed the same batches at the
//! same time, alert once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use trailwatch::alert::Alert;
use trailwatch::ingest::SubscriptionBuilder;

use crate::common::{core_rules, moto_endpoint, required, topic_with_queue, unique_name};
use crate::lambda_e2e::{RuntimeEmulator, cargo_lambda_available, moto_env};
use crate::state::state_table;

/// Lambda delivers a failed asynchronous invocation at most this many times in all.
const DELIVERIES: usize = 3;

/// `scripts/fault_proxy.py` in front of moto; ended on drop.
struct FaultProxy {
    child: Child,
    port: u16,
}

impl FaultProxy {
    fn start(upstream: &str, rate: f64, seed: u64) -> Option<FaultProxy> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fault_proxy.py");
        let spawned = Command::new("python3")
            .arg(script)
            .args(["--upstream", upstream, "--rate", &rate.to_string()])
            .args(["--seed", &seed.to_string(), "--port", "0"])
            .args(["--fault-services", "sns,dynamodb"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                assert!(!required(), "cannot start the fault proxy: {err}");
                eprintln!("skipped: cannot start python3 {script}: {err}");
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the proxy prints its port");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the proxy: {line:?}"));
        Some(FaultProxy { child, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> Value {
        let (status, body) = http("GET", self.port, "/__stats", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats JSON")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(method: &str, port: u16, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Invokes the function through the emulator's invoke API: Ok(summary) or Err(error).
fn invoke(emulator_port: u16, payload: &str) -> Result<Value, Value> {
    let (status, body) = http(
        "POST",
        emulator_port,
        "/2015-03-31/functions/_/invocations",
        payload,
    );
    let value: Value = serde_json::from_str(&body).unwrap_or(json!({"raw": body}));
    if status == 200 { Ok(value) } else { Err(value) }
}

/// What happened to one batch across its deliveries.
#[derive(Debug)]
struct Delivered {
    /// Deliveries made (1..=3).
    attempts: usize,
    /// The error of the last delivery, if it failed (the batch then exhausted its retries).
    last_error: Option<Value>,
}

/// Delivers `payload` as Lambda delivers an asynchronous invocation: again after a
/// failure, at most three times in all, with a pause (Lambda waits a minute or more;
/// here a little longer than the claims' lease).
fn deliver(emulator_port: u16, payload: &str, pause: Duration) -> Delivered {
    let mut last_error = None;
    for attempt in 1..=DELIVERIES {
        match invoke(emulator_port, payload) {
            Ok(_) => {
                return Delivered {
                    attempts: attempt,
                    last_error: None,
                };
            }
            Err(err) => last_error = Some(err),
        }
        std::thread::sleep(pause);
    }
    Delivered {
        attempts: DELIVERIES,
        last_error,
    }
}

fn stop_logging(id: &str, minute: usize) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventName": "StopLogging",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventTime": format!("2026-11-28T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60),
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
        "sourceIPAddress": "203.0.113.7",
        "userIdentity": {"type": "IAMUser", "userName": "mallory", "accountId": "111122223333",
            "arn": "arn:aws:iam::111122223333:user/mallory"},
        "requestParameters": {"name": "management-events"}, "responseElements": null
    })
}

fn quiet(id: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com", "eventTime": "2026-11-28T08:00:00Z",
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "ops"}
    })
}

/// Batch `index`: `index % 3` alerting events and one quiet one.
fn batch(index: usize) -> (String, BTreeSet<String>) {
    let rules = core_rules();
    let mut records = vec![quiet(&format!("quiet-{index}"))];
    let mut expected = BTreeSet::new();
    for j in 0..index % 3 {
        let record = stop_logging(&format!("batch-{index}-event-{j}"), index % 600);
        for rule in rules.evaluate(&record).matched {
            expected.insert(Alert::new(rule, record.clone()).dedup_key());
        }
        records.push(record);
    }
    let payload = SubscriptionBuilder::data_message()
        .messages(records.iter().map(Value::to_string))
        .payload_json();
    (payload, expected)
}

/// Every alert id on the queue, with how many SNS messages carried it.
async fn arrived(
    wiring: &crate::common::TopicWithQueue,
    at_least: usize,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    // SNS gives each message it accepts its own MessageId; SQS delivering one message
    // again (a delete that did not land) repeats it, and is not a second publish.
    let mut messages = BTreeSet::new();
    let mut empty_reads = 0;
    while empty_reads < 3 {
        let envelopes = wiring
            .receive(at_least.saturating_sub(counts.values().sum()))
            .await;
        if envelopes.is_empty() {
            empty_reads += 1;
        }
        for envelope in envelopes {
            let message_id = envelope["MessageId"]
                .as_str()
                .expect("every SNS envelope has a MessageId")
                .to_owned();
            if !messages.insert(message_id) {
                continue;
            }
            let id = crate::common::attribute(&envelope, "alert_id")
                .expect("every message carries alert_id")
                .to_owned();
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn under_injected_faults_every_alert_arrives_once_or_its_batch_exhausted_its_retries() {
    let test = "under_injected_faults_every_alert_arrives_once_or_its_batch_exhausted_its_retries";
    let Some(moto) = moto_endpoint(test) else {
        return;
    };
    if !cargo_lambda_available(test) {
        return;
    }
    let Some(proxy) = FaultProxy::start(&moto, 0.35, 7) else {
        return;
    };
    let wiring = topic_with_queue(false).await;
    let table = state_table().await;
    let mut env = moto_env(
        &proxy.url(),
        &wiring.topic_arn,
        &unique_name("TrailwatchFaults"),
    );
    env.extend([
        ("STATE_TABLE", table),
        // Metrics as log lines: every AWS call the function makes is SNS or DynamoDB,
        // and each one goes through the proxy.
        ("METRICS_MODE", "emf".to_owned()),
        // No SDK retries: each injected fault reaches trailwatch, and Lambda's retries
        // (below) are what recovers.
        ("AWS_MAX_ATTEMPTS", "1".to_owned()),
        // A claim released by a failed invocation whose release was itself faulted is
        // taken over after the lease; the pause between deliveries is longer.
        ("STATE_LEASE", "100ms".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    let emulator = RuntimeEmulator::start(&env);
    let port = emulator.port();

    const BATCHES: usize = 500;
    let pause = Duration::from_millis(120);
    let (expected, outcomes, redelivered) = tokio::task::spawn_blocking(move || {
        let mut expected = Vec::new();
        let mut outcomes = Vec::new();
        for index in 0..BATCHES {
            let (payload, alerts) = batch(index);
            outcomes.push(deliver(port, &payload, pause));
            expected.push(alerts);
        }
        // Subscription redelivery of every 25th batch, as a new invocation.
        let mut redelivered = Vec::new();
        for index in (0..BATCHES).step_by(25) {
            let (payload, _) = batch(index);
            redelivered.push((index, deliver(port, &payload, pause)));
        }
        (expected, outcomes, redelivered)
    })
    .await
    .expect("the driver thread");
    let stats = proxy.stats();
    let total_expected: usize = expected.iter().map(BTreeSet::len).sum();
    let counts = arrived(&wiring, total_expected).await;

    let duplicates: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let all_expected: BTreeSet<&String> = expected.iter().flatten().collect();
    let unexpected: Vec<&String> = counts
        .keys()
        .filter(|id| !all_expected.contains(id))
        .collect();
    let mut missing_batches = BTreeSet::new();
    let mut missing_alerts = 0;
    for (index, alerts) in expected.iter().enumerate() {
        let missing = alerts.iter().filter(|id| !counts.contains_key(*id)).count();
        if missing > 0 {
            missing_batches.insert(index);
            missing_alerts += missing;
        }
    }
    // A batch's last word is its redelivery's, when it was redelivered: a redelivery may
    // publish what the first delivery missed.
    let mut last: Vec<&Delivered> = outcomes.iter().collect();
    let mut delivered_once: BTreeSet<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, d)| d.last_error.is_none())
        .map(|(index, _)| index)
        .collect();
    for (index, redelivery) in &redelivered {
        last[*index] = redelivery;
        if redelivery.last_error.is_none() {
            delivered_once.insert(*index);
        }
    }
    // Batches no delivery got through: each went to the dead-letter queue.
    let exhausted: BTreeSet<usize> = (0..BATCHES)
        .filter(|index| !delivered_once.contains(index))
        .collect();
    let retried = outcomes.iter().filter(|d| d.attempts > 1).count();
    let invocations: usize = outcomes.iter().map(|d| d.attempts).sum::<usize>()
        + redelivered.iter().map(|(_, d)| d.attempts).sum::<usize>();
    // Exhausted batches whose alerts all arrived: their last delivery could not know
    // (the state table failed while checking an alert an earlier delivery had sent),
    // so failing it was right.
    let exhausted_complete: Vec<&Value> = exhausted
        .difference(&missing_batches)
        .filter_map(|index| last[*index].last_error.as_ref())
        .collect();
    println!(
        "fault run: {BATCHES} batches + {} redeliveries, {invocations} invocations ({retried} batches retried), \
         {} of {} SNS/DynamoDB calls faulted ({:.0}%: {}), {total_expected} alerts expected, \
         {} arrived, {} duplicates, {missing_alerts} missing in {} batches; {} batches exhausted their \
         retries ({} of them with every alert delivered)",
        redelivered.len(),
        stats["eligible_faulted"],
        stats["eligible_total"],
        stats["faulted_share"].as_f64().unwrap_or(0.0) * 100.0,
        stats["faults"],
        counts.len(),
        duplicates.len(),
        missing_batches.len(),
        exhausted.len(),
        exhausted_complete.len(),
    );

    assert!(
        stats["faulted_share"].as_f64().unwrap_or(0.0) >= 0.30,
        "at least 30% of the function's AWS calls are faulted: {stats}"
    );
    assert!(
        duplicates.is_empty(),
        "alerts published twice: {duplicates:?}"
    );
    assert!(
        unexpected.is_empty(),
        "alerts nobody expected: {unexpected:?}"
    );
    assert!(
        missing_batches.is_subset(&exhausted),
        "alerts lost from batches whose invocation succeeded: {:?}",
        missing_batches.difference(&exhausted).collect::<Vec<_>>()
    );
    assert!(
        exhausted_complete
            .iter()
            .all(|err| err["errorType"] == "StateUnavailable"),
        "an exhausted batch with every alert delivered failed for another reason: {:?}",
        exhausted_complete
            .iter()
            .map(|err| err["errorType"].clone())
            .collect::<Vec<_>>()
    );
    assert!(retried > 0 && !exhausted.is_empty() || missing_batches.is_empty());
    assert!(counts.len() * 2 > total_expected, "most alerts get through");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_function_processes_sharing_the_table_alert_once() {
    let test = "two_function_processes_sharing_the_table_alert_once";
    let Some(moto) = moto_endpoint(test) else {
        return;
    };
    if !cargo_lambda_available(test) {
        return;
    }
    let wiring = topic_with_queue(false).await;
    let table = state_table().await;
    let mut env = moto_env(&moto, &wiring.topic_arn, &unique_name("TrailwatchTwins"));
    env.extend([
        ("STATE_TABLE", table),
        ("METRICS_MODE", "emf".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    let (one, two) = (RuntimeEmulator::start(&env), RuntimeEmulator::start(&env));
    let ports = [one.port(), two.port()];
    const BATCHES: usize = 40;
    let expected = tokio::task::spawn_blocking(move || {
        let mut expected = BTreeSet::new();
        for index in 0..BATCHES {
            let (payload, alerts) = batch(index);
            expected.extend(alerts);
            // Both processes get the batch at the same moment; one that finds the
            // other holding an alert fails, and its retry finds it published.
            std::thread::scope(|scope| {
                for port in ports {
                    let payload = &payload;
                    scope.spawn(move || {
                        let delivered = deliver(port, payload, Duration::from_millis(200));
                        assert!(
                            delivered.last_error.is_none(),
                            "a delivery exhausted its retries without faults: {delivered:?}"
                        );
                    });
                }
            });
        }
        expected
    })
    .await
    .expect("the driver thread");
    let counts = arrived(&wiring, expected.len()).await;
    let arrived_ids: BTreeSet<&String> = counts.keys().collect();
    assert_eq!(
        arrived_ids,
        expected.iter().collect(),
        "every alert arrives"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "alerts published by both processes: {twice:?}"
    );
}
