//! The fast path for decoded subscription JSON: one pass over the text CloudWatch Logs
//! writes (`{"messageType":...,"logEvents":[{"id":...,"message":...},...]}`) that yields
//! each log event's id and message, unescaping a message eight bytes at a time.
//!
//! Every message is a CloudTrail record written as a JSON string, so it holds an escaped
//! quote every ten bytes or so; serde_json pays a call and a scratch copy per escape.
//! This scanner copies a word, then finds the first quote, backslash or control byte in
//! it, and fixes up from there. Read with a head screen, a message is unescaped only when
//! its record is kept: the head is first read in the escaped text
//! ([`crate::record::scan_escaped_head`]), and most records are ruled out there.
//!
//! It accepts only the shape CloudWatch Logs writes. On anything else (a key written with
//! an escape, a field twice, a value that is not a string where a string is expected, a
//! surrogate escape, bad JSON) it returns `None` and the caller parses the text with
//! serde_json, which decides and words the error. So whenever it returns a batch, that
//! batch equals serde_json's (a fuzz target holds that).

use super::HeadScreen;
use std::borrow::Cow;

use crate::json_scan::{Cursor, JsonCursor, hex_code, is_special, special_bytes};
use crate::record::{scan_escaped_head, scan_head_bytes};

/// What the scan read: the `messageType` and each log event's id and message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ScannedLogData {
    pub message_type: String,
    /// Empty when the object has no `logEvents` key.
    pub log_events: Vec<ScannedEvent>,
    /// Log events whose record the screen ruled out: read, checked, never kept.
    pub screened_out: u64,
}

/// A log event the batch keeps.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ScannedEvent {
    pub id: String,
    pub message: String,
    /// The screen read the record's head and let it through (false without a screen,
    /// or when the head could not be read here).
    pub screened_in: bool,
}

/// Reads decoded subscription JSON, or `None` when the text is not in the shape this
/// fast path accepts (serde_json then reads it). A message whose record's head the
/// `screen` rules out is counted, not kept.
pub(super) fn scan_log_data(text: &str, screen: Option<&dyn HeadScreen>) -> Option<ScannedLogData> {
    let mut scan = Scanner {
        text: Cursor {
            src: text.as_bytes(),
            at: 0,
        },
        scratch: Vec::new(),
        screen,
        screened_out: 0,
    };
    let data = scan.log_data()?;
    scan.skip_whitespace();
    (scan.text.at == scan.text.src.len()).then_some(data)
}

struct Scanner<'a> {
    text: Cursor<'a>,
    /// The unescaped bytes of the string being read, reused from string to string.
    scratch: Vec<u8>,
    screen: Option<&'a dyn HeadScreen>,
    screened_out: u64,
}

impl<'a> JsonCursor<'a> for Scanner<'a> {
    fn cursor(&mut self) -> &mut Cursor<'a> {
        &mut self.text
    }
}

impl<'a> Scanner<'a> {
    fn log_data(&mut self) -> Option<ScannedLogData> {
        let mut message_type = None;
        let mut log_events = None;
        self.object(|scan, key| {
            match key {
                b"messageType" if message_type.is_none() => message_type = Some(scan.string()?),
                b"logEvents" if log_events.is_none() => log_events = Some(scan.log_events()?),
                b"messageType" | b"logEvents" => return None,
                // owner, logGroup, logStream, subscriptionFilters, policyLevel: not read.
                _ => scan.skip_strings()?,
            }
            Some(())
        })?;
        Some(ScannedLogData {
            message_type: message_type?,
            log_events: log_events.unwrap_or_default(),
            screened_out: self.screened_out,
        })
    }

    fn log_events(&mut self) -> Option<Vec<ScannedEvent>> {
        let mut events = Vec::new();
        self.array(|scan| {
            let (mut id, mut message) = (None, None);
            scan.object(|scan, key| {
                match key {
                    b"id" if id.is_none() => id = Some(scan.id()?),
                    b"message" if message.is_none() => message = Some(scan.message()?),
                    b"id" | b"message" => return None,
                    b"timestamp" => scan.integer()?,
                    _ => scan.skip_strings()?,
                }
                Some(())
            })?;
            match message? {
                Some((message, screened_in)) => events.push(ScannedEvent {
                    id: id?.into_owned(),
                    message,
                    screened_in,
                }),
                None => {
                    id?;
                    scan.screened_out += 1;
                }
            }
            Some(())
        })?;
        Some(events)
    }

    /// A value the batch does not keep: a string or an array of strings.
    fn skip_strings(&mut self) -> Option<()> {
        self.skip_whitespace();
        if self.text.src.get(self.text.at) == Some(&b'[') {
            return self.array(|scan| scan.string().map(drop));
        }
        self.string().map(drop)
    }

