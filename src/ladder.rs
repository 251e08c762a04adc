//! The reminder ladder: the days before (and after) an expiry on which owners hear about it.
//!
//! Days left are whole days from now to the expiry, rounded down, so an object expiring in
//! 6 days and 23 hours has 6 days left and one that expired an hour ago has -1. An object is in
//! the smallest step that is at least its days left: with `60,30,14,7,1,0,-7`, 9 days left is
//! step 14, -1 (expired today) is step 0, and anything from -7 on is step -7, the last. Each
//! step is one mail per recipient, so an object first seen late gets the one mail of the step it
//! is in, never a burst for the steps it skipped.
//!
//! The ledger keeps every step's record from the start of the ladder's last step for its
//! retention period, so a record outlives the whole ladder; an object stays in the last step
//! for that retention period and then leaves the ladder, so no step can be mailed twice by
//! outliving its record.

use crate::event::{EventKey, EventType, KeyVaultEvent, Reminder};
use chrono::{DateTime, TimeDelta, Utc};

/// The ladder Key Vault users ask for: two months, a month, two weeks, a week, the day before,
/// the day itself, and a week late.
pub const DEFAULT_STEPS: [i64; 7] = [60, 30, 14, 7, 1, 0, -7];

/// Farthest step accepted, either side of the expiry (ten years).
const MAX_STEP_DAYS: i64 = 3650;

/// Why a `REMINDER_DAYS` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidLadder(pub String);

/// Reminder steps, in days before the expiry (negative: after), largest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    steps: Vec<i64>,
}

/// Where an expiry stands on the ladder at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Too far off for any step: the first step is due in this many days.
    Ahead {
        /// The first step.
        step: i64,
        /// Days until it is due.
        due_in: i64,
    },
    /// In this step.
    In {
        /// The step, in days before the expiry.
        step: i64,
        /// When the ladder's last step begins (it may be ahead): the ledger keeps the step's
        /// records for its retention period from then.
        kept_from: DateTime<Utc>,
        /// The step after this one, if any.
        next: Option<i64>,
    },
    /// Past the last step for longer than the ledger remembers: no more reminders.
    Past,
}

impl Default for Ladder {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS.to_vec(),
        }
    }
}

impl Ladder {
    /// Parses `REMINDER_DAYS`: whole numbers of days, separated by commas, in any order.
    pub fn parse(text: &str) -> Result<Self, InvalidLadder> {
        let mut steps = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<i64>() {
                Ok(days) if days.abs() <= MAX_STEP_DAYS => steps.push(days),
                _ => {
                    return Err(InvalidLadder(format!(
                        "{part:?} is not a whole number of days between -{MAX_STEP_DAYS} and \
                         {MAX_STEP_DAYS} (e.g. 60,30,14,7,1,0,-7: 0 is the day it expires, -7 a \
                         week after)"
                    )));
                }
            }
        }
        if steps.is_empty() {
            return Err(InvalidLadder(
                "no steps: give at least one number of days, e.g. 30,7,1".to_owned(),
            ));
        }
        steps.sort_unstable_by(|a, b| b.cmp(a));
        steps.dedup();
        Ok(Self { steps })
    }

    /// Where an object expiring at `expires` stands at `now`, when the ledger remembers a step
    /// for `memory` after it began.
    pub fn position(
        &self,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        memory: TimeDelta,
    ) -> Position {
        let left = days_left(expires, now);
        let first = self.steps[0];
        let Some(&step) = self.steps.iter().rev().find(|&&s| s >= left) else {
            return Position::Ahead {
                step: first,
                due_in: left - first,
            };
        };
        let last = self.steps[self.steps.len() - 1];
        // Only a date at the very edge of the calendar has no start: nothing to remind of.
        let Some(kept_from) = step_start(expires, last) else {
            return Position::Past;
        };
        if now - kept_from >= memory {
            return Position::Past;
        }
        Position::In {
            step,
            kept_from,
            next: self.after(step),
        }
    }

    /// The next step after `step`, if any.
    pub fn after(&self, step: i64) -> Option<i64> {
        self.steps.iter().copied().find(|&s| s < step)
    }
}

impl std::fmt::Display for Ladder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(ToString::to_string).collect();
        f.write_str(&steps.join(","))
    }
}

/// Whole days from `now` to `expires`, rounded down (negative once expired).
pub fn days_left(expires: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (expires - now).num_seconds().div_euclid(86_400)
}

/// The moment an object expiring at `expires` enters `step`: when its days left fall to it;
/// `None` when that moment is beyond the calendar.
fn step_start(expires: DateTime<Utc>, step: i64) -> Option<DateTime<Utc>> {
    expires.checked_sub_signed(TimeDelta::try_days(step.checked_add(1)?)?)
}

