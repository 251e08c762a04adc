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
use crate::storage::{Container, Queue};
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
    /// What waits in the queues where failed and unusable queued events are kept.
    pub waiting: Vec<Waiting>,
}

/// Where events that could not be handled wait: the host's poison queue and kv-notify's
/// rejected one, and the container Event Grid dead-letters to.
#[derive(Clone, Default)]
pub struct SetAside {
    /// The poison and rejected queues.
    pub queues: Vec<Queue>,
    /// The dead-letter container.
    pub dead_letters: Option<Container>,
}

/// What one queue (or container) of set-aside messages holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    /// The queue.
    pub queue: String,
    /// How many messages, about.
    pub count: u64,
    /// When the oldest of those looked at was put there.
    pub oldest: Option<DateTime<Utc>>,
    /// The vaults and event types of those looked at (`SecretNearExpiry on prod-kv`), each
    /// once.
    pub events: Vec<String>,
    /// Why the queue could not be looked into, if it could not.
    pub unreadable: Option<String>,
}

impl Waiting {
    /// Looks into `queue`: its count, and its first 32 messages.
    pub async fn look(queue: &Queue) -> Self {
        let mut waiting = Waiting {
            queue: queue.name().to_owned(),
            ..Waiting::default()
        };
        match queue.count().await {
            Ok(0) => return waiting,
            Ok(count) => waiting.count = count,
            Err(error) => {
                waiting.unreadable = Some(error.why);
                return waiting;
            }
        }
        match queue.peek(32).await {
            Ok(messages) => {
                waiting.oldest = messages.iter().filter_map(|m| m.inserted).min();
                for message in &messages {
                    let said = describe(&message.text);
                    if !waiting.events.contains(&said) {
                        waiting.events.push(said);
                    }
                }
            }
            Err(error) => waiting.unreadable = Some(error.why),
        }
        waiting
    }
}

/// Dead letters read to say which vaults and types they are about.
const DEAD_LETTERS_READ: usize = 10;

impl Waiting {
    /// Looks into the container Event Grid dead-letters to: its blobs, and the first few read.
    pub async fn look_in(container: &Container) -> Self {
        let mut waiting = Waiting {
            queue: format!("container {}", container.name()),
            ..Waiting::default()
        };
        let blobs = match container.list().await {
            Ok(blobs) => blobs,
            Err(error) => {
                waiting.unreadable = Some(error.why);
                return waiting;
            }
        };
        waiting.count = blobs.len() as u64;
        waiting.oldest = blobs.iter().filter_map(|b| b.created).min();
        for blob in blobs.iter().take(DEAD_LETTERS_READ) {
            let said = match container.read(&blob.name).await {
                Ok(text) => dead_letter_events(&text)
                    .iter()
                    .map(|event| describe(&event.to_string()))
                    .collect(),
                Err(_) => vec!["unreadable".to_owned()],
            };
            for said in said {
                if !waiting.events.contains(&said) {
                    waiting.events.push(said);
                }
            }
        }
        waiting
    }
}

/// The events of a dead-letter blob: Event Grid writes a JSON array of them (an object is one).
pub fn dead_letter_events(text: &str) -> Vec<serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(events)) => events,
        Ok(event @ serde_json::Value::Object(_)) => vec![event],
        _ => Vec::new(),
    }
}

