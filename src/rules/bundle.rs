//! The compiled rule bundle: one JSON file holding every rule's metadata and just the
//! text its matcher needs (the Sigma `title`/`logsource`/`detection`/`level` blocks, or
//! the filter pattern), plus the exclusion files. Loading it skips parsing the prose
//! (descriptions, runbooks, tests) that makes up most of a rule file, which is what a
//! Lambda cold start spends its time on. A bundle carries a format version; a bundle of
//! another version is refused with a clear error instead of being misread.

use serde::{Deserialize, Serialize};

use super::{ProblemKind, Rule, RuleLoadError, RuleProblem};

/// The bundle format this build reads and writes.
const VERSION: u32 = 4;

/// The file name the Lambda looks for in `RULES_DIR`.
pub const BUNDLE_FILE_NAME: &str = "rules.bundle.json";

#[derive(Serialize, Deserialize)]
pub(super) struct Bundle {
    trailwatch_rule_bundle: u32,
    /// The trailwatch version that compiled it: gated rules compile on first use, which
    /// is only sound with the same rule engine that checked them.
    built_by: String,
    /// The digest of the rule files it was compiled from ([`super::source_digest`]):
    /// `build.rs` embeds the committed built-in bundle only while it matches `rules/`.
    #[serde(default)]
    sources_digest: String,
    pub(super) rules: Vec<BundledRule>,
    pub(super) exclusions: Vec<BundledSource>,
    /// Correlation rules: their metadata carries everything they run on.
    #[serde(default)]
    pub(super) correlations: Vec<Rule>,
}

impl Bundle {
    pub(super) fn new(
        sources_digest: String,
        rules: Vec<BundledRule>,
        exclusions: Vec<BundledSource>,
        correlations: Vec<Rule>,
    ) -> Bundle {
        Bundle {
            trailwatch_rule_bundle: VERSION,
            built_by: BUILT_BY.to_owned(),
            sources_digest,
            rules,
            exclusions,
            correlations,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct BundledRule {
    pub(super) rule: Rule,
    pub(super) matcher: BundledMatcher,
    /// The rule's prefilter gate; a gated Sigma rule loads without being parsed.
    pub(super) gate: super::prefilter::Gate,
}

/// This build, as bundles record it.
const BUILT_BY: &str = concat!("trailwatch ", env!("CARGO_PKG_VERSION"));

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum BundledMatcher {
    /// The Sigma blocks of the rule file (other lines blanked).
    Sigma(String),
    /// A CloudWatch Logs filter pattern.
    FilterPattern(String),
}

#[derive(Serialize, Deserialize)]
pub(super) struct BundledSource {
    pub(super) path: String,
    pub(super) text: String,
}

pub(super) fn to_json(bundle: &Bundle) -> String {
    serde_json::to_string(bundle).unwrap_or_default()
}

pub(super) fn from_json(json: &str) -> Result<Bundle, RuleLoadError> {
    let problem = |reason: String| {
        RuleLoadError(vec![RuleProblem {
            path: BUNDLE_FILE_NAME.to_owned(),
            line: 1,
            kind: ProblemKind::BadBundle(reason),
        }])
    };
    #[derive(Deserialize)]
    struct Version {
        trailwatch_rule_bundle: u32,
        #[serde(default)]
        built_by: String,
    }
    // One pass over a bundle this build reads (a cold start's case); only a bundle
    // that does not parse is read again for its version, to say why.
    let bundle = serde_json::from_str::<Bundle>(json);
    let version = match &bundle {
        Ok(bundle) => Version {
            trailwatch_rule_bundle: bundle.trailwatch_rule_bundle,
            built_by: bundle.built_by.clone(),
        },
        Err(_) => serde_json::from_str(json)
            .map_err(|err| problem(format!("not a trailwatch rule bundle: {err}")))?,
    };
    if version.trailwatch_rule_bundle != VERSION {
        return Err(problem(format!(
            "bundle format {} but this build reads format {VERSION}: rebuild the bundle with the same trailwatch version",
            version.trailwatch_rule_bundle
        )));
    }
    if version.built_by != BUILT_BY {
        return Err(problem(format!(
            "bundle built by {:?} but this is {BUILT_BY}: rebuild the bundle with the same trailwatch version",
            version.built_by
        )));
    }
    bundle.map_err(|err| problem(format!("malformed bundle: {err}")))
}
