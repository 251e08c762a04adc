//! Access changes on RBAC vaults: Resource Manager's events, as a subscription's system topic
//! sends them (Microsoft's documented `ResourceWriteSuccess` sample, adapted to a vault), with
//! the stand-in at management.localhost serving the role assignments, role definitions and
//! vault properties the alert is read from.

use crate::support::*;
use serde_json::{Value, json};

const SUB: &str = "00000000-0000-0000-0000-00000000000a";
/// Key Vault Secrets Officer's built-in id.
const OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
const PRINCIPAL: &str = "6f1c1d8e-1111-4000-8000-000000000001";

fn vault_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{name}")
}

fn role_id(guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

fn assignment_id(scope: &str, guid: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}")
}

/// A role definition as Resource Manager gives it.
fn role(name: &str, data_actions: &[&str], actions: &[&str]) -> Value {
    json!({"properties": {"roleName": name, "type": "BuiltInRole", "permissions": [
        {"actions": actions, "notActions": [], "dataActions": data_actions, "notDataActions": []}]}})
}

/// A role assignment as Resource Manager gives it.
fn assignment(scope: &str, role_guid: &str) -> Value {
    json!({"properties": {"roleDefinitionId": role_id(role_guid), "principalId": PRINCIPAL,
                          "principalType": "User", "scope": scope}})
}

