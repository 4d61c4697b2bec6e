//! trailwatch's integration tests: one test binary, one module per area.
//!
//! Everything runs offline: payloads are built on the fly from `tests/fixtures/events/`,
//! the CLI is the real `trailwatch` binary, and `../shared/corpus` is used when present.
//! The modules live in `tests/integration/` (a crate root looks for modules next to
//! itself, hence the `#[path]`s).

#[path = "integration/common.rs"]
mod common;

#[path = "integration/cli_formats.rs"]
mod cli_formats;
#[path = "integration/cli_output.rs"]
mod cli_output;
#[path = "integration/cli_payloads.rs"]
mod cli_payloads;
#[path = "integration/cli_robustness.rs"]
mod cli_robustness;
#[path = "integration/cli_rules.rs"]
mod cli_rules;
#[path = "integration/corpus.rs"]
mod corpus;
#[path = "integration/library.rs"]
mod library;
#[path = "integration/sample.rs"]
mod sample;
