//! What a sweep did, per vault (the timer's `ReturnValue` and `Logs`), and what `inventory`
//! shows per object.

use crate::delivery::Outcome;
use crate::entra::AppCredential;
use crate::event::ObjectKind;
use crate::ladder::{Ladder, Position};
use crate::report::EventReport;
use crate::vault::{Coverage, Covered};
use crate::vault::{VaultError, VaultObject, VaultRef};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::time::Duration;

/// One sweep.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// `SWEEP_BUDGET_SECS`.
    pub budget_secs: u64,
    /// Per vault, in `VAULTS` order.
    pub vaults: Vec<VaultSummary>,
    /// The vaults (or lists) not read in full, each with why.
    pub not_reached: Vec<String>,
    /// The subscriptions of `SUBSCRIPTIONS` whose vaults could not be listed, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_not_listed: Vec<String>,
    /// With `ENTRA_CREDENTIALS`: what Entra ID's applications hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraSummary>,
    /// With `SUBSCRIPTIONS`: whether Event Grid delivers each vault's events to this app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageSummary>,
}

/// Which watched vaults Event Grid delivers to this app, and which it does not.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSummary {
    /// Vaults checked.
    pub checked: usize,
    /// Of those, with an Event Grid subscription delivering their events here.
    pub covered: usize,
    /// Vaults without one, each with what is missing: the first [`KEPT`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<String>,
    /// Such vaults beyond those in `uncovered`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_uncovered: usize,
    /// Vaults whose subscriptions kv-notify cannot see, each with why: the first [`KEPT`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<String>,
    /// Such vaults beyond those in `unseen`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_unseen: usize,
    /// Why the vaults were not checked (`VAULTS` alone), when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// Subscriptions whose Resource Manager events (role assignments, vault settings) were
    /// checked.
    #[serde(skip_serializing_if = "is_zero")]
    pub access_checked: usize,
    /// Of those, delivering them here.
    #[serde(skip_serializing_if = "is_zero")]
    pub access_covered: usize,
    /// Subscriptions delivering none here, each with what is missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_uncovered: Vec<String>,
    /// Subscriptions whose own topic's event subscriptions cannot be read, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_unseen: Vec<String>,
}

impl CoverageSummary {
    /// The summary of each vault's standing, and each subscription's.
    pub fn of(coverage: &Coverage) -> Self {
        let mut summary = Self {
            checked: coverage.vaults.len(),
            access_checked: coverage.access.len(),
            ..Self::default()
        };
        for (id, stand) in &coverage.access {
            match stand {
                Covered::Yes => summary.access_covered += 1,
                Covered::No(why) => summary
                    .access_uncovered
                    .push(format!("subscription {id}: {why}")),
                Covered::Unseen(why) => summary
                    .access_unseen
                    .push(format!("subscription {id}: {why}")),
                Covered::NotChecked(_) => {}
            }
        }
        for (vault, stand) in &coverage.vaults {
            match stand {
                Covered::Yes => summary.covered += 1,
                Covered::No(why) => keep(
                    &mut summary.uncovered,
                    &mut summary.more_uncovered,
                    format!("{vault}: {why}"),
                ),
                Covered::NotChecked(why) => summary.not_checked = Some(why.clone()),
                Covered::Unseen(why) => keep(
                    &mut summary.unseen,
                    &mut summary.more_unseen,
                    format!("{vault}: {why}"),
                ),
            }
        }
        summary
    }
}

/// What became of a run's reminders, by fate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Fates {
    /// Sent (to at least one recipient) in this run.
    pub sent: usize,
    /// Sent already, by an earlier run (or the expiry event).
    pub duplicate: usize,
    /// Failed in a way the next run retries.
    pub failed: usize,
    /// Refused for good, or with nobody to go to.
    pub refused: usize,
}

impl Fates {
    /// Counts the reminders' outcomes.
    pub fn count(&mut self, reports: &[EventReport]) {
        for report in reports {
            match fate(report) {
                FAILED => self.failed += 1,
                SENT => self.sent += 1,
                SENT_BEFORE => self.duplicate += 1,
                _ => self.refused += 1,
            }
        }
    }
}

/// Entra ID's part of a sweep: the applications' credentials and their notices (one per
/// application and step, listing its credentials due at that step).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraSummary {
    /// Credentials (client secrets and certificates) of every application.
    pub credentials: usize,
    /// Of those, on a step of the reminder ladder.
    pub due: usize,
    /// Of those, listed in a notice this sweep made.
    pub listed: usize,
    /// Of those, told of at their step before (or by a sweep running at the same time).
    pub told_before: usize,
    /// What became of the notices.
    #[serde(flatten)]
    pub fates: Fates,
    /// With `--dry-run`: the mails that would go.
    #[serde(skip_serializing_if = "is_zero")]
    pub would_mail: usize,
    /// Applications with a notice whose owners Graph gave as ids alone (the identity lacks
    /// `User.Read.All`): their notices went to the rules' owners.
    #[serde(skip_serializing_if = "is_zero")]
    pub owners_hidden: usize,
    /// Applications whose owners could not be read, and why: the first [`KEPT`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners_unread: Vec<String>,
    /// Such applications beyond those in `owners_unread`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_owners_unread: usize,
    /// Why the applications could not be read, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_read: Option<String>,
    /// When Graph refused the identity: what became of the alert to the security contacts
    /// (`sent`, `sent before`: once per 15 days, `failed`, `refused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blind_spot_alert: Option<&'static str>,
}

