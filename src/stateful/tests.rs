use serde_json::json;

use super::*;
use crate::rules::RuleSource;
use crate::state::{MemoryStore, block_on};

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

const BRUTE_FORCE: &str = "title: Console sign-in brute force
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

fn login(id: &str, ip: &str, minute: u32, second: u32) -> Value {
    json!({
        "eventVersion": "1.08", "eventID": id, "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com", "eventTime": format!("2026-01-01T10:{minute:02}:{second:02}Z"),
        "awsRegion": "us-east-1", "sourceIPAddress": ip, "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"},
        "responseElements": {"ConsoleLogin": "Failure"}
    })
}

fn matches(rules: &RuleSet, records: &[Value]) -> Vec<Alert> {
    records
        .iter()
        .flat_map(|record| {
            rules
                .evaluate(record)
                .matched
                .into_iter()
                .map(|rule| Alert::new(rule, record.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn five_failed_sign_ins_from_one_ip_alert_once_at_the_fifth() {
    let rules = rules(&[
        ("failed-login.yml", FAILED_LOGIN),
        ("brute.yml", BRUTE_FORCE),
    ]);
    let stage = Stateful::new();
    let store = MemoryStore::new();
    let mut records: Vec<Value> = (0..7)
        .map(|i| login(&format!("e{i}"), "203.0.113.9", 0, i * 10))
        .collect();
    records.push(login("other", "198.51.100.1", 0, 5));
    let mut fired = Vec::new();
    for record in &records {
        let decided = block_on(stage.apply(
            &rules,
            &store,
            matches(&rules, std::slice::from_ref(record)),
            0,
        ))
        .unwrap();
        fired.push(decided.alerts.len());
        for alert in decided.alerts {
            let summary = alert.correlation.expect("a correlation alert");
            assert_eq!(alert.rule, "brute-force");
            assert_eq!(summary.count, 5);
            assert_eq!(
                summary.group,
                [("sourceIPAddress".to_owned(), "203.0.113.9".to_owned())]
            );
            assert_eq!(summary.event_ids, ["e0", "e1", "e2", "e3", "e4"]);
            assert_eq!(alert.event.event_id, "e4");
        }
    }
    // The base rule does not alert on its own (Sigma `generate` defaults to false).
    assert_eq!(fired, [0, 0, 0, 0, 1, 0, 0, 0]);
}

#[test]
fn the_same_batch_twice_fires_the_same_alert_again_for_the_claim_to_settle() {
    let rules = rules(&[
        ("failed-login.yml", FAILED_LOGIN),
        ("brute.yml", BRUTE_FORCE),
    ]);
    let stage = Stateful::new();
    let store = MemoryStore::new();
    let records: Vec<Value> = (0..5)
        .map(|i| login(&format!("e{i}"), "203.0.113.9", 1, i))
        .collect();
    let first = block_on(stage.apply(&rules, &store, matches(&rules, &records), 0)).unwrap();
    let again = block_on(stage.apply(&rules, &store, matches(&rules, &records), 0)).unwrap();
    assert_eq!(first.alerts.len(), 1);
    assert_eq!(first.alerts, again.alerts);
    assert_eq!(first.alerts[0].dedup_key(), again.alerts[0].dedup_key());
}

#[test]
fn dedup_suppresses_repeats_and_the_next_window_reports_them() {
    let rule = format!(
        "{}dedup:\n  by: [userIdentity.arn]\n  window: 1h\n",
        FAILED_LOGIN.replace("level: low", "level: medium")
    );
    let rules = rules(&[("failed-login.yml", &rule)]);
    let stage = Stateful::new();
    let store = MemoryStore::new();
    let records = [
        login("a", "203.0.113.1", 0, 0),
        login("b", "203.0.113.2", 10, 0),
        login("c", "203.0.113.3", 59, 0),
    ];
    let decided = block_on(stage.apply(&rules, &store, matches(&rules, &records), 0)).unwrap();
    assert_eq!(decided.alerts.len(), 1);
    assert_eq!(decided.suppressed, ["failed-login", "failed-login"]);
    let mut late = login("d", "203.0.113.4", 0, 0);
    late["eventTime"] = json!("2026-01-01T11:00:00Z");
    let decided = block_on(stage.apply(&rules, &store, matches(&rules, &[late]), 0)).unwrap();
    let dedup = decided.alerts[0].dedup.as_ref().unwrap();
    assert_eq!(dedup.suppressed_before, 2);
    assert_eq!(dedup.window, "1h");
}

#[test]
fn first_seen_waits_out_its_learning_period_then_alerts_on_new_ips_only() {
    let rule = "title: Sign-in from a new IP
name: new-ip
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin}
  condition: sel
first_seen:
  fields: [userIdentity.arn, sourceIPAddress]
  history: 14d
  learning: 1h
level: medium
";
    let rules = rules(&[("new-ip.yml", rule)]);
    let stage = Stateful::new();
    let store = MemoryStore::new();
    let at = |id: &str, ip: &str, time: &str| {
        let mut record = login(id, ip, 0, 0);
        record["eventTime"] = json!(time);
        record
    };
    let learning = [
        at("a", "203.0.113.1", "2026-01-01T10:00:00Z"),
        at("b", "203.0.113.2", "2026-01-01T10:30:00Z"),
    ];
    let decided = block_on(stage.apply(&rules, &store, matches(&rules, &learning), 0)).unwrap();
    assert!(decided.alerts.is_empty(), "no alerts while learning");
    let after = [
        at("c", "203.0.113.1", "2026-01-01T12:00:00Z"),
        at("d", "203.0.113.3", "2026-01-01T12:01:00Z"),
        at("e", "203.0.113.3", "2026-01-01T12:02:00Z"),
    ];
    let decided = block_on(stage.apply(&rules, &store, matches(&rules, &after), 0)).unwrap();
    let ids: Vec<&str> = decided
        .alerts
        .iter()
        .map(|a| a.event.event_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["d"],
        "only the IP not seen during learning alerts, once"
    );
    let values = &decided.alerts[0].first_seen.as_ref().unwrap().values;
    assert_eq!(
        values[1],
        ("sourceIPAddress".to_owned(), "203.0.113.3".to_owned())
    );
}

/// Claims with a one-second lease, for the claim tests.
const ONE_SECOND_LEASE: Claims = Claims {
    lease_ms: 1_000,
    retention_secs: 86_400,
};

/// Claims `id` at `now`, which must win; its version.
fn won(store: &MemoryStore, id: &str, now: i64) -> u64 {
    match block_on(ONE_SECOND_LEASE.claim(store, id, now)).unwrap() {
        Claim::Mine(version) => version,
        other => panic!("claim of {id} at {now}: {other:?}"),
    }
}

fn settle(store: &MemoryStore, id: &str, version: u64, published: bool, now: i64) -> Settled {
    block_on(ONE_SECOND_LEASE.settle(store, id, version, published, now)).unwrap()
}

#[test]
fn a_claim_is_exclusive_until_published_or_released_or_its_lease_ends() {
    let store = MemoryStore::new();
    let claim = |now| block_on(ONE_SECOND_LEASE.claim(&store, "x", now)).unwrap();
    let version = won(&store, "x", 0);
    assert_eq!(claim(10), Claim::InFlight);
    settle(&store, "x", version, false, 10);
    let version = won(&store, "x", 20); // a released claim can be taken again
    assert_eq!(claim(2_000), Claim::Mine(version + 1));
    settle(&store, "x", version + 1, true, 2_000);
    assert_eq!(claim(9_000), Claim::Published);
}

#[test]
fn settling_a_published_alert_says_when_another_invocation_took_the_claim() {
    let store = MemoryStore::new();
    // Marked once, and the same mark again (an SDK retry whose first try landed).
    let mine = won(&store, "a", 0);
    assert_eq!(settle(&store, "a", mine, true, 10), Settled::Recorded);
    assert_eq!(settle(&store, "a", mine, true, 20), Settled::Recorded);
    // The lease ends before the holder marks it: another invocation takes it over...
    let first = won(&store, "b", 0);
    let second = won(&store, "b", 5_000);
    assert_eq!(settle(&store, "b", first, true, 5_001), Settled::TakenOver);
    // ...also once the other one has published it.
    assert_eq!(settle(&store, "b", second, true, 5_002), Settled::Recorded);
    assert_eq!(settle(&store, "b", first, true, 5_003), Settled::TakenOver);
    // A release changes nothing another invocation holds, and is recorded.
    let third = won(&store, "c", 0);
    assert_eq!(won(&store, "c", 5_000), third + 1);
    assert_eq!(settle(&store, "c", third, false, 5_001), Settled::Recorded);
    assert_eq!(
        block_on(ONE_SECOND_LEASE.claim(&store, "c", 5_002)).unwrap(),
        Claim::InFlight,
        "the taker still holds it"
    );
}

#[test]
fn rules_without_state_never_touch_the_store() {
    let rules = rules(&[("failed-login.yml", FAILED_LOGIN)]);
    let store = MemoryStore::new();
    let records = [login("a", "203.0.113.1", 0, 0)];
    let decided =
        block_on(Stateful::new().apply(&rules, &store, matches(&rules, &records), 0)).unwrap();
    assert_eq!(decided.alerts.len(), 1);
    assert!(store.is_empty());
}

#[test]
fn lower_hex_writes_two_lowercase_digits_per_byte() {
    assert_eq!(
        crate::alert::lower_hex(&[0x00, 0x0f, 0xa5, 0xff]),
        "000fa5ff"
    );
    assert_eq!(crate::alert::lower_hex(&[]), "");
    // An alert id is the SHA-256 of the rule and the event id, as 64 hex digits.
    let id = crate::alert::Alert::new(
        &crate::rules::RuleSet::compile(&[RuleSource {
            path: "r.yml".into(),
            text: FAILED_LOGIN.into(),
        }])
        .unwrap()
        .rules()[0],
        json!({"eventID": "e-1"}),
    )
    .dedup_key();
    let mut hasher = Sha256::new();
    hasher.update(b"failed-login\0e-1");
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id, expected);
}

/// An item read back with the text last written is taken as kept, decoded; an item
/// another writer changed is decoded afresh, and a corrupt one is still refused.
#[test]
fn an_item_is_decoded_again_only_when_its_text_changed() {
    let store = MemoryStore::new();
    let stateful = Stateful::new();
    let decoded = &stateful.decoded;
    let append_one = |seen: &mut Vec<Vec<u64>>| {
        block_on(
            stateful.update(&store, "k", 0, |current: Option<&Vec<u64>>| {
                let mut next = current.cloned().unwrap_or_default();
                seen.push(next.clone());
                next.push(1);
                (Some(next), ())
            }),
        )
    };
    let mut seen = Vec::new();
    append_one(&mut seen).unwrap();
    append_one(&mut seen).unwrap();
    assert!(
        decoded
            .lock()
            .unwrap()
            .get::<Vec<u64>>("k", "[1,1]")
            .is_some(),
        "the written item is kept decoded"
    );
    assert!(
        decoded
            .lock()
            .unwrap()
            .get::<Vec<u64>>("k", "[1]")
            .is_none()
    );
    assert!(
        decoded
            .lock()
            .unwrap()
            .get::<String>("k", "[1,1]")
            .is_none()
    );
    // Another writer's item, of another text.
    let version = |store: &MemoryStore| block_on(store.get("k")).unwrap().unwrap().version;
    assert_eq!(
        block_on(store.put("k", "[7]", 0, Some(version(&store)))),
        Ok(Written::Yes)
    );
    append_one(&mut seen).unwrap();
    assert_eq!(seen, [vec![], vec![1], vec![7]]);
    assert_eq!(
        block_on(store.put("k", "{not json", 0, Some(version(&store)))),
        Ok(Written::Yes)
    );
    assert!(matches!(
        append_one(&mut seen),
        Err(StateError::Corrupt { .. })
    ));
}

#[test]
fn decoded_items_are_bounded_by_their_cost() {
    let mut decoded = DecodedItems::default();
    // Each costs just under half the bound.
    let half = "x".repeat((DECODED_BYTES_KEPT / 2 - 1 - 128) / 2);
    decoded.keep("a", half.clone(), Arc::new(1u8));
    decoded.keep("b", half.clone(), Arc::new(2u8));
    assert_eq!(decoded.by_key.len(), 2);
    decoded.keep("c", half.clone(), Arc::new(3u8));
    assert_eq!(
        decoded.by_key.len(),
        1,
        "past the bound, all but the newest go"
    );
    assert_eq!(decoded.get::<u8>("c", &half).as_deref(), Some(&3));
    decoded.keep("c", "small".to_owned(), Arc::new(4u8));
    assert_eq!(
        decoded.kept_cost,
        DecodedItems::cost("c", "small"),
        "a replaced item's cost is no longer counted"
    );
    // Many empty items are bounded too.
    for i in 0..DECODED_BYTES_KEPT / 128 {
        decoded.keep(&format!("k{i}"), String::new(), Arc::new(0u8));
    }
    assert!(decoded.kept_cost <= DECODED_BYTES_KEPT);
    assert!(decoded.by_key.len() < DECODED_BYTES_KEPT / 128);
    decoded.keep("huge", "y".repeat(DECODED_BYTES_KEPT), Arc::new(5u8));
    assert!(
        decoded.by_key.is_empty(),
        "an item over half the bound is not kept"
    );
}
