//! Where an entry is filed: the table of one month, chosen from a time that every delivery of
//! the entry's event agrees on, so that each finds it.
//!
//! A reminder step is filed by the start of its object version's ladder's last step, which
//! comes from the expiry date. An owner may move that date (same version, a few days on) across
//! a month's end; the step's record then sits in the neighbouring month's table, so a step's
//! claim looks there first. Records written before this look-up existed are filed the same way
//! and are found the same way.

use super::{ENTITY_CAP, TableLedger};
use crate::event::EventKey;
use crate::ledger::{ActionKey, LedgerError};
use chrono::{DateTime, Months, TimeDelta, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};

/// How far ahead of this instance's clock an event may be dated and still be filed by its date:
/// clocks differ, but not by days.
const AHEAD: TimeDelta = TimeDelta::days(1);

impl TableLedger {
    /// The table that holds `key` when claimed at `now`.
    pub(super) fn table_for(&self, key: &ActionKey, now: DateTime<Utc>) -> String {
        self.table_at(filing_of(key, now, self.retention))
    }

    /// The table of the month of `time`: `kvnotifyledger202611`.
    pub(super) fn table_at(&self, time: DateTime<Utc>) -> String {
        format!("{}{}", self.prefix, time.format("%Y%m"))
    }

    /// For a reminder step, the table of a neighbouring month that already holds an entry for
    /// `key` (its expiry date was moved across a month's end since): the claim goes on there.
    /// `None` for any other key, or when neither neighbour holds one.
    pub(super) async fn moved_step_table(
        &self,
        key: &ActionKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, LedgerError> {
        if !matches!(key.event, EventKey::Step(_)) {
            return Ok(None);
        }
        let tables = neighbouring_months(filing_of(key, now, self.retention))
            .into_iter()
            .map(|month| self.table_at(month));
        let looks = join_all(tables.map(|table| async move {
            let (url, _) = self.locate_in(key, &table);
            let found = self.send(Method::GET, &url, None, None).await?;
            match found.status() {
                StatusCode::OK => {
                    // Read whole, so that the connection is reused.
                    let _ = crate::http::read_capped(found, ENTITY_CAP).await;
                    Ok(Some(table))
                }
                // No entry, or no table for that month.
                StatusCode::NOT_FOUND => Ok(None),
                status => Err(self.unexpected("a read", status)),
            }
        }))
        .await;
        let mut found = None;
        for look in looks {
            found = found.or(look?);
        }
        Ok(found)
    }
}

/// The time `key` is filed by at `now`: a reminder step's by the start of its ladder's last
/// step, even ahead (so its month's table outlives the ladder); an event's by its own time (see
/// [`filing_time`]).
fn filing_of(key: &ActionKey, now: DateTime<Utc>, retention: TimeDelta) -> DateTime<Utc> {
    match key.kept_from(now) {
        ahead if ahead > now => ahead,
        _ => filing_time(key.event_time, now, retention),
    }
}

/// When an entry counts as written, for filing: the event's own time, which every redelivery
/// carries, wherever it lands. An event without a time, dated more than a day ahead, or older
/// than the retention period (its month's table may be gone) is filed at `now`.
fn filing_time(
    event_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    retention: TimeDelta,
) -> DateTime<Utc> {
    event_time
        .filter(|time| *time <= now + AHEAD && *time >= now - retention)
        .unwrap_or(now)
}

/// A moment in the month before and in the month after that of `time`.
fn neighbouring_months(time: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let month = Months::new(1);
    [
        time.checked_sub_months(month),
        time.checked_add_months(month),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a time").to_utc()
    }

    const WEEK: TimeDelta = TimeDelta::days(7);

    #[test]
    fn an_event_is_filed_by_its_own_time_on_every_redelivery() {
        let event = Some(time("2026-10-31T23:59:00Z"));
        let first = filing_time(event, time("2026-10-31T23:59:30Z"), WEEK);
        let redelivered = filing_time(event, time("2026-11-01T20:00:00Z"), WEEK);
        assert_eq!(first, redelivered);
        assert_eq!(first.format("%Y%m").to_string(), "202610");
    }

    #[test]
    fn an_undated_far_future_or_too_old_event_is_filed_at_arrival() {
        let now = time("2026-11-23T10:00:00Z");
        assert_eq!(filing_time(None, now, WEEK), now);
        let ahead = Some(time("2027-06-01T00:00:00Z"));
        assert_eq!(filing_time(ahead, now, WEEK), now);
        let old = Some(time("2024-01-15T00:00:00Z"));
        assert_eq!(filing_time(old, now, WEEK), now);
        let slightly_ahead = time("2026-11-23T12:00:00Z");
        assert_eq!(filing_time(Some(slightly_ahead), now, WEEK), slightly_ahead);
    }

    #[test]
    fn a_reminder_step_is_filed_in_the_month_its_ladder_ends_from_first_to_last_run() {
        let last_step = time("2027-02-10T00:00:00Z");
        let key = |now: DateTime<Utc>| {
            let step =
                crate::event::EventKey::step("kv", crate::event::ObjectKind::Key, "k", "v", 60);
            let key = ActionKey {
                event: step,
                action: crate::ledger::ActionKind::Email,
                target: "a@b.c".to_owned(),
                event_time: Some(last_step),
            };
            filing_of(&key, now, WEEK).format("%Y%m").to_string()
        };
        assert_eq!(key(time("2026-11-23T10:00:00Z")), "202702");
        assert_eq!(key(time("2027-02-12T10:00:00Z")), "202702");
    }

    #[test]
    fn the_neighbours_of_a_month_are_the_months_before_and_after_it_across_years() {
        let months = |text: &str| -> Vec<String> {
            neighbouring_months(time(text))
                .iter()
                .map(|t| t.format("%Y%m").to_string())
                .collect()
        };
        assert_eq!(months("2026-12-31T23:00:00Z"), ["202611", "202701"]);
        assert_eq!(months("2027-01-31T12:00:00Z"), ["202612", "202702"]);
        assert_eq!(months("2026-03-30T00:00:00Z"), ["202602", "202604"]);
    }
}
