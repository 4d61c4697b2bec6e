//! What the fast JSON scans share: a cursor's moves over JSON text (whitespace, a
//! byte, an object's keys, an array's items) and a word-at-a-time search for the bytes
//! that end a run of plain string text (a quote, a backslash or a control byte). The
//! scans (`ingest`'s subscription scan, `record`'s head scan) read the JSON shapes
//! CloudWatch Logs and CloudTrail write faster than serde_json can in general; each
//! leaves any other shape to serde_json.

/// A scan's JSON text and its position in it.
pub(crate) struct Cursor<'a> {
    pub(crate) src: &'a [u8],
    /// The index of the next byte to read.
    pub(crate) at: usize,
}

/// The moves every scan makes, on its [`Cursor`]. A move that does not find what it
/// expects returns `None`: the scan gives up and serde_json decides.
pub(crate) trait JsonCursor<'a>: Sized {
    fn cursor(&mut self) -> &mut Cursor<'a>;

    fn skip_whitespace(&mut self) {
        let Cursor { src, at } = self.cursor();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = src.get(*at) {
            *at += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        self.expect_here(byte)
    }

    fn expect_here(&mut self, byte: u8) -> Option<()> {
        let Cursor { src, at } = self.cursor();
        (src.get(*at) == Some(&byte)).then(|| *at += 1)
    }

    /// Consumes `byte` after optional whitespace if it is next.
    fn next_is(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        self.expect_here(byte).is_some()
    }

    /// Consumes a string's quote at the next byte (a scan of escaped text writes it
    /// otherwise).
    fn quote(&mut self) -> Option<()> {
        self.expect_here(b'"')
    }

    /// An object key, which must be written without escapes.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.skip_whitespace();
        self.quote()?;
        let Cursor { src, at } = self.cursor();
        let (src, start) = (*src, *at);
        *at = end_of_plain_run(src, start);
        let end = *at;
        self.quote()?;
        src.get(start..end)
    }

    /// `{ "key": value, ... }`, calling `field` to read each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.next_is(b'}') {
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.expect(b':')?;
            field(self, key)?;
            if !self.next_is(b',') {
                return self.expect(b'}');
            }
        }
    }

    /// Consumes a run of ASCII digits; how many there were.
    fn digits(&mut self) -> usize {
        let Cursor { src, at } = self.cursor();
        let start = *at;
        while src.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    }

    /// `[ item, ... ]`, calling `item` to read each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.next_is(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if !self.next_is(b',') {
                return self.expect(b']');
            }
        }
    }
}

/// The high bit of each byte of `word` (little-endian) that is a quote, a backslash or a
/// control byte. Bytes above the first such byte may be flagged wrongly (a borrow), so
/// only the lowest flag is exact, and it is the only one callers read.
pub(crate) fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH_BITS: u64 = ONES << 7;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let is_control = word.wrapping_sub(ONES * 0x20) & !word;
    (is_quote | is_backslash | is_control) & HIGH_BITS
}

/// The code point the four hex digits of a `\uXXXX` escape write, if they are hex.
pub(crate) fn hex_code(hex: &[u8]) -> Option<u32> {
    let digits: &[u8; 4] = hex.try_into().ok()?;
    digits.iter().try_fold(0, |code, &digit| {
        Some(code * 16 + char::from(digit).to_digit(16)?)
    })
}

/// True for a quote, a backslash or a control byte.
pub(crate) fn is_special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// The index of the first special byte of `src` at or after `at`, or `src.len()`.
pub(crate) fn end_of_plain_run(src: &[u8], mut at: usize) -> usize {
    while let Some(word) = src.get(at..at + 8) {
        let mask = special_bytes(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        if mask != 0 {
            return at + (mask.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while src.get(at).is_some_and(|&byte| !is_special(byte)) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_special_byte_is_found_at_every_offset() {
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut text = vec![b'a'; len];
                    text.extend_from_slice("é€".as_bytes());
                    let plain = text.len();
                    text.push(special);
                    text.extend_from_slice(b"\"\\");
                    assert_eq!(end_of_plain_run(&text, at), plain, "{text:?} from {at}");
                }
            }
        }
        assert_eq!(end_of_plain_run(b"plain text, no end", 3), 18);
        assert_eq!(end_of_plain_run(b"", 0), 0);
    }
}
