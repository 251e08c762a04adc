//! The sweep when things go wrong: killed mid-run, two instances at once on the shared ledger,
//! a budget that runs out. Each reminder still goes exactly once, the next run catching up.

use crate::support::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Due secrets `s00`, `s01`, … in vault `kv-a`, expiring in 3 days.
fn due(count: usize) -> Value {
    let secrets: Vec<Value> = (0..count)
        .map(|n| expiring(&format!("s{n:02}"), 3.5))
        .collect();
    json!({"vaults": {"kv-a": {"secrets": secrets}}})
}

fn per_subject(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, subject) in smtp.accepted() {
        *counts.entry(subject).or_insert(0) += 1;
    }
    counts
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[tokio::test]
async fn a_sweep_killed_mid_run_is_caught_up_by_the_next_without_sending_twice() {
    const DUE: usize = 40;
    let smtp = SmtpServer::start_with(SmtpOptions {
        slow_data: Some(Duration::from_millis(200)),
        ..SmtpOptions::default()
    });
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(due(DUE));
    let ledger = tempfile::tempdir().expect("temp dir");
    let mut settings = mail_settings_with_ledger(&smtp.url(), &ledger.path().join("ledger.redb"));
    settings.extend(vault.settings(&["kv-a"], &identity));

    let handler = Handler::start(&pairs(&settings)).await;
    let (_, killed_at) = tokio::join!(handler.try_timer(), async {
        for _ in 0..1000 {
            if smtp.accepted().len() >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let at = now();
        handler.sigkill();
        at
    });
    drop(handler);
    let before = smtp.accepted().len();
    assert!(
        before < DUE,
        "the kill came after the sweep: {before} mails"
    );

    let handler = Handler::start(&pairs(&settings)).await;
    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let counts = per_subject(&smtp);
    assert_eq!(counts.len(), DUE, "every due secret is mailed: {counts:?}");
    for (time, subject) in smtp.accepted() {
        // Only a mail the server accepted in the instant before the kill, whose completion
        // could not be written yet, may go twice (README, "Delivery guarantees").
        if counts[&subject] > 1 {
            assert!(
                killed_at - time < 0.030 || time > killed_at,
                "{subject} doubled"
            );
        }
    }
    assert!(counts.values().all(|&n| n <= 2), "{counts:?}");
}

#[tokio::test]
async fn two_instances_sweeping_at_once_on_the_shared_ledger_mail_each_reminder_once() {
    const DUE: usize = 30;
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(due(DUE));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    set(&mut settings, "LEDGER", "table");
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &azurite.connection_string(),
    );
    let settings = pairs(&settings);
    let (a, b) = tokio::join!(Handler::start(&settings), Handler::start(&settings));

    let answers = join_all([a.timer(), b.timer()]).await;

    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let counts = per_subject(&smtp);
    assert_eq!(counts.len(), DUE);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let sent: u64 = answers
        .iter()
        .map(|a| {
            a.json()["ReturnValue"]["vaults"][0]["sent"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(sent, DUE as u64);
}

#[tokio::test]
async fn a_sweep_out_of_budget_says_so_and_the_next_run_finishes_the_work() {
    const DUE: usize = 24;
    let smtp = SmtpServer::start();
    let identity = IdentityEndpoint::start();
    // Each call takes 300 ms: the versions of 24 due secrets need about 2 s.
    let vault = FakeVault::start_with(&["kv-a"], 300, 0);
    vault.set(due(DUE));
    let ledger = tempfile::tempdir().expect("temp dir");
    let mut settings = mail_settings_with_ledger(&smtp.url(), &ledger.path().join("ledger.redb"));
    settings.extend(vault.settings(&["kv-a"], &identity));
    set(&mut settings, "SWEEP_BUDGET_SECS", "1");
    let handler = Handler::start(&pairs(&settings)).await;

    let short = handler.timer().await;

    assert_eq!(short.status, 500, "{}", short.text);
    let summary = &short.json()["ReturnValue"]["vaults"][0];
    assert_eq!(summary["outOfBudget"], true, "{summary}");
    assert!(
        short.text.contains("ran out of its 1 s budget"),
        "{}",
        short.text
    );
    let first = smtp.messages().len();
    assert!(first < DUE, "{first} mails");
    assert_eq!(short.json()["ReturnValue"]["healthNotice"], "sent");
    let notice = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().starts_with("Health notice"))
        .expect("the health notice");
    assert!(
        notice.text().contains("ran out of its 1 s budget"),
        "{}",
        notice.text()
    );

    drop(handler);
    set(&mut settings, "SWEEP_BUDGET_SECS", "60");
    let handler = Handler::start(&pairs(&settings)).await;
    let full = handler.timer().await;

    assert_eq!(full.status, 200, "{}", full.text);
    let mut counts = per_subject(&smtp);
    assert_eq!(
        counts.remove("Health notice: kv-notify needs attention"),
        Some(1),
        "once a day"
    );
    assert_eq!(counts.len(), DUE);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}
