use super::*;

const EVENT: &str = r#"{"id":"e1","topic":"/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv","subject":"db","eventType":"Microsoft.KeyVault.SecretNearExpiry","eventTime":"2026-12-01T00:00:00Z","dataVersion":"1","data":{"Id":"https://kv.vault.azure.net/secrets/db/v1","VaultName":"kv","ObjectType":"Secret","ObjectName":"db","Version":"v1","NBF":null,"EXP":1900000000}}"#;

#[test]
fn a_message_is_read_as_a_json_string_an_object_or_base64() {
    let object: Value = serde_json::from_str(EVENT).expect("json");
    for message in [
        Value::String(EVENT.to_owned()),
        object.clone(),
        Value::String(BASE64.encode(EVENT)),
        json!([object]),
    ] {
        let events = events_of_message(&message).expect("an event");
        assert_eq!(events.len(), 1, "{message}");
    }
}

#[test]
fn garbage_is_refused_with_a_reason() {
    for message in [
        Value::String("hello".to_owned()),
        Value::String(BASE64.encode("not json")),
        Value::String("42".to_owned()),
        json!(null),
    ] {
        let why = events_of_message(&message)
            .and_then(|raw| envelope::parse_all(raw).map_err(|e| e.to_string()));
        assert!(why.is_err(), "{message}");
    }
}

/// How long Event Grid keeps a message in the queue (`queueMessageTimeToLiveInSeconds`, which
/// a deployment with the queue path sets): two days, longer than the host's retries, so a
/// message is retried to the end and then moved to the poison queue, never expired on the way.
const MESSAGE_TTL_SECS: u64 = 2 * 86_400;

/// `HH:MM:SS` (a TimeSpan as host.json writes it), in seconds.
fn seconds(span: &str) -> u64 {
    let parts: Vec<u64> = span
        .split(':')
        .map(|p| p.parse().expect("a number"))
        .collect();
    assert_eq!(parts.len(), 3, "{span}");
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

#[test]
fn the_shipped_host_json_retries_a_failing_message_for_a_day_within_its_time_to_live() {
    let host: Value = serde_json::from_str(include_str!("../../host.json")).expect("host.json");
    let queues = &host["extensions"]["queues"];
    let tries = queues["maxDequeueCount"].as_u64().expect("maxDequeueCount");
    let wait = seconds(
        queues["visibilityTimeout"]
            .as_str()
            .expect("visibilityTimeout"),
    );
    // The last try comes (tries - 1) waits after the first.
    let window = (tries - 1) * wait;
    assert!(
        window >= 20 * 3600,
        "retries end after {window} s: under 20 hours"
    );
    assert!(
        window < MESSAGE_TTL_SECS,
        "retries run {window} s, past the message's {MESSAGE_TTL_SECS} s time to live"
    );
    assert_eq!(
        queues["messageEncoding"], "base64",
        "Event Grid writes base64"
    );
}

#[test]
fn the_function_binds_the_queue_event_grid_delivers_to() {
    let binding: Value =
        serde_json::from_str(include_str!("../../event-queue/function.json")).expect("json");
    let binding = &binding["bindings"][0];
    assert_eq!(binding["type"], "queueTrigger");
    assert_eq!(binding["queueName"], QUEUE);
    assert_eq!(binding["name"], "message");
    assert_eq!(binding["connection"], "AzureWebJobsStorage");
}
