//! The fast path of [`super::record_head`]: one pass over a record's text that checks it
//! is JSON and reads the head (`eventName`, `userIdentity.type`, `errorCode`) without
//! building anything, its strings skipped a word at a time.
//!
//! Most records a batch carries are calls no rule names: this scan is what they cost.
//! It reads only the shape CloudTrail writes. On anything else (a head field twice or
//! written with an escape, a key with an escape, `userIdentity` not an object, nesting
//! deeper than [`MAX_DEPTH`], bad JSON) it returns `None`, and serde_json reads the
//! record as before. So whenever it returns a head, serde_json's read returns the same
//! head (the `record_match` fuzz target holds that).
//!
//! The same scan also reads a record still escaped inside a subscription message
//! ([`scan_escaped_head`]): there a quote is written `\"` and a backslash `\\`, and
//! reading the head there spares unescaping the message of a record the screen rules
//! out. That reading accepts only the escapes CloudWatch Logs writes for a compact
//! record; on any other it gives up, and the message is unescaped and scanned as above.

use std::borrow::Cow;

use super::{ErrorCode, RecordHead};
use crate::json_scan::{Cursor, JsonCursor, end_of_plain_run, hex_code};

/// Nesting the scan follows; deeper records go to serde_json (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// The head of `text`, or `None` when the text is not in the shape this scan reads.
pub(super) fn scan_head(text: &str) -> Option<RecordHead<'_>> {
    scan_head_bytes(text.as_bytes())
}

/// [`scan_head`] of text known to be UTF-8 (an unescaped message) without checking all
/// of it again: only the head's own strings are checked, as they are borrowed.
pub(crate) fn scan_head_bytes(text: &[u8]) -> Option<RecordHead<'_>> {
    let mut scan = Scanner::<false> {
        text: Cursor { src: text, at: 0 },
    };
    let head = scan.head()?;
    scan.skip_whitespace();
    (scan.text.at == scan.text.src.len()).then_some(head)
}

/// The head of the record written as the JSON string that starts at `src[at]` (the
/// message of a log event in subscription JSON, `"{\"eventVersion\":...}"`), and the
/// index just past the string's closing quote; `None` when the string is not in the
/// shape this scan reads. Whenever it returns a head, unescaping the string ends at the
/// same index and [`scan_head_bytes`] reads the same head from its text.
pub(crate) fn scan_escaped_head(src: &[u8], at: usize) -> Option<(RecordHead<'_>, usize)> {
    let mut scan = Scanner::<true> {
        text: Cursor { src, at },
    };
    scan.expect_here(b'"')?;
    let head = scan.head()?;
    scan.skip_whitespace();
    scan.expect_here(b'"')?;
    Some((head, scan.text.at))
}

/// A scan of record text: as it is (`ESCAPED` false), or written as the content of a
/// JSON string (`ESCAPED` true), where each quote of the record is `\"`, each of its
/// backslashes `\\`, and its whitespace between tokens is spaces only.
struct Scanner<'a, const ESCAPED: bool> {
    text: Cursor<'a>,
}

impl<'a, const ESCAPED: bool> JsonCursor<'a> for Scanner<'a, ESCAPED> {
    fn cursor(&mut self) -> &mut Cursor<'a> {
        &mut self.text
    }

    fn skip_whitespace(&mut self) {
        let Cursor { src, at } = &mut self.text;
        if ESCAPED {
            // Other whitespace would be written as an escape (`\n`): left to the slow way.
            while src.get(*at) == Some(&b' ') {
                *at += 1;
            }
        } else {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = src.get(*at) {
                *at += 1;
            }
        }
    }

    /// Consumes a quote of the record: `"`, or `\"` in escaped text.
    fn quote(&mut self) -> Option<()> {
        if ESCAPED {
            self.expect_here(b'\\')?;
        }
        self.expect_here(b'"')
    }
}

