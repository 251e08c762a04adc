//! Whether Event Grid delivers each watched vault's events to this app: every vault needs an
//! Event Grid subscription on its system topic that sends the expiry and access types to this
//! app's function or to its queue. A vault created after the deployment has none: it is swept,
//! but no access-policy alert and no expiry event will ever come from it.
//!
//! Role assignments and settings changes of the vaults come another way: as Resource Manager's
//! events, from each subscription's own system topic. A subscription whose topic delivers none
//! here leaves its vaults' access changes unsaid, RBAC vaults' above all.
//!
//! Resource Manager is asked once per subscription (its system topics), once per watched vault
//! that has a topic, and once for the subscription's own topic (each topic's event
//! subscriptions).

use crate::event::ACCESS_OPERATIONS;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// The event types a vault's subscription must deliver: the six expiry types and the access
/// policy change (short names).
pub const NEEDED_TYPES: [&str; 7] = [
    "SecretNearExpiry",
    "SecretExpired",
    "KeyNearExpiry",
    "KeyExpired",
    "CertificateNearExpiry",
    "CertificateExpired",
    "VaultAccessPolicyChanged",
];

/// The event types a subscription's Resource Manager events must include (short names).
pub const RESOURCE_TYPES: [&str; 2] = ["ResourceWriteSuccess", "ResourceDeleteSuccess"];

/// How the watched vaults stand, and the watched subscriptions' Resource Manager events.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Each watched vault, by name: whether its topic delivers its expiry and access-policy
    /// events here.
    pub vaults: Vec<(String, Covered)>,
    /// Each subscription holding a watched vault, by id: whether its own topic delivers the
    /// role assignments and settings changes of its vaults here.
    pub access: Vec<(String, Covered)>,
}

/// The event subscriptions of one subscription's system topics, as coverage reads them.
#[derive(Debug, Default)]
pub struct TopicSubscriptions {
    /// By vault name (lower case), the watched vaults' topics: their event subscriptions'
    /// properties, or why they could not be read.
    pub vaults: HashMap<String, Result<Vec<Value>, String>>,
    /// The subscription's own topic, likewise; `None` when it has none.
    pub resource_events: Option<Result<Vec<Value>, String>>,
}

/// What "this app" is, to recognise a delivery to it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The function app's name (`WEBSITE_SITE_NAME`), when running in Azure.
    pub site: Option<String>,
    /// Its storage account's name, where the queue `queue` is.
    pub account: Option<String>,
    /// The pushed function's name (`function-trigger`).
    pub function: String,
    /// The queue Event Grid delivers to on private networks (`kv-notify-events`).
    pub queue: String,
}

/// A system topic, as Resource Manager lists it.
#[derive(Debug, Deserialize)]
pub(super) struct Topic {
    pub id: Option<String>,
    #[serde(default)]
    pub properties: TopicProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TopicProperties {
    pub source: Option<String>,
    pub topic_type: Option<String>,
}

/// An event subscription: its `properties`, read as they come.
#[derive(Debug, Deserialize)]
pub(super) struct EventSubscription {
    #[serde(default)]
    pub properties: Value,
}

/// How one vault stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covered {
    /// A subscription delivers its expiry and access events to this app.
    Yes,
    /// No system topic, or no subscription on it delivering here: what is missing, in words.
    No(String),
    /// Its subscription could not be read: why.
    Unseen(String),
    /// Not checked: the app's identity is not meant to see subscriptions (`VAULTS` alone).
    NotChecked(String),
}

