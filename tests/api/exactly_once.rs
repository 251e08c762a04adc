//! At-least-once delivery in, exactly one mail per event and recipient out.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

on_both_ledgers!(
    a_redelivered_event_is_reported_duplicate_and_sends_nothing,
    concurrent_deliveries_of_one_event_send_exactly_one_mail,
    a_batch_redelivered_after_a_partial_failure_sends_only_what_did_not_go_out,
    smtp_down_then_up_delivers_once_on_redelivery,
    after_kill_9_and_a_restart_a_redelivery_sends_nothing,
    a_redelivery_after_a_partial_failure_serves_only_the_recipients_not_yet_served,
    a_recipient_refused_for_good_neither_blocks_the_others_nor_causes_retries,
    a_temporary_refusal_of_the_message_fails_the_invocation_for_a_retry,
    a_slow_smtp_server_cannot_hold_an_invocation_past_the_deadline,
);

async fn a_redelivered_event_is_reported_duplicate_and_sends_nothing(ledger: TestLedger) {
    let smtp = SmtpServer::start();
    let settings = ledger.settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));

    let first = handler.invoke(event.clone()).await;
    let second = handler.invoke(event).await;

    assert_eq!(first.statuses(), ["sent"]);
    assert_eq!(
        (second.status, second.statuses()),
        (200, vec!["duplicate".to_owned()])
    );
    assert_eq!(smtp.messages().len(), 1);
}

async fn concurrent_deliveries_of_one_event_send_exactly_one_mail(ledger: TestLedger) {
    let smtp = SmtpServer::start();
    let settings = ledger.settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("KeyExpired", "signing", Some(-1));

    let answers =
        futures_util::future::join_all((0..8).map(|_| handler.invoke(event.clone()))).await;

    let mut statuses: Vec<String> = answers.iter().flat_map(Answer::statuses).collect();
    statuses.sort();
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(
        statuses.iter().filter(|s| *s == "sent").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "duplicate").count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(smtp.messages().len(), 1);
}

