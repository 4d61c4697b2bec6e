//! AWS: the only module that talks to AWS (feature `lambda`). It builds the SDK clients
//! once (from the environment, honouring `AWS_ENDPOINT_URL`) and implements the
//! [`crate::delivery`] sinks: SNS for alerts (everything SNS-shaped is decided in
//! [`sns`], routing to up to three topics included) and CloudWatch for metric points,
//! and the [`crate::state::StateStore`] on the DynamoDB state table. Which alerts and points exist is decided
//! elsewhere ([`crate::pipeline`], [`crate::metrics`]).

mod cloudwatch;
mod dynamodb;
pub mod sns;

use std::time::Duration;

use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_types::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

pub use cloudwatch::{CloudWatchMetrics, EmfMetrics, MetricsOutput};
pub use dynamodb::{DynamoStore, StateBackend};
pub use sns::{MessageFormat, RoutedPublisher, SnsPublisher};

/// Per-attempt and per-operation timeouts: a hung endpoint must fail the invocation
/// well inside the function's 60 s timeout so Lambda can retry it.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// The one HTTPS client every SDK client shares: hyper with rustls on ring (see
/// Cargo.toml for why not the SDK's default aws-lc), trusting the system's CA bundle.
fn https_client() -> aws_sdk_sns::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The shared SDK configuration, built once from the environment the Lambda service
/// gives every function: `AWS_REGION`, the execution role's `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, and the standard overrides
/// `AWS_ENDPOINT_URL` (`AWS_ENDPOINT_URL_<SERVICE>` first) and `AWS_MAX_ATTEMPTS`.
/// This is what `aws-config` would read in a function; its other sources (profile files,
/// IMDS, ECS, web identity through STS) never apply there, and leaving the crate out
/// keeps their code (and the STS client) out of the binary. Missing credentials or
/// region fail the first request with the SDK's own error.
pub fn sdk_config_from_env() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
    let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => Some(SharedCredentialsProvider::new(Credentials::new(
            key,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ))),
        _ => None,
    };
    let max_attempts = var("AWS_MAX_ATTEMPTS")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.map(Region::new))
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .service_config(EndpointsFromEnv);
    config.set_credentials_provider(credentials);
    config.build()
}

/// Endpoint overrides as the AWS SDKs read them: `AWS_ENDPOINT_URL_<SERVICE ID>` (e.g.
/// `AWS_ENDPOINT_URL_SNS`, `AWS_ENDPOINT_URL_DYNAMODB`), else `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct EndpointsFromEnv;

impl LoadServiceConfig for EndpointsFromEnv {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        [format!("{}_{service}", key.env()), key.env().to_owned()]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }
}

/// An SDK configuration whose every request goes to `http`: the adapters' accounting
/// tests drive the real clients (serialisation, XML parsing) from canned responses.
#[cfg(all(test, feature = "aws-tests"))]
pub(crate) fn test_sdk_config(http: aws_sdk_sns::config::SharedHttpClient) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .http_client(http)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str) -> ServiceConfigKey<'_> {
        ServiceConfigKey::builder()
            .service_id(service)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .expect("complete key")
    }

    #[test]
    fn endpoint_overrides_prefer_the_service_specific_variable() {
        // SAFETY: no other test reads or writes this variable (a service id of its own).
        unsafe { std::env::set_var("AWS_ENDPOINT_URL_TRAILWATCH_TEST", "http://127.0.0.1:2") };
        let found = |service| EndpointsFromEnv.load_config(key(service));
        assert_eq!(
            found("Trailwatch Test").as_deref(),
            Some("http://127.0.0.1:2"),
            "AWS_ENDPOINT_URL_ + the service id, upper case, spaces as underscores"
        );
        let global = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty());
        assert_eq!(found("Trailwatch Other"), global, "else AWS_ENDPOINT_URL");
    }
}
