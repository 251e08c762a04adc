//! Key Vault's data plane, metadata only: the lists of secrets, keys and certificates (with
//! their attributes and tags) and a certificate's policy. kv-notify never asks for a secret's
//! value: no URL this module builds names an object version, and the lists carry no values.
//!
//! Requests carry a token for `KEY_VAULT_RESOURCE` from the app's identity, at most
//! [`REQUESTS_PER_VAULT`] at once per vault. Throttling (429) and server errors are waited out
//! (`Retry-After` when the vault gives one, else 1, 2, 4, 8, 16 s, as Key Vault's guidance
//! says) before the list is given up.

mod access;
mod client;
mod coverage;
mod discovery;
mod exposure;
mod owners;
mod resolve;
mod role;
mod vaults;
mod watched;

pub use access::{AccessWatch, Judgement};
pub use client::VaultClient;
pub use coverage::{Coverage, Covered, Target};
pub use discovery::Discovery;
pub use exposure::Exposure;
pub use owners::{OwnerTag, TagOwners};
pub use vaults::{Vaults, Vetting};
pub use watched::{Unreachable, Watched};

use crate::event::ObjectKind;
use chrono::{DateTime, Utc};
use reqwest::Url;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The data-plane API version asked for: GA everywhere, including the national clouds.
const API_VERSION: &str = "7.5";

/// Items per page: the most Key Vault gives.
const PAGE_SIZE: &str = "25";

/// Most pages read of one list: 50,000 objects at 25 a page. A list that goes on beyond it is
/// a server that is not Key Vault, or broken.
const MAX_PAGES: usize = 2_000;

/// Requests in flight per vault: the lists of a vault's three kinds, plus three lookups of
/// due objects' versions, so that most lookups are done by the time the longest list is
/// read. A sweep of a 2,500-object vault makes about 230 requests in half a second: a small
/// share of Key Vault's limit (4,000 requests per 10 s per vault), which is shared with
/// whatever else uses the vault.
pub const REQUESTS_PER_VAULT: usize = 6;

/// Waits after a throttled or failed request, when the vault does not say how long; one step
/// per attempt, so a request is tried at most six times.
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Shortest wait between two attempts, whatever `Retry-After` says (`0` included).
const BACKOFF_FLOOR: Duration = Duration::from_secs(1);

/// Largest answer read: a page of 25 objects with their tags is a few hundred KiB at most.
const ANSWER_CAP: usize = 4 * 1024 * 1024;

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The domain of the vaults whose tokens are for `resource` (`KEY_VAULT_RESOURCE`):
/// `vault.azure.net` for `https://vault.azure.net`, `vault.azure.cn` in Azure China. A vault
/// is reached only under it, as the official clients check a vault's challenge, so that a
/// Key Vault token never goes to another host.
pub fn vault_domain(resource: &str) -> Result<String, InvalidVault> {
    let url = Url::parse(resource.trim())
        .map_err(|e| InvalidVault(format!("{resource:?} is not a URI: {e}")))?;
    match url.host_str() {
        Some(host) if url.scheme() == "https" && host.contains('.') => {
            Ok(host.trim_end_matches('.').to_ascii_lowercase())
        }
        _ => Err(InvalidVault(format!(
            "{resource:?} is not a Key Vault resource (https://vault.azure.net, or a national \
             cloud's: https://vault.azure.cn, https://vault.usgovcloudapi.net)"
        ))),
    }
}

/// Why a vault name, URI or cloud is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidVault(pub String);

/// A vault to read: its name (what events and mails call it) and its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRef {
    /// The vault name, in lower case (Key Vault names ignore case).
    pub name: String,
    /// `https://NAME.vault.azure.net`, without a trailing slash.
    pub url: Url,
    /// The vault's own tags, as Resource Manager lists them (empty for a vault known only
    /// from `VAULTS`: the data plane does not show them).
    pub tags: BTreeMap<String, String>,
    /// Its Resource Manager id, as listed (`None` for a vault known only from `VAULTS`).
    pub id: Option<String>,
    /// The settings that decide its exposure, as listed (`None` for a vault known only from
    /// `VAULTS`). Boxed: most vault references never carry them far.
    pub exposure: Option<Box<Exposure>>,
}

impl VaultRef {
    /// Reads one entry of `VAULTS`: a vault name (`contoso-kv`, meaning
    /// `https://contoso-kv.{domain}`), a vault URI (`https://contoso-kv.vault.azure.cn/`), whose
    /// host must lie under `domain` (see [`vault_domain`]), or a vault's resource id.
    pub fn parse(entry: &str, domain: &str) -> Result<Self, InvalidVault> {
        Self::read(entry.trim(), domain).map_err(InvalidVault)
    }

