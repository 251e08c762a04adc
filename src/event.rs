//! The Key Vault event model, and the one place where raw JSON events become it.
//!
//! Azure delivers Key Vault events in two schemas (Event Grid and CloudEvents 1.0) and with
//! payload quirks seen in the wild: `NBF`/`EXP` as numbers, numeric strings, `null` or absent;
//! PascalCase or camelCase keys; keys and values with stray spaces. A [`RawEvent`] is read in one
//! pass from request bytes or a parsed value, keeping only the fields used, and
//! [`RawEvent::into_event`] accepts every one of those quirks and returns an [`Event`] ([`parse`]
//! does both for a `serde_json::Value`); everything downstream works on typed values only.

mod raw;

pub use raw::RawEvent;
pub(crate) use raw::{Field, KeySeed, fields};

use chrono::{DateTime, Utc};
use raw::{Data, DataField, EventField, Scalar, Shape, Slots};
use serde_json::Value;
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

/// One of the ten Key Vault event types.
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
}

impl EventType {
    /// All ten types, in display order.
    pub fn all() -> impl Iterator<Item = EventType> {
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

    /// Parses a short (`SecretNearExpiry`) or full (`Microsoft.KeyVault.SecretNearExpiry`)
    /// name, ignoring ASCII case. Returns `None` for names Key Vault does not define.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        let short = without_key_vault_prefix(name).unwrap_or(name);
        Self::all().find(|t| t.short_name().eq_ignore_ascii_case(short))
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
        }
    }

    /// The object kind the type name implies, if any.
    pub fn object_kind(self) -> Option<ObjectKind> {
        match self {
            Self::NearExpiry(kind) | Self::Expired(kind) | Self::NewVersionCreated(kind) => {
                Some(kind)
            }
            Self::VaultAccessPolicyChanged => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// A Key Vault event, parsed and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyVaultEvent {
    /// The event id Event Grid de-duplicates on.
    pub id: String,
    /// What happened.
    pub event_type: EventType,
    /// The vault name (from `VaultName`, else the `Id` URL's host, else the topic).
    pub vault: Option<String>,
    /// `Secret`, `Key` or `Certificate` as sent, else implied by the type.
    pub object_type: Option<String>,
    /// The object name (from `ObjectName`, else the `Id` URL, else the subject).
    pub object: Option<String>,
    /// The object version.
    pub version: Option<String>,
    /// The object URL (`Id`), version included.
    pub object_url: Option<String>,
    /// The Azure resource id of the vault (Event Grid `topic`, CloudEvents `source`).
    pub topic: Option<String>,
    /// When the version becomes usable (`NBF`).
    pub not_before: Option<DateTime<Utc>>,
    /// When the version expires (`EXP`).
    pub expires: Option<DateTime<Utc>>,
    /// When Key Vault raised the event.
    pub event_time: Option<DateTime<Utc>>,
    /// Payload oddities worth a log line (e.g. an `EXP` that is not a timestamp).
    pub warnings: Vec<String>,
}

impl KeyVaultEvent {
    /// `vault/object`, or the vault alone for a vault event, for output lines.
    pub fn display_name(&self) -> String {
        let vault = self.vault.as_deref().unwrap_or("-");
        match self.object.as_deref() {
            Some(object) if Some(object) != self.vault.as_deref() => format!("{vault}/{object}"),
            _ => vault.to_owned(),
        }
    }

    /// A realistic event of `event_type` (in vault `contoso-kv`, expiring in 29 days from
    /// `now`), for checking templates and rendering previews.
    pub fn example(event_type: EventType, now: DateTime<Utc>) -> Self {
        let kind = event_type.object_kind();
        let object = kind.map(|_| "db-password".to_owned());
        Self {
            id: "00000000-0000-4000-8000-000000000000".to_owned(),
            event_type,
            vault: Some("contoso-kv".to_owned()),
            object_type: kind.map(|k| k.as_str().to_owned()),
            object: object.or_else(|| Some("contoso-kv".to_owned())),
            version: kind.map(|_| "5b2f0c1e8d9a4f7b9c3e2d1a0b9c8d7e".to_owned()),
            object_url: None,
            topic: Some(
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-kv"
                    .to_owned(),
            ),
            not_before: Some(now - chrono::TimeDelta::days(335)),
            expires: match event_type {
                EventType::VaultAccessPolicyChanged => None,
                EventType::Expired(_) => Some(now - chrono::TimeDelta::hours(2)),
                _ => Some(now + chrono::TimeDelta::days(29) + chrono::TimeDelta::hours(3)),
            },
            event_time: Some(now),
            warnings: Vec::new(),
        }
    }
}

/// Any event we were given: a Key Vault event we act on, or anything else, acknowledged only.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One of the ten Key Vault types.
    KeyVault(KeyVaultEvent),
    /// Another event type (a new Key Vault type, or not a Key Vault event at all).
    Other {
        /// The event id, if it had one.
        id: Option<String>,
        /// The type name as sent.
        event_type: Option<String>,
    },
}

