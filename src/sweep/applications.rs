//! Entra ID's part of the sweep (`ENTRA_CREDENTIALS`): the credentials of the tenant's
//! applications climb the same reminder ladder as vault objects, through the same rules and
//! ledger, with one notice per application and step.
//!
//! A notice lists every credential of its holder that reached the step and was not told of at
//! it yet. Each listed credential is claimed in the ledger (`listed`) before the notice goes
//! and marked done once it went, so a credential is told of once per step, and of two sweeps at
//! once only one sends (the other finds the credentials claimed). A notice that fails gives its
//! credentials back, and the next sweep makes the same notice, which the ledger then finds
//! delivered to whoever had it.

use super::events::BLIND_SPOT_DAYS;
use super::report::{self, EntraSummary, InventoryRow};
use crate::dispatch::Dispatcher;
use crate::entra::{self, AppCredential, EntraClient, EntraError};
use crate::event::{Application, Diagnosis, EventType, Holder, KeyVaultEvent, Reminder};
use crate::ladder::Position;
use crate::ledger::{ActionKey, ActionKind, Claim, Recorded};
use crate::vault::VaultObject;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Applications whose notices are made (owners read, ledger claimed) at once.
const NOTICES_AT_ONCE: usize = 16;

/// Entra ID's credentials, read once a sweep.
pub(super) struct Applications {
    client: Arc<EntraClient>,
}

/// Vault secrets tagged `CredentialId`: which Entra credential each holds.
#[derive(Debug, Default)]
pub(super) struct Holders {
    /// By the credential's key id (lower case): `vault/secret`, and the object id its
    /// `ProviderAddress` tag names, if any.
    by_key_id: HashMap<String, Vec<(String, Option<String>)>>,
}

impl Holders {
    /// Notes that `vault`'s secret `name`, with `tags`, holds an Entra credential, when its
    /// `CredentialId` tag says so.
    pub fn note(&mut self, vault: &str, name: &str, tags: &BTreeMap<String, String>) {
        let tag = |wanted: &str| {
            tags.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.trim().to_lowercase())
        };
        let Some(key_id) = tag("CredentialId").filter(|id| uuid_like(id)) else {
            return;
        };
        let entry = (format!("{vault}/{name}"), tag("ProviderAddress"));
        self.by_key_id.entry(key_id).or_default().push(entry);
    }

    /// Adds what another vault's secrets hold.
    pub fn extend(&mut self, other: Holders) {
        for (key_id, secrets) in other.by_key_id {
            self.by_key_id.entry(key_id).or_default().extend(secrets);
        }
    }

    /// The vault secrets that hold `credential`: those tagged with its key id, unless their
    /// `ProviderAddress` names another application.
    fn of(&self, credential: &AppCredential) -> Vec<&str> {
        let Some(secrets) = self.by_key_id.get(&credential.key_id) else {
            return Vec::new();
        };
        let ours = |provider: &Option<String>| {
            provider.as_deref().is_none_or(|p| {
                p.eq_ignore_ascii_case(&credential.holder_id)
                    || p.eq_ignore_ascii_case(&credential.app_id)
            })
        };
        secrets
            .iter()
            .filter(|(_, provider)| ours(provider))
            .map(|(secret, _)| secret.as_str())
            .collect()
    }
}

/// The credentials by key id (lower case, as they are read), for the vault secrets that hold
/// one.
pub(super) fn by_key_id(credentials: &[AppCredential]) -> HashMap<&str, &AppCredential> {
    credentials.iter().map(|c| (c.key_id.as_str(), c)).collect()
}

/// What a vault reminder says of the Entra ID credential its secret holds (its `CredentialId`
/// tag, among `credentials` by key id).
pub(super) fn holding(
    object: &VaultObject,
    credentials: &HashMap<&str, &AppCredential>,
) -> Vec<String> {
    let mut holders = Holders::default();
    holders.note("", &object.name, &object.tags);
    holders
        .by_key_id
        .iter()
        .filter_map(|(key_id, secrets)| {
            let credential = credentials.get(key_id.as_str())?;
            let (_, provider) = secrets.first()?;
            let ours = provider.as_deref().is_none_or(|p| {
                p.eq_ignore_ascii_case(&credential.holder_id)
                    || p.eq_ignore_ascii_case(&credential.app_id)
            });
            ours.then(|| format!("This secret holds {}.", credential.described()))
        })
        .collect()
}

/// Whether `text` looks like a GUID.
fn uuid_like(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
}

/// One holder's credentials on one step, and the reminder they make.
struct Group<'a> {
    credentials: Vec<&'a AppCredential>,
    reminder: Reminder,
}

/// A group whose credentials still to tell this sweep holds in the ledger.
struct Claimed<'a> {
    group: &'a Group<'a>,
    credentials: Vec<(&'a AppCredential, ActionKey)>,
}