/// Microsoft's documented `ResourceWriteSuccess` sample (Event Grid schema), adapted: `action`
/// is `Write` or `Delete`, `resource` the resource id, `operation` its `operationName`.
fn resource_event(action: &str, operation: &str, resource: &str, id: &str) -> Value {
    json!({
        "subject": resource,
        "eventType": format!("Microsoft.Resources.Resource{action}Success"),
        "eventTime": "2026-12-03T10:00:00.1234567Z",
        "id": id,
        "data": {
            "authorization": {"scope": resource, "action": operation,
                              "evidence": {"role": "Subscription Admin"}},
            "claims": {
                "aud": "https://management.core.windows.net/",
                "iss": "https://sts.windows.net/72f988bf-0000-0000-0000-000000000000/",
                "iat": "1733220000", "nbf": "1733220000", "exp": "1733223600",
                "http://schemas.microsoft.com/claims/authnclassreference": "1",
                "http://schemas.microsoft.com/claims/authnmethodsreferences": "pwd,mfa",
                "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
                "appidacr": "2",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": "Lovelace",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "Ada",
                "ipaddr": "203.0.113.4",
                "name": "Ada Lovelace",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": "0f1c0000-0000-4000-8000-00000000000a",
                "http://schemas.microsoft.com/identity/claims/scope": "user_impersonation",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "ada@contoso.com",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ada@contoso.com",
                "ver": "1.0"
            },
            "correlationId": "7e1c0000-0000-4000-8000-0000000000c0",
            "resourceProvider": operation.split('/').next().unwrap_or_default(),
            "resourceUri": resource,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": SUB,
            "tenantId": "72f988bf-0000-0000-0000-000000000000"
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": format!("/subscriptions/{SUB}")
    })
}

/// Resource Manager's answers for a Key Vault Secrets Officer assignment `id` at `scope`.
fn officer_at(scope: &str, id: &str) -> Value {
    json!({
        id: assignment(scope, OFFICER),
        role_id(OFFICER): role("Key Vault Secrets Officer", &["Microsoft.KeyVault/vaults/secrets/*"], &[]),
    })
}

/// `event`, dated now (the other events are dated 2026-12-03 10:00).
fn now(mut event: Value) -> Value {
    event["eventTime"] = json!(chrono::Utc::now().to_rfc3339());
    event
}

/// A role assignment `id` written, as Resource Manager's event `event` says.
fn assignment_written(id: &str, event: &str) -> Value {
    resource_event(
        "Write",
        "Microsoft.Authorization/roleAssignments/write",
        id,
        event,
    )
}

/// A role assignment `id` deleted, as Resource Manager's event `event` says.
fn assignment_deleted(id: &str, event: &str) -> Value {
    resource_event(
        "Delete",
        "Microsoft.Authorization/roleAssignments/delete",
        id,
        event,
    )
}

/// The same event in the CloudEvents 1.0 schema.
fn cloud_event(action: &str, operation: &str, resource: &str, id: &str) -> Value {
    let grid = resource_event(action, operation, resource, id);
    json!({
        "specversion": "1.0",
        "type": grid["eventType"],
        "source": grid["topic"],
        "subject": grid["subject"],
        "id": id,
        "time": grid["eventTime"],
        "data": grid["data"],
    })
}

struct Setup {
    vault: FakeVault,
    smtp: SmtpServer,
    identity: IdentityEndpoint,
    dir: tempfile::TempDir,
    settings: Vec<(&'static str, String)>,
}

/// kv-notify watching the vaults of subscription SUB (kv-a, and kv-b in resource group rg),
/// with `resources` served by id.
fn setup(resources: Value) -> Setup {
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = mail_settings_with_ledger(&smtp.url(), &dir.path().join("ledger.redb"));
    settings.extend(vault.settings(&[], &identity));
    settings.retain(|(name, _)| *name != "VAULTS");
    set(&mut settings, "SUBSCRIPTIONS", SUB);
    set(&mut settings, "ARM_ENDPOINT", &vault.arm_endpoint());
    vault.set(json!({
        "subscriptions": {SUB: [
            {"name": "kv-a", "properties": {"publicNetworkAccess": "Disabled",
                "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": []}}},
            {"name": "kv-b"},
        ]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": resources,
    }));
    Setup {
        vault,
        smtp,
        identity,
        dir,
        settings,
    }
}

/// `s`'s settings with the shared ledger in the storage account of `connection_string`.
fn on_table(s: &Setup, connection_string: &str) -> Vec<(&'static str, String)> {
    let mut settings = s.settings.clone();
    settings.retain(|(name, _)| *name != "LEDGER_PATH");
    set(&mut settings, "LEDGER", "table");
    set(&mut settings, "AzureWebJobsStorage", connection_string);
    settings
}

/// kv-notify started on `s`'s settings, after its first sweep (which lists the subscription and
/// keeps each vault's settings).
async fn swept(s: &Setup) -> Handler {
    let handler = Handler::start(&pairs(&s.settings)).await;
    let timer = handler.timer().await;
    assert_eq!(timer.status, 200, "{}", timer.text);
    handler
}

/// `s`'s settings with Entra ID read through `graph`, which knows PRINCIPAL as Grace Guest.
fn with_graph(s: &Setup, graph: &FakeGraph) -> Vec<(&'static str, String)> {
    graph.set_directory_objects(&json!({PRINCIPAL: {
        "@odata.type": "#microsoft.graph.user", "id": PRINCIPAL,
        "displayName": "Grace Guest", "userPrincipalName": "grace_fabrikam.com#EXT#@contoso.onmicrosoft.com"}}));
    let mut settings = s.settings.clone();
    set(&mut settings, "ENTRA_CREDENTIALS", "true");
    set(&mut settings, "GRAPH_ENDPOINT", &graph.url());
    // Both stand-ins' test CAs, in one bundle.
    let bundle = s.dir.path().join("cas.pem");
    let cas = [s.vault.certificate(), graph.certificate()]
        .map(|ca| std::fs::read_to_string(ca).expect("read CA"));
    std::fs::write(&bundle, cas.concat()).expect("write bundle");
    set(&mut settings, "SSL_CERT_FILE", &bundle.to_string_lossy());
    settings
}

/// Resource Manager's requests for role assignments, role definitions and single vaults.
fn reads(vault: &FakeVault) -> Vec<String> {
    vault
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("management ") && (r.contains("/role") || r.contains("/vaults/")))
        .collect()
}

/// That `answer` sent its one event's alert, with the handler's log when it did not.
fn assert_sent(answer: &Answer, handler: &Handler) {
    assert_eq!(
        answer.statuses(),
        ["sent"],
        "{}\n{}",
        answer.text,
        handler.output()
    );
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    smtp.messages().iter().map(Received::subject).collect()
}

#[tokio::test]
async fn a_secrets_officer_assignment_on_a_vault_is_one_alert_naming_role_principal_and_caller() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a1");
    let s = setup(officer_at(&scope, &id));
    let handler = Handler::start(&pairs(&s.settings)).await;
    let event = assignment_written(&id, "e-1");

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_sent(&first, &handler);
    assert_eq!(
        again.statuses(),
        ["duplicate"],
        "a redelivery sends nothing more"
    );
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 1, "{:?}", subjects(&s.smtp));
    let mail = &messages[0];
    assert_eq!(
        mail.subject(),
        format!(
            "Security alert: Key Vault Secrets Officer granted to User {PRINCIPAL} on vault kv-a"
        )
    );
    assert_eq!(mail.rcpt_to(), ["secops@contoso.com"]);
    let text = mail.text();
    for said in [
        "Ada Lovelace (ada@contoso.com), from 203.0.113.4",
        "Microsoft.KeyVault/vaults/secrets/* (data)",
        &format!("{scope}/users"),
        &format!("{scope}/activitylog"),
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
    assert_eq!(first.events()[0]["type"], "VaultRoleAssignmentChanged");
    assert_eq!(
        first.events()[0]["access"]["assignment"]["role"],
        "Key Vault Secrets Officer"
    );
}

