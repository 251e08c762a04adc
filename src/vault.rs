//! Key Vault's data plane, metadata only: the lists of secrets, keys and certificates (with
//! their attributes and tags) and a certificate's policy. kv-notify never asks for a secret's
//! value: no URL this module builds names an object version, and the lists carry no values.
//!
//! Requests carry a token for `KEY_VAULT_RESOURCE` from the app's identity, at most
//! [`REQUESTS_PER_VAULT`] at once per vault. Throttling (429) and server errors are waited out
//! (`Retry-After` when the vault gives one, else 1, 2, 4, 8, 16 s, as Key Vault's guidance
//! says) before the list is given up.

mod resolve;

use crate::event::ObjectKind;
use crate::identity::ManagedIdentity;
use chrono::{DateTime, Utc};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The data-plane API version asked for: GA everywhere, including the national clouds.
const API_VERSION: &str = "7.5";

/// Items per page: the most Key Vault gives.
const PAGE_SIZE: &str = "25";

/// Requests in flight per vault: the lists of a vault's three kinds, plus one lookup. Far
/// below Key Vault's limit (4,000 requests per 10 s per vault), and shared with whatever
/// else uses the vault.
pub const REQUESTS_PER_VAULT: usize = 4;

/// Waits after a throttled or failed request, when the vault does not say how long.
const BACKOFF_SECS: [u64; 5] = [1, 2, 4, 8, 16];

/// Longest `Retry-After` honoured: a longer one is taken as a broken header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The public Azure cloud's domain for vaults, which a bare vault name lives under.
const VAULT_DOMAIN: &str = "vault.azure.net";

/// A vault to read: its name (what events and mails call it) and its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRef {
    /// The vault name, in lower case (Key Vault names ignore case).
    pub name: String,
    /// `https://NAME.vault.azure.net`, without a trailing slash.
    pub url: Url,
}

impl VaultRef {
    /// Reads one entry of `VAULTS`: a vault name (`contoso-kv`, in the public cloud) or a
    /// vault URI (`https://contoso-kv.vault.azure.cn/`).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
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
            let url = Url::parse(&format!("https://{entry}.{VAULT_DOMAIN}"))
                .map_err(|e| format!("{entry:?}: {e}"))?;
            return Ok(Self {
                name: entry.to_ascii_lowercase(),
                url,
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
            Some(name) => Ok(Self {
                name: name.to_ascii_lowercase(),
                url,
            }),
        }
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
}

/// Why a vault (or one of its lists) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// No token for the vault.
    #[error("no token: {0}")]
    Token(String),
    /// The vault could not be reached (name, network, TLS, timeout).
    #[error("cannot reach the vault: {0}")]
    Unreachable(String),
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
    /// An answer kv-notify cannot use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// Counts of one vault's requests, for the sweep's summary and the benchmark.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests sent.
    pub requests: AtomicU32,
    /// Of those, answered 429.
    pub throttled: AtomicU32,
}

/// A vault being read: where, how many requests at once, and what was sent.
#[derive(Debug)]
pub struct Session {
    /// The vault.
    pub vault: VaultRef,
    permits: Semaphore,
    /// What was sent.
    pub traffic: Traffic,
}

impl Session {
    /// Starts reading `vault`.
    pub fn new(vault: VaultRef) -> Self {
        Self {
            vault,
            permits: Semaphore::new(REQUESTS_PER_VAULT),
            traffic: Traffic::default(),
        }
    }
}

/// Reads vaults' metadata with the app's identity.
#[derive(Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    identity: ManagedIdentity,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Item>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    /// Secrets and certificates.
    id: Option<String>,
    /// Keys.
    kid: Option<String>,
    #[serde(default)]
    attributes: Attributes,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    managed: Option<bool>,
}

#[derive(Default, Deserialize)]
struct Attributes {
    enabled: Option<bool>,
    exp: Option<i64>,
    nbf: Option<i64>,
    created: Option<i64>,
}

#[derive(Deserialize)]
struct Policy {
    #[serde(default)]
    lifetime_actions: Vec<LifetimeAction>,
    issuer: Option<Issuer>,
}

#[derive(Deserialize)]
struct LifetimeAction {
    action: Option<Action>,
}

#[derive(Deserialize)]
struct Action {
    action_type: Option<String>,
}

#[derive(Deserialize)]
struct Issuer {
    name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
    innererror: Option<Box<ErrorDetail>>,
}

impl VaultClient {
    /// A client whose tokens come from `identity` (for the Key Vault resource).
    pub fn new(identity: ManagedIdentity) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("kv-notify/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(resolve::LoopbackAware)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, identity })
    }

