//! What was done for each event: the `ReturnValue` users see in the host's invocation log,
//! and the one-line summaries that go into `Logs`.

use crate::event::{Event, KeyVaultEvent};
use chrono::SecondsFormat;
use serde::Serialize;

/// The outcome of one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    /// The event id.
    pub id: Option<String>,
    /// The short type name (`SecretNearExpiry`), or the type as sent for other events.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// The vault name.
    pub vault: Option<String>,
    /// `Secret`, `Key` or `Certificate`.
    pub object_type: Option<String>,
    /// The object name.
    pub object: Option<String>,
    /// The object version.
    pub version: Option<String>,
    /// The expiry, RFC 3339 UTC.
    pub expires: Option<String>,
    /// What was done.
    pub actions: Vec<ActionReport>,
}

/// The outcome of one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    /// `email` (more kinds come with routing rules).
    pub action: &'static str,
    /// Who it was for.
    pub to: Vec<String>,
    /// How it ended.
    pub status: ActionStatus,
    /// Why, when it was not simply sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether a redelivery could make a failed action succeed.
    #[serde(skip)]
    pub retryable: bool,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Done now.
    Sent,
    /// Already done by an earlier delivery of the same event.
    Duplicate,
    /// Deliberately not done (e.g. no recipients configured).
    Skipped,
    /// Attempted and failed.
    Failed,
}

impl ActionStatus {
    /// The name used in results and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Duplicate => "duplicate",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

impl EventReport {
    /// A report with no actions yet.
    pub fn new(event: &Event) -> Self {
        match event {
            Event::KeyVault(event) => Self::key_vault(event),
            Event::Other { id, event_type } => Self {
                id: id.clone(),
                event_type: event_type.clone(),
                vault: None,
                object_type: None,
                object: None,
                version: None,
                expires: None,
                actions: Vec::new(),
            },
        }
    }

    fn key_vault(event: &KeyVaultEvent) -> Self {
        Self {
            id: Some(event.id.clone()),
            event_type: Some(event.event_type.short_name().to_owned()),
            vault: event.vault.clone(),
            object_type: event.object_type.clone(),
            object: event.object.clone(),
            version: event.version.clone(),
            expires: event
                .expires
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            actions: Vec::new(),
        }
    }

    /// Whether an action failed in a way a redelivery can fix.
    pub fn needs_retry(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.status == ActionStatus::Failed && a.retryable)
    }

    /// One line for the event, then one per action, for `Logs`.
    pub fn log_lines(&self) -> Vec<String> {
        let dash = |v: &Option<String>| v.as_deref().unwrap_or("-").to_owned();
        let target = match (&self.vault, &self.object) {
            (None, None) => "not a Key Vault event we act on".to_owned(),
            (vault, object) if vault == object => dash(vault),
            (vault, object) => format!("{}/{}", dash(vault), dash(object)),
        };
        let outcome = match self.actions.len() {
            0 => "recorded, no action".to_owned(),
            n => format!("{n} action(s)"),
        };
        let mut lines = vec![format!(
            "event {} {} {target}: {outcome}",
            dash(&self.id),
            dash(&self.event_type),
        )];
        lines.extend(self.actions.iter().map(ActionReport::log_line));
        lines
    }
}

impl ActionReport {
    fn log_line(&self) -> String {
        let status = self.status.as_str();
        let to = if self.to.is_empty() {
            "nobody".to_owned()
        } else {
            self.to.join(", ")
        };
        match &self.reason {
            Some(reason) => format!("  {} to {to}: {status} ({reason})", self.action),
            None => format!("  {} to {to}: {status}", self.action),
        }
    }
}