impl Applications {
    /// Entra ID's part of the sweep, read through `client`.
    pub fn new(client: Arc<EntraClient>) -> Self {
        Self { client }
    }

    /// Every credential of the applications, within the sweep's `deadline`.
    pub async fn read(&self, deadline: Instant) -> Result<Vec<AppCredential>, EntraError> {
        match tokio::time::timeout_at(deadline, self.client.credentials()).await {
            Ok(read) => read,
            Err(_) => Err(EntraError::Failed(
                "out of budget (SWEEP_BUDGET_SECS) before the applications were read".to_owned(),
            )),
        }
    }

    /// The notices of the credentials `read` on a step of the ladder (or, when Entra ID could
    /// not be read for a reason a person must fix, the blind-spot alert), with what became
    /// of them. `holders` are the vault secrets that hold a credential.
    ///
    /// Three passes: the groups' credentials are claimed in the ledger; the owners of the
    /// applications with a notice to send are read, twenty a request; the notices are sent and
    /// their credentials marked told of (or given back when a notice failed).
    pub async fn remind(
        &self,
        read: &Result<Vec<AppCredential>, EntraError>,
        holders: &Holders,
        dispatcher: &Dispatcher,
        deadline: Instant,
        dry_run: bool,
    ) -> EntraSummary {
        let now = Utc::now();
        let credentials = match read {
            Ok(credentials) => credentials,
            Err(error) => {
                let mut summary = EntraSummary::not_read(error.to_string());
                if let EntraError::Denied(why) = error
                    && !dry_run
                {
                    let alert = unreadable_event(why, now);
                    let reports = dispatcher.handle_until([alert], deadline).await;
                    summary.blind_spot_alert = reports.first().map(report::fate);
                }
                return summary;
            }
        };
        let groups = groups(credentials, dispatcher, now);
        let mut summary = EntraSummary {
            credentials: credentials.len(),
            due: groups.iter().map(|g| g.credentials.len()).sum(),
            ..EntraSummary::default()
        };
        // Futures made up front: a stream of futures borrowing the groups is then plainly `Send`.
        let claims: Vec<_> = groups
            .iter()
            .map(|group| claim(group, dispatcher, deadline, dry_run))
            .collect();
        let mut claimed = Vec::new();
        for (told_before, outcome) in stream::iter(claims)
            .buffer_unordered(NOTICES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
        {
            summary.told_before += told_before;
            match outcome {
                Ok(Some(group)) => claimed.push(group),
                Ok(None) => {}
                Err(()) => summary.fates.failed += 1,
            }
        }
        let wanted: Vec<(Holder, String)> = claimed
            .iter()
            .map(|c| (c.group.holder(), c.group.holder_id().to_owned()))
            .collect();
        let mut owners = self.client.owners(&wanted).await;
        let mut addressed = Vec::with_capacity(claimed.len());
        for claim in claimed {
            let first = claim.credentials[0].0;
            let mut tag_owners = None;
            match owners.remove(&*first.holder_id) {
                Some(Ok(found)) => {
                    summary.owners_hidden +=
                        usize::from(found.hidden > 0 && found.mails.is_empty());
                    let mailboxes: Vec<_> =
                        found.mails.iter().filter_map(|m| m.parse().ok()).collect();
                    tag_owners = Some(mailboxes).filter(|m: &Vec<_>| !m.is_empty());
                }
                Some(Err(error)) => {
                    let why = format!("{}: {error}", first.app_name);
                    report::keep(
                        &mut summary.owners_unread,
                        &mut summary.more_owners_unread,
                        why,
                    );
                }
                None => {}
            }
            summary.listed += claim.credentials.len();
            if dry_run {
                let notice = claim.notice(tag_owners, credentials, holders);
                summary.would_mail += notice.map_or(0, |n| dispatcher.recipients(&n).len());
            } else {
                addressed.push((claim, tag_owners));
            }
        }
        // Each notice is made as it is sent, not all of them first.
        let sends: Vec<_> = addressed
            .into_iter()
            .map(|(claim, tag_owners)| {
                send(
                    claim,
                    tag_owners,
                    credentials,
                    holders,
                    dispatcher,
                    deadline,
                )
            })
            .collect();
        for fate in stream::iter(sends)
            .buffer_unordered(NOTICES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
        {
            match fate {
                report::SENT => summary.fates.sent += 1,
                report::SENT_BEFORE => summary.fates.duplicate += 1,
                report::FAILED => summary.fates.failed += 1,
                _ => summary.fates.refused += 1,
            }
        }
        summary
    }

    /// Inventory rows of the credentials ending within `horizon` (or never), with their place
    /// on the ladder and who would hear of them.
    pub async fn inventory(
        &self,
        dispatcher: &Dispatcher,
        horizon: DateTime<Utc>,
    ) -> Vec<InventoryRow> {
        let now = Utc::now();
        let credentials = match self.client.credentials().await {
            Ok(credentials) => credentials,
            Err(error) => return vec![InventoryRow::entra_unread(&error.to_string())],
        };
        let listed: Vec<&AppCredential> = credentials
            .iter()
            .filter(|c| c.ends.is_none_or(|t| t <= horizon))
            .collect();
        let mut wanted: Vec<(Holder, String)> = listed
            .iter()
            .map(|c| (c.holder, c.holder_id.to_string()))
            .collect();
        wanted.sort();
        wanted.dedup();
        let owners = self.client.owners(&wanted).await;
        listed
            .into_iter()
            .map(|credential| {
                let position = credential.ends.map(|t| dispatcher.ladder_position(t, now));
                let mut row =
                    InventoryRow::app_credential(credential, position, dispatcher.ladder());
                match owners.get(&*credential.holder_id) {
                    Some(Ok(found)) if !found.mails.is_empty() => {
                        row.owners = found.mails.clone();
                        row.owner_source = "the application's owners".to_owned();
                    }
                    found => {
                        let mut probe = KeyVaultEvent::new(
                            String::new(),
                            credential.step_key(0),
                            EventType::AppCredentialReminder,
                        );
                        probe.vault = Some(credential.app_name.to_string());
                        probe.object = Some(credential.label().to_owned());
                        probe.application = Some(Application {
                            app_id: credential.app_id.to_string(),
                            object_id: credential.holder_id.to_string(),
                            holder: credential.holder,
                            credentials: Vec::new(),
                        });
                        row.owners = dispatcher.recipients(&probe);
                        row.owner_source = dispatcher.owner_source(&probe);
                        match found {
                            Some(Ok(found)) if found.hidden > 0 => row.notes.push(format!(
                                "{} owner(s) not readable: grant User.Read.All for their addresses",
                                found.hidden
                            )),
                            Some(Err(error)) => row.notes.push(format!("owners not read: {error}")),
                            _ => {}
                        }
                    }
                }
                row
            })
            .collect()
    }
}

impl Claimed<'_> {
    /// The notice of the claimed credentials, addressed to `tag_owners` (the application's
    /// owners) when Graph gave any; each credential with its notes among `all` and `holders`.
    fn notice(
        &self,
        tag_owners: Option<Vec<lettre::message::Mailbox>>,
        all: &[AppCredential],
        holders: &Holders,
    ) -> Option<KeyVaultEvent> {
        let due: Vec<(&AppCredential, Vec<String>)> = self
            .credentials
            .iter()
            .map(|(credential, _)| (*credential, notes(credential, all, holders)))
            .collect();
        let mut notice = entra::notice(&due, self.group.reminder, Utc::now())?;
        notice.tag_owners = tag_owners;
        Some(notice)
    }
}

impl Group<'_> {
    fn holder(&self) -> Holder {
        self.credentials[0].holder
    }