    /// An integer without fraction or exponent (a log event's `timestamp`).
    fn integer(&mut self) -> Option<()> {
        self.skip_whitespace();
        self.expect_here(b'-');
        let start = self.text.at;
        let digits = self.digits();
        let leading_zero = digits > 1 && self.text.src[start] == b'0';
        let fraction_follows = matches!(self.text.src.get(self.text.at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !fraction_follows).then_some(())
    }

    /// A log event's id: borrowed when written without escapes (as CloudWatch Logs
    /// writes its digits), so the id of an event the screen rules out is never copied.
    fn id(&mut self) -> Option<Cow<'a, str>> {
        let start = self.text.at;
        if let Some(plain) = self.key() {
            return std::str::from_utf8(plain).ok().map(Cow::Borrowed);
        }
        self.text.at = start;
        self.string().map(Cow::Owned)
    }

    /// A string, unescaped.
    fn string(&mut self) -> Option<String> {
        let written = self.unescape_to_scratch()?;
        self.scratch_text(written)
    }

    /// The first `written` bytes of the scratch as a string of its own, checked as UTF-8
    /// (with SIMD: a message is kilobytes).
    fn scratch_text(&self, written: usize) -> Option<String> {
        simdutf8::basic::from_utf8(&self.scratch[..written])
            .ok()
            .map(str::to_owned)
    }

    /// A log event's message, unescaped, and whether the screen let it through; `None`
    /// when the screen rules its record out (the text is then never unescaped, copied or
    /// allocated, unless its head could only be read unescaped).
    fn message(&mut self) -> Option<Option<(String, bool)>> {
        let Some(screen) = self.screen else {
            return Some(Some((self.string()?, false)));
        };
        // Most records are ruled out: their head is read in the escaped text, and the
        // message is never unescaped.
        self.skip_whitespace();
        if let Some((head, end)) = scan_escaped_head(self.text.src, self.text.at) {
            if !screen.may_match(&head) {
                self.text.at = end;
                return Some(None);
            }
            return Some(Some((self.string()?, true)));
        }
        let written = self.unescape_to_scratch()?;
        let mut screened_in = false;
        if let Some(head) = scan_head_bytes(&self.scratch[..written]) {
            if !screen.may_match(&head) {
                return Some(None);
            }
            screened_in = true;
        }
        Some(Some((self.scratch_text(written)?, screened_in)))
    }

