//! The Functions host envelope: the invocation request `{"Data": {"event": ...}, "Metadata": ...}`
//! and the response `{"Outputs": {}, "Logs": [...], "ReturnValue": ...}`.
//!
//! The host may pass the bound event as a nested object or as a JSON string holding the event
//! (or an array of events): [`events_of_invocation`] accepts all of these, plus a bare array.

use crate::event::{Event, Field, KeySeed, RawEvent, fields};
use crate::report::EventReport;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;

/// The binding name in `function-trigger/function.json`.
pub const BINDING: &str = "event";

/// Why a request cannot be understood (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON, or not shaped like an invocation.
    #[error("the request body is not a valid invocation: {0}")]
    NotJson(String),
    /// The body has no `Data.event`.
    #[error(
        "the request has no Data.event (expected {{\"Data\": {{\"event\": ...}}, \"Metadata\": {{...}}}})"
    )]
    NoEvent,
    /// `Data.event` is a string that does not hold JSON.
    #[error("Data.event is a string but not JSON text: {0}")]
    EventNotJson(String),
    /// One event in the request is unusable.
    #[error("{0}")]
    BadEvent(#[from] crate::event::EventError),
}

/// The response body sent to the host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    /// Output bindings: this function has none.
    pub outputs: Map<String, Value>,
    /// Lines for the host's invocation log.
    pub logs: Vec<String>,
    /// What was done, per event.
    pub return_value: ReturnValue,
}

/// The `ReturnValue` of an invocation.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnValue {
    /// One report per event, in request order.
    pub events: Vec<EventReport>,
}

impl InvocationResponse {
    /// Builds the response for a set of reports.
    pub fn new(events: Vec<EventReport>) -> Self {
        let logs = events.iter().flat_map(EventReport::log_lines).collect();
        Self {
            outputs: Map::new(),
            logs,
            return_value: ReturnValue { events },
        }
    }

    /// Whether any action failed in a way a redelivery can fix.
    pub fn needs_retry(&self) -> bool {
        self.return_value
            .events
            .iter()
            .any(EventReport::needs_retry)
    }
}

/// Whether a JSON document is a whole invocation envelope rather than an event or a batch:
/// it has `Data.event` and none of the keys an event has.
pub fn is_invocation(value: &Value) -> bool {
    let event_keys = ["eventType", "type", "specversion", "id"];
    lookup(value, "Data")
        .and_then(|data| lookup(data, BINDING))
        .is_some()
        && !event_keys.iter().any(|key| lookup(value, key).is_some())
}

fields! {
    /// The member of an invocation read here. `Metadata` repeats the event's data: it is
    /// skipped without being built.
    InvocationField {
        Data = "Data",
    }
}

fields! {
    /// The member of `Data` read here: the trigger's binding.
    DataField {
        Event = "event",
    }
}

/// The one member `F` of a JSON object, its key matched ignoring case as the host reads its
/// own keys (and as [`is_invocation`] looks them up): an exact key wins, else the first that
/// matches. Every other member is skipped without being built.
struct Member<F, T>(Option<T>, PhantomData<F>);

impl<'de, F: Field, T: Deserialize<'de>> Deserialize<'de> for Member<F, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MemberVisitor(PhantomData))
    }
}

struct MemberVisitor<F, T>(PhantomData<(F, T)>);

impl<'de, F: Field, T: Deserialize<'de>> Visitor<'de> for MemberVisitor<F, T> {
    type Value = Member<F, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value: Option<T> = None;
        let mut exact = false;
        while let Some(found) = map.next_key_seed(KeySeed::<F>(PhantomData))? {
            match found {
                Some(found) if found.exact() || (value.is_none() && !exact) => {
                    value = Some(map.next_value()?);
                    exact = found.exact();
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Member(value, PhantomData))
    }
}

/// An invocation request: `{"Data": {"event": ...}, ...}`.
type Invocation = Member<InvocationField, Member<DataField, Binding>>;

/// What the host bound to `event`: one event, a batch, or a JSON string holding either.
enum Binding {
    Events(Vec<RawEvent>),
    Invalid(RequestError),
}

impl Binding {
    fn into_events(self) -> Result<Vec<RawEvent>, RequestError> {
        match self {
            Self::Events(events) => Ok(events),
            Self::Invalid(err) => Err(err),
        }
    }
}

impl<'de> Deserialize<'de> for Binding {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BindingVisitor { text_allowed: true })
    }
}

/// Reads the bound value in one pass; a string is decoded once (the host double-encodes
/// strings), but a string inside that string is refused.
struct BindingVisitor {
    text_allowed: bool,
}