#[tokio::test]
async fn a_custom_role_with_secret_data_actions_at_the_resource_group_alerts_in_cloud_events_too() {
    let scope = format!("/subscriptions/{SUB}/resourceGroups/rg");
    let id = assignment_id(&scope, "a2");
    let custom = "11111111-2222-4333-8444-555555555555";
    let s = setup(json!({
        id.clone(): assignment(&scope, custom),
        role_id(custom): role("Contoso secret readers", &["Microsoft.KeyVault/vaults/secrets/*"], &["*/read"]),
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler
        .invoke(cloud_event(
            "Write",
            "Microsoft.Authorization/roleAssignments/write",
            &id,
            "e-2",
        ))
        .await;

    assert_sent(&answer, &handler);
    let subjects = subjects(&s.smtp);
    assert_eq!(
        subjects,
        [format!(
            "Security alert: Contoso secret readers granted to User {PRINCIPAL} on resource group rg (above vault kv-a)"
        )]
    );
    let text = s.smtp.messages()[0].text();
    assert!(
        text.contains("it reaches 2 watched vaults: kv-a, kv-b"),
        "{text}"
    );
}

#[tokio::test]
async fn a_reader_assignment_on_an_unrelated_storage_account_reads_nothing_and_sends_nothing() {
    let scope = format!(
        "/subscriptions/{SUB}/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/logs"
    );
    let id = assignment_id(&scope, "a3");
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let s = setup(json!({
        id.clone(): assignment(&scope, reader),
        role_id(reader): role("Reader", &[], &["*/read"]),
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.invoke(assignment_written(&id, "e-3")).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.events()[0]["actions"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{}",
        answer.text
    );
    assert!(s.smtp.messages().is_empty());
    assert_eq!(reads(&s.vault), Vec::<String>::new());
}

#[tokio::test]
async fn a_reader_assignment_on_the_vault_itself_is_read_and_not_alerted() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a4");
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let s = setup(json!({
        id.clone(): assignment(&scope, reader),
        role_id(reader): role("Reader", &[], &["*/read"]),
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.invoke(assignment_written(&id, "e-4")).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(s.smtp.messages().is_empty(), "{:?}", subjects(&s.smtp));
    assert_eq!(
        reads(&s.vault).len(),
        2,
        "the assignment and its role: {:?}",
        reads(&s.vault)
    );
}

#[tokio::test]
async fn network_rules_opened_make_one_alert_saying_what_opened() {
    let s = setup(json!({}));
    // The daily sweep keeps each vault's settings as Resource Manager lists them.
    let handler = swept(&s).await;
    let before = s.smtp.messages().len();
    // Then someone opens kv-a's network to the internet.
    let mut state = json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": {vault_id("kv-a"): {"properties": {"publicNetworkAccess": "Enabled",
            "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices",
                            "ipRules": [{"value": "0.0.0.0/0"}]}}}},
    });
    s.vault.set(state.clone());
    let write = |id: &str| {
        resource_event(
            "Write",
            "Microsoft.KeyVault/vaults/write",
            &vault_id("kv-a"),
            id,
        )
    };

    let opened = handler.invoke(write("e-5")).await;
    // A later write that changes nothing of its exposure (a tag) is no alert.
    state["resources"][vault_id("kv-a")]["tags"] = json!({"team": "payments"});
    s.vault.set(state);
    let tagged = handler.invoke(write("e-6")).await;

    assert_sent(&opened, &handler);
    assert_eq!(tagged.status, 200, "{}", tagged.text);
    let messages = s.smtp.messages();
    let alerts: Vec<&Received> = messages[before..].iter().collect();
    assert_eq!(alerts.len(), 1, "{:?}", subjects(&s.smtp));
    assert_eq!(
        alerts[0].subject(),
        "Security alert: Access settings changed on vault kv-a: the vault is now open to the internet"
    );
    let text = alerts[0].text();
    for said in [
        "public network access: Disabled → Enabled",
        "IP range 0.0.0.0/0 let in: every address on the internet",
        "Ada Lovelace (ada@contoso.com), from 203.0.113.4",
        &format!("{}/networking", vault_id("kv-a")),
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
}

#[tokio::test]
async fn a_settings_change_whose_judgement_storage_refuses_is_alerted_once_on_redelivery() {
    let s = setup(json!({}));
    let azurite = Azurite::start();
    let proxy = StorageProxy::before(&azurite);
    let settings = on_table(&s, &proxy.connection_string(&azurite));
    let handler = Handler::start(&pairs(&settings)).await;
    // The sweep keeps kv-a's settings (public network access disabled) as the baseline.
    let timer = handler.timer().await;
    assert_eq!(timer.status, 200, "{}", timer.text);
    s.vault.set(json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": {vault_id("kv-a"): {"properties": {"publicNetworkAccess": "Enabled"}}},
    }));
    let opened = || {
        resource_event(
            "Write",
            "Microsoft.KeyVault/vaults/write",
            &vault_id("kv-a"),
            "e-20",
        )
    };

    // Storage takes one more of what kv-notify remembers, then is busy for the rest of the
    // delivery; Event Grid delivers the event again once it is not.
    proxy.refuse_puts_after("memory(PartitionKey", 1);
    let first = handler.invoke(opened()).await;
    proxy.accept_puts();
    let again = handler.invoke(opened()).await;

    let alerts: Vec<String> = subjects(&s.smtp)
        .into_iter()
        .filter(|subject| subject.contains("Access settings changed"))
        .collect();
    assert_eq!(
        alerts,
        [
            "Security alert: Access settings changed on vault kv-a: the vault is now open to the internet"
        ],
        "first: {}\nagain: {}\n{}",
        first.text,
        again.text,
        handler.output()
    );
}

#[tokio::test]
async fn an_assignment_on_a_vault_created_since_the_last_listing_lists_again_and_is_alerted() {
    let scope = vault_id("kv-new");
    let id = assignment_id(&scope, "a15");
    let s = setup(officer_at(&scope, &id));
    // The sweep lists the subscription: kv-a and kv-b.
    let handler = swept(&s).await;
    // Then kv-new is created, and a role is assigned on it at once.
    s.vault.set(json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}, {"name": "kv-new"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": officer_at(&scope, &id),
    }));
    let listings = || {
        s.vault
            .requests()
            .iter()
            .filter(|r| r.contains("/Microsoft.KeyVault/vaults?") && !r.contains("skipToken"))
            .count()
    };
    let listed_before = listings();
    let granted = handler.invoke(now(assignment_written(&id, "e-21"))).await;
    // A change on a vault that exists nowhere, made before that listing: no second listing.
    let elsewhere = assignment_id(&vault_id("kv-none"), "a16");
    let stray = handler.invoke(assignment_written(&elsewhere, "e-22")).await;

    assert_sent(&granted, &handler);
    assert_eq!(
        subjects(&s.smtp)
            .into_iter()
            .filter(|subject| subject.starts_with("Security alert"))
            .collect::<Vec<_>>(),
        [
            "Security alert: Key Vault Secrets Officer granted to User 6f1c1d8e-1111-4000-8000-000000000001 on vault kv-new"
        ]
    );
    assert_eq!(stray.status, 200, "{}", stray.text);
    assert_eq!(listings(), listed_before + 1, "{:#?}", s.vault.requests());
}

