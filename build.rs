//! Embeds the built-in rules: lists `rules/*.yml` into `$OUT_DIR/builtin_rules.rs` so the
//! binaries carry them, and rebuilds when `rules/` changes. Each rule is embedded twice:
//! as written (for `rules lint`/`rules test`) and without its `tests:` block, which is
//! most of the text and which the Lambda need not parse at every cold start.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let rules_dir = manifest_dir.join("rules");
    println!("cargo:rerun-if-changed=rules");
    let mut files: Vec<PathBuf> = fs::read_dir(&rules_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yml" | "yaml")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// (path shown to users, YAML text, YAML text without `tests:`) of every built-in rule.\npub(super) const BUILTIN_RULES: &[(&str, &str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 rule file name");
        let text = fs::read_to_string(path).expect("read rule file");
        code.push_str(&format!(
            "    ({:?}, include_str!({:?}), {:?}),\n",
            format!("rules/{file_name}"),
            path.display().to_string(),
            without_tests(&text)
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("builtin_rules.rs");
    fs::write(out, code).expect("write builtin_rules.rs");
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
