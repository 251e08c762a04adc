//! What became of an action, in one place: how it failed ([`Failure`]), how it ended
//! ([`Outcome`]), what kind it was ([`ActionKind`]) and the report of it ([`ActionReport`]),
//! with its reason in words, whether it had one target or several.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Why an action did not happen, and whether trying again later can change that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It may pass later (no answer, a timeout, a 4xx from SMTP, a 429 or 5xx from a webhook):
    /// the invocation fails so that Event Grid redelivers.
    Transient(String),
    /// It will not pass (a 5xx from SMTP, a 4xx from a webhook, a message that cannot be
    /// built): recorded, so that no redelivery tries again, and answered 200.
    Permanent(String),
}

impl Failure {
    /// What happened, for results and logs.
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(reason) | Self::Permanent(reason) => reason,
        }
    }

    /// Whether a redelivery can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// How an action (or one of its targets) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done now.
    Sent,
    /// Written as an `.eml` file to the outbox (no SMTP server configured).
    Written(PathBuf),
    /// Already done by an earlier delivery of the same event.
    Duplicate,
    /// Deliberately not done (e.g. no recipients configured), and why.
    Skipped(String),
    /// Attempted and failed.
    Failed(Failure),
    /// Still waiting for an answer at the invocation deadline: the attempt goes on and records
    /// its outcome, which a redelivery then reports (as `duplicate` if it was sent).
    Pending,
    /// Done (`done` says how), but the ledger could not record it, so a redelivery may do it
    /// again: the invocation fails rather than claim a completion that is not kept.
    Unrecorded {
        /// What was done.
        done: Box<Outcome>,
        /// Why the ledger could not record it.
        error: String,
    },
}

impl Outcome {
    /// The `status` of a result: `sent`, `written`, `duplicate`, `skipped` or `failed`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Written(_) => "written",
            Self::Duplicate => "duplicate",
            Self::Skipped(_) => "skipped",
            Self::Failed(_) => "failed",
            Self::Pending => "pending",
            Self::Unrecorded { done, .. } => done.status(),
        }
    }

    /// Whether a redelivery of the event can make this action succeed.
    pub fn needs_retry(&self) -> bool {
        match self {
            Self::Failed(failure) => failure.is_transient(),
            Self::Unrecorded { .. } | Self::Pending => true,
            _ => false,
        }
    }

    /// Why an unrecorded outcome fails the invocation.
    pub(crate) fn unrecorded_reason(done: &Outcome, error: &str) -> String {
        format!(
            "{}, but the ledger could not record it ({error}); a redelivery may {} it again",
            done.status(),
            if *done == Outcome::Sent { "send" } else { "do" }
        )
    }
}

/// Why an action was not done again.
const ALREADY_DONE: &str = "already done by an earlier delivery";

/// Why an action is pending.
pub const PENDING: &str = "no answer by the invocation deadline: the attempt goes on and \
     records its outcome, which a redelivery reports";

/// The outcome of one action over all its targets (`names[i]` had `outcomes[i]`), and why,
/// naming the targets a reason concerns. A target that can still be served decides first, then
/// one refused for good, then what was done now.
pub fn fold(names: &[String], outcomes: &[Outcome]) -> (Outcome, Option<String>) {
    let named = |pick: fn(&Outcome) -> bool| -> Vec<&str> {
        let pairs = names.iter().zip(outcomes);
        pairs
            .filter(|(_, o)| pick(o))
            .map(|(n, _)| n.as_str())
            .collect()
    };
    let first = |pick: fn(&Outcome) -> bool| outcomes.iter().find(|o| pick(o)).cloned();
    let earlier = named(|o| matches!(o, Outcome::Duplicate));
    let earlier_note =
        (!earlier.is_empty()).then(|| format!("already sent earlier to {}", earlier.join(", ")));
    let retryable = |o: &Outcome| matches!(o, Outcome::Failed(f) if f.is_transient());
    if let Some(Outcome::Failed(failure)) = first(retryable) {
        let who = named(retryable).join(", ");
        let reason = format!("{failure} (for {who}; a redelivery will retry)");
        return (Outcome::Failed(failure), Some(reason));
    }
    if outcomes.contains(&Outcome::Pending) {
        let who = named(|o| *o == Outcome::Pending).join(", ");
        return (Outcome::Pending, Some(format!("{PENDING} (for {who})")));
    }
    if let Some(unrecorded) = first(|o| matches!(o, Outcome::Unrecorded { .. })) {
        let Outcome::Unrecorded { done, error } = &unrecorded else {
            unreachable!("matched above")
        };
        let who = named(|o| matches!(o, Outcome::Unrecorded { .. })).join(", ");
        let reason = format!("{} (for {who})", Outcome::unrecorded_reason(done, error));
        return (unrecorded, Some(reason));
    }
    if let Some(Outcome::Failed(failure)) = first(|o| matches!(o, Outcome::Failed(_))) {
        let who = named(|o| matches!(o, Outcome::Failed(_))).join(", ");
        let reason = format!("refused for good for {who}: {failure}");
        return (Outcome::Failed(failure), Some(reason));
    }
    if let Some(Outcome::Written(path)) = first(|o| matches!(o, Outcome::Written(_))) {
        let mut reason = format!("to {}", path.display());
        if let Some(note) = earlier_note {
            reason = format!("{reason}; {note}");
        }
        return (Outcome::Written(path), Some(reason));
    }
    if outcomes.contains(&Outcome::Sent) {
        return (Outcome::Sent, earlier_note);
    }
    if let Some(Outcome::Skipped(reason)) = first(|o| matches!(o, Outcome::Skipped(_))) {
        return (Outcome::Skipped(reason.clone()), Some(reason));
    }
    (Outcome::Duplicate, Some(ALREADY_DONE.to_owned()))
}

