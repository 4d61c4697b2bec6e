//! Embeds the built-in rules: lists `rules/*.yml` into `$OUT_DIR/builtin_rules.rs` so the
//! binaries carry them, and rebuilds when `rules/` changes.

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
        "/// (path shown to users, YAML text) of every built-in rule.\npub(super) const BUILTIN_RULES: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 rule file name");
        code.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            format!("rules/{file_name}"),
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("builtin_rules.rs");
    fs::write(out, code).expect("write builtin_rules.rs");
}