/// `SecretNearExpiry on prod-kv` for a message holding an event, else `not an event`.
fn describe(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "not an event".to_owned();
    };
    let value = match value {
        serde_json::Value::String(inner) => serde_json::from_str(&inner).unwrap_or_default(),
        other => other,
    };
    let text_of = |key: &str| value.get(key).and_then(|v| v.as_str());
    let kind = text_of("eventType").or_else(|| text_of("type"));
    let vault = value
        .get("data")
        .and_then(|d| d.get("VaultName").or_else(|| d.get("vaultName")))
        .and_then(|v| v.as_str())
        .or_else(|| {
            text_of("topic")
                .or_else(|| text_of("source"))
                .and_then(|t| t.rsplit('/').next())
        });
    match (kind, vault) {
        (Some(kind), Some(vault)) => format!(
            "{} on {}",
            crate::text::clean(kind.rsplit('.').next().unwrap_or(kind)),
            crate::text::clean(vault)
        ),
        (Some(kind), None) => crate::text::clean(kind),
        _ => "not an event".to_owned(),
    }
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
pub async fn send(
    dispatcher: &Dispatcher,
    sweep: Option<&SweepReport>,
    set_aside: &SetAside,
) -> Notice {
    let (troubles, unreadable) = match dispatcher.ledger().troubles().await {
        Ok(troubles) => (troubles, None),
        Err(err) => {
            tracing::error!(error = %err, "cannot read the troubles for the health notice");
            (Vec::new(), Some(err.to_string()))
        }
    };
    let looks: Vec<_> = set_aside.queues.iter().map(Waiting::look).collect();
    let mut waiting = futures_util::future::join_all(looks).await;
    if let Some(container) = &set_aside.dead_letters {
        waiting.push(Waiting::look_in(container).await);
    }
    let findings = Findings {
        troubles,
        unreadable,
        sweep,
        waiting,
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
        if let Some(coverage) = &sweep.coverage {
            let more = |n: usize| match n {
                0 => String::new(),
                n => format!("; and {n} more"),
            };
            if !coverage.uncovered.is_empty() {
                lines.push(format!(
                    "No Event Grid subscription delivers these vaults' expiry and access events \
                     to kv-notify, so their access-policy changes and expiry events go unsaid \
                     (they are still swept): {}{}. Subscribe each to this app: with azd, add \
                     it to KV_NOTIFY_VAULTS and run azd up; by hand, see \
                     docs/deploy-by-hand.md (az eventgrid system-topic event-subscription \
                     create).",
                    coverage.uncovered.join("; "),
                    more(coverage.more_uncovered)
                ));
            }
            if !coverage.unseen.is_empty() {
                lines.push(format!(
                    "kv-notify cannot see whether Event Grid delivers these vaults' events: \
                     {}{}.",
                    coverage.unseen.join("; "),
                    more(coverage.more_unseen)
                ));
            }
            if !coverage.access_uncovered.is_empty() {
                lines.push(format!(
                    "No Event Grid subscription delivers these subscriptions' Resource Manager \
                     events to kv-notify, so role assignments on their vaults and changes to \
                     the vaults' network and access settings go unsaid (RBAC vaults send no \
                     other word of them): {}. Subscribe each to this app: with azd, keep \
                     KV_NOTIFY_RESOURCE_EVENTS=on (the default) and run azd up; by hand, see \
                     docs/access-changes.md.",
                    coverage.access_uncovered.join("; ")
                ));
            }
            if !coverage.access_unseen.is_empty() {
                lines.push(format!(
                    "kv-notify cannot see whether Event Grid delivers these subscriptions' \
                     Resource Manager events: {}.",
                    coverage.access_unseen.join("; ")
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
    for waiting in &findings.waiting {
        lines.extend(waiting_line(waiting));
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

/// The line of a queue of set-aside messages, when it holds any (or cannot be looked into).
fn waiting_line(waiting: &Waiting) -> Option<String> {
    let queue = &waiting.queue;
    if let Some(why) = &waiting.unreadable {
        return Some(format!(
            "kv-notify could not look into queue {queue} ({why}): give the app's identity \
             Storage Queue Data Contributor on its storage account."
        ));
    }
    if waiting.count == 0 {
        return None;
    }
    let oldest = waiting
        .oldest
        .map(|t| {
            format!(
                ", the oldest from {}",
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            )
        })
        .unwrap_or_default();
    let what = match waiting.events.as_slice() {
        [] => String::new(),
        events => format!(": {}", events.join(", ")),
    };
    let place = if queue.starts_with("container ") {
        queue.clone()
    } else {
        format!("queue {queue}")
    };
    let meaning = if queue.starts_with("container ") {
        "Event Grid gave up delivering these after a day (the app down or refusing, a \
         subscription broken): once the cause is fixed, `kv-notify requeue` delivers them, once \
         each."
    } else if queue.ends_with("-poison") {
        "Each failed every try for a day (a mail server or webhook down, a ledger unreachable): \
         once the cause is fixed, `kv-notify requeue` delivers them, once each."
    } else {
        "They hold no event kv-notify can use. Look at them (az storage message peek \
         --queue-name kv-notify-events-rejected --account-name <account> --auth-mode login); \
         `kv-notify requeue` puts them back once a kv-notify that reads them is deployed."
    };
    Some(format!(
        "{} message(s) wait in {place}{oldest}{what}. {meaning}",
        waiting.count
    ))
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
