//! The ten Key Vault event types, the sweep's reminders, and the kinds of object they concern.

use std::fmt;

/// Prefix shared by every Key Vault event type name.
const KEY_VAULT_PREFIX: &str = "Microsoft.KeyVault.";

/// The kind of vault object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A secret.
    Secret,
    /// A cryptographic key.
    Key,
    /// A certificate.
    Certificate,
}

impl ObjectKind {
    /// All object kinds, in display order.
    pub const ALL: [ObjectKind; 3] = [Self::Secret, Self::Key, Self::Certificate];

    /// The name Azure uses, e.g. `Secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::Key => "Key",
            Self::Certificate => "Certificate",
        }
    }

    /// The path segment of this kind in vault URLs and portal blades.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::Key => "keys",
            Self::Certificate => "certificates",
        }
    }
}

/// One of the ten Key Vault event types, or a reminder of the expiry sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `{Object}NearExpiry`: the object version expires soon (30 days by default).
    NearExpiry(ObjectKind),
    /// `{Object}Expired`: the object version has expired.
    Expired(ObjectKind),
    /// `{Object}NewVersionCreated`: a new version exists (a rotation happened).
    NewVersionCreated(ObjectKind),
    /// `VaultAccessPolicyChanged`: who may do what in the vault changed.
    VaultAccessPolicyChanged,
    /// `{Object}Reminder`: a step of the reminder ladder, found by the expiry sweep. Not a
    /// type Key Vault sends: an event that claims it is not taken for one.
    Reminder(ObjectKind),
    /// `VaultUnreadable`: the expiry sweep cannot read a vault (a missing role, a firewall,
    /// a vault that is gone). Not a type Key Vault sends either.
    VaultUnreadable,
    /// `HealthNotice`: the daily notice of what kv-notify met that needs a person (mail
    /// refused, webhooks failing, vaults not read). Not a type Key Vault sends either.
    HealthNotice,
    /// `AppCredentialReminder`: a step of the reminder ladder of an Entra ID application's
    /// client secret or certificate, found by the sweep (`ENTRA_CREDENTIALS`).
    AppCredentialReminder,
    /// `EntraUnreadable`: the sweep cannot read Entra ID's applications for a reason a person
    /// must fix (the identity lacks `Application.Read.All`). Not a type Key Vault sends either.
    EntraUnreadable,
    /// `VaultRoleAssignmentChanged`: a role that reaches a watched vault's secrets or access
    /// was assigned or removed, at the vault or above it (a Resource Manager event).
    VaultRoleAssignmentChanged,
    /// `VaultSettingsChanged`: a setting that decides who can reach a watched vault changed
    /// (its network, private endpoints, permission model), or the vault was deleted (a
    /// Resource Manager event).
    VaultSettingsChanged,
}

impl EventType {
    /// The ten types Key Vault sends, in display order.
    pub fn key_vault_types() -> impl Iterator<Item = EventType> {
        ObjectKind::ALL
            .into_iter()
            .flat_map(|kind| {
                [
                    Self::NearExpiry(kind),
                    Self::Expired(kind),
                    Self::NewVersionCreated(kind),
                ]
            })
            .chain([Self::VaultAccessPolicyChanged])
    }

    /// Every type rules can route: Key Vault's ten, then the sweep's reminders, its
    /// unreadable vaults and the health notice.
    pub fn all() -> impl Iterator<Item = EventType> {
        Self::key_vault_types()
            .chain(ObjectKind::ALL.map(Self::Reminder))
            .chain([
                Self::VaultUnreadable,
                Self::HealthNotice,
                Self::AppCredentialReminder,
                Self::EntraUnreadable,
                Self::VaultRoleAssignmentChanged,
                Self::VaultSettingsChanged,
            ])
    }

    /// Parses a short (`SecretNearExpiry`) or full (`Microsoft.KeyVault.SecretNearExpiry`)
    /// name, ignoring ASCII case. Returns `None` for names Key Vault does not define.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        let short = without_key_vault_prefix(name).unwrap_or(name);
        Self::key_vault_types().find(|t| t.short_name().eq_ignore_ascii_case(short))
    }

    /// The short name, e.g. `SecretNearExpiry`.
    pub fn short_name(self) -> &'static str {
        use ObjectKind::{Certificate, Key, Secret};
        match self {
            Self::NearExpiry(Secret) => "SecretNearExpiry",
            Self::NearExpiry(Key) => "KeyNearExpiry",
            Self::NearExpiry(Certificate) => "CertificateNearExpiry",
            Self::Expired(Secret) => "SecretExpired",
            Self::Expired(Key) => "KeyExpired",
            Self::Expired(Certificate) => "CertificateExpired",
            Self::NewVersionCreated(Secret) => "SecretNewVersionCreated",
            Self::NewVersionCreated(Key) => "KeyNewVersionCreated",
            Self::NewVersionCreated(Certificate) => "CertificateNewVersionCreated",
            Self::VaultAccessPolicyChanged => "VaultAccessPolicyChanged",
            Self::Reminder(Secret) => "SecretReminder",
            Self::Reminder(Key) => "KeyReminder",
            Self::Reminder(Certificate) => "CertificateReminder",
            Self::VaultUnreadable => "VaultUnreadable",
            Self::HealthNotice => "HealthNotice",
            Self::AppCredentialReminder => "AppCredentialReminder",
            Self::EntraUnreadable => "EntraUnreadable",
            Self::VaultRoleAssignmentChanged => "VaultRoleAssignmentChanged",
            Self::VaultSettingsChanged => "VaultSettingsChanged",
        }
    }

    /// The object kind the type name implies, if any.
    pub fn object_kind(self) -> Option<ObjectKind> {
        match self {
            Self::NearExpiry(kind)
            | Self::Expired(kind)
            | Self::NewVersionCreated(kind)
            | Self::Reminder(kind) => Some(kind),
            Self::VaultAccessPolicyChanged
            | Self::VaultUnreadable
            | Self::HealthNotice
            | Self::AppCredentialReminder
            | Self::EntraUnreadable
            | Self::VaultRoleAssignmentChanged
            | Self::VaultSettingsChanged => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// The part after `Microsoft.KeyVault.` (in any case), when `name` starts with it.
pub fn without_key_vault_prefix(name: &str) -> Option<&str> {
    name.get(..KEY_VAULT_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(KEY_VAULT_PREFIX))
        .map(|_| &name[KEY_VAULT_PREFIX.len()..])
}
