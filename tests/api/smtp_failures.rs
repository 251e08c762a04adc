//! When mail cannot go out, the host hears about it in time, so Event Grid redelivers.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_unreachable_smtp_server_fails_the_invocation_with_500() {
    let settings = mail_settings(&format!("smtp://127.0.0.1:{}", free_port()));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "s", Some(5)))
        .await;

    assert_eq!(answer.status, 500);
    assert!(answer.content_type.starts_with("application/json"));
    let action = &answer.events()[0]["actions"][0];
    assert_eq!(action["status"], "failed");
    assert!(
        action["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("smtp")),
        "{action}"
    );
}

#[tokio::test]
async fn a_silent_smtp_server_fails_the_invocation_within_the_timeout() {
    let (_silent, url) = silent_server();
    let mut settings = mail_settings(&url);
    set(&mut settings, "SMTP_TIMEOUT_SECS", "2");
    let handler = Handler::start(&pairs(&settings)).await;

    let started = Instant::now();
    let answer = handler
        .invoke(event_grid("KeyExpired", "k", Some(-1)))
        .await;
    let took = started.elapsed();

    assert_eq!(answer.status, 500);
    assert!(
        took < Duration::from_secs(10),
        "answered after {took:?}, bound is 2 s plus slack"
    );
    assert_eq!(answer.statuses(), ["failed"]);
}
