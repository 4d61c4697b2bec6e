//! Every input the CLI accepts: format detection from content, gzip, subscription
//! payloads and data, CloudTrail archives, JSON arrays, single records, JSON Lines.
//!
//! Beyond "no panic": the fast paths read as the general ones do, whenever they read
//! an input at all: decoded subscription JSON and a record's head (against serde_json),
//! a record's head read still escaped in a message (against serde_json's unescaping and
//! read; the input as a message, and the input written as one), and gzip inflated in
//! one call (against flate2 streaming).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch::record::{
    Projection, check_escaped_head_scan, read_head_and_projection_with_serde, record_head,
};
use trailwatch::ingest::{
    DecodeLimits, InputFormat, RecordId, SkipReason, check_subscription_scan, gunzip_bounded,
    gunzip_streaming, parse_input,
};

const LIMITS: DecodeLimits = DecodeLimits {
    max_decompressed_bytes: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x1f, 0x8b]) {
        assert_eq!(
            gunzip_bounded(data, LIMITS).ok(),
            gunzip_streaming(data, LIMITS).ok(),
            "one-call and streaming gunzip differ"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert_ne!(
            check_subscription_scan(text),
            Some(false),
            "the subscription scan and serde_json read {text:?} differently"
        );
        assert_eq!(
            record_head(text),
            read_head_and_projection_with_serde(text, &Projection::empty()).map(|(head, _)| head),
            "the head scan and serde_json read {text:?} differently"
        );
        // Each panics when the escaped read and serde_json's differ.
        check_escaped_head_scan(text);
        check_escaped_head_scan(&serde_json::to_string(text).expect("a string serialises"));
    }
    let Ok(batch) = parse_input(data.to_vec(), LIMITS) else {
        return;
    };
    assert!(
        batch.format.is_some(),
        "a batch always says what it was read as"
    );
    if batch.format != Some(InputFormat::JsonLines) {
        assert!(batch.skipped.is_empty());
    }
    for record in &batch.records {
        if let RecordId::Line(n) = record.id {
            assert!(n >= 1, "lines are 1-based");
            assert_eq!(record.text, record.text.trim(), "JSON Lines are trimmed");
            assert!(!record.text.is_empty() && !record.text.contains('\n'));
        }
    }
    for skipped in &batch.skipped {
        assert!(matches!(skipped.reason, SkipReason::NotUtf8 { .. }));
    }
});