impl Covered {
    /// How a topic stands: `None` when there is none (`no_topic` says so), else whether one of
    /// its event subscriptions `delivers` here what the alerts need (`needed`, in words).
    pub(super) fn of_topic(
        topic: Option<&Result<Vec<Value>, String>>,
        no_topic: &str,
        needed: &str,
        delivers: impl Fn(&EventSubscriptionView<'_>) -> Result<(), String>,
    ) -> Self {
        let subscriptions = match topic {
            None => return Self::No(no_topic.to_owned()),
            Some(Err(why)) => {
                return Self::Unseen(format!(
                    "cannot read its topic's event subscriptions ({why}): grant the app's identity \
                     Reader"
                ));
            }
            Some(Ok(subscriptions)) => subscriptions,
        };
        let answers: Vec<Result<(), String>> = subscriptions
            .iter()
            .map(|s| delivers(&EventSubscriptionView(s)))
            .collect();
        if answers.iter().any(Result::is_ok) {
            Self::Yes
        } else if answers.is_empty() {
            Self::No("its system topic has no event subscription".to_owned())
        } else {
            let why: Vec<String> = answers.into_iter().filter_map(Result::err).collect();
            Self::No(format!(
                "none of its topic's {} event subscription(s) delivers {needed} to this app ({})",
                why.len(),
                why.join("; ")
            ))
        }
    }
}

impl Topic {
    /// Whether this is the subscription `id`'s own topic (Resource Manager's events).
    pub(super) fn is_of_subscription(&self, id: &str) -> bool {
        let kind = self.properties.topic_type.as_deref().unwrap_or_default();
        let source = self.properties.source.as_deref().unwrap_or_default();
        kind.eq_ignore_ascii_case("Microsoft.Resources.Subscriptions")
            && source
                .trim_matches('/')
                .eq_ignore_ascii_case(&format!("subscriptions/{id}"))
    }

    /// The vault name this topic is of (lower case), when it is a Key Vault topic.
    pub(super) fn vault(&self) -> Option<String> {
        let kind = self.properties.topic_type.as_deref()?;
        if !kind.eq_ignore_ascii_case("Microsoft.KeyVault.vaults") {
            return None;
        }
        let source = self.properties.source.as_deref()?;
        let (provider, name) = source.rsplit_once('/')?;
        provider
            .to_ascii_lowercase()
            .ends_with("/providers/microsoft.keyvault/vaults")
            .then(|| name.to_ascii_lowercase())
    }
}

impl Target {
    /// Whether a vault topic's `subscription` delivers the needed types to this app; `Err` says
    /// what it lacks.
    pub fn delivers(&self, subscription: &EventSubscriptionView<'_>) -> Result<(), String> {
        self.delivers_types(subscription.0, &NEEDED_TYPES)
    }

