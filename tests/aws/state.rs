//! The DynamoDB state store on moto: conditional writes under contention, dedup windows,
//! a threshold (Sigma correlation) firing exactly once at the fifth failure, first-seen
//! with a learning period, and an unreachable table failing the invocation.

use serde_json::{Value, json};
use trailwatch::alert::Alert;
use trailwatch::aws::DynamoStore;
use trailwatch::rules::{RuleSet, RuleSource};
use trailwatch::state::StateStore;
use trailwatch::stateful::{Claim, Claims, Stateful};

use crate::common::{moto_endpoint, sdk_config, unique_name};

/// A state table as the template creates it (key `pk`), on moto.
pub async fn state_table() -> String {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = unique_name("trailwatch-state");
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    name
}

async fn store() -> DynamoStore {
    DynamoStore::from_conf(&sdk_config().await, state_table().await)
}

fn rules(files: &[(&str, &str)]) -> RuleSet {
    let sources: Vec<RuleSource> = files
        .iter()
        .map(|(path, text)| RuleSource {
            path: (*path).into(),
            text: (*text).into(),
        })
        .collect();
    RuleSet::compile(&sources).unwrap_or_else(|err| panic!("{err}"))
}

const FAILED_LOGIN: &str = "title: Failed console sign-in
name: failed-login
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Failure
  condition: sel
level: low
";

fn login(id: &str, ip: &str, time: &str) -> Value {
    json!({
        "eventVersion": "1.08", "eventID": id, "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com", "eventTime": time,
        "awsRegion": "us-east-1", "sourceIPAddress": ip, "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"},
        "responseElements": {"ConsoleLogin": "Failure"}
    })
}

fn matches(rules: &RuleSet, record: &Value) -> Vec<Alert> {
    rules
        .evaluate(record)
        .matched
        .into_iter()
        .map(|rule| Alert::new(rule, record.clone()))
        .collect()
}

#[tokio::test]
async fn conditional_writes_let_exactly_one_of_many_concurrent_claims_win() {
    if moto_endpoint("conditional_writes_let_exactly_one_of_many_concurrent_claims_win").is_none() {
        return;
    }
    let store = store().await;
    let claims = Claims {
        lease_ms: 60_000,
        retention_secs: 86_400,
    };
    let attempts: Vec<_> = (0..8)
        .map(|_| claims.claim(&store, "alert-1", 1_000))
        .collect();
    let results = futures_util::future::join_all(attempts).await;
    let mine: Vec<u64> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Claim::Mine(version)) => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(mine.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Claim::Mine(_) | Claim::InFlight))),
        "{results:?}"
    );
    claims
        .settle(&store, "alert-1", mine[0], true, 2_000)
        .await
        .unwrap();
    assert_eq!(
        claims.claim(&store, "alert-1", 3_000_000).await.unwrap(),
        Claim::Published
    );
    let item = store.get("alert#alert-1").await.unwrap().unwrap();
    assert_eq!(item.version, 2);
}

#[tokio::test]
async fn five_failed_sign_ins_fire_the_threshold_exactly_once_at_the_fifth() {
    if moto_endpoint("five_failed_sign_ins_fire_the_threshold_exactly_once_at_the_fifth").is_none()
    {
        return;
    }
    let correlation = "title: Console sign-in brute force
name: brute-force
correlation:
  type: event_count
  rules: [failed-login]
  group-by: [sourceIPAddress]
  timespan: 5m
  condition:
    gte: 5
level: high
";
    let rules = rules(&[
        ("failed-login.yml", FAILED_LOGIN),
        ("brute.yml", correlation),
    ]);
    let store = store().await;
    // Two function instances sharing the table, each seeing every other event.
    let (one, two) = (Stateful::new(), Stateful::new());
    let mut fired = Vec::new();
    for i in 0..8 {
        let record = login(
            &format!("e{i}"),
            "203.0.113.9",
            &format!("2026-01-01T10:00:{:02}Z", i * 5),
        );
        let stage = if i % 2 == 0 { &one } else { &two };
        let decided = stage
            .apply(&rules, &store, matches(&rules, &record), 0)
            .await
            .unwrap();
        fired.push(decided.alerts.len());
        for alert in decided.alerts {
            let c = alert.correlation.expect("a correlation alert");
            assert_eq!(c.count, 5);
            assert_eq!(c.event_ids, ["e0", "e1", "e2", "e3", "e4"]);
        }
    }
    assert_eq!(fired, [0, 0, 0, 0, 1, 0, 0, 0]);
}

