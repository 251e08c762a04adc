//! The health notice's troubles in the shared ledger: one table, `<LEDGER_TABLE>health` (six
//! characters, as many as a month's `YYYYMM`, so every valid `LEDGER_TABLE` makes a valid
//! name), partitioned by kind, one entity per subject (its digest the row key). Small: a few
//! rows a day at most, and those not seen within the retention period go with the purge.

use super::{TableLedger, hex_digest, parse_time, rfc3339, table_name};
use crate::ledger::{LedgerError, Trouble, TroubleKind};
use chrono::DateTime;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// One trouble as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    /// The kind, as JSON (`"mailRefused"`).
    kind: String,
    subject: String,
    detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    last: String,
}

/// The service's continuation headers when a query goes on.
const NEXT_PARTITION: &str = "x-ms-continuation-NextPartitionKey";
const NEXT_ROW: &str = "x-ms-continuation-NextRowKey";

impl TableLedger {
    fn troubles_url(&self) -> String {
        format!("{}/{}health", self.account.table_endpoint, self.prefix)
    }

    fn trouble_url(&self, kind: TroubleKind, subject: &str) -> String {
        format!(
            "{}(PartitionKey='{}',RowKey='{}')",
            self.troubles_url(),
            kind.as_str(),
            hex_digest(subject)
        )
    }

    /// Inserts the trouble, or (when it is known) updates its detail and last sighting,
    /// keeping its first.
    pub(super) async fn note_trouble(&self, trouble: &Trouble) -> Result<(), LedgerError> {
        let table_url = self.troubles_url();
        let url = self.trouble_url(trouble.kind, &trouble.subject);
        let mut row = Row {
            kind: trouble.kind.as_str().to_owned(),
            subject: trouble.subject.clone(),
            detail: trouble.detail.clone(),
            since: Some(rfc3339(trouble.since)),
            last: rfc3339(trouble.last),
        };
        for _ in 0..2 {
            let body = super::entity_json(&url, &row);
            let inserted = self
                .send(Method::POST, &table_url, None, Some(&body))
                .await?;
            match inserted.status() {
                StatusCode::CREATED | StatusCode::NO_CONTENT => return Ok(()),
                StatusCode::NOT_FOUND => {
                    self.create_table(table_name(&table_url)).await?;
                    continue;
                }
                StatusCode::CONFLICT => {}
                status => return Err(self.unexpected("noting a trouble", status)),
            }
            // Known: a merge leaves the first sighting as it is.
            row.since = None;
            let body = super::entity_json(&url, &row);
            let merged = self
                .send(
                    Method::from_bytes(b"MERGE").expect("a method"),
                    &url,
                    Some("*"),
                    Some(&body),
                )
                .await?;
            match merged.status() {
                StatusCode::NO_CONTENT | StatusCode::OK => return Ok(()),
                // Cleared meanwhile: insert it afresh.
                StatusCode::NOT_FOUND => row.since = Some(rfc3339(trouble.since)),
                status => return Err(self.unexpected("updating a trouble", status)),
            }
        }
        Ok(())
    }

    pub(super) async fn clear_trouble(
        &self,
        kind: TroubleKind,
        subject: &str,
    ) -> Result<(), LedgerError> {
        let url = self.trouble_url(kind, subject);
        let response = self.send(Method::DELETE, &url, Some("*"), None).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.unexpected("clearing a trouble", status)),
        }
    }

    /// Every trouble, page by page.
    pub(super) async fn list_troubles(&self) -> Result<Vec<Trouble>, LedgerError> {
        #[derive(Deserialize)]
        struct Page {
            value: Vec<Row>,
        }
        let endpoint = format!("{}()", self.troubles_url());
        let mut troubles = Vec::new();
        let mut next: Option<(String, String)> = None;
        loop {
            let url = match &next {
                Some((partition, row)) => reqwest::Url::parse_with_params(
                    &endpoint,
                    [("NextPartitionKey", partition), ("NextRowKey", row)],
                )
                .map_err(|e| LedgerError(format!("cannot list troubles: {e}")))?
                .to_string(),
                None => endpoint.clone(),
            };
            let response = self.send(Method::GET, &url, None, None).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Ok(troubles),
                status => return Err(self.unexpected("a listing of troubles", status)),
            }
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            next = header(NEXT_PARTITION).zip(header(NEXT_ROW));
            let page: Page = response
                .json()
                .await
                .map_err(|e| LedgerError(format!("unreadable listing of troubles: {e}")))?;
            troubles.extend(page.value.into_iter().filter_map(Row::into_trouble));
            if next.is_none() {
                return Ok(troubles);
            }
        }
    }

    /// Deletes the troubles not seen since `cutoff`.
    pub(super) async fn purge_troubles(&self, cutoff: DateTime<Utc>) -> Result<(), LedgerError> {
        for trouble in self.list_troubles().await? {
            if trouble.last < cutoff {
                self.clear_trouble(trouble.kind, &trouble.subject).await?;
            }
        }
        Ok(())
    }
}

impl Row {
    fn into_trouble(self) -> Option<Trouble> {
        let kind = serde_json::from_value(serde_json::Value::String(self.kind)).ok()?;
        let last = parse_time(&self.last)?;
        Some(Trouble {
            kind,
            subject: self.subject,
            detail: self.detail,
            since: self.since.as_deref().and_then(parse_time).unwrap_or(last),
            last,
        })
    }
}
