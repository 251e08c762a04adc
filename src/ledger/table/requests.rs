//! The Table service's requests: signed, tried again when the service is briefly unavailable,
//! and the table made when it is missing.

use super::{API_VERSION, Held, TableLedger};
use crate::http::Verdict;
use crate::ledger::{ActionKey, LedgerError};
use chrono::Utc;
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::time::Duration;

impl TableLedger {
    /// Creates the table unless it exists.
    pub(super) async fn create_table(&self, table: &str) -> Result<(), LedgerError> {
        let url = format!("{}/Tables", self.account.table_endpoint);
        let body = serde_json::json!({ "TableName": table });
        let response = self.send(Method::POST, &url, None, Some(&body)).await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::CONFLICT => Ok(()),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED if self.account.uses_identity() => {
                Err(LedgerError(format!(
                    "AzureWebJobsStorage: the storage account {} refused the app's identity \
                     ({}): grant it the Storage Table Data Contributor role on the account",
                    self.account.name,
                    response.status()
                )))
            }
            StatusCode::FORBIDDEN => Err(LedgerError(format!(
                "AzureWebJobsStorage: the storage account {} refused the key (403); check the \
                 connection string",
                self.account.name
            ))),
            status => Err(LedgerError(format!(
                "cannot create table {table} in storage account {}: {status}",
                self.account.name
            ))),
        }
    }

    /// Sends one signed request, trying again (after 100, then 400 ms) when the service is
    /// throttling (429), unavailable (500, 503) or unreachable. Only a failure to get any other
    /// answer is an error here. A claim tried again after an insert whose answer was lost finds
    /// its own entry and waits for its lease: a delay, never a second mail.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        if_match: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, LedgerError> {
        let mut pause = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let mut request = self
                .http
                .request(method.clone(), url)
                .header("x-ms-date", &date)
                .header("x-ms-version", API_VERSION)
                .header("Accept", "application/json;odata=nometadata")
                .header("DataServiceVersion", "3.0;NetFx")
                .header(
                    "Authorization",
                    self.account
                        .authorization(url, &date)
                        .await
                        .map_err(|e| LedgerError(e.to_string()))?,
                );
            if let Some(etag) = if_match {
                request = request.header("If-Match", etag);
            }
            if let Some(body) = body {
                request = request.json(body).header("Prefer", "return-no-content");
            }
            let retry = match request.send().await {
                Ok(response)
                    if crate::http::verdict(response.status()) != Verdict::Transient
                        || attempt == 3 =>
                {
                    return Ok(response);
                }
                Ok(response) => response.status().to_string(),
                Err(err) if attempt == 3 => {
                    return Err(LedgerError(format!(
                        "storage account {}: {}",
                        self.account.name,
                        err.without_url()
                    )));
                }
                Err(err) => err.without_url().to_string(),
            };
            tracing::debug!(attempt, reason = %retry, "storage request failed; trying again");
            tokio::time::sleep(pause).await;
            pause *= 4;
            attempt += 1;
        }
    }

    /// Remembers the entity URL and ETag of an entry this instance just claimed.
    pub(super) fn hold(
        &self,
        key: &ActionKey,
        url: &str,
        response: &reqwest::Response,
        until: chrono::DateTime<Utc>,
    ) {
        if let Some(etag) = response.headers().get("etag").and_then(|v| v.to_str().ok()) {
            let held = Held {
                url: url.to_owned(),
                etag: etag.to_owned(),
                until,
            };
            self.held_entries().insert(key.to_string(), held);
        }
    }

    pub(super) fn held_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn unexpected(&self, what: &str, status: StatusCode) -> LedgerError {
        let account = &self.account.name;
        LedgerError(format!(
            "storage account {account}: {what} answered {status}"
        ))
    }
}
