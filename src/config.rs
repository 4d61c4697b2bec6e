//! The Lambda's configuration, parsed once at cold start from environment variables.
//!
//! Parsing takes a lookup function instead of reading the environment, so it is pure
//! and testable; the binary passes `std::env::var`. Every error says which variable to
//! fix and how.

use crate::alert::AccountNames;
use crate::delivery::Routes;
use crate::ingest::DecodeLimits;
use crate::metrics::DEFAULT_NAMESPACE;

/// How SNS messages are structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStructure {
    /// `MessageStructure: json`: email gets the text, SQS, Lambda and HTTPS the JSON
    /// alert (or, with Chatbot on, HTTPS gets a Chatbot custom notification).
    Json,
    /// One text message for every protocol.
    Text,
}

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
    /// `STATE_TABLE`: the DynamoDB table for idempotency, dedup, correlations and
    /// first-seen rules. Unset: state in memory, per warm container (local runs only).
    pub state_table: Option<String>,
    /// `PAGER_TOPIC_ARN`: the topic of alerts routed `pager` (default: the main topic).
    pub pager_topic_arn: Option<String>,
    /// `TICKET_TOPIC_ARN`: the topic of alerts routed `ticket` (default: the main topic).
    pub ticket_topic_arn: Option<String>,
    /// `SEVERITY_ROUTES`: routes by level for rules without `route:`, e.g. `critical=pager`.
    pub routes: Routes,
    /// `ACCOUNT_NAMES`: `111122223333=prod,...`, shown next to account ids.
    pub account_names: AccountNames,
    /// `SNS_MESSAGE_STRUCTURE`: `json` (default) or `text`.
    pub message_structure: MessageStructure,
    /// `CHATBOT_NOTIFICATIONS`: HTTPS subscribers (AWS Chatbot) get its custom
    /// notification format (default false).
    pub chatbot: bool,
    /// `STATE_LEASE`: how long a claimed alert is exclusive (default 60s, the function
    /// timeout): a retry after a crash takes it over once this has passed.
    pub state_lease_ms: i64,
    /// `IDEMPOTENCY_WINDOW`: how long published alerts are remembered (default 48h, at
    /// least 24h).
    pub idempotency_secs: i64,
}

