//! CloudTrail records: decides whether a text is a CloudTrail record and reads the
//! fields an alert shows (who, what, where, when) out of it.
//!
//! A record stays a `serde_json::Value` so rules can reach any field; this module adds
//! the checks, the readable views, and the cheap reads the prefilter makes from a
//! record's text without building it: the head (`eventName`, identity type, error code)
//! and a [`Projection`] onto the field paths some rules read. It never rejects a record
//! for fields that are merely unusual: only non-JSON, non-objects and objects without
//! `eventName` and `eventSource` are refused.

mod head_scan;

pub(crate) use head_scan::{scan_escaped_head, scan_head_bytes};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a log event is not a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("not a CloudTrail record: JSON {0} instead of an object")]
    NotAnObject(&'static str),
    /// A field every CloudTrail record has is missing or not a string.
    #[error("not a CloudTrail record: no string `{0}`")]
    MissingField(&'static str),
}

/// Parses one log event's text as a CloudTrail record.
pub fn parse_record(text: &str) -> Result<Value, RecordError> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| RecordError::NotJson(err.to_string()))?;
    let kind = match &value {
        Value::Object(_) => None,
        Value::Array(_) => Some("array"),
        Value::String(_) => Some("string"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("boolean"),
        Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        return Err(RecordError::NotAnObject(kind));
    }
    for field in ["eventName", "eventSource"] {
        if !value.get(field).is_some_and(Value::is_string) {
            return Err(RecordError::MissingField(field));
        }
    }
    Ok(value)
}

/// The fields of a CloudTrail record the prefilter reads, taken without building the
/// record: `eventName`, `userIdentity.type` and `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHead<'a> {
    /// `eventName`.
    pub event_name: Cow<'a, str>,
    /// `userIdentity.type`, when present and a string.
    pub identity_type: Option<Cow<'a, str>>,
    /// `errorCode`, when present and not null.
    pub error_code: Option<ErrorCode<'a>>,
}

impl RecordHead<'_> {
    /// True when `errorCode` is present and not null.
    pub fn has_error_code(&self) -> bool {
        self.error_code.is_some()
    }
}

/// A record's `errorCode` (present and not null) as the prefilter reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode<'a> {
    /// A string: every error code CloudTrail writes.
    Text(Cow<'a, str>),
    /// Another JSON value (a number, boolean, array or object), which rules may still
    /// read as text.
    NotText,
}

impl<'a> ErrorCode<'a> {
    /// The `errorCode` a raw JSON value holds (`None` for null).
    fn of_raw(raw: &'a serde_json::value::RawValue) -> Option<ErrorCode<'a>> {
        match raw.get().as_bytes().first() {
            Some(b'n') => None,
            Some(b'"') => Some(match serde_json::from_str::<Text<'a>>(raw.get()) {
                Ok(Text(code)) => ErrorCode::Text(code),
                Err(_) => ErrorCode::NotText,
            }),
            _ => Some(ErrorCode::NotText),
        }
    }

    /// The `errorCode` a built JSON value holds (`None` for null).
    pub(crate) fn of_value(value: &'a Value) -> Option<ErrorCode<'a>> {
        match value {
            Value::Null => None,
            Value::String(code) => Some(ErrorCode::Text(Cow::Borrowed(code))),
            _ => Some(ErrorCode::NotText),
        }
    }

    /// The same code, owning its text.
    pub fn into_owned(self) -> ErrorCode<'static> {
        match self {
            ErrorCode::Text(code) => ErrorCode::Text(Cow::Owned(code.into_owned())),
            ErrorCode::NotText => ErrorCode::NotText,
        }
    }
}

/// Reads a record's [`RecordHead`] when the text is a JSON object with string
/// `eventName` and `eventSource` fields. `None` means "cannot tell cheaply" (not an
/// object, a field missing or not a string, a head field twice, bad JSON): the caller
/// then parses fully and gets the precise reason.
///
/// The read skips the other values without decoding them, so it accepts two things the
/// full parse refuses: a number beyond `f64` (`1e400`) and a lone surrogate escape
/// (`"\ud800"`). A record with one of those is skipped as not JSON when it is parsed;
/// when the prefilter rules it out first it is counted as processed instead. Either way
/// it is counted (read = processed + skipped) and no rule could have matched it (found
/// by fuzzing; CloudTrail does not write such values).
pub fn record_head(text: &str) -> Option<RecordHead<'_>> {
    read_head_and_projection(text, &Projection::empty()).map(|(head, _)| head)
}

