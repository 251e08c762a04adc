//! The expiry sweep: read every configured vault's lists (metadata only), place each object's
//! current version on the reminder [`Ladder`], and send each step it has reached once per
//! recipient, through the same routing, mail and ledger as Key Vault's own events.
//!
//! A run is bounded by `SWEEP_BUDGET_SECS`. It keeps no state of its own: the ledger knows what
//! was sent, so a run that was cut short, failed or never happened is caught up by the next,
//! and two runs at once (two instances, or the timer and `kv-notify sweep`) send each step
//! once. Mails started before the budget ran out finish and record their outcome.

mod applications;
mod events;
pub mod health;
mod report;

pub use report::{CoverageSummary, InventoryRow, SweepReport, VaultSummary, fate};

use applications::{Applications, Holders, holding};
use events::{blind_spot_event, reminder_event};

use crate::dispatch::Dispatcher;
use crate::entra::{AppCredential, EntraClient};
use crate::event::ObjectKind;
use crate::ladder::Position;
use crate::settings::SweepSettings;
use crate::vault::{
    REQUESTS_PER_VAULT, Session, Target, Unreachable, VaultError, VaultObject, VaultRef, Vaults,
};
use chrono::{TimeDelta, Utc};
use futures_util::{FutureExt, StreamExt, stream};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;

/// Vaults read at once: each has its own request budget, so this bounds only memory and
/// connections.
const VAULTS_AT_ONCE: usize = 32;

/// Due objects listed and waiting for their version's lookup, per vault.
const LOOKUPS_QUEUED: usize = 64;

/// The sweep, built once at start-up when `VAULTS` or `SUBSCRIPTIONS` is set.
pub struct Sweeper {
    settings: SweepSettings,
    /// With `ENTRA_CREDENTIALS`: Entra ID's application credentials.
    entra: Option<Applications>,
    /// The vaults of `VAULTS`, and those Resource Manager lists in `SUBSCRIPTIONS`, and what
    /// reads them (shared with the event path).
    vaults: Arc<Vaults>,
    /// This app, as an Event Grid subscription names it: the check that each vault's events
    /// reach it.
    target: Target,
}

impl Scan {
    /// Notes an object whose dates are off the calendar (if it is one that would be reminded
    /// of); `true` when its dates are usable.
    fn note(&mut self, object: &VaultObject) -> bool {
        let Some(why) = object.bad_date.as_deref() else {
            return true;
        };
        if object.enabled && !object.managed {
            let said = format!("{} {}: {why}", object.kind.as_str(), object.name);
            report::keep(&mut self.bad_dates, &mut self.more_bad_dates, said);
        }
        false
    }
}

/// What the lookups of one vault's due objects found: the versions, and a count of the
/// failures with the first few.
#[derive(Default)]
struct Looked {
    found: Vec<(VaultObject, String, Option<bool>)>,
    failed: usize,
    errors: Vec<String>,
    more_errors: usize,
}

/// What one vault's lists held that the caller kept, and what went wrong.
#[derive(Default)]
struct Scan {
    seen: usize,
    kept: Vec<VaultObject>,
    errors: Vec<(ObjectKind, VaultError)>,
    /// Objects whose dates are off the calendar: the first few, and how many more.
    bad_dates: Vec<String>,
    more_bad_dates: usize,
    /// Secrets tagged with the Entra ID credential they hold.
    holders: Holders,
}

impl Sweeper {
    /// The sweep of `vaults` (and, with `entra`, of Entra ID's application credentials),
    /// within `settings`' budget.
    pub fn new(
        settings: SweepSettings,
        vaults: Arc<Vaults>,
        entra: Option<Arc<EntraClient>>,
        target: Target,
    ) -> Self {
        Self {
            settings,
            entra: entra.map(Applications::new),
            vaults,
            target,
        }
    }

    /// Whether this machine can sign in and reach the vaults at all: for the command line,
    /// which says so once, up front.
    pub async fn reachable(&self) -> Result<(), Unreachable> {
        self.vaults.reachable().await
    }

    /// What is swept, in words: the vaults of `VAULTS` and the subscriptions of
    /// `SUBSCRIPTIONS`.
    pub fn scope(&self) -> String {
        self.settings.scope()
    }

