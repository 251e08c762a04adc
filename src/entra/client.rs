//! Reading Entra ID through Microsoft Graph v1.0: `GET /applications` and `GET
//! /servicePrincipals`, page by page, and the owners of the applications with a credential due,
//! in JSON batches (`POST /$batch`).
//! `@odata.nextLink`s are followed on Graph's own origin alone (the token goes nowhere else),
//! never twice to one page, and for at most [`MAX_PAGES`] pages; a throttled request is asked
//! again after Graph's `Retry-After`.

use super::{AppCredential, CredentialKind};
use crate::event::Holder;
use crate::http::{self, Backoff, PolicyError, Verdict};
use crate::identity::ManagedIdentity;
use futures_util::{StreamExt, stream};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest page read: 999 applications with their credentials.
const PAGE_CAP: usize = 16 * 1024 * 1024;

/// Most pages read per list: 999 applications a page, so about two million.
const MAX_PAGES: usize = 2_000;

/// Most owners read for one application (Graph allows 100 owners an object).
const MAX_OWNER_PAGES: usize = 10;

/// Most requests in one JSON batch: Graph's limit.
const BATCH: usize = 20;

/// JSON batches in flight at once.
const BATCHES_AT_ONCE: usize = 4;

/// Waits after a throttled request when Graph does not say how long; one step per attempt.
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Why Entra ID could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    /// Graph refused the identity: it lacks the `Application.Read.All` permission.
    #[error(
        "Microsoft Graph refused to list the applications ({0}): grant the app's identity the \
         Application.Read.All application permission"
    )]
    Denied(String),
    /// No answer kv-notify can use (no token, unreachable, throttled throughout, a bad page).
    #[error("cannot read the applications from Microsoft Graph: {0}")]
    Failed(String),
}

/// The owners of an application, as Graph gives them to this identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// The mail addresses of the owners that are users with a mailbox.
    pub mails: Vec<String>,
    /// Owners Graph gave as ids alone: users the identity may not read (it lacks
    /// `User.Read.All`).
    pub hidden: usize,
}