impl EntraSummary {
    /// The summary of applications that could not be read.
    pub fn not_read(why: String) -> Self {
        Self {
            not_read: Some(why),
            ..Self::default()
        }
    }
}

/// One vault's part of a sweep.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultSummary {
    /// The vault name.
    pub vault: String,
    /// Objects listed (all three kinds, certificates' own keys and secrets included).
    pub objects: usize,
    /// Reminders due: objects in a ladder step.
    pub due: usize,
    /// What became of the reminders.
    #[serde(flatten)]
    pub fates: Fates,
    /// With `--dry-run`: the mails that would go (one per reminder and recipient).
    #[serde(skip_serializing_if = "is_zero")]
    pub would_mail: usize,
    /// Lists that could not be read, and objects that could not be looked up, and why: the
    /// first [`KEPT`].
    pub errors: Vec<String>,
    /// Errors beyond those in `errors`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_errors: usize,
    /// Objects listed with a date off the calendar, which get no reminders: the first
    /// [`KEPT`], each with what was wrong.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bad_dates: Vec<String>,
    /// Such objects beyond those in `bad_dates`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_bad_dates: usize,
    /// Whether the budget ran out before this vault was done.
    pub out_of_budget: bool,
    /// Requests sent to the vault.
    pub requests: u32,
    /// Of those, answered 429.
    pub throttled: u32,
    /// When a list could not be read for a reason a person must fix: what became of the
    /// alert to the security contacts (`sent`, `sent before`: once per 15 days, `failed`,
    /// `refused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blind_spot_alert: Option<&'static str>,
}

/// Errors (and objects with bad dates) a summary names per vault; the rest are counted. A
/// hostile or broken vault can fail every one of thousands of objects: the timer's answer and
/// the health notice stay short.
pub const KEPT: usize = 5;

pub(super) const FAILED: &str = "failed";
pub(super) const SENT: &str = "sent";
pub(super) const SENT_BEFORE: &str = "sent before";
pub(super) const REFUSED: &str = "refused";