    fn read(entry: &str, domain: &str) -> Result<Self, String> {
        if entry.starts_with('/') {
            return Self::from_id(entry, domain);
        }
        if !entry.contains("://") {
            let valid = (3..=24).contains(&entry.len())
                && entry.starts_with(|c: char| c.is_ascii_alphabetic())
                && entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(format!(
                    "{entry:?} is not a vault name (3 to 24 letters, digits and dashes, starting \
                     with a letter) nor a vault URI (https://NAME.vault.azure.net)"
                ));
            }
            let url = Url::parse(&format!("https://{entry}.{domain}"))
                .map_err(|e| format!("{entry:?}: {e}"))?;
            return Ok(Self {
                name: entry.to_ascii_lowercase(),
                url,
                tags: BTreeMap::new(),
                id: None,
                exposure: None,
            });
        }
        let url = Url::parse(entry).map_err(|e| format!("{entry:?} is not a URI: {e}"))?;
        let name = url
            .host_str()
            .and_then(|host| host.split('.').next())
            .filter(|name| !name.is_empty() && !name.chars().all(|c| c.is_ascii_digit()));
        match name {
            _ if url.scheme() != "https" => Err(format!(
                "{entry:?}: a vault is reached over https only (its tokens must not travel in clear)"
            )),
            _ if !matches!(url.path(), "" | "/") || url.query().is_some() => Err(format!(
                "{entry:?}: a vault URI has no path or query (https://NAME.vault.azure.net)"
            )),
            None => Err(format!(
                "{entry:?}: a vault URI names the vault by its host (https://NAME.vault.azure.net)"
            )),
            Some(_) if !under(&url, domain) => Err(format!(
                "{entry:?}: not a vault of this cloud: its host must end in .{domain}, the domain \
                 of KEY_VAULT_RESOURCE (set that for a national cloud), so that no Key Vault \
                 token goes to another host"
            )),
            Some(name) => Ok(Self {
                name: name.to_ascii_lowercase(),
                url,
                tags: BTreeMap::new(),
                id: None,
                exposure: None,
            }),
        }
    }

    /// A vault named by its Resource Manager id
    /// (`/subscriptions/…/resourceGroups/…/providers/Microsoft.KeyVault/vaults/NAME`): reached
    /// at `https://NAME.{domain}`, and matched with role assignments at its resource group or
    /// subscription.
    fn from_id(entry: &str, domain: &str) -> Result<Self, String> {
        let id = entry.trim_end_matches('/');
        let whole = crate::event::vault_of(id).filter(|(vault, _)| vault.len() == id.len());
        let Some((_, name)) = whole.filter(|_| id.starts_with("/subscriptions/")) else {
            return Err(format!(
                "{entry:?} is not a vault's resource id \
                 (/subscriptions/ID/resourceGroups/GROUP/providers/Microsoft.KeyVault/vaults/NAME)"
            ));
        };
        let mut vault = Self::read(name, domain)?;
        vault.id = Some(id.to_owned());
        Ok(vault)
    }

    /// `https://NAME.vault.azure.net/{path}` with the API version.
    fn endpoint(&self, path: &[&str]) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    /// Whether `url` (a `nextLink`) is on this vault: a token goes nowhere else.
    fn owns(&self, url: &Url) -> bool {
        url.origin() == self.url.origin()
    }

    /// The `nextLink` to follow, if it is on this vault.
    fn follow(&self, next: &str) -> Result<Url, VaultError> {
        Url::parse(next)
            .ok()
            .filter(|url| self.owns(url))
            .ok_or_else(|| {
                VaultError::Unexpected(format!("a nextLink off the vault ({next:?}): not followed"))
            })
    }
}

/// Whether `url`'s host is a name under `domain`.
fn under(url: &Url, domain: &str) -> bool {
    url.host_str().is_some_and(|host| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host.strip_suffix(domain)
            .is_some_and(|name| name.len() > 1 && name.ends_with('.'))
    })
}

/// One object, as a vault's list shows its current version.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultObject {
    /// Secret, key or certificate.
    pub kind: ObjectKind,
    /// The object name.
    pub name: String,
    /// Whether the current version can be used.
    pub enabled: bool,
    /// When the current version expires.
    pub expires: Option<DateTime<Utc>>,
    /// When the current version becomes usable.
    pub not_before: Option<DateTime<Utc>>,
    /// A certificate's own key or secret (they expire with the certificate).
    pub managed: bool,
    /// The object's tags.
    pub tags: BTreeMap<String, String>,
    /// A date the list gave that is off the calendar (`exp -8300000000000 is not a date
    /// between 1990 and 2200`), dropped from the fields above.
    pub bad_date: Option<String>,
}

