//! The vaults kv-notify watches, and what reads them: the Key Vault client, the watched list
//! (`VAULTS` and what Resource Manager lists), the owner tag, and the ledger that keeps the
//! troubles tags cause. The event path asks it whether an expiry event is still worth a mail;
//! the sweep reads every vault through it.

use super::{
    AccessWatch, Discovery, OwnerTag, Session, TagOwners, Unreachable, VaultClient, VaultError,
    VaultRef, Watched,
};
use crate::event::{EventType, KeyVaultEvent};
use crate::ledger::{Ledger, Trouble, TroubleKind};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Bound on the event path's look at a vault: an alert waits no longer for it.
const EVENT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The watched vaults and what reads them.
pub struct Vaults {
    client: VaultClient,
    watched: Watched,
    /// Resource Manager, for what an access change's alert reads.
    resource_manager: Arc<Discovery>,
    owner_tag: OwnerTag,
    /// Where owner tags that named foreign addresses are kept for the health notice.
    ledger: Arc<dyn Ledger>,
}

/// What the vault says of an expiry event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vetting {
    /// Not worth a mail, and why.
    Skip(String),
    /// Worth a mail; the owners its tags name, if it has an owner tag.
    Mail(Option<Vec<lettre::message::Mailbox>>),
    /// Not asked (not an expiry event, or its vault is not swept), or no answer from the
    /// vault: the mail goes to the rules' owners.
    Unknown,
    /// Whether its vault is watched could not be told before the invocation's deadline (the
    /// subscriptions were still being listed): the event fails, for Event Grid to deliver it
    /// again, rather than go to other recipients than its owners.
    Retry(String),
}

impl Vaults {
    /// The vaults `watched` lists, read with `client`, their owners named by `owner_tag`;
    /// `resource_manager` reads what access changes' alerts say.
    pub fn new(
        client: VaultClient,
        watched: Watched,
        resource_manager: Arc<Discovery>,
        owner_tag: OwnerTag,
        ledger: Arc<dyn Ledger>,
    ) -> Self {
        Self {
            client,
            watched,
            resource_manager,
            owner_tag,
            ledger,
        }
    }

    /// The Key Vault client.
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    /// The watched list.
    pub fn watched(&self) -> &Watched {
        &self.watched
    }

    /// What Resource Manager's events about the watched vaults call for (see [`AccessWatch`]).
    pub fn access(&self) -> AccessWatch<'_> {
        AccessWatch::new(&self.watched, &self.resource_manager, self.ledger.as_ref())
    }

    /// The owner tag.
    pub fn owner_tag(&self) -> &OwnerTag {
        &self.owner_tag
    }

    /// Whether this machine can sign in and reach the vaults at all (see
    /// [`Watched::reachable`]): for the command line, which says so once, up front.
    pub async fn reachable(&self) -> Result<(), Unreachable> {
        self.client
            .sign_in()
            .await
            .map_err(|e| Unreachable(format!("cannot sign in to Key Vault: {e}")))?;
        self.watched.reachable().await
    }

    /// Whether an expiry event is still worth a mail, by the vault's own account: not when
    /// its version is disabled (Key Vault sends expiry events for disabled secrets), replaced
    /// by a newer one, a certificate's own key or secret, or deleted. Returns why not. Only a
    /// vault the sweep reads is asked (an event's URL never decides where a token goes), and
    /// a lookup that fails or is slow costs no alert: the mail goes, to the rules' owners. The
    /// version's tags, else its vault's, name its owners (`OWNER_TAG`).
    pub async fn vet(&self, event: &KeyVaultEvent, deadline: Instant) -> Vetting {
        self.look(event, deadline).await.unwrap_or(Vetting::Unknown)
    }

    async fn look(&self, event: &KeyVaultEvent, deadline: Instant) -> Option<Vetting> {
        let (EventType::NearExpiry(kind) | EventType::Expired(kind)) = event.event_type else {
            return None;
        };
        let name = event.vault.as_deref()?.to_lowercase();
        let (object, version) = (event.object.as_deref()?, event.version.as_deref()?);
        let vault = match self.watched.named(&name, deadline).await {
            Ok(vault) => vault?,
            Err(not_in_time) => {
                tracing::warn!(vault = %name, "{not_in_time}: the event fails, to be delivered again");
                return Some(Vetting::Retry(format!(
                    "whether vault {name} is watched could not be told in time ({not_in_time})"
                )));
            }
        };
        let session = Session::new(vault);
        let deadline = deadline.min(Instant::now() + EVENT_LOOKUP_TIMEOUT);
        let lookup = self.client.versions(&session, kind, object, Some(version));
        let versions = match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(versions)) => versions,
            Ok(Err(VaultError::NotFound)) => {
                return Some(Vetting::Skip(format!(
                    "{} {object} no longer exists in vault {name}",
                    kind.as_str()
                )));
            }
            Ok(Err(error)) => {
                tracing::warn!(vault = %name, %object, %error, "cannot check the object in its vault: alerting the rules' owners");
                return None;
            }
            Err(_) => {
                tracing::warn!(vault = %name, %object, "no answer from the vault within {} s: alerting the rules' owners", EVENT_LOOKUP_TIMEOUT.as_secs());
                return None;
            }
        };
        let Some(this) = versions.wanted else {
            return Some(Vetting::Skip(format!(
                "version {version} no longer exists in vault {name}"
            )));
        };
        if !this.enabled {
            return Some(Vetting::Skip(format!(
                "version {version} is disabled in the vault: nothing can use it"
            )));
        }
        if this.managed {
            return Some(Vetting::Skip(
                "a certificate's own key or secret: the certificate's notices cover it".to_owned(),
            ));
        }
        if let Some(newest) = versions.newest.filter(|newest| newest.id != this.id) {
            return Some(Vetting::Skip(format!(
                "rotated: version {} is now the current one",
                newest.id
            )));
        }
        let (owners, ignored) = self.tag_owners(&event.display_name(), &this.tags, &session.vault);
        self.keep_ignored(&event.display_name(), &ignored).await;
        Some(Vetting::Mail(owners))
    }

    /// The owners `object`'s tags name, else those its vault's tags name (`None` without an
    /// owner tag on either), and the tag's entries that were ignored (logged: a tag naming a
    /// foreign domain is worth a look).
    pub fn tag_owners(
        &self,
        object: &str,
        tags: &std::collections::BTreeMap<String, String>,
        vault: &VaultRef,
    ) -> (Option<Vec<lettre::message::Mailbox>>, Vec<String>) {
        let tagged = self
            .owner_tag
            .owners(tags)
            .or_else(|| self.owner_tag.owners(&vault.tags));
        let Some(TagOwners { owners, ignored }) = tagged else {
            return (None, Vec::new());
        };
        if !ignored.is_empty() {
            tracing::warn!(
                code = "owner_tag_ignored",
                %object,
                ignored = %ignored.join(", "),
                "owner tag entries ignored: not an address in a domain kv-notify mails (OWNER_TAG_DOMAINS adds one)"
            );
        }
        (Some(owners), ignored)
    }

    /// Keeps an owner tag's ignored entries for the health notice.
    pub async fn keep_ignored(&self, object: &str, ignored: &[String]) {
        if ignored.is_empty() {
            return;
        }
        let detail = format!(
            "ignored {}: not in a domain kv-notify mails (OWNER_TAG_DOMAINS adds one)",
            ignored.join(", ")
        );
        let trouble = Trouble::seen(TroubleKind::TagIgnored, object, &detail, Utc::now());
        crate::ledger::keep(self.ledger.as_ref(), &trouble).await;
    }
}
