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

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

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

/// Loads the shared SDK configuration (region, credentials, endpoint overrides) once.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// An SDK configuration whose every request goes to `http`: the adapters' accounting
/// tests drive the real clients (serialisation, XML parsing) from canned responses.
#[cfg(all(test, feature = "aws-tests"))]
pub(crate) fn test_sdk_config(http: aws_sdk_sns::config::SharedHttpClient) -> SdkConfig {
    use aws_sdk_sns::config::{Credentials, Region, SharedCredentialsProvider};
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
