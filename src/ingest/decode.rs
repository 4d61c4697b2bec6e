//! Byte-level decoding: padded or unpadded base64, and gunzip with a hard bound on the
//! decompressed size so that a gzip bomb fails fast instead of exhausting memory.

use std::io::Read;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::IngestError;

/// Bounds applied while decoding input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest decompressed (or uncompressed) input accepted, in bytes.
    pub max_decompressed_bytes: usize,
}

impl DecodeLimits {
    /// The default bound: 32 MiB. A subscription delivery carries at most about 1 MB of
    /// compressed data, which CloudTrail's JSON inflates to well under this. Peak memory
    /// is about a baseline of 15 MB plus twice the decompressed size (the text and the
    /// records split from it), so at this bound a 128 MB function keeps a wide margin,
    /// and a gzip bomb stops at the bound having written no more than it.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

/// CloudWatch pads its base64; other producers may not. Accept both.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard-alphabet base64, padded or not, ignoring surrounding whitespace.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, IngestError> {
    Ok(BASE64.decode(text.trim())?)
}

/// [`decode_base64`] into `out`, which is cleared first and keeps its allocation. Padded
/// base64 (what CloudWatch Logs sends) is decoded with SIMD, three times as fast; text
/// that decoder refuses (unpadded, or not base64) goes to [`decode_base64`]'s, which
/// accepts the former and words the error for the latter.
pub(crate) fn decode_base64_into(text: &str, out: &mut Vec<u8>) -> Result<(), IngestError> {
    let text = text.trim();
    out.clear();
    if base64_simd::STANDARD.decode_append(text, out).is_err() {
        out.clear();
        BASE64.decode_vec(text, out)?;
    }
    Ok(())
}

/// True when `bytes` start with the gzip magic number.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses a gzip stream (all members), failing once the output passes the limit.
///
/// A single member within the limit (what CloudWatch Logs delivers) is inflated by
/// libdeflate in one call, about twice as fast as streaming; anything else (several
/// members, a corrupt or truncated stream, one past the limit) is streamed by flate2,
/// which also words the error.
pub fn gunzip_bounded(compressed: &[u8], limits: DecodeLimits) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    gunzip_bounded_into(compressed, limits, &mut out)?;
    Ok(out)
}

/// [`gunzip_bounded`] into `out`, which is cleared first. The one-call path keeps `out`'s
/// allocation: a caller that decodes payload after payload into one buffer touches the
/// same pages each time instead of fresh ones the kernel must zero.
pub(crate) fn gunzip_bounded_into(
    compressed: &[u8],
    limits: DecodeLimits,
    out: &mut Vec<u8>,
) -> Result<(), IngestError> {
    if !gunzip_one_member(compressed, limits.max_decompressed_bytes, out) {
        *out = gunzip_streaming(compressed, limits)?;
    }
    Ok(())
}

