//! Input formats: detects what a blob of bytes is from its content (not its file name)
//! and splits it into records.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::decode::{decode_base64_into, gunzip_bounded_into, maybe_gunzip};
use super::subscription_scan::{ScannedEvent, ScannedLogData, scan_log_data};
use super::{
    Batch, DecodeLimits, HeadScreen, IngestError, InputFormat, RawRecord, RecordId, SkipReason,
    Skipped,
};

/// The event a CloudWatch Logs subscription delivers to Lambda.
///
/// `aws_lambda_events`' own `LogsEvent` gunzips without a size bound while it
/// deserializes, so the Lambda takes this envelope and decodes with [`DecodeLimits`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEnvelope {
    /// The `awslogs` object.
    pub awslogs: AwsLogsData,
}

/// The `awslogs` object of a subscription event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsLogsData {
    /// base64(gzip(subscription JSON)).
    pub data: String,
}

impl SubscriptionEnvelope {
    /// Decodes `awslogs.data` (base64, bounded gunzip) into a batch.
    pub fn decode(&self, limits: DecodeLimits) -> Result<Batch, IngestError> {
        self.decode_screened(limits, None)
    }

    /// [`SubscriptionEnvelope::decode`], ruling out records by their head as it reads.
    pub fn decode_screened(
        &self,
        limits: DecodeLimits,
        screen: Option<&dyn HeadScreen>,
    ) -> Result<Batch, IngestError> {
        let mut buffers = DECODE_BUFFERS.take();
        let batch = decode_base64_into(&self.awslogs.data, &mut buffers.compressed)
            .and_then(|()| gunzip_bounded_into(&buffers.compressed, limits, &mut buffers.json))
            .and_then(|()| parse_subscription_data_screened(&buffers.json, screen));
        if buffers.json.capacity() <= DecodeBuffers::MAX_KEPT_BYTES {
            DECODE_BUFFERS.set(buffers);
        }
        batch
    }
}

/// A thread's buffers for decoding subscription payloads: the gzip bytes and the
/// subscription JSON. Kept from one payload to the next, since a megabyte allocated
/// afresh per payload is fresh pages the kernel zeroes each time (with several threads
/// the allocator hands them back to it more often: a fifth of `trailwatch scan`'s CPU
/// on two cores went to zeroing pages before these were kept).
#[derive(Default)]
struct DecodeBuffers {
    compressed: Vec<u8>,
    json: Vec<u8>,
}

impl DecodeBuffers {
    /// Buffers past this are dropped after their payload rather than kept: what a
    /// subscription delivery inflates to, with room (a rare large input should not
    /// stay resident for the life of the thread).
    const MAX_KEPT_BYTES: usize = 8 << 20;
}

thread_local! {
    static DECODE_BUFFERS: std::cell::Cell<DecodeBuffers> = std::cell::Cell::default();
}

/// Parses a whole subscription event (`{"awslogs":{"data":"..."}}`) as bytes.
pub fn parse_subscription_event(
    payload: &[u8],
    limits: DecodeLimits,
) -> Result<Batch, IngestError> {
    parse_subscription_event_screened(payload, limits, None)
}

/// [`parse_subscription_event`], ruling out records by their head as it reads.
pub fn parse_subscription_event_screened(
    payload: &[u8],
    limits: DecodeLimits,
    screen: Option<&dyn HeadScreen>,
) -> Result<Batch, IngestError> {
    let envelope: SubscriptionEnvelope =
        serde_json::from_slice(payload).map_err(IngestError::Envelope)?;
    envelope.decode_screened(limits, screen)
}

/// Parses decoded subscription JSON: `DATA_MESSAGE` yields one record per log event,
/// `CONTROL_MESSAGE` yields an empty batch marked as a control message.
pub fn parse_subscription_data(json: &[u8]) -> Result<Batch, IngestError> {
    parse_subscription_data_screened(json, None)
}

