//! Access changes on watched vaults, from Resource Manager's events: a role assignment that
//! reaches a vault (at its scope, or at its resource group's or subscription's), and a change
//! to a vault's exposure settings. What an event alone cannot say is read through Resource
//! Manager with the app's identity: the assignment's role and principal, the role's
//! permissions, the vault's settings now. What must outlive the resource is kept in the ledger:
//! an assignment's role and principal (a deleted one cannot be read back), each vault's last
//! settings, and each alert as first judged (so that a redelivery mails what the first delivery
//! would have, whatever has changed since).
//!
//! An event that concerns no watched vault costs nothing: no request, no store read.

use super::exposure::Exposure;
use super::role::RoleDefinition;
use super::{Discovery, VaultError, VaultRef, Watched};
use crate::event::{
    AccessChange, Assignment, Concern, EventType, KeyVaultEvent, ResourceAction, ResourceEvent,
    covers, vault_of,
};
use crate::ledger::Ledger;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// Resource Manager's API version for role assignments and definitions.
const AUTHORIZATION_API: &str = "2022-04-01";

/// The Key Vault resource provider's API version.
const VAULT_API: &str = "2023-07-01";

/// Bound on the reads of one event: the alert goes without what is not read by then.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Vaults named in an alert about an assignment above them; the rest are counted.
const NAMED_VAULTS: usize = 5;

/// What an access change calls for.
#[derive(Debug)]
pub enum Judgement {
    /// Nothing to tell, and why (for the log).
    Ignore(String),
    /// An alert, as an event to route and deliver.
    Alert(Box<KeyVaultEvent>),
    /// What must be known could not be had (the watched list, the ledger): the event fails,
    /// for a redelivery.
    Retry(String),
}

/// An alert as first judged, kept for redeliveries.
#[derive(Serialize, Deserialize)]
struct Judged {
    settings: bool,
    vault: String,
    change: AccessChange,
}

/// What a vault write changed in its exposure.
struct SettingsChange {
    /// Each change in words.
    changes: Vec<String>,
    /// What could not be read, and so what the alert cannot say.
    unread: Option<String>,
    /// The settings now, when read: kept once the alert's judgement is.
    now: Option<Exposure>,
}

/// A role assignment as seen when it was written.
#[derive(Serialize, Deserialize)]
struct Seen {
    assignment: Assignment,
    matters: bool,
}

#[derive(Deserialize)]
struct Resource<P> {
    properties: P,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentProperties {
    role_definition_id: Option<String>,
    principal_id: Option<String>,
    principal_type: Option<String>,
}

/// Judges resource events against the watched vaults.
pub struct AccessWatch<'a> {
    watched: &'a Watched,
    resource_manager: &'a Discovery,
    ledger: &'a dyn Ledger,
}

impl<'a> AccessWatch<'a> {
    /// Judges with the vaults of `watched`, reading from `resource_manager`, keeping what
    /// must be remembered in `ledger`.
    pub fn new(
        watched: &'a Watched,
        resource_manager: &'a Discovery,
        ledger: &'a dyn Ledger,
    ) -> Self {
        Self {
            watched,
            resource_manager,
            ledger,
        }
    }

