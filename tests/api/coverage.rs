//! Every watched vault covered: with `SUBSCRIPTIONS`, the sweep asks Resource Manager (the
//! stand-in at management.localhost) whether each vault's system topic has an Event Grid
//! subscription delivering its expiry and access events to this app, by push or through the
//! queue with the topic's identity, and names the vaults without one.

use crate::support::*;
use crate::sweep::kv_notify;
use serde_json::{Value, json};

const TEAM: &str = "00000000-0000-0000-0000-00000000000a";
const LOCKED: &str = "00000000-0000-0000-0000-00000000000c";

/// As `sweeping_subscriptions`, in the function app `kvn-prod`.
fn setup(
    vault: &FakeVault,
    subscriptions: &[&str],
) -> (SmtpServer, IdentityEndpoint, Vec<(&'static str, String)>) {
    let (smtp, identity, mut settings) = sweeping_subscriptions(vault, subscriptions);
    set(&mut settings, "WEBSITE_SITE_NAME", "kvn-prod");
    (smtp, identity, settings)
}

/// A subscription pushing to this app's function.
fn to_function() -> Value {
    json!({"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/kvn-prod/functions/function-trigger"}},
           "filter": {"includedEventTypes": ["Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired", "Microsoft.KeyVault.KeyNearExpiry", "Microsoft.KeyVault.KeyExpired", "Microsoft.KeyVault.CertificateNearExpiry", "Microsoft.KeyVault.CertificateExpired", "Microsoft.KeyVault.VaultAccessPolicyChanged", "Microsoft.KeyVault.SecretNewVersionCreated"]}})
}