fn parse_subscription_data_screened(
    json: &[u8],
    screen: Option<&dyn HeadScreen>,
) -> Result<Batch, IngestError> {
    // One SIMD UTF-8 check up front lets serde_json skip it for every string.
    let text = whole_utf8(json).map_err(IngestError::SubscriptionNotUtf8)?;
    let data = match scan_log_data(text, screen) {
        Some(data) => data,
        None => parse_log_data_with_serde(text)?,
    };
    let mut batch = Batch {
        format: Some(InputFormat::SubscriptionData),
        ..Batch::default()
    };
    match data.message_type.as_str() {
        "DATA_MESSAGE" => {
            batch.screened_out = data.screened_out;
            batch.records = (data.log_events.into_iter())
                .map(|event| RawRecord {
                    id: RecordId::LogEvent(event.id),
                    text: event.message,
                    screened_in: event.screened_in,
                })
                .collect();
        }
        "CONTROL_MESSAGE" => batch.control_message = true,
        other => return Err(IngestError::UnknownMessageType(other.to_owned())),
    }
    Ok(batch)
}

/// Reads decoded subscription JSON with serde_json: the reference [`scan_log_data`] is
/// checked against, and the reader of every shape the scan leaves (with its error).
fn parse_log_data_with_serde(text: &str) -> Result<ScannedLogData, IngestError> {
    let data: LogData = serde_json::from_str(text).map_err(IngestError::SubscriptionData)?;
    Ok(ScannedLogData {
        screened_out: 0,
        message_type: data.message_type,
        log_events: (data.log_events.into_iter())
            .map(|event| ScannedEvent {
                id: event.id,
                message: event.message,
                screened_in: false,
            })
            .collect(),
    })
}

/// Whether the fast path and serde_json read `text` alike: `Some(true)` when the scan
/// read it as serde_json does, `Some(false)` when they differ, `None` when the scan left
/// it. For the fuzz target that holds the scan to serde_json.
#[doc(hidden)]
pub fn check_subscription_scan(text: &str) -> Option<bool> {
    let scanned = scan_log_data(text, None)?;
    let reference = parse_log_data_with_serde(text).ok();
    Some(reference.as_ref() == Some(&scanned))
}

/// The decoded subscription JSON: only the fields trailwatch reads (the owner, group,
/// stream and filter names are ignored).
#[derive(Deserialize)]
struct LogData {
    #[serde(rename = "messageType")]
    message_type: String,
    #[serde(rename = "logEvents", default)]
    log_events: Vec<LogEvent>,
}

/// One log event of a subscription batch.
#[derive(Deserialize)]
struct LogEvent {
    id: String,
    message: String,
}

/// Which top-level keys a JSON object has, read without building the whole value.
#[derive(Deserialize)]
struct ShapeProbe<'a> {
    #[serde(borrow)]
    awslogs: Option<&'a RawValue>,
    #[serde(rename = "messageType", borrow)]
    message_type: Option<&'a RawValue>,
    #[serde(rename = "logEvents", borrow)]
    log_events: Option<&'a RawValue>,
    #[serde(rename = "Records", borrow)]
    records: Option<&'a RawValue>,
    #[serde(rename = "eventName", borrow)]
    event_name: Option<&'a RawValue>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Option<&'a RawValue>,
}

/// Reads any supported input — gzipped or not — and splits it into records.
///
/// The format comes from the content: a subscription payload, decoded subscription
/// data, a CloudTrail archive, a JSON array of records, a single record, or JSON Lines.
pub fn parse_input(bytes: Vec<u8>, limits: DecodeLimits) -> Result<Batch, IngestError> {
    parse_input_screened(bytes, limits, None)
}

/// [`parse_input`], ruling out the records of subscription data by their head as it
/// reads them (the other formats hold each record's text as it is: nothing to save).
pub fn parse_input_screened(
    bytes: Vec<u8>,
    limits: DecodeLimits,
    screen: Option<&dyn HeadScreen>,
) -> Result<Batch, IngestError> {
    let bytes = maybe_gunzip(bytes, limits)?;
    let Ok(text) = whole_utf8(&bytes) else {
        // Only JSON Lines can hold a bad line and still be worth reading.
        return json_lines_with_some_json(split_json_lines(&bytes));
    };
    let body = text.trim_start_matches('\u{feff}').trim();
    if body.starts_with('[')
        && let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(body)
    {
        return Ok(records_from_raw(items, InputFormat::RecordArray));
    }
    if body.starts_with('{') {
        match serde_json::from_str::<ShapeProbe>(body) {
            Ok(probe) => return classify_object(body, probe, limits, screen),
            Err(whole_err) if !first_line_is_json(body) => {
                return Err(IngestError::Archive(whole_err));
            }
            Err(_) => {}
        }
    }
    json_lines_with_some_json(split_json_lines(body.as_bytes()))
}

