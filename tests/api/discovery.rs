//! Vault discovery: with `SUBSCRIPTIONS`, the sweep finds its vaults through Resource Manager
//! (the stand-in at management.localhost), with their tags, beside those of `VAULTS`.

use crate::support::*;
use crate::sweep::kv_notify;
use serde_json::{Value, json};

const TEAM: &str = "00000000-0000-0000-0000-00000000000a";
const OTHER: &str = "00000000-0000-0000-0000-00000000000b";

/// Who each mail went to, by subject, sorted.
fn recipients(smtp: &SmtpServer) -> Vec<(String, Vec<String>)> {
    let mut mails: Vec<(String, Vec<String>)> = smtp
        .messages()
        .iter()
        .map(|m| {
            let mut to = m.rcpt_to();
            to.sort();
            (m.subject(), to)
        })
        .collect();
    mails.sort();
    mails
}

/// System topics for `vaults`, each subscribed to this app's function: Event Grid reaches them.
fn delivered(vaults: &[&str]) -> Value {
    let to_function = json!({"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/kvn/functions/function-trigger"}}});
    let mut topics: Vec<Value> = vaults
        .iter()
        .map(|v| json!({"name": format!("{v}-topic"), "vault": v, "subscriptions": [to_function]}))
        .collect();
    // The subscription's own topic, delivering Resource Manager's events as the template does.
    topics.push(
        json!({"name": "subscription-topic", "subscriptions": [resource_events_to_function("kvn")]}),
    );
    json!(topics)
}

fn due(name: &str) -> Value {
    json!({"secrets": [expiring(name, 6.5)]})
}

