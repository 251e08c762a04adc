//! The daily health notice: what kv-notify met in the last day that needs a person, sent by
//! the timer to the security contacts, at most once a day and only when there is something to
//! say. Its sources: the troubles the ledger keeps (from every instance: recipients and
//! webhooks that refused for good, webhooks failing for more than a day, owner tags naming
//! foreign addresses, events with unusable dates) and the sweep that just ran (subscriptions
//! and vaults not read, a run out of budget).

use super::{SweepReport, fate};
use crate::dispatch::Dispatcher;
use crate::event::Event;
use crate::event::{Diagnosis, EventType, KeyVaultEvent};
use crate::ledger::{Trouble, TroubleKind};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// How far back a notice looks: one day, the timer's period.
const WINDOW: TimeDelta = TimeDelta::days(1);

/// Lines of one kind shown before the rest are counted.
const LINES_PER_KIND: usize = 10;

/// What the notice is made of.
#[derive(Debug, Default)]
pub struct Findings<'a> {
    /// The troubles the ledger keeps (all of them: the notice picks).
    pub troubles: Vec<Trouble>,
    /// Why the troubles could not be read, if they could not.
    pub unreadable: Option<String>,
    /// The sweep that just ran, if any.
    pub sweep: Option<&'a SweepReport>,
}

/// The notice for `findings` at `now`, or `None` when nothing needs a person. Keyed by the
/// day, so that it goes once a day whichever run or instance makes it.
pub fn notice(findings: &Findings<'_>, now: DateTime<Utc>) -> Option<KeyVaultEvent> {
    let lines = lines(findings, now);
    if lines.is_empty() {
        return None;
    }
    let cause = format!(
        "In the last 24 hours kv-notify met {} that {} a person. Until {} fixed, alerts may be \
         going nowhere, or objects may be going unwatched.",
        match lines.len() {
            1 => "one problem".to_owned(),
            n => format!("{n} problems"),
        },
        if lines.len() == 1 { "needs" } else { "need" },
        if lines.len() == 1 {
            "it is"
        } else {
            "they are"
        },
    );
    let key = format!("health/{}", now.format("%Y-%m-%d"));
    let diagnosis = Diagnosis { cause, fix: lines };
    Some(KeyVaultEvent::own(
        key,
        EventType::HealthNotice,
        None,
        diagnosis,
        now,
    ))
}

/// What became of the day's health notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Nothing needed a person.
    NotNeeded,
    /// Sent now.
    Sent,
    /// Today's went already.
    SentBefore,
    /// Not sent; the next run tries again.
    Failed,
    /// Refused for good, or with nobody to go to.
    Refused,
}

impl Notice {
    /// In words: `not needed`, `sent`, `sent before`, `failed` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotNeeded => "not needed",
            Self::Sent => "sent",
            Self::SentBefore => "sent before",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    fn of_fate(fate: &str) -> Self {
        match fate {
            "sent" => Self::Sent,
            "sent before" => Self::SentBefore,
            "refused" => Self::Refused,
            _ => Self::Failed,
        }
    }
}

/// Sends the day's health notice through `dispatcher` if something needs a person; `sweep` is
/// the run that just ended, if any.
pub async fn send(dispatcher: &Dispatcher, sweep: Option<&SweepReport>) -> Notice {
    let (troubles, unreadable) = match dispatcher.ledger().troubles().await {
        Ok(troubles) => (troubles, None),
        Err(err) => {
            tracing::error!(error = %err, "cannot read the troubles for the health notice");
            (Vec::new(), Some(err.to_string()))
        }
    };
    let findings = Findings {
        troubles,
        unreadable,
        sweep,
    };
    let Some(notice) = notice(&findings, Utc::now()) else {
        return Notice::NotNeeded;
    };
    for line in notice.diagnosis.iter().flat_map(|d| &d.fix) {
        tracing::warn!(code = "health", "{line}");
    }
    let reports = dispatcher
        .handle_all(vec![Event::KeyVault(Box::new(notice))])
        .await;
    reports
        .first()
        .map_or(Notice::Failed, |r| Notice::of_fate(fate(r)))
}

