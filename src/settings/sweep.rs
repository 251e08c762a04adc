//! The expiry sweep's settings: which vaults, the reminder ladder, how long a run may take and
//! where its tokens come from.

use super::identity::identity;
use super::{name, parse_number};
use crate::identity::Identity;
use crate::ladder::Ladder;
use crate::vault::{VaultRef, vault_domain};
use std::time::Duration;

/// Default bound on one sweep: well inside the Consumption plan's 5-minute function timeout,
/// leaving time for the mails started near the end to finish.
const DEFAULT_BUDGET_SECS: f64 = 200.0;

/// Longest sweep accepted (an hour): Premium and Dedicated plans allow long timeouts.
const MAX_BUDGET_SECS: f64 = 3600.0;

/// The tag that names owners, unless `OWNER_TAG` says otherwise.
/// Microsoft Graph, where Entra ID's applications are read.
const GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

const OWNER_TAG: &str = "owner";

/// What the public cloud's Key Vault tokens are for.
const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

/// The public cloud's Resource Manager.
const ARM_ENDPOINT: &str = "https://management.azure.com";

/// The expiry sweep, when `VAULTS` or `SUBSCRIPTIONS` is set.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The vaults to read, without duplicates.
    pub vaults: Vec<VaultRef>,
    /// `SUBSCRIPTIONS`: subscription ids whose vaults are found through Resource Manager, in
    /// lower case.
    pub subscriptions: Vec<String>,
    /// `ARM_ENDPOINT`: Resource Manager, without a trailing slash.
    pub arm_endpoint: reqwest::Url,
    /// Bound on one run.
    pub budget: Duration,
    /// `KEY_VAULT_RESOURCE`: what the tokens are for.
    pub resource: String,
    /// The domain every vault lies under (`vault.azure.net`), from `KEY_VAULT_RESOURCE`.
    pub vault_domain: String,
    /// Where tokens come from.
    pub identity: Identity,
    /// `AZURE_CLIENT_ID`: a user-assigned identity; unset for the system-assigned one.
    pub client_id: Option<String>,
    /// `OWNER_TAG`: the tag naming an object's owners.
    pub owner_tag: String,
    /// `OWNER_TAG_DOMAINS`: more domains an owner tag may name.
    pub owner_tag_domains: Vec<String>,
    /// With `ENTRA_CREDENTIALS=true`: Microsoft Graph (`GRAPH_ENDPOINT`), whose applications'
    /// secrets and certificates are read too.
    pub entra: Option<reqwest::Url>,
}

impl SweepSettings {
    /// What is swept, in words: the vaults of `VAULTS` and the subscriptions of
    /// `SUBSCRIPTIONS`.
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if !self.vaults.is_empty() {
            let names: Vec<&str> = self.vaults.iter().map(|v| v.name.as_str()).collect();
            parts.push(format!("vaults {}", names.join(", ")));
        }
        if !self.subscriptions.is_empty() {
            parts.push(format!(
                "the vaults of subscriptions {}",
                self.subscriptions.join(", ")
            ));
        }
        if self.entra.is_some() {
            parts.push("Entra ID's application credentials".to_owned());
        }
        parts.join(" and ")
    }
}