/// Why an event could not be understood. Only a Key Vault event with an unusable `data`
/// is rejected: any other oddity is tolerated so that no alert is lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event is not a JSON object.
    #[error("an event must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A Key Vault event whose `data` is missing or not an object.
    #[error("event {id}: a Key Vault event needs a `data` object, got {found}")]
    BadData {
        /// The event id.
        id: String,
        /// The JSON type found instead.
        found: &'static str,
    },
}

/// Parses one event in either schema from an already parsed JSON value.
pub fn parse(raw: &Value) -> Result<Event, EventError> {
    RawEvent::from_value(raw).into_event()
}

impl RawEvent {
    /// Reads an event from an already parsed JSON value.
    pub fn from_value(value: &Value) -> Self {
        use serde::Deserialize;
        // Reading a `Value` cannot fail: every JSON value is some RawEvent.
        Self::deserialize(value).unwrap_or(Self(Shape::NotAnObject("an unreadable value")))
    }

    /// Interprets the event in either schema.
    pub fn into_event(self) -> Result<Event, EventError> {
        let (mut fields, data) = match self.0 {
            Shape::Object { fields, data } => (fields, data),
            Shape::NotAnObject(found) => return Err(EventError::NotAnObject(found)),
        };
        let mut text = |key| fields.take(key).and_then(as_text);
        let id = text(EventField::Id);
        let type_name = text(EventField::EventType).or_else(|| text(EventField::Type));
        let Some(event_type) = type_name
            .as_deref()
            .filter(|name| without_key_vault_prefix(name).is_some())
            .and_then(EventType::from_name)
        else {
            return Ok(Event::Other {
                id,
                event_type: type_name,
            });
        };
        let id = id.unwrap_or_default();
        let data = match data {
            Data::Object(data) => data,
            Data::Absent => {
                return Err(EventError::BadData {
                    id,
                    found: "nothing",
                });
            }
            Data::Other(found) => return Err(EventError::BadData { id, found }),
        };
        let topic = text(EventField::Topic).or_else(|| text(EventField::Source));
        let subject = text(EventField::Subject);
        let mut warnings = Vec::new();
        let event_time = event_time(
            text(EventField::EventTime).or_else(|| text(EventField::Time)),
            &mut warnings,
        );
        Ok(Event::KeyVault(key_vault_event(
            KeyVaultEvent {
                id,
                event_type,
                vault: None,
                object_type: None,
                object: None,
                version: None,
                object_url: None,
                topic,
                not_before: None,
                expires: None,
                event_time,
                warnings,
            },
            subject,
            data,
        )))
    }
}

