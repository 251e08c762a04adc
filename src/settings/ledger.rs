//! Where the ledger lives: a file on this machine, or a table in the app's storage account.

use super::name;
use crate::ledger::Account;
use std::path::{Path, PathBuf};

/// The shared ledger, when chosen: by `LEDGER=table`, or by default when `AzureWebJobsStorage`
/// holds a connection string (as it always does in Azure) and `LEDGER_PATH` does not name a
/// file. It is the account of `AzureWebJobsStorage` and the table `LEDGER_TABLE` (default
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
            let by_default =
                get(name::LEDGER_PATH).is_none() && get(name::AZURE_WEB_JOBS_STORAGE).is_some();
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
    let valid = (3..=63).contains(&table.len())
        && table.starts_with(|c: char| c.is_ascii_alphabetic())
        && table.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        problems.push(format!(
            "LEDGER_TABLE: {table:?} is not a table name (3 to 63 letters and digits, a letter first)"
        ));
    }
    let Some(connection) = get(name::AZURE_WEB_JOBS_STORAGE) else {
        problems.push(
            "LEDGER=table needs AzureWebJobsStorage: the storage account's connection string, or \
             UseDevelopmentStorage=true with Azurite"
                .to_owned(),
        );
        return None;
    };
    match Account::from_connection_string(&connection) {
        Ok(account) if valid => Some((account, table)),
        Ok(_) => None,
        Err(e) => {
            problems.push(format!(
                "AzureWebJobsStorage: {e} (the value is not shown: it holds a key)"
            ));
            None
        }
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
