//! The SNS adapter's accounting against canned `PublishBatch` responses: the real SDK
//! client (serialisation, XML parsing) over an HTTP client that answers from a script.

use std::sync::{Arc, Mutex};

use aws_smithy_http_client::test_util::infallible_client_fn;
use serde_json::json;

use super::*;
use crate::delivery::{Delivery, NOT_CONFIRMED};
use crate::rules::{Rule, Severity};

/// How the fake SNS answers one entry of one request.
#[derive(Clone, Copy)]
enum Answer {
    Success,
    /// Listed under `Failed`, with SenderFault.
    Fail {
        sender_fault: bool,
    },
    /// Listed in neither `Successful` nor `Failed`.
    Omit,
    /// Listed under `Successful` with an id the request did not carry.
    WrongId,
}

/// A scripted SNS: `script(call, id)` answers entry `id` of request number `call`.
struct FakeSns {
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    client: Client,
}

fn fake_sns(script: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> FakeSns {
    let calls: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let http = infallible_client_fn(move |request| {
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).to_string();
        let ids: Vec<String> = body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(key, _)| {
                key.starts_with("PublishBatchRequestEntries.member.") && key.ends_with(".Id")
            })
            .map(|(_, value)| value.to_owned())
            .collect();
        let call = {
            let mut calls = seen.lock().unwrap();
            calls.push(ids.clone());
            calls.len() - 1
        };
        let (mut successful, mut failed) = (String::new(), String::new());
        for id in &ids {
            match script(call, id) {
                Answer::Success => {
                    successful += &format!(
                        "<member><Id>{id}</Id><MessageId>m-{call}-{id}</MessageId></member>"
                    )
                }
                Answer::WrongId => {
                    successful += "<member><Id>not-an-id</Id><MessageId>m</MessageId></member><member><Id>97</Id><MessageId>m</MessageId></member>"
                }
                Answer::Fail { sender_fault } => {
                    failed += &format!(
                        "<member><Id>{id}</Id><Code>{}</Code><Message>scripted</Message><SenderFault>{sender_fault}</SenderFault></member>",
                        if sender_fault {
                            "InvalidParameter"
                        } else {
                            "InternalError"
                        }
                    )
                }
                Answer::Omit => {}
            }
        }
        let xml = format!(
            "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult><Successful>{successful}</Successful><Failed>{failed}</Failed></PublishBatchResult><ResponseMetadata><RequestId>r-{call}</RequestId></ResponseMetadata></PublishBatchResponse>"
        );
        http::Response::builder().status(200).body(xml).unwrap()
    });
    FakeSns {
        calls,
        client: client(http),
    }
}

/// An SNS client whose every request goes to `http`.
fn client(http: aws_sdk_sns::config::SharedHttpClient) -> Client {
    Client::new(&crate::aws::test_sdk_config(http))
}

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:alerts";

fn alerts(count: usize) -> Vec<Alert> {
    let rule = Rule::for_tests("stop", "Trail stopped", Severity::High);
    (0..count)
        .map(|i| {
            Alert::new(
                &rule,
                json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
                       "eventID": format!("e-{i}"), "awsRegion": "us-east-1",
                       "recipientAccountId": "111122223333"}),
            )
        })
        .collect()
}

async fn publish(sns: &FakeSns, count: usize) -> DeliveryReport {
    SnsPublisher::new(sns.client.clone(), TOPIC)
        .publish(&alerts(count))
        .await
}

#[tokio::test]
async fn every_confirmed_entry_is_published_across_requests() {
    let sns = fake_sns(|_, _| Answer::Success);
    let report = publish(&sns, 23).await;
    assert_eq!((report.published(), report.failed()), (23, 0));
    let sizes: Vec<usize> = sns.calls.lock().unwrap().iter().map(Vec::len).collect();
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [3, 10, 10]);
}

#[tokio::test]
async fn an_entry_in_neither_list_is_a_failure() {
    let sns = fake_sns(|_, id| {
        if id == "4" {
            Answer::Omit
        } else {
            Answer::Success
        }
    });
    let report = publish(&sns, 6).await;
    assert_eq!((report.published(), report.failed()), (5, 1));
    assert_eq!(report.results()[4], Delivery::Failed(NOT_CONFIRMED.into()));
    assert_eq!(report.alerts(), report.published() + report.failed());
}

#[tokio::test]
async fn a_confirmation_under_an_unknown_id_confirms_nothing() {
    let sns = fake_sns(|_, id| {
        if id == "1" {
            Answer::WrongId
        } else {
            Answer::Success
        }
    });
    let report = publish(&sns, 3).await;
    assert_eq!(report.published(), 2);
    assert_eq!(report.results()[1], Delivery::Failed(NOT_CONFIRMED.into()));
}

#[tokio::test]
async fn retryable_failures_are_retried_alone_until_they_pass() {
    let sns = fake_sns(|call, id| match (call, id) {
        (0, "2") => Answer::Fail {
            sender_fault: false,
        },
        _ => Answer::Success,
    });
    let report = publish(&sns, 4).await;
    assert_eq!((report.published(), report.failed()), (4, 0));
    let calls = sns.calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1], ["2"], "only the failed entry is sent again");
}

#[tokio::test]
async fn sender_faults_fail_at_once_and_retryable_ones_after_the_last_attempt() {
    let sns = fake_sns(|_, id| match id {
        "0" => Answer::Fail { sender_fault: true },
        "1" => Answer::Fail {
            sender_fault: false,
        },
        _ => Answer::Success,
    });
    let report = publish(&sns, 3).await;
    assert_eq!((report.published(), report.failed()), (1, 2));
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures[0], (0, "InvalidParameter: scripted"));
    assert_eq!(failures[1], (1, "InternalError: scripted"));
    assert_eq!(
        sns.calls.lock().unwrap().len(),
        MAX_ENTRY_ATTEMPTS as usize,
        "the retryable entry is tried {MAX_ENTRY_ATTEMPTS} times"
    );
}

#[tokio::test]
async fn a_request_error_fails_every_entry_of_that_request() {
    let http = infallible_client_fn(|_| {
        http::Response::builder()
            .status(400)
            .body("<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>")
            .unwrap()
    });
    let report = SnsPublisher::new(client(http), TOPIC)
        .publish(&alerts(12))
        .await;
    assert_eq!((report.published(), report.failed()), (0, 12));
    assert!(
        report
            .failures()
            .all(|(_, reason)| reason.contains("NotFound")),
        "{report:?}"
    );
}

#[test]
fn fifo_is_decided_from_the_topic() {
    let sns = fake_sns(|_, _| Answer::Success);
    assert!(SnsPublisher::new(sns.client.clone(), format!("{TOPIC}.fifo")).fifo);
    assert!(!SnsPublisher::new(sns.client, TOPIC).fifo);
}
