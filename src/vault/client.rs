//! The HTTP side: authenticated GETs with Key Vault's backoff, and the JSON of its answers.

use super::{
    ANSWER_CAP, BACKOFF, BACKOFF_FLOOR, MAX_PAGES, PAGE_SIZE, REQUESTS_PER_VAULT, Session, TIMEOUT,
    VaultError, VaultObject, Version, Versions, id_parts, resolve,
};
use crate::event::ObjectKind;
use crate::http::{self, Backoff};
use crate::identity::{ManagedIdentity, TokenError};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;

/// Reads vaults' metadata with the app's identity.
#[derive(Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    identity: ManagedIdentity,
}

/// A paged list being read, from a first URL on. Its `nextLink`s are followed on the vault
/// alone (a token goes nowhere else), never twice to one page (a list that leads back to a page
/// already read stops there), and for at most [`MAX_PAGES`] pages. A page is asked for only
/// when the caller wants it.
pub(super) struct Pager<'a, T> {
    client: &'a VaultClient,
    session: &'a Session,
    next: Next,
    read: http::Pages,
    item: PhantomData<T>,
}

/// What a [`Pager`] reads next.
enum Next {
    Page(Url),
    /// The page before was the last one.
    Done,
    /// The page before led somewhere it is not followed: said once that page is handed over.
    Refused(VaultError),
}

/// The objects of one of a vault's lists, a page at a time.
pub struct Objects<'a> {
    pages: Pager<'a, Item>,
    kind: ObjectKind,
}

impl<'a, T: serde::de::DeserializeOwned> Pager<'a, T> {
    pub(super) fn new(client: &'a VaultClient, session: &'a Session, first: Url) -> Self {
        Self {
            client,
            session,
            read: http::Pages::new(&first, MAX_PAGES),
            next: Next::Page(first),
            item: PhantomData,
        }
    }

    /// The next page's items; `None` after the last page.
    pub(super) async fn next(&mut self) -> Result<Option<Vec<T>>, VaultError> {
        let url = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Page(url) => url,
            Next::Done => return Ok(None),
            Next::Refused(error) => return Err(error),
        };
        let page: Page<T> = self.client.get(self.session, url).await?;
        if let Some(link) = page.next_link.filter(|link| !link.is_empty()) {
            self.next = match self.follow(&link) {
                Ok(url) => Next::Page(url),
                Err(error) => Next::Refused(error),
            };
        }
        Ok(Some(page.value))
    }

    fn follow(&mut self, link: &str) -> Result<Url, VaultError> {
        let url = self.session.vault.follow(link)?;
        self.read
            .admit(&url)
            .map_err(|refused| VaultError::Unexpected(refused.to_string()))?;
        Ok(url)
    }
}

impl Objects<'_> {
    /// The next page's objects; `None` after the last page.
    pub async fn next(&mut self) -> Result<Option<Vec<VaultObject>>, VaultError> {
        let kind = self.kind;
        let items = self.pages.next().await?;
        Ok(items.map(|items| {
            items
                .into_iter()
                .filter_map(|item| item.into_object(kind))
                .collect()
        }))
    }
}

/// One page of a list: Key Vault's and Resource Manager's have the same shape.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(super) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub(super) value: Vec<T>,
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
    pub fn new(identity: ManagedIdentity) -> Result<Self, http::PolicyError> {
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

    /// Gets a token for the vaults: a sign-in that does not work (no `az login` here, a
    /// missing identity) is said once, with its fix.
    pub async fn sign_in(&self) -> Result<(), TokenError> {
        self.identity.token().await.map(|_| ())
    }

    /// The objects of `kind` in the session's vault, read a page at a time as the caller asks
    /// for them (see [`Objects::next`]): a slow caller slows the list, rather than objects
    /// piling up.
    pub fn list<'a>(&'a self, session: &'a Session, kind: ObjectKind) -> Objects<'a> {
        let mut url = session.vault.endpoint(&[kind.collection()]);
        url.query_pairs_mut().append_pair("maxresults", PAGE_SIZE);
        Objects {
            pages: Pager::new(self, session, url),
            kind,
        }
    }

    /// Of the object's versions (its list of versions: metadata only, like the lists, and
    /// readable with the same `list` permission), the newest and the one called `wanted`.
    /// Only those two are kept while paging, however many versions there are.
    pub async fn versions(
        &self,
        session: &Session,
        kind: ObjectKind,
        name: &str,
        wanted: Option<&str>,
    ) -> Result<Versions, VaultError> {
        let mut url = session
            .vault
            .endpoint(&[kind.collection(), name, "versions"]);
        url.query_pairs_mut().append_pair("maxresults", PAGE_SIZE);
        let mut versions = Versions::default();
        let mut pages = Pager::<Item>::new(self, session, url);
        while let Some(items) = pages.next().await? {
            for item in items {
                let Some(id) = item.version(kind) else {
                    continue;
                };
                let version = Version {
                    id,
                    created: item.attributes.created.unwrap_or(i64::MIN),
                    enabled: item.attributes.enabled.unwrap_or(true),
                    managed: item.managed.unwrap_or(false),
                    tags: item.tags.unwrap_or_default(),
                };
                versions.see(version, wanted);
            }
        }
        Ok(versions)
    }

    /// The id of the object's current version: the newest.
    pub async fn current_version(
        &self,
        session: &Session,
        kind: ObjectKind,
        name: &str,
    ) -> Result<String, VaultError> {
        let versions = self.versions(session, kind, name, None).await?;
        versions
            .newest
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
            let token = self
                .identity
                .token()
                .await
                .map_err(|e| VaultError::Token(e.0))?;
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
        // A date off the calendar (no vault sends one; a proxy or a broken server might) is
        // dropped and said, as an event's is, rather than placed on the ladder.
        let mut bad_dates = Vec::new();
        let mut date = |field: &str, seconds: Option<i64>| {
            let seconds = seconds?;
            let date = crate::event::sane_date(seconds);
            if date.is_none() {
                bad_dates.push(format!(
                    "{field} {seconds} is not a date between {}",
                    crate::event::SANE_YEARS
                ));
            }
            date
        };
        let expires = date("exp", self.attributes.exp);
        let not_before = date("nbf", self.attributes.nbf);
        Some(VaultObject {
            kind,
            name,
            enabled: self.attributes.enabled.unwrap_or(true),
            expires,
            not_before,
            managed: self.managed.unwrap_or(false),
            tags: self.tags.unwrap_or_default(),
            bad_date: (!bad_dates.is_empty()).then(|| bad_dates.join("; ")),
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