    /// One run: every vault read and every reminder due sent (or, with `dry_run`, only said).
    pub async fn run(&self, dispatcher: &Dispatcher, dry_run: bool) -> SweepReport {
        let started = Utc::now();
        let deadline = Instant::now() + self.settings.budget;
        // Entra ID is read first (beside the vaults' listing), so that a vault secret holding
        // an application's credential can say so.
        let read_entra = async {
            match &self.entra {
                Some(entra) => Some(entra.read(deadline).await),
                None => None,
            }
        };
        let (targets, entra) = tokio::join!(self.vaults.watched().all(deadline), read_entra);
        let credentials = match &entra {
            Some(Ok(credentials)) => applications::by_key_id(credentials),
            _ => Default::default(),
        };
        let coverage = self
            .vaults
            .watched()
            .coverage(&targets.vaults, &self.target, deadline);
        let coverage = coverage.await;
        if !dry_run {
            self.keep_first_settings(&targets.vaults).await;
        }
        let swept: Vec<(VaultSummary, Holders)> = stream::iter(targets.vaults)
            .map(|vault| self.sweep_vault_alone(vault, &credentials, dispatcher, deadline, dry_run))
            .buffered(VAULTS_AT_ONCE)
            .collect()
            .await;
        let mut holders = Holders::default();
        let mut vaults = Vec::with_capacity(swept.len());
        for (summary, held) in swept {
            vaults.push(summary);
            holders.extend(held);
        }
        let mut report = SweepReport::new(started, vaults, self.settings.budget);
        report.subscriptions_not_listed = targets.unlisted;
        report.coverage = coverage.as_ref().map(CoverageSummary::of);
        if let (Some(applications), Some(read)) = (&self.entra, &entra) {
            let summary = applications.remind(read, &holders, dispatcher, deadline, dry_run);
            report.entra = Some(summary.await);
        }
        report
    }

    /// Keeps each listed vault's exposure settings where none are kept yet: what the first
    /// change Resource Manager reports is told against. A ledger read per vault, and a write
    /// the first time.
    async fn keep_first_settings(&self, vaults: &[VaultRef]) {
        let access = self.vaults.access();
        let access = &access;
        // Futures made up front: a stream of futures borrowing `vaults` is then plainly `Send`.
        let keeps: Vec<_> = vaults
            .iter()
            .filter_map(|vault| Some((vault.name.as_str(), vault.exposure.as_deref()?)))
            .map(|(name, exposure)| async move { (name, access.keep_first(name, exposure).await) })
            .collect();
        let kept: Vec<_> = stream::iter(keeps)
            .buffer_unordered(VAULTS_AT_ONCE)
            .collect()
            .await;
        let first = kept.iter().filter(|(_, k)| matches!(k, Ok(true))).count();
        if first > 0 {
            tracing::info!(
                vaults = first,
                "vaults' exposure settings kept for the first time"
            );
        }
        if let Some((vault, Err(error))) = kept.iter().find(|(_, k)| k.is_err()) {
            tracing::warn!(%vault, %error, "cannot keep a vault's exposure settings");
        }
    }

