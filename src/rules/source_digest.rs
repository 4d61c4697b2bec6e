//! The digest of a set of rule files: what a bundle records of the sources it was
//! compiled from, so that `build.rs` can tell whether the committed built-in bundle
//! still matches `rules/` (this file is also compiled into `build.rs`, so both sides
//! hash the same way). Only `sha2` and `std` may be used here.

use sha2::{Digest, Sha256};

/// Hex SHA-256 over every (path, text), sorted by path, each part length-prefixed.
pub fn sources_digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut files: Vec<(&str, &str)> = files.into_iter().collect();
    files.sort_unstable();
    let mut hasher = Sha256::new();
    for (path, text) in files {
        for part in [path, text] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