    /// What `event` calls for, within `deadline`.
    pub async fn judge(&self, event: &ResourceEvent, deadline: Instant) -> Judgement {
        let concern = event.concern();
        if concern == Concern::Nothing {
            return Judgement::Ignore("not a change of a vault's access".to_owned());
        }
        let mut vaults = match self.watched.known(deadline).await {
            Ok(vaults) => vaults,
            Err(not_in_time) => return Judgement::Retry(not_in_time.to_string()),
        };
        // A vault no listing holds may be newer than the listing.
        if reached(&concern, &vaults).is_empty()
            && let Some(vault_id) = concern.vault_id()
        {
            let relisted = self
                .watched
                .relist_for(vault_id, event.event_time, deadline);
            match relisted.await {
                Ok(false) => {}
                Ok(true) => match self.watched.known(deadline).await {
                    Ok(listed) => vaults = listed,
                    Err(not_in_time) => return Judgement::Retry(not_in_time.to_string()),
                },
                Err(why) => return Judgement::Retry(why),
            }
        }
        let reached = reached(&concern, &vaults);
        let Some(first) = reached.first() else {
            return Judgement::Ignore("concerns no watched vault".to_owned());
        };
        let judged_key = format!(
            "judged\n{}",
            serde_json::to_string(&event.key).unwrap_or_default()
        );
        match self.ledger.recall(&judged_key).await {
            Ok(Some(kept)) => {
                if let Ok(judged) = serde_json::from_str::<Judged>(&kept) {
                    return Judgement::Alert(Box::new(alert(event, judged)));
                }
            }
            Ok(None) => {}
            Err(error) => return Judgement::Retry(error.to_string()),
        }
        let read_by = deadline.min(Instant::now() + READ_TIMEOUT);
        let mut settings_now = None;
        let judged = match concern {
            Concern::RoleAssignment { id, scope } => {
                let assignment = match self.assignment(event, id, scope, read_by).await {
                    Ok(Some(assignment)) => assignment,
                    Ok(None) => {
                        return Judgement::Ignore(
                            "the role reaches no vault's secrets or access".to_owned(),
                        );
                    }
                    Err(error) => return Judgement::Retry(error),
                };
                let (assignment, unread) = assignment;
                let mut changes = Vec::new();
                if reached.len() > 1 {
                    let names: Vec<&str> = reached
                        .iter()
                        .take(NAMED_VAULTS)
                        .map(|v| v.name.as_str())
                        .collect();
                    let more = match reached.len().saturating_sub(NAMED_VAULTS) {
                        0 => String::new(),
                        n => format!(", and {n} more"),
                    };
                    changes.push(format!(
                        "it reaches {} watched vaults: {}{more}",
                        reached.len(),
                        names.join(", ")
                    ));
                }
                Judged {
                    settings: false,
                    vault: first.name.clone(),
                    change: AccessChange {
                        scope: scope.to_owned(),
                        vault_id: first
                            .id
                            .clone()
                            .or_else(|| vault_of(scope).map(|(id, _)| id.to_owned())),
                        assignment: Some(assignment),
                        changes,
                        unread,
                        ..change_of(event)
                    },
                }
            }
            Concern::Vault { id, name } | Concern::PrivateEndpoint { id, name } => {
                let vault = name.to_ascii_lowercase();
                match self.settings(event, id, &vault, read_by).await {
                    Ok(Some(change)) => {
                        settings_now = change.now.map(|now| (vault.clone(), now));
                        Judged {
                            settings: true,
                            vault,
                            change: AccessChange {
                                scope: id.to_owned(),
                                vault_id: Some(id.to_owned()),
                                changes: change.changes,
                                unread: change.unread,
                                ..change_of(event)
                            },
                        }
                    }
                    Ok(None) => {
                        return Judgement::Ignore(
                            "no setting that decides the vault's exposure changed".to_owned(),
                        );
                    }
                    Err(error) => return Judgement::Retry(error),
                }
            }
            Concern::Nothing => unreachable!("told apart above"),
        };
        // The judgement is kept before the settings it was made against are replaced: kept the
        // other way round, a failure between the two would leave a redelivery comparing the new
        // settings with themselves, and the change would never be told.
        let kept = serde_json::to_string(&judged).expect("a judgement serialises");
        if let Err(error) = self.ledger.remember(&judged_key, &kept).await {
            return Judgement::Retry(error.to_string());
        }
        if let Some((vault, now)) = settings_now
            && let Err(error) = self.keep(&vault, &now).await
        {
            // The alert goes as judged; the next change of this vault is told against the
            // settings kept before this one.
            tracing::warn!(vault = %vault, "{error}: the vault's new settings are not kept");
        }
        Judgement::Alert(Box::new(alert(event, judged)))
    }

