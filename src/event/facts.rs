//! An event's facts about its object, in the one serialisable shape that the invocation's
//! report, the alert and the JSON webhook payload all carry, so that the three never drift.

use super::{AccessChange, ApplicationFacts, KeyVaultEvent};
use crate::text::clean;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// What an event says of its object: names cleaned for display, times in RFC 3339 UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// The vault name.
    pub vault: Option<String>,
    /// `Secret`, `Key` or `Certificate`.
    pub object_type: Option<String>,
    /// The object name.
    pub object: Option<String>,
    /// The object version.
    pub version: Option<String>,
    /// When the version expires.
    pub expires: Option<String>,
    /// When the version becomes usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// When the event was raised (or the sweep checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// For a notice about an Entra ID application: its ids and the credentials due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationFacts>,
    /// What else ties the object to something that expires.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// For an access change Resource Manager reported: what changed, by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessChange>,
}

impl KeyVaultEvent {
    /// The event's facts about its object.
    pub fn facts(&self) -> Facts {
        let text = |value: &Option<String>| value.as_deref().map(clean);
        Facts {
            vault: text(&self.vault),
            object_type: text(&self.object_type),
            object: text(&self.object),
            version: text(&self.version),
            expires: rfc3339(self.expires),
            not_before: rfc3339(self.not_before),
            event_time: rfc3339(self.event_time),
            application: self.application.as_ref().map(|a| a.facts()),
            related: self.related.iter().map(|r| clean(r)).collect(),
            access: self.access.as_ref().map(AccessChange::cleaned),
        }
    }
}

fn rfc3339(time: Option<DateTime<Utc>>) -> Option<String> {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}