#[tokio::test]
async fn a_vault_created_since_the_last_listing_is_told_once_with_its_settings() {
    let s = setup(json!({}));
    let handler = swept(&s).await;
    let open = json!({"properties": {"publicNetworkAccess": "Enabled",
        "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices"}}});
    s.vault.set(json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}, {"name": "kv-new"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": {vault_id("kv-new"): open},
    }));
    let created = now(resource_event(
        "Write",
        "Microsoft.KeyVault/vaults/write",
        &vault_id("kv-new"),
        "e-24",
    ));

    let first = handler.invoke(created.clone()).await;
    let again = handler.invoke(created).await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(again.statuses(), ["duplicate"], "{}", again.text);
    let alerts: Vec<Received> = s
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject().starts_with("Security alert"))
        .collect();
    assert_eq!(alerts.len(), 1, "{:?}", subjects(&s.smtp));
    assert!(
        alerts[0].subject().contains("kv-new"),
        "{}",
        alerts[0].subject()
    );
    let text = alerts[0].text();
    for said in [
        "kv-notify had not seen this vault's settings before; they are now:",
        "public network access: Enabled",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
}

#[tokio::test]
async fn an_assignment_on_an_unlisted_vault_whose_subscription_cannot_be_listed_again_fails_for_redelivery()
 {
    let scope = vault_id("kv-new");
    let id = assignment_id(&scope, "a17");
    let s = setup(officer_at(&scope, &id));
    let handler = swept(&s).await;
    // Reader is taken away: the subscription cannot be listed again.
    s.vault.set(json!({
        "subscriptions": {SUB: "AuthorizationFailed"},
        "resources": officer_at(&scope, &id),
    }));
    let event = now(assignment_written(&id, "e-23"));

    let answer = handler.invoke(event).await;

    assert_eq!(answer.status, 500, "{}", answer.text);
    assert!(
        answer.text.contains("could not be listed again"),
        "{}",
        answer.text
    );
    assert!(
        s.smtp
            .messages()
            .iter()
            .all(|m| !m.subject().starts_with("Security alert"))
    );
}