/// Puts an expiry event on the reminder ladder: its mail is then the step it falls in, known
/// to the ledger by the same key as the sweep's reminder of that step. An event the ladder
/// has no step for (too early, too late, or missing a name or date) keeps its own id.
pub fn place_event(event: &mut KeyVaultEvent, position: impl Fn(DateTime<Utc>) -> Position) {
    let (EventType::NearExpiry(kind) | EventType::Expired(kind)) = event.event_type else {
        return;
    };
    let (Some(vault), Some(object), Some(version), Some(expires)) =
        (&event.vault, &event.object, &event.version, event.expires)
    else {
        return;
    };
    if let Position::In {
        step,
        kept_from,
        next,
    } = position(expires)
    {
        event.key = EventKey::step(vault, kind, object, version, step);
        event.reminder = Some(Reminder {
            step,
            kept_from,
            next,
            auto_renews: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: DateTime<Utc>, days: f64) -> DateTime<Utc> {
        now + TimeDelta::seconds((days * 86_400.0) as i64)
    }

    fn step(position: Position) -> Option<i64> {
        match position {
            Position::In { step, .. } => Some(step),
            _ => None,
        }
    }

    const WEEK: TimeDelta = TimeDelta::days(7);

    #[test]
    fn days_left_are_rounded_down_on_both_sides_of_the_expiry() {
        let now = Utc::now();
        assert_eq!(days_left(at(now, 6.99), now), 6);
        assert_eq!(days_left(at(now, 7.0), now), 7);
        assert_eq!(days_left(at(now, 0.01), now), 0);
        assert_eq!(days_left(at(now, -0.01), now), -1);
        assert_eq!(days_left(at(now, -7.5), now), -8);
    }

    #[test]
    fn an_object_is_in_the_smallest_step_at_least_its_days_left() {
        let ladder = Ladder::default();
        let now = Utc::now();
        let cases = [
            (59.5, Some(60)),
            (31.0, Some(60)),
            (30.9, Some(30)),
            (29.9, Some(30)),
            (9.0, Some(14)),
            (7.5, Some(7)),
            (1.5, Some(1)),
            (0.5, Some(0)),
            (-0.5, Some(0)),
            (-6.5, Some(-7)),
            (-10.0, Some(-7)),
        ];
        for (days, expected) in cases {
            let position = ladder.position(at(now, days), now, WEEK);
            assert_eq!(step(position), expected, "{days} days left: {position:?}");
        }
    }

    #[test]
    fn far_expiries_are_ahead_and_say_when_the_first_step_is_due() {
        let now = Utc::now();
        let position = Ladder::default().position(at(now, 75.5), now, WEEK);
        assert_eq!(
            position,
            Position::Ahead {
                step: 60,
                due_in: 15
            }
        );
    }

    #[test]
    fn the_last_step_ends_when_the_ledger_would_forget_it() {
        let ladder = Ladder::default();
        let now = Utc::now();
        // Step -7 begins 6 days after the expiry (days left -7 and below), and the ledger
        // remembers it for a week from then.
        assert_eq!(step(ladder.position(at(now, -12.9), now, WEEK)), Some(-7));
        assert_eq!(ladder.position(at(now, -13.1), now, WEEK), Position::Past);
        assert_eq!(ladder.position(at(now, -400.0), now, WEEK), Position::Past);
    }

    #[test]
    fn every_step_is_kept_from_the_start_of_the_last_step() {
        let ladder = Ladder::default();
        let now = Utc::now();
        let expires = at(now, 45.5);
        let Position::In {
            step: 60,
            kept_from,
            next: Some(30),
        } = ladder.position(expires, now, WEEK)
        else {
            panic!("not in step 60");
        };
        // The last step, -7, begins when the days left fall to -7: 6 days after the expiry.
        assert_eq!(kept_from, expires + TimeDelta::days(6));
        assert_eq!(days_left(expires, kept_from), -6);
        assert_eq!(days_left(expires, kept_from + TimeDelta::seconds(1)), -7);
        let later = ladder.position(expires, now + TimeDelta::days(40), WEEK);
        let next = Some(1);
        assert_eq!(
            later,
            Position::In {
                step: 7,
                kept_from,
                next
            }
        );
    }

    #[test]
    fn reminder_days_parse_in_any_order_and_refuse_nonsense() {
        let ladder = Ladder::parse(" 7, 30,-7,0, 30 ").expect("valid");
        assert_eq!(ladder.to_string(), "30,7,0,-7");
        assert_eq!(ladder.after(7), Some(0));
        assert_eq!(ladder.after(-7), None);
        for bad in ["", " , ", "7,x", "1.5", "99999", "-4000"] {
            assert!(Ladder::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_expiry_at_the_edge_of_the_calendar_is_past_the_ladder_not_a_panic() {
        let ladder = Ladder::parse("30,7,1").expect("a ladder");
        let now = Utc::now();
        let earliest = DateTime::<Utc>::MIN_UTC + TimeDelta::days(3);
        assert_eq!(ladder.position(earliest, now, WEEK), Position::Past);
        let latest = DateTime::<Utc>::MAX_UTC;
        assert!(matches!(
            ladder.position(latest, now, WEEK),
            Position::Ahead { step: 30, .. }
        ));
    }
}
