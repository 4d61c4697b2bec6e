//! The built-in rules: every `rules/*.yml` of this repository, compiled into the binary
//! by `build.rs` so that `trailwatch scan` and the Lambda work from any directory.

use super::RuleSource;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// The built-in rule files as written, inline tests included, sorted by path.
pub fn builtin_sources() -> Vec<RuleSource> {
    BUILTIN_RULES
        .iter()
        .map(|(path, text, _)| RuleSource {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// The built-in rules without their `tests:` blocks: what matching needs, at a
/// fraction of the YAML to parse at cold start. Same detections as [`builtin_sources`].
pub(super) fn builtin_runtime_sources() -> Vec<RuleSource> {
    BUILTIN_RULES
        .iter()
        .map(|(path, _, runtime)| RuleSource {
            path: (*path).to_owned(),
            text: (*runtime).to_owned(),
        })
        .collect()
}