#[tokio::test]
async fn a_thousand_unrelated_resource_events_make_no_request_and_no_send() {
    let s = setup(json!({}));
    let handler = Handler::start(&pairs(&s.settings)).await;
    let requests_before = s.vault.requests().len();
    let batch: Vec<Value> = (0..1000)
        .map(|n| {
            let (operation, resource) = match n % 4 {
                0 => ("Microsoft.Compute/virtualMachines/write", format!("/subscriptions/{SUB}/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/vm-{n}")),
                1 => ("Microsoft.Resources/deployments/write", format!("/subscriptions/{SUB}/resourceGroups/app/providers/Microsoft.Resources/deployments/d-{n}")),
                2 => ("Microsoft.Storage/storageAccounts/write", format!("/subscriptions/{SUB}/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/st{n}")),
                _ => ("Microsoft.KeyVault/vaults/accessPolicies/write", vault_id("kv-a") + "/accessPolicies/add"),
            };
            let action = if n % 5 == 0 { "Delete" } else { "Write" };
            resource_event(action, operation, &resource, &format!("u-{n}"))
        })
        .collect();

    let answer = handler.invoke(Value::Array(batch)).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.events().len(), 1000);
    assert!(
        answer
            .events()
            .iter()
            .all(|e| e["actions"].as_array().is_some_and(Vec::is_empty))
    );
    assert_eq!(
        s.vault.requests().len(),
        requests_before,
        "no Resource Manager request"
    );
    assert!(s.smtp.messages().is_empty());
}

