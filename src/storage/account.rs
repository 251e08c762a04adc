//! The storage account behind `AzureWebJobsStorage`, as a connection string gives it, and the
//! Shared Key Lite signatures of its Table and Queue services.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::{Arc, OnceLock};

use crate::http::PolicyError;
use crate::identity::{Identity, ManagedIdentity, TokenError};

/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_TABLE_ENDPOINT: &str = "http://127.0.0.1:10002/devstoreaccount1";
const DEV_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// The resource a storage token is for.
const STORAGE_RESOURCE: &str = "https://storage.azure.com/";

/// Why a storage connection string is refused (never repeating it: it holds the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAccount(pub String);

/// A storage account's Table service, reached with its account key or the app's identity.
#[derive(Clone)]
pub struct Account {
    /// The account name.
    pub name: String,
    /// The Table service endpoint, without a trailing slash (path-style for Azurite:
    /// `http://127.0.0.1:10002/devstoreaccount1`).
    pub table_endpoint: String,
    /// The Queue service endpoint, likewise (empty when a connection string spells out the
    /// others and not this one).
    pub queue_endpoint: String,
    /// The Blob service endpoint, likewise.
    pub blob_endpoint: String,
    auth: Auth,
}

/// How requests are authorised.
#[derive(Clone)]
enum Auth {
    /// Shared Key Lite with the account key.
    SharedKey(SecretString),
    /// A bearer token from the managed identity (role: Storage Table Data Contributor).
    Identity(Arc<Tokens>),
}

/// The app's managed identity as the settings describe it; its client is made on the first
/// request, in the ledger, not while the settings are read.
struct Tokens {
    identity: Identity,
    client_id: Option<String>,
    made: OnceLock<Result<ManagedIdentity, PolicyError>>,
}

impl Tokens {
    fn identity(&self) -> Result<&ManagedIdentity, TokenError> {
        let made = self.made.get_or_init(|| {
            ManagedIdentity::for_resource(&self.identity, &self.client_id, STORAGE_RESOURCE)
        });
        made.as_ref().map_err(|e| TokenError(e.to_string()))
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("table_endpoint", &self.table_endpoint)
            .field("queue_endpoint", &self.queue_endpoint)
            .field("blob_endpoint", &self.blob_endpoint)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Reads a connection string: `UseDevelopmentStorage=true`, or `AccountName` and
    /// `AccountKey` with `TableEndpoint`, or `DefaultEndpointsProtocol` and `EndpointSuffix`
    /// (`core.windows.net` unless given). Errors never quote the string: it holds the key.
    pub fn from_connection_string(text: &str) -> Result<Self, InvalidAccount> {
        Self::read_connection_string(text).map_err(InvalidAccount)
    }

    fn read_connection_string(text: &str) -> Result<Self, String> {
        let mut parts = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or("a connection string is NAME=VALUE pairs separated by `;`")?;
            parts.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        if parts
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Ok(Self {
                name: DEV_ACCOUNT.to_owned(),
                table_endpoint: DEV_TABLE_ENDPOINT.to_owned(),
                queue_endpoint: DEV_QUEUE_ENDPOINT.to_owned(),
                blob_endpoint: DEV_BLOB_ENDPOINT.to_owned(),
                auth: Auth::SharedKey(SecretString::from(DEV_KEY)),
            });
        }
        let name = parts
            .remove("accountname")
            .ok_or("AccountName is missing")?;
        let key = parts.remove("accountkey").ok_or("AccountKey is missing")?;
        if BASE64.decode(&key).is_err() {
            return Err("AccountKey is not base64".to_owned());
        }
        let protocol = parts
            .remove("defaultendpointsprotocol")
            .unwrap_or_else(|| "https".to_owned());
        let suffix = parts
            .remove("endpointsuffix")
            .unwrap_or_else(|| "core.windows.net".to_owned());
        // With the endpoints spelt out (an emulator, a custom domain), a service left out is
        // not there: no address is made up for it.
        let explicit = ["tableendpoint", "queueendpoint", "blobendpoint"]
            .iter()
            .any(|key| parts.contains_key(*key));
        let mut endpoint = |service: &str| match parts.remove(&format!("{service}endpoint")) {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None if explicit => String::new(),
            None => format!("{protocol}://{name}.{service}.{suffix}"),
        };
        let (table_endpoint, queue_endpoint) = (endpoint("table"), endpoint("queue"));
        let blob_endpoint = endpoint("blob");
        Ok(Self {
            name,
            table_endpoint,
            queue_endpoint,
            blob_endpoint,
            auth: Auth::SharedKey(SecretString::from(key)),
        })
    }