    /// Whether a subscription topic's `subscription` delivers Resource Manager's writes and
    /// deletes of role assignments and vaults to this app; `Err` says what it lacks. An
    /// operation filter (`data.operationName` in a list) must let every operation kv-notify
    /// reads through.
    pub fn delivers_resource_events(
        &self,
        subscription: &EventSubscriptionView<'_>,
    ) -> Result<(), String> {
        let properties = subscription.0;
        self.delivers_types(properties, &RESOURCE_TYPES)?;
        let filters = properties.pointer("/filter/advancedFilters");
        for filter in filters.and_then(Value::as_array).into_iter().flatten() {
            let text = |name: &str| filter.get(name).and_then(Value::as_str).unwrap_or_default();
            if !text("key").eq_ignore_ascii_case("data.operationName")
                || !text("operatorType").eq_ignore_ascii_case("StringIn")
            {
                continue;
            }
            let values = filter.get("values").and_then(Value::as_array);
            let values: Vec<&str> = values
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let missing: Vec<&str> = ACCESS_OPERATIONS
                .into_iter()
                .filter(|operation| !values.iter().any(|v| v.eq_ignore_ascii_case(operation)))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "its data.operationName filter leaves out {}",
                    missing.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Whether `properties` deliver to this app and include the event types `needed` (short
    /// names; no type filter takes in every type).
    fn delivers_types(&self, properties: &Value, needed: &[&str]) -> Result<(), String> {
        // With the topic's identity the destination is under `deliveryWithResourceIdentity`.
        let destination = properties
            .get("destination")
            .filter(|d| !d.is_null())
            .or_else(|| properties.pointer("/deliveryWithResourceIdentity/destination"))
            .ok_or("it has no destination")?;
        if !self.is_here(destination) {
            return Err("it delivers elsewhere".to_owned());
        }
        let types = properties.pointer("/filter/includedEventTypes");
        let missing: Vec<&str> = match types.and_then(Value::as_array) {
            Some(listed) if !listed.is_empty() => needed
                .iter()
                .copied()
                .filter(|needed| {
                    !listed.iter().filter_map(Value::as_str).any(|t| {
                        let short = t.rsplit('.').next().unwrap_or(t);
                        short.eq_ignore_ascii_case(needed)
                    })
                })
                .collect(),
            // No filter: every type.
            _ => Vec::new(),
        };
        match missing.as_slice() {
            [] => Ok(()),
            missing => Err(format!("it leaves out {}", missing.join(", "))),
        }
    }

    /// Whether a destination is this app's function, webhook or queue.
    fn is_here(&self, destination: &Value) -> bool {
        let kind = destination
            .get("endpointType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = |pointer: &str| {
            destination
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let site = |text: &str, pattern: &dyn Fn(&str) -> String| {
            self.site
                .as_deref()
                .is_none_or(|site| text.contains(&pattern(&site.to_ascii_lowercase())))
        };
        if kind.eq_ignore_ascii_case("AzureFunction") {
            let id = text("/properties/resourceId");
            id.ends_with(&format!(
                "/functions/{}",
                self.function.to_ascii_lowercase()
            )) && site(&id, &|site| format!("/sites/{site}/"))
        } else if kind.eq_ignore_ascii_case("StorageQueue") {
            let id = text("/properties/resourceId");
            text("/properties/queueName") == self.queue.to_ascii_lowercase()
                && self.account.as_deref().is_none_or(|account| {
                    id.ends_with(&format!(
                        "/storageaccounts/{}",
                        account.to_ascii_lowercase()
                    ))
                })
        } else if kind.eq_ignore_ascii_case("WebHook") {
            let url = text("/properties/endpointBaseUrl") + &text("/properties/endpointUrl");
            url.contains("/runtime/webhooks/eventgrid") && site(&url, &|site| format!("://{site}."))
        } else {
            false
        }
    }
}

/// An event subscription's properties, as [`Target::delivers`] reads them.
pub struct EventSubscriptionView<'a>(pub &'a Value);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> Target {
        Target {
            site: Some("kvn-prod".to_owned()),
            account: Some("kvnprodst".to_owned()),
            function: "function-trigger".to_owned(),
            queue: "kv-notify-events".to_owned(),
        }
    }

    #[test]
    fn a_function_an_identity_queue_or_a_webhook_of_this_app_is_a_delivery_here() {
        let all = [
            json!({"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/kvn-prod/functions/function-trigger"}}}),
            json!({"destination": null, "deliveryWithResourceIdentity": {"identity": {"type": "SystemAssigned"}, "destination": {"endpointType": "StorageQueue", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/kvnprodst", "queueName": "kv-notify-events"}}}}),
            json!({"destination": {"endpointType": "WebHook", "properties": {"endpointBaseUrl": "https://kvn-prod.azurewebsites.net/runtime/webhooks/eventgrid"}}, "filter": {"includedEventTypes": NEEDED_TYPES.map(|t| format!("Microsoft.KeyVault.{t}"))}}),
        ];
        for properties in &all {
            assert_eq!(
                target().delivers(&EventSubscriptionView(properties)),
                Ok(()),
                "{properties}"
            );
        }
    }

    #[test]
    fn another_app_or_missing_types_are_no_delivery() {
        let elsewhere = json!({"destination": {"endpointType": "AzureFunction", "properties": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/other/functions/function-trigger"}}});
        assert!(
            target()
                .delivers(&EventSubscriptionView(&elsewhere))
                .is_err()
        );
        let partial = json!({"destination": {"endpointType": "StorageQueue", "properties": {"resourceId": "/x/storageAccounts/kvnprodst", "queueName": "kv-notify-events"}}, "filter": {"includedEventTypes": ["Microsoft.KeyVault.SecretNearExpiry"]}});
        let Err(why) = target().delivers(&EventSubscriptionView(&partial)) else {
            panic!("a subscription of one type covers nothing");
        };
        assert!(why.contains("VaultAccessPolicyChanged"), "{why}");
    }
}
