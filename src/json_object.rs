//! A JSON object read lazily: its members borrowed from the text, each value parsed only
//! when asked for. Events are read through this rather than a `serde_json::Value`: keys are
//! matched case-insensitively in one place, and members nobody asks for are never built.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The members of a JSON object, in order.
pub struct JsonObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> JsonObject<'a> {
    /// Reads `raw` as an object; `None` when it is something else.
    pub fn parse(raw: &'a RawValue) -> Option<Self> {
        if kind(raw) != "an object" {
            return None;
        }
        serde_json::from_str(raw.get()).ok()
    }

    /// A member by key, ignoring ASCII case and surrounding spaces: exact match first, since
    /// that is what Azure sends.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        let exact = self.0.iter().find(|(k, _)| k == key);
        exact
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            })
            .map(|(_, v)| *v)
    }

    /// Whether the object has a member with this key (same matching as [`JsonObject::get`]).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// The JSON type of a raw value, as words for messages: `an object`, `a string`, ...
pub fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

/// A scalar as trimmed text: a string's content, a number as written, `true`/`false`.
/// `null`, empty strings, objects and arrays are `None`.
pub fn text(raw: &RawValue) -> Option<String> {
    let text = match kind(raw) {
        "a string" => serde_json::from_str::<Cow<'_, str>>(raw.get())
            .ok()?
            .trim()
            .to_owned(),
        "a number" | "a boolean" => raw.get().trim().to_owned(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

impl<'de> Deserialize<'de> for JsonObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = JsonObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(JsonObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A key, borrowed from the text unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("valid JSON")
    }

    #[test]
    fn members_are_found_by_key_ignoring_case_and_spaces() {
        let value = raw(r#"{"VaultName": "a", "objectName ": "b", "k\u0065y": 1}"#);
        let object = JsonObject::parse(&value).expect("an object");
        assert_eq!(object.get("VaultName").and_then(text).as_deref(), Some("a"));
        assert_eq!(
            object.get("ObjectName").and_then(text).as_deref(),
            Some("b")
        );
        assert_eq!(object.get("key").and_then(text).as_deref(), Some("1"));
        assert!(object.get("missing").is_none());
    }

    #[test]
    fn scalars_become_trimmed_text_and_the_rest_none() {
        for (json, expected) in [
            (r#"" x ""#, Some("x")),
            ("12", Some("12")),
            ("true", Some("true")),
            ("null", None),
            (r#""  ""#, None),
            ("[1]", None),
            ("{}", None),
        ] {
            assert_eq!(text(&raw(json)).as_deref(), expected, "{json}");
        }
    }

    #[test]
    fn only_objects_parse_as_objects() {
        assert!(JsonObject::parse(&raw("[1, 2]")).is_none());
        assert!(JsonObject::parse(&raw(r#""{}""#)).is_none());
        assert_eq!(kind(&raw("  -3.5")), "a number");
    }
}