impl BindingVisitor {
    /// A value that is not an array or a string: one event (or what [`RawEvent`] makes of it).
    fn one<'de, D: Deserializer<'de>>(value: D) -> Result<Binding, D::Error> {
        RawEvent::deserialize(value).map(|event| Binding::Events(vec![event]))
    }
}

impl<'de> Visitor<'de> for BindingVisitor {
    type Value = Binding;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event, an array of events, or a JSON string holding either")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Binding, A::Error> {
        Self::one(MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Binding, A::Error> {
        Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Binding::Events)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Binding, E> {
        if !self.text_allowed {
            return Ok(Binding::Invalid(RequestError::EventNotJson(
                "a string inside a string".into(),
            )));
        }
        let mut inner = serde_json::Deserializer::from_str(text);
        let bound = inner
            .deserialize_any(BindingVisitor {
                text_allowed: false,
            })
            .and_then(|bound| inner.end().map(|()| bound));
        Ok(bound.unwrap_or_else(|e| Binding::Invalid(RequestError::EventNotJson(e.to_string()))))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Binding, E> {
        Self::one(b.into_deserializer())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Binding, E> {
        Self::one(n.into_deserializer())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Binding, E> {
        Self::one(n.into_deserializer())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Binding, E> {
        Self::one(n.into_deserializer())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Binding, E> {
        Ok(Binding::Invalid(RequestError::NoEvent))
    }
}

/// Reads the events of an invocation body, skipping everything else without building it.
pub fn events_of_invocation(body: &[u8]) -> Result<Vec<RawEvent>, RequestError> {
    // JSON text is UTF-8: checking the whole body at once is cheaper than string by string.
    let body = std::str::from_utf8(body)
        .map_err(|e| RequestError::NotJson(format!("the body is not UTF-8 text: {e}")))?;
    let request: Invocation =
        serde_json::from_str(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
    request
        .0
        .and_then(|data| data.0)
        .ok_or(RequestError::NoEvent)?
        .into_events()
}

/// Normalises one bound value to a list of events: an object is one event, an array is a
/// batch, and a string holding JSON is decoded first.
pub fn events_of_value(value: &Value) -> Result<Vec<RawEvent>, RequestError> {
    Binding::deserialize(value)
        .map_err(|e| RequestError::NotJson(e.to_string()))?
        .into_events()
}

/// Looks a key up in an object, ignoring ASCII case (the host reads its own keys that way).
pub fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Interprets every raw event, or names the first one that cannot be understood: a request
/// that cannot be understood as a whole acts on none of its events.
pub fn parse_all(raw: Vec<RawEvent>) -> Result<Vec<Event>, RequestError> {
    raw.into_iter()
        .map(|event| event.into_event().map_err(RequestError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invocation_keys_in_any_case_are_read_as_the_host_reads_them() {
        for body in [
            json!({"DATA": {"event": {"id": "1"}}}),
            json!({"data": {"Event": {"id": "1"}}}),
            json!({"Data": {"event": {"id": "1"}}, "data": {"event": {"id": "2"}}}),
        ] {
            assert!(is_invocation(&body), "{body}");
            let events = events_of_invocation(body.to_string().as_bytes());
            assert_eq!(events.map(|e| e.len()), Ok(1), "{body}");
        }
    }

    #[test]
    fn a_nested_event_object_is_one_event() {
        let body = json!({"Data": {"event": {"id": "1"}}, "Metadata": {}}).to_string();
        assert_eq!(
            events_of_invocation(body.as_bytes()),
            events_of_value(&json!({"id": "1"}))
        );
    }

    #[test]
    fn a_json_string_holding_a_batch_is_every_event() {
        let inner = json!([{"id": "1"}, {"id": "2"}]).to_string();
        let body = json!({"Data": {"event": inner}}).to_string();
        assert_eq!(
            events_of_invocation(body.as_bytes()).map(|e| e.len()),
            Ok(2)
        );
    }

    #[test]
    fn missing_event_and_broken_json_are_request_errors() {
        assert_eq!(
            events_of_invocation(br#"{"Data": {}}"#),
            Err(RequestError::NoEvent)
        );
        assert!(matches!(
            events_of_invocation(b"{\"Data\":"),
            Err(RequestError::NotJson(_))
        ));
        for event in [json!("not json"), json!("\"a string\""), json!("[1] 2")] {
            let body = json!({"Data": {"event": event}}).to_string();
            assert!(
                matches!(
                    events_of_invocation(body.as_bytes()),
                    Err(RequestError::EventNotJson(_))
                ),
                "{event}"
            );
        }
        assert_eq!(
            events_of_invocation(br#"{"Data": {"event": null}}"#),
            Err(RequestError::NoEvent)
        );
    }
}
