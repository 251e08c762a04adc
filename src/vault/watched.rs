//! The vaults kv-notify watches: those of `VAULTS`, and those Resource Manager lists in the
//! subscriptions of `SUBSCRIPTIONS`.
//!
//! What a listing found is kept per subscription. A sweep lists every subscription again; an
//! expiry event lists only what is stale (older than an hour) or never listed, one listing at a
//! time for all the events that arrive meanwhile. A subscription that cannot be listed (no
//! Reader role, Resource Manager down) keeps the vaults it held at its last listing and is asked
//! again after a backoff, not at every event; the others are unaffected by it. An access
//! change on a vault that no listing holds has its subscription listed again when the listing
//! began before the change: a new vault's first role assignments come minutes after it.

use super::coverage::{Coverage, Covered, Target};
use super::{Discovery, VaultError, VaultRef};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long an expiry event trusts a subscription's listing.
const KEPT: Duration = Duration::from_secs(3600);

/// After a subscription's listing failed, how long until it is asked again; doubled after each
/// failure in a row, up to [`KEPT`].
const FIRST_RETRY: Duration = Duration::from_secs(300);

/// The vaults to watch.
#[derive(Debug)]
pub struct Watched {
    /// `VAULTS`.
    configured: Vec<VaultRef>,
    /// With `SUBSCRIPTIONS`: Resource Manager's lists.
    discovery: Option<Arc<Discovery>>,
    /// What each subscription's listing found, by subscription id. Held across a listing, so
    /// that events arriving meanwhile wait for it rather than list again.
    listings: tokio::sync::Mutex<HashMap<String, Listing>>,
}

/// One subscription, as last listed.
#[derive(Debug, Default)]
struct Listing {
    /// The vaults of its last successful listing.
    vaults: Vec<VaultRef>,
    /// When that was.
    listed: Option<Instant>,
    /// When that listing began, by the clock events are dated by.
    began: Option<DateTime<Utc>>,
    /// Since the last success: why the last try failed, failures in a row, when to ask again.
    failed: Option<(VaultError, u32, Instant)>,
}

/// The vaults a sweep reads.
#[derive(Debug, Default)]
pub struct Targets {
    /// `VAULTS`, then what the subscriptions hold (a vault in both once, with the tags Resource
    /// Manager gives it).
    pub vaults: Vec<VaultRef>,
    /// The subscriptions that could not be listed, each with why.
    pub unlisted: Vec<String>,
}

/// Why this machine cannot read the vaults at all: a sign-in that fails, a name that does not
/// resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// An event's vault could not be told in time: the subscriptions were still being listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Resource Manager's list of the subscriptions' vaults did not come in time")]
pub struct NotInTime;

impl Watched {
    /// The vaults of `VAULTS` (`configured`) and, with a `discovery`, of its subscriptions.
    pub fn new(configured: Vec<VaultRef>, discovery: Option<Arc<Discovery>>) -> Self {
        let listings = discovery
            .iter()
            .flat_map(|d| d.subscriptions())
            .map(|id| (id.clone(), Listing::default()))
            .collect();
        Self {
            configured,
            discovery,
            listings: tokio::sync::Mutex::new(listings),
        }
    }

    /// For a sweep: every subscription listed again, until `deadline`. A subscription that
    /// fails keeps the vaults of its last listing, which are read too.
    pub async fn all(&self, deadline: Instant) -> Targets {
        let mut targets = Targets {
            vaults: self.configured.clone(),
            unlisted: Vec::new(),
        };
        let Some(discovery) = &self.discovery else {
            return targets;
        };
        let Ok(mut listings) = tokio::time::timeout_at(deadline, self.listings.lock()).await else {
            targets.unlisted = discovery
                .subscriptions()
                .iter()
                .map(|id| {
                    format!(
                        "{id}: out of budget (SWEEP_BUDGET_SECS) before it was listed; its vaults \
                         were not swept"
                    )
                })
                .collect();
            return targets;
        };
        let ids = discovery.subscriptions().to_vec();
        list(discovery, &mut listings, &ids, deadline).await;
        for id in &ids {
            let listing = &listings[id];
            merge(&mut targets.vaults, listing.vaults.iter().cloned());
            if let Some((error, _, _)) = &listing.failed {
                targets.unlisted.push(match listing.vaults.len() {
                    0 => format!("{id}: {error}; its vaults were not swept"),
                    n => {
                        format!("{id}: {error}; the {n} vaults it held when last listed were swept")
                    }
                });
            }
        }
        targets
    }