/// The kinds of action, as they appear in ledger keys and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// A mail to the event's recipients.
    Email,
    /// A post to one webhook channel.
    Webhook,
    /// An Entra ID credential listed in its application's notice of a reminder step (the
    /// notice itself is mailed and posted as any alert): kept so that the next notice of that
    /// step lists only credentials not yet told of.
    Listed,
}

impl ActionKind {
    /// The name used in ledger keys, results and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Listed => "listed",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one action: in results as `{"action", "to", "status", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    /// What kind of action.
    #[serde(serialize_with = "action_name")]
    pub action: ActionKind,
    /// Who it was for.
    pub to: Vec<String>,
    /// How it ended.
    #[serde(rename = "status", serialize_with = "status_name")]
    pub outcome: Outcome,
    /// Why, when it was not simply sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn action_name<S: serde::Serializer>(action: &ActionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(action.as_str())
}

fn status_name<S: serde::Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(outcome.status())
}

impl ActionReport {
    /// The report of an action with one outcome, explained.
    pub fn new(action: ActionKind, to: Vec<String>, outcome: Outcome) -> Self {
        let reason = match &outcome {
            Outcome::Sent => None,
            Outcome::Written(path) => Some(format!("to {}", path.display())),
            Outcome::Duplicate => Some(ALREADY_DONE.to_owned()),
            Outcome::Skipped(reason) => Some(reason.clone()),
            Outcome::Failed(failure) if failure.is_transient() => {
                Some(format!("{failure} (a redelivery will retry)"))
            }
            Outcome::Failed(failure) => Some(failure.to_string()),
            Outcome::Pending => Some(PENDING.to_owned()),
            Outcome::Unrecorded { done, error } => Some(Outcome::unrecorded_reason(done, error)),
        };
        Self {
            action,
            to,
            outcome,
            reason,
        }
    }

    /// The report of an action over several targets (`names[i]` had `outcomes[i]`).
    pub fn folded(
        action: ActionKind,
        to: Vec<String>,
        names: &[String],
        outcomes: &[Outcome],
    ) -> Self {
        let (outcome, reason) = fold(names, outcomes);
        Self {
            action,
            to,
            outcome,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("r{i}@contoso.com")).collect()
    }

    #[test]
    fn a_target_that_can_still_be_served_fails_the_action_for_a_retry() {
        let outcomes = [
            Outcome::Sent,
            Outcome::Failed(Failure::Transient("timed out".into())),
            Outcome::Failed(Failure::Permanent("550".into())),
        ];

        let (outcome, reason) = fold(&names(3), &outcomes);

        assert!(outcome.needs_retry());
        assert_eq!(
            reason.as_deref(),
            Some("timed out (for r2@contoso.com; a redelivery will retry)")
        );
    }

    #[test]
    fn a_refusal_for_good_fails_the_action_without_a_retry() {
        let outcomes = [
            Outcome::Sent,
            Outcome::Failed(Failure::Permanent("550 no such user".into())),
        ];

        let (outcome, reason) = fold(&names(2), &outcomes);

        assert_eq!(outcome.status(), "failed");
        assert!(!outcome.needs_retry());
        assert_eq!(
            reason.as_deref(),
            Some("refused for good for r2@contoso.com: 550 no such user")
        );
    }

    #[test]
    fn sent_now_and_earlier_is_sent_and_says_who_had_it_already() {
        let (outcome, reason) = fold(&names(2), &[Outcome::Duplicate, Outcome::Sent]);

        assert_eq!(outcome, Outcome::Sent);
        assert_eq!(
            reason.as_deref(),
            Some("already sent earlier to r1@contoso.com")
        );
    }

    #[test]
    fn all_done_earlier_is_a_duplicate() {
        let (outcome, _) = fold(&names(2), &[Outcome::Duplicate, Outcome::Duplicate]);

        assert_eq!(outcome, Outcome::Duplicate);
    }

    #[test]
    fn a_send_the_ledger_could_not_record_is_sent_and_fails_the_invocation() {
        let unrecorded = Outcome::Unrecorded {
            done: Box::new(Outcome::Sent),
            error: "No space left on device".into(),
        };

        let (outcome, reason) = fold(&names(2), &[Outcome::Sent, unrecorded]);

        assert_eq!(outcome.status(), "sent");
        assert!(outcome.needs_retry());
        assert_eq!(
            reason.as_deref(),
            Some(
                "sent, but the ledger could not record it (No space left on device); a \
                 redelivery may send it again (for r2@contoso.com)"
            )
        );
    }

    #[test]
    fn a_written_mail_names_its_file() {
        let file = PathBuf::from("outbox/x.eml");

        let (outcome, reason) = fold(&names(1), &[Outcome::Written(file.clone())]);

        assert_eq!(outcome, Outcome::Written(file));
        assert_eq!(reason.as_deref(), Some("to outbox/x.eml"));
    }
}