/// Reads Entra ID as the app's identity.
pub struct EntraClient {
    http: reqwest::Client,
    identity: ManagedIdentity,
    endpoint: Url,
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// An application or a service principal: both carry the two credential lists.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Holding {
    #[serde(default)]
    id: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    display_name: Option<String>,
    /// For a service principal: `Application`, `ManagedIdentity`, `Legacy`, …
    #[serde(default)]
    service_principal_type: Option<String>,
    #[serde(default)]
    password_credentials: Vec<Credential>,
    #[serde(default)]
    key_credentials: Vec<Credential>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credential {
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    display_name: Option<String>,
    end_date_time: Option<String>,
    /// For a key: `Sign` or `Verify`.
    #[serde(default)]
    usage: Option<String>,
    /// A SAML signing certificate's key, its password and its public half share it.
    #[serde(default)]
    custom_key_identifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owner {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    mail: Option<String>,
}

impl EntraClient {
    /// A client for Graph at `endpoint` (its origin: `https://graph.microsoft.com`), with tokens
    /// from `identity` (for that resource).
    pub fn new(identity: ManagedIdentity, endpoint: Url) -> Result<Self, PolicyError> {
        Ok(Self {
            http: http::client(TIMEOUT)?,
            identity,
            endpoint,
        })
    }

    /// Every credential of every application registration, and of the enterprise applications
    /// of those registrations (managed identities and other tenants' applications, Microsoft's
    /// among them, are skipped: their keys are rotated by the platform or by their owners).
    pub async fn credentials(&self) -> Result<Vec<AppCredential>, EntraError> {
        let mut found = Vec::new();
        let mut own_apps = HashSet::new();
        let query = "$select=id,appId,displayName,passwordCredentials,keyCredentials&$top=999";
        self.each_page("/v1.0/applications", query, MAX_PAGES, |app: Holding| {
            own_apps.insert(app.app_id.to_lowercase());
            found.extend(credentials_of(app, Holder::Application));
        })
        .await?;
        let query = "$select=id,appId,displayName,servicePrincipalType,passwordCredentials,\
                     keyCredentials&$filter=servicePrincipalType%20eq%20'Application'&$top=999";
        self.each_page(
            "/v1.0/servicePrincipals",
            query,
            MAX_PAGES,
            |sp: Holding| {
                // The filter is Graph's; kv-notify does not count on it.
                let ours = sp.service_principal_type.as_deref() == Some("Application")
                    && own_apps.contains(&sp.app_id.to_lowercase());
                if ours {
                    found.extend(credentials_of(sp, Holder::ServicePrincipal));
                }
            },
        )
        .await?;
        Ok(found)
    }

    /// The owners of each application (or enterprise application) in `holders`, by object id:
    /// asked in JSON batches of [`BATCH`] (one round trip for twenty applications), a throttled
    /// one asked again after its `Retry-After`, an application with more than a page of owners
    /// read page by page.
    pub async fn owners(
        &self,
        holders: &[(Holder, String)],
    ) -> HashMap<String, Result<Owners, EntraError>> {
        // Futures made up front: a stream of futures borrowing `holders` is then plainly `Send`.
        let batches: Vec<_> = holders
            .chunks(BATCH)
            .map(|batch| self.owners_batch(batch))
            .collect();
        let answered: Vec<Vec<_>> = stream::iter(batches)
            .buffer_unordered(BATCHES_AT_ONCE)
            .collect()
            .await;
        answered.into_iter().flatten().collect()
    }

    /// One batch of [`owners`](Self::owners).
    async fn owners_batch(
        &self,
        holders: &[(Holder, String)],
    ) -> Vec<(String, Result<Owners, EntraError>)> {
        let mut done = Vec::with_capacity(holders.len());
        let mut pending: Vec<&(Holder, String)> = Vec::new();
        for holder in holders {
            match owners_path(holder.0, &holder.1) {
                Ok(_) => pending.push(holder),
                Err(error) => done.push((holder.1.clone(), Err(error))),
            }
        }
        let mut backoff = Backoff::new(&BACKOFF, Duration::from_secs(1));
        while !pending.is_empty() {
            let requests: Vec<serde_json::Value> = pending
                .iter()
                .enumerate()
                .map(|(n, (holder, id))| {
                    let path = owners_path(*holder, id).unwrap_or_default();
                    serde_json::json!({"id": n.to_string(), "method": "GET", "url": format!("{path}?{OWNER_QUERY}")})
                })
                .collect();
            let mut url = self.endpoint.clone();
            url.set_path("/v1.0/$batch");
            let body = serde_json::json!({ "requests": requests });
            let answer: Result<BatchAnswer, EntraError> = self.send(url, Some(&body)).await;
            let answers = match answer {
                Ok(answer) => answer.responses,
                Err(error) => {
                    done.extend(
                        pending
                            .iter()
                            .map(|(_, id)| (id.clone(), Err(error.clone()))),
                    );
                    return done;
                }
            };
            let mut throttled = Vec::new();
            let mut wait = None;
            for (n, holder) in pending.iter().enumerate() {
                let answer = answers.iter().find(|a| a.id == n.to_string());
                let Some(answer) = answer else {
                    let missing = EntraError::Failed("no answer in the batch".to_owned());
                    done.push((holder.1.clone(), Err(missing)));
                    continue;
                };
                match answer.status {
                    200 => {
                        let owners =
                            match serde_json::from_value::<Page<Owner>>(answer.body.clone()) {
                                // More than a page of owners: read them page by page.
                                Ok(page) if page.next_link.is_some() => {
                                    self.owners_of(holder.0, &holder.1).await
                                }
                                Ok(page) => Ok(Owners::of(page.value)),
                                Err(error) => {
                                    Err(EntraError::Failed(format!("unreadable owners: {error}")))
                                }
                            };
                        done.push((holder.1.clone(), owners));
                    }
                    429 | 503 | 504 => {
                        let after = answer
                            .headers
                            .get("Retry-After")
                            .and_then(|v| v.as_str())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        wait = wait.max(after);
                        throttled.push(*holder);
                    }
                    403 | 401 => done.push((
                        holder.1.clone(),
                        Err(EntraError::Denied(format!("{}", answer.status))),
                    )),
                    status => done.push((
                        holder.1.clone(),
                        Err(EntraError::Failed(format!("{status} for its owners"))),
                    )),
                }
            }
            if throttled.is_empty() {
                break;
            }
            match backoff.next_wait(wait) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    let why = EntraError::Failed("throttled throughout".to_owned());
                    done.extend(
                        throttled
                            .iter()
                            .map(|(_, id)| (id.clone(), Err(why.clone()))),
                    );
                    break;
                }
            }
            pending = throttled;
        }
        done
    }

