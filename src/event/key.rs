//! What the ledger knows an event by: its id as sent, or, for an event without a usable id,
//! a digest of what it says. Key Vault always sends a GUID; anything else still gets a key of
//! its own, so that one odd event can never silence another.

use super::ObjectKind;
use super::raw::Scalar;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Longest id kept as it is; a longer one is stored as its digest and shown shortened.
pub const MAX_ID: usize = 256;

/// The identity of an event in the ledger. In a key it serialises as the id string itself, or
/// as a one-member object for the other kinds, so no string id can ever equal one of those.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKey {
    /// An id that is a number or a boolean (`5`): kept apart from the string `"5"`.
    Literal(String),
    /// SHA-256 (hex) of a string id longer than [`MAX_ID`] characters.
    Digest(String),
    /// SHA-256 (hex) of the event's type, vault, object, version and time, for an event whose
    /// id is missing, empty, `null`, an object or an array.
    Content(String),
    /// A step of an object version's reminder ladder: `[vault, kind, name, version, step]`.
    /// An expiry event's mail and the sweep's reminder of the same step share it, so an owner
    /// never gets one step twice, whichever comes first.
    Step(String),
    /// The id as sent: the usual case.
    #[serde(untagged)]
    Id(String),
}

impl EventKey {
    /// The key for an event whose `id` member held `id`; `content` names the event when the
    /// id cannot (and is called only then).
    pub(super) fn new(id: Option<&Scalar>, content: impl FnOnce() -> String) -> Self {
        match id {
            Some(Scalar::Text(id)) if id.chars().count() > MAX_ID => Self::Digest(sha256(id)),
            Some(Scalar::Text(id)) if !id.is_empty() => Self::Id(id.clone()),
            Some(Scalar::Number(n)) => Self::Literal(n.to_string()),
            Some(Scalar::Bool(b)) => Self::Literal(b.to_string()),
            _ => Self::Content(sha256(&content())),
        }
    }
}

impl EventKey {
    /// The key of `step` for `version` of the object of `kind` named `name` in `vault`. Key
    /// Vault's names and version ids ignore case, so the key does too. A rotation (a new
    /// version) starts a new ladder; a new expiry date on the same version moves along the
    /// same one.
    pub fn step(vault: &str, kind: ObjectKind, name: &str, version: &str, step: i64) -> Self {
        let parts = (
            vault.to_lowercase(),
            kind.collection(),
            name.to_lowercase(),
            version.to_lowercase(),
            step,
        );
        Self::Step(serde_json::to_string(&parts).expect("strings and numbers serialise"))
    }

    /// The key of `step` for the credential `key_id`, ending at `ends`, of the Entra ID
    /// application (or enterprise application) whose object id is `holder`: the same for every
    /// run and instance, and a new one when the end date moves.
    pub fn app_step(holder: &str, key_id: &str, ends: &str, step: i64) -> Self {
        let parts = (
            "entra",
            holder.to_lowercase(),
            key_id.to_lowercase(),
            ends,
            step,
        );
        Self::Step(serde_json::to_string(&parts).expect("strings and numbers serialise"))
    }

    /// The key of the notice of `step` for the credentials `members` (each `keyId@end`, in a
    /// fixed order) of the holder whose object id is `holder`.
    pub fn app_notice(holder: &str, step: i64, members: &[String]) -> Self {
        let parts = (
            "entra-notice",
            holder.to_lowercase(),
            step,
            sha256(&members.join(",")),
        );
        Self::Step(serde_json::to_string(&parts).expect("strings and numbers serialise"))
    }
}

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: Option<Scalar>, vault: &str) -> EventKey {
        EventKey::new(id.as_ref(), || format!("SecretNearExpiry {vault}"))
    }

    #[test]
    fn a_string_id_is_the_key_itself() {
        let key = key(Some(Scalar::Text("abc".into())), "v");
        assert_eq!(key, EventKey::Id("abc".into()));
        assert_eq!(serde_json::to_string(&key).ok().as_deref(), Some("\"abc\""));
    }

    #[test]
    fn a_number_and_the_same_digits_as_a_string_are_different_keys() {
        let number = key(Some(Scalar::Number(5.into())), "v");
        let string = key(Some(Scalar::Text("5".into())), "v");
        assert_ne!(number, string);
        assert_ne!(
            serde_json::to_string(&number).ok(),
            serde_json::to_string(&string).ok()
        );
    }

    #[test]
    fn events_without_a_usable_id_are_told_apart_by_their_content() {
        for id in [None, Some(Scalar::Null), Some(Scalar::Text(String::new()))] {
            assert_ne!(key(id.clone(), "a"), key(id.clone(), "b"));
            assert_eq!(key(id.clone(), "a"), key(id, "a"));
        }
        assert!(matches!(key(None, "a"), EventKey::Content(_)));
    }

    #[test]
    fn a_step_key_ignores_the_case_of_names_and_no_event_id_can_equal_it() {
        let key = EventKey::step("KV", ObjectKind::Secret, "Db", "AB12", 7);
        assert_eq!(
            key,
            EventKey::step("kv", ObjectKind::Secret, "db", "ab12", 7)
        );
        assert_ne!(
            key,
            EventKey::step("kv", ObjectKind::Secret, "db", "ab12", 1)
        );
        assert_ne!(
            key,
            EventKey::step("kv", ObjectKind::Secret, "db", "cd34", 7)
        );
        assert_ne!(key, EventKey::step("kv", ObjectKind::Key, "db", "ab12", 7));
        let json = serde_json::to_string(&key).expect("serialises");
        assert_eq!(json, r#"{"step":"[\"kv\",\"secrets\",\"db\",\"ab12\",7]"}"#);
    }

    #[test]
    fn a_huge_id_is_stored_as_its_digest() {
        let long = "x".repeat(MAX_ID + 1);
        let key = key(Some(Scalar::Text(long)), "v");
        assert!(
            matches!(&key, EventKey::Digest(hex) if hex.len() == 64),
            "{key:?}"
        );
    }
}
