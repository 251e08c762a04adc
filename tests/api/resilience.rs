//! Secrets stay out of every log and answer; SIGTERM lets in-flight work finish; an outbox that
//! cannot be written stops start-up.

use crate::support::*;
use std::time::{Duration, Instant};

const PASSWORD: &str = "S3cr3t-P4ssw0rd";

#[tokio::test]
async fn the_smtp_password_never_shows_in_logs_or_answers() {
    let url = format!("smtp://kv-notify:{PASSWORD}@127.0.0.1:{}", free_port());
    let mut settings = mail_settings(&url);
    settings.push(("KV_NOTIFY_LOG", "trace".to_owned()));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "s", Some(3)))
        .await;

    assert_eq!(answer.status, 500, "the send failed, as intended");
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
    let output = handler.output_with("smtp");
    assert!(output.contains("smtp"), "the failure was logged: {output}");
    assert!(!output.contains(PASSWORD), "{output}");
}

#[tokio::test]
async fn an_invalid_smtp_url_is_refused_without_echoing_it() {
    let url = format!("smtp://user:{PASSWORD}@127.0.0.1:notaport");
    let output = Handler::refused_start(&[("SMTP_URL", &url)], "SMTP_URL");
    assert!(output.contains("SMTP_URL"), "{output}");
    assert!(!output.contains(PASSWORD), "{output}");
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_invocation_answer_and_exits_promptly() {
    let (_silent, url) = silent_server();
    let mut settings = mail_settings(&url);
    set(&mut settings, "SMTP_TIMEOUT_SECS", "2");
    let mut handler = Handler::start(&pairs(&settings)).await;

    let in_flight = handler.invoke(event_grid("KeyExpired", "k", Some(-1)));
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handler.terminate();
    };
    let (answer, ()) = tokio::join!(in_flight, terminate);
    let stopping = Instant::now();
    let status = handler.wait_exit(Duration::from_secs(10));

    assert_eq!(
        answer.status, 500,
        "the in-flight invocation got its real answer"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exited cleanly: {status:?}"
    );
    assert!(stopping.elapsed() < Duration::from_secs(6));
    assert!(
        reqwest::get(handler.url("/")).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn an_outbox_that_cannot_be_written_stops_start_up_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").expect("write");
    let outbox = blocker.join("outbox");
    let output = Handler::refused_start(
        &[
            ("OUTBOX_DIR", outbox.to_str().expect("utf-8")),
            ("OWNER_EMAILS", "a@contoso.com"),
        ],
        "OUTBOX_DIR",
    );
    assert!(output.contains("cannot write mail files to"), "{output}");
}