#[tokio::test]
async fn dedup_windows_hold_repeats_back_and_report_them_in_the_next_alert() {
    if moto_endpoint("dedup_windows_hold_repeats_back_and_report_them_in_the_next_alert").is_none()
    {
        return;
    }
    let rule = format!("{FAILED_LOGIN}dedup:\n  by: [userIdentity.arn]\n  window: 1h\n");
    let rules = rules(&[("failed-login.yml", &rule)]);
    let store = store().await;
    let stage = Stateful::new();
    let mut alerts = Vec::new();
    let mut suppressed = 0;
    for (id, time) in [
        ("a", "2026-01-01T10:00:00Z"),
        ("b", "2026-01-01T10:20:00Z"),
        ("c", "2026-01-01T10:40:00Z"),
        ("a", "2026-01-01T10:00:00Z"), // redelivered: alerts again, for its claim to settle
        ("d", "2026-01-01T11:05:00Z"),
    ] {
        let record = login(id, "203.0.113.1", time);
        let decided = stage
            .apply(&rules, &store, matches(&rules, &record), 0)
            .await
            .unwrap();
        suppressed += decided.suppressed.len();
        alerts.extend(decided.alerts);
    }
    let ids: Vec<&str> = alerts.iter().map(|a| a.event.event_id.as_str()).collect();
    assert_eq!(ids, ["a", "a", "d"]);
    assert_eq!(suppressed, 2);
    assert_eq!(alerts[2].dedup.as_ref().unwrap().suppressed_before, 2);
}

#[tokio::test]
async fn first_seen_learns_quietly_then_alerts_on_new_source_ips() {
    if moto_endpoint("first_seen_learns_quietly_then_alerts_on_new_source_ips").is_none() {
        return;
    }
    let rule = "title: Console sign-in from a new IP
name: new-ip
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin}
  condition: sel
first_seen:
  fields: [userIdentity.arn, sourceIPAddress]
  history: 14d
  learning: 1d
level: medium
";
    let rules = rules(&[("new-ip.yml", rule)]);
    let store = store().await;
    let stage = Stateful::new();
    let mut alerted = Vec::new();
    for (id, ip, time) in [
        ("learn-1", "203.0.113.1", "2026-01-01T10:00:00Z"),
        ("learn-2", "203.0.113.2", "2026-01-01T20:00:00Z"),
        ("known", "203.0.113.1", "2026-01-03T10:00:00Z"),
        ("new", "203.0.113.3", "2026-01-03T10:05:00Z"),
        ("again", "203.0.113.3", "2026-01-03T10:10:00Z"),
    ] {
        let record = login(id, ip, time);
        let decided = stage
            .apply(&rules, &store, matches(&rules, &record), 0)
            .await
            .unwrap();
        alerted.extend(decided.alerts.into_iter().map(|a| a.event.event_id));
    }
    assert_eq!(alerted, ["new"]);
}

#[tokio::test]
async fn an_unreachable_table_is_an_error_not_a_silent_pass() {
    if moto_endpoint("an_unreachable_table_is_an_error_not_a_silent_pass").is_none() {
        return;
    }
    let store = DynamoStore::from_conf(&sdk_config().await, unique_name("no-such-table"));
    let claims = Claims {
        lease_ms: 60_000,
        retention_secs: 86_400,
    };
    let err = claims.claim(&store, "x", 0).await.unwrap_err();
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}
