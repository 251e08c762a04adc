//! Where the ledger lives: a file on this machine, or a table in the app's storage account.

use super::name;
use crate::storage::Account;
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// The shared ledger, when chosen: by `LEDGER=table`, or by default when the app has a storage
/// account (`AzureWebJobsStorage`, in either form, as it always has in Azure) and `LEDGER_PATH`
/// does not name a file. It is that account and the table `LEDGER_TABLE` (default
/// `kvnotifyledger`). `LEDGER=file`, or a `LEDGER_PATH`, keeps the file ledger.
pub(super) fn table_ledger(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<(Account, String)> {
    match get(name::LEDGER)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") => {
            let has_account = get(name::AZURE_WEB_JOBS_STORAGE).is_some()
                || get(name::STORAGE_ACCOUNT_NAME).is_some()
                || get(name::STORAGE_TABLE_URI).is_some();
            let by_default = get(name::LEDGER_PATH).is_none() && has_account;
            if !by_default {
                return None;
            }
        }
        Some("file") => return None,
        Some("table") => {}
        Some(other) => {
            problems.push(format!("LEDGER: {other:?} is not `file` or `table`"));
            return None;
        }
    }
    let table = get(name::LEDGER_TABLE).unwrap_or_else(|| "kvnotifyledger".to_owned());
    // Each month's table adds six digits, within the service's 63 characters.
    let valid = (3..=57).contains(&table.len())
        && table.starts_with(|c: char| c.is_ascii_alphabetic())
        && table.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        problems.push(format!(
            "LEDGER_TABLE: {table:?} is not a table name (3 to 57 letters and digits, a letter first; each month's table adds six digits)"
        ));
    }
    let account = storage_account(get).unwrap_or_else(|| {
        Err(
            "LEDGER=table needs the app's storage account: AzureWebJobsStorage (a connection \
             string, or UseDevelopmentStorage=true with Azurite) or \
             AzureWebJobsStorage__accountName with the managed identity"
                .to_owned(),
        )
    });
    match account {
        Ok(account) if valid => Some((account, table)),
        Ok(_) => None,
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

/// The app's storage account, in either form of `AzureWebJobsStorage`; `None` when neither is
/// set.
pub(super) fn storage_account(
    get: &impl Fn(&str) -> Option<String>,
) -> Option<Result<Account, String>> {
    match get(name::AZURE_WEB_JOBS_STORAGE) {
        Some(connection) => Some(Account::from_connection_string(&connection).map_err(|e| {
            format!("AzureWebJobsStorage: {e} (the value is not shown: it holds a key)")
        })),
        None => identity_account(get),
    }
}

/// The identity-based form of `AzureWebJobsStorage`: `__accountName` (or `__tableServiceUri`),
/// `__credential` (`managedidentity`, the default) and `__clientId` for a user-assigned
/// identity, reached with a token from `IDENTITY_ENDPOINT` (from the Azure CLI's login outside
/// Azure). `None` when the form is not used.
fn identity_account(get: &impl Fn(&str) -> Option<String>) -> Option<Result<Account, String>> {
    let account_name = get(name::STORAGE_ACCOUNT_NAME);
    let table_uri = get(name::STORAGE_TABLE_URI);
    if account_name.is_none() && table_uri.is_none() {
        return None;
    }
    Some((|| {
        let credential = get(name::STORAGE_CREDENTIAL).unwrap_or_else(|| "managedidentity".into());
        if !credential.eq_ignore_ascii_case("managedidentity") {
            return Err(format!(
                "{}: {credential:?} is not supported; use managedidentity",
                name::STORAGE_CREDENTIAL
            ));
        }
        if let Some(name) = account_name.as_deref() {
            check_account_name(name)?;
        }
        if let Some(uri) = table_uri.as_deref() {
            let url = reqwest::Url::parse(uri.trim())
                .map_err(|e| format!("{}: not a URL ({e})", name::STORAGE_TABLE_URI))?;
            crate::http::require_https(&url).map_err(|why| {
                format!(
                    "{}: {why}; the storage token must not travel in clear",
                    name::STORAGE_TABLE_URI
                )
            })?;
        }
        let endpoint = table_uri.unwrap_or_else(|| {
            format!(
                "https://{}.table.core.windows.net",
                account_name.as_deref().unwrap_or_default()
            )
        });
        let account = account_name.unwrap_or_else(|| {
            let host = endpoint
                .split_once("://")
                .map_or(endpoint.as_str(), |(_, h)| h);
            host.split(['.', '/', ':'])
                .next()
                .unwrap_or_default()
                .to_owned()
        });
        // In Azure the platform's identity; on a developer's machine (`kv-notify requeue` from
        // a laptop) the Azure CLI's login.
        let identity = match (get(name::IDENTITY_ENDPOINT), get(name::IDENTITY_HEADER)) {
            (Some(endpoint), Some(header)) => Some((endpoint, SecretString::from(header))),
            _ if get(name::WEBSITE_INSTANCE_ID).is_some() => {
                return Err(format!(
                    "{}: an identity-based connection needs the app's managed identity \
                     (IDENTITY_ENDPOINT and IDENTITY_HEADER, set by the platform once the \
                     identity is on)",
                    name::STORAGE_ACCOUNT_NAME
                ));
            }
            _ => None,
        };
        let service = |setting: &str, service: &str| -> Result<String, String> {
            match get(setting) {
                Some(uri) => {
                    let url = reqwest::Url::parse(uri.trim())
                        .map_err(|e| format!("{setting}: not a URL ({e})"))?;
                    crate::http::require_https(&url).map_err(|why| {
                        format!("{setting}: {why}; the storage token must not travel in clear")
                    })?;
                    Ok(uri.trim().to_owned())
                }
                None if endpoint.contains(".table.") => {
                    Ok(endpoint.replacen(".table.", &format!(".{service}."), 1))
                }
                None => Ok(format!("https://{account}.{service}.core.windows.net")),
            }
        };
        let queue_endpoint = service(name::STORAGE_QUEUE_URI, "queue")?;
        let blob_endpoint = service(name::STORAGE_BLOB_URI, "blob")?;
        let client_id = get(name::STORAGE_CLIENT_ID);
        Ok(Account::with_identity(
            account,
            (&endpoint, &queue_endpoint, &blob_endpoint),
            identity,
            client_id,
        ))
    })())
}

/// A storage account's name is 3 to 24 lower-case letters and digits; anything else (a host, a
/// path) would decide where the storage token is sent.
fn check_account_name(account: &str) -> Result<(), String> {
    let valid = (3..=24).contains(&account.len())
        && account
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{}: {account:?} is not a storage account name (3 to 24 lower-case letters and \
             digits, as in az storage account list --query [].name)",
            name::STORAGE_ACCOUNT_NAME
        ))
    }
}

/// The ledger's home. In Azure (`WEBSITE_INSTANCE_ID` set) the app folder is read-only (the
/// app runs from its package), so `$HOME/data/kv-notify`, the function app's persistent
/// storage. Elsewhere `data/` in the app folder, so that two checkouts on one machine do not
/// share a ledger.
pub(super) fn default_ledger_path(
    in_azure: bool,
    home: Option<String>,
    app_root: Option<String>,
) -> PathBuf {
    const FILE: &str = "ledger.redb";
    match (in_azure, home) {
        (true, Some(home)) => Path::new(&home).join("data/kv-notify").join(FILE),
        _ => app_root
            .map_or_else(PathBuf::new, PathBuf::from)
            .join("data")
            .join(FILE),
    }
}
