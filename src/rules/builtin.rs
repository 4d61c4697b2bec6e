//! The built-in rules: every `rules/*.yml` of this repository, compiled into the binary
//! by `build.rs` so that `trailwatch scan` and the Lambda work from any directory.

use super::RuleSource;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// The built-in rule files, sorted by path.
pub fn builtin_sources() -> Vec<RuleSource> {
    BUILTIN_RULES
        .iter()
        .map(|(path, text)| RuleSource {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}
