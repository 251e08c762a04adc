//! Events kv-notify makes itself: examples for previews and checks, and its own alerts (a
//! vault it cannot see, the health notice).

use super::{AccessChange, Assignment, Diagnosis, EventKey, EventType, KeyVaultEvent};
use chrono::{DateTime, Utc};

impl KeyVaultEvent {
    /// A realistic event of `event_type` (in vault `contoso-kv`, expiring in 29 days from
    /// `now`), for checking templates and rendering previews.
    pub fn example(event_type: EventType, now: DateTime<Utc>) -> Self {
        let kind = event_type.object_kind();
        let object = kind.map(|_| "db-password".to_owned());
        let id = "00000000-0000-4000-8000-000000000000";
        Self {
            vault: Some("contoso-kv".to_owned()),
            object_type: kind.map(|k| k.as_str().to_owned()),
            object: object.or_else(|| Some("contoso-kv".to_owned())),
            version: kind.map(|_| "5b2f0c1e8d9a4f7b9c3e2d1a0b9c8d7e".to_owned()),
            topic: Some(
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv"
                    .to_owned(),
            ),
            not_before: Some(now - chrono::TimeDelta::days(335)),
            access: example_access(event_type),
            expires: match event_type {
                EventType::VaultAccessPolicyChanged
                | EventType::VaultRoleAssignmentChanged
                | EventType::VaultSettingsChanged => None,
                EventType::Expired(_) => Some(now - chrono::TimeDelta::hours(2)),
                _ => Some(now + chrono::TimeDelta::days(29) + chrono::TimeDelta::hours(3)),
            },
            event_time: Some(now),
            ..Self::new(id.to_owned(), EventKey::Id(id.to_owned()), event_type)
        }
    }

    /// One of kv-notify's own events (a blind spot, the health notice), made at `now`: known
    /// to the ledger by `key`, saying what is wrong and what to do.
    pub fn own(
        key: String,
        event_type: EventType,
        vault: Option<String>,
        diagnosis: Diagnosis,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            vault,
            event_time: Some(now),
            diagnosis: Some(diagnosis),
            ..Self::new(String::new(), EventKey::Id(key), event_type)
        }
    }
}

/// A realistic access change for the types that carry one.
fn example_access(event_type: EventType) -> Option<AccessChange> {
    let vault = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv";
    let change = AccessChange {
        caller: "Ada Lovelace (ada@contoso.com)".to_owned(),
        address: Some("203.0.113.4".to_owned()),
        scope: vault.to_owned(),
        vault_id: Some(vault.to_owned()),
        ..AccessChange::default()
    };
    match event_type {
        EventType::VaultRoleAssignmentChanged => Some(AccessChange {
            operation: "Microsoft.Authorization/roleAssignments/write".to_owned(),
            assignment: Some(Assignment {
                role: Some("Key Vault Secrets Officer".to_owned()),
                principal_id: Some("6f1c1d8e-0000-4000-8000-000000000001".to_owned()),
                principal_type: Some("User".to_owned()),
                grants: Some("Microsoft.KeyVault/vaults/secrets/* (data)".to_owned()),
                ..Assignment::default()
            }),
            ..change
        }),
        EventType::VaultSettingsChanged => Some(AccessChange {
            operation: "Microsoft.KeyVault/vaults/write".to_owned(),
            changes: vec!["public network access: Disabled → Enabled".to_owned()],
            ..change
        }),
        _ => None,
    }
}
