//! One HTTP policy for every outgoing call: a redirect is an answer, never followed; an error
//! body is read only so far; every throttled attempt counts; a token or a key goes over https
//! only, and a Key Vault token to Key Vault only.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

const NOTICE: &str = "Health notice: kv-notify needs attention";

#[tokio::test]
async fn a_webhook_that_redirects_is_refused_for_good_and_its_target_receives_nothing() {
    for status in [307, 302] {
        let smtp = SmtpServer::start();
        let identity = IdentityEndpoint::start();
        let (hook, elsewhere) = (WebhookServer::start(), WebhookServer::start());
        hook.redirect_to(status, &elsewhere.url("/login?next=here"));
        let vault = FakeVault::start(&["kv-a"]);
        vault.set(json!({"vaults": {"kv-a": {}}}));
        let mut settings = mail_settings(&smtp.url());
        settings.extend(vault.settings(&["kv-a"], &identity));
        set(
            &mut settings,
            "ALERT_WEBHOOK_URL",
            &hook.url("/workflows/SECRET-KEY"),
        );
        let handler = Handler::start(&pairs(&settings)).await;
        let event = event_grid("VaultAccessPolicyChanged", "prod-kv", None);

        let first = handler.invoke(event.clone()).await;
        let again = handler.invoke(event).await;
        let timer = handler.timer().await;

        assert_eq!(
            first.status, 200,
            "{status}: no retry helps: {}",
            first.text
        );
        assert!(
            first.statuses().contains(&"failed".to_owned()),
            "{status}: never recorded sent: {}",
            first.text
        );
        assert!(first.text.contains("not followed"), "{}", first.text);
        assert!(!first.text.contains("SECRET-KEY"), "{}", first.text);
        assert_eq!(again.status, 200);
        let alerts = hook
            .received()
            .into_iter()
            .filter(|(_, body)| body["event"]["type"] == "VaultAccessPolicyChanged")
            .count();
        assert_eq!(alerts, 1, "{status}: posted once, not again on redelivery");
        assert!(
            elsewhere.received().is_empty(),
            "{status}: the redirect's target got {:?}",
            elsewhere.received()
        );
        assert_eq!(timer.status, 200, "{}", timer.text);
        let notice = smtp
            .messages()
            .into_iter()
            .find(|m| m.subject() == NOTICE)
            .expect("a health notice");
        assert!(
            notice
                .text()
                .contains("Webhook channel security refused an alert for good"),
            "{}",
            notice.text()
        );
    }
}

#[tokio::test]
async fn a_webhook_answering_an_endless_error_body_costs_little_memory_and_blocks_nothing() {
    let endless = EndlessServer::start();
    let outbox = tempfile::tempdir().expect("temp dir");
    let handler = Handler::start(&[
        ("OUTBOX_DIR", outbox.path().to_str().expect("utf-8")),
        ("SECURITY_EMAILS", "secops@contoso.com"),
        ("ALERT_WEBHOOK_URL", &endless.url("/hooks/KEY")),
    ])
    .await;
    let ready = http_client();
    let ready_url = handler.url("/");

    let (answer, probe) = tokio::join!(
        handler.invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None)),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tokio::time::timeout(Duration::from_secs(5), ready.get(&ready_url).send()).await
        }
    );

    assert!(
        matches!(probe, Ok(Ok(ref r)) if r.status().is_success()),
        "GET / is answered while the body streams: {probe:?}"
    );
    assert_eq!(answer.status, 500, "a 500 may pass later: {}", answer.text);
    assert!(answer.text.contains("500"), "{}", answer.text);
    let peak = handler.peak_memory();
    assert!(
        peak < 64 * 1024 * 1024,
        "peak memory {peak} bytes while {} bytes were offered",
        endless.sent()
    );
}

#[tokio::test]
async fn a_vault_that_throttles_with_retry_after_0_is_asked_a_bounded_number_of_times() {
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("a", 3.5)]}},
        "throttle": {"kv-a": {"count": 100_000, "retryAfter": 0}},
    }));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    let requests = vault.requests();
    for list in ["/secrets", "/keys", "/certificates"] {
        let asked = requests
            .iter()
            .filter(|r| r.split(' ').nth(2).is_some_and(|p| p.starts_with(list)))
            .count();
        assert!(
            (1..=6).contains(&asked),
            "{list}: {asked} requests, not at most the 5 waits plus one:\n{requests:#?}"
        );
    }
    let not_reached = answer.json()["ReturnValue"]["notReached"].to_string();
    assert!(
        not_reached.contains("kv-a") && not_reached.contains("gave up"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn a_vault_that_redirects_is_not_followed_and_is_reported_unread() {
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let elsewhere = WebhookServer::start();
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("a", 3.5)]}, "kv-b": {"secrets": [expiring("b", 3.5)]}},
        "redirect": {"kv-b": elsewhere.url("/secrets")},
    }));
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a", "kv-b"], &identity));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert!(
        elsewhere.received().is_empty(),
        "the token went to {:?}",
        elsewhere.received()
    );
    let not_reached = answer.json()["ReturnValue"]["notReached"].to_string();
    assert!(
        not_reached.contains("kv-b") && not_reached.contains("not followed"),
        "{}",
        answer.text
    );
    let subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    assert!(
        subjects.contains(&"Secret a in kv-a expires in 3 days".to_owned()),
        "the other vault is swept: {subjects:?}"
    );
    assert!(
        subjects.contains(&"Security alert: kv-notify cannot see vault kv-b".to_owned()),
        "{subjects:?}"
    );
}

#[test]
fn an_identity_storage_endpoint_over_http_is_refused_at_start_up_without_its_secret() {
    let output = Handler::refused_start(
        &[
            ("LEDGER", "table"),
            (
                "AzureWebJobsStorage__tableServiceUri",
                "http://ledgerstore.table.core.windows.net",
            ),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "IDENTITY-SECRET"),
        ],
        "AzureWebJobsStorage__tableServiceUri",
    );

    assert!(output.contains("in clear"), "{output}");
    assert!(!output.contains("IDENTITY-SECRET"), "{output}");
}

#[test]
fn a_storage_account_name_that_is_not_one_is_refused_at_start_up() {
    let output = Handler::refused_start(
        &[
            ("LEDGER", "table"),
            ("AzureWebJobsStorage__accountName", "evil.example.com/x"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "IDENTITY-SECRET"),
        ],
        "is not a storage account name",
    );

    assert!(
        output.contains("AzureWebJobsStorage__accountName"),
        "{output}"
    );
    assert!(!output.contains("IDENTITY-SECRET"), "{output}");
}

#[test]
fn a_webhook_over_plain_http_is_refused_at_start_up_without_its_key() {
    let output = Handler::refused_start(
        &[(
            "ALERT_WEBHOOK_URL",
            "http://hooks.example.com/services/SECRET-KEY",
        )],
        "ALERT_WEBHOOK_URL",
    );

    assert!(output.contains("in clear"), "{output}");
    assert!(!output.contains("SECRET-KEY"), "{output}");
}

#[test]
fn a_vault_outside_the_domain_of_key_vault_resource_is_refused_at_start_up() {
    let output = Handler::refused_start(
        &[
            ("VAULTS", "https://kv.attacker.example.net"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "IDENTITY-SECRET"),
        ],
        "VAULTS",
    );

    assert!(output.contains(".vault.azure.net"), "{output}");
    assert!(!output.contains("IDENTITY-SECRET"), "{output}");
}
