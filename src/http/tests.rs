//! The HTTP policy's pure parts: statuses, waits and which endpoints may be http.

use super::*;

const STEPS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

#[test]
fn statuses_sort_into_success_worth_retrying_and_not() {
    for (status, want) in [
        (200, Verdict::Success),
        (202, Verdict::Success),
        (204, Verdict::Success),
        (301, Verdict::Permanent),
        (302, Verdict::Permanent),
        (307, Verdict::Permanent),
        (308, Verdict::Permanent),
        (400, Verdict::Permanent),
        (404, Verdict::Permanent),
        (408, Verdict::Transient),
        (410, Verdict::Permanent),
        (429, Verdict::Transient),
        (500, Verdict::Transient),
        (503, Verdict::Transient),
    ] {
        let status = StatusCode::from_u16(status).expect("a status");
        assert_eq!(verdict(status), want, "{status}");
    }
}

#[test]
fn every_attempt_takes_a_step_whether_or_not_the_server_says_how_long_to_wait() {
    let mut backoff = Backoff::new(&STEPS, Duration::from_millis(500));

    let waits: Vec<Option<Duration>> = (0..4)
        .map(|_| backoff.next_wait(Some(Duration::ZERO)))
        .collect();

    assert_eq!(
        waits,
        [
            Some(Duration::from_millis(500)),
            Some(Duration::from_millis(500)),
            Some(Duration::from_millis(500)),
            None
        ],
        "Retry-After: 0 waits the floor, and the list still runs out"
    );
}

#[test]
fn a_server_s_wait_replaces_the_step_up_to_the_ceiling() {
    let mut backoff = Backoff::new(&STEPS, Duration::from_millis(500));

    assert_eq!(
        backoff.next_wait(Some(Duration::from_secs(7))),
        Some(Duration::from_secs(7))
    );
    assert_eq!(backoff.next_wait(None), Some(Duration::from_secs(2)));
    assert_eq!(
        backoff.next_wait(Some(Duration::from_secs(3600))),
        Some(MAX_WAIT)
    );
}

#[test]
fn retry_after_is_read_as_seconds_and_capped() {
    let headers = |value: &str| {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, value.parse().expect("a header value"));
        map
    };
    assert_eq!(retry_after(&headers(" 5 ")), Some(Duration::from_secs(5)));
    assert_eq!(retry_after(&headers("86400")), Some(MAX_WAIT));
    assert_eq!(retry_after(&headers("soon")), None);
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

#[test]
fn a_secret_goes_over_http_only_to_this_machine() {
    let allowed = [
        "https://hooks.slack.com/services/x",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://localhost:10002/devstoreaccount1",
        "http://kv-a.vault.localhost:443/",
    ];
    for url in allowed {
        assert!(
            require_https(&Url::parse(url).expect("a URL")).is_ok(),
            "{url}"
        );
    }
    let refused = [
        "http://hooks.example.com/x",
        "http://10.0.0.1/hook",
        "http://localhost.example.com/",
        "ftp://files.example.com/",
    ];
    for url in refused {
        assert!(
            require_https(&Url::parse(url).expect("a URL")).is_err(),
            "{url}"
        );
    }
}

#[test]
fn a_redirect_is_named_by_its_target_host_only() {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::LOCATION,
        "https://login.example.com/sso?next=sig%3Dsecret"
            .parse()
            .expect("a header value"),
    );

    let reason = redirect_reason(&headers);

    assert!(reason.contains("login.example.com"), "{reason}");
    assert!(!reason.contains("secret"), "{reason}");
}

#[test]
fn a_list_stops_at_a_page_read_before_and_past_its_cap() {
    let page = |n: u32| {
        Url::parse(&format!(
            "https://kv.vault.azure.net/secrets?$skiptoken={n}"
        ))
        .expect("url")
    };
    let mut pages = Pages::new(&page(0), 3);

    assert_eq!(pages.admit(&page(1)), Ok(()));
    assert_eq!(pages.admit(&page(0)), Err(PageRefused::Loop));
    assert_eq!(pages.admit(&page(2)), Ok(()));
    assert_eq!(pages.admit(&page(3)), Err(PageRefused::TooMany(3)));
}