    /// The assignment's role and principal, with what could not be read; `None` when its role
    /// reaches no vault's secrets or access. `Err` when the ledger cannot be asked.
    async fn assignment(
        &self,
        event: &ResourceEvent,
        id: &str,
        scope: &str,
        read_by: Instant,
    ) -> Result<Option<(Assignment, Option<String>)>, String> {
        let key = format!("assignment\n{}", id.to_ascii_lowercase());
        if event.action == ResourceAction::Delete {
            let seen = self.ledger.recall(&key).await.map_err(|e| e.to_string())?;
            return Ok(
                match seen.and_then(|s| serde_json::from_str::<Seen>(&s).ok()) {
                    Some(seen) if !seen.matters => None,
                    Some(seen) => Some((
                        Assignment {
                            deleted: true,
                            ..seen.assignment
                        },
                        None,
                    )),
                    None => Some((
                        Assignment {
                            deleted: true,
                            ..Assignment::default()
                        },
                        Some(
                            "kv-notify did not see this assignment written, and a deleted \
                         assignment cannot be read back: its role and principal are unknown \
                         (the vault's activity log has them)"
                                .to_owned(),
                        ),
                    )),
                },
            );
        }
        let discovery = self.resource_manager;
        let read = tokio::time::timeout_at(read_by, read_role(discovery, id)).await;
        let (assignment, matters, unread) = match read {
            Ok(Ok((assignment, matters))) => (assignment, matters, None),
            Ok(Err(error)) => {
                let why = match error {
                    VaultError::NotFound => "it no longer exists (deleted since)".to_owned(),
                    denied @ VaultError::Denied { .. } => {
                        format!("{denied}; grant the app's identity Reader on {scope}")
                    }
                    error @ (VaultError::Unreachable(_)
                    | VaultError::NotResolved(_)
                    | VaultError::GaveUp(..)) => format!("it could not be reached ({error})"),
                    error => error.to_string(),
                };
                let unread = format!(
                    "Resource Manager did not show the assignment or its role: {why}. An unread \
                     grant on a vault is treated as one that matters"
                );
                (Assignment::default(), true, Some(unread))
            }
            Err(_) => {
                let unread = "Resource Manager could not be reached or did not answer in \
                              time: the role and principal are unknown. An unread grant on a \
                              vault is treated as one that matters"
                    .to_owned();
                (Assignment::default(), true, Some(unread))
            }
        };
        if unread.is_none() {
            let seen = Seen {
                assignment: assignment.clone(),
                matters,
            };
            let value = serde_json::to_string(&seen).expect("an assignment serialises");
            self.ledger
                .remember(&key, &value)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(matters.then_some((assignment, unread)))
    }

    /// What changed in the vault's exposure settings, with what could not be read; `None` when
    /// nothing that decides exposure changed. The settings read are not kept here: see
    /// [`Self::judge`].
    async fn settings(
        &self,
        event: &ResourceEvent,
        id: &str,
        vault: &str,
        read_by: Instant,
    ) -> Result<Option<SettingsChange>, String> {
        let key = exposure_key(vault);
        let before = self.ledger.recall(&key).await.map_err(|e| e.to_string())?;
        let before: Option<Exposure> = before.and_then(|b| serde_json::from_str(&b).ok());
        let deleted = event.action == ResourceAction::Delete
            && event
                .operation
                .eq_ignore_ascii_case("Microsoft.KeyVault/vaults/delete");
        if deleted {
            let mut changes = vec![
                "the vault was deleted (while soft-deleted it can be recovered: az keyvault \
                 recover)"
                    .to_owned(),
            ];
            if let Some(before) = &before {
                changes.extend(before.describe().into_iter().map(|l| format!("it had {l}")));
            }
            return Ok(Some(SettingsChange::told(changes)));
        }
        let discovery = self.resource_manager;
        let read =
            tokio::time::timeout_at(read_by, discovery.read::<Resource<Value>>(id, VAULT_API))
                .await;
        let now = match read {
            Ok(Ok(resource)) => Exposure::of(&resource.properties),
            Ok(Err(VaultError::NotFound)) => {
                let gone = "the vault could not be read: it no longer exists".to_owned();
                return Ok(Some(SettingsChange::told(vec![gone])));
            }
            Ok(Err(error)) => {
                let hint = match error {
                    VaultError::Denied { .. } => "; grant the app's identity Reader on the vault",
                    _ => "",
                };
                let unread = format!(
                    "Resource Manager did not show the vault's settings ({error}): what changed \
                     is unknown{hint}"
                );
                return Ok(Some(SettingsChange::unread(unread)));
            }
            Err(_) => {
                let unread = "Resource Manager could not be reached or did not answer in time: \
                              what changed is unknown"
                    .to_owned();
                return Ok(Some(SettingsChange::unread(unread)));
            }
        };
        let opened =
            now.open_to_the_internet() && before.as_ref().is_none_or(|b| !b.open_to_the_internet());
        let mut changes = match &before {
            Some(before) => now.changes_since(before),
            None => {
                let mut said = vec![
                    "kv-notify had not seen this vault's settings before; they are now:".to_owned(),
                ];
                said.extend(now.describe());
                said
            }
        };
        if changes.is_empty() {
            return Ok(None);
        }
        if opened && before.is_some() {
            changes.insert(0, "the vault is now open to the internet".to_owned());
        }
        Ok(Some(SettingsChange {
            changes,
            unread: None,
            now: Some(now),
        }))
    }

    /// Keeps `exposure` as `vault`'s last seen settings.
    async fn keep(&self, vault: &str, exposure: &Exposure) -> Result<(), String> {
        let value = serde_json::to_string(exposure).expect("settings serialise");
        self.ledger
            .remember(&exposure_key(vault), &value)
            .await
            .map_err(|e| e.to_string())
    }

    /// Keeps `vault`'s settings as the sweep found them, when none are kept yet: what the first
    /// change is told against. Settings already kept are left as events keep them (a sweep's
    /// listing may postdate a change whose event is still on its way).
    pub async fn keep_first(&self, vault: &str, exposure: &Exposure) -> Result<bool, String> {
        let key = exposure_key(vault);
        if self
            .ledger
            .recall(&key)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(false);
        }
        self.keep(vault, exposure).await?;
        Ok(true)
    }
}