/// One line per problem, most urgent first: what kv-notify cannot see, then where alerts are
/// lost, then what it ignored.
fn lines(findings: &Findings<'_>, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(sweep) = findings.sweep {
        for why in &sweep.subscriptions_not_listed {
            lines.push(format!(
                "Subscription {why}. Give the app's identity the Reader role on the \
                 subscription."
            ));
        }
        for vault in sweep.vaults.iter().filter(|v| v.unread()) {
            let fix = match vault.blind_spot_alert {
                Some(_) => " The blind-spot alert about it says how to fix it.",
                None => " The next run tries again.",
            };
            let more = match vault.more_errors {
                0 => String::new(),
                n => format!(" (and {n} more errors: the function's log names them)"),
            };
            lines.push(format!(
                "Vault {} was not read in full by today's sweep: {}{more}.{fix}",
                vault.vault,
                grouped(&vault.errors)
            ));
        }
        for vault in sweep.vaults.iter().filter(|v| !v.bad_dates.is_empty()) {
            let more = match vault.more_bad_dates {
                0 => String::new(),
                n => format!(", and {n} more"),
            };
            lines.push(format!(
                "Vault {} lists objects with dates kv-notify cannot use: {}{more}. They get no \
                 reminders until their dates are set right (az keyvault secret set-attributes \
                 --expires).",
                vault.vault,
                vault.bad_dates.join("; ")
            ));
        }
        if let Some(entra) = &sweep.entra {
            if let Some(why) = &entra.not_read {
                lines.push(format!(
                    "Entra ID's applications were not read by today's sweep: {why}. Their \
                     expiring secrets and certificates are not being watched."
                ));
            }
            if entra.owners_hidden > 0 {
                lines.push(format!(
                    "{} Entra ID application(s) with a credential due have owners kv-notify may \
                     not read (Graph gave their ids alone): their notices went to the rules' \
                     owners or OWNER_EMAILS. Grant the app's identity the User.Read.All \
                     application permission to mail the applications' own owners.",
                    entra.owners_hidden
                ));
            }
            if !entra.owners_unread.is_empty() {
                let more = match entra.more_owners_unread {
                    0 => String::new(),
                    n => format!(", and {n} more"),
                };
                lines.push(format!(
                    "The owners of some Entra ID applications could not be read, so their \
                     notices went to the rules' owners or OWNER_EMAILS: {}{more}.",
                    entra.owners_unread.join("; ")
                ));
            }
        }
        if sweep.vaults.iter().any(|v| v.out_of_budget) {
            lines.push(format!(
                "Today's sweep ran out of its {} s budget (SWEEP_BUDGET_SECS) before it was \
                 done. Raise the budget (and functionTimeout in host.json), or split the vaults \
                 between apps.",
                sweep.budget_secs
            ));
        }
    }
    if let Some(why) = &findings.unreadable {
        lines.push(format!(
            "kv-notify could not read its own record of troubles ({why}): this notice may be \
             missing some."
        ));
    }
    let recent = |t: &&Trouble| t.last >= now - WINDOW;
    let mut troubles: Vec<&Trouble> = findings.troubles.iter().filter(recent).collect();
    troubles.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    for kind in [
        TroubleKind::WebhookFailing,
        TroubleKind::WebhookRefused,
        TroubleKind::MailRefused,
        TroubleKind::TagIgnored,
        TroubleKind::UnusableDates,
    ] {
        let of_kind: Vec<&&Trouble> = troubles
            .iter()
            .filter(|t| t.kind == kind)
            // A failing webhook is news once it has failed for a day: Event Grid gives up
            // on an event after 24 hours of retries.
            .filter(|t| kind != TroubleKind::WebhookFailing || t.since <= now - WINDOW)
            .collect();
        for trouble in of_kind.iter().take(LINES_PER_KIND) {
            lines.push(line(trouble));
        }
        if of_kind.len() > LINES_PER_KIND {
            lines.push(format!(
                "… and {} more like the above (the function's log names them all).",
                of_kind.len() - LINES_PER_KIND
            ));
        }
    }
    lines
}

/// A vault's list errors (`secrets: why`), lists with the same error said together:
/// `secrets, keys and certificates: why`.
fn grouped(errors: &[String]) -> String {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for error in errors {
        let (list, why) = error.split_once(": ").unwrap_or(("", error));
        match groups.iter_mut().find(|(_, w)| *w == why) {
            Some((lists, _)) => lists.push(list),
            None => groups.push((vec![list], why)),
        }
    }
    let said: Vec<String> = groups
        .into_iter()
        .map(|(lists, why)| match lists.split_last() {
            Some((last, [])) => format!("{last}: {why}"),
            Some((last, rest)) => format!("{} and {last}: {why}", rest.join(", ")),
            None => why.to_owned(),
        })
        .collect();
    said.join("; ")
}

fn line(trouble: &Trouble) -> String {
    let Trouble {
        subject, detail, ..
    } = trouble;
    let since = trouble.since.to_rfc3339_opts(SecondsFormat::Secs, true);
    match trouble.kind {
        TroubleKind::WebhookFailing => format!(
            "Webhook channel {subject} has been failing since {since} ({detail}). Event Grid \
             stops redelivering an event after 24 hours: alerts for it are being lost."
        ),
        TroubleKind::WebhookRefused => format!(
            "Webhook channel {subject} refused an alert for good ({detail}). A retired Teams or \
             Slack webhook answers 404 or 410: replace its URL in the rules (or \
             ALERT_WEBHOOK_URL)."
        ),
        TroubleKind::MailRefused => format!(
            "Mail to {subject} was refused for good ({detail}). Correct or remove the address \
             (OWNER_EMAILS, SECURITY_EMAILS, the rules, or an owner tag)."
        ),
        TroubleKind::TagIgnored => {
            format!("The owner tag of {subject}: {detail}. Its alerts went to the rules' owners.")
        }
        TroubleKind::UnusableDates => format!(
            "Events carried an unusable {subject} ({detail}): their days left could not be \
             counted."
        ),
    }
}

#[cfg(test)]
mod tests;