    /// For a sweep: how each watched vault stands for Event Grid delivery to `target`, and each
    /// subscription holding one for its Resource Manager events (not checked without
    /// `SUBSCRIPTIONS`; `None` when the listings cannot be had in time). A vault of `VAULTS`
    /// that no listed subscription holds cannot be seen; one whose subscription's topics cannot
    /// be read neither: neither is called uncovered.
    pub async fn coverage(
        &self,
        vaults: &[VaultRef],
        target: &Target,
        deadline: Instant,
    ) -> Option<Coverage> {
        let Some(discovery) = self.discovery.as_ref() else {
            let why = "not checked: with VAULTS alone the app's identity reads the vaults, not \
                       their Event Grid subscriptions; set SUBSCRIPTIONS and grant it Reader \
                       there to check that their events reach this app";
            let stands = vaults
                .iter()
                .map(|v| (v.name.clone(), Covered::NotChecked(why.to_owned())));
            return Some(Coverage {
                vaults: stands.collect(),
                access: Vec::new(),
            });
        };
        // Which subscription holds each vault, by its last listing.
        let held: HashMap<String, HashSet<String>> = {
            let listings = tokio::time::timeout_at(deadline, self.listings.lock())
                .await
                .ok()?;
            listings
                .iter()
                .map(|(id, listing)| {
                    let names = listing.vaults.iter().map(|v| v.name.clone()).collect();
                    (id.clone(), names)
                })
                .collect()
        };
        // Futures made up front: a stream of futures borrowing `held` is then plainly `Send`.
        let checks: Vec<_> = held
            .iter()
            // A subscription holding no watched vault costs no request.
            .filter(|(_, names)| !names.is_empty())
            .map(|(id, names)| async move {
                let found = discovery.event_subscriptions(id, names).await;
                (id.clone(), found)
            })
            .collect();
        let checked = tokio::time::timeout_at(
            deadline,
            futures_util::stream::iter(checks)
                .buffer_unordered(super::discovery::SUBSCRIPTIONS_AT_ONCE)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap_or_default();
        let mut stands = Vec::new();
        for vault in vaults {
            let subscription = held.iter().find(|(_, names)| names.contains(&vault.name));
            let Some((id, _)) = subscription else {
                stands.push((
                    vault.name.clone(),
                    Covered::Unseen(
                        "cannot see its Event Grid subscriptions: it is in none of \
                         SUBSCRIPTIONS; add its subscription there and grant the app's \
                         identity Reader on it"
                            .to_owned(),
                    ),
                ));
                continue;
            };
            let stand = match checked.iter().find(|(checked, _)| checked == id) {
                None => Covered::Unseen("out of budget before it was checked".to_owned()),
                Some((_, Err(error))) => Covered::Unseen(format!(
                    "cannot see the Event Grid subscriptions of subscription {id} ({error}): \
                     grant the app's identity Reader on it"
                )),
                Some((_, Ok(found))) => Covered::of_topic(
                    found.vaults.get(&vault.name),
                    "it has no Event Grid system topic, so no subscription",
                    "its expiry and access events",
                    |s| target.delivers(s),
                ),
            };
            stands.push((vault.name.clone(), stand));
        }
        // A subscription whose topics could not be read is said of its vaults already.
        let access = checked
            .iter()
            .filter_map(|(id, found)| {
                let stand = Covered::of_topic(
                    found.as_ref().ok()?.resource_events.as_ref(),
                    "it has no Event Grid system topic of its own, so nothing delivers its \
                     Resource Manager events",
                    "role assignments and vault writes",
                    |s| target.delivers_resource_events(s),
                );
                Some((id.clone(), stand))
            })
            .collect();
        Some(Coverage {
            vaults: stands,
            access,
        })
    }

    /// For an expiry event: the vault named `name`, if kv-notify watches it. Subscriptions never
    /// listed, listed over an hour ago, or due for another try after a failure are listed
    /// first, until `deadline`. An event's own URL never decides where a token goes.
    pub async fn named(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<VaultRef>, NotInTime> {
        let vaults = self.known(deadline).await?;
        Ok(vaults.into_iter().find(|v| v.name == name))
    }

    /// For an event: every watched vault, as the listings have them. Subscriptions never
    /// listed, listed over an hour ago, or due for another try after a failure are listed
    /// first, until `deadline`.
    pub async fn known(&self, deadline: Instant) -> Result<Vec<VaultRef>, NotInTime> {
        let Some(discovery) = &self.discovery else {
            return Ok(self.configured.clone());
        };
        let mut listings = tokio::time::timeout_at(deadline, self.listings.lock())
            .await
            .map_err(|_| NotInTime)?;
        let now = Instant::now();
        let due: Vec<String> = listings
            .iter()
            .filter(|(_, listing)| listing.due(now))
            .map(|(id, _)| id.clone())
            .collect();
        if !due.is_empty() {
            let listed = list(discovery, &mut listings, &due, deadline);
            tokio::time::timeout_at(deadline, listed)
                .await
                .map_err(|_| NotInTime)?;
        }
        let mut vaults = self.configured.clone();
        for id in discovery.subscriptions() {
            merge(&mut vaults, listings[id].vaults.iter().cloned());
        }
        Ok(vaults)
    }
}

impl Watched {
    /// For an access change made at `made` (an event's time) on the vault `vault_id` that no
    /// listing holds: lists its subscription again, until `deadline`, when it is watched, its
    /// last listing began before the change and is not in a backoff after failures. Whether it
    /// was listed again; `Err` when that listing failed or did not end in time (the change
    /// cannot be told apart from one on an unwatched vault). Events of one burst wait for one
    /// listing, which began after them all.
    pub async fn relist_for(
        &self,
        vault_id: &str,
        made: Option<DateTime<Utc>>,
        deadline: Instant,
    ) -> Result<bool, String> {
        let Some(discovery) = &self.discovery else {
            return Ok(false);
        };
        let Some(subscription) = subscription_of(vault_id) else {
            return Ok(false);
        };
        let mut listings = tokio::time::timeout_at(deadline, self.listings.lock())
            .await
            .map_err(|_| NotInTime.to_string())?;
        // A change dated in the future is taken as made now.
        let made = made.map_or_else(Utc::now, |made| made.min(Utc::now()));
        let stale = listings.iter().find(|(id, listing)| {
            id.eq_ignore_ascii_case(subscription)
                && listing.failed.is_none()
                && listing.began.is_some_and(|began| began < made)
        });
        let Some((id, _)) = stale else {
            return Ok(false);
        };
        let ids = [id.clone()];
        let listed = list(discovery, &mut listings, &ids, deadline);
        tokio::time::timeout_at(deadline, listed)
            .await
            .map_err(|_| NotInTime.to_string())?;
        match &listings[&ids[0]].failed {
            Some((error, _, _)) => Err(format!(
                "subscription {} could not be listed again for a vault it did not hold: {error}",
                ids[0]
            )),
            None => Ok(true),
        }
    }

    /// Whether this machine can reach what it watches: a token for Resource Manager, and the
    /// first vault's (or Resource Manager's) name resolving. Said once, up front, rather than
    /// once per vault and list.
    pub async fn reachable(&self) -> Result<(), Unreachable> {
        if let Some(discovery) = &self.discovery {
            discovery
                .sign_in()
                .await
                .map_err(|e| Unreachable(format!("cannot sign in to Resource Manager: {e}")))?;
        }
        let host = match (self.configured.first(), &self.discovery) {
            (Some(vault), _) => vault.url.host_str().unwrap_or_default().to_owned(),
            (None, Some(discovery)) => discovery.host().to_owned(),
            (None, None) => return Ok(()),
        };
        if super::resolve::is_localhost(&host) {
            return Ok(());
        }
        let resolved = tokio::net::lookup_host((host.as_str(), 443)).await;
        match resolved.map(|mut addresses| addresses.next().is_some()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Unreachable(format!(
                "{host} does not resolve: check this machine's network, VPN or DNS"
            ))),
            Err(e) => Err(Unreachable(format!(
                "{host} does not resolve ({e}): check this machine's network, VPN or DNS"
            ))),
        }
    }
}

impl Listing {
    /// Whether an event should have this subscription listed now.
    fn due(&self, now: Instant) -> bool {
        match (&self.failed, self.listed) {
            (Some((_, _, retry_at)), _) => now >= *retry_at,
            (None, Some(listed)) => now.duration_since(listed) >= KEPT,
            (None, None) => true,
        }
    }