    /// Lists every object of `kind` in the session's vault, page by page, handing each to
    /// `each` (only one page is held at a time).
    pub async fn list(
        &self,
        session: &Session,
        kind: ObjectKind,
        mut each: impl FnMut(VaultObject),
    ) -> Result<(), VaultError> {
        let mut url = session.vault.endpoint(&[kind.collection()]);
        url.query_pairs_mut().append_pair("maxresults", PAGE_SIZE);
        loop {
            let page: Page = self.get(session, url).await?;
            for item in page.value {
                if let Some(object) = item.into_object(kind) {
                    each(object);
                }
            }
            let Some(next) = page.next_link.filter(|link| !link.is_empty()) else {
                return Ok(());
            };
            url = session.vault.follow(&next)?;
        }
    }

    /// The id of the object's current version (the newest), from its list of versions:
    /// metadata only, like the lists, and readable with the same `list` permission.
    pub async fn current_version(
        &self,
        session: &Session,
        kind: ObjectKind,
        name: &str,
    ) -> Result<String, VaultError> {
        let mut url = session
            .vault
            .endpoint(&[kind.collection(), name, "versions"]);
        url.query_pairs_mut().append_pair("maxresults", PAGE_SIZE);
        let mut newest: Option<(i64, String)> = None;
        loop {
            let page: Page = self.get(session, url).await?;
            for item in page.value {
                let created = item.attributes.created.unwrap_or(i64::MIN);
                let Some(version) = item.version(kind) else {
                    continue;
                };
                if newest.as_ref().is_none_or(|(time, _)| created >= *time) {
                    newest = Some((created, version));
                }
            }
            match page.next_link.filter(|link| !link.is_empty()) {
                None => break,
                Some(next) => url = session.vault.follow(&next)?,
            }
        }
        newest
            .map(|(_, version)| version)
            .ok_or_else(|| VaultError::Unexpected(format!("{name} has no versions")))
    }

    /// Whether the certificate's policy renews it before it expires: an `AutoRenew` lifetime
    /// action and an issuer that can renew (not `Unknown`, whose certificates come from a
    /// CSR by hand).
    pub async fn auto_renews(&self, session: &Session, name: &str) -> Result<bool, VaultError> {
        let url = session.vault.endpoint(&["certificates", name, "policy"]);
        let policy: Policy = self.get(session, url).await?;
        let renews = policy.lifetime_actions.iter().any(|action| {
            action
                .action
                .as_ref()
                .and_then(|a| a.action_type.as_deref())
                .is_some_and(|t| t.eq_ignore_ascii_case("AutoRenew"))
        });
        let manual = policy
            .issuer
            .and_then(|i| i.name)
            .is_some_and(|name| name.eq_ignore_ascii_case("Unknown"));
        Ok(renews && !manual)
    }

    /// GETs `url` from the session's vault and reads its JSON, waiting out throttling.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        session: &Session,
        url: Url,
    ) -> Result<T, VaultError> {
        let mut backoff = BACKOFF_SECS.iter().map(|s| Duration::from_secs(*s));
        let mut attempts = 0;
        loop {
            let token = self.identity.token().await.map_err(VaultError::Token)?;
            let permit = session.permits.acquire().await;
            session.traffic.requests.fetch_add(1, Ordering::Relaxed);
            attempts += 1;
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose_secret())
                .send()
                .await;
            let failure = match response {
                Err(err) if err.is_timeout() || err.is_connect() => {
                    format!("{}", err.without_url())
                }
                Err(err) => return Err(VaultError::Unreachable(err.without_url().to_string())),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| VaultError::Unreachable(e.without_url().to_string()))?;
                    drop(permit);
                    match status {
                        s if s.is_success() => {
                            return serde_json::from_slice(&body).map_err(|e| {
                                VaultError::Unexpected(format!("unreadable list: {e}"))
                            });
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            session.traffic.throttled.fetch_add(1, Ordering::Relaxed);
                            match retry_after.or_else(|| backoff.next()) {
                                Some(wait) => {
                                    tokio::time::sleep(wait).await;
                                    continue;
                                }
                                None => return Err(VaultError::GaveUp(attempts, "429".into())),
                            }
                        }
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(denied(status, &body, &self.identity));
                        }
                        s if s.is_server_error() => s.to_string(),
                        s => {
                            let (code, message) = error_of(&body);
                            let code = code.map(|c| format!(" {c}")).unwrap_or_default();
                            return Err(VaultError::Unexpected(format!("{s}{code}: {message}")));
                        }
                    }
                }
            };
            match backoff.next() {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(VaultError::GaveUp(attempts, failure)),
            }
        }
    }
}

