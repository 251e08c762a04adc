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

/// A server that stalls on each connection's first message and refuses any later message on
/// the same connection: a client that reuses a connection whose transaction it abandoned reads
/// the stale reply of the earlier message as the answer to the next one.
fn stalling_server(stall: Duration) -> SmtpServer {
    SmtpServer::start_with(SmtpOptions {
        slow_first_data: Some(stall),
        refuse_reused: true,
        ..SmtpOptions::default()
    })
}

#[tokio::test]
async fn a_send_that_timed_out_never_makes_the_next_mail_look_sent() {
    let smtp = stalling_server(Duration::from_secs(3));
    let mut settings = mail_settings(&smtp.url());
    set(&mut settings, "SMTP_TIMEOUT_SECS", "2");
    set(&mut settings, "OWNER_EMAILS", "owner1@contoso.com");
    let handler = Handler::start(&pairs(&settings)).await;

    let first = handler
        .invoke(event_grid("SecretNearExpiry", "alpha", Some(5)))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second_event = event_grid("SecretNearExpiry", "bravo", Some(5));
    let second = handler.invoke(second_event.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let redelivered = handler.invoke(second_event).await;

    assert_eq!(first.status, 500, "the server answered too late: {first:?}");
    let stored_b = smtp
        .messages()
        .iter()
        .filter(|m| m.subject().contains("bravo"))
        .count();
    for answer in [&second, &redelivered] {
        let status = &answer.statuses()[0];
        assert!(
            !(status == "sent" || status == "duplicate") || stored_b > 0,
            "mail bravo was reported {status} but the server stored none: {answer:?}"
        );
    }
    assert_ne!(
        redelivered.statuses(),
        ["duplicate"],
        "an undelivered mail must not be taken as done"
    );
}

#[tokio::test]
async fn a_send_still_running_at_the_deadline_is_pending_and_records_its_real_outcome() {
    // The mail to all is refused (one bad address), so it goes to each recipient alone: three
    // slow sends in a row outlast the deadline, though each fits its own timeout.
    let smtp = SmtpServer::start_with(SmtpOptions {
        reject_rcpt: vec!["gone@contoso.com".to_owned()],
        slow_data: Some(Duration::from_millis(2500)),
        ..SmtpOptions::default()
    });
    let mut settings = mail_settings(&smtp.url());
    set(&mut settings, "SMTP_TIMEOUT_SECS", "3");
    set(&mut settings, "DEADLINE_SECS", "6");
    set(
        &mut settings,
        "OWNER_EMAILS",
        "owner1@contoso.com, owner2@contoso.com, owner3@contoso.com, gone@contoso.com",
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("KeyExpired", "k", Some(-1));

    let started = Instant::now();
    let first = handler.invoke(event.clone()).await;
    let answered_after = started.elapsed();
    assert!(
        wait_until(Duration::from_secs(12), || smtp.messages().len() == 3),
        "the sends went on after the invocation answered"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redelivered = handler.invoke(event).await;

    assert_eq!(first.status, 500, "{first:?}");
    assert_eq!(first.statuses(), ["pending"], "not yet answered: {first:?}");
    assert!(
        answered_after < Duration::from_millis(6900),
        "the invocation kept its deadline: {answered_after:?}"
    );
    assert_eq!(redelivered.status, 200, "{redelivered:?}");
    assert_eq!(
        redelivered.statuses(),
        ["failed"],
        "done earlier, refused for good for one: {redelivered:?}"
    );
    assert_eq!(smtp.messages().len(), 3, "one mail each, not two");
}

#[tokio::test]
async fn a_deadline_too_short_for_the_smtp_timeout_is_refused_at_start_up() {
    let output = Handler::refused_start(
        &[
            ("OWNER_EMAILS", "a@contoso.com"),
            ("SMTP_TIMEOUT_SECS", "10"),
            ("DEADLINE_SECS", "5"),
        ],
        "DEADLINE_SECS",
    );
    assert!(
        output.contains("leaves no time for a send bounded by SMTP_TIMEOUT_SECS"),
        "{output}"
    );
}
