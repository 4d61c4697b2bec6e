//! trailwatch: real-time CloudTrail alerting.
//!
//! The library owns everything between "bytes arrived" and "here are the alerts":
//! [`ingest`] turns CloudWatch Logs subscription payloads and CloudTrail archives into
//! records, [`rules`] compiles Sigma rule files into one matcher, [`pipeline`] runs records
//! through it, [`alert`] renders matches for people and machines, and [`metrics`] counts
//! what happened. It never prints, never exits and never reads the environment; only
//! [`aws`] talks to AWS. The `trailwatch` CLI and the `trailwatch-lambda` function are
//! thin shells around [`pipeline::run`]; [`handler`] is
//! one Lambda invocation on top of it.

pub mod alert;
pub mod aws;
pub mod config;
pub mod delivery;
pub mod handler;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod rules;