/// JSON Lines in which not one line is JSON is not a log with bad lines but something
/// else entirely (a PDF, random bytes): one clear error instead of a skip per line.
fn json_lines_with_some_json(batch: Batch) -> Result<Batch, IngestError> {
    let lines = batch.records.len() + batch.skipped.len();
    let any_json = batch
        .records
        .iter()
        .any(|record| serde_json::from_str::<serde::de::IgnoredAny>(&record.text).is_ok());
    if lines > 0 && !any_json {
        return Err(IngestError::NotJson { lines });
    }
    Ok(batch)
}

fn classify_object(
    body: &str,
    probe: ShapeProbe,
    limits: DecodeLimits,
    screen: Option<&dyn HeadScreen>,
) -> Result<Batch, IngestError> {
    if let Some(awslogs) = probe.awslogs {
        let logs: AwsLogsData =
            serde_json::from_str(awslogs.get()).map_err(IngestError::Envelope)?;
        let envelope = SubscriptionEnvelope { awslogs: logs };
        let mut batch = envelope.decode_screened(limits, screen)?;
        batch.format = Some(InputFormat::SubscriptionPayload);
        return Ok(batch);
    }
    if probe.message_type.is_some() || probe.log_events.is_some() {
        return parse_subscription_data_screened(body.as_bytes(), screen);
    }
    if let Some(records) = probe.records {
        let items: Vec<&RawValue> =
            serde_json::from_str(records.get()).map_err(IngestError::Archive)?;
        return Ok(records_from_raw(items, InputFormat::Archive));
    }
    if probe.event_name.is_some() || probe.event_source.is_some() {
        return Ok(Batch {
            records: vec![RawRecord {
                id: RecordId::Index(0),
                text: body.to_owned(),
                screened_in: false,
            }],
            format: Some(InputFormat::SingleRecord),
            ..Batch::default()
        });
    }
    Err(IngestError::UnknownFormat)
}

fn records_from_raw(items: Vec<&RawValue>, format: InputFormat) -> Batch {
    Batch {
        records: items
            .into_iter()
            .enumerate()
            .map(|(index, raw)| RawRecord {
                id: RecordId::Index(index),
                text: raw.get().to_owned(),
                screened_in: false,
            })
            .collect(),
        format: Some(format),
        ..Batch::default()
    }
}

fn first_line_is_json(body: &str) -> bool {
    let first = body.lines().next().unwrap_or_default();
    serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok()
}