    /// Unescapes a string into the scratch, returning its length: a word at a time is
    /// copied, then fixed up from its first special byte.
    fn unescape_to_scratch(&mut self) -> Option<usize> {
        self.expect(b'"')?;
        let mut written = 0;
        loop {
            // Room for a whole word, and after up to 7 bytes of it, a 4-byte character.
            if self.scratch.len() < written + 16 {
                let grown = (self.scratch.len() * 2).max(written + 16).max(256);
                self.scratch.resize(grown, 0);
            }
            let special = match self.text.src.get(self.text.at..self.text.at + 8) {
                Some(word) => {
                    self.scratch[written..written + 8].copy_from_slice(word);
                    let mask = special_bytes(u64::from_le_bytes(word.try_into().ok()?));
                    if mask == 0 {
                        self.text.at += 8;
                        written += 8;
                        continue;
                    }
                    let skip = (mask.trailing_zeros() / 8) as usize;
                    self.text.at += skip;
                    written += skip;
                    self.text.src[self.text.at]
                }
                None => {
                    let byte = *self.text.src.get(self.text.at)?;
                    if !is_special(byte) {
                        self.scratch[written] = byte;
                        self.text.at += 1;
                        written += 1;
                        continue;
                    }
                    byte
                }
            };
            match special {
                b'"' => {
                    self.text.at += 1;
                    return Some(written);
                }
                b'\\' => {
                    let byte = match *self.text.src.get(self.text.at + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let hex = self.text.src.get(self.text.at + 2..self.text.at + 6)?;
                            let code = hex_code(hex)?;
                            // Surrogates (pairs or lone) are left to serde_json.
                            let ch = char::from_u32(code)?;
                            let encoded = ch.encode_utf8(&mut self.scratch[written..written + 4]);
                            written += encoded.len();
                            self.text.at += 6;
                            continue;
                        }
                        _ => return None,
                    };
                    self.scratch[written] = byte;
                    self.text.at += 2;
                    written += 1;
                }
                _ => return None, // a control byte: not JSON
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_string(json: &str) -> Option<String> {
        let mut scan = Scanner {
            text: Cursor {
                src: json.as_bytes(),
                at: 0,
            },
            scratch: Vec::new(),
            screen: None,
            screened_out: 0,
        };
        let text = scan.string()?;
        (scan.text.at == json.len()).then_some(text)
    }

    #[test]
    fn strings_unescape_as_serde_json_does_at_every_offset_in_a_word() {
        let pieces = [
            "a", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00e9",
            "\\u20ac", "é", "€", "😀", "{", "\\u0000", "\\u001F",
        ];
        for prefix in (0..10).chain(240..270) {
            for piece in pieces {
                for suffix in 0..10 {
                    let json = format!("\"{}{piece}{}\"", "x".repeat(prefix), "y".repeat(suffix));
                    let expected: String = serde_json::from_str(&json).unwrap();
                    assert_eq!(scan_string(&json), Some(expected), "{json}");
                }
            }
        }
    }

    #[test]
    fn strings_serde_json_refuses_or_words_differently_are_left_to_it() {
        for json in [
            "\"abc",              // unterminated
            "\"abcdefghijklmnop", // unterminated after whole words
            "\"a\\x\"",           // unknown escape
            "\"a\\u12\"",         // short \u
            "\"a\\u+123\"",       // from_str_radix takes a sign; JSON does not
            "\"\\ud83d\\ude00\"", // a surrogate pair (serde_json's job)
            "\"\\udc00\"",        // a lone surrogate
            "\"tab\there\"",      // a raw control byte
            "\"new\nline in a longer string\"",
        ] {
            assert_eq!(scan_string(json), None, "{json}");
        }
    }

    #[test]
    fn subscription_data_reads_ids_and_messages_in_any_layout() {
        let json = r#" {
            "messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": "g", "logStream": "s", "subscriptionFilters": ["f", "g"],
            "policyLevel": "ACCOUNT_LEVEL_POLICY",
            "logEvents": [
                {"id": "1", "timestamp": 1700000000000, "message": "{\"a\":\"b\\\\c\"}"},
                {"message": "x", "id": "2", "timestamp": -0}
            ]
        } "#;
        let data = scan_log_data(json, None).unwrap();
        assert_eq!(data.message_type, "DATA_MESSAGE");
        let events: Vec<(&str, &str, bool)> = (data.log_events.iter())
            .map(|e| (e.id.as_str(), e.message.as_str(), e.screened_in))
            .collect();
        assert_eq!(events, [("1", r#"{"a":"b\\c"}"#, false), ("2", "x", false)]);
        let empty = scan_log_data(r#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#, None);
        assert_eq!(empty.unwrap().log_events, []);
        let without = scan_log_data(r#"{"messageType":"CONTROL_MESSAGE"}"#, None);
        assert_eq!(without.unwrap().log_events, []);
    }

    #[test]
    fn shapes_it_does_not_expect_are_left_to_serde_json() {
        for json in [
            r#"{"messageType":"DATA_MESSAGE","messageType":"DATA_MESSAGE"}"#,
            r#"{"logEvents":[]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1"}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","id":"2","message":""}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","message":"","timestamp":1.5}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","message":"","timestamp":01}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","message":"","extractedFields":{}}]}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":null}"#,
            r#"{"message\u0054ype":"DATA_MESSAGE"}"#,
            r#"{"messageType":"DATA_MESSAGE",}"#,
            r#"{"messageType":"DATA_MESSAGE"} x"#,
            r#"{"messageType":"DATA_MESSAGE""#,
            r#"["messageType"]"#,
            "",
        ] {
            assert_eq!(scan_log_data(json, None), None, "{json}");
        }
    }

    #[test]
    fn a_screen_keeps_what_it_lets_through_marked_and_what_it_cannot_read_unmarked() {
        let keep_console_logins =
            |head: &crate::record::RecordHead<'_>| head.event_name == "ConsoleLogin";
        let record = |name: &str| {
            format!(r#"{{\"eventSource\":\"signin.amazonaws.com\",\"eventName\":\"{name}\"}}"#)
        };
        let json = format!(
            r#"{{"messageType":"DATA_MESSAGE","logEvents":[
                {{"id":"1","message":"{}"}},
                {{"id":"2","message":"{}"}},
                {{"id":"3","message":"{{\"event\\u004eame\":\"GetObject\",\"eventSource\":\"s3\"}}"}},
                {{"id":"4","message":"not json"}}
            ]}}"#,
            record("ConsoleLogin"),
            record("GetObject"),
        );
        let data = scan_log_data(&json, Some(&keep_console_logins)).unwrap();
        let kept: Vec<(&str, bool)> = (data.log_events.iter())
            .map(|e| (e.id.as_str(), e.screened_in))
            .collect();
        // 2 is ruled out; 3 (a key written with an escape) and 4 are left to the pipeline.
        assert_eq!(kept, [("1", true), ("3", false), ("4", false)]);
        assert_eq!(data.screened_out, 1);
        let unscreened = scan_log_data(&json, None).unwrap();
        assert!(unscreened.log_events.iter().all(|e| !e.screened_in));
    }
}
