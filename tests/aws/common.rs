//! Shared helpers: moto discovery, unique names, topic + queue wiring, reading SQS.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use trailwatch::ingest::SubscriptionBuilder;

/// True when a test that cannot run must fail instead of skipping: under CI, and
/// under the README's test command (`TRAILWATCH_REQUIRE_AWS_TESTS=1`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("TRAILWATCH_REQUIRE_AWS_TESTS").is_ok_and(|v| v == "1")
}

/// The moto endpoint, or `None` (after saying why) when the tests should not run.
pub fn moto_endpoint(test: &str) -> Option<String> {
    match std::env::var("TRAILWATCH_MOTO_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => {
            panic!(
                "{test}: TRAILWATCH_MOTO_ENDPOINT is not set; run the tests with scripts/test.sh"
            )
        }
        _ => {
            eprintln!("skipped {test}: no moto server (run scripts/test.sh to start one)");
            None
        }
    }
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An SNS topic with an SQS queue subscribed to it (SNS JSON envelope, not raw).
pub struct TopicWithQueue {
    pub topic_arn: String,
    pub queue_url: String,
    pub sqs: aws_sdk_sqs::Client,
}

pub async fn sdk_config() -> aws_types::SdkConfig {
    trailwatch::aws::sdk_config_from_env()
}

pub async fn topic_with_queue(fifo: bool) -> TopicWithQueue {
    let config = sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let suffix = if fifo { ".fifo" } else { "" };
    let name = unique_name("trailwatch-test");
    let mut create_topic = sns.create_topic().name(format!("{name}{suffix}"));
    let mut create_queue = sqs.create_queue().queue_name(format!("{name}{suffix}"));
    if fifo {
        create_topic = create_topic.attributes("FifoTopic", "true");
        create_queue =
            create_queue.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    }
    let topic_arn = create_topic
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = create_queue
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");
    TopicWithQueue {
        topic_arn,
        queue_url,
        sqs,
    }
}

impl TopicWithQueue {
    /// Every SNS envelope in the queue (parsed JSON), waiting until `expected` arrived
    /// or a few seconds passed.
    pub async fn receive(&self, expected: usize) -> Vec<Value> {
        let mut envelopes = Vec::new();
        for _ in 0..20 {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = output.messages();
            for message in messages {
                let body = message.body().expect("body");
                envelopes.push(serde_json::from_str(body).expect("SNS envelope JSON"));
                if let Some(handle) = message.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
            if envelopes.len() >= expected && messages.is_empty() {
                break;
            }
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        envelopes
    }
}

/// The directory of the three core rules the AWS tests alert with.
pub fn core_rules_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

/// The three core rules, compiled.
pub fn core_rules() -> trailwatch::rules::RuleSet {
    let sources = trailwatch::rules::read_rule_dir(&core_rules_dir()).expect("core rules");
    trailwatch::rules::RuleSet::compile(&sources).expect("core rules compile")
}

/// A CloudTrail record from `tests/fixtures/events/`.
pub fn fixture_event(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// A `DATA_MESSAGE` subscription event (`{"awslogs":{"data":...}}`, padded base64).
pub fn subscription_event(messages: &[String]) -> Value {
    let payload = SubscriptionBuilder::data_message()
        .messages(messages.iter().cloned())
        .payload_json();
    serde_json::from_str(&payload).expect("payload JSON")
}

/// The `CONTROL_MESSAGE` a new subscription sends.
pub fn control_message_event() -> Value {
    serde_json::from_str(&SubscriptionBuilder::control_message().payload_json())
        .expect("payload JSON")
}

/// The value of a String message attribute in an SNS envelope.
pub fn attribute<'a>(envelope: &'a Value, name: &str) -> Option<&'a str> {
    envelope["MessageAttributes"][name]["Value"].as_str()
}

/// One String attribute of every envelope, sorted (envelopes arrive in any order).
pub fn sorted_attribute(envelopes: &[Value], name: &str) -> Vec<String> {
    let mut values: Vec<String> = envelopes
        .iter()
        .filter_map(|e| attribute(e, name).map(str::to_owned))
        .collect();
    values.sort_unstable();
    values
}
