//! The settings that decide who can reach a vault at all, as Resource Manager shows them in a
//! vault's `properties`: public network access, network rules, private endpoint connections,
//! the permission model, and the platform access flags. Kept per vault so that a change can be
//! told as what it was and what it is.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Most network rules kept of one vault: Key Vault allows 1,000 IP rules and 200 virtual
/// network rules; a longer list is not a vault's.
const MAX_RULES: usize = 1_200;

/// What decides a vault's exposure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Exposure {
    /// `Enabled` or `Disabled` (absent: enabled, the default).
    pub public_network_access: Option<String>,
    /// `networkAcls.defaultAction`: `Allow` (absent rules mean Allow) or `Deny`.
    pub default_action: Option<String>,
    /// `networkAcls.bypass`: `AzureServices` or `None`.
    pub bypass: Option<String>,
    /// `networkAcls.ipRules[].value`: addresses and ranges let in.
    pub ip_rules: BTreeSet<String>,
    /// `networkAcls.virtualNetworkRules[].id`: subnets let in.
    pub subnets: BTreeSet<String>,
    /// Private endpoint connections by name, with their state (`Approved`, `Pending`, …).
    pub private_endpoints: BTreeMap<String, String>,
    /// `enableRbacAuthorization`: Azure RBAC (else access policies).
    pub rbac: Option<bool>,
    /// `enabledForDeployment`: virtual machines may read certificates stored as secrets.
    pub for_deployment: Option<bool>,
    /// `enabledForTemplateDeployment`: Resource Manager deployments may read secrets.
    pub for_template_deployment: Option<bool>,
    /// `enabledForDiskEncryption`: Azure Disk Encryption may read secrets and unwrap keys.
    pub for_disk_encryption: Option<bool>,
}

impl Exposure {
    /// Reads a vault's `properties` object (anything missing stays unknown).
    pub fn of(properties: &Value) -> Self {
        let text = |value: &Value| value.as_str().map(|s| s.trim().to_owned());
        let acls = &properties["networkAcls"];
        let list = |rules: &Value, field: &str| -> BTreeSet<String> {
            let rules = rules.as_array().map(Vec::as_slice).unwrap_or_default();
            rules
                .iter()
                .take(MAX_RULES)
                .filter_map(|rule| text(&rule[field]))
                .collect()
        };
        let endpoints = properties["privateEndpointConnections"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let private_endpoints = endpoints
            .iter()
            .take(MAX_RULES)
            .filter_map(|connection| {
                let id = text(&connection["id"])?;
                let name = id.rsplit('/').next().unwrap_or(&id).to_owned();
                let state = &connection["properties"]["privateLinkServiceConnectionState"];
                let status = text(&state["status"]).unwrap_or_else(|| "unknown".to_owned());
                Some((name, status))
            })
            .collect();
        Self {
            public_network_access: text(&properties["publicNetworkAccess"]),
            default_action: text(&acls["defaultAction"]),
            bypass: text(&acls["bypass"]),
            ip_rules: list(&acls["ipRules"], "value"),
            subnets: list(&acls["virtualNetworkRules"], "id"),
            private_endpoints,
            rbac: properties["enableRbacAuthorization"].as_bool(),
            for_deployment: properties["enabledForDeployment"].as_bool(),
            for_template_deployment: properties["enabledForTemplateDeployment"].as_bool(),
            for_disk_encryption: properties["enabledForDiskEncryption"].as_bool(),
        }
    }

    /// Whether anyone on the internet may reach the vault's endpoint: public access on, and no
    /// network rule denying by default (or a rule letting in every address).
    pub fn open_to_the_internet(&self) -> bool {
        let public = !is(&self.public_network_access, "Disabled");
        let denies = is(&self.default_action, "Deny");
        public && (!denies || self.ip_rules.iter().any(|r| everyone(r)))
    }

    /// Each difference from `before`, in words, the ones that open the vault first.
    pub fn changes_since(&self, before: &Exposure) -> Vec<String> {
        let mut changes = Vec::new();
        let word = |value: &Option<String>, missing: &str| {
            value.clone().unwrap_or_else(|| missing.to_owned())
        };
        if !same(&self.public_network_access, &before.public_network_access) {
            changes.push(format!(
                "public network access: {} → {}",
                word(&before.public_network_access, "Enabled"),
                word(&self.public_network_access, "Enabled")
            ));
        }
        if !same(&self.default_action, &before.default_action) {
            let allow = is(&self.default_action, "Allow");
            changes.push(format!(
                "network rules' default action: {} → {}{}",
                word(&before.default_action, "Allow"),
                word(&self.default_action, "Allow"),
                if allow {
                    " (every address may reach the vault)"
                } else {
                    ""
                }
            ));
        }
        for added in self.ip_rules.difference(&before.ip_rules) {
            let note = if everyone(added) {
                ": every address on the internet"
            } else {
                ""
            };
            changes.push(format!("IP range {added} let in{note}"));
        }
        for removed in before.ip_rules.difference(&self.ip_rules) {
            changes.push(format!("IP range {removed} no longer let in"));
        }
        for added in self.subnets.difference(&before.subnets) {
            changes.push(format!("subnet {} let in", last_part(added)));
        }
        for removed in before.subnets.difference(&self.subnets) {
            changes.push(format!("subnet {} no longer let in", last_part(removed)));
        }
        for (name, state) in &self.private_endpoints {
            match before.private_endpoints.get(name) {
                None => changes.push(format!(
                    "private endpoint connection {name} added ({state})"
                )),
                Some(was) if !was.eq_ignore_ascii_case(state) => changes.push(format!(
                    "private endpoint connection {name}: {was} → {state}"
                )),
                Some(_) => {}
            }
        }
        for name in before.private_endpoints.keys() {
            if !self.private_endpoints.contains_key(name) {
                changes.push(format!("private endpoint connection {name} removed"));
            }
        }
        if !same(&self.bypass, &before.bypass) {
            changes.push(format!(
                "trusted Azure services bypass: {} → {}",
                word(&before.bypass, "AzureServices"),
                word(&self.bypass, "AzureServices")
            ));
        }
        if self.rbac.is_some() && before.rbac.is_some() && self.rbac != before.rbac {
            changes.push(format!(
                "permission model: {} → {}",
                model(before.rbac),
                model(self.rbac)
            ));
        }
        for (name, now, was) in [
            (
                "enabledForDeployment",
                self.for_deployment,
                before.for_deployment,
            ),
            (
                "enabledForTemplateDeployment",
                self.for_template_deployment,
                before.for_template_deployment,
            ),
            (
                "enabledForDiskEncryption",
                self.for_disk_encryption,
                before.for_disk_encryption,
            ),
        ] {
            if now.is_some() && was.is_some() && now != was {
                changes.push(format!(
                    "{name}: {} → {}",
                    was.unwrap_or_default(),
                    now.unwrap_or_default()
                ));
            }
        }
        changes
    }

    /// The settings as they are, in words: what an alert says when there is nothing earlier to
    /// compare with.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "public network access: {}",
            self.public_network_access.as_deref().unwrap_or("Enabled")
        )];
        lines.push(format!(
            "network rules' default action: {}",
            self.default_action.as_deref().unwrap_or("Allow")
        ));
        if !self.ip_rules.is_empty() {
            let rules: Vec<&str> = self.ip_rules.iter().map(String::as_str).take(10).collect();
            lines.push(format!("IP ranges let in: {}", rules.join(", ")));
        }
        if !self.private_endpoints.is_empty() {
            let endpoints: Vec<String> = self
                .private_endpoints
                .iter()
                .take(10)
                .map(|(name, state)| format!("{name} ({state})"))
                .collect();
            lines.push(format!(
                "private endpoint connections: {}",
                endpoints.join(", ")
            ));
        }
        if self.rbac.is_some() {
            lines.push(format!("permission model: {}", model(self.rbac)));
        }
        let flags = [
            ("enabledForDeployment", self.for_deployment),
            ("enabledForTemplateDeployment", self.for_template_deployment),
            ("enabledForDiskEncryption", self.for_disk_encryption),
        ];
        let on: Vec<&str> = flags
            .iter()
            .filter(|(_, value)| *value == Some(true))
            .map(|(name, _)| *name)
            .collect();
        if !on.is_empty() {
            lines.push(format!("on: {}", on.join(", ")));
        }
        lines
    }
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        // One side unknown (an older record, a thinner answer): not called a change.
        _ => true,
    }
}

