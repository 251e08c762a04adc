//! The shared ledger under the faults a storage account has: slow requests, a front-end that
//! drops connections for a moment. No alert is doubled or lost, and no invocation outlives
//! its deadline.

use crate::support::*;
use std::time::{Duration, Instant};

/// A shared ledger in an Azurite of its own reached through a [`StorageProxy`], and mail
/// settings for it.
fn behind_a_proxy(smtp: &SmtpServer) -> (Azurite, StorageProxy, Vec<(&'static str, String)>) {
    let azurite = Azurite::start();
    let proxy = StorageProxy::before(&azurite);
    let mut settings = mail_settings(&smtp.url());
    set(&mut settings, "LEDGER", "table");
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &proxy.connection_string(&azurite),
    );
    (azurite, proxy, settings)
}

/// Exactly one mail per event and owner (of two), for `events` events: a mail to one owner now
/// and to the other on a redelivery is no double.
fn assert_each_mailed_once(smtp: &SmtpServer, events: usize) {
    let mut per_recipient = std::collections::HashMap::<(String, String), usize>::new();
    for message in smtp.messages() {
        for rcpt in message.rcpt_to() {
            *per_recipient.entry((message.subject(), rcpt)).or_default() += 1;
        }
    }
    let doubled: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "doubled: {doubled:?}");
    assert_eq!(
        per_recipient.len(),
        events * 2,
        "none lost: {events} events, 2 owners each"
    );
}

/// Posts of an alert of `event_type` that `hook` received.
fn posts(hook: &WebhookServer, event_type: &str) -> usize {
    hook.received()
        .iter()
        .filter(|(_, body)| body["event"]["type"] == event_type)
        .count()
}

/// Redelivers `event` every two seconds until it is answered 200, for up to `within`.
async fn redeliver_until_done(handler: &Handler, event: &serde_json::Value, within: Duration) {
    let start = Instant::now();
    loop {
        let answer = handler.invoke(event.clone()).await;
        if answer.status == 200 {
            return;
        }
        assert!(
            start.elapsed() < within,
            "still not done after {within:?}: {}",
            answer.text
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn a_crash_during_slow_health_bookkeeping_never_posts_an_alert_twice() {
    let (smtp, hook) = (SmtpServer::start(), WebhookServer::start());
    let (_azurite, proxy, mut settings) = behind_a_proxy(&smtp);
    set(
        &mut settings,
        "ALERT_WEBHOOK_URL",
        &hook.url("/workflows/KEY"),
    );
    set(&mut settings, "WEBHOOK_TIMEOUT_SECS", "1");
    let handler = Handler::start(&pairs(&settings)).await;
    // The health notice's table answers 2 s late from now on.
    proxy.slow_paths("health", Duration::from_secs(2));
    let event = event_grid("VaultAccessPolicyChanged", "prod-kv", None);

    let (first, ()) = tokio::join!(handler.try_invoke(event.clone()), async {
        let start = Instant::now();
        while posts(&hook, "VaultAccessPolicyChanged") == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never posted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        handler.sigkill();
    });
    assert!(first.is_err(), "killed before it answered: {first:?}");
    drop(handler);
    let handler = Handler::start(&pairs(&settings)).await;
    redeliver_until_done(&handler, &event, Duration::from_secs(40)).await;

    assert_eq!(
        posts(&hook, "VaultAccessPolicyChanged"),
        1,
        "the alert was posted again after the crash"
    );
    assert_eq!(smtp.messages().len(), 1, "and mailed once");
}

#[tokio::test]
async fn slow_storage_never_keeps_an_invocation_past_its_deadline() {
    let smtp = SmtpServer::start();
    let (_azurite, proxy, mut settings) = behind_a_proxy(&smtp);
    set(&mut settings, "DEADLINE_SECS", "20");
    let hook = WebhookServer::start();
    set(
        &mut settings,
        "ALERT_WEBHOOK_URL",
        &hook.url("/workflows/KEY"),
    );
    let handler = Handler::start(&pairs(&settings)).await;
    // Slower than the ledger's own 5 s bound on a request, so that each call is tried again.
    proxy.slow_all(Duration::from_secs(6));
    let events = [
        event_grid("VaultAccessPolicyChanged", "prod-kv", None),
        event_grid("SecretNearExpiry", "slow", Some(5)),
    ];

    let mut longest = Duration::ZERO;
    for event in events {
        let started = Instant::now();
        let answer = handler.invoke(event).await;
        longest = longest.max(started.elapsed());
        assert!(
            matches!(answer.status, 200 | 500),
            "{}: {}",
            answer.status,
            answer.text
        );
    }

    assert!(
        longest <= Duration::from_secs(22),
        "an invocation took {longest:?}, past DEADLINE_SECS=20 (+2 s)"
    );
}

#[tokio::test]
async fn a_storage_front_end_dropping_connections_mid_burst_neither_doubles_nor_loses_a_mail() {
    let smtp = SmtpServer::start();
    let (_azurite, proxy, settings) = behind_a_proxy(&smtp);
    let settings = pairs(&settings);
    let (a, b) = tokio::join!(Handler::start(&settings), Handler::start(&settings));
    let events: Vec<_> = (0..60)
        .map(|n| event_grid("KeyNearExpiry", &format!("k{n}"), Some(5)))
        .collect();

    let burst = futures_util::future::join_all(
        events
            .iter()
            .flat_map(|e| [a.invoke(e.clone()), b.invoke(e.clone())]),
    );
    let (_, ()) = tokio::join!(burst, async {
        // Mid-burst: once some mails are out, the front end drops connections for 1.5 s.
        let start = Instant::now();
        while smtp.messages().len() < 10 && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        proxy.go_down_for(Duration::from_millis(1500));
    });
    // Event Grid redelivers what failed; both instances answer it until every event is done.
    for event in &events {
        redeliver_until_done(&a, event, Duration::from_secs(60)).await;
    }

    assert_each_mailed_once(&smtp, 60);
}

#[tokio::test]
async fn the_ledger_table_deleted_mid_burst_neither_doubles_nor_loses_a_mail_in_flight() {
    let smtp = SmtpServer::start();
    let (azurite, _proxy, settings) = behind_a_proxy(&smtp);
    let settings = pairs(&settings);
    let (a, b) = tokio::join!(Handler::start(&settings), Handler::start(&settings));
    let events: Vec<_> = (0..60)
        .map(|n| event_grid("KeyNearExpiry", &format!("k{n}"), Some(100)))
        .collect();
    // Beyond the reminder ladder (60 days), entries are keyed by event id and kept in the table
    // of the month of the event's time: this month's, whatever the date.
    let table = format!("kvnotifyledger{}", chrono::Utc::now().format("%Y%m"));

    // Each event once, to one instance or the other, as Event Grid spreads them. (An event
    // delivered twice at once, whose first delivery finished before the table went, is mailed
    // again: the table held the only record of it.)
    let burst = futures_util::future::join_all(events.iter().enumerate().map(|(n, e)| {
        let instance = if n % 2 == 0 { &a } else { &b };
        instance.invoke(e.clone())
    }));
    let (answers, ()) = tokio::join!(burst, async {
        let start = Instant::now();
        while smtp.messages().len() < 10 && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        azurite.delete_table(&table).await;
    });
    // Event Grid redelivers only what was not answered 200.
    for (event, answer) in events.iter().zip(&answers) {
        if answer.status != 200 {
            redeliver_until_done(&b, event, Duration::from_secs(60)).await;
        }
    }

    assert_each_mailed_once(&smtp, 60);
}
