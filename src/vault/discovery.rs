//! Finding vaults through Azure Resource Manager: every `Microsoft.KeyVault/vaults` resource
//! in the subscriptions of `SUBSCRIPTIONS`, with its URI and its tags (the Reader role on the
//! subscription is enough). The token is for Resource Manager and goes nowhere else.

use super::client::Pager;
use super::coverage::{EventSubscription, Topic, TopicSubscriptions};
use super::{Exposure, Session, VaultClient, VaultError, VaultRef};
use crate::identity::ManagedIdentity;
use futures_util::{Stream, StreamExt, stream};
use reqwest::Url;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// Subscriptions listed at once (each listing is one request at a time, page after page).
pub const SUBSCRIPTIONS_AT_ONCE: usize = 4;

/// The Key Vault resource provider's API version: GA everywhere, including national clouds.
const API_VERSION: &str = "2023-07-01";

/// The Event Grid resource provider's API version (identity-based delivery included).
const EVENT_GRID_API_VERSION: &str = "2022-06-15";

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

#[derive(Deserialize)]
struct Resource {
    id: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    /// Read whole: its URI, and the settings that decide its exposure.
    properties: Option<serde_json::Value>,
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
    ) -> Result<Self, crate::http::PolicyError> {
        let endpoint = VaultRef {
            name: endpoint.host_str().unwrap_or_default().to_owned(),
            url: endpoint,
            tags: BTreeMap::new(),
            id: None,
            exposure: None,
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

    /// Gets a token for Resource Manager (see [`VaultClient::sign_in`]).
    pub async fn sign_in(&self) -> Result<(), crate::identity::TokenError> {
        self.client.sign_in().await
    }

    /// The host of Resource Manager.
    pub fn host(&self) -> &str {
        &self.endpoint.name
    }

    /// The subscriptions it lists.
    pub fn subscriptions(&self) -> &[String] {
        &self.subscriptions
    }

    /// The vaults of each subscription of `ids`, as each listing ends: at most
    /// [`SUBSCRIPTIONS_AT_ONCE`] at a time, so that hundreds of subscriptions take as many
    /// connections to Resource Manager, not hundreds.
    pub fn lists<'a>(
        &'a self,
        ids: &'a [String],
    ) -> impl Stream<Item = (String, Result<Vec<VaultRef>, VaultError>)> + 'a {
        stream::iter(ids)
            .map(move |id| async move { (id.clone(), self.list(id).await) })
            .buffer_unordered(SUBSCRIPTIONS_AT_ONCE)
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
        let mut pages = Pager::<Resource>::new(&self.client, &session, url);
        while let Some(resources) = pages.next().await? {
            for resource in resources {
                let properties = resource.properties.unwrap_or_default();
                let uri = properties["vaultUri"].as_str();
                match uri.map(|uri| VaultRef::parse(uri, &self.vault_domain)) {
                    Some(Ok(mut vault)) => {
                        vault.tags = resource.tags.unwrap_or_default();
                        vault.exposure = Some(Box::new(Exposure::of(&properties)));
                        vault.id = resource.id.clone();
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
        }
        Ok(vaults)
    }

    /// For the vaults named in `vaults` (lower case) that have a system topic in
    /// `subscription`, and for the subscription's own topic: the properties of each of the
    /// topic's event subscriptions (or why they could not be read). One request for the
    /// subscription's topics, one per topic read.
    pub async fn event_subscriptions(
        &self,
        subscription: &str,
        vaults: &HashSet<String>,
    ) -> Result<TopicSubscriptions, VaultError> {
        let session = Session::new(self.endpoint.clone());
        let topics_url = self.arm_url(&[
            "subscriptions",
            subscription,
            "providers",
            "Microsoft.EventGrid",
            "systemTopics",
        ]);
        // The topics to read: a watched vault's (by its name), or the subscription's (None).
        let mut topics: Vec<(Option<String>, String)> = Vec::new();
        let mut pages = Pager::<Topic>::new(&self.client, &session, topics_url);
        while let Some(page) = pages.next().await? {
            topics.extend(page.into_iter().filter_map(|topic| {
                let of = match topic.vault() {
                    Some(vault) if vaults.contains(&vault) => Some(vault),
                    Some(_) => return None,
                    None if topic.is_of_subscription(subscription) => None,
                    None => return None,
                };
                Some((of, topic.id?))
            }));
        }
        let mut found = TopicSubscriptions::default();
        for (of, topic) in topics {
            let result = self.topic_subscriptions(&session, &topic).await;
            let entry = match of {
                Some(vault) => found.vaults.entry(vault).or_insert_with(|| Ok(Vec::new())),
                None => found.resource_events.get_or_insert_with(|| Ok(Vec::new())),
            };
            match (entry, result) {
                (Ok(all), Ok(more)) => all.extend(more),
                (entry, Err(why)) => *entry = Err(why),
                (Err(_), Ok(_)) => {}
            }
        }
        Ok(found)
    }

    /// The properties of each event subscription of the system topic `topic` (its id), page
    /// by page, or why they could not be read.
    async fn topic_subscriptions(
        &self,
        session: &Session,
        topic: &str,
    ) -> Result<Vec<serde_json::Value>, String> {
        let mut parts: Vec<&str> = topic.trim_matches('/').split('/').collect();
        parts.push("eventSubscriptions");
        let url = self.arm_url(&parts);
        let mut read = Vec::new();
        let mut pages = Pager::<EventSubscription>::new(&self.client, session, url);
        loop {
            match pages.next().await {
                Ok(Some(page)) => read.extend(page.into_iter().map(|s| s.properties)),
                Ok(None) => return Ok(read),
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    /// The resource `id` (`/subscriptions/…`, or `/providers/…` for a built-in role
    /// definition), read from Resource Manager at `api_version`. The id comes from an event:
    /// it only ever names a path on Resource Manager's own host, where the token goes.
    pub async fn read<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        api_version: &str,
    ) -> Result<T, VaultError> {
        let segments: Vec<&str> = id.trim_matches('/').split('/').collect();
        let usable = matches!(segments.first(), Some(&"subscriptions" | &"providers"))
            && segments
                .iter()
                .all(|s| !s.is_empty() && *s != "." && *s != ".." && !s.contains(['?', '#', '%']));
        if !usable {
            return Err(VaultError::Unexpected(format!(
                "{id:?} is not a Resource Manager id"
            )));
        }
        let mut url = self.endpoint.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        let session = Session::new(self.endpoint.clone());
        self.client.get(&session, url).await
    }

    /// Resource Manager's URL of the path `segments`, with the Event Grid API version.
    fn arm_url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.query_pairs_mut()
            .append_pair("api-version", EVENT_GRID_API_VERSION);
        url
    }
}