/// One version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The version id.
    pub id: String,
    /// When it was created (epoch seconds).
    pub created: i64,
    /// Whether it can be used.
    pub enabled: bool,
    /// A certificate's own key or secret.
    pub managed: bool,
    /// Its tags.
    pub tags: std::collections::BTreeMap<String, String>,
}

/// What an object's versions say: the newest, and the one asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// The newest version (the current one), by creation time.
    pub newest: Option<Version>,
    /// The version asked for, if listed.
    pub wanted: Option<Version>,
}

impl Versions {
    /// Takes in one listed version: kept when it is the newest so far (of two created in the
    /// same second, the one listed last) or the one `wanted`.
    fn see(&mut self, version: Version, wanted: Option<&str>) {
        if wanted.is_some_and(|id| version.id.eq_ignore_ascii_case(id)) {
            self.wanted = Some(version.clone());
        }
        if self
            .newest
            .as_ref()
            .is_none_or(|newest| version.created >= newest.created)
        {
            self.newest = Some(version);
        }
    }
}

/// Why a vault (or one of its lists) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// No token for the vault.
    #[error("no token: {0}")]
    Token(String),
    /// The vault could not be reached (network, TLS, timeout).
    #[error("cannot reach the vault: {0}")]
    Unreachable(String),
    /// The host's name does not resolve (asked twice).
    #[error("{0} does not resolve (DNS)")]
    NotResolved(String),
    /// The vault refused the identity (401/403), with Key Vault's error code.
    #[error("access denied ({status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Denied {
        /// The HTTP status.
        status: u16,
        /// Key Vault's code, e.g. `ForbiddenByRbac`, `ForbiddenByFirewall`.
        code: Option<String>,
        /// Key Vault's message, or a hint.
        message: String,
    },
    /// Still throttled (or failing) after every backoff.
    #[error("gave up after {0} throttled or failed attempts ({1})")]
    GaveUp(usize, String),
    /// The object (or vault) does not exist.
    #[error("not found")]
    NotFound,
    /// An answer kv-notify cannot use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The vault (or Resource Manager) answered with a redirect, which is never followed: the
    /// token would go wherever it points.
    #[error("{0}")]
    Redirected(String),
}

/// Counts of one vault's requests, for the sweep's summary and the benchmark.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests sent.
    pub requests: AtomicU32,
    /// Of those, answered 429.
    pub throttled: AtomicU32,
}

/// The lists of a vault read at once: one per kind.
const LISTS: usize = 3;

/// A vault being read: where, how many requests at once, and what was sent.
#[derive(Debug)]
pub struct Session {
    /// The vault.
    pub vault: VaultRef,
    permits: Semaphore,
    /// Lookups of due objects in flight: what the lists still being read leave of
    /// [`REQUESTS_PER_VAULT`]. A list's next page then never waits behind lookups: the longest
    /// list is the sweep's critical path.
    lookups: Semaphore,
    /// What was sent.
    pub traffic: Traffic,
}

impl Session {
    /// Starts reading `vault`.
    pub fn new(vault: VaultRef) -> Self {
        Self {
            vault,
            permits: Semaphore::new(REQUESTS_PER_VAULT),
            lookups: Semaphore::new(REQUESTS_PER_VAULT - LISTS),
            traffic: Traffic::default(),
        }
    }

    /// One of the vault's lists is read (or given up): its request slot goes to lookups.
    pub fn list_done(&self) {
        self.lookups.add_permits(1);
    }

    /// Runs `lookup` once a lookup slot is free.
    pub async fn looking_up<T>(&self, lookup: impl Future<Output = T>) -> T {
        // Never closed, so the permit is always granted.
        let _slot = self.lookups.acquire().await;
        lookup.await
    }
}

/// The name and version in an object's id (`https://VAULT/secrets/NAME[/VERSION]`), read from
/// its path as text: a sweep reads tens of thousands of ids, and a full URL parse of each (host
/// checks, IDNA) took a tenth of its CPU.
fn id_parts(id: &str, kind: ObjectKind) -> Option<(String, Option<String>)> {
    let (_, authority_and_path) = id.split_once("://")?;
    let (_, path) = authority_and_path.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/');
    segments.find(|s| s.eq_ignore_ascii_case(kind.collection()))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let name = segments.next().filter(|n| !n.is_empty()).map(decode)?;
    let version = segments.next().filter(|v| !v.is_empty()).map(decode);
    Some((name, version))
}

#[cfg(test)]
mod tests;