    fn succeeded(&mut self, vaults: Vec<VaultRef>, began: DateTime<Utc>) {
        *self = Self {
            vaults,
            listed: Some(Instant::now()),
            began: Some(began),
            failed: None,
        };
    }

    fn failed(&mut self, id: &str, error: VaultError) {
        tracing::error!(subscription = %id, %error, "cannot list the subscription's vaults");
        let failures = self.failed.as_ref().map_or(0, |(_, n, _)| *n) + 1;
        let wait = FIRST_RETRY
            .saturating_mul(1 << (failures - 1).min(8))
            .min(KEPT);
        self.failed = Some((error, failures, Instant::now() + wait));
    }
}

/// Lists the subscriptions `ids`, a few at a time, until `deadline`, and keeps what each
/// listing found; one not listed by then counts as failed.
async fn list(
    discovery: &Discovery,
    listings: &mut HashMap<String, Listing>,
    ids: &[String],
    deadline: Instant,
) {
    let began = Utc::now();
    let mut lists = discovery.lists(ids);
    let mut pending: Vec<&String> = ids.iter().collect();
    while let Ok(Some((id, found))) = tokio::time::timeout_at(deadline, lists.next()).await {
        pending.retain(|p| **p != id);
        let listing = listings.entry(id.clone()).or_default();
        match found {
            Ok(vaults) => listing.succeeded(vaults, began),
            Err(error) => listing.failed(&id, error),
        }
    }
    for id in pending {
        let out_of_time = VaultError::Unexpected("out of time before it was listed".to_owned());
        listings
            .entry(id.clone())
            .or_default()
            .failed(id, out_of_time);
    }
}

/// The subscription id of a resource id (`/subscriptions/{id}/…`).
fn subscription_of(resource: &str) -> Option<&str> {
    let mut segments = resource.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some(head), Some(id)) if head.eq_ignore_ascii_case("subscriptions") && !id.is_empty() => {
            Some(id)
        }
        _ => None,
    }
}