#[tokio::test]
async fn the_vaults_of_every_subscription_are_found_paged_and_swept_with_their_tags_as_owners() {
    let vault = FakeVault::start(&["kv-a", "kv-b", "kv-c", "kv-d"]);
    let (smtp, _identity, settings) = sweeping_subscriptions(&vault, &[TEAM, OTHER]);
    vault.set(json!({
        "subscriptions": {
            // Three vaults: two pages of Resource Manager's list.
            TEAM: [
                {"name": "kv-a", "tags": {"Owner": "team-a@contoso.com, mallory@evil.example"}},
                {"name": "kv-b"},
                {"name": "kv-c", "tags": {"owner": "team-c@contoso.com"}},
            ],
            OTHER: [{"name": "kv-d"}],
        },
        "eventGrid": {TEAM: delivered(&["kv-a", "kv-b", "kv-c"]), OTHER: delivered(&["kv-d"])},
        "vaults": {
            "kv-a": due("a-secret"),
            "kv-b": due("b-secret"),
            "kv-c": {"secrets": [
                expiring_with("c-secret", 6.5, json!({"tags": {"owner": "carol@contoso.com"}})),
            ]},
            "kv-d": due("d-secret"),
        },
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let rules = vec![
        "owner1@contoso.com".to_owned(),
        "owner2@contoso.com".to_owned(),
    ];
    let mut mails = recipients(&smtp);
    let notice = mails.remove(0);
    assert_eq!(
        notice,
        (
            "Health notice: kv-notify needs attention".to_owned(),
            vec!["secops@contoso.com".to_owned()]
        ),
        "the vault tag's foreign address is said"
    );
    assert_eq!(
        mails,
        [
            // The vault's owner tag.
            (
                "Secret a-secret in kv-a expires in 6 days".to_owned(),
                vec!["team-a@contoso.com".to_owned()]
            ),
            // No tag anywhere: OWNER_EMAILS.
            (
                "Secret b-secret in kv-b expires in 6 days".to_owned(),
                rules.clone()
            ),
            // The object's own tag wins over its vault's.
            (
                "Secret c-secret in kv-c expires in 6 days".to_owned(),
                vec!["carol@contoso.com".to_owned()]
            ),
            (
                "Secret d-secret in kv-d expires in 6 days".to_owned(),
                rules
            ),
        ]
    );
    let listed: Vec<String> = vault
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("management ") && r.contains("Microsoft.KeyVault/vaults"))
        .collect();
    assert_eq!(listed.len(), 3, "two pages and one: {listed:#?}");
    assert!(vault.violations().is_empty(), "{:?}", vault.violations());

    let (ok, table) = kv_notify(&["inventory"], &settings);
    assert!(ok, "{table}");
    assert!(
        table.contains("in 4 vault(s) of the vaults of subscriptions"),
        "{table}"
    );
    let a = table
        .lines()
        .find(|l| l.contains("a-secret"))
        .unwrap_or_default();
    assert!(
        a.contains("team-a@contoso.com (owners from the vault's tag)"),
        "{table}"
    );
    assert!(a.contains("ignored mallory@evil.example"), "{table}");
}

#[tokio::test]
async fn a_vault_in_vaults_and_in_a_subscription_is_read_once() {
    let vault = FakeVault::start(&["kv-a"]);
    let (smtp, _identity, mut settings) = sweeping_subscriptions(&vault, &[TEAM]);
    set(&mut settings, "VAULTS", &vault.uri("kv-a"));
    vault.set(json!({
        "subscriptions": {TEAM: [{"name": "kv-a", "tags": {"owner": "team-a@contoso.com"}}]},
        "eventGrid": {TEAM: delivered(&["kv-a"])},
        "vaults": {"kv-a": due("a-secret")},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["ReturnValue"]["vaults"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let secret_lists = vault
        .requests()
        .iter()
        .filter(|r| r.starts_with("kv-a GET /secrets?"))
        .count();
    assert_eq!(secret_lists, 1, "{:#?}", vault.requests());
    assert_eq!(
        recipients(&smtp)[0].1,
        ["team-a@contoso.com"],
        "the vault in VAULTS takes the tags Resource Manager gives it"
    );
}

#[tokio::test]
async fn a_subscription_that_cannot_be_listed_fails_the_run_and_the_others_are_still_swept() {
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    let (smtp, _identity, settings) = sweeping_subscriptions(&vault, &[TEAM, OTHER]);
    vault.set(json!({
        "subscriptions": {
            TEAM: [{"name": "kv-a"}, {"name": "kv-b"}],
            OTHER: "AuthorizationFailed",
        },
        "vaults": {"kv-a": due("a-secret")},
        // Discovered but not readable.
        "deny": {"kv-b": "ForbiddenByRbac"},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(
        answer.status, 500,
        "a run that missed vaults shows as failed"
    );
    let report = &answer.json()["ReturnValue"];
    let unlisted = report["subscriptionsNotListed"].to_string();
    assert!(unlisted.contains(OTHER), "{report}");
    assert!(unlisted.contains("AuthorizationFailed"), "{report}");
    assert!(
        answer.text.contains("subscription NOT LISTED"),
        "the invocation log says so: {}",
        answer.text
    );
    let subjects: Vec<String> = smtp.messages().iter().map(|m| m.subject()).collect();
    assert!(
        subjects.contains(&"Secret a-secret in kv-a expires in 6 days".to_owned()),
        "{subjects:?}"
    );
    let blind = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("cannot see vault kv-b"))
        .unwrap_or_else(|| panic!("no blind-spot alert for kv-b: {subjects:?}"));
    assert_eq!(blind.rcpt_to(), ["secops@contoso.com"]);
    assert!(
        blind.text().contains("Key Vault Reader"),
        "{}",
        blind.text()
    );
    let notice = smtp.health_notice();
    let text = notice.text();
    assert!(text.contains(&format!("Subscription {OTHER}")), "{text}");
    assert!(text.contains("Reader role on the subscription"), "{text}");
}

#[tokio::test]
async fn an_expiry_event_from_a_discovered_vault_goes_to_the_owner_its_vault_tag_names() {
    let vault = FakeVault::start(&["prod-kv"]);
    let (smtp, _identity, settings) = sweeping_subscriptions(&vault, &[TEAM]);
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));
    vault.set(json!({
        "subscriptions": {TEAM: [{"name": "prod-kv", "tags": {"owner": "platform@contoso.com"}}]},
        "vaults": {"prod-kv": {"secrets": [{
            "name": "db-password",
            "version": event["data"]["Version"],
            "exp": event["data"]["EXP"],
        }]}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.invoke(event).await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    assert_eq!(smtp.messages()[0].rcpt_to(), ["platform@contoso.com"]);
}

#[tokio::test]
async fn a_subscription_id_that_is_not_one_is_refused_at_start_up() {
    let output = Handler::refused_start(
        &[
            ("SUBSCRIPTIONS", "contoso-prod"),
            ("ARM_ENDPOINT", "http://management.localhost"),
        ],
        "SUBSCRIPTIONS",
    );

    assert!(
        output.contains("\"contoso-prod\" is not a subscription id"),
        "{output}"
    );
    assert!(
        output.contains("ARM_ENDPOINT"),
        "every problem at once: {output}"
    );
}