/// Parses `250ms`, `30s`, `5m`, `2h` or `2d` into milliseconds.
fn duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 1),
        None => {
            let unit = match text.chars().last()? {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return None,
            };
            (&text[..text.len() - 1], unit)
        }
    };
    number.parse::<i64>().ok()?.checked_mul(unit)
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
        let topic = |name: &'static str| match set(name) {
            Some(arn) if !is_sns_topic_arn(&arn) => Err(ConfigError::Invalid {
                name,
                value: arn,
                hint: "expected an SNS topic ARN, or leave it empty to use ALERT_TOPIC_ARN",
            }),
            other => Ok(other),
        };
        let pager_topic_arn = topic("PAGER_TOPIC_ARN")?;
        let ticket_topic_arn = topic("TICKET_TOPIC_ARN")?;
        let routes = match set("SEVERITY_ROUTES") {
            None => Routes::default(),
            Some(value) => Routes::parse(&value).map_err(|_| ConfigError::Invalid {
                name: "SEVERITY_ROUTES",
                value,
                hint: "use LEVEL=ROUTE pairs separated by commas, e.g. critical=pager,low=ticket (routes: main, pager, ticket)",
            })?,
        };
        let account_names = match set("ACCOUNT_NAMES") {
            None => AccountNames::default(),
            Some(value) => AccountNames::parse(&value).map_err(|_| ConfigError::Invalid {
                name: "ACCOUNT_NAMES",
                value,
                hint: "use ACCOUNT_ID=NAME pairs separated by commas, e.g. 111122223333=prod",
            })?,
        };
        let message_structure = match set("SNS_MESSAGE_STRUCTURE").as_deref() {
            None | Some("json") => MessageStructure::Json,
            Some("text") => MessageStructure::Text,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SNS_MESSAGE_STRUCTURE",
                    value: other.to_owned(),
                    hint: "use `json` (text for email, the JSON alert for SQS, Lambda and HTTPS) or `text`",
                });
            }
        };
        let chatbot = match set("CHATBOT_NOTIFICATIONS").as_deref() {
            None | Some("false") => false,
            Some("true") if message_structure == MessageStructure::Json => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "CHATBOT_NOTIFICATIONS",
                    value: other.to_owned(),
                    hint: "use true or false; true needs SNS_MESSAGE_STRUCTURE=json",
                });
            }
        };
        let state_lease_ms = match set("STATE_LEASE") {
            None => 60_000,
            Some(value) => {
                duration_ms(&value)
                    .filter(|ms| *ms > 0)
                    .ok_or(ConfigError::Invalid {
                        name: "STATE_LEASE",
                        value,
                        hint: "use a duration such as 60s (at least the function timeout)",
                    })?
            }
        };
        let idempotency_secs = match set("IDEMPOTENCY_WINDOW") {
            None => 48 * 3600,
            Some(value) => duration_ms(&value)
                .filter(|ms| *ms >= 86_400_000)
                .map(|ms| ms / 1000)
                .ok_or(ConfigError::Invalid {
                    name: "IDEMPOTENCY_WINDOW",
                    value,
                    hint: "use a duration of at least 24h (CloudWatch Logs may redeliver a batch hours later)",
                })?,
        };
        Ok(Config {
            alert_topic_arn,
            metrics_namespace,
            metrics_mode,
            limits,
            rules_dir: set("RULES_DIR").filter(|dir| !dir.is_empty()),
            state_table: set("STATE_TABLE"),
            pager_topic_arn,
            ticket_topic_arn,
            routes,
            account_names,
            message_structure,
            chatbot,
            state_lease_ms,
            idempotency_secs,
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
        assert_eq!(config.state_table, None);
        assert_eq!(config.message_structure, MessageStructure::Json);
        assert!(!config.chatbot);
        assert_eq!(config.state_lease_ms, 60_000);
        assert_eq!(config.idempotency_secs, 48 * 3600);
    }

    #[test]
    fn stateful_and_routing_settings_are_read() {
        let pager = "arn:aws:sns:us-east-1:111122223333:pager";
        let config = config(&[
            ("ALERT_TOPIC_ARN", TOPIC),
            ("STATE_TABLE", "trailwatch-state"),
            ("PAGER_TOPIC_ARN", pager),
            ("TICKET_TOPIC_ARN", ""),
            ("SEVERITY_ROUTES", "critical=pager,low=ticket"),
            ("ACCOUNT_NAMES", "111122223333=prod"),
            ("CHATBOT_NOTIFICATIONS", "true"),
            ("STATE_LEASE", "250ms"),
            ("IDEMPOTENCY_WINDOW", "7d"),
        ])
        .unwrap();
        assert_eq!(config.state_table.as_deref(), Some("trailwatch-state"));
        assert_eq!(config.pager_topic_arn.as_deref(), Some(pager));
        assert_eq!(config.ticket_topic_arn, None);
        assert!(config.chatbot);
        assert_eq!(config.state_lease_ms, 250);
        assert_eq!(config.idempotency_secs, 7 * 86_400);
        assert!(!config.account_names.is_empty());
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
            (
                &[
                    ("ALERT_TOPIC_ARN", TOPIC),
                    ("SEVERITY_ROUTES", "high=phone"),
                ][..],
                "SEVERITY_ROUTES",
            ),
            (
                &[("ALERT_TOPIC_ARN", TOPIC), ("ACCOUNT_NAMES", "prod")][..],
                "ACCOUNT_NAMES",
            ),
            (
                &[("ALERT_TOPIC_ARN", TOPIC), ("IDEMPOTENCY_WINDOW", "1h")][..],
                "IDEMPOTENCY_WINDOW",
            ),
            (
                &[("ALERT_TOPIC_ARN", TOPIC), ("PAGER_TOPIC_ARN", "pager")][..],
                "PAGER_TOPIC_ARN",
            ),
            (
                &[
                    ("ALERT_TOPIC_ARN", TOPIC),
                    ("SNS_MESSAGE_STRUCTURE", "text"),
                    ("CHATBOT_NOTIFICATIONS", "true"),
                ][..],
                "CHATBOT_NOTIFICATIONS",
            ),
        ];
        for (vars, name) in cases {
            let err = config(vars).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
