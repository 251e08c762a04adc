//! Owners from tags: the `owner` tag on an object names who its reminders and expiry alerts go
//! to, in the domains the configuration already mails; the rules' owners otherwise.

use crate::support::*;
use crate::sweep::kv_notify;
use serde_json::json;

/// A real SMTP server, the identity stand-in, and settings that sweep `vault`'s `name`.
fn setup(
    vault: &FakeVault,
    name: &str,
) -> (SmtpServer, IdentityEndpoint, Vec<(&'static str, String)>) {
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&[name], &identity));
    (smtp, identity, settings)
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

#[tokio::test]
async fn a_reminder_goes_to_the_owners_its_tag_names_in_the_domains_kv_notify_mails() {
    let vault = FakeVault::start(&["kv-a"]);
    let (smtp, _identity, mut settings) = setup(&vault, "kv-a");
    set(&mut settings, "OWNER_TAG_DOMAINS", "fabrikam.com");
    vault.set(json!({"vaults": {"kv-a": {"secrets": [
        expiring_with("db", 6.5, json!({"tags": {"Owner": "ann@contoso.com; eve@evil.example"}})),
        expiring_with("partner", 6.5, json!({"tags": {"owner": "bob@Fabrikam.com"}})),
        expiring("untagged", 6.5),
    ]}}}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let (notices, reminders): (Vec<Received>, Vec<Received>) = smtp
        .messages()
        .into_iter()
        .partition(|m| m.subject().starts_with("Health notice"));
    let mut to: Vec<(String, Vec<String>)> = reminders
        .iter()
        .map(|m| {
            let object = ["db", "partner", "untagged"]
                .into_iter()
                .find(|o| {
                    let subject = m.subject();
                    subject
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|word| word == *o)
                })
                .unwrap_or("?");
            (object.to_owned(), sorted(m.rcpt_to()))
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            ("db".to_owned(), vec!["ann@contoso.com".to_owned()]),
            ("partner".to_owned(), vec!["bob@Fabrikam.com".to_owned()]),
            (
                "untagged".to_owned(),
                vec![
                    "owner1@contoso.com".to_owned(),
                    "owner2@contoso.com".to_owned()
                ]
            ),
        ],
        "a foreign domain in a tag is never mailed"
    );
    assert_eq!(notices.len(), 1, "the health notice says so");
    let notice = notices[0].text();
    assert_eq!(notices[0].rcpt_to(), ["secops@contoso.com"]);
    assert!(
        notice.contains("The owner tag of kv-a/db: ignored eve@evil.example"),
        "{notice}"
    );
    assert!(
        handler.output().contains("owner_tag_ignored")
            && handler.output().contains("eve@evil.example"),
        "{}",
        handler.output()
    );

    let (ok, table) = kv_notify(&["inventory"], &settings);
    assert!(ok, "{table}");
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("db").contains("ann@contoso.com (owners from tag)"),
        "{table}"
    );
    assert!(line("db").contains("ignored eve@evil.example"), "{table}");
    assert!(
        line("untagged").contains("(owners from OWNER_EMAILS)"),
        "{table}"
    );
}

#[tokio::test]
async fn an_expiry_event_goes_to_the_owner_its_tag_names() {
    let vault = FakeVault::start(&["prod-kv"]);
    let (smtp, _identity, settings) = setup(&vault, "prod-kv");
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));
    vault.set(json!({"vaults": {"prod-kv": {"secrets": [{
        "name": "db-password",
        "version": event["data"]["Version"],
        "exp": event["data"]["EXP"],
        "tags": {"owner": "ann@contoso.com"},
    }]}}}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.invoke(event).await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to(), ["ann@contoso.com"]);
}

#[tokio::test]
async fn when_the_vault_is_too_slow_to_ask_an_expiry_event_goes_to_the_rules_owners() {
    // Slower than the event path waits for (5 s).
    let vault = FakeVault::start_with(&["prod-kv"], 6_000, 0);
    let (smtp, _identity, settings) = setup(&vault, "prod-kv");
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));
    vault.set(json!({"vaults": {"prod-kv": {"secrets": [{
        "name": "db-password",
        "version": event["data"]["Version"],
        "tags": {"owner": "ann@contoso.com"},
    }]}}}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.invoke(event).await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    assert_eq!(
        sorted(smtp.messages()[0].rcpt_to()),
        ["owner1@contoso.com", "owner2@contoso.com"],
        "a lookup never costs an alert"
    );
    assert!(
        handler.output().contains("alerting the rules' owners"),
        "{}",
        handler.output()
    );
}