impl Item {
    /// The name and version in the item's id (`…/secrets/NAME[/VERSION]`).
    fn id_parts(&self, kind: ObjectKind) -> Option<(String, Option<String>)> {
        let url = Url::parse(self.id.as_ref().or(self.kid.as_ref())?).ok()?;
        let mut segments = url.path_segments()?;
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

    fn version(&self, kind: ObjectKind) -> Option<String> {
        self.id_parts(kind)?.1
    }

    fn into_object(self, kind: ObjectKind) -> Option<VaultObject> {
        let (name, _) = self.id_parts(kind)?;
        let time = |t: Option<i64>| t.and_then(|s| DateTime::from_timestamp(s, 0));
        Some(VaultObject {
            kind,
            name,
            enabled: self.attributes.enabled.unwrap_or(true),
            expires: time(self.attributes.exp),
            not_before: time(self.attributes.nbf),
            managed: self.managed.unwrap_or(false),
            tags: self.tags.unwrap_or_default(),
        })
    }
}

/// `Retry-After` in seconds, when present and sane.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// Key Vault's error code (the inner one when there is one: `ForbiddenByRbac`) and message.
fn error_of(body: &[u8]) -> (Option<String>, String) {
    let Some(error) = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
    else {
        return (
            None,
            String::from_utf8_lossy(body).chars().take(200).collect(),
        );
    };
    let inner = error.innererror.as_ref().and_then(|i| i.code.clone());
    let message = error
        .message
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    (inner.or(error.code), message)
}

fn denied(status: StatusCode, body: &[u8], identity: &ManagedIdentity) -> VaultError {
    let (code, message) = error_of(body);
    let message = if message.is_empty() {
        format!("the vault refused the token of {identity:?}")
    } else {
        message
    };
    VaultError::Denied {
        status: status.as_u16(),
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_is_named_or_given_by_its_uri() {
        let named = VaultRef::parse(" Contoso-KV ").expect("a name");
        assert_eq!(named.name, "contoso-kv");
        assert_eq!(named.url.as_str(), "https://contoso-kv.vault.azure.net/");
        let china = VaultRef::parse("https://Ops.vault.azure.cn/").expect("a URI");
        assert_eq!(china.name, "ops");
        assert_eq!(
            china.endpoint(&["secrets"]).as_str(),
            "https://ops.vault.azure.cn/secrets?api-version=7.5"
        );
        for bad in [
            "kv",
            "9lives",
            "has space",
            "http://kv.vault.azure.net",
            "https://kv.vault.azure.net/secrets",
            "https://127.0.0.1:8443",
            "https://",
        ] {
            assert!(VaultRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_next_link_is_followed_only_on_the_vault_itself() {
        let vault = VaultRef::parse("https://kv.vault.azure.net").expect("a URI");
        let on = |u: &str| vault.owns(&Url::parse(u).expect("url"));
        assert!(on("https://kv.vault.azure.net/secrets?$skiptoken=x"));
        assert!(!on("https://evil.example/secrets?$skiptoken=x"));
        assert!(!on("http://kv.vault.azure.net/secrets"));
        assert!(!on("https://kv.vault.azure.net:8443/secrets"));
    }

    #[test]
    fn list_items_become_objects_named_by_their_id() {
        let page: Page = serde_json::from_str(
            r#"{"value":[
                {"id":"https://kv.vault.azure.net/secrets/db-password","attributes":{"enabled":false,"exp":1767225600},"tags":{"owner":"a@b.c"}},
                {"kid":"https://kv.vault.azure.net/keys/signing","attributes":{},"managed":true},
                {"attributes":{}}
            ],"nextLink":null}"#,
        )
        .expect("a page");
        let mut items = page.value.into_iter();
        let secret = items.next().and_then(|i| i.into_object(ObjectKind::Secret));
        let secret = secret.expect("a secret");
        assert_eq!(secret.name, "db-password");
        assert!(!secret.enabled);
        assert_eq!(secret.expires.map(|t| t.timestamp()), Some(1_767_225_600));
        assert_eq!(secret.tags.get("owner").map(String::as_str), Some("a@b.c"));
        let key = items.next().and_then(|i| i.into_object(ObjectKind::Key));
        assert!(key.is_some_and(|k| k.managed && k.enabled && k.name == "signing"));
        assert!(
            items
                .next()
                .and_then(|i| i.into_object(ObjectKind::Key))
                .is_none()
        );
    }

    #[test]
    fn the_inner_error_code_names_the_cause() {
        let body = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized","innererror":{"code":"ForbiddenByRbac"}}}"#;
        assert_eq!(
            error_of(body),
            (
                Some("ForbiddenByRbac".to_owned()),
                "Caller is not authorized".to_owned()
            )
        );
        assert_eq!(error_of(b"<html>").0, None);
    }
}
