//! The daily health notice: after the timer's sweep, the security contacts hear once a day
//! about what needs a person (a recipient that refuses mail, a retired webhook, a vault
//! kv-notify cannot read, an event with unusable dates), and nothing after a clean day.

use crate::support::*;
use serde_json::json;

const NOTICE: &str = "Health notice: kv-notify needs attention";

fn notices(smtp: &SmtpServer) -> Vec<Received> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject() == NOTICE)
        .collect()
}

#[tokio::test]
async fn after_a_day_with_a_refused_recipient_a_retired_webhook_and_an_unreadable_vault_security_hears_once()
 {
    let smtp = SmtpServer::start_with(SmtpOptions {
        reject_rcpt: vec!["gone@contoso.com".to_owned()],
        ..SmtpOptions::default()
    });
    let (identity, hook) = (IdentityEndpoint::start(), WebhookServer::start());
    // A Teams webhook that was deleted answers 410 Gone.
    hook.answer_with(410);
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("fine", 100.5)]}, "kv-b": {}},
        "deny": {"kv-b": "ForbiddenByRbac"},
    }));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a", "kv-b"], &identity));
    set(
        &mut settings,
        "OWNER_EMAILS",
        "owner1@contoso.com, gone@contoso.com",
    );
    set(
        &mut settings,
        "ALERT_WEBHOOK_URL",
        &hook.url("/workflows/KEY"),
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let expiring = handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(20)))
        .await;
    let policy = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;
    assert_eq!(expiring.status, 200, "{}", expiring.text);
    assert_eq!(policy.status, 200, "{}", policy.text);

    let answer = handler.timer().await;

    assert_eq!(
        answer.json()["ReturnValue"]["healthNotice"],
        "sent",
        "{}",
        answer.text
    );
    let sent = notices(&smtp);
    assert_eq!(sent.len(), 1, "one notice");
    let notice = &sent[0];
    assert_eq!(notice.rcpt_to(), ["secops@contoso.com"]);
    let text = notice.text();
    assert!(text.contains("3 problems"), "{text}");
    assert!(
        text.contains(
            "Vault kv-b was not read in full by today's sweep: secrets, keys and certificates: \
             access denied (403, ForbiddenByRbac)"
        ),
        "{text}"
    );
    assert!(
        text.contains("The blind-spot alert about it says how to fix it"),
        "{text}"
    );
    assert!(
        text.contains("Webhook channel security refused an alert for good"),
        "{text}"
    );
    assert!(text.contains("410"), "{text}");
    assert!(
        text.contains("Mail to gone@contoso.com was refused for good"),
        "{text}"
    );
    assert!(text.contains("550"), "{text}");
    assert!(
        !text.contains("owner1@contoso.com"),
        "only what needs a person: {text}"
    );
    let html = notice.html();
    assert!(html.contains("gone@contoso.com"), "{html}");
    assert!(
        answer.text.contains("health notice: sent"),
        "{}",
        answer.text
    );

    let again = handler.timer().await;

    assert_eq!(again.json()["ReturnValue"]["healthNotice"], "sent before");
    assert_eq!(notices(&smtp).len(), 1, "once a day at most");
}

#[tokio::test]
async fn after_a_clean_day_no_notice_goes() {
    let smtp = SmtpServer::start();
    let (identity, hook) = (IdentityEndpoint::start(), WebhookServer::start());
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(json!({"vaults": {"kv-a": {"secrets": [expiring("soon", 6.5)]}}}));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    set(
        &mut settings,
        "ALERT_WEBHOOK_URL",
        &hook.url("/workflows/KEY"),
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let policy = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;
    assert_eq!(policy.statuses(), ["sent", "sent"], "{}", policy.text);

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["ReturnValue"]["healthNotice"], "not needed");
    assert!(notices(&smtp).is_empty());
    assert_eq!(
        smtp.messages().len(),
        2,
        "the alert and the reminder, nothing else"
    );
}

#[tokio::test]
async fn a_webhook_that_fails_and_then_answers_again_is_not_reported() {
    let smtp = SmtpServer::start();
    let hook = WebhookServer::start();
    let mut settings = mail_settings(&smtp.url());
    set(
        &mut settings,
        "ALERT_WEBHOOK_URL",
        &hook.url("/workflows/KEY"),
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("VaultAccessPolicyChanged", "prod-kv", None);
    hook.answer_with(503);
    let failed = handler.invoke(event.clone()).await;
    assert_eq!(
        failed.status, 500,
        "a retryable failure asks for a redelivery"
    );
    hook.answer_with(200);
    let redelivered = handler.invoke(event).await;
    assert_eq!(redelivered.status, 200, "{}", redelivered.text);

    let answer = handler.timer().await;

    assert_eq!(
        answer.json()["ReturnValue"]["healthNotice"],
        "not needed",
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn what_one_instance_meets_reaches_the_notice_another_sends_on_the_shared_ledger() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        reject_rcpt: vec!["gone@contoso.com".to_owned()],
        ..SmtpOptions::default()
    });
    let azurite = Azurite::start();
    let mut settings = mail_settings_on_table(&smtp.url(), &azurite);
    set(&mut settings, "OWNER_EMAILS", "gone@contoso.com");
    let settings = pairs(&settings);
    let (events, timer) = tokio::join!(Handler::start(&settings), Handler::start(&settings));
    let mut undated = event_grid("KeyNearExpiry", "signing", Some(5));
    undated["data"]["EXP"] = json!("next tuesday");
    for event in [
        event_grid("SecretNearExpiry", "db-password", Some(20)),
        event_grid("SecretNearExpiry", "api-key", Some(20)),
        undated,
    ] {
        let answer = events.invoke(event).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }

    let answer = timer.timer().await;

    assert_eq!(
        answer.json()["ReturnValue"]["healthNotice"],
        "sent",
        "{}",
        answer.text
    );
    let text = notices(&smtp)[0].text();
    assert!(
        text.contains("2 problems"),
        "one line per recipient: {text}"
    );
    assert!(
        text.contains("Mail to gone@contoso.com was refused for good"),
        "{text}"
    );
    assert!(text.contains("Events carried an unusable EXP"), "{text}");
    assert!(text.contains("for prod-kv/signing"), "{text}");
    assert!(text.contains("ignored EXP: not a Unix timestamp"), "{text}");
}

#[tokio::test]
async fn a_stream_of_events_with_unusable_dates_is_one_problem_naming_the_latest() {
    let smtp = SmtpServer::start();
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(json!({"vaults": {"kv-a": {}}}));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    let handler = Handler::start(&pairs(&settings)).await;
    let mut last = String::new();
    for n in 0..5 {
        let mut event = event_grid("SecretNearExpiry", &format!("odd-{n}"), Some(20));
        // Milliseconds sent as seconds: a date in the year 50,000 and more.
        event["data"]["EXP"] = json!(1_900_000_000_000_i64);
        last = event["id"].as_str().expect("an id").to_owned();
        assert_eq!(handler.invoke(event).await.status, 200);
    }

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let sent = notices(&smtp);
    assert_eq!(sent.len(), 1, "one notice");
    let text = sent[0].text();
    assert!(
        text.contains("met one problem"),
        "one problem, not one per event: {text}"
    );
    assert!(text.contains("Events carried an unusable EXP"), "{text}");
    assert!(text.contains(&last), "the latest event is named: {text}");
}