/// The parts of a record some rules read: top-level keys, each built whole or only
/// down to the fields read under it (a trie of field paths). Building just these is far
/// cheaper than the whole record, and a rule reading only these paths sees the same
/// values as on the whole record: every path it reads ends at a value built whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// A short list: searched linearly, which beats hashing each key of each record.
    fields: Vec<(String, Part)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Whole,
    Fields(Projection),
}

impl Projection {
    /// Adds a field path as Sigma (rsigma) reads it: the literal top-level key, and the
    /// dot-separated path through objects (and through every element of arrays on the
    /// way). A path with an index or an escape (`a[0].b`, `a\.b`) keeps its root whole.
    pub fn add_path(&mut self, path: &str) {
        self.add_whole(path);
        if !path.contains('.') {
            return;
        }
        let root_end = path.find(['.', '[']).unwrap_or(path.len());
        if path.contains(['[', '\\']) {
            self.add_whole(&path[..root_end]);
            return;
        }
        let mut node = self;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                node.add_whole(segment);
                return;
            }
            let index = match node.fields.iter().position(|(key, _)| key == segment) {
                Some(index) => index,
                None => {
                    node.fields
                        .push((segment.to_owned(), Part::Fields(Projection::default())));
                    node.fields.len() - 1
                }
            };
            match &mut node.fields[index].1 {
                Part::Whole => return,
                Part::Fields(inner) => node = inner,
            }
        }
    }

    /// Nothing projected (the head alone is read).
    pub const fn empty() -> Projection {
        Projection { fields: Vec::new() }
    }

    /// Adds a key whose value is built whole.
    pub fn add_whole(&mut self, key: &str) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, part)) => *part = Part::Whole,
            None => self.fields.push((key.to_owned(), Part::Whole)),
        }
    }

    /// True when nothing is projected.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn part(&self, key: &str) -> Option<&Part> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, part)| part)
    }
}

/// Builds a value keeping only a projection's fields (objects), applied to every element
/// (arrays); other values are built as they are.
struct Pruned<'p>(&'p Projection);

impl<'de> serde::de::DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Pruned(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(Text(key)) = map.next_key()? {
            if let Some(value) = next_part(&mut map, self.0.part(&key))? {
                out.insert(key.into_owned(), value);
            }
        }
        Ok(Value::Object(out))
    }
}

/// A JSON string, borrowed from the text where it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The value of the map entry being read, built as far as `part` says: whole, pruned to
/// its fields, or (not projected) skipped without being built.
fn next_part<'de, A: serde::de::MapAccess<'de>>(
    map: &mut A,
    part: Option<&Part>,
) -> Result<Option<Value>, A::Error> {
    match part {
        Some(Part::Whole) => map.next_value().map(Some),
        Some(Part::Fields(inner)) => map.next_value_seed(Pruned(inner)).map(Some),
        None => map.next_value::<serde::de::IgnoredAny>().map(|_| None),
    }
}

/// [`record_head`] and, in the same pass, the record's [`Projection`]: an object holding
/// just the projected parts (built as the full parse would build them; everything else
/// is skipped without being built). For rules the prefilter cannot gate: they read a
/// few fields of every record.
pub fn read_head_and_projection<'a>(
    text: &'a str,
    keys: &Projection,
) -> Option<(RecordHead<'a>, Value)> {
    if keys.is_empty()
        && let Some(head) = head_scan::scan_head(text)
    {
        return Some((head, Value::Object(serde_json::Map::new())));
    }
    read_head_and_projection_with_serde(text, keys)
}

/// Checks the head scan of escaped text against serde_json on `escaped`, the start of
/// a JSON string holding a record (a subscription message): when the scan reads a head
/// there, serde_json must read the string ending where the scan says, and the record's
/// head from its text must be the same. Returns whether the scan read a head. For the
/// fuzz targets and tests; panics when the two disagree.
#[doc(hidden)]
pub fn check_escaped_head_scan(escaped: &str) -> bool {
    let Some((head, end)) = head_scan::scan_escaped_head(escaped.as_bytes(), 0) else {
        return false;
    };
    let text: String = serde_json::from_str(&escaped[..end])
        .unwrap_or_else(|err| panic!("the scan read {escaped:?} to {end}; serde_json: {err}"));
    let reference = read_head_and_projection_with_serde(&text, &Projection::empty());
    assert_eq!(
        reference.map(|(head, _)| head).as_ref(),
        Some(&head),
        "{escaped:?}"
    );
    assert_eq!(
        head_scan::scan_head(&text).as_ref(),
        Some(&head),
        "{text:?}"
    );
    true
}

