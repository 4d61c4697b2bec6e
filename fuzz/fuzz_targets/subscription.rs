//! The Lambda's own input: a CloudWatch Logs subscription event, as bytes
//! (`parse_subscription_event`) and, when the bytes are text, as the `awslogs.data`
//! string of an already-deserialized envelope (`SubscriptionEnvelope::decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch::ingest::{
    AwsLogsData, Batch, DecodeLimits, SubscriptionEnvelope, parse_subscription_event,
};

const LIMITS: DecodeLimits = DecodeLimits {
    max_decompressed_bytes: 1 << 20,
};

fn check(batch: &Batch) {
    // A subscription batch is records or a control message, never both, and never skips.
    assert!(batch.skipped.is_empty());
    assert!(!(batch.control_message && !batch.records.is_empty()));
    // Every record's text came out of at most LIMITS bytes of decoded JSON.
    let total: usize = batch.records.iter().map(|r| r.text.len()).sum();
    assert!(total <= LIMITS.max_decompressed_bytes);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = parse_subscription_event(data, LIMITS) {
        check(&batch);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let envelope = SubscriptionEnvelope {
            awslogs: AwsLogsData {
                data: text.to_owned(),
            },
        };
        if let Ok(batch) = envelope.decode(LIMITS) {
            check(&batch);
        }
    }
});
