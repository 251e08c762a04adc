//! Finding vaults through Azure Resource Manager: every `Microsoft.KeyVault/vaults` resource
//! in the subscriptions of `SUBSCRIPTIONS`, with its URI and its tags (the Reader role on the
//! subscription is enough). The token is for Resource Manager and goes nowhere else.

use super::{Session, VaultClient, VaultError, VaultRef};
use crate::identity::ManagedIdentity;
use futures_util::future::join_all;
use reqwest::Url;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The Key Vault resource provider's API version: GA everywhere, including national clouds.
const API_VERSION: &str = "2023-07-01";

/// Lists the vaults of a set of subscriptions.
#[derive(Debug)]
pub struct Discovery {
    client: VaultClient,
    /// Resource Manager, as the session every request goes through.
    endpoint: VaultRef,
    subscriptions: Vec<String>,
    /// The domain every vault's URI must lie under.
    vault_domain: String,
}

/// What one discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The vaults, in subscription order, each with its tags.
    pub vaults: Vec<VaultRef>,
    /// The subscriptions that could not be listed, and why.
    pub failures: Vec<(String, VaultError)>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Resource>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    id: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    properties: Option<Properties>,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(rename = "vaultUri")]
    vault_uri: Option<String>,
}

impl Discovery {
    /// Discovery of `subscriptions`' vaults through Resource Manager at `endpoint`, with tokens
    /// from `identity` (for Resource Manager).
    /// Vaults whose URI is not under `vault_domain` are not swept (see
    /// [`super::vault_domain`]).
    pub fn new(
        identity: ManagedIdentity,
        endpoint: Url,
        subscriptions: Vec<String>,
        vault_domain: String,
    ) -> Result<Self, String> {
        let endpoint = VaultRef {
            name: endpoint.host_str().unwrap_or_default().to_owned(),
            url: endpoint,
            tags: BTreeMap::new(),
        };
        Ok(Self {
            client: VaultClient::new(identity)?,
            endpoint,
            subscriptions,
            vault_domain,
        })
    }

    /// What Resource Manager's tokens are for: its endpoint, with a trailing slash
    /// (`https://management.azure.com/`).
    pub fn resource(endpoint: &Url) -> String {
        format!("{}/", endpoint.origin().ascii_serialization())
    }

    /// Every vault of every subscription, the subscriptions listed at once.
    pub async fn vaults(&self) -> Discovered {
        let lists = join_all(self.subscriptions.iter().map(|id| self.list(id))).await;
        let mut discovered = Discovered::default();
        for (id, list) in self.subscriptions.iter().zip(lists) {
            match list {
                Ok(vaults) => discovered.vaults.extend(vaults),
                Err(error) => {
                    tracing::error!(subscription = %id, %error, "cannot list the subscription's vaults");
                    discovered.failures.push((id.clone(), error));
                }
            }
        }
        discovered
    }

    /// One subscription's vaults, page by page.
    async fn list(&self, subscription: &str) -> Result<Vec<VaultRef>, VaultError> {
        let session = Session::new(self.endpoint.clone());
        let mut url = self.endpoint.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend([
                "subscriptions",
                subscription,
                "providers",
                "Microsoft.KeyVault",
                "vaults",
            ]);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        let mut vaults = Vec::new();
        loop {
            let page: Page = self.client.get(&session, url).await?;
            for resource in page.value {
                let uri = resource.properties.and_then(|p| p.vault_uri);
                match uri
                    .as_deref()
                    .map(|uri| VaultRef::parse(uri, &self.vault_domain))
                {
                    Some(Ok(mut vault)) => {
                        vault.tags = resource.tags.unwrap_or_default();
                        vaults.push(vault);
                    }
                    Some(Err(why)) => {
                        tracing::warn!(subscription, vault = ?resource.id, %why, "a vault with an unusable URI: not swept");
                    }
                    None => {
                        tracing::warn!(subscription, vault = ?resource.id, "a vault without a URI: not swept");
                    }
                }
            }
            match page.next_link.filter(|link| !link.is_empty()) {
                None => return Ok(vaults),
                Some(next) => url = self.endpoint.follow(&next)?,
            }
        }
    }
}
