//! The event path's look at the vault: is the version an expiry event names still the one to
//! mail about?

use super::Sweeper;
use crate::event::{EventType, KeyVaultEvent};
use crate::vault::{Session, VaultError};
use std::time::Duration;

/// Bound on the look: an alert waits no longer for it.
const EVENT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl Sweeper {
    /// Whether an expiry event is still worth a mail, by the vault's own account: not when
    /// its version is disabled (Key Vault sends expiry events for disabled secrets), replaced
    /// by a newer one, a certificate's own key or secret, or deleted. Returns why not. Only a
    /// vault in `VAULTS` is asked (an event's URL never decides where a token goes), and a
    /// lookup that fails or is slow costs no alert: the mail goes.
    pub async fn vet(&self, event: &KeyVaultEvent) -> Option<String> {
        let (EventType::NearExpiry(kind) | EventType::Expired(kind)) = event.event_type else {
            return None;
        };
        let name = event.vault.as_deref()?.to_lowercase();
        let vault = self.settings.vaults.iter().find(|v| v.name == name)?;
        let (object, version) = (event.object.as_deref()?, event.version.as_deref()?);
        let session = Session::new(vault.clone());
        let lookup = self.client.versions(&session, kind, object);
        let versions = match tokio::time::timeout(EVENT_LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(versions)) => versions,
            Ok(Err(VaultError::NotFound)) => {
                return Some(format!(
                    "{} {object} no longer exists in vault {name}",
                    kind.as_str()
                ));
            }
            Ok(Err(error)) => {
                tracing::warn!(vault = %name, %object, %error, "cannot check the object in its vault: alerting anyway");
                return None;
            }
            Err(_) => {
                tracing::warn!(vault = %name, %object, "no answer from the vault within {} s: alerting anyway", EVENT_LOOKUP_TIMEOUT.as_secs());
                return None;
            }
        };
        let Some(this) = versions.iter().find(|v| v.id.eq_ignore_ascii_case(version)) else {
            return Some(format!(
                "version {version} no longer exists in vault {name}"
            ));
        };
        if !this.enabled {
            return Some(format!(
                "version {version} is disabled in the vault: nothing can use it"
            ));
        }
        if this.managed {
            return Some(
                "a certificate's own key or secret: the certificate's notices cover it".to_owned(),
            );
        }
        match versions.last() {
            Some(newest) if newest.id != this.id => Some(format!(
                "rotated: version {} is now the current one",
                newest.id
            )),
            _ => None,
        }
    }
}
