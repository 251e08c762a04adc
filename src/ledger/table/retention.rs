//! Retention without scans. Table Storage has no expiry, and a filter on a time scans the whole
//! table; so the ledger keeps a table per month and drops a month's table whole, with one
//! request, once everything in it is past the retention period. One instance an hour does it.

use super::{TableLedger, rfc3339};
use crate::ledger::LedgerError;
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

/// Kept beyond a month's end plus retention before its table goes: an entry is written when its
/// event arrives, after the event's own time.
const STRAGGLERS: TimeDelta = TimeDelta::days(1);

/// The service's continuation header when a listing of tables goes on.
const NEXT_TABLE: &str = "x-ms-continuation-NextTableName";

impl TableLedger {
    /// Takes this hour's purge turn, if no other instance took it: the turn is an entity in
    /// this month's table (dropped with it), inserted by the first to ask.
    pub(super) async fn take_purge_turn(&self, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let table = self.table_at(now);
        let table_url = format!("{}/{table}", self.account.table_endpoint);
        let marker = serde_json::json!({
            "PartitionKey": "purge",
            "RowKey": now.format("%Y%m%d%H").to_string(),
            "At": rfc3339(now),
            "State": "done",
            "Key": "purge",
        });
        for _ in 0..2 {
            let inserted = self
                .send(Method::POST, &table_url, None, Some(&marker))
                .await?;
            match inserted.status() {
                StatusCode::CREATED | StatusCode::NO_CONTENT => return Ok(true),
                StatusCode::CONFLICT => return Ok(false),
                StatusCode::NOT_FOUND => self.create_table(&table).await?,
                status => return Err(self.unexpected("a purge turn", status)),
            }
        }
        Ok(false)
    }

    /// Drops the tables of the months whose entries are all older than `cutoff`; returns how
    /// many went.
    pub(super) async fn drop_tables_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let mut dropped = 0;
        for table in self.list_tables().await? {
            let past = month_of_table(&self.prefix, &table)
                .and_then(|start| start.checked_add_months(Months::new(1)))
                .is_some_and(|end| end + STRAGGLERS < cutoff);
            if !past {
                continue;
            }
            let url = format!("{}/Tables('{table}')", self.account.table_endpoint);
            let response = self.send(Method::DELETE, &url, None, None).await?;
            match response.status() {
                StatusCode::NO_CONTENT | StatusCode::OK => {
                    tracing::info!(%table, "ledger: dropped a month past its retention");
                    dropped += 1;
                }
                // Dropped by another instance meanwhile.
                StatusCode::NOT_FOUND => {}
                status => return Err(self.unexpected("dropping a table", status)),
            }
        }
        Ok(dropped)
    }

    /// The names of all the account's tables, page by page.
    async fn list_tables(&self) -> Result<Vec<String>, LedgerError> {
        #[derive(Deserialize)]
        struct Page {
            value: Vec<Table>,
        }
        #[derive(Deserialize)]
        struct Table {
            #[serde(rename = "TableName")]
            name: String,
        }
        let endpoint = format!("{}/Tables", self.account.table_endpoint);
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let url = match &next {
                Some(token) => {
                    reqwest::Url::parse_with_params(&endpoint, [("NextTableName", token)])
                        .map_err(|e| LedgerError(format!("cannot list tables: {e}")))?
                        .to_string()
                }
                None => endpoint.clone(),
            };
            let response = self.send(Method::GET, &url, None, None).await?;
            if response.status() != StatusCode::OK {
                return Err(self.unexpected("a listing of tables", response.status()));
            }
            next = response
                .headers()
                .get(NEXT_TABLE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let page: Page = response
                .json()
                .await
                .map_err(|e| LedgerError(format!("unreadable listing of tables: {e}")))?;
            names.extend(page.value.into_iter().map(|table| table.name));
            if next.is_none() {
                return Ok(names);
            }
        }
    }
}

/// The first moment of the month a ledger table is for: `prefix` and `YYYYMM`, nothing else
/// (so another app's `kvnotifyledger2…` tables are not taken for ours).
fn month_of_table(prefix: &str, table: &str) -> Option<DateTime<Utc>> {
    let month = table.strip_prefix(prefix)?;
    if month.len() != 6 || !month.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(month[..4].parse().ok()?, month[4..].parse().ok()?, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a time").to_utc()
    }

    #[test]
    fn only_the_prefix_and_six_digits_name_a_ledger_month() {
        let month = month_of_table("kvnotifyledger", "kvnotifyledger202602");
        assert_eq!(month, Some(time("2026-02-01T00:00:00Z")));
        for other in [
            "kvnotifyledger",
            "kvnotifyledger20260201",
            "kvnotifyledger202613",
            "kvnotifyledgerx20261",
            "AzureFunctionsDiagnosticEvents202611",
        ] {
            assert_eq!(month_of_table("kvnotifyledger", other), None, "{other}");
        }
    }
}