fn is(value: &Option<String>, expected: &str) -> bool {
    value
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case(expected))
}

/// Whether an IP rule lets in every address.
fn everyone(rule: &str) -> bool {
    matches!(rule.trim(), "0.0.0.0/0" | "0.0.0.0/1" | "::/0")
}

fn model(rbac: Option<bool>) -> &'static str {
    match rbac {
        Some(true) => "Azure RBAC",
        _ => "access policies",
    }
}

fn last_part(id: &str) -> &str {
    id.rsplit("/virtualNetworks/").next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn closed() -> Value {
        json!({
            "publicNetworkAccess": "Disabled",
            "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": []},
            "enableRbacAuthorization": true,
            "enabledForDeployment": false,
        })
    }

    #[test]
    fn opening_the_network_is_told_change_by_change() {
        let before = Exposure::of(&closed());
        let mut opened = closed();
        opened["publicNetworkAccess"] = json!("Enabled");
        opened["networkAcls"]["ipRules"] = json!([{"value": "0.0.0.0/0"}]);
        let after = Exposure::of(&opened);

        let changes = after.changes_since(&before);

        assert_eq!(
            changes,
            [
                "public network access: Disabled → Enabled",
                "IP range 0.0.0.0/0 let in: every address on the internet",
            ]
        );
        assert!(after.open_to_the_internet());
        assert!(!before.open_to_the_internet());
    }

    #[test]
    fn the_same_settings_are_no_change_and_unknowns_are_not_guessed() {
        let before = Exposure::of(&closed());
        assert!(Exposure::of(&closed()).changes_since(&before).is_empty());
        let thinner = Exposure::of(&json!({"publicNetworkAccess": "Disabled"}));
        assert!(thinner.changes_since(&before).is_empty());
    }

    #[test]
    fn private_endpoints_and_the_permission_model_are_followed() {
        let before = Exposure::of(&closed());
        let mut after = closed();
        after["enableRbacAuthorization"] = json!(false);
        after["privateEndpointConnections"] = json!([{"id": "/x/privateEndpointConnections/pe-1",
            "properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}}]);
        let changes = Exposure::of(&after).changes_since(&before);
        assert_eq!(
            changes,
            [
                "private endpoint connection pe-1 added (Approved)",
                "permission model: Azure RBAC → access policies",
            ]
        );
    }
}
