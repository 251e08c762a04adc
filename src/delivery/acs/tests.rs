use super::*;
use crate::mail::Rendered;
use lettre::address::Envelope;

const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
const DATE: &str = "Mon, 23 Nov 2026 10:00:00 GMT";

fn key() -> Vec<u8> {
    BASE64.decode(KEY).expect("base64")
}

fn signed(method: Method, url: &str, body: &[u8]) -> [(&'static str, String); 3] {
    sign::headers(
        &key(),
        &method,
        &Url::parse(url).expect("a URL"),
        DATE,
        body,
    )
}

// Known answers computed with Python's hmac, hashlib and base64, not with this code.
#[test]
fn a_post_is_signed_as_acs_recomputes_it() {
    let [date, hash, authorization] = signed(
        Method::POST,
        "https://kv.communication.azure.com/emails:send?api-version=2023-03-31",
        br#"{"senderAddress":"a@b.c"}"#,
    );
    assert_eq!(date, ("x-ms-date", DATE.to_owned()));
    assert_eq!(hash.1, "JppGVhXOsxjTDFEjYrQyeJE/eLwcSbSYvYuKFodVIO0=");
    assert_eq!(
        authorization.1,
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256\
         &Signature=3KOcproqtTv0hZPSnesQjeYOD0j0/bhTfthd1iMvk2g="
    );
}

#[test]
fn a_host_on_another_port_is_signed_with_it() {
    let [_, _, authorization] = signed(Method::GET, "https://127.0.0.1:8443/x", b"");
    assert!(
        authorization
            .1
            .ends_with("Signature=Ra4AQ3bpsBGRTCiiKtZWx3Q1CJ1CFcD2/nwS4JXxMHA="),
        "{}",
        authorization.1
    );
}

fn repeat(first_tried: DateTime<Utc>) -> Repeat {
    Repeat {
        digest: "ab".repeat(32),
        first_tried,
    }
}

#[test]
fn a_repeat_within_the_window_is_the_same_request_and_a_later_one_a_new_one() {
    let first = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.750Z")
        .expect("a time")
        .to_utc();
    let (id, sent) = repeatability(&repeat(first), first);
    let soon = first + chrono::TimeDelta::seconds(200);
    let late = first + chrono::TimeDelta::seconds(300);

    assert_eq!(
        sent.to_rfc3339(),
        "2026-11-23T10:00:00+00:00",
        "whole seconds"
    );
    assert_eq!(repeatability(&repeat(first), soon), (id.clone(), sent));
    let (new_id, new_sent) = repeatability(&repeat(first), late);
    assert_ne!(new_id, id);
    assert_eq!(new_sent.to_rfc3339(), "2026-11-23T10:05:00+00:00");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a GUID: {id}");
    let other = Repeat {
        digest: "cd".repeat(32),
        first_tried: first,
    };
    assert_ne!(
        repeatability(&other, first).0,
        id,
        "other recipients, another id"
    );
}

#[test]
fn the_request_carries_both_parts_to_this_sends_recipients_only() {
    let to = vec!["b@contoso.com".parse().expect("an address")];
    let envelope = Envelope::new(Some("kv@contoso.com".parse().expect("an address")), to)
        .expect("an envelope");
    let parts = Rendered {
        subject: "Secret <x> expires".to_owned(),
        text: "plain".to_owned(),
        html: "<p>html</p>".to_owned(),
    };
    let letter = Letter {
        envelope: &envelope,
        raw: b"",
        parts: &parts,
        name: "n",
        repeat: &repeat(Utc::now()),
    };
    let body = message("DoNotReply@contoso.com", &letter);
    assert_eq!(body["senderAddress"], "DoNotReply@contoso.com");
    assert_eq!(
        body["recipients"]["to"],
        json!([{ "address": "b@contoso.com" }])
    );
    assert_eq!(body["content"]["subject"], "Secret <x> expires");
    assert_eq!(body["content"]["plainText"], "plain");
    assert_eq!(body["content"]["html"], "<p>html</p>");
    assert_eq!(body["userEngagementTrackingDisabled"], true);
}

#[test]
fn refusals_are_sorted_as_for_smtp_and_graph() {
    let error = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"no"}}}}"#);
    let sort =
        |status, text: &str| classify(status, "kv@contoso.com", text, Some(Duration::from_secs(7)));
    assert!(matches!(
        sort(StatusCode::TOO_MANY_REQUESTS, ""),
        SendError::Failed(Failure::Transient(r)) if r.contains("retry after 7 s")
    ));
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::CONFLICT,
        StatusCode::PRECONDITION_FAILED,
    ] {
        assert!(
            matches!(sort(status, ""), SendError::Failed(Failure::Transient(_))),
            "{status}"
        );
    }
    assert!(matches!(
        sort(StatusCode::FORBIDDEN, &error("Forbidden")),
        SendError::Failed(Failure::Permanent(r)) if r.contains("role") && r.contains("Forbidden: no")
    ));
    assert!(matches!(
        sort(StatusCode::BAD_REQUEST, &error("DomainNotLinked")),
        SendError::Failed(Failure::Permanent(r)) if r.contains("ACS_SENDER")
    ));
    assert!(matches!(
        sort(StatusCode::BAD_REQUEST, &error("InvalidEmailAddress")),
        SendError::Refused(Failure::Permanent(r)) if r.contains("InvalidEmailAddress")
    ));
}