/// The reminder ladder (`REMINDER_DAYS`), which the event path uses too.
pub(super) fn ladder(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Ladder {
    match get(name::REMINDER_DAYS).map(|raw| Ladder::parse(&raw)) {
        None => Ladder::default(),
        Some(Ok(ladder)) => ladder,
        Some(Err(why)) => {
            problems.push(format!("{}: {why}", name::REMINDER_DAYS));
            Ladder::default()
        }
    }
}

/// The sweep, when `VAULTS`, `SUBSCRIPTIONS` or `ENTRA_CREDENTIALS` is set.
pub(super) fn sweep(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<SweepSettings> {
    let (raw_vaults, raw_subscriptions) = (get(name::VAULTS), get(name::SUBSCRIPTIONS));
    let entra = entra(get, problems);
    if raw_vaults.is_none() && raw_subscriptions.is_none() && entra.is_none() {
        return None;
    }
    let resource = get(name::KEY_VAULT_RESOURCE).unwrap_or_else(|| KEY_VAULT_RESOURCE.to_owned());
    let domain = vault_domain(&resource).unwrap_or_else(|why| {
        problems.push(format!("{}: {why}", name::KEY_VAULT_RESOURCE));
        vault_domain(KEY_VAULT_RESOURCE).unwrap_or_default()
    });
    let mut vaults: Vec<VaultRef> = Vec::new();
    for entry in list(raw_vaults.as_deref()) {
        match VaultRef::parse(entry, &domain) {
            Ok(vault) if vaults.iter().any(|v| v.name == vault.name) => {
                if !vaults.contains(&vault) {
                    problems.push(format!(
                        "{}: two vaults named {} ({} and {})",
                        name::VAULTS,
                        vault.name,
                        vault.url,
                        vaults
                            .iter()
                            .find(|v| v.name == vault.name)
                            .map_or("", |v| v.url.as_str())
                    ));
                }
            }
            Ok(vault) => vaults.push(vault),
            Err(why) => problems.push(format!("{}: {why}", name::VAULTS)),
        }
    }
    let budget = parse_number(
        name::SWEEP_BUDGET_SECS,
        get(name::SWEEP_BUDGET_SECS),
        (DEFAULT_BUDGET_SECS, MAX_BUDGET_SECS),
        problems,
    );
    let mut subscriptions: Vec<String> = Vec::new();
    for entry in list(raw_subscriptions.as_deref()) {
        let id = entry.to_ascii_lowercase();
        if uuid::Uuid::try_parse(&id).is_err() {
            problems.push(format!(
                "{}: {entry:?} is not a subscription id (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: \
                 az account list --query [].id)",
                name::SUBSCRIPTIONS
            ));
        } else if !subscriptions.contains(&id) {
            subscriptions.push(id);
        }
    }
    let arm_endpoint = arm_endpoint(get(name::ARM_ENDPOINT), problems);
    let identity = identity(get, "VAULTS or SUBSCRIPTIONS (the expiry sweep)", problems).ok()?;
    Some(SweepSettings {
        vaults,
        subscriptions,
        arm_endpoint,
        budget: Duration::from_secs_f64(budget),
        resource,
        vault_domain: domain,
        identity,
        client_id: get(name::AZURE_CLIENT_ID),
        owner_tag: get(name::OWNER_TAG)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| OWNER_TAG.to_owned()),
        owner_tag_domains: get(name::OWNER_TAG_DOMAINS)
            .unwrap_or_default()
            .split([',', ';'])
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| !d.is_empty())
            .collect(),
        entra,
    })
}

/// `ENTRA_CREDENTIALS=true`: Microsoft Graph's endpoint (`GRAPH_ENDPOINT`, the global service
/// by default), where the applications' credentials are read.
fn entra(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<reqwest::Url> {
    let on = super::parse_flag(
        name::ENTRA_CREDENTIALS,
        get(name::ENTRA_CREDENTIALS),
        false,
        problems,
    );
    if !on {
        return None;
    }
    let raw = get(name::GRAPH_ENDPOINT).unwrap_or_else(|| GRAPH_ENDPOINT.to_owned());
    match reqwest::Url::parse(raw.trim()) {
        Ok(url) if crate::http::require_https(&url).is_ok() && url.host_str().is_some() => {
            Some(url)
        }
        _ => {
            problems.push(format!(
                "{}: {raw:?} is not an https endpoint (https://graph.microsoft.com)",
                name::GRAPH_ENDPOINT
            ));
            None
        }
    }
}

/// The entries of a comma- or semicolon-separated list.
fn list(raw: Option<&str>) -> impl Iterator<Item = &str> {
    raw.unwrap_or_default()
        .split([',', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// `ARM_ENDPOINT`: an https origin (a token for Resource Manager goes there).
fn arm_endpoint(raw: Option<String>, problems: &mut Vec<String>) -> reqwest::Url {
    let default = || reqwest::Url::parse(ARM_ENDPOINT).expect("the public cloud's endpoint");
    let Some(raw) = raw else {
        return default();
    };
    match reqwest::Url::parse(raw.trim()) {
        Ok(url)
            if url.scheme() == "https"
                && url.host_str().is_some()
                && matches!(url.path(), "" | "/")
                && url.query().is_none() =>
        {
            url
        }
        _ => {
            problems.push(format!(
                "{}: {raw:?} is not an https endpoint without a path \
                 (https://management.usgovcloudapi.net)",
                name::ARM_ENDPOINT
            ));
            default()
        }
    }
}
