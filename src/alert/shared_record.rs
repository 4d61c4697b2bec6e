//! A CloudTrail record shared by the alerts it raises, rendered once for all of them.
//!
//! One record often matches several rules (a root sign-in trips the root-activity rule,
//! a CIS alarm and SigmaHQ's root-usage rule). Its alerts hold one [`SharedRecord`], so
//! the record is not copied per alert. Its compact JSON (what the JSON alert carries) is
//! kept for the other alerts when the record is shared, and made afresh when one alert
//! holds it. The indented text of the email body is made afresh each time: kept for
//! every alerting record of a 1 MB batch until it is published, the two renderings cost
//! the function 8 MB of its memory. It is made from the record's text as it was read,
//! when the record keeps it: indenting that text is a quarter of the work of writing
//! the parsed record out again, and shows the record exactly as CloudTrail wrote it.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json_scan::end_of_plain_run;

/// A record and its renderings, made on first use.
#[derive(Debug, Clone, Default)]
pub struct SharedRecord {
    value: Value,
    /// The JSON text `value` was parsed from, when it was kept.
    text: Option<String>,
    compact: OnceLock<Box<RawValue>>,
}

impl SharedRecord {
    /// Wraps a record; nothing is rendered yet.
    pub fn new(value: Value) -> SharedRecord {
        SharedRecord {
            value,
            text: None,
            compact: OnceLock::new(),
        }
    }

    /// Wraps a record and the JSON text it was parsed from (`value` must be that text
    /// parsed): the email shows the text, indented.
    pub fn with_text(value: Value, text: String) -> SharedRecord {
        SharedRecord {
            text: Some(text),
            ..SharedRecord::new(value)
        }
    }

    /// The record.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The record as compact JSON (kept while other alerts share the record).
    pub fn compact(self: &Arc<Self>) -> Cow<'_, RawValue> {
        let render = || {
            // Serialising a `Value` cannot fail; `null` would be the fallback.
            serde_json::value::to_raw_value(&self.value)
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null"))
        };
        if Arc::strong_count(self) > 1 {
            Cow::Borrowed(self.compact.get_or_init(render))
        } else {
            Cow::Owned(render())
        }
    }

    /// The record as indented JSON, for people, laid out as serde_json's pretty printer
    /// lays it out. Made afresh each time: kept for every alerting record of a 1 MB batch
    /// until it is published, it cost the function 8 MB.
    pub fn pretty(&self) -> String {
        (self.text.as_deref().and_then(indent))
            .unwrap_or_else(|| serde_json::to_string_pretty(&self.value).unwrap_or_default())
    }
}

/// `json` (valid JSON) indented as serde_json's pretty printer does it: two spaces a
/// level, `": "` after a key, empty objects and arrays as `{}` and `[]`. Strings and
/// numbers are copied as written. `None` when the brackets do not balance.
fn indent(json: &str) -> Option<String> {
    let src = json.as_bytes();
    let mut out = Vec::with_capacity(src.len() + src.len() / 2);
    let mut depth = 0usize;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut at = 0;
    while let Some(&byte) = src.get(at) {
        at += 1;
        match byte {
            b' ' | b'\n' | b'\r' | b'\t' => {}
            b'"' => {
                let start = at - 1;
                loop {
                    at = end_of_plain_run(src, at);
                    match src.get(at)? {
                        b'\\' => at += 2,
                        b'"' => break,
                        _ => at += 1, // a control byte: not in valid JSON
                    }
                }
                at += 1;
                out.extend_from_slice(src.get(start..at)?);
            }
            b'{' | b'[' => {
                let close = if byte == b'{' { b'}' } else { b']' };
                let next = src.get(at..)?.iter().position(|b| !b" \n\r\t".contains(b));
                if next.is_some_and(|skip| src[at + skip] == close) {
                    out.extend_from_slice(&[byte, close]);
                    at += next? + 1;
                } else {
                    out.push(byte);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                newline(&mut out, depth);
                out.push(byte);
            }
            b',' => {
                out.push(b',');
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(byte),
        }
    }
    // Every byte is copied from `json` or is ASCII, at character boundaries.
    (depth == 0).then(|| String::from_utf8(out).ok())?
}

impl Deref for SharedRecord {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

impl PartialEq for SharedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialEq<Value> for SharedRecord {
    fn eq(&self, other: &Value) -> bool {
        self.value == *other
    }
}

/// The record itself (an alert serialises its shared record through
/// [`SharedRecord::compact`]).
impl Serialize for SharedRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_the_value_would_and_keeps_the_json_only_while_shared() {
        let value = json!({"eventName": "StopLogging", "n": 1.5, "s": "a\"b\u{e9}"});
        let alone = Arc::new(SharedRecord::new(value.clone()));
        assert_eq!(alone.compact().get(), value.to_string());
        assert!(
            matches!(alone.compact(), Cow::Owned(_)),
            "one holder: not kept"
        );
        assert_eq!(
            alone.pretty(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        let other = alone.clone();
        assert!(matches!(other.compact(), Cow::Borrowed(_)), "shared: kept");
        assert!(std::ptr::eq(&*alone.compact(), &*other.compact()));
        assert_eq!(other.compact().get(), value.to_string());
        assert_eq!(serde_json::to_string(&*alone).unwrap(), value.to_string());
        assert_eq!(*alone, value);
        assert_eq!(alone["eventName"], "StopLogging");
    }

    #[test]
    fn the_text_as_read_is_indented_as_serde_json_indents_the_record() {
        let records = [
            json!({"eventName": "StopLogging", "n": 1.5, "s": "a\"b\u{e9}\\ ,:{}[]", "e": {},
                   "a": [], "nested": {"x": [1, {"y": null}, [true, false]], "z": {"w": -2}}}),
            json!([]),
            json!("text"),
        ];
        for value in records {
            let text = value.to_string();
            let expected = serde_json::to_string_pretty(&value).unwrap();
            let shared = SharedRecord::with_text(value.clone(), text.clone());
            assert_eq!(shared.pretty(), expected, "{text}");
            // Whitespace as read does not change the layout.
            let spaced = SharedRecord::with_text(value, expected.replace('\n', "\r\n\t "));
            assert_eq!(spaced.pretty(), expected);
        }
        // Written as read: escapes and numbers are not rewritten.
        let shared = SharedRecord::with_text(
            json!({"a": "\u{e9}", "n": 1000.0}),
            r#"{"a":"\u00e9","n":1e3}"#.to_owned(),
        );
        assert_eq!(shared.pretty(), "{\n  \"a\": \"\\u00e9\",\n  \"n\": 1e3\n}");
        // Text that does not balance (never parsed into the value): the value is shown.
        let broken = SharedRecord::with_text(json!({"a": 1}), r#"{"a":1}}"#.to_owned());
        assert_eq!(broken.pretty(), "{\n  \"a\": 1\n}");
        let broken = SharedRecord::with_text(json!({"a": "b"}), r#"{"a":"b"#.to_owned());
        assert_eq!(broken.pretty(), "{\n  \"a\": \"b\"\n}");
    }
}