    /// The owners of one application, page by page.
    async fn owners_of(&self, holder: Holder, id: &str) -> Result<Owners, EntraError> {
        let path = owners_path(holder, id)?;
        let mut owners = Vec::new();
        self.each_page(&path, OWNER_QUERY, MAX_OWNER_PAGES, |owner: Owner| {
            owners.push(owner);
        })
        .await?;
        Ok(Owners::of(owners))
    }

    /// Reads the list at `path` page by page, handing each item to `each`.
    async fn each_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &str,
        max_pages: usize,
        mut each: impl FnMut(T),
    ) -> Result<(), EntraError> {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        url.set_query(Some(query));
        let mut read = http::Pages::new(&url, max_pages);
        loop {
            let page: Page<T> = self.send(url, None).await?;
            page.value.into_iter().for_each(&mut each);
            let Some(next) = page.next_link.filter(|l| !l.is_empty()) else {
                return Ok(());
            };
            url = Url::parse(&next)
                .ok()
                .filter(|next| next.origin() == self.endpoint.origin())
                .ok_or_else(|| EntraError::Failed("a nextLink off Graph: not followed".into()))?;
            read.admit(&url)
                .map_err(|refused| EntraError::Failed(refused.to_string()))?;
        }
    }

    /// A GET of `url`, or a POST of `body` to it, answered in JSON; throttling is waited out.
    async fn send<T: DeserializeOwned>(
        &self,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, EntraError> {
        let failed = |why: String| EntraError::Failed(why);
        let mut backoff = Backoff::new(&BACKOFF, Duration::from_secs(1));
        loop {
            let token = self.identity.token().await.map_err(|e| failed(e.0))?;
            let request = match body {
                Some(body) => self.http.post(url.clone()).json(body),
                None => self.http.get(url.clone()),
            };
            let response = request
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .map_err(|e| failed(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                return http::read_json(response, PAGE_CAP)
                    .await
                    .map_err(|e| failed(format!("unreadable page: {e}")));
            }
            let retry_after = http::retry_after(response.headers());
            let detail = http::error_detail(response).await;
            match (status, http::verdict(status)) {
                (StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED, _) => {
                    return Err(EntraError::Denied(format!("{status}: {detail}")));
                }
                (_, Verdict::Transient) => match backoff.next_wait(retry_after) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(failed(format!("{status} throughout: {detail}"))),
                },
                _ => return Err(failed(format!("{status}: {detail}"))),
            }
        }
    }
}

/// What a directory object is asked for: enough to name it.
const NAME_QUERY: &str = "$select=displayName,userPrincipalName,appId";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
}

impl EntraClient {
    /// The name of the user, group or service principal `id` (`Ada Lovelace
    /// (ada@contoso.com)`), for an alert that would otherwise name it by its id alone; `None`
    /// when Graph knows no such object. Reading users takes `User.Read.All`, service principals
    /// `Application.Read.All`: without them Graph refuses (`EntraError::Denied`).
    pub async fn display_name(&self, id: &str) -> Result<Option<String>, EntraError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(EntraError::Failed(format!("not an object id: {id:?}")));
        }
        let mut url = self.endpoint.clone();
        url.set_path(&format!("/v1.0/directoryObjects/{id}"));
        url.set_query(Some(NAME_QUERY));
        let named: Named = match self.send(url, None).await {
            Ok(named) => named,
            Err(EntraError::Failed(why)) if why.starts_with("404") => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(match (named.display_name, named.user_principal_name) {
            (Some(name), Some(upn)) if name != upn => Some(format!("{name} ({upn})")),
            (Some(name), _) | (None, Some(name)) => Some(name),
            (None, None) => None,
        })
    }
}

