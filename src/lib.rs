//! trailwatch: real-time CloudTrail alerting.
//!
//! The library owns everything between "bytes arrived" and "here are the alerts":
//! [`ingest`] turns CloudWatch Logs subscription payloads and CloudTrail archives into
//! records, [`rules`] compiles Sigma rule files into one matcher, [`pipeline`] runs records
//! through it, [`alert`] renders matches for people and machines, [`metrics`] counts what
//! happened, and [`delivery`] is the transport-neutral seam (sink traits and the
//! per-alert accounting) between them and whatever publishes.
//!
//! Those modules never print, never exit and never read the environment or files (but
//! for [`rules::read_rule_dir`], which both binaries use to load rules from disk). With
//! the `lambda` feature the crate also has the function's parts: [`config`] (parsed
//! from an environment lookup the binary passes in), [`handler`] (one invocation, which
//! logs through `tracing`) and [`aws`] (the only code that talks to AWS). The
//! `trailwatch` CLI is built without that feature and links no AWS code; it and the
//! `trailwatch-lambda` function are thin shells around [`pipeline::run`].

pub mod alert;
#[cfg(feature = "lambda")]
pub mod aws;
#[cfg(feature = "lambda")]
pub mod config;
pub mod delivery;
#[cfg(feature = "lambda")]
pub mod handler;
pub mod in_order;
pub mod ingest;
mod json_scan;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod rules;
pub mod state;
pub mod stateful;