/// Fills in what `data` says, deriving missing names from the object URL, the topic and the
/// subject.
fn key_vault_event(
    mut event: KeyVaultEvent,
    subject: Option<String>,
    mut data: Slots<DataField>,
) -> KeyVaultEvent {
    let event_type = event.event_type;
    let mut text = |key| data.take(key).and_then(as_text);
    let object_url = text(DataField::Id);
    // Parsed only for a part `data` leaves out: Key Vault sends them all.
    let url_parts = || object_url.as_deref().and_then(ObjectUrl::parse);
    event.vault = text(DataField::VaultName)
        .or_else(|| url_parts().map(|u| u.vault.to_owned()))
        .or_else(|| event.topic.as_deref().and_then(vault_from_topic));
    event.object = text(DataField::ObjectName)
        .or_else(|| url_parts().and_then(|u| u.name.map(str::to_owned)))
        .or_else(|| event_type.object_kind().and(subject));
    event.object_type = text(DataField::ObjectType)
        .or_else(|| event_type.object_kind().map(|k| k.as_str().to_owned()));
    event.version =
        text(DataField::Version).or_else(|| url_parts().and_then(|u| u.version.map(str::to_owned)));
    event.object_url = object_url;
    event.not_before = timestamp(data.take(DataField::Nbf), "NBF", &mut event.warnings);
    event.expires = timestamp(data.take(DataField::Exp), "EXP", &mut event.warnings);
    event
}

/// The parts of a vault object URL: `https://{vault}.vault.azure.net/{kind}/{name}/{version}`.
struct ObjectUrl<'a> {
    vault: &'a str,
    name: Option<&'a str>,
    version: Option<&'a str>,
}

impl<'a> ObjectUrl<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let rest = url.split_once("://")?.1;
        let mut segments = rest.split('/').filter(|s| !s.is_empty());
        let vault = segments.next()?.split('.').next()?;
        let _collection = segments.next();
        Some(Self {
            vault,
            name: segments.next(),
            version: segments.next(),
        })
    }
}

fn vault_from_topic(topic: &str) -> Option<String> {
    let (_, rest) = topic.rsplit_once("/vaults/")?;
    rest.split('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The part after `Microsoft.KeyVault.` (in any case), when `name` starts with it.
pub fn without_key_vault_prefix(name: &str) -> Option<&str> {
    name.get(..KEY_VAULT_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(KEY_VAULT_PREFIX))
        .map(|_| &name[KEY_VAULT_PREFIX.len()..])
}

/// A scalar as (trimmed) text; `null`, empty strings, objects and arrays are `None`.
fn as_text(value: Scalar) -> Option<String> {
    let text = match value {
        Scalar::Text(s) => s,
        Scalar::Number(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Null | Scalar::Container(_) => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// Reads `NBF`/`EXP`: seconds since the epoch as a number or numeric string; `null` or absent
/// means no date. Anything else is ignored with a warning rather than rejecting the event.
fn timestamp(
    value: Option<Scalar>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let seconds = match value? {
        Scalar::Null => return None,
        Scalar::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Scalar::Text(s) if s.is_empty() => return None,
        Scalar::Text(s) => s.parse::<f64>().ok().map(|f| f as i64),
        Scalar::Bool(_) | Scalar::Container(_) => None,
    };
    let parsed = seconds.and_then(|s| DateTime::from_timestamp(s, 0));
    if parsed.is_none() {
        warnings.push(format!("ignored {key}: not a Unix timestamp"));
    }
    parsed
}

fn event_time(text: Option<String>, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let text = text?;
    let parsed = DateTime::parse_from_rfc3339(&text).ok();
    if parsed.is_none() {
        warnings.push("ignored eventTime: not an RFC 3339 time".to_owned());
    }
    parsed.map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_vault(raw: Value) -> KeyVaultEvent {
        match parse(&raw) {
            Ok(Event::KeyVault(event)) => event,
            other => panic!("expected a Key Vault event, got {other:?}"),
        }
    }

    #[test]
    fn every_type_parses_from_short_and_full_names() {
        for t in EventType::all() {
            assert_eq!(EventType::from_name(t.short_name()), Some(t));
            let full = format!("Microsoft.KeyVault.{t}");
            assert_eq!(EventType::from_name(&full), Some(t));
        }
        assert_eq!(EventType::all().count(), 10);
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
        let err =
            parse(&json!({"id": "7", "eventType": "Microsoft.KeyVault.KeyExpired", "data": "x"}));
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
}