/// [`read_head_and_projection`] by serde_json alone: the reference the head scan is
/// checked against, and the reader of every shape the scan leaves.
#[doc(hidden)]
pub fn read_head_and_projection_with_serde<'a>(
    text: &'a str,
    keys: &Projection,
) -> Option<(RecordHead<'a>, Value)> {
    use serde::de::{DeserializeSeed, Error, MapAccess, Visitor};

    #[derive(Deserialize)]
    struct Identity<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
    }

    struct Reader<'k>(&'k Projection);

    /// `Some` once a field was read: a second one is a duplicate.
    fn once<T, E: Error>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), E> {
        if slot.replace(value).is_some() {
            return Err(E::duplicate_field(field));
        }
        Ok(())
    }

    impl<'de> Visitor<'de> for Reader<'_> {
        type Value = (RecordHead<'de>, serde_json::Map<String, Value>);

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a CloudTrail record")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut event_name = None;
            let mut event_source = None;
            let mut identity_type: Option<Option<Cow<'de, str>>> = None;
            let mut error_code = None;
            let mut projection = serde_json::Map::new();
            while let Some(Text(key)) = map.next_key()? {
                let part = self.0.part(&key);
                let wanted = part.is_some();
                // Only called for wanted keys, so it always builds a value.
                let build = |map: &mut A| next_part(map, part).map(Option::unwrap_or_default);
                match key.as_ref() {
                    "eventName" | "eventSource" => {
                        let Text(value) = map.next_value()?;
                        if wanted {
                            projection.insert(key.to_string(), Value::String(value.to_string()));
                        }
                        if key == "eventName" {
                            once(&mut event_name, value, "eventName")?;
                        } else {
                            once(&mut event_source, (), "eventSource")?;
                        }
                    }
                    "userIdentity" if wanted => {
                        let value = build(&mut map)?;
                        let kind = match &value {
                            Value::Null => None,
                            Value::Object(identity) => match identity.get("type") {
                                None | Some(Value::Null) => None,
                                Some(Value::String(kind)) => Some(Cow::Owned(kind.clone())),
                                Some(_) => return Err(A::Error::custom("userIdentity.type")),
                            },
                            _ => return Err(A::Error::custom("userIdentity")),
                        };
                        once(&mut identity_type, kind, "userIdentity")?;
                        projection.insert(key.into_owned(), value);
                    }
                    "userIdentity" => {
                        let identity: Option<Identity<'de>> = map.next_value()?;
                        once(
                            &mut identity_type,
                            identity.and_then(|i| i.kind),
                            "userIdentity",
                        )?;
                    }
                    "errorCode" if wanted => {
                        let value = build(&mut map)?;
                        let code = ErrorCode::of_value(&value).map(ErrorCode::into_owned);
                        once(&mut error_code, code, "errorCode")?;
                        projection.insert(key.into_owned(), value);
                    }
                    "errorCode" => {
                        let value: &'de serde_json::value::RawValue = map.next_value()?;
                        once(&mut error_code, ErrorCode::of_raw(value), "errorCode")?;
                    }
                    _ => {
                        if let Some(value) = next_part(&mut map, part)? {
                            projection.insert(key.into_owned(), value);
                        }
                    }
                }
            }
            let event_name = event_name.ok_or_else(|| A::Error::missing_field("eventName"))?;
            event_source.ok_or_else(|| A::Error::missing_field("eventSource"))?;
            let head = RecordHead {
                event_name,
                identity_type: identity_type.flatten(),
                error_code: error_code.flatten(),
            };
            Ok((head, projection))
        }
    }

    impl<'de> DeserializeSeed<'de> for Reader<'_> {
        type Value = (RecordHead<'de>, serde_json::Map<String, Value>);

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    if !text.trim_start().starts_with('{') {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let (head, projection) = Reader(keys).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some((head, Value::Object(projection)))
}

/// The facts about an event that an alert shows, read from its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// `eventID`.
    pub event_id: String,
    /// `eventName`, e.g. `ConsoleLogin`.
    pub event_name: String,
    /// `eventSource`, e.g. `signin.amazonaws.com`.
    pub event_source: String,
    /// `eventTime` as CloudTrail wrote it (UTC, RFC 3339).
    pub event_time: String,
    /// `recipientAccountId`, falling back to `userIdentity.accountId`.
    pub account_id: String,
    /// `awsRegion`.
    pub region: String,
    /// A readable principal: IAM user name, `role/session`, `root`, or the service.
    pub actor: String,
    /// `userIdentity.type`, e.g. `IAMUser`, `Root`, `AssumedRole`.
    pub actor_type: String,
    /// `userIdentity.arn`, when present.
    pub actor_arn: Option<String>,
    /// `sourceIPAddress` (an IP, or a service name for calls AWS made for you).
    pub source_ip: String,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `errorCode` of a failed call.
    pub error_code: Option<String>,
    /// `errorMessage` of a failed call.
    pub error_message: Option<String>,
}

