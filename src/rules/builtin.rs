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

/// Reads every `.yml`/`.yaml` file under `path` (or `path` itself, if it is a file),
/// sorted, as rule sources: the rules a user keeps on disk (`--rules DIR`) or a Lambda
/// layer carries (`RULES_DIR`). The one place outside the binaries that reads files.
pub fn read_rule_dir(path: &std::path::Path) -> std::io::Result<Vec<RuleSource>> {
    let mut files = Vec::new();
    collect_rule_files(path, &mut files)?;
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|err| {
                std::io::Error::new(err.kind(), format!("{}: {err}", file.display()))
            })?;
            Ok(RuleSource {
                path: file.display().to_string(),
                text,
            })
        })
        .collect()
}

fn collect_rule_files(
    path: &std::path::Path,
    out: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot read rule directory {}: {err}", path.display()),
        )
    })?;
    let mut children: Vec<std::path::PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        if child.is_dir() {
            collect_rule_files(&child, out)?;
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(child);
        }
    }
    Ok(())
}