async fn a_batch_redelivered_after_a_partial_failure_sends_only_what_did_not_go_out(
    ledger: TestLedger,
) {
    let smtp = SmtpServer::start();
    let mut settings = ledger.settings(&smtp.url());
    settings.push(("SECURITY_EMAILS", "secops@contoso.com".to_owned()));
    let handler = Handler::start(&pairs(&settings)).await;
    let sent_first = event_grid("SecretNearExpiry", "a", Some(20));
    handler.invoke(sent_first.clone()).await;
    let new_one = event_grid("VaultAccessPolicyChanged", "prod-kv", None);

    let answer = handler.invoke(json!([sent_first, new_one])).await;

    assert_eq!(answer.statuses(), ["duplicate", "sent"]);
    let subjects: Vec<String> = smtp.messages().iter().map(|m| m.subject()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

async fn smtp_down_then_up_delivers_once_on_redelivery(ledger: TestLedger) {
    let smtp = SmtpServer::start();
    let settings = ledger.settings(&smtp.url());
    let port = smtp.stop();
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("CertificateNearExpiry", "www", Some(9));

    let while_down = handler.invoke(event.clone()).await;
    let smtp = SmtpServer::start_on(port, SmtpOptions::default());
    let after = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(
        (while_down.status, while_down.statuses()),
        (500, vec!["failed".to_owned()])
    );
    assert_eq!(
        (after.status, after.statuses()),
        (200, vec!["sent".to_owned()])
    );
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(smtp.messages().len(), 1);
}

async fn after_kill_9_and_a_restart_a_redelivery_sends_nothing(ledger: TestLedger) {
    let smtp = SmtpServer::start();
    let folder = tempfile::tempdir().expect("temp dir");
    let mut settings = ledger.settings(&smtp.url());
    let file = folder.path().join("ledger.redb");
    set(&mut settings, "LEDGER_PATH", &file.to_string_lossy());
    let event = event_grid("SecretExpired", "old", Some(-2));
    let mut first = Handler::start(&pairs(&settings)).await;
    assert_eq!(first.invoke(event.clone()).await.statuses(), ["sent"]);

    first.kill9();
    let restarted = Handler::start(&pairs(&settings)).await;
    let redelivered = restarted.invoke(event).await;

    assert_eq!(
        (redelivered.status, redelivered.statuses()),
        (200, vec!["duplicate".to_owned()])
    );
    assert_eq!(smtp.messages().len(), 1);
}

async fn a_redelivery_after_a_partial_failure_serves_only_the_recipients_not_yet_served(
    ledger: TestLedger,
) {
    let options = SmtpOptions {
        tempfail_rcpt: vec!["owner2@contoso.com".into()],
        ..Default::default()
    };
    let flaky = SmtpServer::start_with(options);
    let settings = ledger.settings(&flaky.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));

    let first = handler.invoke(event.clone()).await;
    let served_first: Vec<Vec<String>> = flaky.messages().iter().map(Received::rcpt_to).collect();
    let port = flaky.stop();
    let healthy = SmtpServer::start_on(port, SmtpOptions::default());
    let second = handler.invoke(event).await;

    assert_eq!(first.status, 500);
    assert_eq!(served_first, [vec!["owner1@contoso.com".to_owned()]]);
    assert_eq!(second.status, 200);
    let served_second: Vec<Vec<String>> =
        healthy.messages().iter().map(Received::rcpt_to).collect();
    assert_eq!(served_second, [vec!["owner2@contoso.com".to_owned()]]);
    let to = healthy.messages()[0].header("To").unwrap_or_default();
    assert!(
        to.contains("owner1@contoso.com"),
        "the mail still shows every owner: {to}"
    );
}

async fn a_recipient_refused_for_good_neither_blocks_the_others_nor_causes_retries(
    ledger: TestLedger,
) {
    let options = SmtpOptions {
        reject_rcpt: vec!["owner2@contoso.com".into()],
        ..Default::default()
    };
    let smtp = SmtpServer::start_with(options);
    let settings = ledger.settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("KeyNearExpiry", "k", Some(6));

    let first = handler.invoke(event.clone()).await;
    let redelivered = handler.invoke(event).await;

    assert_eq!(
        first.status, 200,
        "a permanent refusal must not make Event Grid retry for a day"
    );
    let action = &first.events()[0]["actions"][0];
    assert_eq!(action["status"], "failed");
    assert!(
        action["reason"]
            .as_str()
            .is_some_and(|r| r.contains("owner2@contoso.com") && r.contains("550")),
        "{action}"
    );
    let served: Vec<Vec<String>> = smtp.messages().iter().map(Received::rcpt_to).collect();
    assert_eq!(served, [vec!["owner1@contoso.com".to_owned()]]);
    assert_eq!(redelivered.status, 200);
    assert_eq!(smtp.messages().len(), 1, "nothing is sent again");
}

async fn a_temporary_refusal_of_the_message_fails_the_invocation_for_a_retry(ledger: TestLedger) {
    let smtp = SmtpServer::start_with(SmtpOptions {
        tempfail_data: true,
        ..Default::default()
    });
    let settings = ledger.settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "s", Some(3)))
        .await;

    assert_eq!(answer.status, 500);
    let reason = answer.events()[0]["actions"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("451"), "{reason}");
    assert!(smtp.messages().is_empty());
}

async fn a_slow_smtp_server_cannot_hold_an_invocation_past_the_deadline(ledger: TestLedger) {
    let (_silent, url) = silent_server();
    let mut settings = ledger.settings(&url);
    set(&mut settings, "SMTP_TIMEOUT_SECS", "3");
    set(&mut settings, "DEADLINE_SECS", "6");
    let handler = Handler::start(&pairs(&settings)).await;

    let started = std::time::Instant::now();
    let answer = handler
        .invoke(event_grid("SecretExpired", "s", Some(-1)))
        .await;

    assert_eq!(answer.status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "took {:?} with a 6 s deadline",
        started.elapsed()
    );
}
