//! A stand-in for Key Vault's data plane over HTTPS (tests/vault-stand-in/src/main.rs), serving
//! vaults named `NAME.vault.localhost` (which kv-notify resolves to this machine, as RFC 6761
//! asks; under the domain of `KEY_VAULT_RESOURCE`, as every vault must be)
//! from a JSON state the test rewrites between sweeps.

use super::stand_in::started;
use super::tls::test_certificates_for;
use super::{IDENTITY_SECRET, IdentityEndpoint, SmtpServer, free_port, mail_settings, set};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command};

/// A real SMTP server, the identity stand-in, and settings that sweep the subscriptions
/// `subscriptions` of `vault`'s Resource Manager (and no `VAULTS`).
pub fn sweeping_subscriptions(
    vault: &FakeVault,
    subscriptions: &[&str],
) -> (SmtpServer, IdentityEndpoint, Vec<(&'static str, String)>) {
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(&[], &identity));
    settings.retain(|(name, _)| *name != "VAULTS");
    set(&mut settings, "SUBSCRIPTIONS", &subscriptions.join(", "));
    set(&mut settings, "ARM_ENDPOINT", &vault.arm_endpoint());
    (smtp, identity, settings)
}

/// An event subscription's `properties` on a subscription's own topic, as
/// infra/modules/resource-events-subscription.bicep makes it: Resource Manager's writes and
/// deletes of role assignments and vaults, to the function of the app `site`.
pub fn resource_events_to_function(site: &str) -> Value {
    json!({
        "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": format!("/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/{site}/functions/function-trigger"), "maxEventsPerBatch": 1}},
        "eventDeliverySchema": "EventGridSchema",
        "filter": {
            "subjectBeginsWith": "/subscriptions/",
            "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess"],
            "advancedFilters": [{"operatorType": "StringIn", "key": "data.operationName", "values": [
                "Microsoft.Authorization/roleAssignments/write",
                "Microsoft.Authorization/roleAssignments/delete",
                "Microsoft.KeyVault/vaults/write",
                "Microsoft.KeyVault/vaults/delete",
                "Microsoft.KeyVault/vaults/privateEndpointConnections/write",
                "Microsoft.KeyVault/vaults/privateEndpointConnections/delete",
            ]}],
        },
    })
}

/// The resource the test vault wants tokens for (`KEY_VAULT_RESOURCE`).
pub const VAULT_RESOURCE: &str = "https://vault.localhost";

pub struct FakeVault {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl FakeVault {
    /// Serves the vaults `names` (empty until [`FakeVault::set`]).
    pub fn start(names: &[&str]) -> Self {
        Self::start_with(names, 0, 0)
    }

    /// The same, each answer `latency_ms` late, and each vault limited to `limit` requests per
    /// 10 s (0: no limit), as Key Vault is.
    pub fn start_with(names: &[&str], latency_ms: u32, limit: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut hosts: Vec<String> = names
            .iter()
            .map(|n| format!("{n}.vault.localhost"))
            .collect();
        hosts.push("management.localhost".to_owned());
        test_certificates_for(dir.path(), &hosts);
        let port = free_port();
        write_state(dir.path(), &json!({"vaults": {}}));
        let child = started(
            Command::new(super::binaries::stand_in_binary())
                .arg(port.to_string())
                .arg(dir.path().join("cert.pem"))
                .arg(dir.path().join("key.pem"))
                .arg(dir.path().join("state.json"))
                .arg(dir.path().join("requests.log"))
                .arg(VAULT_RESOURCE)
                .arg(latency_ms.to_string())
                .arg(limit.to_string()),
            "the Key Vault stand-in",
            "its binary (cargo builds it with the tests)",
        );
        Self { child, port, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces what the vaults hold (see tests/vault-stand-in/src/main.rs for the shape).
    pub fn set(&self, state: Value) {
        write_state(self.dir.path(), &state);
    }

    /// `VAULTS` entry of a vault: its URI.
    pub fn uri(&self, name: &str) -> String {
        format!("https://{name}.vault.localhost:{}", self.port)
    }

    /// `ARM_ENDPOINT` of the stand-in's Resource Manager.
    pub fn arm_endpoint(&self) -> String {
        format!("https://management.localhost:{}", self.port)
    }

    /// The CA certificate to trust (`SSL_CERT_FILE`).
    pub fn certificate(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// Every request, as `vault GET /path?query status`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// TLS connections opened to the stand-in so far (any host).
    pub fn connections(&self) -> u64 {
        std::fs::read_to_string(self.path("requests.log.connections"))
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Requests for anything but lists, versions and certificates (a secret's value above all).
    pub fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("requests.log.violations"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The settings that make a handler sweep `vaults` on this stand-in, with tokens from
    /// `identity`.
    pub fn settings(
        &self,
        vaults: &[&str],
        identity: &IdentityEndpoint,
    ) -> Vec<(&'static str, String)> {
        let mut settings = Vec::new();
        let uris: Vec<String> = vaults.iter().map(|v| self.uri(v)).collect();
        set(&mut settings, "VAULTS", &uris.join(","));
        set(&mut settings, "KEY_VAULT_RESOURCE", VAULT_RESOURCE);
        set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
        set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
        set(
            &mut settings,
            "SSL_CERT_FILE",
            &self.certificate().to_string_lossy(),
        );
        settings
    }
}

/// Written whole then renamed, so the server never reads half a file.
fn write_state(dir: &std::path::Path, state: &Value) {
    let temp = dir.join("state.json.new");
    std::fs::write(&temp, state.to_string()).expect("write");
    std::fs::rename(temp, dir.join("state.json")).expect("rename");
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An object for the stand-in's state that expires `days` from now (fractions allowed).
pub fn expiring(name: &str, days: f64) -> Value {
    let exp = Utc::now() + TimeDelta::seconds((days * 86_400.0) as i64);
    json!({"name": name, "exp": exp.timestamp()})
}

/// The same, with more attributes (`enabled`, `managed`, `tags`, `autoRenew`) merged in.
pub fn expiring_with(name: &str, days: f64, more: Value) -> Value {
    let mut object = expiring(name, days);
    if let (Some(object), Some(more)) = (object.as_object_mut(), more.as_object()) {
        object.extend(more.clone());
    }
    object
}