/// What became of an event's alert, in a word.
pub fn fate(report: &EventReport) -> &'static str {
    let outcomes = || report.actions.iter().map(|a| &a.outcome);
    if report.needs_retry() {
        FAILED
    } else if outcomes().any(|o| matches!(o, Outcome::Sent | Outcome::Written(_))) {
        SENT
    } else if outcomes().any(|o| *o == Outcome::Duplicate) {
        // Some channel had it already; what the others did (a refusal) is theirs to report.
        SENT_BEFORE
    } else {
        REFUSED
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Pushes `item` onto `kept` while it holds fewer than [`KEPT`]; counts it in `more` after.
pub(super) fn keep(kept: &mut Vec<String>, more: &mut usize, item: String) {
    if kept.len() < KEPT {
        kept.push(item);
    } else {
        *more += 1;
    }
}

impl VaultSummary {
    /// The summary of a vault read, before its reminders went.
    pub fn new(vault: &VaultRef, objects: usize, errors: &[(ObjectKind, VaultError)]) -> Self {
        Self {
            vault: vault.name.clone(),
            objects,
            errors: errors
                .iter()
                .map(|(kind, error)| format!("{}: {error}", kind.collection()))
                .collect(),
            ..Self::default()
        }
    }

    /// Whether some list was not read in full.
    pub fn unread(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Adds an error: named among the first [`KEPT`], else counted.
    pub fn error(&mut self, error: String) {
        keep(&mut self.errors, &mut self.more_errors, error);
    }

    /// The summary of a vault whose sweep failed on a bug (a panic, with its message): that
    /// vault's problem alone, said like a list error.
    pub fn crashed(vault: &str, panic: &(dyn std::any::Any + Send)) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        Self {
            vault: vault.to_owned(),
            errors: vec![format!(
                "kv-notify failed on this vault ({message}); the other vaults were swept"
            )],
            ..Self::default()
        }
    }

    fn log_line(&self) -> String {
        let mut line = format!(
            "vault {}: {} objects, {} reminder(s) due: {} sent, {} sent before, {} failed, {} refused or unaddressed ({} requests, {} throttled)",
            self.vault,
            self.objects,
            self.due,
            self.fates.sent,
            self.fates.duplicate,
            self.fates.failed,
            self.fates.refused,
            self.requests,
            self.throttled
        );
        if self.would_mail > 0 {
            line.push_str(&format!("; dry run: {} mail(s) would go", self.would_mail));
        }
        for error in &self.errors {
            line.push_str(&format!("; NOT READ: {error}"));
        }
        if self.more_errors > 0 {
            line.push_str(&format!("; and {} more errors", self.more_errors));
        }
        for object in &self.bad_dates {
            line.push_str(&format!("; UNUSABLE DATE: {object}"));
        }
        if self.more_bad_dates > 0 {
            line.push_str(&format!(
                "; and {} more objects with unusable dates",
                self.more_bad_dates
            ));
        }
        if let Some(fate) = self.blind_spot_alert {
            line.push_str(&format!("; security contacts alerted: {fate}"));
        }
        line
    }
}

impl SweepReport {
    /// The report of a run that started at `started`.
    pub fn new(started: DateTime<Utc>, vaults: Vec<VaultSummary>, budget: Duration) -> Self {
        let not_reached = vaults
            .iter()
            .flat_map(|v| v.errors.iter().map(move |e| format!("{}: {e}", v.vault)))
            .collect();
        Self {
            started: started.to_rfc3339_opts(SecondsFormat::Secs, true),
            budget_secs: budget.as_secs(),
            vaults,
            not_reached,
            subscriptions_not_listed: Vec::new(),
            entra: None,
            coverage: None,
        }
    }

    /// Whether something needs a person: a subscription not listed, a vault not read in
    /// full, a reminder that failed.
    pub fn failed(&self) -> bool {
        !self.subscriptions_not_listed.is_empty()
            || !self.not_reached.is_empty()
            || self
                .entra
                .as_ref()
                .is_some_and(|e| e.not_read.is_some() || e.fates.failed > 0)
            || self
                .vaults
                .iter()
                .any(|v| v.fates.failed > 0 || !v.bad_dates.is_empty())
    }

    /// One line per vault, for the invocation log and the command line.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .subscriptions_not_listed
            .iter()
            .map(|why| format!("subscription NOT LISTED: {why}"))
            .collect();
        lines.extend(self.vaults.iter().map(VaultSummary::log_line));
        if let Some(entra) = &self.entra {
            lines.push(match &entra.not_read {
                Some(why) => format!("Entra ID NOT READ: {why}"),
                None => format!(
                    "Entra ID: {} application credential(s), {} on a reminder step ({} told of \
                     before); notices: {} sent, {} sent before, {} failed, {} refused or \
                     unaddressed",
                    entra.credentials,
                    entra.due,
                    entra.told_before,
                    entra.fates.sent,
                    entra.fates.duplicate,
                    entra.fates.failed,
                    entra.fates.refused
                ),
            });
        }
        if let Some(why) = self.coverage.as_ref().and_then(|c| c.not_checked.as_ref()) {
            lines.push(format!("Event Grid coverage {why}"));
        } else if let Some(coverage) = &self.coverage {
            lines.push(format!(
                "Event Grid: {} of {} vault(s) deliver their events here; {} without a \
                 subscription, {} not seen",
                coverage.covered,
                coverage.checked,
                coverage.uncovered.len() + coverage.more_uncovered,
                coverage.unseen.len() + coverage.more_unseen
            ));
            if coverage.access_checked > 0 {
                lines.push(format!(
                    "Event Grid: {} of {} subscription(s) deliver their Resource Manager events \
                     (role assignments, vault settings) here",
                    coverage.access_covered, coverage.access_checked
                ));
            }
        }
        if self.vaults.iter().any(|v| v.out_of_budget) {
            lines.push(format!(
                "the sweep ran out of its {} s budget (SWEEP_BUDGET_SECS): the next run \
                 catches up",
                self.budget_secs
            ));
        }
        lines
    }
}

/// One object in `inventory`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryRow {
    /// The vault name.
    pub vault: String,
    /// `Secret`, `Key` or `Certificate`.
    #[serde(rename = "type")]
    pub object_type: &'static str,
    /// The object name (empty for a list that could not be read).
    pub name: String,
    /// The expiry of the current version, RFC 3339 UTC.
    pub expires: Option<String>,
    /// Whole days left, rounded down.
    pub days_left: Option<i64>,
    /// Where it stands on the ladder: `step 7 now`, `step 60 in 12 days`, `past the ladder`.
    pub reminder: String,
    /// Who its reminders go to (addresses and webhook channels).
    pub owners: Vec<String>,
    /// Where its owners come from: `tag`, an `[[owners]]` line, or `OWNER_EMAILS`.
    pub owner_source: String,
    /// What else to know: disabled, renews automatically, cannot be read.
    pub notes: Vec<String>,
}

