//! The Key Vault event model, and the one place where raw JSON events become it.
//!
//! Azure delivers Key Vault events in two schemas (Event Grid and CloudEvents 1.0) and with
//! payload quirks seen in the wild: `NBF`/`EXP` as numbers, numeric strings, `null` or absent;
//! PascalCase or camelCase keys; keys and values with stray spaces. A [`RawEvent`] is read in one
//! pass from request bytes or a parsed value, keeping only the fields used, and
//! [`RawEvent::into_event`] accepts every one of those quirks and returns an [`Event`] ([`parse`]
//! does both for a `serde_json::Value`); everything downstream works on typed values only.

mod access;
mod application;
mod facts;
mod key;
mod made;
mod raw;
mod resource;
mod types;

pub use access::{AccessChange, Assignment};
pub use application::{Application, ApplicationFacts, DueCredential, Holder};
pub use facts::Facts;
pub use key::{EventKey, MAX_ID};
pub use raw::RawEvent;
pub(crate) use raw::{Field, KeySeed, fields};
pub use resource::{
    ACCESS_OPERATIONS, Caller, Concern, ResourceAction, ResourceEvent, covers, vault_of,
};
pub use types::{EventType, ObjectKind, without_key_vault_prefix};

use crate::text::bounded;
use chrono::{DateTime, Utc};
use raw::{ClaimField, Data, DataField, EventField, FieldValues, RequestField, Scalar};

/// Longest text kept from an event (names, URLs, times); Key Vault's own names are far shorter
/// (127 characters for an object, 24 for a vault), so only a hostile or broken event is cut.
const MAX_TEXT: usize = 512;

/// A Key Vault event, parsed and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyVaultEvent {
    /// The event id as sent (shortened past [`MAX_ID`] characters; empty when it had none).
    pub id: String,
    /// What the ledger knows the event by.
    pub key: EventKey,
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
    /// The reminder-ladder step this is, for a sweep's reminder or an expiry event that
    /// falls in a step.
    pub reminder: Option<Reminder>,
    /// The owners the object's owner tag names (`OWNER_TAG`), when its vault was read: they
    /// come before the rules' owners.
    pub tag_owners: Option<Vec<lettre::message::Mailbox>>,
    /// For kv-notify's own alerts (a vault the sweep cannot read, the health notice): what is
    /// wrong, and how to fix it.
    pub diagnosis: Option<Diagnosis>,
    /// For a notice about an Entra ID application: its ids and the credentials due.
    pub application: Option<Application>,
    /// What else ties the object to something that expires: a vault secret holding an Entra
    /// ID credential, in words.
    pub related: Vec<String>,
    /// For an access change Resource Manager reported (a role assignment, a vault's settings):
    /// what changed, by whom.
    pub access: Option<AccessChange>,
}

/// What is wrong with kv-notify's view (a vault it cannot read, the troubles of the day), and
/// what would set it right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// What went wrong, in words (with the service's error code when it gave one).
    pub cause: String,
    /// What to do, in order.
    pub fix: Vec<String>,
}

/// A step of the reminder ladder, as an alert tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminder {
    /// Days before the expiry (negative: after).
    pub step: i64,
    /// When the ladder's last step begins (it may be ahead): the ledger keeps this step's
    /// records from then for its retention period, so they outlive the ladder.
    pub kept_from: DateTime<Utc>,
    /// The ladder's next step, if any: when the next reminder comes.
    pub next: Option<i64>,
    /// For a certificate: whether its policy renews it automatically (`None`: not known).
    pub auto_renews: Option<bool>,
}

impl KeyVaultEvent {
    /// An event of `event_type` known as `id` (and to the ledger as `key`) that says nothing
    /// more yet: the one place an event is spelt out field by field.
    pub fn new(id: String, key: EventKey, event_type: EventType) -> Self {
        Self {
            id,
            key,
            event_type,
            vault: None,
            object_type: None,
            object: None,
            version: None,
            object_url: None,
            topic: None,
            not_before: None,
            expires: None,
            event_time: None,
            warnings: Vec::new(),
            reminder: None,
            tag_owners: None,
            diagnosis: None,
            application: None,
            related: Vec::new(),
            access: None,
        }
    }

