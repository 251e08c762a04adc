//! Property tests across the crate: no input, however hostile, makes the event parser, the
//! envelope reader, the mail composer or a webhook format panic. They span several rooms, so
//! they stand at the top beside `lib.rs`. Bounded by a fixed number of generated cases.

use crate::alert::Alert;
use crate::envelope;
use crate::event::{self, Event};
use crate::mail::Composer;
use crate::webhook::Format;
use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys and strings that steer generated JSON into the parser's interesting paths.
const KEYS: &[&str] = &[
    "id",
    "eventType",
    "type",
    "specversion",
    "data",
    "Data",
    "event",
    "topic",
    "source",
    "subject",
    "eventTime",
    "time",
    "Id",
    "VaultName",
    "ObjectType",
    "ObjectName",
    "ObjectName ",
    "Version",
    "NBF",
    "EXP",
    "exp",
    "vaultName",
];
const TYPES: &[&str] = &[
    "Microsoft.KeyVault.SecretNearExpiry",
    "Microsoft.KeyVault.KeyExpired",
    "Microsoft.KeyVault.CertificateNewVersionCreated",
    "Microsoft.KeyVault.VaultAccessPolicyChanged",
    "microsoft.keyvault.secretexpired",
    "Microsoft.KeyVault.",
    "Microsoft.KeyVault.Unknown",
    "https://x.vault.azure.net/secrets/n/v",
    "/subscriptions/s/providers/Microsoft.KeyVault/vaults/v",
    "1559081980",
    "-99999999999999",
    "1e308",
    "<b>\r\nBcc: x@y</b>",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TYPES).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(KEYS).prop_map(str::to_owned),
                        ".{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Renders the event as an alert, as a mail and in every webhook format.
fn compose_every_kind(event: &Event) {
    if let Event::KeyVault(event) = event {
        let alert = Alert::new(event, Utc::now());
        let mail = Composer::default()
            .render(&alert)
            .expect("built-in templates render");
        assert!(!mail.subject.contains(['\r', '\n']));
        for format in [Format::Teams, Format::Slack, Format::Json] {
            assert!(format.payload(&alert).is_object());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_json_event_parses_or_is_refused_without_panicking(value in json()) {
        if let Ok(event) = event::parse(&value) {
            compose_every_kind(&event);
        }
    }

    #[test]
    fn any_invocation_body_is_read_or_refused_without_panicking(value in json(), wrap in any::<u8>()) {
        let body = match wrap % 3 {
            0 => serde_json::json!({"Data": {"event": value}}).to_string(),
            1 => serde_json::json!({"Data": {"event": value.to_string()}}).to_string(),
            _ => value.to_string(),
        };
        if let Ok(events) = envelope::events_of_invocation(body.as_bytes()) {
            for raw in events {
                if let Ok(event) = raw.into_event() {
                    compose_every_kind(&event);
                }
            }
        }
    }

    #[test]
    fn reading_request_bytes_and_reading_a_parsed_value_agree(value in json()) {
        let body = serde_json::json!({"Data": {"event": value}, "Metadata": {"data": value}});
        let from_bytes = envelope::events_of_invocation(body.to_string().as_bytes())
            .map(|events| events.into_iter().map(|e| e.into_event()).collect::<Vec<_>>());
        let from_value = envelope::events_of_value(&value)
            .map(|events| events.into_iter().map(|e| e.into_event()).collect::<Vec<_>>());
        prop_assert_eq!(from_bytes, from_value);
    }

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = envelope::events_of_invocation(&bytes);
    }
}