impl InventoryRow {
    /// The row of an application's credential in Entra ID (its owners are the caller's to
    /// fill in).
    pub fn app_credential(
        credential: &AppCredential,
        position: Option<Position>,
        ladder: &Ladder,
    ) -> Self {
        let holder = match credential.holder {
            crate::event::Holder::Application => "application",
            crate::event::Holder::ServicePrincipal => "enterprise application",
        };
        Self {
            vault: "Entra ID".to_owned(),
            object_type: credential.kind.as_str(),
            name: format!("{}/{}", credential.app_name, credential.label()),
            expires: credential
                .ends
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            days_left: credential
                .ends
                .map(|t| crate::ladder::days_left(t, Utc::now())),
            reminder: place(position, ladder),
            owners: Vec::new(),
            owner_source: String::new(),
            notes: vec![format!(
                "{holder} {} (key id {})",
                credential.app_id, credential.key_id
            )],
        }
    }

    /// The row of the applications, when Entra ID could not be read.
    pub fn entra_unread(why: &str) -> Self {
        Self::not_read("Entra ID".to_owned(), "Application", why.to_owned())
    }

    /// The row of an object.
    pub fn new(
        vault: &VaultRef,
        object: &VaultObject,
        position: Option<Position>,
        auto_renews: Option<bool>,
        owners: Vec<String>,
        ladder: &Ladder,
    ) -> Self {
        let reminder = place(position, ladder);
        let mut notes = Vec::new();
        if !object.enabled {
            notes.push("disabled: no reminders".to_owned());
        }
        match auto_renews {
            Some(true) => notes.push("renews automatically (policy)".to_owned()),
            Some(false) => notes.push("renewed by hand (policy)".to_owned()),
            None => {}
        }
        if object.kind == ObjectKind::Certificate {
            notes.push("its key and secret expire with it".to_owned());
        }
        Self {
            vault: vault.name.clone(),
            object_type: object.kind.as_str(),
            name: object.name.clone(),
            expires: object
                .expires
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            days_left: object
                .expires
                .map(|t| crate::ladder::days_left(t, Utc::now())),
            reminder,
            owners,
            owner_source: String::new(),
            notes,
        }
    }

    /// The row of a subscription whose vaults could not be listed (`why` starts with its id).
    pub fn unlisted(why: &str) -> Self {
        let note = format!("cannot list the vaults of subscription {why}");
        Self::not_read(String::new(), "Subscription", note)
    }

    /// The row of a vault whose events do not reach this app, or cannot be seen to.
    pub fn uncovered(vault: &str, stand: &Covered) -> Option<Self> {
        let note = match stand {
            // Said once in the sweep's log, not on every vault's row.
            Covered::Yes | Covered::NotChecked(_) => return None,
            Covered::No(why) => format!("no Event Grid delivery to this app: {why}"),
            Covered::Unseen(why) => why.clone(),
        };
        Some(Self::not_read(vault.to_owned(), "EventSubscription", note))
    }

    /// The row of a subscription whose Resource Manager events do not reach this app, or
    /// cannot be seen to.
    pub fn access_uncovered(subscription: &str, stand: &Covered) -> Option<Self> {
        let note = match stand {
            Covered::Yes | Covered::NotChecked(_) => return None,
            Covered::No(why) => format!(
                "subscription {subscription}: no Event Grid delivery of its Resource Manager \
                 events (role assignments, vault settings) to this app: {why}"
            ),
            Covered::Unseen(why) => format!("subscription {subscription}: {why}"),
        };
        Some(Self::not_read(String::new(), "EventSubscription", note))
    }

    /// The row of a list that could not be read.
    pub fn unreadable(vault: &VaultRef, kind: ObjectKind, error: &VaultError) -> Self {
        let note = format!("cannot read the {}: {error}", kind.collection());
        Self::not_read(vault.name.clone(), kind.as_str(), note)
    }

    /// The row of something not read, with why.
    fn not_read(vault: String, object_type: &'static str, note: String) -> Self {
        Self {
            vault,
            object_type,
            name: String::new(),
            expires: None,
            days_left: None,
            reminder: "unknown".to_owned(),
            owners: Vec::new(),
            owner_source: String::new(),
            notes: vec![note],
        }
    }
}

/// Where an expiry stands on the ladder, in words: `step 7 now (then 1)`, `step 60 in 12 days`.
fn place(position: Option<Position>, ladder: &Ladder) -> String {
    match position {
        None => "none: no expiry date".to_owned(),
        Some(Position::Ahead { step, due_in }) => format!("step {step} in {due_in} days"),
        Some(Position::In { step, .. }) => match ladder.after(step) {
            Some(next) => format!("step {step} now (then {next})"),
            None => format!("step {step} now (the last)"),
        },
        Some(Position::Past) => "none: past the last step".to_owned(),
    }
}
