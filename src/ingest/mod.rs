//! Ingest: turns raw input bytes into a [`Batch`] of CloudTrail record texts.
//!
//! It owns every input format trailwatch accepts — the CloudWatch Logs subscription
//! payload a Lambda receives (`{"awslogs":{"data":"base64(gzip(json))"}}`), the decoded
//! subscription JSON, CloudTrail's S3 archive files (`{"Records":[...]}`), JSON Lines and
//! single records, each optionally gzipped — and the size bound that protects the
//! function's memory. It only splits input into records; it does not judge whether a
//! record is a CloudTrail event (that is [`crate::record`]) and never reads files itself.

mod decode;
mod encode;
mod formats;
mod subscription_scan;

pub use decode::{DecodeLimits, decode_base64, gunzip_bounded, gunzip_streaming};
pub use encode::{FIRST_TIMESTAMP, SubscriptionBuilder, gzip, log_event_id};
pub use formats::{
    AwsLogsData, SubscriptionEnvelope, check_subscription_scan, parse_input, parse_input_screened,
    parse_subscription_data, parse_subscription_event, parse_subscription_event_screened,
};

use std::fmt;

use crate::record::RecordError;

/// Why an input could not be turned into a batch at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The `awslogs.data` field is not valid base64.
    #[error("awslogs.data is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The gzip stream is corrupt or truncated.
    #[error("gzip stream is corrupt or truncated: {0}")]
    Gzip(std::io::Error),
    /// The input (after decompression) exceeds the configured bound. Each shell says
    /// how to raise it (a CLI flag, a Lambda environment variable).
    #[error("input exceeds the {limit}-byte limit on decompressed size")]
    TooLarge {
        /// The bound that was exceeded, in bytes.
        limit: usize,
    },
    /// The subscription payload's envelope is not the expected JSON shape.
    #[error("not a CloudWatch Logs subscription payload: {0}")]
    Envelope(serde_json::Error),
    /// The decoded subscription data is not the expected JSON shape.
    #[error("decoded awslogs.data is not CloudWatch Logs subscription JSON: {0}")]
    SubscriptionData(serde_json::Error),
    /// The decoded subscription data is not UTF-8.
    #[error("decoded awslogs.data is not CloudWatch Logs subscription JSON: not UTF-8 ({0})")]
    SubscriptionNotUtf8(std::str::Utf8Error),
    /// The subscription data's `messageType` is neither `DATA_MESSAGE` nor `CONTROL_MESSAGE`.
    #[error("unknown subscription messageType {0:?}")]
    UnknownMessageType(String),
    /// A CloudTrail archive file (`{"Records":[...]}`) is malformed.
    #[error("not a CloudTrail archive (expected {{\"Records\":[...]}}): {0}")]
    Archive(serde_json::Error),
    /// The input is a JSON document whose shape trailwatch does not know.
    #[error(
        "unrecognised input: expected a subscription payload, decoded subscription data, a CloudTrail archive ({{\"Records\":[...]}}), a JSON array of records, or JSON Lines"
    )]
    UnknownFormat,
    /// Not one line of the input is JSON: a binary file, a PDF, random bytes.
    #[error(
        "unreadable input: not one of its {lines} line(s) is JSON (expected CloudTrail logs: a subscription payload, an archive, a JSON array or JSON Lines)"
    )]
    NotJson {
        /// Non-empty lines seen.
        lines: usize,
    },
}

/// The shape an input turned out to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `{"awslogs":{"data":"..."}}`, as a Lambda receives it.
    SubscriptionPayload,
    /// The JSON inside `awslogs.data` (`{"messageType":...,"logEvents":[...]}`).
    SubscriptionData,
    /// A CloudTrail S3 archive file: `{"Records":[...]}`.
    Archive,
    /// A JSON array of records.
    RecordArray,
    /// One CloudTrail record.
    SingleRecord,
    /// One JSON record per line.
    JsonLines,
}

/// Where a record came from inside its input, for logs and skip reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordId {
    /// A CloudWatch Logs log-event id.
    LogEvent(String),
    /// The index in a `Records` array or JSON array.
    Index(usize),
    /// A 1-based line number in JSON Lines.
    Line(usize),
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::LogEvent(id) => write!(f, "log event {id}"),
            RecordId::Index(i) => write!(f, "record {i}"),
            RecordId::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// One record's JSON text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Where the record sits in its input.
    pub id: RecordId,
    /// The record's JSON text (not yet parsed).
    pub text: String,
    /// Read with a [`HeadScreen`] that read the record's head and let it through, so
    /// the pipeline does not screen it again. (Set wrongly, it costs a record's full
    /// read, never a verdict: the rules evaluate whatever is not screened out.)
    pub screened_in: bool,
}

/// A record that was read from its input but not matched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where the record sits in its input (a log-event id for subscriptions).
    pub id: RecordId,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a record was skipped: the one type for every skip, from ingest or parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The entry is not UTF-8 text (a JSON Lines line with stray bytes).
    #[error("not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Bytes of valid UTF-8 before the first bad one.
        valid_up_to: usize,
    },
    /// The text is not a CloudTrail record (not JSON, not an object, no `eventName`...).
    #[error(transparent)]
    NotCloudTrail(#[from] RecordError),
}

/// Decides from a record's head whether any rule may match it (see
/// [`crate::rules::RuleSet::head_screen`]). Reading subscription data with one, a
/// ruled-out message is counted in [`Batch::screened_out`] and never becomes a string.
pub trait HeadScreen: Sync {
    /// `false` rules the record out: no rule can match it.
    fn may_match(&self, head: &crate::record::RecordHead<'_>) -> bool;
}

impl<F: Fn(&crate::record::RecordHead<'_>) -> bool + Sync> HeadScreen for F {
    fn may_match(&self, head: &crate::record::RecordHead<'_>) -> bool {
        self(head)
    }
}

/// The records of one input, in input order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Records to parse and match.
    pub records: Vec<RawRecord>,
    /// Records read and checked but ruled out by a [`HeadScreen`] while reading: no rule
    /// can match them. The pipeline counts them as processed.
    pub screened_out: u64,
    /// Entries skipped before parsing; reported alongside records that fail to parse.
    pub skipped: Vec<Skipped>,
    /// True for a CloudWatch Logs `CONTROL_MESSAGE` (a health check with no events).
    pub control_message: bool,
    /// The format that was detected.
    pub format: Option<InputFormat>,
}