    /// The account `name` at its Table, Queue and Blob endpoints (a trailing slash is
    /// dropped), reached with the app's managed identity.
    /// `identity` is the platform's (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), or `None` for
    /// the Azure CLI's login on a developer's machine; `client_id` a user-assigned identity's.
    pub fn with_identity(
        name: String,
        (table_endpoint, queue_endpoint, blob_endpoint): (&str, &str, &str),
        identity: Identity,
        client_id: Option<String>,
    ) -> Self {
        let tokens = Tokens {
            identity,
            client_id,
            made: OnceLock::new(),
        };
        Self {
            name,
            table_endpoint: table_endpoint.trim_end_matches('/').to_owned(),
            queue_endpoint: queue_endpoint.trim_end_matches('/').to_owned(),
            blob_endpoint: blob_endpoint.trim_end_matches('/').to_owned(),
            auth: Auth::Identity(Arc::new(tokens)),
        }
    }

    /// Whether requests carry a token from the managed identity (rather than a key).
    pub fn uses_identity(&self) -> bool {
        matches!(self.auth, Auth::Identity(_))
    }

    /// The `Authorization` header value for a request to `url` dated `date` (RFC 1123, as
    /// sent in `x-ms-date`): Shared Key Lite, or a bearer token.
    pub async fn authorization(&self, url: &str, date: &str) -> Result<String, TokenError> {
        match &self.auth {
            Auth::SharedKey(key) => {
                let signature = sign(key.expose_secret(), &string_to_sign(&self.name, url, date));
                Ok(format!("SharedKeyLite {}:{signature}", self.name))
            }
            Auth::Identity(tokens) => {
                let token = tokens.identity()?.token().await?;
                Ok(format!("Bearer {}", token.expose_secret()))
            }
        }
    }
}

impl Account {
    /// The `Authorization` header value for a Queue or Blob service request: `method` to `url`,
    /// with a body of `length` bytes of `content_type` and the `x-ms-*` headers `ms_headers`
    /// (names in lower case). Shared Key (the full form: the Blob service has no Lite form in
    /// every emulator), or a bearer token.
    pub async fn storage_authorization(
        &self,
        method: &str,
        url: &str,
        (length, content_type): (usize, &str),
        ms_headers: &[(&str, &str)],
    ) -> Result<String, TokenError> {
        match &self.auth {
            Auth::SharedKey(key) => {
                let mut headers = ms_headers.to_vec();
                headers.sort_unstable();
                let canonical: String = headers
                    .iter()
                    .map(|(name, value)| format!("{name}:{}\n", value.trim()))
                    .collect();
                let length = match length {
                    0 => String::new(),
                    n => n.to_string(),
                };
                // Encoding, language, length, MD5, type, date (in x-ms-date), four
                // conditions and a range.
                let text = format!(
                    "{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\n{canonical}{}",
                    canonical_resource(&self.name, url)
                );
                let signature = sign(key.expose_secret(), &text);
                Ok(format!("SharedKey {}:{signature}", self.name))
            }
            Auth::Identity(tokens) => {
                let token = tokens.identity()?.token().await?;
                Ok(format!("Bearer {}", token.expose_secret()))
            }
        }
    }
}