#[tokio::test]
async fn a_deletion_after_a_write_names_the_role_seen_when_it_was_written() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a5");
    let s = setup(officer_at(&scope, &id));
    let handler = Handler::start(&pairs(&s.settings)).await;
    let written = handler.invoke(assignment_written(&id, "e-7")).await;
    assert_eq!(written.statuses(), ["sent"], "{}", written.text);
    // Deleted: Resource Manager answers 404 for it now.
    s.vault.set(json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
        "resources": {role_id(OFFICER): role("Key Vault Secrets Officer", &["Microsoft.KeyVault/vaults/secrets/*"], &[])},
    }));

    let deleted = handler.invoke(assignment_deleted(&id, "e-8")).await;

    assert_eq!(deleted.statuses(), ["sent"], "{}", deleted.text);
    assert_eq!(
        subjects(&s.smtp)[1],
        format!(
            "Security alert: Key Vault Secrets Officer removed from User {PRINCIPAL} on vault kv-a"
        )
    );
}

#[tokio::test]
async fn an_assignment_that_cannot_be_read_is_alerted_anyway_and_says_so() {
    let scope = vault_id("kv-b");
    let id = assignment_id(&scope, "a6");
    let s = setup(json!({ id.clone(): "AuthorizationFailed" }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let written = handler.invoke(assignment_written(&id, "e-9")).await;
    let unseen = assignment_id(&scope, "never-seen");
    let deleted = handler.invoke(assignment_deleted(&unseen, "e-10")).await;

    assert_eq!(written.statuses(), ["sent"], "{}", written.text);
    assert_eq!(deleted.statuses(), ["sent"], "{}", deleted.text);
    let messages = s.smtp.messages();
    assert_eq!(
        messages[0].subject(),
        "Security alert: A role was assigned on vault kv-b"
    );
    let text = messages[0].text();
    assert!(
        text.contains("Resource Manager did not show the assignment or its role"),
        "{text}"
    );
    assert!(text.contains("AuthorizationFailed"), "{text}");
    assert!(text.contains("treated as one that matters"), "{text}");
    assert_eq!(
        messages[1].subject(),
        "Security alert: A role assignment was removed on vault kv-b"
    );
    assert!(
        messages[1]
            .text()
            .contains("a deleted assignment cannot be read back"),
        "{}",
        messages[1].text()
    );
}

#[tokio::test]
async fn on_the_shared_ledger_an_instance_names_the_role_another_instance_saw_written() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a7");
    let s = setup(officer_at(&scope, &id));
    let azurite = Azurite::start();
    let settings = on_table(&s, &azurite.connection_string());
    let (first, second) = (
        Handler::start(&pairs(&settings)).await,
        Handler::start(&pairs(&settings)).await,
    );
    let written = first.invoke(assignment_written(&id, "e-11")).await;
    assert_sent(&written, &first);
    s.vault.set(json!({
        "subscriptions": {SUB: [{"name": "kv-a"}, {"name": "kv-b"}]},
        "vaults": {"kv-a": {}, "kv-b": {}},
    }));

    let deleted = second.invoke(assignment_deleted(&id, "e-12")).await;

    assert_sent(&deleted, &second);
    assert_eq!(
        subjects(&s.smtp),
        [
            format!(
                "Security alert: Key Vault Secrets Officer granted to User {PRINCIPAL} on vault kv-a"
            ),
            format!(
                "Security alert: Key Vault Secrets Officer removed from User {PRINCIPAL} on vault kv-a"
            ),
        ]
    );
}

#[tokio::test]
async fn with_vaults_named_by_resource_id_alone_an_assignment_on_their_resource_group_alerts() {
    let scope = format!("/subscriptions/{SUB}/resourceGroups/rg");
    let id = assignment_id(&scope, "a8");
    let s = setup(officer_at(&scope, &id));
    // VAULTS as the template sets it, and no SUBSCRIPTIONS: the identity holds Key Vault
    // Reader on each vault, which reads role assignments there.
    let mut settings = s.settings.clone();
    settings.retain(|(name, _)| *name != "SUBSCRIPTIONS");
    set(&mut settings, "VAULTS", &vault_id("kv-a"));
    let handler = Handler::start(&pairs(&settings)).await;
    let elsewhere = assignment_id(&format!("/subscriptions/{SUB}/resourceGroups/other"), "a9");

    let answer = handler
        .invoke(json!([
            assignment_written(&id, "e-13"),
            assignment_written(&elsewhere, "e-14"),
        ]))
        .await;

    assert_eq!(answer.status, 200, "{}\n{}", answer.text, handler.output());
    assert_eq!(
        subjects(&s.smtp),
        [format!(
            "Security alert: Key Vault Secrets Officer granted to User {PRINCIPAL} on resource group rg (above vault kv-a)"
        )]
    );
    assert!(
        !reads(&s.vault)
            .iter()
            .any(|r| r.contains("/resourceGroups/other/")),
        "{:?}",
        reads(&s.vault)
    );
}

#[tokio::test]
async fn a_teams_channel_gets_one_card_with_role_principal_and_caller_as_facts() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a10");
    let s = setup(officer_at(&scope, &id));
    let teams = WebhookServer::start();
    let rules = s.dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[channels.secops-teams]\nwebhook = \"{}\"\nformat = \"teams\"\n\n\
             [[rules]]\nevents = [\"VaultRoleAssignmentChanged\", \"VaultSettingsChanged\"]\n\
             notify = [\"security\", \"secops-teams\"]\n",
            teams.url("/teams")
        ),
    )
    .expect("write rules");
    let mut settings = s.settings.clone();
    set(&mut settings, "RULES_FILE", &rules.to_string_lossy());
    let handler = Handler::start(&pairs(&settings)).await;
    let event = assignment_written(&id, "e-15");

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(first.status, 200, "{}\n{}", first.text, handler.output());
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(s.smtp.messages().len(), 1);
    let posts = teams.received();
    assert_eq!(posts.len(), 1, "one card, not one per delivery");
    let card = &posts[0].1["attachments"][0]["content"];
    let facts: Vec<(String, String)> = card["body"][3]["facts"]
        .as_array()
        .expect("a FactSet")
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap_or_default().to_owned(),
                f["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (title, value) in [
        ("Role", "Key Vault Secrets Officer (assigned)".to_owned()),
        ("Principal", format!("User {PRINCIPAL}")),
        (
            "By",
            "Ada Lovelace (ada@contoso.com), from 203.0.113.4".to_owned(),
        ),
        ("Scope", scope.clone()),
    ] {
        assert!(
            facts.contains(&(title.to_owned(), value.clone())),
            "{title} = {value}: {facts:?}"
        );
    }
    assert_eq!(
        card["actions"][0]["url"],
        json!(format!("https://portal.azure.com/#@/resource{scope}/users"))
    );
}

