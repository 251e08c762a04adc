//! What was done for each event: the `ReturnValue` users see in the host's invocation log,
//! and the one-line summaries that go into `Logs`.

use crate::event::{Facts, KeyVaultEvent};
use crate::outcome::ActionReport;
use serde::Serialize;
use std::borrow::Cow;

/// The outcome of one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    /// The event id.
    pub id: Option<String>,
    /// The short type name (`SecretNearExpiry`), or the type as sent for other events.
    #[serde(rename = "type")]
    pub event_type: Option<Cow<'static, str>>,
    /// What the event says of its object.
    #[serde(flatten)]
    pub facts: Facts,
    /// What was done.
    pub actions: Vec<ActionReport>,
}

impl EventReport {
    /// The report of an event that is not one of the Key Vault types acted on: no actions.
    pub fn other(id: Option<String>, event_type: Option<String>) -> Self {
        Self {
            id,
            event_type: event_type.map(Cow::Owned),
            facts: Facts::default(),
            actions: Vec::new(),
        }
    }

    /// The report of a Key Vault event and what was done for it.
    pub fn key_vault(event: KeyVaultEvent, actions: Vec<ActionReport>) -> Self {
        let facts = event.facts();
        Self {
            id: (!event.id.is_empty()).then_some(event.id),
            event_type: Some(Cow::Borrowed(event.event_type.short_name())),
            facts,
            actions,
        }
    }

    /// Whether an action failed in a way a redelivery can fix.
    pub fn needs_retry(&self) -> bool {
        self.actions.iter().any(|a| a.outcome.needs_retry())
    }

    /// One line for the event, then one per action, for `Logs`.
    pub fn log_lines(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.log_line()).chain(self.actions.iter().map(ActionReport::log_line))
    }

    fn log_line(&self) -> String {
        fn dash<T: AsRef<str>>(value: &Option<T>) -> &str {
            value.as_ref().map_or("-", AsRef::as_ref)
        }
        let subject = match (&self.facts.vault, &self.facts.object) {
            (None, None) => "not a Key Vault event we act on".to_owned(),
            (vault, object) if vault == object => dash(vault).to_owned(),
            (vault, object) => format!("{}/{}", dash(vault), dash(object)),
        };
        let done = match self.actions.len() {
            0 => "recorded, no action".to_owned(),
            n => format!("{n} action(s)"),
        };
        let (id, event_type) = (dash(&self.id), dash(&self.event_type));
        format!("event {id} {event_type} {subject}: {done}")
    }
}

impl ActionReport {
    fn log_line(&self) -> String {
        let status = self.outcome.status();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ActionKind, Failure, Outcome};

    fn report(vault: Option<&str>, object: Option<&str>) -> EventReport {
        EventReport {
            id: Some("e1".to_owned()),
            event_type: Some(Cow::Borrowed("SecretNearExpiry")),
            facts: Facts {
                vault: vault.map(str::to_owned),
                object_type: Some("Secret".to_owned()),
                object: object.map(str::to_owned),
                ..Facts::default()
            },
            actions: Vec::new(),
        }
    }

    #[test]
    fn the_event_line_names_the_event_its_object_and_what_was_done() {
        let lines = |r: &EventReport| r.log_lines().collect::<Vec<_>>();
        assert_eq!(
            lines(&report(Some("prod-kv"), Some("db-password"))),
            ["event e1 SecretNearExpiry prod-kv/db-password: recorded, no action"]
        );
        assert_eq!(
            lines(&report(Some("prod-kv"), Some("prod-kv"))),
            ["event e1 SecretNearExpiry prod-kv: recorded, no action"]
        );
        assert_eq!(
            lines(&report(None, Some("db-password"))),
            ["event e1 SecretNearExpiry -/db-password: recorded, no action"]
        );
        let mut other = EventReport::other(None, None);
        assert_eq!(
            lines(&other),
            ["event - - not a Key Vault event we act on: recorded, no action"]
        );
        other.actions.push(ActionReport {
            action: ActionKind::Email,
            to: vec!["a@contoso.com".to_owned(), "b@contoso.com".to_owned()],
            outcome: Outcome::Failed(Failure::Transient("timed out".to_owned())),
            reason: Some("timed out".to_owned()),
        });
        assert_eq!(
            lines(&other),
            [
                "event - - not a Key Vault event we act on: 1 action(s)",
                "  email to a@contoso.com, b@contoso.com: failed (timed out)"
            ]
        );
    }
}
