//! The queue-triggered function (`event-queue`): Event Grid's Storage Queue destination, for an
//! app behind private endpoints that push delivery cannot reach. Each message is one Event Grid
//! or CloudEvents event; it goes through the same pipeline and ledger as a pushed one, so an
//! event delivered both ways is mailed once.
//!
//! The host POSTs `{"Data": {"message": …}, "Metadata": {"DequeueCount": …, "Id": …}}`, the
//! message already decoded from base64 (`host.json`: `extensions.queues.messageEncoding`). It
//! may be a JSON string holding the event (Microsoft's example), the event as an object, or
//! base64 text still (a queue read with `messageEncoding: none`): all are accepted.
//!
//! A message that fails (a mail server down) is answered 500: the host makes it visible again
//! after `visibilityTimeout` and tries it up to `maxDequeueCount` times, which `host.json` sets
//! so that the retries last a day. A message that can never be handled (not JSON, not an event)
//! is put in [`REJECTED`] and answered 200, so it is not retried for a day; the health notice
//! reports what waits there.

use crate::dispatch::Dispatcher;
use crate::envelope::{self, InvocationResponse, lookup};
use crate::event::{Event, RawEvent};
use crate::storage::Queue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// The function's name: its folder in the function app, and the path the host POSTs to.
pub const FUNCTION_NAME: &str = "event-queue";

/// The queue Event Grid delivers to, in the app's storage account.
pub const QUEUE: &str = "kv-notify-events";

/// Where the host moves a message that failed `maxDequeueCount` times.
pub const POISON: &str = "kv-notify-events-poison";

/// Where kv-notify sets aside a message it can never handle.
pub const REJECTED: &str = "kv-notify-events-rejected";

/// What the invocation came to: the answer, and whether the host should try it again.
pub struct Answer {
    /// The response body.
    pub body: Value,
    /// Whether the message must be retried (answered 500).
    pub failed: bool,
}

/// Why the invocation itself is unusable (not a message the host sent): answered 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAQueueInvocation(String);

/// Handles one queue message's invocation: its event through `dispatcher`, or, when it holds
/// none kv-notify can use, the message into `rejected`.
pub async fn invoke(
    body: &[u8],
    dispatcher: &Dispatcher,
    rejected: Option<&Queue>,
) -> Result<Answer, NotAQueueInvocation> {
    let invocation: Value = serde_json::from_slice(body)
        .map_err(|e| NotAQueueInvocation(format!("the body is not JSON: {e}")))?;
    let message = lookup(&invocation, "Data")
        .and_then(|data| lookup(data, "message"))
        .ok_or_else(|| {
            NotAQueueInvocation(
                "the request has no Data.message (expected {\"Data\": {\"message\": ...}, \
                 \"Metadata\": {...}})"
                    .to_owned(),
            )
        })?;
    let metadata = lookup(&invocation, "Metadata");
    let id = metadata
        .and_then(|m| lookup(m, "Id"))
        .and_then(Value::as_str)
        .unwrap_or("(no id)");
    let tries = metadata
        .and_then(|m| lookup(m, "DequeueCount"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let events = events_of_message(message)
        .and_then(|raw| envelope::parse_all(raw).map_err(|e| e.to_string()))
        .and_then(|events| {
            // An object with no type at all is no event: pushed, Event Grid would never send
            // it; queued, it is something else's message.
            let untyped = |e: &Event| {
                matches!(
                    e,
                    Event::Other {
                        event_type: None,
                        ..
                    }
                )
            };
            match events.iter().any(untyped) {
                true => Err("a JSON object with no eventType (or CloudEvents type)".to_owned()),
                false => Ok(events),
            }
        });
    match events {
        Ok(events) => {
            let response = InvocationResponse::new(dispatcher.handle_all(events).await);
            let failed = response.needs_retry();
            if failed {
                tracing::warn!(
                    message = id,
                    tries,
                    "queue message failed; the host retries it"
                );
            }
            Ok(Answer {
                body: serde_json::to_value(&response).unwrap_or_default(),
                failed,
            })
        }
        Err(why) => Ok(set_aside(message, id, &why, rejected).await),
    }
}

/// Puts an unusable message in the rejected queue; a message that cannot be put there fails,
/// so that the host keeps it (and in the end moves it to the poison queue): never lost.
async fn set_aside(message: &Value, id: &str, why: &str, rejected: Option<&Queue>) -> Answer {
    let text = match message {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let Some(queue) = rejected else {
        tracing::error!(
            message = id,
            why,
            "an unusable queue message, and no storage account to set it aside in: it is retried"
        );
        return failed(format!(
            "message {id} holds no usable event ({why}), and without AzureWebJobsStorage it \
             cannot be set aside in {REJECTED}"
        ));
    };
    match queue.put(&text).await {
        Ok(()) => {
            tracing::warn!(
                message = id,
                why,
                queue = REJECTED,
                "an unusable queue message, set aside"
            );
            let said =
                format!("message {id} holds no usable event ({why}): set aside in {REJECTED}");
            Answer {
                body: json!({"Outputs": {}, "Logs": [said], "ReturnValue": {"rejected": why, "setAsideIn": REJECTED}}),
                failed: false,
            }
        }
        Err(error) => failed(format!(
            "message {id} holds no usable event ({why}), and it could not be set aside: {error}"
        )),
    }
}

fn failed(said: String) -> Answer {
    Answer {
        body: json!({"Outputs": {}, "Logs": [said], "ReturnValue": {"failed": said}}),
        failed: true,
    }
}

/// The events of a message: an object (or array) as it is; a string holding JSON, decoded;
/// a string holding base64 of JSON, decoded twice.
fn events_of_message(message: &Value) -> Result<Vec<RawEvent>, String> {
    let Value::String(text) = message else {
        return envelope::events_of_value(message).map_err(|e| e.to_string());
    };
    let decoded = serde_json::from_str::<Value>(text).or_else(|not_json| {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| format!("not JSON ({not_json}) and not base64"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("base64 of something not JSON: {e}"))
    })?;
    if !decoded.is_object() && !decoded.is_array() {
        return Err("the message holds no event".to_owned());
    }
    envelope::events_of_value(&decoded).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