/// What owners are asked for.
const OWNER_QUERY: &str = "$select=id,displayName,userPrincipalName,mail";

/// The path of the owners of the application (or enterprise application) `id`; an id that is
/// not a GUID's characters is not sent into a path.
fn owners_path(holder: Holder, id: &str) -> Result<String, EntraError> {
    let collection = match holder {
        Holder::Application => "applications",
        Holder::ServicePrincipal => "servicePrincipals",
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(EntraError::Failed(format!("not an object id: {id:?}")));
    }
    Ok(format!("/v1.0/{collection}/{id}/owners"))
}

impl Owners {
    /// The owners Graph listed: users with a mailbox are mailed; ids alone are users this
    /// identity may not read; service principals and users without a mailbox are nobody to
    /// mail.
    fn of(listed: Vec<Owner>) -> Self {
        let mut owners = Owners::default();
        for owner in listed {
            let user = owner.odata_type.as_deref() == Some("#microsoft.graph.user");
            match owner.mail.filter(|m| m.contains('@')) {
                Some(mail) if user => owners.mails.push(mail),
                None if owner.display_name.is_none() && owner.user_principal_name.is_none() => {
                    owners.hidden += 1;
                }
                _ => {}
            }
        }
        owners
    }
}

/// A JSON batch's answer.
#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    responses: Vec<BatchResponse>,
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body: serde_json::Value,
}

/// A holder's credentials, with their end dates checked like any date kv-notify reads. On an
/// enterprise application, a SAML signing certificate is its `Sign` key; the `Verify` key and
/// the password that share its custom key identifier are halves of the same certificate and
/// are not reminded of twice.
fn credentials_of(holding: Holding, holder: Holder) -> Vec<AppCredential> {
    let name: Arc<str> = holding
        .display_name
        .unwrap_or_else(|| holding.app_id.clone())
        .into();
    let (app_id, holder_id): (Arc<str>, Arc<str>) = (holding.app_id.into(), holding.id.into());
    let signing: HashSet<String> = match holder {
        Holder::ServicePrincipal => holding
            .key_credentials
            .iter()
            .filter(|k| k.usage.as_deref() == Some("Sign"))
            .filter_map(|k| k.custom_key_identifier.clone())
            .collect(),
        Holder::Application => HashSet::new(),
    };
    let half_of_signing = |c: &Credential| {
        c.usage.as_deref() != Some("Sign")
            && c.custom_key_identifier
                .as_ref()
                .is_some_and(|id| signing.contains(id))
    };
    let kinds = [
        (CredentialKind::Secret, holding.password_credentials),
        (CredentialKind::Certificate, holding.key_credentials),
    ];
    kinds
        .into_iter()
        .flat_map(|(kind, credentials)| credentials.into_iter().map(move |c| (kind, c)))
        .filter(|(_, credential)| !half_of_signing(credential))
        .map(|(kind, credential)| AppCredential {
            app_name: name.clone(),
            app_id: app_id.clone(),
            holder_id: holder_id.clone(),
            holder,
            kind: match (holder, credential.usage.as_deref()) {
                (Holder::ServicePrincipal, Some("Sign")) => CredentialKind::SigningCertificate,
                _ => kind,
            },
            // A GUID, in one case wherever it is compared (a vault secret's tag names it too).
            key_id: credential.key_id.to_lowercase(),
            name: credential.display_name.unwrap_or_default(),
            ends: credential
                .end_date_time
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| crate::event::sane_date(t.timestamp())),
        })
        .collect()
}