/// Shared Key's canonical resource: `/account` + the URL's path, then each query parameter,
/// by name in lower case and sorted, as `\nname:value` (the value decoded).
fn canonical_resource(account: &str, url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return format!("/{account}");
    };
    let mut params: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| (name.to_lowercase(), value.into_owned()))
        .collect();
    params.sort();
    let mut resource = format!("/{account}{}", parsed.path());
    for (name, value) in params {
        resource.push_str(&format!("\n{name}:{value}"));
    }
    resource
}

/// `date` + `\n` + `/account` + the URL's path (its `comp` parameter, if any, too). A
/// path-style endpoint (Azurite) repeats the account in the path, and so in the string.
fn string_to_sign(account: &str, url: &str, date: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_query = after_scheme
        .find('/')
        .map_or("/", |slash| &after_scheme[slash..]);
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let comp = query
        .split('&')
        .find(|pair| pair.starts_with("comp="))
        .map(|pair| format!("?{pair}"))
        .unwrap_or_default();
    format!("{date}\n/{account}{path}{comp}")
}

/// Base64 of HMAC-SHA256 over `text` with the base64-decoded account key.
fn sign(key: &str, text: &str) -> String {
    let key = BASE64.decode(key).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Mon, 23 Nov 2026 05:00:00 GMT";

    #[test]
    fn the_development_account_is_azurite_on_its_default_port() {
        let account = Account::from_connection_string("UseDevelopmentStorage=true").expect("ok");
        assert_eq!(account.name, "devstoreaccount1");
        assert_eq!(
            account.table_endpoint,
            "http://127.0.0.1:10002/devstoreaccount1"
        );
    }

    #[test]
    fn an_account_key_string_gives_the_public_endpoint_unless_one_is_named() {
        let public = Account::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=kvstore;AccountKey=a2V5;EndpointSuffix=core.usgovcloudapi.net",
        )
        .expect("ok");
        assert_eq!(
            public.table_endpoint,
            "https://kvstore.table.core.usgovcloudapi.net"
        );
        let local = Account::from_connection_string(
            "AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:4711/devstoreaccount1/",
        )
        .expect("ok");
        assert_eq!(
            local.table_endpoint,
            "http://127.0.0.1:4711/devstoreaccount1"
        );
    }

    #[test]
    fn problems_name_the_part_and_never_quote_the_key() {
        let missing = Account::from_connection_string("AccountName=x").err();
        assert_eq!(
            missing.map(|e| e.0).as_deref(),
            Some("AccountKey is missing")
        );
        let bad = Account::from_connection_string("AccountName=x;AccountKey=not base64!").err();
        assert!(bad.is_some_and(|e| !e.0.contains("not base64!")));
        let debug = format!(
            "{:?}",
            Account::from_connection_string("UseDevelopmentStorage=true")
        );
        assert!(!debug.contains(DEV_KEY));
    }

    #[test]
    fn the_string_to_sign_is_the_date_and_the_canonical_resource() {
        // The documented form: "/" + account + URI path, "?comp=" kept, other parameters not.
        assert_eq!(
            string_to_sign(
                "myaccount",
                "https://myaccount.table.core.windows.net/Tables",
                DATE
            ),
            format!("{DATE}\n/myaccount/Tables")
        );
        assert_eq!(
            string_to_sign(
                "devstoreaccount1",
                "http://127.0.0.1:10002/devstoreaccount1/t(PartitionKey='p',RowKey='r')?$select=x",
                DATE
            ),
            format!("{DATE}\n/devstoreaccount1/devstoreaccount1/t(PartitionKey='p',RowKey='r')")
        );
        assert_eq!(
            string_to_sign(
                "a",
                "https://a.table.core.windows.net/?restype=service&comp=properties",
                DATE
            ),
            format!("{DATE}\n/a/?comp=properties")
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_string_with_the_decoded_key() {
        // Computed independently: base64(hmac_sha256(b64decode(DEV_KEY), "x")).
        assert_eq!(
            sign(DEV_KEY, "x"),
            "MvdWhEu1FxNoWUhlIUAW50ghq3SJk9dzg54CTrOsKng="
        );
    }
}
