//! trailwatch's integration tests: one test binary, one module per area.
//!
//! Everything runs offline: payloads are built on the fly from `tests/fixtures/events/`,
//! the CLI is the real `trailwatch` binary, and `../shared/corpus` is used when present.

mod common;

mod catalog;
mod cli_formats;
mod cli_output;
mod cli_payloads;
mod cli_robustness;
mod cli_rules;
mod corpus;
mod library;
mod sample;
mod stateful;