    /// `vault/object`, or the vault alone for a vault event, for output lines.
    pub fn display_name(&self) -> String {
        let vault = self.vault.as_deref().unwrap_or("-");
        match self.object.as_deref() {
            Some(object) if Some(object) != self.vault.as_deref() => format!("{vault}/{object}"),
            _ => vault.to_owned(),
        }
    }
}

/// Any event we were given: a Key Vault event we act on, or anything else, acknowledged only.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One of the ten Key Vault types (boxed: it is much larger than the other variant).
    KeyVault(Box<KeyVaultEvent>),
    /// A Resource Manager write or delete (a subscription's or resource group's events): an
    /// access change when it concerns a watched vault, else acknowledged.
    Resource(Box<ResourceEvent>),
    /// Another event type (a new Key Vault type, or not a Key Vault event at all).
    Other {
        /// The event id, if it had one.
        id: Option<String>,
        /// The type name as sent.
        event_type: Option<String>,
    },
}

impl From<KeyVaultEvent> for Event {
    fn from(event: KeyVaultEvent) -> Self {
        Self::KeyVault(Box::new(event))
    }
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

/// Parses one event in either schema from an already parsed JSON value (for the tests:
/// requests and files are read through [`RawEvent`]'s `Deserialize`).
#[cfg(test)]
pub fn parse(raw: &serde_json::Value) -> Result<Event, EventError> {
    use serde::Deserialize;
    // Reading a `Value` cannot fail: every JSON value is some RawEvent.
    RawEvent::deserialize(raw)
        .unwrap_or(RawEvent::NotAnObject("an unreadable value"))
        .into_event()
}

impl RawEvent {
    /// Interprets the event in either schema.
    pub fn into_event(self) -> Result<Event, EventError> {
        let (mut fields, data) = match self {
            RawEvent::Object { fields, data } => (fields, data),
            RawEvent::NotAnObject(found) => return Err(EventError::NotAnObject(found)),
        };
        let id_value = fields.take(EventField::Id);
        let id = id_value
            .clone()
            .and_then(as_text)
            .map(|id| bounded(id, MAX_ID));
        let mut text = |key| fields.take(key).and_then(as_text);
        let type_name = text(EventField::EventType).or_else(|| text(EventField::Type));
        if let Some(action) = type_name.as_deref().and_then(ResourceAction::from_type) {
            return Ok(resource_event(action, id_value, fields, data));
        }
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
            Data::Object(members) => members.fields,
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
        let mut event = key_vault_event(
            KeyVaultEvent {
                topic,
                event_time,
                warnings,
                ..KeyVaultEvent::new(id, EventKey::Id(String::new()), event_type)
            },
            subject,
            data,
        );
        event.key = EventKey::new(id_value.as_ref(), || content_of(&event));
        Ok(Event::KeyVault(Box::new(event)))
    }
}

/// A Resource Manager event: what was written or deleted, by whom. One without the fields
/// that say so (`data.operationName`, a resource id) concerns nothing, and is acknowledged.
fn resource_event(
    action: ResourceAction,
    id_value: Option<Scalar>,
    mut fields: FieldValues<EventField>,
    data: Data,
) -> Event {
    let mut text = |key| fields.take(key).and_then(as_text);
    let subject = text(EventField::Subject);
    let time = text(EventField::EventTime).or_else(|| text(EventField::Time));
    let event_time = event_time(time, &mut Vec::new());
    let (mut data, claims, request) = match data {
        Data::Object(members) => (members.fields, members.claims, members.request),
        Data::Absent | Data::Other(_) => (FieldValues::default(), None, None),
    };
    let mut read = |key| data.take(key).and_then(as_text);
    let operation = read(DataField::OperationName).unwrap_or_default();
    let resource = read(DataField::ResourceUri).or(subject).unwrap_or_default();
    let tenant = read(DataField::TenantId);
    let correlation = read(DataField::CorrelationId);
    let mut claims = claims.unwrap_or_default();
    let mut claim = |key| claims.take(key).and_then(as_text);
    let mut caller = Caller {
        name: claim(ClaimField::Name),
        upn: claim(ClaimField::Upn).or_else(|| claim(ClaimField::UniqueName)),
        app_id: claim(ClaimField::AppId),
        object_id: claim(ClaimField::ObjectId),
        ip: claim(ClaimField::IpAddress),
    };
    if let Some(ip) = request.and_then(|mut r| r.take(RequestField::ClientIp).and_then(as_text)) {
        caller.ip = Some(ip);
    }
    let content = [
        operation.as_str(),
        resource.as_str(),
        &format!("{event_time:?}"),
    ];
    let key = EventKey::new(id_value.as_ref(), || {
        serde_json::to_string(&content).expect("strings serialise")
    });
    let id = id_value
        .and_then(as_text)
        .map(|id| bounded(id, MAX_ID))
        .unwrap_or_default();
    Event::Resource(Box::new(ResourceEvent {
        id,
        key,
        action,
        operation,
        resource,
        tenant,
        caller,
        correlation,
        event_time,
    }))
}

/// What an event says (type, vault, object, version, time) as one JSON array: what tells apart
/// events without a usable id.
fn content_of(event: &KeyVaultEvent) -> String {
    let event_time = event.event_time.map(|t| t.to_rfc3339());
    let content = [
        Some(event.event_type.short_name()),
        event.vault.as_deref(),
        event.object.as_deref(),
        event.version.as_deref(),
        event_time.as_deref(),
    ];
    serde_json::to_string(&content).expect("strings serialise")
}

/// Fills in what `data` says, deriving missing names from the object URL, the topic and the
/// subject.
fn key_vault_event(
    mut event: KeyVaultEvent,
    subject: Option<String>,
    mut data: FieldValues<DataField>,
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

/// A scalar as (trimmed) text, at most [`MAX_TEXT`] characters; `null`, empty strings,
/// objects and arrays are `None`.
fn as_text(value: Scalar) -> Option<String> {
    let text = match value {
        Scalar::Text(s) => s,
        Scalar::Number(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Null | Scalar::ObjectOrArray(_) => return None,
    };
    (!text.is_empty()).then(|| bounded(text, MAX_TEXT))
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
        Scalar::Number(n) => n.as_f64(),
        Scalar::Text(s) if s.is_empty() => return None,
        Scalar::Text(s) => s.parse::<f64>().ok(),
        Scalar::Bool(_) | Scalar::ObjectOrArray(_) => None,
    };
    let Some(seconds) = seconds.filter(|s| s.is_finite()) else {
        warnings.push(format!("ignored {key}: not a Unix timestamp"));
        return None;
    };
    // Whole seconds: the cast saturates, and the range check rejects what it clipped.
    let parsed = sane_date(seconds as i64);
    if parsed.is_none() {
        warnings.push(format!(
            "ignored {key}: {seconds} is not a date between {SANE_YEARS}"
        ));
    }
    parsed
}

/// The date `seconds` after the epoch, if it is one an `NBF` or `EXP` can sensibly hold (see
/// [`SANE_DATES`]), from an event or a vault's list alike.
pub fn sane_date(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0).filter(|t| SANE_DATES.contains(t))
}

/// [`SANE_DATES`] in words, for the warnings that drop a date.
pub const SANE_YEARS: &str = "1990 and 2200";

/// The dates an `NBF` or `EXP` can sensibly hold; anything outside is a broken value (`NaN`
/// read as 0, milliseconds sent as seconds), dropped with a warning rather than mailed as
/// "expired 20,000 days ago".
const SANE_DATES: std::ops::RangeInclusive<DateTime<Utc>> = {
    const FROM: i64 = 631_152_000; // 1990-01-01
    const TO: i64 = 7_258_118_400; // 2200-01-01
    match (
        DateTime::from_timestamp(FROM, 0),
        DateTime::from_timestamp(TO, 0),
    ) {
        (Some(from), Some(to)) => from..=to,
        _ => panic!("valid bounds"),
    }
};

fn event_time(text: Option<String>, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let text = text?;
    let parsed = DateTime::parse_from_rfc3339(&text).ok();
    if parsed.is_none() {
        warnings.push("ignored eventTime: not an RFC 3339 time".to_owned());
    }
    parsed.map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
