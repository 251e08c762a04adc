//! The HTTP side: authenticated GETs with Key Vault's backoff, and the JSON of its answers.

use super::{
    ANSWER_CAP, BACKOFF, BACKOFF_FLOOR, PAGE_SIZE, REQUESTS_PER_VAULT, Session, TIMEOUT,
    VaultError, VaultObject, Version, id_parts, resolve,
};
use crate::event::ObjectKind;
use crate::http::{self, Backoff};
use crate::identity::ManagedIdentity;
use chrono::DateTime;
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Reads vaults' metadata with the app's identity.
#[derive(Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    identity: ManagedIdentity,
}

#[derive(Deserialize)]
pub(super) struct Page {
    #[serde(default)]
    pub(super) value: Vec<Item>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Item {
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

/// The one field of a certificate bundle beside its id that kv-notify reads.
#[derive(Deserialize)]
struct Certificate {
    id: Option<String>,
    policy: Option<Policy>,
}

#[derive(Deserialize)]
pub(super) struct Policy {
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
        let http = http::client_with(TIMEOUT, |builder| {
            builder
                .dns_resolver(resolve::LoopbackAware)
                // A vault never has more requests in flight than this; connections beyond it,
                // opened while another was on its way back to the pool, are closed rather than
                // kept idle with their buffers.
                .pool_max_idle_per_host(REQUESTS_PER_VAULT)
        })?;
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

    /// The object's versions, oldest first, from its list of versions: metadata only, like
    /// the lists, and readable with the same `list` permission.
    pub async fn versions(
        &self,
        session: &Session,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Vec<Version>, VaultError> {
        let mut url = session
            .vault
            .endpoint(&[kind.collection(), name, "versions"]);
        url.query_pairs_mut().append_pair("maxresults", PAGE_SIZE);
        let mut versions = Vec::new();
        loop {
            let page: Page = self.get(session, url).await?;
            for item in page.value {
                let Some(id) = item.version(kind) else {
                    continue;
                };
                versions.push(Version {
                    id,
                    created: item.attributes.created.unwrap_or(i64::MIN),
                    enabled: item.attributes.enabled.unwrap_or(true),
                    managed: item.managed.unwrap_or(false),
                    tags: item.tags.unwrap_or_default(),
                });
            }
            match page.next_link.filter(|link| !link.is_empty()) {
                None => break,
                Some(next) => url = session.vault.follow(&next)?,
            }
        }
        // Stable: of two versions created in the same second, the one listed last is newer.
        versions.sort_by_key(|v| v.created);
        Ok(versions)
    }

    /// The id of the object's current version: the newest.
    pub async fn current_version(
        &self,
        session: &Session,
        kind: ObjectKind,
        name: &str,
    ) -> Result<String, VaultError> {
        let versions = self.versions(session, kind, name).await?;
        versions
            .into_iter()
            .next_back()
            .map(|v| v.id)
            .ok_or_else(|| VaultError::Unexpected(format!("{name} has no versions")))
    }

    /// A certificate's current version and whether its policy renews it, in one call (`get`
    /// on certificates: the bundle names its version and carries its policy, and holds the
    /// public certificate only). With `list` alone, the version comes from its versions and
    /// the renewal cannot be told.
    pub async fn certificate(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<(String, Option<bool>), VaultError> {
        let url = session.vault.endpoint(&["certificates", name]);
        match self.get::<Certificate>(session, url).await {
            Ok(certificate) => {
                let version = certificate
                    .id
                    .as_deref()
                    .and_then(|id| id_parts(id, ObjectKind::Certificate)?.1)
                    .ok_or_else(|| VaultError::Unexpected(format!("{name} has no version")))?;
                Ok((version, certificate.policy.map(|p| p.renews())))
            }
            Err(VaultError::Denied { .. }) => {
                let version = self
                    .current_version(session, ObjectKind::Certificate, name)
                    .await?;
                Ok((version, None))
            }
            Err(error) => Err(error),
        }
    }

    /// GETs `url` from the session's host and reads its JSON, waiting out throttling. Every
    /// attempt takes a step of the backoff, so a call makes at most one request more than it
    /// has steps, whatever `Retry-After` says.
    pub(super) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        session: &Session,
        url: Url,
    ) -> Result<T, VaultError> {
        let mut backoff = Backoff::new(&BACKOFF, BACKOFF_FLOOR);
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
                Err(ref err) if let Some(unknown) = resolve::not_resolved(err) => {
                    // A DNS fault can pass: asked once more before it counts.
                    if attempts >= 2 {
                        return Err(VaultError::NotResolved(unknown.host.clone()));
                    }
                    unknown.to_string()
                }
                Err(err) if err.is_timeout() || err.is_connect() => {
                    format!("{}", err.without_url())
                }
                Err(err) => return Err(VaultError::Unreachable(err.without_url().to_string())),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = http::retry_after(response.headers());
                    if status.is_redirection() {
                        let reason = http::redirect_reason(response.headers());
                        return Err(VaultError::Redirected(format!(
                            "answered {status}, {reason}"
                        )));
                    }
                    if status.is_success() {
                        let body = http::read_capped(response, ANSWER_CAP).await;
                        drop(permit);
                        let body = body.map_err(|e| VaultError::Unexpected(e.to_string()))?;
                        return serde_json::from_slice(&body)
                            .map_err(|e| VaultError::Unexpected(format!("unreadable list: {e}")));
                    }
                    let body = http::read_prefix(response).await;
                    drop(permit);
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => {
                            session.traffic.throttled.fetch_add(1, Ordering::Relaxed);
                            match backoff.next_wait(retry_after) {
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
                        StatusCode::NOT_FOUND => return Err(VaultError::NotFound),
                        s if http::verdict(s) == http::Verdict::Transient => s.to_string(),
                        s => {
                            let (code, message) = error_of(&body);
                            let code = code.map(|c| format!(" {c}")).unwrap_or_default();
                            return Err(VaultError::Unexpected(format!("{s}{code}: {message}")));
                        }
                    }
                }
            };
            match backoff.next_wait(None) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(VaultError::GaveUp(attempts, failure)),
            }
        }
    }
}

impl Policy {
    /// Whether the policy renews the certificate before it expires: an `AutoRenew` lifetime
    /// action and an issuer that can renew (not `Unknown`, whose certificates come from a CSR
    /// by hand).
    pub(super) fn renews(&self) -> bool {
        let auto_renew = self.lifetime_actions.iter().any(|action| {
            action
                .action
                .as_ref()
                .and_then(|a| a.action_type.as_deref())
                .is_some_and(|t| t.eq_ignore_ascii_case("AutoRenew"))
        });
        let manual = self
            .issuer
            .as_ref()
            .and_then(|i| i.name.as_deref())
            .is_some_and(|name| name.eq_ignore_ascii_case("Unknown"));
        auto_renew && !manual
    }
}

impl Item {
    fn id_parts(&self, kind: ObjectKind) -> Option<(String, Option<String>)> {
        id_parts(self.id.as_ref().or(self.kid.as_ref())?, kind)
    }

    fn version(&self, kind: ObjectKind) -> Option<String> {
        self.id_parts(kind)?.1
    }

    pub(super) fn into_object(self, kind: ObjectKind) -> Option<VaultObject> {
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

/// Key Vault's error code (the inner one when there is one: `ForbiddenByRbac`) and message.
pub(super) fn error_of(body: &[u8]) -> (Option<String>, String) {
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
