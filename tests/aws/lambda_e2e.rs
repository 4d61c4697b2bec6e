//! The Lambda binary against `cargo lambda watch` (a real Lambda Runtime API), with
//! `AWS_ENDPOINT_URL` at moto, invoked with subscription payloads by
//! `cargo lambda invoke --data-file`. Asserts what reached the queue and CloudWatch.
//!
//! The watch runs with `--only-lambda-apis` and the test starts the binary cargo has
//! already built, the way Lambda starts `bootstrap`: no second build inside the tests.

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    attribute, control_message_event, fixture_event, moto_endpoint, required, sorted_attribute,
    subscription_event, topic_with_queue, unique_name,
};

/// True when `cargo lambda` can run; under CI its absence is a failure.
pub(crate) fn cargo_lambda_available(test: &str) -> bool {
    let found = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !required(),
            "{test}: `cargo lambda` is not installed; run the tests with scripts/test.sh"
        );
        eprintln!("skipped {test}: `cargo lambda` is not installed (scripts/test.sh installs it)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `cargo lambda watch --only-lambda-apis` (the Runtime API) and the already built
/// `trailwatch-lambda` binary polling it, as Lambda runs `bootstrap`. Both are killed
/// on drop.
pub(crate) struct RuntimeEmulator {
    watch: Child,
    function: Child,
    port: u16,
    log: PathBuf,
}

impl RuntimeEmulator {
    pub(crate) fn start(function_env: &[(&str, String)]) -> RuntimeEmulator {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique_name("trailwatch-lambda")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let watch = Command::new("cargo")
            .args(["lambda", "watch", "--only-lambda-apis", "--timeout", "60"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file.try_clone().expect("log"))
            .spawn()
            .expect("spawn cargo lambda watch");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let function = Command::new(env!("CARGO_BIN_EXE_trailwatch-lambda"))
            .env_clear()
            .envs(function_env.iter().map(|(k, v)| (*k, v.as_str())))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn trailwatch-lambda");
        RuntimeEmulator {
            watch,
            function,
            port,
            log,
        }
    }

    /// The port of the emulator's invoke API.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// What the function logged.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invokes the function with `payload` through `cargo lambda invoke --data-file`.
    fn invoke(&self, payload: &Value) -> Output {
        let file = std::env::temp_dir().join(format!("{}.json", unique_name("trailwatch-payload")));
        std::fs::write(&file, payload.to_string()).expect("payload file");
        let output = Command::new("timeout")
            .args(["120", "cargo", "lambda", "invoke", "--data-file"])
            .arg(&file)
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("cargo lambda invoke");
        let _ = std::fs::remove_file(&file);
        output
    }
}

/// Ends a child and everything it started: each child runs in its own process group
/// (`process_group(0)`), whose id is the child's pid.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        // On SIGTERM the watch waits for open connections to drain: end it outright.
        kill_group(&mut self.function);
        kill_group(&mut self.watch);
        let _ = std::fs::remove_file(&self.log);
    }
}