    fn holder_id(&self) -> &str {
        &self.credentials[0].holder_id
    }
}

/// Claims the credentials of `group` still to tell, in one order for every instance: of two
/// sweeps at once, the one that takes the first credential still to tell makes the notice, and
/// the other leaves the group whole to it (taking the rest would split the notice in two).
/// Returns how many were told of before, and the claimed group (`None`: nothing to tell;
/// `Err`: the ledger failed, the next sweep tries again).
async fn claim<'a>(
    group: &'a Group<'a>,
    dispatcher: &Dispatcher,
    deadline: Instant,
    dry_run: bool,
) -> (usize, Result<Option<Claimed<'a>>, ()>) {
    let mut before = 0;
    let mut claimed = Vec::new();
    let mut credentials = group.credentials.clone();
    credentials.sort_by(|a, b| (&a.key_id, a.ends).cmp(&(&b.key_id, b.ends)));
    for credential in credentials {
        let key = listed_key(credential, group.reminder);
        if dry_run {
            claimed.push((credential, key));
            continue;
        }
        let lease = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(60);
        match dispatcher.ledger().claim(&key, Utc::now(), lease).await {
            Ok(Claim::Acquired { .. }) => claimed.push((credential, key)),
            Ok(Claim::Done(_)) => before += 1,
            Ok(Claim::Busy) => {
                give_back(dispatcher, &claimed).await;
                return (group.credentials.len(), Ok(None));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot claim an Entra credential's reminder step");
                give_back(dispatcher, &claimed).await;
                return (before, Err(()));
            }
        }
    }
    // Told of in the claims' order; the notice sorts them by end date.
    let found = (!claimed.is_empty()).then_some(Claimed {
        group,
        credentials: claimed,
    });
    (before, Ok(found))
}

