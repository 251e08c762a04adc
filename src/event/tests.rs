//! Reading events in either schema, with every quirk Key Vault is known to send.

use super::*;
use serde_json::{Value, json};

fn key_vault(raw: Value) -> KeyVaultEvent {
    match parse(&raw) {
        Ok(Event::KeyVault(event)) => *event,
        other => panic!("expected a Key Vault event, got {other:?}"),
    }
}

#[test]
fn every_type_parses_from_short_and_full_names() {
    for t in EventType::key_vault_types() {
        assert_eq!(EventType::from_name(t.short_name()), Some(t));
        let full = format!("Microsoft.KeyVault.{t}");
        assert_eq!(EventType::from_name(&full), Some(t));
    }
    assert_eq!(EventType::key_vault_types().count(), 10);
    // The sweep's reminders (of vault objects and of application credentials), unreadable
    // vaults or applications and the health notice are routable, but no event can claim to be
    // one.
    assert_eq!(EventType::all().count(), 19);
    assert_eq!(EventType::from_name("EntraUnreadable"), None);
    assert_eq!(EventType::from_name("SecretReminder"), None);
    assert_eq!(EventType::from_name("AppCredentialReminder"), None);
    assert_eq!(EventType::from_name("VaultUnreadable"), None);
    assert_eq!(EventType::from_name("HealthNotice"), None);
    assert_eq!(
        EventType::from_name("Microsoft.KeyVault.CertificateReminder"),
        None
    );
}

#[test]
fn numeric_strings_null_and_absent_dates_are_accepted() {
    let event = key_vault(json!({
        "id": "1", "eventType": "Microsoft.KeyVault.SecretNearExpiry",
        "data": {"VaultName": "v", "ObjectName": "s", "NBF": "1559081980", "EXP": null}
    }));
    assert_eq!(event.not_before.map(|t| t.timestamp()), Some(1_559_081_980));
    assert_eq!(event.expires, None);
    assert!(event.warnings.is_empty());
}

#[test]
fn keys_match_case_insensitively_and_are_trimmed() {
    let event = key_vault(json!({
        "id": "1", "eventType": "Microsoft.KeyVault.KeyExpired",
        "data": {"vaultName": "v", "ObjectName ": " k ", "Version": " ee059b ", "exp": 1690563970}
    }));
    assert_eq!(event.object.as_deref(), Some("k"));
    assert_eq!(event.version.as_deref(), Some("ee059b"));
    assert_eq!(event.vault.as_deref(), Some("v"));
    assert_eq!(event.expires.map(|t| t.timestamp()), Some(1_690_563_970));
}

#[test]
fn an_exact_key_wins_over_one_in_another_case_wherever_it_comes() {
    for body in [
        r#"{"id": "1", "eventType": "Microsoft.KeyVault.KeyExpired", "data": {"vaultname": "loose", "VaultName": "exact"}}"#,
        r#"{"id": "1", "eventType": "Microsoft.KeyVault.KeyExpired", "data": {"VaultName": "exact", " vaultname ": "loose"}}"#,
    ] {
        let value: Value = serde_json::from_str(body).expect("the test body is JSON");
        assert_eq!(key_vault(value).vault.as_deref(), Some("exact"), "{body}");
    }
}

#[test]
fn cloud_events_use_type_source_and_time() {
    let event = key_vault(json!({
        "specversion": "1.0", "id": "2", "type": "Microsoft.KeyVault.CertificateExpired",
        "source": "/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/kv1",
        "subject": "cert1", "time": "2024-01-02T03:04:05Z", "data": {}
    }));
    assert_eq!(event.vault.as_deref(), Some("kv1"));
    assert_eq!(event.object.as_deref(), Some("cert1"));
    assert_eq!(event.object_type.as_deref(), Some("Certificate"));
    assert!(event.event_time.is_some());
}

#[test]
fn names_come_from_the_object_url_when_fields_are_missing() {
    let event = key_vault(json!({
        "id": "3", "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "data": {"Id": "https://kv2.vault.azure.net/secrets/s1/abc"}
    }));
    assert_eq!(event.vault.as_deref(), Some("kv2"));
    assert_eq!(event.object.as_deref(), Some("s1"));
    assert_eq!(event.version.as_deref(), Some("abc"));
}

#[test]
fn unusable_dates_are_dropped_with_a_warning() {
    let event = key_vault(json!({
        "id": "4", "eventType": "Microsoft.KeyVault.SecretNearExpiry",
        "data": {"EXP": "soon", "NBF": {"x": 1}}
    }));
    assert_eq!(event.expires, None);
    assert_eq!(event.warnings.len(), 2);
}

#[test]
fn unknown_and_foreign_types_are_other_events() {
    let unknown = parse(&json!({"id": "5", "eventType": "Microsoft.KeyVault.VaultDeleted"}));
    assert!(matches!(unknown, Ok(Event::Other { .. })));
    let foreign = parse(&json!({"id": "6", "eventType": "Microsoft.Storage.BlobCreated"}));
    assert!(matches!(foreign, Ok(Event::Other { .. })));
}

#[test]
fn a_key_vault_event_without_a_data_object_is_an_error() {
    let err = parse(&json!({"id": "7", "eventType": "Microsoft.KeyVault.KeyExpired", "data": "x"}));
    assert!(matches!(
        err,
        Err(EventError::BadData {
            found: "a string",
            ..
        })
    ));
    assert!(matches!(
        parse(&json!([1])),
        Err(EventError::NotAnObject(_))
    ));
}

#[test]
fn events_without_a_usable_id_are_told_apart_by_type_vault_object_version_and_time() {
    let event = |id: Value, change: (&str, &str)| {
        let mut raw = json!({
            "id": id, "eventType": "Microsoft.KeyVault.SecretNearExpiry",
            "eventTime": "2026-11-21T08:00:00Z",
            "data": {"VaultName": "v", "ObjectName": "s", "Version": "1"}
        });
        let (path, value) = change;
        match path {
            "" => {}
            "eventType" | "eventTime" => raw[path] = json!(value),
            field => raw["data"][field] = json!(value),
        }
        key_vault(raw).key
    };
    for id in [Value::Null, json!(""), json!({"not": "an id"})] {
        let base = event(id.clone(), ("", ""));
        assert!(matches!(base, EventKey::Content(_)), "{base:?}");
        assert_eq!(
            event(id.clone(), ("", "")),
            base,
            "the same content, the same key"
        );
        for change in [
            ("eventType", "Microsoft.KeyVault.SecretExpired"),
            ("VaultName", "w"),
            ("ObjectName", "t"),
            ("Version", "2"),
            ("eventTime", "2026-11-22T08:00:00Z"),
        ] {
            assert_ne!(event(id.clone(), change), base, "{change:?}");
        }
    }
    assert_eq!(event(json!("e1"), ("", "")), EventKey::Id("e1".into()));
}
