//! `trailwatch-lambda`: the function a CloudWatch Logs subscription invokes.
//!
//! Cold start does everything once: configuration from the environment, the rules (the
//! compiled bundle of the rules layer in `RULES_DIR`, or the built-in ones), and the SDK
//! clients. A bad configuration or rule set stops the init
//! with a message that says what to fix. Each invocation then runs
//! [`trailwatch::handler::handle_event`], the CLI's pipeline plus SNS and CloudWatch.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use trailwatch::aws::{
    self, CloudWatchMetrics, DynamoStore, EmfMetrics, MessageFormat, MetricsOutput,
    RoutedPublisher, SnsPublisher, StateBackend,
};
use trailwatch::config::{Config, MetricsMode};
use trailwatch::handler::{Clock, InvocationError, State, handle_event};
use trailwatch::ingest::{IngestError, SubscriptionEnvelope};
use trailwatch::rules::RuleSet;
use trailwatch::state::MemoryStore;

/// The rules of `RULES_DIR` (a layer in `/opt`: the compiled bundle when there is one,
/// else the YAML files), or the built-in ones. Any
/// problem in any file fails the init with every problem listed: never a half-loaded set.
fn load_rules(config: &Config) -> Result<RuleSet, String> {
    let Some(dir) = &config.rules_dir else {
        let rules =
            RuleSet::builtin().map_err(|err| format!("built-in rules do not compile: {err}"))?;
        if rules.is_empty() {
            return Err(
                "RULES_DIR is not set and this build has no built-in rules (built without the \
                 `embedded-rules` feature, as `sam build` does): set RULES_DIR to the rules \
                 layer (/opt)"
                    .to_owned(),
            );
        }
        return Ok(rules);
    };
    let bundle = std::path::Path::new(dir).join(trailwatch::rules::BUNDLE_FILE_NAME);
    let rules = if bundle.is_file() {
        // The layer `sam build` makes: rules linted and compiled at build time.
        let json = std::fs::read_to_string(&bundle)
            .map_err(|err| format!("cannot read {}: {err}", bundle.display()))?;
        RuleSet::from_bundle(&json)
    } else {
        let sources = trailwatch::rules::read_rule_dir(std::path::Path::new(dir))
            .map_err(|err| format!("cannot read the rules in RULES_DIR={dir}: {err}"))?;
        if sources.is_empty() {
            return Err(format!(
                "RULES_DIR={dir} holds no .yml rule files and no bundle"
            ));
        }
        RuleSet::compile(&sources)
    }
    .map_err(|err| format!("rules in RULES_DIR={dir} do not load, so none are used: {err}"))?;
    for warning in rules.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(rules)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let config = Config::from_lookup(|name| std::env::var(name).ok()).map_err(|err| {
        tracing::error!("invalid configuration: {err}");
        err
    })?;
    let rules = load_rules(&config).map_err(|err| {
        tracing::error!("{err}");
        err
    })?;
    let sdk_config = aws::sdk_config_from_env();
    let format = MessageFormat {
        structure: config.message_structure,
        chatbot: config.chatbot,
    };
    let topic = |arn: &str| SnsPublisher::from_conf(&sdk_config, arn).with_format(format);
    let alerts = RoutedPublisher::new(
        topic(&config.alert_topic_arn),
        config.pager_topic_arn.as_deref().map(topic),
        config.ticket_topic_arn.as_deref().map(topic),
        config.routes.clone(),
    );
    let state = State::new(match &config.state_table {
        Some(table) => StateBackend::Table(DynamoStore::from_conf(&sdk_config, table)),
        None => {
            tracing::warn!(
                "STATE_TABLE is not set: alert claims, dedup windows, correlations and first-seen history live in this container's memory only (fine for local runs; the SAM template sets it)"
            );
            StateBackend::Memory(MemoryStore::new())
        }
    });
    let metrics = match config.metrics_mode {
        MetricsMode::Api => MetricsOutput::Api(CloudWatchMetrics::from_conf(
            &sdk_config,
            config.metrics_namespace.clone(),
        )),
        MetricsMode::Emf => MetricsOutput::Emf(EmfMetrics::new(config.metrics_namespace.clone())),
    };
    tracing::info!(
        rules = rules.len(),
        correlations = rules.correlations().len(),
        topic = %config.alert_topic_arn,
        state_table = config.state_table.as_deref().unwrap_or("(memory)"),
        "trailwatch ready"
    );

    let (rules, config, alerts, metrics, state) = (&rules, &config, &alerts, &metrics, &state);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<SubscriptionEnvelope>| async move {
            let clock = Clock {
                now_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                deadline_ms: i64::try_from(event.context.deadline).ok(),
            };
            // Boxed: the handler's future is deep (state, claims, SNS, CloudWatch) and
            // the runtime's service stack would otherwise nest it past the compiler's
            // layout depth limit.
            Box::pin(handle_event(
                rules,
                config,
                &event.payload,
                alerts,
                metrics,
                state,
                clock,
            ))
            .await
            .map_err(|err| {
                let hint = match &err {
                    InvocationError::Decode(IngestError::TooLarge { .. }) => {
                        " (raise the function's MAX_BATCH_BYTES, and its memory with it)"
                    }
                    _ => "",
                };
                tracing::error!(error = %err, "invocation failed{hint}");
                Diagnostic {
                    error_type: err.error_type().to_owned(),
                    error_message: format!("{err}{hint}"),
                }
            })
        },
    ))
    .await
}