impl<'a, const ESCAPED: bool> Scanner<'a, ESCAPED> {
    fn head(&mut self) -> Option<RecordHead<'a>> {
        let mut event_name = None;
        let mut event_source = None;
        let mut identity_type = None;
        let mut error_code = None;
        self.object(|scan, key| {
            match key {
                b"eventName" if event_name.is_none() => event_name = Some(scan.plain_string()?),
                b"eventSource" if event_source.is_none() => {
                    event_source = Some(scan.plain_string()?);
                }
                b"userIdentity" if identity_type.is_none() => {
                    identity_type = Some(scan.identity_type()?);
                }
                b"errorCode" if error_code.is_none() => error_code = Some(scan.error_code()?),
                b"eventName" | b"eventSource" | b"userIdentity" | b"errorCode" => return None,
                _ => scan.value(1)?,
            }
            Some(())
        })?;
        event_source?;
        Some(RecordHead {
            event_name: Cow::Borrowed(event_name?),
            identity_type: identity_type.flatten().map(Cow::Borrowed),
            error_code: error_code.flatten(),
        })
    }

    /// `userIdentity`: null, or an object whose `type` is null or a string.
    fn identity_type(&mut self) -> Option<Option<&'a str>> {
        if self.next_is_null() {
            return Some(None);
        }
        let mut kind = None;
        self.object(|scan, key| {
            match key {
                b"type" if kind.is_none() => {
                    kind = Some(match scan.next_is_null() {
                        true => None,
                        false => Some(scan.plain_string()?),
                    })
                }
                b"type" => return None,
                _ => scan.value(2)?,
            }
            Some(())
        })?;
        Some(kind.flatten())
    }

    /// `errorCode`: null (`None`), a string written without escapes, or any other value.
    fn error_code(&mut self) -> Option<Option<ErrorCode<'a>>> {
        if self.next_is_null() {
            return Some(None);
        }
        let string_start = if ESCAPED { b'\\' } else { b'"' };
        if self.text.src.get(self.text.at) == Some(&string_start) {
            let code = self.plain_string()?;
            return Some(Some(ErrorCode::Text(Cow::Borrowed(code))));
        }
        self.value(1)?;
        Some(Some(ErrorCode::NotText))
    }

    /// Skips any JSON value, checking it.
    fn value(&mut self, depth: usize) -> Option<()> {
        self.skip_whitespace();
        match *self.text.src.get(self.text.at)? {
            b'"' if !ESCAPED => self.string().map(drop),
            b'\\' if ESCAPED => self.string().map(drop),
            b'{' if depth < MAX_DEPTH => self.object(|scan, _| scan.value(depth + 1)),
            b'[' if depth < MAX_DEPTH => self.array(|scan| scan.value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A string written without escapes.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        match self.string()? {
            (text, false) => std::str::from_utf8(text).ok(),
            (_, true) => None,
        }
    }

    /// A string at the next byte, checked as serde_json checks a string it skips: its
    /// text between the quotes, and whether it has escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.quote()?;
        let start = self.text.at;
        let mut escaped = false;
        loop {
            self.text.at = end_of_plain_run(self.text.src, self.text.at);
            let at = self.text.at;
            match *self.text.src.get(at)? {
                b'"' if !ESCAPED => {
                    self.text.at += 1;
                    return Some((&self.text.src[start..at], escaped));
                }
                b'\\' if !ESCAPED => {
                    escaped = true;
                    self.text.at += 1 + self.escape_width(at + 1)?;
                }
                b'\\' => {
                    let width = match *self.text.src.get(at + 1)? {
                        b'"' => {
                            self.text.at += 2;
                            return Some((&self.text.src[start..at], escaped));
                        }
                        // The record's backslash: its escape follows, written escaped.
                        b'\\' => 2 + self.escape_width(at + 2)?,
                        b'/' => 2,
                        b'u' => self.escaped_code_point_width(at)?,
                        // A control character in a string (or an outer escape this scan
                        // does not read): the slow way words or reads it.
                        _ => return None,
                    };
                    escaped = true;
                    self.text.at += width;
                }
                _ => return None, // a control byte, or in escaped text the message's end
            }
        }
    }

    /// The width of the escape whose backslash has just been read, `src[at]` being the
    /// byte after it: what follows a record's backslash, written as the record writes it
    /// or, in escaped text, escaped again (`\\\"`, `\\\\`, `\\/`, `\\n`...).
    fn escape_width(&self, at: usize) -> Option<usize> {
        let src = self.text.src;
        match *src.get(at)? {
            b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(1),
            b'"' if !ESCAPED => Some(1),
            b'\\' if !ESCAPED => Some(1),
            b'\\' => match *src.get(at + 1)? {
                b'"' | b'\\' | b'/' => Some(2),
                _ => None,
            },
            b'u' => hex_code(src.get(at + 1..at + 5)?).map(|_| 5),
            _ => None,
        }
    }

    /// In escaped text, the width of a `\uXXXX` escape at `at` that writes a character
    /// of a string's text; `None` for a quote, a backslash, a control character or a
    /// surrogate, which the slow way reads.
    fn escaped_code_point_width(&self, at: usize) -> Option<usize> {
        let code = hex_code(self.text.src.get(at + 2..at + 6)?)?;
        let plain = code >= 0x20 && code != 0x22 && code != 0x5c;
        (plain && char::from_u32(code).is_some()).then_some(6)
    }

    /// A number as JSON writes it: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        self.expect_here(b'-');
        match *self.text.src.get(self.text.at)? {
            b'0' => self.text.at += 1,
            b'1'..=b'9' => drop(self.digits()),
            _ => return None,
        }
        if self.expect_here(b'.').is_some() {
            (self.digits() > 0).then_some(())?;
        }
        if let Some(b'e' | b'E') = self.text.src.get(self.text.at) {
            self.text.at += 1;
            if let Some(b'+' | b'-') = self.text.src.get(self.text.at) {
                self.text.at += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        // serde_json refuses a digit right after a leading zero ("01"); so does this, as
        // the caller expects a delimiter next.
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.text.at + word.len();
        (self.text.src.get(self.text.at..end) == Some(word)).then(|| self.text.at = end)
    }

    fn next_is_null(&mut self) -> bool {
        self.skip_whitespace();
        self.literal(b"null").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Projection, read_head_and_projection_with_serde};

    fn serde_head(text: &str) -> Option<RecordHead<'_>> {
        read_head_and_projection_with_serde(text, &Projection::empty()).map(|(head, _)| head)
    }

    /// The scan reads `text` and agrees with serde_json.
    fn scanned(text: &str) -> RecordHead<'_> {
        let head = scan_head(text).unwrap_or_else(|| panic!("the scan left {text}"));
        assert_eq!(Some(&head), serde_head(text).as_ref(), "{text}");
        head
    }

    #[test]
    fn reads_the_head_as_serde_json_does() {
        let head = scanned(
            r#" { "eventVersion": "1.08", "userIdentity": {"arn": "a\"b", "type": "Root",
            "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
            "eventTime": "2023-07-10T12:00:00Z", "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "errorCode": "AccessDenied",
            "requestParameters": {"n": [-0, 1.5e3, 2E-2, 10, 0.25, true, false, null, [], {}]},
            "tags": ["\u00e9\ud800", "\\/\b\f\n\r\t"] } "#,
        );
        assert_eq!(head.event_name, "GetObject");
        assert_eq!(head.identity_type.as_deref(), Some("Root"));
        assert_eq!(
            head.error_code,
            Some(ErrorCode::Text("AccessDenied".into()))
        );
        let head =
            scanned(r#"{"eventName":"A","eventSource":"s","userIdentity":null,"errorCode":null}"#);
        assert_eq!((head.identity_type, head.error_code), (None, None));
        let head = scanned(r#"{"eventName":"A","eventSource":"s","userIdentity":{"type":null}}"#);
        assert_eq!((head.identity_type, head.error_code), (None, None));
        for odd in [r#"{"x":[1]}"#, "403", "true", r#"["AccessDenied"]"#] {
            let text = format!(r#"{{"eventSource":"s","eventName":"A","errorCode": {odd} }}"#);
            assert_eq!(scanned(&text).error_code, Some(ErrorCode::NotText), "{odd}");
        }
        let head = scanned(r#"{"eventSource":"s","eventName":"A","errorCode": "" }"#);
        assert_eq!(head.error_code, Some(ErrorCode::Text("".into())));
        // An error code written with an escape is left to serde_json, which reads it.
        let text = r#"{"eventSource":"s","eventName":"A","errorCode":"Access\u0044enied"}"#;
        assert_eq!(scan_head(text), None);
        assert_eq!(
            serde_head(text).unwrap().error_code,
            Some(ErrorCode::Text("AccessDenied".into()))
        );
    }

    #[test]
    fn every_fixture_record_is_read_by_the_scan() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            scanned(&text);
            read += 1;
        }
        assert!(read >= 20, "only {read} fixture records");
    }

    /// `record` written as a JSON string, as CloudWatch Logs writes a message.
    fn as_message(record: &str) -> String {
        serde_json::to_string(record).unwrap()
    }

    #[test]
    fn reads_the_head_of_a_record_still_escaped_in_its_message() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let compact = serde_json::from_str::<serde_json::Value>(&text)
                .unwrap()
                .to_string();
            assert!(
                crate::record::check_escaped_head_scan(&as_message(&compact)),
                "{compact}"
            );
            // Pretty-printed, its newlines are escapes this scan leaves to the slow way.
            crate::record::check_escaped_head_scan(&as_message(&text));
        }
        let record = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"a\"b\\c\/d\u00e9\n"},"eventSource":"s3.amazonaws.com","eventName":"GetObject","errorCode":"AccessDenied","x":[1,-2.5e3,true,false,null,{},[]],"y":"</script> & é"}"#;
        let message = as_message(record);
        assert!(crate::record::check_escaped_head_scan(&message));
        let (head, end) = scan_escaped_head(message.as_bytes(), 0).unwrap();
        assert_eq!(end, message.len());
        assert_eq!(head.event_name, "GetObject");
        assert_eq!(head.identity_type.as_deref(), Some("AssumedRole"));
        assert_eq!(
            head.error_code,
            Some(ErrorCode::Text("AccessDenied".into()))
        );
        // Escapes another writer may use where serde_json writes the character itself.
        for other in [
            message.replace('<', r"\u003c").replace('&', r"\u0026"),
            message.replace('/', r"\/"),
            message.replace("é", r"\u00e9"),
        ] {
            assert!(crate::record::check_escaped_head_scan(&other), "{other}");
        }
        // The message ends at its closing quote, whatever follows.
        let followed = format!("{message},\"timestamp\":1}}");
        assert_eq!(
            scan_escaped_head(followed.as_bytes(), 0).unwrap().1,
            message.len()
        );
    }

    #[test]
    fn escaped_shapes_it_does_not_read_are_left_to_the_slow_way() {
        let record = r#"{"eventSource":"s","eventName":"A","z":"v"}"#;
        let message = as_message(record);
        assert!(scan_escaped_head(message.as_bytes(), 0).is_some());
        for (from, to) in [
            (r#"\"z\":"#, r#"\"z\":\n"#),         // whitespace written as an escape
            (r#"\"v\""#, r#"\"v\tw\""#),          // a control character in a string
            (r#"\"v\""#, r#"\"v\u0022\""#),       // a quote written as \u
            (r#"\"v\""#, r#"\"v\ud83d\ude00\""#), // a surrogate pair
            (r#"\"v\""#, r#"\"v\\x\""#),          // the record's bad escape
            (r#"\"v\""#, r#"\"v\\u00g0\""#),      // the record's bad \u
            (r#"\"v\""#, "\\\"v\"\\\""),          // the message ends inside a string
            (r#"\"z\""#, r#"\"\u007a\""#),        // a key with an escape
            (r#"\"A\""#, r#"\"\\u0041\""#),       // a head field with an escape
            (r#"\"v\""#, r#"v"#),                 // bad JSON in the record
        ] {
            assert!(message.contains(from), "{from}");
            let changed = message.replace(from, to);
            assert_eq!(scan_escaped_head(changed.as_bytes(), 0), None, "{changed}");
        }
        assert_eq!(scan_escaped_head(b"\"{}", 0), None);
        assert_eq!(
            scan_escaped_head(record.as_bytes(), 0),
            None,
            "not a string"
        );
    }

    #[test]
    fn shapes_it_does_not_read_are_left_to_serde_json() {
        let deep = format!(
            r#"{{"eventName":"A","eventSource":"s","x":{}1{}}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        for text in [
            r#"{"eventName":"A","eventSource":"s","eventName":"B"}"#,
            r#"{"eventName":"A\u0042","eventSource":"s"}"#,
            r#"{"event\u004eame":"A","eventSource":"s"}"#,
            r#"{"eventName":"A","eventSource":"s","userIdentity":["Root"]}"#,
            r#"{"eventName":"A","eventSource":"s","userIdentity":{"type":"R","type":"S"}}"#,
            r#"{"eventName":"A","eventSource":"s","userIdentity":{"type":1}}"#,
            r#"{"eventName":"A","eventSource":"s","errorCode":1,"errorCode":2}"#,
            r#"{"eventName":"A"}"#,
            r#"{"eventSource":"s"}"#,
            r#"{"eventName":1,"eventSource":"s"}"#,
            &deep,
        ] {
            assert_eq!(scan_head(text), None, "{text}");
        }
    }

    #[test]
    fn bad_json_is_refused_like_serde_json_refuses_it() {
        for not_a_record in ["", "{", "[]", "\"x\"", "{}x", "1", "null"] {
            assert_eq!(
                scan_head(not_a_record),
                None,
                "the scan reads {not_a_record}"
            );
        }
        for bad in [
            "",
            "{",
            "{,}",
            "[1 2]",
            "{}x",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open}"#,
            r#"{"a":NaN}"#,
            r#"{'a':1}"#,
        ] {
            let text = format!(r#"{{"eventName":"A","eventSource":"s","z":{bad}}}"#);
            assert_eq!(serde_head(&text), None, "serde_json reads {text}");
            assert_eq!(scan_head(&text), None, "the scan reads {text}");
            assert_eq!(scan_head(bad), None, "the scan reads {bad}");
        }
    }
}
