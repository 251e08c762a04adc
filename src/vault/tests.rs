//! Unit tests of the vault names, links and list items.

use super::client::{Item, Page, Policy, error_of};
use super::*;
use reqwest::Url;
#[test]
fn a_vault_is_named_or_given_by_its_uri() {
    let named = VaultRef::parse(" Contoso-KV ", "vault.azure.net").expect("a name");
    assert_eq!(named.name, "contoso-kv");
    assert_eq!(named.url.as_str(), "https://contoso-kv.vault.azure.net/");
    let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Kv-A";
    let by_id = VaultRef::parse(id, "vault.azure.net").expect("a resource id");
    assert_eq!(by_id.name, "kv-a");
    assert_eq!(by_id.url.as_str(), "https://kv-a.vault.azure.net/");
    assert_eq!(by_id.id.as_deref(), Some(id));
    let china = VaultRef::parse("https://Ops.vault.azure.cn/", "vault.azure.cn").expect("a URI");
    assert_eq!(china.name, "ops");
    assert_eq!(
        china.endpoint(&["secrets"]).as_str(),
        "https://ops.vault.azure.cn/secrets?api-version=7.5"
    );
    for bad in [
        "kv",
        "9lives",
        "has space",
        "http://kv.vault.azure.net",
        "https://kv.vault.azure.net/secrets",
        "https://127.0.0.1:8443",
        "https://",
        "https://kv.attacker.example.net",
        "https://kv.vault.azure.net.attacker.example",
        "https://vault.azure.net",
        "https://kv.vault.azure.cn",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-a/secrets/x",
        "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-a",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/a.b",
    ] {
        assert!(
            VaultRef::parse(bad, "vault.azure.net").is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn a_bare_name_lies_in_the_cloud_of_key_vault_resource() {
    let domain = vault_domain("https://vault.usgovcloudapi.net").expect("a resource");
    let vault = VaultRef::parse("ops-kv", &domain).expect("a name");
    assert_eq!(
        vault.url.as_str(),
        "https://ops-kv.vault.usgovcloudapi.net/"
    );
    assert!(
        vault_domain("http://vault.azure.net").is_err(),
        "https only"
    );
    assert!(vault_domain("vault").is_err());
}

#[test]
fn a_next_link_is_followed_only_on_the_vault_itself() {
    let vault = VaultRef::parse("https://kv.vault.azure.net", "vault.azure.net").expect("a URI");
    let on = |u: &str| vault.owns(&Url::parse(u).expect("url"));
    assert!(on("https://kv.vault.azure.net/secrets?$skiptoken=x"));
    assert!(!on("https://evil.example/secrets?$skiptoken=x"));
    assert!(!on("http://kv.vault.azure.net/secrets"));
    assert!(!on("https://kv.vault.azure.net:8443/secrets"));
}

#[test]
fn list_items_become_objects_named_by_their_id() {
    let page: Page<Item> = serde_json::from_str(
        r#"{"value":[
            {"id":"https://kv.vault.azure.net/secrets/db-password","attributes":{"enabled":false,"exp":1767225600},"tags":{"owner":"a@b.c"}},
            {"kid":"https://kv.vault.azure.net/keys/signing","attributes":{},"managed":true},
            {"attributes":{}}
        ],"nextLink":null}"#,
    )
    .expect("a page");
    let mut items = page.value.into_iter();
    let secret = items.next().and_then(|i| i.into_object(ObjectKind::Secret));
    let secret = secret.expect("a secret");
    assert_eq!(secret.name, "db-password");
    assert!(!secret.enabled);
    assert_eq!(secret.expires.map(|t| t.timestamp()), Some(1_767_225_600));
    assert_eq!(secret.tags.get("owner").map(String::as_str), Some("a@b.c"));
    let key = items.next().and_then(|i| i.into_object(ObjectKind::Key));
    assert!(key.is_some_and(|k| k.managed && k.enabled && k.name == "signing"));
    assert!(
        items
            .next()
            .and_then(|i| i.into_object(ObjectKind::Key))
            .is_none()
    );
}

#[test]
fn an_id_names_its_object_and_version() {
    let parts = |id: &str| super::id_parts(id, ObjectKind::Secret);
    let named =
        |name: &str, version: Option<&str>| Some((name.to_owned(), version.map(str::to_owned)));
    let vault = "https://kv.vault.azure.net";
    assert_eq!(parts(&format!("{vault}/secrets/db")), named("db", None));
    assert_eq!(parts(&format!("{vault}/secrets/db/")), named("db", None));
    assert_eq!(
        parts(&format!("{vault}/secrets/db/0a1b")),
        named("db", Some("0a1b"))
    );
    assert_eq!(
        parts(&format!("{vault}:443/Secrets/db?x=1#y")),
        named("db", None)
    );
    assert_eq!(
        parts(&format!("{vault}/secrets/a%20b/v")),
        named("a b", Some("v"))
    );
    assert_eq!(parts(&format!("{vault}/keys/db")), None);
    assert_eq!(parts(&format!("{vault}/secrets/")), None);
    assert_eq!(parts("secrets/db"), None);
    assert_eq!(parts(vault), None);
}

#[test]
fn the_inner_error_code_names_the_cause() {
    let body = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized","innererror":{"code":"ForbiddenByRbac"}}}"#;
    assert_eq!(
        error_of(body),
        (
            Some("ForbiddenByRbac".to_owned()),
            "Caller is not authorized".to_owned()
        )
    );
    assert_eq!(error_of(b"<html>").0, None);
}

#[test]
fn a_certificate_renews_itself_with_an_auto_renew_action_and_an_issuer_that_can() {
    let policy = |action: &str, issuer: &str| -> Policy {
        serde_json::from_value(serde_json::json!({
            "issuer": {"name": issuer},
            "lifetime_actions": [{"trigger": {"days_before_expiry": 30}, "action": {"action_type": action}}],
        }))
        .expect("a policy")
    };
    assert!(policy("AutoRenew", "Self").renews());
    assert!(policy("autorenew", "DigiCert").renews());
    assert!(!policy("EmailContacts", "Self").renews());
    assert!(
        !policy("AutoRenew", "Unknown").renews(),
        "a CSR signed by hand cannot renew"
    );
    let bare: Policy = serde_json::from_str("{}").expect("an empty policy");
    assert!(!bare.renews());
}

#[tokio::test]
async fn lookups_get_what_the_lists_being_read_leave_of_the_vault_budget() {
    let vault = VaultRef::parse("kv-a", "vault.azure.net").expect("a vault");
    let session = Session::new(vault);
    assert_eq!(
        session.lookups.available_permits(),
        REQUESTS_PER_VAULT - LISTS
    );
    let during = session
        .looking_up(async { session.lookups.available_permits() })
        .await;
    assert_eq!(
        during,
        REQUESTS_PER_VAULT - LISTS - 1,
        "a lookup holds a slot"
    );
    assert_eq!(
        session.lookups.available_permits(),
        REQUESTS_PER_VAULT - LISTS
    );
    for _ in 0..LISTS {
        session.list_done();
    }
    assert_eq!(session.lookups.available_permits(), REQUESTS_PER_VAULT);
    assert_eq!(session.permits.available_permits(), REQUESTS_PER_VAULT);
}

#[test]
fn a_date_off_the_calendar_is_dropped_and_said_not_taken_for_an_expiry() {
    let page: Page<Item> = serde_json::from_str(
        r#"{"value":[
            {"id":"https://kv.vault.azure.net/secrets/odd","attributes":{"exp":-8300000000000,"nbf":99999999999999}},
            {"id":"https://kv.vault.azure.net/secrets/fine","attributes":{"exp":1767225600}}
        ]}"#,
    )
    .expect("a page");
    let objects: Vec<VaultObject> = page
        .value
        .into_iter()
        .filter_map(|i| i.into_object(ObjectKind::Secret))
        .collect();
    assert_eq!((objects[0].expires, objects[0].not_before), (None, None));
    let said = objects[0].bad_date.as_deref().expect("the bad date said");
    assert!(
        said.contains("-8300000000000") && said.contains("1990"),
        "{said}"
    );
    assert_eq!(objects[1].bad_date, None);
    assert!(objects[1].expires.is_some());
}