/// The string at a JSON pointer of plain keys (`/userIdentity/arn`). Walks the keys
/// directly: `Value::pointer` unescapes every segment into a new string, which made it
/// most of the cost of building an alert.
fn text_at<'a>(record: &'a Value, pointer: &str) -> Option<&'a str> {
    pointer
        .split('/')
        .skip(1)
        .try_fold(record, |value, key| value.as_object()?.get(key))
        .and_then(Value::as_str)
}

impl EventSummary {
    /// Reads the summary of a record; absent fields become empty strings or `None`.
    /// One pass over the record's keys (most alerts' cost was looking each one up).
    pub fn from_record(record: &Value) -> Self {
        let mut summary = EventSummary::default();
        let (mut recipient, mut identity) = (None, &Value::Null);
        for (key, value) in record.as_object().into_iter().flatten() {
            let text = || value.as_str().map(str::to_owned);
            match key.as_str() {
                "eventID" => summary.event_id = text().unwrap_or_default(),
                "eventName" => summary.event_name = text().unwrap_or_default(),
                "eventSource" => summary.event_source = text().unwrap_or_default(),
                "eventTime" => summary.event_time = text().unwrap_or_default(),
                "awsRegion" => summary.region = text().unwrap_or_default(),
                "sourceIPAddress" => summary.source_ip = text().unwrap_or_default(),
                "userAgent" => summary.user_agent = text(),
                "errorCode" => summary.error_code = text(),
                "errorMessage" => summary.error_message = text(),
                "recipientAccountId" => recipient = value.as_str(),
                "userIdentity" => identity = value,
                _ => {}
            }
        }
        let identity_text = |pointer: &str| text_at(identity, pointer);
        summary.account_id = (recipient.or_else(|| identity_text("/accountId")))
            .unwrap_or_default()
            .to_owned();
        summary.actor = actor_of_identity(identity);
        summary.actor_type = identity_text("/type").unwrap_or_default().to_owned();
        summary.actor_arn = identity_text("/arn").map(str::to_owned);
        summary
    }
}

/// A readable name for who made the call.
///
/// IAM users by user name, the root user as `root`, role sessions as `role/session`
/// (so an IAM Identity Center sign-in reads `AWSReservedSSO_Admin_0123/maria`), services
/// by the service, and otherwise the ARN or principal id.
pub fn actor(record: &Value) -> String {
    actor_of_identity(record.get("userIdentity").unwrap_or(&Value::Null))
}