impl SettingsChange {
    /// Changes told without reading the settings (a deleted vault).
    fn told(changes: Vec<String>) -> Self {
        Self {
            changes,
            unread: None,
            now: None,
        }
    }

    /// The settings could not be read, and why.
    fn unread(why: String) -> Self {
        Self {
            changes: Vec::new(),
            unread: Some(why),
            now: None,
        }
    }
}

fn exposure_key(vault: &str) -> String {
    format!("exposure\n{}", vault.to_ascii_lowercase())
}

/// The assignment `id`'s role and principal, and whether the role matters.
async fn read_role(discovery: &Discovery, id: &str) -> Result<(Assignment, bool), VaultError> {
    let read: Resource<AssignmentProperties> = discovery.read(id, AUTHORIZATION_API).await?;
    let properties = read.properties;
    let role_id = properties
        .role_definition_id
        .ok_or_else(|| VaultError::Unexpected("an assignment without a role".to_owned()))?;
    let role: Resource<RoleDefinition> = discovery.read(&role_id, AUTHORIZATION_API).await?;
    let grants = role.properties.reach();
    let assignment = Assignment {
        deleted: false,
        role: Some(role.properties.role_name.clone()).filter(|n| !n.is_empty()),
        role_id: Some(role_id),
        principal_id: properties.principal_id,
        principal_type: properties.principal_type,
        principal_name: None,
        grants: grants.clone(),
    };
    Ok((assignment, grants.is_some()))
}

/// The watched vaults a concern reaches: under an assignment's scope (or holding it), or the
/// vault written. A vault known only by name (`VAULTS`) is matched by name.
fn reached<'v>(concern: &Concern<'_>, vaults: &'v [VaultRef]) -> Vec<&'v VaultRef> {
    match concern {
        Concern::RoleAssignment { scope, .. } => {
            let inside = vault_of(scope).map(|(_, name)| name);
            vaults
                .iter()
                .filter(|vault| match &vault.id {
                    Some(id) => covers(scope, id) || covers(id, scope),
                    None => inside.is_some_and(|name| vault.name.eq_ignore_ascii_case(name)),
                })
                .collect()
        }
        Concern::Vault { name, .. } | Concern::PrivateEndpoint { name, .. } => vaults
            .iter()
            .filter(|v| v.name.eq_ignore_ascii_case(name))
            .collect(),
        Concern::Nothing => Vec::new(),
    }
}

/// What every access change says of its event.
fn change_of(event: &ResourceEvent) -> AccessChange {
    AccessChange {
        caller: event.caller.who(),
        address: event.caller.ip.clone(),
        operation: event.operation.clone(),
        tenant: event.tenant.clone(),
        correlation: event.correlation.clone(),
        ..AccessChange::default()
    }
}

/// The alert's event.
fn alert(event: &ResourceEvent, judged: Judged) -> KeyVaultEvent {
    let event_type = if judged.settings {
        EventType::VaultSettingsChanged
    } else {
        EventType::VaultRoleAssignmentChanged
    };
    KeyVaultEvent {
        vault: Some(judged.vault),
        topic: judged.change.vault_id.clone(),
        event_time: event.event_time,
        access: Some(judged.change),
        ..KeyVaultEvent::new(event.id.clone(), event.key.clone(), event_type)
    }
}
