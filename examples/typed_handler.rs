//! The floor for a handler that does this job, for the benchmarks: reads the invocation and
//! its Key Vault event with serde's derived code (exact key names, no checks, no rules, no
//! ledger, no logs) and answers with the same `Logs` line and `ReturnValue` kv-notify writes.
//! What kv-notify costs beyond this is the cost of its own work.

use serde::{Deserialize, Serialize};

mod support;

#[derive(Deserialize)]
struct Invocation {
    #[serde(rename = "Data")]
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    event: Event,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    id: String,
    event_type: String,
    data: KeyVaultData,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyVaultData {
    vault_name: String,
    object_type: String,
    object_name: String,
    version: String,
    #[serde(rename = "EXP")]
    exp: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    outputs: serde_json::Map<String, serde_json::Value>,
    logs: Vec<String>,
    return_value: ReturnValue,
}

#[derive(Serialize)]
struct ReturnValue {
    events: Vec<Report>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    vault: String,
    object_type: String,
    object: String,
    version: String,
    expires: Option<String>,
    actions: Vec<()>,
}

fn answer(body: &[u8]) -> Answer {
    let Ok(invocation) = serde_json::from_slice::<Invocation>(body) else {
        return Answer {
            outputs: Default::default(),
            logs: vec!["not an invocation".to_owned()],
            return_value: ReturnValue { events: vec![] },
        };
    };
    let event = invocation.data.event;
    let short = event
        .event_type
        .strip_prefix("Microsoft.KeyVault.")
        .unwrap_or(&event.event_type)
        .to_owned();
    let data = event.data;
    let expires = data
        .exp
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let log = format!(
        "event {} {short} {}/{}: recorded, no action",
        event.id, data.vault_name, data.object_name
    );
    Answer {
        outputs: Default::default(),
        logs: vec![log],
        return_value: ReturnValue {
            events: vec![Report {
                id: event.id,
                event_type: short,
                vault: data.vault_name,
                object_type: data.object_type,
                object: data.object_name,
                version: data.version,
                expires,
                actions: vec![],
            }],
        },
    }
}

fn main() {
    support::serve(|body| warp::reply::json(&answer(&body)));
}