/// [`actor`] from the record's `userIdentity`.
fn actor_of_identity(user_identity: &Value) -> String {
    let identity = |pointer: &str| text_at(user_identity, pointer);
    let session_name = || identity("/arn").and_then(|arn| arn.rsplit('/').next());
    let found = match identity("/type").unwrap_or_default() {
        "Root" => Some("root".to_owned()),
        "IAMUser" => identity("/userName").map(str::to_owned),
        "AssumedRole" | "FederatedUser" => {
            let role = identity("/sessionContext/sessionIssuer/userName");
            match (role, session_name()) {
                (Some(role), Some(session)) if role != session => Some(format!("{role}/{session}")),
                (Some(role), _) => Some(role.to_owned()),
                (None, session) => session.map(str::to_owned),
            }
        }
        "AWSService" => identity("/invokedBy").map(str::to_owned),
        "IdentityCenterUser" => {
            identity("/onBehalfOf/userId").map(|u| format!("identity-center:{u}"))
        }
        _ => None,
    };
    found
        .or_else(|| identity("/userName").map(str::to_owned))
        .or_else(|| identity("/arn").map(str::to_owned))
        .or_else(|| identity("/principalId").map(str::to_owned))
        .or_else(|| identity("/invokedBy").map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The summary read field by field, by JSON pointer (as it was read before the one
    /// pass over the keys): the reference `from_record` is held to.
    fn summary_by_pointers(record: &Value) -> EventSummary {
        let at = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
        let owned = |pointer: &str| at(pointer).map(str::to_owned);
        let field = |pointer: &str| owned(pointer).unwrap_or_default();
        EventSummary {
            event_id: field("/eventID"),
            event_name: field("/eventName"),
            event_source: field("/eventSource"),
            event_time: field("/eventTime"),
            account_id: owned("/recipientAccountId")
                .or_else(|| owned("/userIdentity/accountId"))
                .unwrap_or_default(),
            region: field("/awsRegion"),
            actor: actor(record),
            actor_type: field("/userIdentity/type"),
            actor_arn: owned("/userIdentity/arn"),
            source_ip: field("/sourceIPAddress"),
            user_agent: owned("/userAgent"),
            error_code: owned("/errorCode"),
            error_message: owned("/errorMessage"),
        }
    }

    #[test]
    fn the_summary_reads_what_each_field_holds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut records: Vec<Value> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap())
                    .unwrap()
            })
            .collect();
        records.extend([
            json!({"recipientAccountId": 1, "userIdentity": {"accountId": "111122223333"}}),
            json!({"recipientAccountId": "444455556666", "userIdentity": "odd", "eventID": null}),
            json!({"userIdentity": {"type": 1, "arn": ["x"]}, "errorCode": {}, "userAgent": "ua"}),
            json!([1, 2]),
            json!({}),
        ]);
        for record in &records {
            assert_eq!(
                EventSummary::from_record(record),
                summary_by_pointers(record),
                "{record}"
            );
        }
    }

    fn actor_of(identity: Value) -> String {
        actor(&json!({ "userIdentity": identity }))
    }

    #[test]
    fn parse_accepts_a_cloudtrail_record() {
        let record =
            parse_record(r#"{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com"}"#);
        assert!(record.is_ok());
    }

    #[test]
    fn parse_refuses_what_is_not_a_record() {
        assert!(matches!(
            parse_record("hello"),
            Err(RecordError::NotJson(_))
        ));
        assert_eq!(parse_record("[1]"), Err(RecordError::NotAnObject("array")));
        assert_eq!(
            parse_record(r#"{"eventSource":"x"}"#),
            Err(RecordError::MissingField("eventName"))
        );
        assert_eq!(
            parse_record(r#"{"eventName":"x"}"#),
            Err(RecordError::MissingField("eventSource"))
        );
        assert_eq!(
            parse_record(r#"{"eventName":1,"eventSource":"s"}"#),
            Err(RecordError::MissingField("eventName"))
        );
    }

    #[test]
    fn a_projection_builds_only_the_keys_asked_for() {
        let mut keys = Projection::default();
        for key in ["userAgent", "userIdentity", "eventName", "errorCode"] {
            keys.add_path(key);
        }
        let project = |text: &str| read_head_and_projection(text, &keys).map(|(_, p)| p);
        let text = r#"{"eventName":"A","eventSource":"s","userAgent":"TruffleHog","userIdentity":{"type":"Root","arn":"x"},"requestParameters":{"big":[1,2,3]},"errorCode":null}"#;
        assert_eq!(
            project(text),
            Some(
                serde_json::json!({"eventName": "A", "userAgent": "TruffleHog",
                "userIdentity": {"type": "Root", "arn": "x"}, "errorCode": null})
            )
        );
        let (head, _) = read_head_and_projection(text, &keys).unwrap();
        assert_eq!(
            (
                head.event_name.as_ref(),
                head.identity_type.as_deref(),
                head.has_error_code()
            ),
            ("A", Some("Root"), false),
            "the head reads the same whether or not its fields are projected"
        );
        assert_eq!(project("[1]"), None);
        assert_eq!(project(r#"{"a":1"#), None);
        for odd in [r#""odd""#, r#"{"type":1}"#] {
            let text = format!(r#"{{"eventName":"A","eventSource":"s","userIdentity":{odd}}}"#);
            assert_eq!(project(&text), None, "{text}");
            assert_eq!(record_head(&text), None, "{text}");
        }
    }

    #[test]
    fn a_projection_builds_only_the_paths_asked_for() {
        let mut keys = Projection::default();
        for path in [
            "userIdentity.arn",
            "userIdentity.type",
            "resources.ARN",
            "a.b.c",
            "a.b",
            "x[0].y",
        ] {
            keys.add_path(path);
        }
        let text = r#"{"eventName":"A","eventSource":"s",
            "userIdentity":{"type":"AssumedRole","arn":"r","sessionContext":{"big":1}},
            "resources":[{"ARN":"1","type":"t"},{"accountId":"2"},"odd"],
            "a":{"b":{"c":1,"d":2},"e":3},"x":[{"y":1,"z":2}],"userIdentity.arn":"literal",
            "requestParameters":{"big":[1,2,3]}}"#;
        let (head, projection) = read_head_and_projection(text, &keys).unwrap();
        assert_eq!(head.identity_type.as_deref(), Some("AssumedRole"));
        assert_eq!(
            projection,
            serde_json::json!({
                "userIdentity": {"type": "AssumedRole", "arn": "r"},
                "resources": [{"ARN": "1"}, {}, "odd"],
                "a": {"b": {"c": 1, "d": 2}},
                "x": [{"y": 1, "z": 2}],
                "userIdentity.arn": "literal",
            }),
            "a path's end is built whole (a.b covers a.b.c); an index keeps its root whole"
        );
    }

    #[test]
    fn the_head_is_read_cheaply_only_from_valid_records() {
        let head = record_head(
            r#"{"eventName":"GetObject","eventSource":"s","userIdentity":{"type":"Root","arn":"a"},"errorCode":"AccessDenied"}"#,
        )
        .unwrap();
        assert_eq!(head.identity_type.as_deref(), Some("Root"));
        assert_eq!(
            head.error_code,
            Some(ErrorCode::Text(Cow::Borrowed("AccessDenied")))
        );
        let head = record_head(
            r#"{"eventName":"A","eventSource":"s","userIdentity":null,"errorCode":null}"#,
        )
        .unwrap();
        assert_eq!((head.identity_type, head.error_code), (None, None));

        let name = |text: &str| record_head(text).map(|head| head.event_name.into_owned());
        assert_eq!(
            name(r#"{"eventName":"StopLogging","eventSource":"s","x":{"y":[1]}}"#).as_deref(),
            Some("StopLogging")
        );
        assert_eq!(
            name(r#"{"eventName":"Stop\u004cogging","eventSource":"s"}"#).as_deref(),
            Some("StopLogging")
        );
        for text in [
            r#"["StopLogging","s"]"#,
            r#"{"eventName":"A"}"#,
            r#"{"eventName":1,"eventSource":"s"}"#,
            r#"{"eventName":"A","eventSource":"s""#,
            r#"{"eventName":"A","eventName":"B","eventSource":"s"}"#,
            r#"{"eventName":"A","eventSource":"s","userIdentity":"odd"}"#,
            "not json",
        ] {
            assert_eq!(name(text), None, "{text}");
        }
    }

    #[test]
    fn actor_names_each_kind_of_principal() {
        assert_eq!(
            actor_of(json!({"type": "IAMUser", "userName": "maria"})),
            "maria"
        );
        assert_eq!(
            actor_of(json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root"})),
            "root"
        );
        assert_eq!(
            actor_of(json!({"type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/maria",
                "sessionContext": {"sessionIssuer": {"userName": "AWSReservedSSO_Admin_0123"}}})),
            "AWSReservedSSO_Admin_0123/maria"
        );
        assert_eq!(
            actor_of(json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"})),
            "ec2.amazonaws.com"
        );
        assert_eq!(
            actor_of(json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLE"})),
            "AIDAEXAMPLE"
        );
        assert_eq!(actor(&json!({})), "unknown");
    }

    #[test]
    fn summary_reads_the_fields_an_alert_shows() {
        let record = json!({
            "eventID": "e1", "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
            "eventTime": "2026-11-01T10:00:00Z", "awsRegion": "eu-west-1",
            "userIdentity": {"type": "IAMUser", "userName": "bob", "accountId": "444455556666"},
            "sourceIPAddress": "192.0.2.10", "errorCode": "AccessDenied", "errorMessage": "no"
        });
        let summary = EventSummary::from_record(&record);
        assert_eq!(summary.account_id, "444455556666");
        assert_eq!(summary.actor, "bob");
        assert_eq!(summary.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(summary.user_agent, None);
    }
}
