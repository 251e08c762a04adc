//! Builders for Key Vault events in both schemas.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

pub const TOPIC: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/prod-kv";

/// A unique event id.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), n)
}

/// An Event Grid schema event of `short_type` for `object` in `prod-kv`, expiring in
/// `expires_in_days` (plus twelve hours, so whole-day counts are unambiguous).
pub fn event_grid(short_type: &str, object: &str, expires_in_days: Option<i64>) -> Value {
    let kind = object_kind(short_type);
    let exp = expires_in_days
        .map(|d| (Utc::now() + TimeDelta::days(d) + TimeDelta::hours(12)).timestamp());
    json!({
        "id": new_id(),
        "topic": TOPIC,
        "subject": object,
        "eventType": format!("Microsoft.KeyVault.{short_type}"),
        "data": {
            "Id": format!("https://prod-kv.vault.azure.net/{}s/{object}/0123456789abcdef", kind.to_lowercase()),
            "VaultName": "prod-kv",
            "ObjectType": kind,
            "ObjectName": object,
            "Version": "0123456789abcdef",
            "NBF": 1_700_000_000,
            "EXP": exp,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
        "eventTime": Utc::now().to_rfc3339(),
    })
}

/// The same event in the CloudEvents 1.0 schema.
pub fn cloud_event(short_type: &str, object: &str, expires_in_days: Option<i64>) -> Value {
    let eg = event_grid(short_type, object, expires_in_days);
    json!({
        "specversion": "1.0",
        "id": eg["id"],
        "type": eg["eventType"],
        "source": TOPIC,
        "subject": object,
        "time": eg["eventTime"],
        "datacontenttype": "application/json",
        "data": eg["data"],
    })
}

fn object_kind(short_type: &str) -> &'static str {
    ["Secret", "Key", "Certificate"]
        .into_iter()
        .find(|k| short_type.starts_with(k))
        .unwrap_or("Vault")
}

/// The ten Key Vault event types.
pub const ALL_TYPES: [&str; 10] = [
    "SecretNearExpiry",
    "SecretExpired",
    "SecretNewVersionCreated",
    "KeyNearExpiry",
    "KeyExpired",
    "KeyNewVersionCreated",
    "CertificateNearExpiry",
    "CertificateExpired",
    "CertificateNewVersionCreated",
    "VaultAccessPolicyChanged",
];

/// Settings that send mail to `smtp` with known owners and security contacts.
pub fn mail_settings(smtp_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", smtp_url.to_owned()),
        ("MAIL_FROM", "Key Vault <kv-notify@contoso.com>".to_owned()),
        (
            "OWNER_EMAILS",
            "owner1@contoso.com, owner2@contoso.com".to_owned(),
        ),
        ("SECURITY_EMAILS", "secops@contoso.com".to_owned()),
        ("SMTP_TIMEOUT_SECS", "3".to_owned()),
    ]
}

/// Sets one setting, replacing any earlier value.
pub fn set(settings: &mut Vec<(&'static str, String)>, name: &'static str, value: &str) {
    settings.retain(|(k, _)| *k != name);
    settings.push((name, value.to_owned()));
}

/// [`mail_settings`] with the ledger at `ledger` (a file the test looks at or reuses).
pub fn mail_settings_with_ledger(
    smtp_url: &str,
    ledger: &std::path::Path,
) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings(smtp_url);
    let path = ledger.to_str().expect("a UTF-8 path");
    set(&mut settings, "LEDGER_PATH", path);
    settings
}

/// [`mail_settings`] with the shared ledger in `azurite`'s table, as every instance of a
/// scaled-out app has it.
pub fn mail_settings_on_table(
    smtp_url: &str,
    azurite: &super::Azurite,
) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings(smtp_url);
    set(&mut settings, "LEDGER", "table");
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &azurite.connection_string(),
    );
    settings
}

/// Borrows owned settings as the `&[(&str, &str)]` the host takes.
pub fn pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