/// [`gunzip_bounded`] by flate2 alone, streaming: the reference the one-call path is
/// checked against, and the reader of every stream that path leaves.
#[doc(hidden)]
pub fn gunzip_streaming(compressed: &[u8], limits: DecodeLimits) -> Result<Vec<u8>, IngestError> {
    let limit = limits.max_decompressed_bytes;
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    // Reserve the whole bound once: untouched pages cost no resident memory, and the
    // buffer never doubles (a doubling at the bound would briefly hold twice the bound).
    let mut out = Vec::with_capacity(limit.saturating_add(1));
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(IngestError::Gzip)?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

/// Inflates `compressed` into `out` when it is exactly one gzip member whose stated
/// size (the trailer's ISIZE) is within `limit` and true; false otherwise (`out` then
/// holds nothing of use).
fn gunzip_one_member(compressed: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
    // A header CRC (FHCRC): libdeflate skips it unchecked, flate2 checks it.
    const FHCRC: u8 = 0b10;
    if compressed.get(3).is_none_or(|flags| flags & FHCRC != 0) {
        return false;
    }
    let Some(&trailer) = compressed.last_chunk::<4>() else {
        return false;
    };
    let size = u32::from_le_bytes(trailer) as usize;
    if size > limit {
        return false;
    }
    // libdeflate has checked the member's CRC-32 and size; a member that ends before
    // the input does is followed by another (or by garbage): flate2 decides.
    one_gzip_member::inflate(compressed, size, out)
        .is_some_and(|read| read == compressed.len() && out.len() == size)
}

/// The one call into libdeflate's C API. libdeflater, its safe wrapper, does not say
/// how much input a gzip member used, and that is what tells one member from several.
#[allow(unsafe_code)]
mod one_gzip_member {
    use libdeflate_sys::{
        libdeflate_alloc_decompressor, libdeflate_free_decompressor, libdeflate_gzip_decompress_ex,
        libdeflate_result_LIBDEFLATE_SUCCESS,
    };

    /// Inflates the first gzip member of `input` into `out` (cleared first), allowing
    /// it `capacity` bytes: the input bytes it used, or `None` when it is corrupt or its
    /// output does not fit.
    pub(super) fn inflate(input: &[u8], capacity: usize, out: &mut Vec<u8>) -> Option<usize> {
        out.clear();
        out.reserve(capacity);
        let (mut read, mut written) = (0, 0);
        // SAFETY: the decompressor is checked for null, used by this thread only, and
        // freed before returning. libdeflate reads at most `input.len()` bytes from
        // `input`, writes at most `capacity` bytes to `out`'s allocation (`out` is empty
        // and has room for `capacity`), and writes the two counts through pointers to
        // live locals. On success it has written the first `written` bytes of `out`
        // (written <= capacity), so they are initialised.
        unsafe {
            let decompressor = libdeflate_alloc_decompressor();
            if decompressor.is_null() {
                return None;
            }
            let result = libdeflate_gzip_decompress_ex(
                decompressor,
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                capacity,
                &mut read,
                &mut written,
            );
            libdeflate_free_decompressor(decompressor);
            if result != libdeflate_result_LIBDEFLATE_SUCCESS || written > capacity {
                return None;
            }
            out.set_len(written);
        }
        Some(read)
    }
}

/// Gunzips `bytes` when they are gzip, and enforces the size bound either way.
pub(crate) fn maybe_gunzip(bytes: Vec<u8>, limits: DecodeLimits) -> Result<Vec<u8>, IngestError> {
    if is_gzip(&bytes) {
        return gunzip_bounded(&bytes, limits);
    }
    if bytes.len() > limits.max_decompressed_bytes {
        return Err(IngestError::TooLarge {
            limit: limits.max_decompressed_bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::gzip;

    fn limit(n: usize) -> DecodeLimits {
        DecodeLimits {
            max_decompressed_bytes: n,
        }
    }

    #[test]
    fn base64_accepts_padded_and_unpadded() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64(" aGk=\n").unwrap(), b"hi");
    }

    #[test]
    fn base64_rejects_garbage() {
        assert!(matches!(decode_base64("@@@"), Err(IngestError::Base64(_))));
    }

    #[test]
    fn gunzip_round_trips_at_the_limit() {
        let data = vec![b'a'; 1000];
        assert_eq!(gunzip_bounded(&gzip(&data), limit(1000)).unwrap(), data);
    }

    #[test]
    fn gunzip_stops_one_byte_past_the_limit() {
        let err = gunzip_bounded(&gzip(&[b'a'; 1001]), limit(1000)).unwrap_err();
        assert!(matches!(err, IngestError::TooLarge { limit: 1000 }));
        assert!(err.to_string().contains("1000-byte limit"));
    }

    #[test]
    fn gunzip_reports_truncation() {
        let gz = gzip(&[b'x'; 5000]);
        let err = gunzip_bounded(&gz[..gz.len() / 2], limit(1 << 20)).unwrap_err();
        assert!(matches!(err, IngestError::Gzip(_)), "{err}");
    }

    #[test]
    fn gunzip_reads_concatenated_members() {
        let mut gz = gzip(b"ab");
        gz.extend(gzip(b"cd"));
        assert_eq!(gunzip_bounded(&gz, limit(10)).unwrap(), b"abcd");
        // Two members of one size: the last trailer states the first member's size too.
        let mut gz = gzip(b"ab");
        gz.extend(gzip(b"ab"));
        assert_eq!(gunzip_bounded(&gz, limit(10)).unwrap(), b"abab");
    }

    /// The one-call path's output, into a buffer that held something else before.
    fn one_member(compressed: &[u8], limit: usize) -> Option<Vec<u8>> {
        let mut out = b"left over from the last payload".to_vec();
        gunzip_one_member(compressed, limit, &mut out).then_some(out)
    }

    #[test]
    fn one_member_is_inflated_in_one_call_and_a_false_size_is_not_trusted() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let gz = gzip(&data);
        assert_eq!(one_member(&gz, data.len()), Some(data.clone()));
        assert_eq!(one_member(&gz, data.len() - 1), None);
        let mut lying = gz.clone();
        let len = lying.len();
        lying[len - 4..].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(one_member(&lying, 1 << 20), None);
        assert!(matches!(
            gunzip_bounded(&lying, limit(1 << 20)),
            Err(IngestError::Gzip(_))
        ));
        // Trailing bytes that end in the true size: the member ends before the input.
        let mut trailing = gz;
        trailing.extend_from_slice(&[0; 4]);
        trailing.extend_from_slice(&(data.len() as u32).to_le_bytes());
        assert_eq!(one_member(&trailing, 1 << 20), None);
        assert_eq!(one_member(&[], 10), None);
        // A header CRC is left to flate2, which checks it.
        let mut with_header_crc = gzip(b"ab");
        with_header_crc[3] |= 0b10;
        with_header_crc.splice(10..10, [0xde, 0xad]);
        assert_eq!(one_member(&with_header_crc, 10), None);
        assert!(matches!(
            gunzip_bounded(&with_header_crc, limit(10)),
            Err(IngestError::Gzip(_))
        ));
        assert_eq!(one_member(&gzip(b""), 0), Some(Vec::new()));
    }

    #[test]
    fn a_reused_buffer_holds_only_the_latest_payload_and_keeps_its_allocation() {
        let mut out = Vec::new();
        let big = vec![b'x'; 100_000];
        gunzip_bounded_into(&gzip(&big), limit(1 << 20), &mut out).unwrap();
        assert_eq!(out, big);
        let allocation = (out.as_ptr(), out.capacity());
        gunzip_bounded_into(&gzip(b"small"), limit(1 << 20), &mut out).unwrap();
        assert_eq!(out, b"small");
        assert_eq!((out.as_ptr(), out.capacity()), allocation);
        // Two members go the streaming way, and still leave only their own bytes.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        gunzip_bounded_into(&two, limit(10), &mut out).unwrap();
        assert_eq!(out, b"abcd");
        let mut decoded = b"old".to_vec();
        decode_base64_into("aGk=", &mut decoded).unwrap();
        assert_eq!(decoded, b"hi");
    }

    /// The SIMD path decodes exactly what [`decode_base64`] decodes (padded or not), and
    /// refuses what it refuses, in its words.
    #[test]
    fn the_simd_decoder_agrees_with_the_strict_one() {
        let long: String = (0..3_000)
            .map(|i| char::from(b'A' + (i % 26) as u8))
            .collect();
        let long_encoded = BASE64.encode(long.as_bytes());
        let cases = [
            "",
            "aGk=",
            "aGk",
            "aGk==",
            "aGl=",
            "aGk=\n",
            " aGk= ",
            "aG k=",
            "aGk=aGk=",
            "a",
            "ab",
            "abc",
            "abcd",
            "ab==",
            "ab=c",
            "YQ==",
            "YR==",
            "YQ",
            "Y===",
            "====",
            "-_8=",
            "+/8=",
            "4pyTIMOgIGxhIG1vZGU=",
            &long_encoded,
        ];
        for case in cases {
            let mut simd = b"stale".to_vec();
            let ours = decode_base64_into(case, &mut simd).map(|()| simd);
            let strict = decode_base64(case);
            assert_eq!(
                ours.as_ref().map_err(ToString::to_string),
                strict.as_ref().map_err(ToString::to_string),
                "{case:?}"
            );
        }
        // Each byte of a long payload flipped to every character class.
        for (at, byte) in [
            (0, b'*'),
            (100, b'='),
            (2_000, b' '),
            (3_997, b'.'),
            (3_999, b'-'),
        ] {
            let mut bad = long_encoded.clone().into_bytes();
            bad[at] = byte;
            let bad = String::from_utf8(bad).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                decode_base64_into(&bad, &mut out)
                    .map(|()| out)
                    .map_err(|e| e.to_string()),
                decode_base64(&bad).map_err(|e| e.to_string()),
                "byte {at} as {byte}"
            );
        }
    }

    #[test]
    fn plain_input_is_bounded_too() {
        assert!(maybe_gunzip(vec![b'{'; 11], limit(10)).is_err());
        assert_eq!(maybe_gunzip(b"{}".to_vec(), limit(10)).unwrap(), b"{}");
    }
}
