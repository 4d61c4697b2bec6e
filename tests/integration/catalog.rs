//! `rules/CATALOG.md` is the output of `trailwatch rules list --format markdown` for the
//! built-in rules, byte for byte: adding or changing a rule means regenerating it.

use crate::common::*;

#[test]
fn catalog_matches_the_builtin_rules() {
    let run = trailwatch(&["rules", "list", "--format", "markdown"]);
    run.assert_code(0);
    let path = repo_root().join("rules/CATALOG.md");
    let on_disk = std::fs::read(&path).unwrap_or_default();
    if on_disk != run.stdout.as_bytes() {
        let on_disk = String::from_utf8_lossy(&on_disk);
        let first_difference = on_disk
            .lines()
            .zip(run.stdout.lines())
            .position(|(file, generated)| file != generated)
            .unwrap_or_else(|| on_disk.lines().count().min(run.stdout.lines().count()));
        panic!(
            "rules/CATALOG.md is out of date: run `cargo run --bin trailwatch -- rules list --format markdown > rules/CATALOG.md`\n\
             (first difference at line {}: file {:?}, generated {:?})",
            first_difference + 1,
            on_disk
                .lines()
                .nth(first_difference)
                .unwrap_or("<end of file>"),
            run.stdout
                .lines()
                .nth(first_difference)
                .unwrap_or("<end of output>")
        );
    }
}