/// Adds `found` to `vaults`; a vault already there by name takes the tags found.
pub fn merge(vaults: &mut Vec<VaultRef>, found: impl IntoIterator<Item = VaultRef>) {
    for vault in found {
        match vaults.iter_mut().find(|v| v.name == vault.name) {
            Some(known) => {
                known.tags = vault.tags;
                known.id = vault.id.or(known.id.take());
                known.exposure = vault.exposure.or(known.exposure.take());
            }
            None => vaults.push(vault),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discovered_vault_already_in_vaults_is_kept_once_with_its_tags() {
        let configured =
            VaultRef::parse("https://kv-a.vault.azure.cn", "vault.azure.cn").expect("a URI");
        let mut vaults = vec![configured.clone()];
        let mut found_a = VaultRef::parse("KV-A", "vault.azure.cn").expect("a name");
        found_a
            .tags
            .insert("owner".into(), "ann@contoso.com".into());
        let found_b = VaultRef::parse("kv-b", "vault.azure.cn").expect("a name");

        merge(&mut vaults, [found_a, found_b.clone()]);

        assert_eq!(vaults.len(), 2);
        assert_eq!(vaults[0].url, configured.url, "VAULTS says where it is");
        assert_eq!(vaults[0].tags["owner"], "ann@contoso.com");
        assert_eq!(vaults[1], found_b);
    }

    #[test]
    fn a_failed_subscription_waits_longer_after_each_failure_and_never_past_an_hour() {
        let mut listing = Listing::default();
        let now = Instant::now();
        assert!(listing.due(now), "never listed");
        let waits: Vec<Duration> = (0..10)
            .map(|_| {
                listing.failed("sub", VaultError::NotFound);
                let (_, _, retry_at) = listing.failed.as_ref().expect("failed");
                retry_at.duration_since(Instant::now())
            })
            .collect();
        assert!(waits[0] > Duration::from_secs(290) && waits[0] <= FIRST_RETRY);
        assert!(waits[1] > Duration::from_secs(590));
        assert!(waits.iter().all(|w| *w <= KEPT));
        assert!(!listing.due(Instant::now()));
        listing.succeeded(Vec::new(), Utc::now());
        assert!(!listing.due(Instant::now()), "just listed");
        assert!(listing.failed.is_none());
    }
}
