//! Embeds the built-in rules (feature `embedded-rules`, on by default): lists
//! `rules/**/*.yml` (rules, and exclusions under `rules/filters/`) into
//! `$OUT_DIR/builtin_rules.rs` so the binaries carry them, and rebuilds when `rules/`
//! changes. Each file is embedded twice: as written (for
//! `rules lint`/`rules test`) and without its `tests:` block, which is most of the text
//! and which the Lambda need not parse at every cold start.
//!
//! It also embeds the committed compiled bundle of those rules
//! (`src/rules/builtin.bundle.json`, what `trailwatch scan` loads instead of compiling the
//! YAML at every start), but only while the digest the bundle records matches `rules/`
//! and it was built by this version: a stale bundle is left out with a warning, and the
//! binaries compile the YAML instead (same rules, slower start).

use std::{env, fs, path::Path, path::PathBuf};

#[path = "src/rules/source_digest.rs"]
mod source_digest;

/// The committed bundle of the built-in rules, relative to the manifest.
const BUNDLE: &str = "src/rules/builtin.bundle.json";

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        if path.is_dir() {
            rule_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let rules_dir = manifest_dir.join("rules");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    // Without `embedded-rules` (the Lambda, which loads its rules as data) nothing is
    // embedded and rules/ is not watched: editing a rule does not rebuild the crate.
    if env::var_os("CARGO_FEATURE_EMBEDDED_RULES").is_some() {
        rule_files(&rules_dir, &mut files);
    }
    files.sort();
    let mut sources = Vec::new();
    let mut code = String::from(
        "/// (path shown to users, YAML text, YAML text without `tests:`) of every built-in rule.\npub(super) const BUILTIN_RULES: &[(&str, &str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path
            .strip_prefix(&manifest_dir)
            .expect("under the manifest dir")
            .to_str()
            .expect("UTF-8 rule path");
        let text = fs::read_to_string(path).expect("read rule file");
        sources.push((relative.to_owned(), text.clone()));
        code.push_str(&format!(
            "    ({:?}, include_str!({:?}), {:?}),\n",
            relative,
            path.display().to_string(),
            without_tests(&text)
        ));
    }
    code.push_str("];\n");
    code.push_str(&bundle_const(&manifest_dir, &sources));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("builtin_rules.rs");
    fs::write(out, code).expect("write builtin_rules.rs");
}

/// `BUILTIN_BUNDLE`: the committed bundle when it is current, else `None`.
fn bundle_const(manifest_dir: &Path, sources: &[(String, String)]) -> String {
    let none = "/// The committed compiled bundle of the built-in rules, when current.\npub(super) const BUILTIN_BUNDLE: Option<&str> = None;\n";
    if sources.is_empty() {
        return none.to_owned();
    }
    let path = manifest_dir.join(BUNDLE);
    println!("cargo:rerun-if-changed={}", path.display());
    let Ok(json) = fs::read_to_string(&path) else {
        println!(
            "cargo:warning={BUNDLE} is missing: the built-in rules compile from YAML at start-up"
        );
        return none.to_owned();
    };
    let digest = source_digest::sources_digest(
        sources
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str())),
    );
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    // The bundle is compact JSON that trailwatch writes itself: its two stamps are found
    // as text, which keeps a JSON parser out of the build script.
    let current = json.contains(&format!("\"sources_digest\":\"{digest}\""))
        && json.contains(&format!("\"built_by\":\"trailwatch {version}\""));
    if !current {
        println!(
            "cargo:warning={BUNDLE} does not match rules/ or this version: the built-in rules compile from YAML at start-up until you run `cargo run --bin trailwatch -- rules compile --output {BUNDLE}`"
        );
        return none.to_owned();
    }
    format!(
        "/// The committed compiled bundle of the built-in rules, when current.\npub(super) const BUILTIN_BUNDLE: Option<&str> = Some(include_str!({:?}));\n",
        path.display().to_string()
    )
}

/// The rule text without its top-level `tests:` block (the block runs until the next
/// top-level key; its list items may sit at column 0).
fn without_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tests = false;
    for line in text.lines() {
        let top_level_key = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '#' && c != '-');
        if top_level_key {
            in_tests = line.starts_with("tests:");
        }
        if !in_tests {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