/// Makes and sends one notice, then marks its credentials told of (or gives them back when it
/// failed); returns its fate.
async fn send(
    claim: Claimed<'_>,
    tag_owners: Option<Vec<lettre::message::Mailbox>>,
    all: &[AppCredential],
    holders: &Holders,
    dispatcher: &Dispatcher,
    deadline: Instant,
) -> &'static str {
    let Some(notice) = claim.notice(tag_owners, all, holders) else {
        return report::SENT_BEFORE;
    };
    let claimed = claim.credentials;
    let reports = dispatcher.handle_until([notice], deadline).await;
    let fate = reports.first().map_or(report::FAILED, report::fate);
    if fate == report::FAILED {
        give_back(dispatcher, &claimed).await;
        return fate;
    }
    for (_, key) in &claimed {
        let done = dispatcher
            .ledger()
            .complete(key, Recorded::Sent, Utc::now());
        if let Err(error) = done.await {
            // The claim's lease runs out: the next sweep makes the same notice, and the
            // ledger finds it sent.
            tracing::warn!(%error, "cannot record an Entra credential's reminder step");
        }
    }
    fate
}

/// Gives the claims of credentials back, so the next sweep tells of them.
async fn give_back(dispatcher: &Dispatcher, claimed: &[(&AppCredential, ActionKey)]) {
    for (_, key) in claimed {
        if let Err(error) = dispatcher.ledger().release(key).await {
            // The claim's lease runs out instead.
            tracing::warn!(%error, "cannot give back an Entra credential's reminder step");
        }
    }
}

/// The credentials on a step of the ladder at `now`, by holder and step.
fn groups<'a>(
    credentials: &'a [AppCredential],
    dispatcher: &Dispatcher,
    now: DateTime<Utc>,
) -> Vec<Group<'a>> {
    let mut groups: BTreeMap<(&str, i64), Group<'a>> = BTreeMap::new();
    for credential in credentials {
        let Some(ends) = credential.ends else {
            continue;
        };
        let Position::In {
            step,
            kept_from,
            next,
        } = dispatcher.ladder_position(ends, now)
        else {
            continue;
        };
        let group = groups
            .entry((&*credential.holder_id, step))
            .or_insert_with(|| Group {
                credentials: Vec::new(),
                reminder: Reminder {
                    step,
                    kept_from,
                    next,
                    auto_renews: None,
                },
            });
        // The records of the step are kept as long as its latest credential needs them.
        group.reminder.kept_from = group.reminder.kept_from.max(kept_from);
        group.credentials.push(credential);
    }
    groups.into_values().collect()
}

/// The ledger's record that `credential` was listed in its notice of `reminder`'s step.
fn listed_key(credential: &AppCredential, reminder: Reminder) -> ActionKey {
    ActionKey {
        event: credential.step_key(reminder.step),
        action: ActionKind::Listed,
        target: String::new(),
        event_time: Some(reminder.kept_from),
    }
}

/// What a notice says of one credential beyond its dates: a newer one of its kind exists, a
/// vault secret holds it.
fn notes(credential: &AppCredential, all: &[AppCredential], holders: &Holders) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(newer) = credential.newer(all) {
        notes.push(entra::newer_note(credential, newer));
    }
    for secret in holders.of(credential) {
        notes.push(format!(
            "Key Vault secret {secret} holds it (its CredentialId tag): put the new one there."
        ));
    }
    notes
}

/// The alert to the security contacts when Graph refuses to list the applications: at most
/// once per [`BLIND_SPOT_DAYS`] days, whichever run or instance sees it.
fn unreadable_event(why: &str, now: DateTime<Utc>) -> KeyVaultEvent {
    let period = now.timestamp().div_euclid(BLIND_SPOT_DAYS * 86_400);
    let diagnosis = Diagnosis {
        cause: format!(
            "Microsoft Graph refuses to list the applications ({why}): the app's identity lacks \
             the Application.Read.All application permission"
        ),
        fix: vec![
            "Grant it: az rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/<principalId>/appRoleAssignments --body '{\"principalId\":\"<principalId>\",\"resourceId\":\"<Graph service principal id: az ad sp show --id 00000003-0000-0000-c000-000000000000 --query id -o tsv>\",\"appRoleId\":\"9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30\"}' (principalId: az functionapp identity show -g <group> -n <app> --query principalId -o tsv).".to_owned(),
            "A deployment with azd does this in its postprovision hook when ENTRA_CREDENTIALS is true.".to_owned(),
            "Or set ENTRA_CREDENTIALS=false to stop watching Entra ID.".to_owned(),
        ],
    };
    KeyVaultEvent::own(
        format!("entra-unreadable/{period}"),
        EventType::EntraUnreadable,
        Some("Entra ID".to_owned()),
        diagnosis,
        now,
    )
}
