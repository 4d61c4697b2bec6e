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

/// True when `bytes` start with the gzip magic number.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses a gzip stream (all members), failing once the output passes the limit.
pub fn gunzip_bounded(compressed: &[u8], limits: DecodeLimits) -> Result<Vec<u8>, IngestError> {
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
    }

    #[test]
    fn plain_input_is_bounded_too() {
        assert!(maybe_gunzip(vec![b'{'; 11], limit(10)).is_err());
        assert_eq!(maybe_gunzip(b"{}".to_vec(), limit(10)).unwrap(), b"{}");
    }
}