#[tokio::test]
async fn with_graph_readable_the_principal_is_named_and_without_it_named_by_id() {
    let scope = vault_id("kv-a");
    let (named, unknown) = (assignment_id(&scope, "a11"), assignment_id(&scope, "a12"));
    let stranger = "6f1c1d8e-2222-4000-8000-000000000002";
    let mut by_stranger = assignment(&scope, OFFICER);
    by_stranger["properties"]["principalId"] = json!(stranger);
    let s = setup(json!({
        named.clone(): assignment(&scope, OFFICER),
        unknown.clone(): by_stranger,
        role_id(OFFICER): role("Key Vault Secrets Officer", &["Microsoft.KeyVault/vaults/secrets/*"], &[]),
    }));
    let graph = FakeGraph::start();
    let handler = Handler::start(&pairs(&with_graph(&s, &graph))).await;
    let first = handler.invoke(assignment_written(&named, "e-16")).await;
    let second = handler.invoke(assignment_written(&unknown, "e-17")).await;

    assert_sent(&first, &handler);
    assert_eq!(second.statuses(), ["sent"], "{}", second.text);
    assert_eq!(
        subjects(&s.smtp),
        [
            "Security alert: Key Vault Secrets Officer granted to Grace Guest (grace_fabrikam.com#EXT#@contoso.onmicrosoft.com) on vault kv-a".to_owned(),
            format!(
                "Security alert: Key Vault Secrets Officer granted to User {stranger} on vault kv-a"
            ),
        ]
    );
    let text = s.smtp.messages()[0].text();
    assert!(
        text.contains(&format!(
            "Grace Guest (grace_fabrikam.com#EXT#@contoso.onmicrosoft.com) (User {PRINCIPAL})"
        )),
        "the principal's id stays in the facts: {text}"
    );
}

