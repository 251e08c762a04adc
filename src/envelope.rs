//! The Functions host envelope: the invocation request `{"Data": {"event": ...}, "Metadata": ...}`
//! and the response `{"Outputs": {}, "Logs": [...], "ReturnValue": ...}`.
//!
//! The host may pass the bound event as a nested object or as a JSON string holding the event
//! (or an array of events): [`events_of_invocation`] accepts all of these, plus a bare array.

use crate::report::EventReport;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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

/// The parts of an invocation request read here. `Metadata` repeats the event's data: it is
/// skipped without being built.
#[derive(Deserialize)]
struct Invocation<'a> {
    #[serde(rename = "Data", alias = "data", borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "event", alias = "Event", borrow)]
    event: Option<&'a RawValue>,
}

/// Extracts the raw events from an invocation body.
pub fn events_of_invocation(body: &[u8]) -> Result<Vec<Value>, RequestError> {
    let request: Invocation<'_> =
        serde_json::from_slice(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
    let event = request
        .data
        .and_then(|d| d.event)
        .ok_or(RequestError::NoEvent)?;
    let value =
        serde_json::from_str(event.get()).map_err(|e| RequestError::NotJson(e.to_string()))?;
    events_of_value(value)
}

/// Normalises one bound value to a list of events: an object is one event, an array is a
/// batch, and a string holding JSON is decoded first (the host double-encodes strings).
pub fn events_of_value(value: Value) -> Result<Vec<Value>, RequestError> {
    match value {
        Value::String(text) => {
            let inner: Value = serde_json::from_str(&text)
                .map_err(|e| RequestError::EventNotJson(e.to_string()))?;
            match inner {
                Value::String(_) => Err(RequestError::EventNotJson(
                    "a string inside a string".into(),
                )),
                other => events_of_value(other),
            }
        }
        Value::Array(events) => Ok(events),
        Value::Null => Err(RequestError::NoEvent),
        other => Ok(vec![other]),
    }
}

/// Looks a key up in an object, ignoring ASCII case (the host reads its own keys that way).
fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nested_event_object_is_one_event() {
        let body = json!({"Data": {"event": {"id": "1"}}, "Metadata": {}}).to_string();
        assert_eq!(
            events_of_invocation(body.as_bytes()),
            Ok(vec![json!({"id": "1"})])
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
        let body = json!({"Data": {"event": "not json"}}).to_string();
        assert!(matches!(
            events_of_invocation(body.as_bytes()),
            Err(RequestError::EventNotJson(_))
        ));
    }
}
