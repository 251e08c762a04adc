//! Which vaults a run reads: those of `VAULTS`, and those Resource Manager lists in
//! `SUBSCRIPTIONS`; and, for the event path, whether an event's vault is one of them.

use super::Sweeper;
use crate::vault::VaultRef;
use tokio::time::Instant;

/// How long the event path trusts the vaults a discovery found.
const DISCOVERY_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The vaults a run reads.
pub(super) struct Targets {
    pub(super) vaults: Vec<VaultRef>,
    /// Subscriptions that could not be listed, each with why.
    pub(super) unlisted: Vec<String>,
}

impl Sweeper {
    /// The vaults of `VAULTS`, then those Resource Manager lists in `SUBSCRIPTIONS` (a vault
    /// in both is read once, with the tags Resource Manager gives it).
    pub(super) async fn targets(&self, deadline: Instant) -> Targets {
        let mut targets = Targets {
            vaults: self.settings.vaults.clone(),
            unlisted: Vec::new(),
        };
        let Some(discovery) = &self.discovery else {
            return targets;
        };
        let Ok(found) = tokio::time::timeout_at(deadline, discovery.vaults()).await else {
            targets.unlisted = self
                .settings
                .subscriptions
                .iter()
                .map(|id| {
                    format!("{id}: out of budget (SWEEP_BUDGET_SECS) before its vaults were listed")
                })
                .collect();
            return targets;
        };
        *self.discovered.lock().await = Some((Instant::now(), found.vaults.clone()));
        merge(&mut targets.vaults, found.vaults);
        targets.unlisted = found
            .failures
            .iter()
            .map(|(id, error)| format!("{id}: {error}"))
            .collect();
        targets
    }

    /// The vault named `name`, if kv-notify sweeps it: in `VAULTS`, or found by the last
    /// discovery (run again when it is older than an hour). An event's own URL never decides
    /// where a token goes.
    pub(super) async fn vault_named(&self, name: &str) -> Option<VaultRef> {
        let mut vaults = self.settings.vaults.clone();
        if let Some(discovery) = &self.discovery {
            let mut discovered = self.discovered.lock().await;
            let fresh = discovered
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < DISCOVERY_KEPT);
            if !fresh {
                let found = discovery.vaults().await;
                // A subscription not listed is asked again at the next event.
                let at = match found.failures.is_empty() {
                    true => Instant::now(),
                    false => Instant::now() - DISCOVERY_KEPT,
                };
                *discovered = Some((at, found.vaults));
            }
            if let Some((_, found)) = discovered.as_ref() {
                merge(&mut vaults, found.iter().cloned());
            }
        }
        vaults.into_iter().find(|v| v.name == name)
    }
}

/// Adds `found` to `vaults`; a vault already there by name takes the tags found.
pub(super) fn merge(vaults: &mut Vec<VaultRef>, found: impl IntoIterator<Item = VaultRef>) {
    for vault in found {
        match vaults.iter_mut().find(|v| v.name == vault.name) {
            Some(known) => known.tags = vault.tags,
            None => vaults.push(vault),
        }
    }
}