/// `bytes` as text, checked a vector at a time (a whole payload: megabytes); the error,
/// rare, is std's, which says where.
fn whole_utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// Splits JSON Lines; a line that is not UTF-8 is recorded as unreadable, not fatal.
fn split_json_lines(bytes: &[u8]) -> Batch {
    let mut batch = Batch {
        format: Some(InputFormat::JsonLines),
        ..Batch::default()
    };
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let id = RecordId::Line(index + 1);
        match std::str::from_utf8(line) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => batch.records.push(RawRecord {
                id,
                text: text.trim().to_owned(),
                screened_in: false,
            }),
            Err(err) => batch.skipped.push(Skipped {
                id,
                reason: SkipReason::NotUtf8 {
                    valid_up_to: err.valid_up_to(),
                },
            }),
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{SubscriptionBuilder, gzip};

    fn subscription_json(message_type: &'static str, messages: &[&str]) -> String {
        SubscriptionBuilder::data_message()
            .with_message_type(message_type)
            .messages(messages.iter().copied())
            .data_json()
    }

    fn envelope(json: &str) -> Vec<u8> {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(gzip(json.as_bytes()));
        serde_json::json!({"awslogs": {"data": data}})
            .to_string()
            .into_bytes()
    }

    fn texts(batch: &Batch) -> Vec<&str> {
        batch.records.iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn data_message_yields_log_events_with_ids() {
        let payload = envelope(&subscription_json("DATA_MESSAGE", &["{\"a\":1}", "x"]));
        let batch = parse_subscription_event(&payload, DecodeLimits::default()).unwrap();
        assert_eq!(texts(&batch), ["{\"a\":1}", "x"]);
        assert_eq!(
            batch.records[1].id,
            RecordId::LogEvent(crate::ingest::log_event_id(1))
        );
        assert!(!batch.control_message);
    }

    #[test]
    fn control_message_is_empty_not_an_error() {
        let payload = envelope(&subscription_json(
            "CONTROL_MESSAGE",
            &["CWL CONTROL MESSAGE"],
        ));
        let batch = parse_subscription_event(&payload, DecodeLimits::default()).unwrap();
        assert!(batch.control_message);
        assert!(batch.records.is_empty());
    }

    #[test]
    fn a_control_message_counts_no_event_read_with_a_screen_or_without() {
        let json = r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"1","message":"{\"eventName\":\"X\",\"eventSource\":\"s\"}"}]}"#;
        let rule_out_all = |_: &crate::record::RecordHead<'_>| false;
        for screen in [None, Some(&rule_out_all as &dyn HeadScreen)] {
            let batch = parse_subscription_data_screened(json.as_bytes(), screen).unwrap();
            assert!(batch.control_message);
            assert_eq!((batch.records.len(), batch.screened_out), (0, 0));
        }
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        let payload = envelope(&subscription_json("SOMETHING", &[]));
        let err = parse_subscription_event(&payload, DecodeLimits::default()).unwrap_err();
        assert!(err.to_string().contains("SOMETHING"), "{err}");
    }

    #[test]
    fn detects_every_format_from_content() {
        let cases: [(Vec<u8>, InputFormat, usize); 7] = [
            (
                envelope(&subscription_json("DATA_MESSAGE", &["{}"])),
                InputFormat::SubscriptionPayload,
                1,
            ),
            (
                subscription_json("DATA_MESSAGE", &["{}", "{}"]).into_bytes(),
                InputFormat::SubscriptionData,
                2,
            ),
            (
                br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#.to_vec(),
                InputFormat::Archive,
                2,
            ),
            (
                gzip(br#"{"Records":[{"eventName":"A"}]}"#),
                InputFormat::Archive,
                1,
            ),
            (
                br#"[{"eventName":"A"}]"#.to_vec(),
                InputFormat::RecordArray,
                1,
            ),
            (
                b"{\"eventName\":\"A\",\n \"eventSource\":\"s\"}".to_vec(),
                InputFormat::SingleRecord,
                1,
            ),
            (
                b"{\"eventName\":\"A\"}\n\n{\"eventName\":\"B\"}\n".to_vec(),
                InputFormat::JsonLines,
                2,
            ),
        ];
        for (bytes, format, count) in cases {
            let batch = parse_input(bytes, DecodeLimits::default()).unwrap();
            assert_eq!(batch.format, Some(format));
            assert_eq!(batch.records.len(), count, "{format:?}");
        }
    }

    #[test]
    fn archive_records_keep_their_text_and_index() {
        let batch = parse_input(
            br#"{"Records":[ {"a": 1} ,{"b":2}]}"#.to_vec(),
            DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(texts(&batch), [r#"{"a": 1}"#, r#"{"b":2}"#]);
        assert_eq!(batch.records[1].id, RecordId::Index(1));
    }

    #[test]
    fn input_with_no_json_line_is_unreadable() {
        for garbage in [
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n".to_vec(),
            (0..=255u8).cycle().take(4096).collect(),
            b"hello\nworld\n".to_vec(),
        ] {
            let err = parse_input(garbage, DecodeLimits::default()).unwrap_err();
            assert!(
                matches!(err, IngestError::NotJson { lines } if lines > 0),
                "{err}"
            );
        }
    }

    #[test]
    fn json_lines_with_a_bad_line_keeps_the_rest() {
        let batch = parse_input(
            b"{\"a\":1}\nnot json\n\xff\xfe\n{\"b\":2}".to_vec(),
            DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(texts(&batch), ["{\"a\":1}", "not json", "{\"b\":2}"]);
        assert_eq!(batch.skipped.len(), 1);
        assert_eq!(batch.skipped[0].id, RecordId::Line(3));
        assert_eq!(
            batch.skipped[0].reason,
            SkipReason::NotUtf8 { valid_up_to: 0 }
        );
    }

    #[test]
    fn truncated_archive_is_a_clear_error() {
        let err = parse_input(
            b"{\n\"Records\": [\n{\"eventName\":\"A\"},\n".to_vec(),
            DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, IngestError::Archive(_)), "{err}");
    }

    #[test]
    fn unknown_object_is_a_clear_error() {
        let err =
            parse_input(br#"{"hello":"world"}"#.to_vec(), DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, IngestError::UnknownFormat));
    }

    #[test]
    fn empty_input_is_an_empty_batch() {
        let batch = parse_input(Vec::new(), DecodeLimits::default()).unwrap();
        assert!(batch.records.is_empty());
    }
}
