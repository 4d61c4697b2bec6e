//! The fast path of [`super::record_head`]: one pass over a record's text that checks it
//! is JSON and reads the head (`eventName`, `userIdentity.type`, whether there is an
//! `errorCode`) without building anything, its strings skipped a word at a time.
//!
//! Most records a batch carries are calls no rule names: this scan is what they cost.
//! It reads only the shape CloudTrail writes. On anything else (a head field twice or
//! written with an escape, a key with an escape, `userIdentity` not an object, nesting
//! deeper than [`MAX_DEPTH`], bad JSON) it returns `None`, and serde_json reads the
//! record as before. So whenever it returns a head, serde_json's read returns the same
//! head (the `record_match` fuzz target holds that).

use std::borrow::Cow;

use super::RecordHead;
use crate::json_scan::{Cursor, JsonCursor, end_of_plain_run};

/// Nesting the scan follows; deeper records go to serde_json (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// The head of `text`, or `None` when the text is not in the shape this scan reads.
pub(super) fn scan_head(text: &str) -> Option<RecordHead<'_>> {
    scan_head_bytes(text.as_bytes())
}

/// [`scan_head`] of text known to be UTF-8 (an unescaped message) without checking all
/// of it again: only the head's own strings are checked, as they are borrowed.
pub(crate) fn scan_head_bytes(text: &[u8]) -> Option<RecordHead<'_>> {
    let mut scan = Scanner {
        text: Cursor { src: text, at: 0 },
    };
    let head = scan.head()?;
    scan.skip_whitespace();
    (scan.text.at == scan.text.src.len()).then_some(head)
}

struct Scanner<'a> {
    text: Cursor<'a>,
}

impl<'a> JsonCursor<'a> for Scanner<'a> {
    fn cursor(&mut self) -> &mut Cursor<'a> {
        &mut self.text
    }
}

impl<'a> Scanner<'a> {
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
                b"errorCode" if error_code.is_none() => error_code = Some(scan.non_null(1)?),
                b"eventName" | b"eventSource" | b"userIdentity" | b"errorCode" => return None,
                _ => scan.value(1)?,
            }
            Some(())
        })?;
        event_source?;
        Some(RecordHead {
            event_name: Cow::Borrowed(event_name?),
            identity_type: identity_type.flatten().map(Cow::Borrowed),
            has_error_code: error_code.unwrap_or(false),
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

    /// Any value; true when it is not null.
    fn non_null(&mut self, depth: usize) -> Option<bool> {
        if self.next_is_null() {
            return Some(false);
        }
        self.value(depth)?;
        Some(true)
    }

    /// Skips any JSON value, checking it.
    fn value(&mut self, depth: usize) -> Option<()> {
        self.skip_whitespace();
        match *self.text.src.get(self.text.at)? {
            b'"' => self.string().map(drop),
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
        self.expect_here(b'"')?;
        let start = self.text.at;
        let mut escaped = false;
        loop {
            self.text.at = end_of_plain_run(self.text.src, self.text.at);
            match *self.text.src.get(self.text.at)? {
                b'"' => {
                    self.text.at += 1;
                    return Some((&self.text.src[start..self.text.at - 1], escaped));
                }
                b'\\' => {
                    escaped = true;
                    let width = match *self.text.src.get(self.text.at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => {
                            let hex = self.text.src.get(self.text.at + 2..self.text.at + 6)?;
                            hex.iter().all(u8::is_ascii_hexdigit).then_some(6)?
                        }
                        _ => return None,
                    };
                    self.text.at += width;
                }
                _ => return None, // a control byte
            }
        }
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
        assert!(head.has_error_code);
        let head =
            scanned(r#"{"eventName":"A","eventSource":"s","userIdentity":null,"errorCode":null}"#);
        assert_eq!((head.identity_type, head.has_error_code), (None, false));
        let head = scanned(r#"{"eventName":"A","eventSource":"s","userIdentity":{"type":null}}"#);
        assert_eq!(head.identity_type, None);
        let head = scanned(r#"{"eventSource":"s","eventName":"A","errorCode":{"x":[1]}}"#);
        assert!(head.has_error_code);
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