/// A subscription delivering to the app's queue with the topic's identity.
fn to_queue_with_identity() -> Value {
    json!({"destination": null, "deliveryWithResourceIdentity": {"identity": {"type": "SystemAssigned"},
           "destination": {"endpointType": "StorageQueue", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/devstoreaccount1", "queueName": "kv-notify-events"}}}})
}

#[tokio::test]
async fn a_vault_without_a_subscription_to_this_app_is_named_and_one_with_an_identity_queue_is_not()
{
    let vault = FakeVault::start(&["kv-a", "kv-b", "kv-c", "kv-d"]);
    let (smtp, _identity, mut settings) = setup(&vault, &[TEAM]);
    set(
        &mut settings,
        "AzureWebJobsStorage",
        "UseDevelopmentStorage=true",
    );
    set(&mut settings, "LEDGER", "file");
    vault.set(json!({
        "subscriptions": {TEAM: [{"name": "kv-a"}, {"name": "kv-b"}, {"name": "kv-c"}, {"name": "kv-d"}]},
        "eventGrid": {TEAM: [
            {"name": "kv-a-topic", "vault": "kv-a", "subscriptions": [to_function()]},
            {"name": "kv-b-topic", "vault": "kv-b", "subscriptions": [to_queue_with_identity()]},
            // Delivering to another app, and only one type.
            {"name": "kv-c-topic", "vault": "kv-c", "subscriptions": [
                {"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/other-app/functions/function-trigger"}}},
                {"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/kvn-prod/functions/function-trigger"}}, "filter": {"includedEventTypes": ["Microsoft.KeyVault.SecretNearExpiry"]}},
            ]},
            // kv-d: created after the deployment, no topic at all.
        ]},
        "vaults": {"kv-a": {}, "kv-b": {}, "kv-c": {}, "kv-d": {}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let coverage = answer.json()["ReturnValue"]["coverage"].clone();
    assert_eq!(
        (coverage["checked"].clone(), coverage["covered"].clone()),
        (json!(4), json!(2)),
        "{coverage}"
    );
    let uncovered = coverage["uncovered"].to_string();
    assert!(
        uncovered.contains("kv-c: none of its topic's 2 event subscription(s)"),
        "{uncovered}"
    );
    assert!(uncovered.contains("it delivers elsewhere"), "{uncovered}");
    assert!(
        uncovered.contains("it leaves out SecretExpired"),
        "{uncovered}"
    );
    assert!(
        uncovered.contains("kv-d: it has no Event Grid system topic"),
        "{uncovered}"
    );
    assert!(
        !uncovered.contains("kv-a") && !uncovered.contains("kv-b"),
        "{uncovered}"
    );
    let notice = smtp.health_notice().text();
    assert!(
        notice.contains("No Event Grid subscription delivers these vaults'"),
        "{notice}"
    );
    assert!(
        notice.contains("kv-d: it has no Event Grid system topic"),
        "{notice}"
    );
    // One request for the subscription's topics, one per vault with a topic.
    let requests = vault.requests();
    let event_grid: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("Microsoft.EventGrid"))
        .collect();
    assert_eq!(event_grid.len(), 1 + 3, "{event_grid:#?}");

    // inventory names them too.
    drop(handler);
    // A blind spot makes the inventory exit 1, as an unreadable vault does.
    let (ok, out) = kv_notify(&["inventory"], &settings);
    assert!(!ok, "{out}");
    assert!(
        out.contains("no Event Grid delivery to this app: it has no Event Grid system topic"),
        "{out}"
    );
}

#[tokio::test]
async fn without_reader_the_subscriptions_cannot_be_seen_and_no_vault_is_called_uncovered() {
    let vault = FakeVault::start(&["kv-a"]);
    let (smtp, _identity, settings) = setup(&vault, &[LOCKED]);
    vault.set(json!({
        "subscriptions": {LOCKED: [{"name": "kv-a"}]},
        "eventGrid": {LOCKED: "AuthorizationFailed"},
        "vaults": {"kv-a": {}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let coverage = answer.json()["ReturnValue"]["coverage"].clone();
    assert!(coverage.get("uncovered").is_none(), "{coverage}");
    let unseen = coverage["unseen"].to_string();
    assert!(
        unseen.contains("cannot see the Event Grid subscriptions"),
        "{unseen}"
    );
    assert!(
        unseen.contains("grant the app's identity Reader"),
        "{unseen}"
    );
    let notice = smtp.health_notice().text();
    assert!(
        notice.contains("kv-notify cannot see whether Event Grid delivers"),
        "{notice}"
    );
    assert!(
        !notice.contains("No Event Grid subscription delivers"),
        "{notice}"
    );
}

#[tokio::test]
async fn the_check_of_200_vaults_asks_resource_manager_once_a_subscription_and_once_a_vault() {
    let names: Vec<String> = (0..200).map(|n| format!("kv-{n:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let vault = FakeVault::start(&refs);
    let (_smtp, _identity, settings) = setup(&vault, &[TEAM]);
    let listed: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let mut topics: Vec<Value> = names
        .iter()
        .map(
            |n| json!({"name": format!("{n}-topic"), "vault": n, "subscriptions": [to_function()]}),
        )
        .collect();
    topics.push(
        json!({"name": "team-topic", "subscriptions": [resource_events_to_function("kvn-prod")]}),
    );
    let vaults: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.clone(), json!({}))).collect();
    vault.set(
        json!({"subscriptions": {TEAM: listed}, "eventGrid": {TEAM: topics}, "vaults": vaults}),
    );
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let coverage = answer.json()["ReturnValue"]["coverage"].clone();
    assert_eq!(
        (coverage["checked"].clone(), coverage["covered"].clone()),
        (json!(200), json!(200)),
        "{coverage}"
    );
    assert_eq!(
        (
            coverage["accessChecked"].clone(),
            coverage["accessCovered"].clone()
        ),
        (json!(1), json!(1)),
        "{coverage}"
    );
    let requests = vault.requests();
    let topics = requests
        .iter()
        .filter(|r| r.contains("/systemTopics?"))
        .count();
    let subscriptions = requests
        .iter()
        .filter(|r| r.contains("/eventSubscriptions?"))
        .count();
    // The subscription's topics once, each vault's topic once, the subscription's own topic once.
    assert_eq!((topics, subscriptions), (1, 201));
}

#[tokio::test]
async fn a_subscription_whose_resource_manager_events_do_not_reach_this_app_is_named() {
    const OTHER: &str = "00000000-0000-0000-0000-00000000000b";
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    let (smtp, _identity, settings) = setup(&vault, &[TEAM, OTHER]);
    // TEAM's own topic filters out role assignments; OTHER has no topic of its own.
    let mut narrowed = resource_events_to_function("kvn-prod");
    narrowed["filter"]["advancedFilters"][0]["values"] = json!([
        "Microsoft.KeyVault/vaults/write",
        "Microsoft.KeyVault/vaults/delete"
    ]);
    vault.set(json!({
        "subscriptions": {TEAM: [{"name": "kv-a"}], OTHER: [{"name": "kv-b"}]},
        "eventGrid": {
            TEAM: [
                {"name": "kv-a-topic", "vault": "kv-a", "subscriptions": [to_function()]},
                {"name": "team-topic", "subscriptions": [narrowed]},
            ],
            OTHER: [{"name": "kv-b-topic", "vault": "kv-b", "subscriptions": [to_function()]}],
        },
        "vaults": {"kv-a": {}, "kv-b": {}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let coverage = answer.json()["ReturnValue"]["coverage"].clone();
    assert_eq!(
        coverage["covered"],
        json!(2),
        "the vaults' own topics deliver: {coverage}"
    );
    assert_eq!(
        (
            coverage["accessChecked"].clone(),
            coverage.get("accessCovered")
        ),
        (json!(2), None),
        "{coverage}"
    );
    let uncovered = coverage["accessUncovered"].to_string();
    for said in [
        &format!("subscription {TEAM}: none of its topic's 1 event subscription(s)"),
        "its data.operationName filter leaves out Microsoft.Authorization/roleAssignments/write, \
         Microsoft.Authorization/roleAssignments/delete, \
         Microsoft.KeyVault/vaults/privateEndpointConnections/write",
        &format!("subscription {OTHER}: it has no Event Grid system topic of its own"),
    ] {
        assert!(uncovered.contains(said), "{said}: {uncovered}");
    }
    let notice = smtp.health_notice().text();
    assert!(
        notice.contains(
            "No Event Grid subscription delivers these subscriptions' Resource Manager events"
        ),
        "{notice}"
    );
    assert!(notice.contains("KV_NOTIFY_RESOURCE_EVENTS=on"), "{notice}");
    assert!(
        !notice.contains("No Event Grid subscription delivers these vaults'"),
        "{notice}"
    );

    drop(handler);
    let (ok, out) = kv_notify(&["inventory"], &settings);
    assert!(!ok, "a blind spot makes the inventory exit 1: {out}");
    assert!(
        out.contains(&format!(
            "subscription {OTHER}: no Event Grid delivery of its Resource Manager events"
        )),
        "{out}"
    );
}

#[tokio::test]
async fn with_vaults_alone_coverage_is_said_to_be_unchecked_and_no_vault_is_blamed() {
    let vault = FakeVault::start(&["kv-a"]);
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    vault.set(json!({"vaults": {"kv-a": {}}}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let logs = answer.json()["Logs"].to_string();
    assert!(
        logs.contains("Event Grid coverage not checked: with VAULTS alone"),
        "{logs}"
    );
    assert!(smtp.messages().is_empty(), "no health notice for it");
    assert!(
        !vault
            .requests()
            .iter()
            .any(|r| r.contains("Microsoft.EventGrid")),
        "{:#?}",
        vault.requests()
    );
}