#[tokio::test]
async fn the_access_alerts_and_the_sweep_share_one_token_for_graph_and_one_for_resource_manager() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a14");
    let s = setup(officer_at(&scope, &id));
    let graph = FakeGraph::start();
    let handler = Handler::start(&pairs(&with_graph(&s, &graph))).await;

    let alert = handler.invoke(assignment_written(&id, "e-19")).await;
    let timer = handler.timer().await;

    assert_eq!(alert.statuses(), ["sent"], "{}", alert.text);
    assert!(
        subjects(&s.smtp)[0].contains("Grace Guest"),
        "the alert named the principal through Graph: {:?}",
        subjects(&s.smtp)
    );
    assert_eq!(timer.status, 200, "{}", timer.text);
    let lines = graph.request_lines();
    assert!(
        lines.iter().any(|line| line.contains("/v1.0/applications")),
        "the sweep read the applications: {lines:?}"
    );
    let origin = reqwest::Url::parse(&graph.url())
        .expect("Graph's URL")
        .origin()
        .ascii_serialization();
    assert_eq!(
        s.identity.tokens_for(&origin),
        1,
        "one token for Graph, kept by one client for both"
    );
    assert_eq!(
        s.identity.tokens_for(&s.vault.arm_endpoint()),
        1,
        "one token for Resource Manager, which listed the subscription and read the assignment"
    );
}

#[tokio::test]
async fn a_role_assignment_through_the_storage_queue_is_alerted_as_when_pushed() {
    let scope = vault_id("kv-a");
    let id = assignment_id(&scope, "a13");
    let s = setup(officer_at(&scope, &id));
    let queues = AzuriteQueues::start();
    let mut settings = s.settings.clone();
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &queues.connection_string(),
    );
    set(&mut settings, "LEDGER", "file");
    let handler = Handler::start(&pairs(&settings)).await;
    let listener = QueueHost::start(
        &queues,
        &handler.url(""),
        &app_root().join("host.json"),
        1800,
    );
    let event = assignment_written(&id, "e-18");

    queues.put("kv-notify-events", &event.to_string());
    let handled = wait_until(std::time::Duration::from_secs(30), || {
        listener.invocations().len() == 1
    });

    assert!(handled, "{}", handler.output());
    assert_eq!(
        subjects(&s.smtp),
        [format!(
            "Security alert: Key Vault Secrets Officer granted to User {PRINCIPAL} on vault kv-a"
        )]
    );
    assert!(queues.peek("kv-notify-events").is_empty());
}

#[tokio::test]
async fn with_resource_manager_unreachable_an_assignment_is_alerted_anyway_without_blaming_roles() {
    let s = setup(json!({}));
    // A port nothing listens on: every request to Resource Manager is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("its address").port();
    drop(closed);
    let mut settings = s.settings.clone();
    settings.retain(|(name, _)| *name != "SUBSCRIPTIONS");
    set(&mut settings, "VAULTS", &vault_id("kv-a"));
    set(
        &mut settings,
        "ARM_ENDPOINT",
        &format!("https://management.localhost:{port}"),
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let id = assignment_id(&vault_id("kv-a"), "a12");

    let answer = handler.invoke(assignment_written(&id, "e-30")).await;

    assert_sent(&answer, &handler);
    assert_eq!(
        subjects(&s.smtp),
        ["Security alert: A role was assigned on vault kv-a"]
    );
    let text = s.smtp.messages()[0].text();
    assert!(text.contains("could not be reached"), "{text}");
    assert!(text.contains("treated as one that matters"), "{text}");
    // Reader is not what is missing when nothing answers.
    assert!(!text.contains("grant the app's identity Reader"), "{text}");
}