pub(crate) fn moto_env(
    moto: &str,
    topic_arn: &str,
    namespace: &str,
) -> Vec<(&'static str, String)> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    vec![
        // The rules as data, as the deployed function loads them from its layer.
        (
            "RULES_DIR",
            crate::common::core_rules_dir().display().to_string(),
        ),
        ("ALERT_TOPIC_ARN", topic_arn.to_owned()),
        ("METRICS_NAMESPACE", namespace.to_owned()),
        ("AWS_ENDPOINT_URL", moto.to_owned()),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "testing")),
        (
            "AWS_SECRET_ACCESS_KEY",
            var("AWS_SECRET_ACCESS_KEY", "testing"),
        ),
        ("AWS_REGION", var("AWS_REGION", "us-east-1")),
        ("RUST_LOG", "info".to_owned()),
        ("PATH", var("PATH", "/usr/bin:/bin")),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_publishes_alerts_and_metrics_and_skips_bad_records() {
    let test = "lambda_publishes_alerts_and_metrics_and_skips_bad_records";
    let Some(moto) = moto_endpoint(test) else {
        return;
    };
    if !cargo_lambda_available(test) {
        return;
    }
    let wiring = topic_with_queue(false).await;
    let namespace = unique_name("TrailwatchE2E");
    let emulator = RuntimeEmulator::start(&moto_env(&moto, &wiring.topic_arn, &namespace));

    let control = control_message_event();
    let output = emulator.invoke(&control);
    assert!(
        output.status.success(),
        "control message failed: {}\n{}",
        text(&output.stderr),
        emulator.log_text()
    );

    let payload = subscription_event(&[
        fixture_event("console-login-iam-user-no-mfa.json").to_string(),
        "this line is not JSON".to_owned(),
        fixture_event("console-login-sso-assumed-role.json").to_string(),
        fixture_event("update-trail-invalid-cwl-role.json").to_string(),
        fixture_event("describe-trails.json").to_string(),
    ]);
    let output = emulator.invoke(&payload);
    assert!(
        output.status.success(),
        "invoke failed: {}\n{}",
        text(&output.stderr),
        emulator.log_text()
    );
    let response: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
    assert_eq!(response["events_processed"], 4, "{response}");
    assert_eq!(response["events_skipped"], 1, "{response}");
    assert_eq!(response["alerts_published"], 2, "{response}");
    // The reconciliation, in the response and in the invocation's log line.
    assert_eq!(response["events_read"], 5, "{response}");
    assert_eq!(
        (&response["alerts"], &response["alerts_failed"]),
        (&2.into(), &0.into())
    );

    let envelopes = wiring.receive(2).await;
    assert_eq!(
        sorted_attribute(&envelopes, "rule"),
        ["cloudtrail-change-failed", "console-login-without-mfa"]
    );
    let login = envelopes
        .iter()
        .find(|e| attribute(e, "rule") == Some("console-login-without-mfa"))
        .unwrap();
    assert!(
        login["Subject"]
            .as_str()
            .unwrap()
            .starts_with("[HIGH] Console login without MFA: "),
        "{login}"
    );
    let log = emulator.log_text();
    assert!(
        log.contains("3719"),
        "the skipped record's log-event id is logged"
    );
    for field in [
        "events_read=5",
        "events_processed=4",
        "events_skipped=1",
        "alerts=2",
        "alerts_published=2",
        "alerts_failed=0",
    ] {
        assert!(log.contains(field), "{field} not logged:\n{log}");
    }

    let cloudwatch = aws_sdk_cloudwatch::Client::new(&crate::common::sdk_config().await);
    let listed = cloudwatch
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .expect("ListMetrics");
    let names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    for name in [
        "EventsProcessed",
        "EventsSkipped",
        "AlertsPublished",
        "PublishFailures",
        "Matches",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_reports_an_error_when_sns_is_unreachable() {
    let test = "lambda_reports_an_error_when_sns_is_unreachable";
    let Some(moto) = moto_endpoint(test) else {
        return;
    };
    if !cargo_lambda_available(test) {
        return;
    }
    let mut env = moto_env(
        &moto,
        "arn:aws:sns:us-east-1:123456789012:trailwatch-unreachable",
        &unique_name("TrailwatchE2E"),
    );
    // Nothing listens on port 9 (discard): every SNS call fails to connect.
    env.push(("AWS_ENDPOINT_URL_SNS", "http://127.0.0.1:9".to_owned()));
    env.push(("AWS_MAX_ATTEMPTS", "2".to_owned()));
    let emulator = RuntimeEmulator::start(&env);

    let payload = subscription_event(&[fixture_event("stop-logging-success.json").to_string()]);
    let output = emulator.invoke(&payload);
    assert!(
        !output.status.success(),
        "the invocation should fail: {}",
        text(&output.stdout)
    );
    let stderr = text(&output.stderr) + &text(&output.stdout);
    assert!(
        stderr.contains("could not be published"),
        "{stderr}\n{}",
        emulator.log_text()
    );
}

#[test]
fn lambda_init_fails_with_a_message_that_names_the_missing_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_trailwatch-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("METRICS_MODE", "emf")
        .stdin(Stdio::null())
        .output()
        .expect("run trailwatch-lambda");
    assert!(!output.status.success());
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(all.contains("ALERT_TOPIC_ARN is not set"), "{all}");
    assert!(!all.contains("panicked"), "{all}");

    let output = Command::new(env!("CARGO_BIN_EXE_trailwatch-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
        .env("METRICS_MODE", "statsd")
        .stdin(Stdio::null())
        .output()
        .expect("run trailwatch-lambda");
    assert!(!output.status.success());
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(all.contains("METRICS_MODE=\"statsd\" is invalid"), "{all}");
}

#[test]
fn lambda_loads_rules_as_data_and_a_bad_rule_fails_the_init_with_every_problem() {
    let dir = std::env::temp_dir().join(unique_name("trailwatch-rules"));
    std::fs::create_dir_all(&dir).expect("rules dir");
    let core = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    for entry in std::fs::read_dir(&core).expect("core rules") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
    }
    let run = |dir: &PathBuf| {
        let output = Command::new(env!("CARGO_BIN_EXE_trailwatch-lambda"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
            .env("METRICS_MODE", "emf")
            .env("AWS_REGION", "us-east-1")
            .env("RULES_DIR", dir)
            .stdin(Stdio::null())
            .output()
            .expect("run trailwatch-lambda");
        text(&output.stdout) + &text(&output.stderr)
    };
    let good = run(&dir);
    assert!(good.contains("trailwatch ready"), "{good}");
    assert!(
        good.contains("rules=3"),
        "the layer's rules, not the built-in pack: {good}"
    );

    std::fs::write(
        dir.join("broken.yml"),
        "title: broken\nlogsource: {product: aws, service: cloudtrail}\nfilter_pattern: '{ $.eventName = }'\nlevel: urgent\n",
    )
    .expect("write a bad rule");
    let bad = run(&dir);
    assert!(!bad.contains("trailwatch ready"), "{bad}");
    assert!(bad.contains("do not load, so none are used"), "{bad}");
    assert!(bad.contains("broken.yml:4: unknown level"), "{bad}");
    assert!(
        bad.contains("broken.yml:3: filter_pattern: column"),
        "{bad}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