    /// Every object expiring within `days` (or never), with its place on the ladder and who
    /// it would go to: `kv-notify inventory`.
    pub async fn inventory(&self, dispatcher: &Dispatcher, days: i64) -> Vec<InventoryRow> {
        let now = Utc::now();
        let horizon = now + TimeDelta::days(days);
        let deadline = Instant::now() + self.settings.budget;
        let targets = self.vaults.watched().all(deadline).await;
        let mut rows: Vec<InventoryRow> = targets
            .unlisted
            .iter()
            .map(|why| InventoryRow::unlisted(why))
            .collect();
        let coverage = self
            .vaults
            .watched()
            .coverage(&targets.vaults, &self.target, deadline);
        let coverage = coverage.await.unwrap_or_default();
        for (vault, stand) in &coverage.vaults {
            rows.extend(InventoryRow::uncovered(vault, stand));
        }
        for (subscription, stand) in &coverage.access {
            rows.extend(InventoryRow::access_uncovered(subscription, stand));
        }
        let scans = stream::iter(targets.vaults)
            .map(|vault| async move {
                let session = Session::new(vault);
                let within = |o: &VaultObject| !o.managed && o.expires.is_none_or(|t| t <= horizon);
                let scan = self.scan(&session, within, None, deadline).await;
                (session, scan)
            })
            .buffered(VAULTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (session, scan) in scans {
            for (kind, error) in &scan.errors {
                rows.push(InventoryRow::unreadable(&session.vault, *kind, error));
            }
            for object in scan.kept {
                let position = object
                    .expires
                    .map(|expires| dispatcher.ladder_position(expires, now));
                let renews = self.renewal(&session, &object, deadline).await;
                let mut event =
                    reminder_event(&session.vault, &object, None, position, renews, now);
                let (owners, ignored) =
                    self.vaults
                        .tag_owners(&event.display_name(), &object.tags, &session.vault);
                event.tag_owners = owners;
                let owners = dispatcher.recipients(&event);
                let mut row = InventoryRow::new(
                    &session.vault,
                    &object,
                    position,
                    renews,
                    owners,
                    dispatcher.ladder(),
                );
                row.owner_source = dispatcher.owner_source(&event);
                if row.owner_source == "tag"
                    && self.vaults.owner_tag().owners(&object.tags).is_none()
                {
                    row.owner_source = "the vault's tag".to_owned();
                }
                if !ignored.is_empty() {
                    row.notes.push(format!(
                        "owner tag: ignored {} (not a domain kv-notify mails; see OWNER_TAG_DOMAINS)",
                        ignored.join(", ")
                    ));
                }
                rows.push(row);
            }
        }
        if let Some(applications) = &self.entra {
            rows.extend(applications.inventory(dispatcher, horizon).await);
        }
        rows
    }

    /// Sweeps one vault; a bug that its data sets off (a panic) costs that vault alone.
    async fn sweep_vault_alone(
        &self,
        vault: VaultRef,
        credentials: &HashMap<&str, &AppCredential>,
        dispatcher: &Dispatcher,
        deadline: Instant,
        dry_run: bool,
    ) -> (VaultSummary, Holders) {
        let name = vault.name.clone();
        let sweep = self.sweep_vault(vault, credentials, dispatcher, deadline, dry_run);
        let swept = AssertUnwindSafe(sweep).catch_unwind().await;
        swept.unwrap_or_else(|panic| {
            let crashed = VaultSummary::crashed(&name, panic.as_ref());
            (crashed, Holders::default())
        })
    }

    /// Sweeps one vault: its reminders sent, and its secrets that hold an Entra ID
    /// credential (`credentials`, by key id) noted, each reminder saying what it holds.
    async fn sweep_vault(
        &self,
        vault: VaultRef,
        credentials: &HashMap<&str, &AppCredential>,
        dispatcher: &Dispatcher,
        deadline: Instant,
        dry_run: bool,
    ) -> (VaultSummary, Holders) {
        let session = Session::new(vault);
        let vault = &session.vault;
        let now = Utc::now();
        let due = move |o: &VaultObject| {
            o.enabled
                && !o.managed
                && o.expires.is_some_and(|t| {
                    matches!(dispatcher.ladder_position(t, now), Position::In { .. })
                })
        };
        // Each due object's version is looked up as soon as its page arrives, sharing the
        // vault's request budget with the lists still being read. The queue is short: a list
        // whose due objects come faster than they are looked up waits for them.
        let (found, mut found_rx) = tokio::sync::mpsc::channel(LOOKUPS_QUEUED);
        let listing = async {
            // Owned here, so that the lookups end once the lists are read.
            let found = found;
            self.scan(&session, due, Some(&found), deadline).await
        };
        let lookups = stream::poll_fn(|cx| found_rx.poll_recv(cx))
            .map(|object| session.looking_up(self.look_up(&session, object, deadline)))
            .buffer_unordered(REQUESTS_PER_VAULT)
            // Folded as they come: a vault that fails thousands of lookups keeps a count and
            // the first few errors, not every one of them.
            .fold(Looked::default(), |mut looked, result| async move {
                match result {
                    Ok(found) => looked.found.push(found),
                    Err(error) => {
                        looked.failed += 1;
                        report::keep(&mut looked.errors, &mut looked.more_errors, error);
                    }
                }
                looked
            });
        let (scan, looked) = tokio::join!(listing, lookups);
        let blind_spot = blind_spot_event(vault, &scan.errors, now);
        let mut summary = VaultSummary::new(vault, scan.seen, &scan.errors);
        summary.bad_dates = scan.bad_dates;
        summary.more_bad_dates = scan.more_bad_dates;
        summary.due = looked.found.len() + looked.failed;
        summary.fates.failed += looked.failed;
        for error in looked.errors {
            summary.error(error);
        }
        summary.more_errors += looked.more_errors;
        // Past the budget no reminder goes: none is made.
        let in_time = dry_run || Instant::now() < deadline;
        let mut events = Vec::new();
        for (object, version, renews) in looked.found.into_iter().filter(|_| in_time) {
            let position = object.expires.map(|t| dispatcher.ladder_position(t, now));
            let mut event = reminder_event(vault, &object, Some(&version), position, renews, now);
            let name = event.display_name();
            let (owners, ignored) = self.vaults.tag_owners(&name, &object.tags, vault);
            self.vaults.keep_ignored(&name, &ignored).await;
            event.tag_owners = owners;
            event.related = holding(&object, credentials);
            events.push(event);
        }
        if dry_run {
            summary.would_mail = events.iter().map(|e| dispatcher.recipients(e).len()).sum();
        } else if Instant::now() >= deadline {
            summary.out_of_budget = true;
        } else {
            let reports = dispatcher.handle_until(events, deadline).await;
            summary.fates.count(&reports);
            if let Some(event) = blind_spot {
                let reports = dispatcher.handle_until([event], deadline).await;
                summary.blind_spot_alert = reports.first().map(report::fate);
            }
        }
        summary.out_of_budget |= Instant::now() >= deadline && summary.unread();
        summary.requests = session.traffic.requests.load(Ordering::Relaxed);
        summary.throttled = session.traffic.throttled.load(Ordering::Relaxed);
        (summary, scan.holders)
    }

    /// Reads the vault's three lists at once, keeping the objects `keep` wants (or, with a
    /// `queue`, passing them on down it as they come: the lists wait while it is full), and
    /// noting those whose dates are off the calendar.
    async fn scan(
        &self,
        session: &Session,
        keep: impl Fn(&VaultObject) -> bool,
        queue: Option<&Sender<VaultObject>>,
        deadline: Instant,
    ) -> Scan {
        let list = |kind: ObjectKind| {
            let keep = &keep;
            async move {
                let mut scan = Scan::default();
                let listed = async {
                    let mut objects = self.vaults.client().list(session, kind);
                    while let Some(page) = objects.next().await? {
                        scan.seen += page.len();
                        for object in page {
                            if object.kind == ObjectKind::Secret {
                                let vault = &session.vault.name;
                                scan.holders.note(vault, &object.name, &object.tags);
                            }
                            if !scan.note(&object) || !keep(&object) {
                                continue;
                            }
                            match queue {
                                // Closed only once the lookups are over: the budget ran out.
                                Some(queue) => queue.send(object).await.unwrap_or_default(),
                                None => scan.kept.push(object),
                            }
                        }
                    }
                    Ok(())
                };
                let result = match tokio::time::timeout_at(deadline, listed).await {
                    Ok(result) => result,
                    Err(_) => Err(VaultError::Unexpected(
                        "out of budget (SWEEP_BUDGET_SECS) before the list was read".to_owned(),
                    )),
                };
                session.list_done();
                if let Err(error) = result {
                    scan.errors.push((kind, error));
                }
                scan
            }
        };
        let (secrets, keys, certificates) = tokio::join!(
            list(ObjectKind::Secret),
            list(ObjectKind::Key),
            list(ObjectKind::Certificate)
        );
        let mut scan = Scan::default();
        for part in [secrets, keys, certificates] {
            scan.seen += part.seen;
            scan.kept.extend(part.kept);
            scan.errors.extend(part.errors);
            for said in part.bad_dates {
                report::keep(&mut scan.bad_dates, &mut scan.more_bad_dates, said);
            }
            scan.more_bad_dates += part.more_bad_dates;
            scan.holders.extend(part.holders);
        }
        scan
    }

    /// The current version of a due object (its reminders are keyed by it) and, for a
    /// certificate, whether its policy renews it.
    async fn look_up(
        &self,
        session: &Session,
        object: VaultObject,
        deadline: Instant,
    ) -> Result<(VaultObject, String, Option<bool>), String> {
        let lookup = async {
            match object.kind {
                ObjectKind::Certificate => {
                    self.vaults
                        .client()
                        .certificate(session, &object.name)
                        .await
                }
                kind => {
                    let version = self
                        .vaults
                        .client()
                        .current_version(session, kind, &object.name);
                    Ok((version.await?, None))
                }
            }
        };
        match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok((version, renews))) => Ok((object, version, renews)),
            Ok(Err(error)) => Err(format!("{} {}: {error}", object.kind.as_str(), object.name)),
            Err(_) => Err(format!(
                "{} {}: out of budget (SWEEP_BUDGET_SECS) before its version was read",
                object.kind.as_str(),
                object.name
            )),
        }
    }

    /// For a certificate, whether its policy renews it (`None` when it cannot be told).
    async fn renewal(
        &self,
        session: &Session,
        object: &VaultObject,
        deadline: Instant,
    ) -> Option<bool> {
        if object.kind != ObjectKind::Certificate {
            return None;
        }
        let lookup = self.vaults.client().certificate(session, &object.name);
        match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok((_, renews))) => renews,
            Ok(Err(error)) => {
                tracing::warn!(vault = %session.vault.name, certificate = %object.name, %error, "cannot read the certificate's policy");
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
