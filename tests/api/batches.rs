//! Batches in one invocation: bounded in size, worked through a few at a time within the
//! deadline, and never reported failed for what was delivered.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn invocation(events: Vec<Value>) -> Vec<u8> {
    json!({"Data": {"event": events}, "Metadata": {}})
        .to_string()
        .into_bytes()
}

fn named(n: usize) -> String {
    format!("batch-{n:03}")
}

#[tokio::test]
async fn a_batch_over_the_cap_is_refused_whole_in_json() {
    let (outbox, handler) = Handler::start_with_outbox().await;
    let events = (0..1001)
        .map(|n| event_grid("SecretNearExpiry", &named(n), Some(5)))
        .collect();

    let answer = handler
        .post_chunked("/function-trigger", invocation(events))
        .await;

    let start = &answer.text[..answer.text.len().min(300)];
    assert_eq!(answer.status, 413, "{start}");
    let error = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("at most 1000 events") && error.contains("1001"),
        "{error}"
    );
    let written = std::fs::read_dir(outbox.path()).map_or(0, |d| d.count());
    assert_eq!(written, 0, "nothing of a refused batch is acted on");
}

/// How many stored mails each object name has.
fn mails_per_object(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in smtp.messages() {
        let subject = mail.subject();
        if let Some(name) = subject.split_whitespace().find(|w| w.starts_with("batch-")) {
            *counts.entry(name.to_owned()).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn a_big_batch_keeps_the_deadline_and_never_reports_failed_what_was_delivered() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        slow_data: Some(Duration::from_millis(300)),
        ..SmtpOptions::default()
    });
    let mut settings = mail_settings(&smtp.url());
    set(&mut settings, "SMTP_TIMEOUT_SECS", "1");
    set(&mut settings, "DEADLINE_SECS", "4");
    let handler = Handler::start(&pairs(&settings)).await;
    let events: Vec<Value> = (0..200)
        .map(|n| event_grid("SecretNearExpiry", &named(n), Some(5)))
        .collect();

    let started = Instant::now();
    let first = handler
        .post_chunked("/function-trigger", invocation(events.clone()))
        .await;
    let took = started.elapsed();
    // Let every send that was started finish.
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(first.status, 500, "not all could be sent in 4 s");
    assert!(
        took < Duration::from_millis(5500),
        "answered after {took:?}"
    );
    let stored = mails_per_object(&smtp);
    for (n, event) in first.events().iter().enumerate() {
        let status = event["actions"][0]["status"].as_str().unwrap_or_default();
        let mails = stored.get(&named(n)).copied().unwrap_or(0);
        match status {
            "sent" | "pending" => assert!(mails <= 1, "{} mailed {mails} times", named(n)),
            "failed" => assert_eq!(mails, 0, "{} was reported failed but delivered", named(n)),
            other => panic!("unexpected status {other} for {}", named(n)),
        }
        if status == "sent" {
            assert_eq!(mails, 1, "{} reported sent but not stored", named(n));
        }
    }
    assert!(
        first.statuses().iter().any(|s| s == "sent"),
        "some were sent in time"
    );

    // Redelivered until accepted, the batch ends with exactly one mail per event.
    let mut rounds = 1;
    loop {
        let answer = handler
            .post_chunked("/function-trigger", invocation(events.clone()))
            .await;
        rounds += 1;
        if answer.status == 200 || rounds > 12 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = mails_per_object(&smtp);
    assert_eq!(stored.len(), 200, "after {rounds} deliveries");
    assert!(
        stored.values().all(|&n| n == 1),
        "one mail each: {stored:?}"
    );
}
