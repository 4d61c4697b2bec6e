//! The Lambda's configuration, parsed once at cold start from environment variables.
//!
//! Parsing takes a lookup function instead of reading the environment, so it is pure
//! and testable; the binary passes `std::env::var`. Every error says which variable to
//! fix and how.

use crate::ingest::DecodeLimits;
use crate::metrics::DEFAULT_NAMESPACE;

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// `PutMetricData` calls (needs `cloudwatch:PutMetricData`).
    Api,
    /// CloudWatch Embedded Metric Format lines on stdout (no API call, no permission).
    Emf,
}

/// The Lambda's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ALERT_TOPIC_ARN`: the SNS topic alerts go to (required).
    pub alert_topic_arn: String,
    /// `METRICS_NAMESPACE`: CloudWatch namespace (default `Trailwatch`).
    pub metrics_namespace: String,
    /// `METRICS_MODE`: `api` (default) or `emf`.
    pub metrics_mode: MetricsMode,
    /// `MAX_BATCH_BYTES`: bound on a batch's decompressed size (default 64 MiB).
    pub limits: DecodeLimits,
    /// `RULES_DIR`: load the rules from this directory at cold start (a Lambda layer
    /// built from `rules/` puts them in `/opt`) instead of the built-in ones.
    pub rules_dir: Option<String>,
}

/// A configuration variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name} is not set: {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// How to fix it.
        hint: &'static str,
    },
    /// A variable has a value that cannot be used.
    #[error("{name}={value:?} is invalid: {hint}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// The value it had.
        value: String,
        /// How to fix it.
        hint: &'static str,
    },
}

fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

impl Config {
    /// Reads the configuration through `lookup` (e.g. `|name| std::env::var(name).ok()`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let alert_topic_arn = set("ALERT_TOPIC_ARN").ok_or(ConfigError::Missing {
            name: "ALERT_TOPIC_ARN",
            hint: "set it to the ARN of the SNS topic alerts are published to (arn:aws:sns:REGION:ACCOUNT:NAME)",
        })?;
        if !is_sns_topic_arn(&alert_topic_arn) {
            return Err(ConfigError::Invalid {
                name: "ALERT_TOPIC_ARN",
                value: alert_topic_arn,
                hint: "expected an SNS topic ARN like arn:aws:sns:us-east-1:111122223333:trailwatch-alerts",
            });
        }
        let metrics_namespace =
            set("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if metrics_namespace.len() > 255 || metrics_namespace.starts_with("AWS/") {
            return Err(ConfigError::Invalid {
                name: "METRICS_NAMESPACE",
                value: metrics_namespace,
                hint: "use at most 255 characters and not the reserved AWS/ prefix",
            });
        }
        let metrics_mode = match set("METRICS_MODE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("api") => MetricsMode::Api,
            Some("emf") => MetricsMode::Emf,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "METRICS_MODE",
                    value: set("METRICS_MODE").unwrap_or_default(),
                    hint: "use `api` (PutMetricData) or `emf` (Embedded Metric Format on stdout)",
                });
            }
        };
        let limits = match set("MAX_BATCH_BYTES") {
            None => DecodeLimits::default(),
            Some(value) => match value.parse::<usize>() {
                Ok(bytes) if bytes > 0 => DecodeLimits {
                    max_decompressed_bytes: bytes,
                },
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "MAX_BATCH_BYTES",
                        value,
                        hint: "use a positive number of bytes, e.g. 67108864",
                    });
                }
            },
        };
        Ok(Config {
            alert_topic_arn,
            metrics_namespace,
            metrics_mode,
            limits,
            rules_dir: set("RULES_DIR").filter(|dir| !dir.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:trailwatch-alerts";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_apply_when_only_the_topic_is_set() {
        let config = config(&[("ALERT_TOPIC_ARN", TOPIC)]).unwrap();
        assert_eq!(config.metrics_namespace, "Trailwatch");
        assert_eq!(config.metrics_mode, MetricsMode::Api);
        assert_eq!(config.limits, DecodeLimits::default());
    }

    #[test]
    fn every_setting_is_read() {
        let config = config(&[
            ("ALERT_TOPIC_ARN", TOPIC),
            ("METRICS_NAMESPACE", "Security/Trailwatch"),
            ("METRICS_MODE", "EMF"),
            ("MAX_BATCH_BYTES", "1048576"),
        ])
        .unwrap();
        assert_eq!(config.metrics_namespace, "Security/Trailwatch");
        assert_eq!(config.metrics_mode, MetricsMode::Emf);
        assert_eq!(config.limits.max_decompressed_bytes, 1_048_576);
    }

    #[test]
    fn missing_topic_says_what_to_set() {
        let err = config(&[]).unwrap_err();
        assert!(
            err.to_string().starts_with("ALERT_TOPIC_ARN is not set"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases = [
            (&[("ALERT_TOPIC_ARN", "my-topic")][..], "ALERT_TOPIC_ARN"),
            (
                &[("ALERT_TOPIC_ARN", TOPIC), ("METRICS_MODE", "statsd")][..],
                "METRICS_MODE",
            ),
            (
                &[
                    ("ALERT_TOPIC_ARN", TOPIC),
                    ("METRICS_NAMESPACE", "AWS/Lambda"),
                ][..],
                "METRICS_NAMESPACE",
            ),
            (
                &[("ALERT_TOPIC_ARN", TOPIC), ("MAX_BATCH_BYTES", "lots")][..],
                "MAX_BATCH_BYTES",
            ),
        ];
        for (vars, name) in cases {
            let err = config(vars).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
