//! Real AWS APIs, served by moto: the SNS and CloudWatch sinks publish, and the tests
//! read back what arrived (SNS → SQS subscription; ListMetrics / GetMetricStatistics).
//! Then the Lambda binary end to end under `cargo lambda watch`.
//!
//! `scripts/test.sh` starts moto and exports `TRAILWATCH_MOTO_ENDPOINT` and
//! `AWS_ENDPOINT_URL`. Without them these tests print why and pass, except under CI
//! (`CI=true`), where a missing emulator is a failure.

#[path = "aws/common.rs"]
mod common;
#[path = "aws/lambda_e2e.rs"]
mod lambda_e2e;
#[path = "aws/sinks.rs"]
mod sinks;
