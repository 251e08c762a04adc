//! Entra ID as a second source (`ENTRA_CREDENTIALS`): the Graph stand-in serves applications and
//! service principals page by page over HTTPS (with owners, throttling and refusals, checking
//! each token's audience), the identity stand-in the tokens, a real SMTP server takes the
//! notices, and the test host fires the timer as the Functions host does.

use crate::support::*;
use crate::sweep::kv_notify;
use serde_json::{Value, json};

/// Settings that read Entra ID's applications from `graph`, with tokens from `identity`.
fn entra_settings(graph: &FakeGraph, identity: &IdentityEndpoint) -> Vec<(&'static str, String)> {
    let mut settings = Vec::new();
    set(&mut settings, "ENTRA_CREDENTIALS", "true");
    set(&mut settings, "GRAPH_ENDPOINT", &graph.url());
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &graph.certificate().to_string_lossy(),
    );
    settings
}

/// A date `days` from now, as Graph writes it.
fn at(days: f64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds((days * 86_400.0) as i64)).to_rfc3339()
}

/// An object id (a GUID, as Graph's are).
fn id(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

/// An application in Graph's shape: object id `id(n)`, app id `id(n + 1000)`.
fn application(n: u32, name: &str, secrets: Value, certificates: Value) -> Value {
    json!({
        "id": id(n),
        "appId": id(n + 1000),
        "displayName": name,
        "passwordCredentials": secrets,
        "keyCredentials": certificates,
    })
}

fn secret(key_id: &str, name: &str, days: f64) -> Value {
    json!({"keyId": key_id, "displayName": name, "endDateTime": at(days), "startDateTime": at(-300.0)})
}

fn certificate(key_id: &str, days: f64) -> Value {
    json!({"keyId": key_id, "displayName": "CN=api", "endDateTime": at(days), "type": "AsymmetricX509Cert", "usage": "Verify"})
}

/// An application with one client secret and one certificate.
fn simple(n: u32, name: &str, secret_days: f64, certificate_days: f64) -> Value {
    application(
        n,
        name,
        json!([secret(&format!("{n}-s"), "ci secret", secret_days)]),
        json!([certificate(&format!("{n}-c"), certificate_days)]),
    )
}

/// A user owner as Graph gives it to an identity with `User.Read.All`.
fn user(n: u32, mail: Option<&str>) -> Value {
    json!({"@odata.type": "#microsoft.graph.user", "id": id(n), "displayName": format!("user {n}"),
           "userPrincipalName": format!("user{n}@contoso.onmicrosoft.com"), "mail": mail})
}

/// An enterprise application (service principal) of `app_n`'s application: its SAML signing
/// certificate (the `Sign` key, its `Verify` half and its password share a custom key
/// identifier), of type `kind`.
fn principal(n: u32, app_n: u32, name: &str, kind: &str, signing_days: f64) -> Value {
    let custom = format!("CUSTOM{n}");
    json!({
        "id": id(n),
        "appId": id(app_n + 1000),
        "displayName": name,
        "servicePrincipalType": kind,
        "appOwnerOrganizationId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "keyCredentials": [
            {"keyId": format!("{n}-sign"), "displayName": "CN=Microsoft Azure Federated SSO Certificate", "endDateTime": at(signing_days), "usage": "Sign", "customKeyIdentifier": custom},
            {"keyId": format!("{n}-verify"), "displayName": "CN=Microsoft Azure Federated SSO Certificate", "endDateTime": at(signing_days), "usage": "Verify", "customKeyIdentifier": custom},
        ],
        "passwordCredentials": [
            {"keyId": format!("{n}-password"), "displayName": null, "endDateTime": at(signing_days), "customKeyIdentifier": custom},
        ],
    })
}

fn entra(answer: &Answer) -> Value {
    answer.json()["ReturnValue"]["entra"].clone()
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    let mut subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    subjects.sort();
    subjects
}

struct Setup {
    graph: FakeGraph,
    identity: IdentityEndpoint,
    smtp: SmtpServer,
    settings: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

/// The stand-ins, and settings mailing through the SMTP server with a ledger file that
/// outlives a handler.
fn setup() -> Setup {
    let (graph, identity, smtp) = (
        FakeGraph::start(),
        IdentityEndpoint::start(),
        SmtpServer::start(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = mail_settings_with_ledger(&smtp.url(), &dir.path().join("ledger.redb"));
    settings.extend(entra_settings(&graph, &identity));
    Setup {
        graph,
        identity,
        smtp,
        settings,
        _dir: dir,
    }
}

#[test]
fn inventory_lists_applications_and_their_enterprise_applications_read_page_by_page() {
    let s = setup();
    // Five applications: three pages of Graph's list.
    s.graph.set_applications(&json!([
        simple(1, "payments-api", 12.5, 200.5),
        simple(2, "crm-sync", 40.5, 400.5),
        simple(3, "old-batch", -3.5, 500.5),
        simple(4, "web", 80.5, 90.5),
        simple(5, "sso-portal", 500.5, 700.5),
    ]));
    s.graph.set_service_principals(&json!([
        principal(15, 5, "sso-portal", "Application", 20.5),
        principal(16, 900, "backup-identity", "ManagedIdentity", 5.5),
        principal(17, 901, "Office 365 Exchange Online", "Application", 5.5),
    ]));
    s.graph
        .set_owners(&json!({id(1): [user(50, Some("ann@contoso.com"))]}));

    let (ok, out) = kv_notify(&["inventory", "--days", "60"], &s.settings);

    assert!(ok, "{out}");
    for expected in [
        "payments-api/ci secret",
        "crm-sync/ci secret",
        "old-batch/ci secret",
        "sso-portal/CN=Microsoft Azure Federated SSO Certificate",
        "SamlSigningCertificate",
        "ann@contoso.com",
        "step 14 now",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    // Out of the horizon, a managed identity, another tenant's principal, and the halves of
    // the signing certificate are not listed.
    for unexpected in [
        "web/ci secret",
        "backup-identity",
        "Exchange",
        "15-verify",
        "15-password",
    ] {
        assert!(!out.contains(unexpected), "{unexpected}: {out}");
    }
    let lines = s.graph.request_lines();
    let pages = |list: &str| lines.iter().filter(|r| r.starts_with(list)).count();
    assert_eq!(pages("GET /v1.0/applications?"), 3, "{lines:?}");
    assert_eq!(pages("GET /v1.0/servicePrincipals?"), 2, "{lines:?}");
}

#[test]
fn inventory_says_which_permission_graph_wants_when_it_refuses_the_applications() {
    let s = setup();
    s.graph.refuse_applications();

    let (ok, out) = kv_notify(&["inventory"], &s.settings);

    assert!(!ok, "{out}");
    assert!(out.contains("Application.Read.All"), "{out}");
}

#[tokio::test]
async fn one_notice_per_application_and_step_lists_its_credentials_and_goes_to_its_owners() {
    let s = setup();
    s.graph.set_applications(&json!([
        simple(1, "payments-api", 10.5, 12.5),
        simple(2, "crm-sync", 400.5, 400.5),
    ]));
    s.graph.set_owners(&json!({id(1): [
        user(50, Some("ann@contoso.com")),
        user(51, None),
        {"@odata.type": "#microsoft.graph.servicePrincipal", "id": id(52), "displayName": "deployer"},
    ]}));
    // Graph throttles the first two reads, and the owners' first read in a batch: they are
    // asked again after its Retry-After.
    s.graph.throttle(2);
    s.graph.throttle_batched(1);
    let handler = Handler::start(&pairs(&s.settings)).await;

    let first = handler.timer().await;
    let again = handler.timer().await;

    assert_eq!(first.status, 200, "{}", first.text);
    let summary = entra(&first);
    for (field, expected) in [("credentials", 4), ("due", 2), ("listed", 2), ("sent", 1)] {
        assert_eq!(summary[field], json!(expected), "{field}: {summary}");
    }
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 1, "{}", first.text);
    let notice = &messages[0];
    assert_eq!(
        notice.subject(),
        "2 credentials of payments-api: the first expires in 10 days"
    );
    assert_eq!(notice.rcpt_to(), ["ann@contoso.com"]);
    let text = notice.text();
    for expected in [
        "client secret \"ci secret\" (key id 1-s)",
        "certificate \"CN=api\" (key id 1-c)",
        &id(1001),
        "AADSTS7000222",
        &format!("Credentials/appId/{}", id(1001)),
        "Add a new client secret to application payments-api",
        "Next reminder: on ",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert_eq!(again.status, 200, "{}", again.text);
    let summary = entra(&again);
    assert_eq!(
        (summary["toldBefore"].clone(), summary["sent"].clone()),
        (json!(2), json!(0)),
        "{summary}"
    );
    assert_eq!(s.smtp.messages().len(), 1);
    let throttled = s.graph.request_lines();
    let reads = throttled
        .iter()
        .filter(|r| r.starts_with("GET /v1.0/applications?"))
        .count();
    assert_eq!(
        reads,
        2 + 2,
        "two throttled, then one a sweep: {throttled:?}"
    );
}

#[tokio::test]
async fn each_step_of_the_ladder_is_told_once_and_a_moved_end_date_starts_it_again() {
    let mut s = setup();
    let app = |days: f64| {
        json!([application(
            1,
            "payments-api",
            json!([secret("1-s", "ci", days)]),
            json!([])
        )])
    };
    s.graph.set_applications(&app(10.5));
    let mut run = async |ladder: &str| {
        set(&mut s.settings, "REMINDER_DAYS", ladder);
        let handler = Handler::start(&pairs(&s.settings)).await;
        let answer = handler.timer().await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        s.smtp.messages().len()
    };
    // 10 days left: step 30 of 30,7; then step 14 of 30,14,7, once; then step 11 of 30,11.
    assert_eq!(run("30,7").await, 1);
    assert_eq!(run("30,14,7").await, 2);
    assert_eq!(run("30,14,7").await, 2);
    assert_eq!(run("30,11").await, 3);
    // The same secret with another end date (within the same step) is a new deadline.
    s.graph.set_applications(&app(10.8));
    assert_eq!(run("30,11").await, 4);
    assert_eq!(run("30,11").await, 4);
}

#[tokio::test]
async fn a_newer_credential_changes_the_wording_and_only_removal_ends_the_reminders() {
    let mut s = setup();
    let with_newer = |n: u32, name: &str, old: bool| {
        let mut secrets = vec![secret(&format!("{n}-new"), "ci secret 2028", 700.5)];
        if old {
            secrets.push(secret(&format!("{n}-old"), "ci secret 2026", 5.5));
        }
        application(n, name, json!(secrets), json!([]))
    };
    s.graph.set_applications(&json!([
        with_newer(1, "payments-api", true),
        with_newer(2, "crm-sync", true)
    ]));
    set(&mut s.settings, "REMINDER_DAYS", "30,7");
    let first = Handler::start(&pairs(&s.settings)).await.timer().await;

    assert_eq!(first.status, 200, "{}", first.text);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 2, "only the old secrets are due");
    let text = messages[0].text();
    assert!(
        text.contains("A newer client secret exists (it ends on "),
        "{text}"
    );
    assert!(text.contains("remove this one once everything"), "{text}");

    // payments-api removes its old secret; crm-sync keeps it beside the new one. At the next
    // step only crm-sync is told again.
    s.graph.set_applications(&json!([
        with_newer(1, "payments-api", false),
        with_newer(2, "crm-sync", true)
    ]));
    set(&mut s.settings, "REMINDER_DAYS", "30,6");
    let next = Handler::start(&pairs(&s.settings)).await.timer().await;

    assert_eq!(next.status, 200, "{}", next.text);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 3, "{}", next.text);
    assert_eq!(
        messages[2].subject(),
        "Client secret ci secret 2026 of crm-sync expires in 5 days"
    );
}

#[tokio::test]
async fn two_instances_sweeping_at_once_send_one_notice_per_application_and_step() {
    let (graph, identity, smtp) = (
        FakeGraph::start(),
        IdentityEndpoint::start(),
        SmtpServer::start(),
    );
    // Three named applications, and 12 more with three credentials each on one step, so that
    // the two sweeps meet on many groups at once.
    let mut applications = vec![
        simple(1, "payments-api", 12.5, 9.5),
        simple(2, "reports", 0.5, 0.7),
        simple(3, "crm-sync", 3.5, 400.5),
    ];
    for n in 10..22 {
        let secrets = json!([
            secret(&format!("{n}-a"), "a", 20.5),
            secret(&format!("{n}-b"), "b", 21.5)
        ]);
        let certificates = json!([certificate(&format!("{n}-c"), 22.5)]);
        applications.push(application(n, &format!("batch-{n}"), secrets, certificates));
    }
    graph.set_applications(&json!(applications));
    let ledger = TestLedger::table();
    let mut settings = ledger.settings(&smtp.url());
    settings.extend(entra_settings(&graph, &identity));
    // Rounds on ladders of other steps, so that each round's notices are new.
    for (round, ladder) in [
        "32,1", "31,1", "30,1", "29,1", "28,1", "27,1", "26,1", "25,1", "24,1", "23,1",
    ]
    .into_iter()
    .enumerate()
    {
        set(&mut settings, "REMINDER_DAYS", ladder);
        let (one, two) = (
            Handler::start(&pairs(&settings)).await,
            Handler::start(&pairs(&settings)).await,
        );

        let (first, second) = tokio::join!(one.timer(), two.timer());

        assert_eq!(
            (first.status, second.status),
            (200, 200),
            "{}\n{}",
            first.text,
            second.text
        );
        let subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
        let batches: Vec<&String> = subjects.iter().filter(|s| s.contains("batch-")).collect();
        assert_eq!(
            batches.len(),
            12 * (round + 1),
            "ladder {ladder}: {subjects:#?}"
        );
        assert!(
            batches
                .iter()
                .all(|s| s.starts_with("3 credentials of batch-")),
            "ladder {ladder}: {subjects:#?}"
        );
        if round == 0 {
            let mut named: Vec<&String> =
                subjects.iter().filter(|s| !s.contains("batch-")).collect();
            named.sort();
            assert_eq!(
                named,
                [
                    "2 credentials of payments-api: the first expires in 9 days",
                    "2 credentials of reports: the first expires today",
                    "Client secret ci secret of crm-sync expires in 3 days",
                ]
            );
        }
    }
}

#[tokio::test]
async fn without_application_read_all_security_hears_once_per_15_days_and_the_notice_says_so() {
    let s = setup();
    s.graph
        .set_applications(&json!([simple(1, "payments-api", 5.5, 400.5)]));
    s.graph.refuse_applications();
    let handler = Handler::start(&pairs(&s.settings)).await;

    let first = handler.timer().await;
    let second = handler.timer().await;

    for answer in [&first, &second] {
        let why = entra(answer)["notRead"].to_string();
        assert!(why.contains("Application.Read.All"), "{why}");
    }
    assert_eq!(
        entra(&first)["blindSpotAlert"],
        json!("sent"),
        "{}",
        first.text
    );
    assert_eq!(entra(&second)["blindSpotAlert"], json!("sent before"));
    let messages = s.smtp.messages();
    let alerts: Vec<&Received> = messages
        .iter()
        .filter(|m| m.subject().contains("cannot read Entra ID"))
        .collect();
    assert_eq!(alerts.len(), 1, "{:?}", subjects(&s.smtp));
    assert_eq!(alerts[0].rcpt_to(), ["secops@contoso.com"]);
    let text = alerts[0].text();
    for expected in [
        "Application.Read.All",
        "az rest --method POST",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let notice = s.smtp.health_notice().text();
    assert!(
        notice.contains("Entra ID's applications were not read"),
        "{notice}"
    );

    // Once granted, the secret is reminded.
    s.graph.admit_applications();
    let granted = handler.timer().await;
    assert_eq!(entra(&granted)["sent"], json!(1), "{}", granted.text);
}

#[tokio::test]
async fn owners_graph_hides_fall_back_to_the_rules_and_the_health_notice_names_user_read_all() {
    let mut s = setup();
    s.graph.set_applications(&json!([
        simple(1, "payments-api", 5.5, 400.5),
        simple(2, "crm-sync", 5.5, 400.5),
    ]));
    s.graph.set_owners(&json!({
        id(1): [user(50, Some("ann@contoso.com"))],
        id(2): [user(51, Some("bob@contoso.com"))],
    }));
    s.graph.hide_user_owners();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[owners]]\napplication = \"payments-*\"\nemails = [\"payments-team@contoso.com\"]\n\n\
             [[owners]]\napplication = \"{}\"\nemails = [\"crm-team@contoso.com\"]\n\n\
             [[rules]]\nevents = [\"AppCredentialReminder\"]\nnotify = [\"owners\"]\n\n\
             [[rules]]\nevents = [\"EntraUnreadable\", \"HealthNotice\"]\nnotify = [\"security\"]\n",
            id(1002)
        ),
    )
    .expect("write rules");
    set(&mut s.settings, "RULES_FILE", &rules.to_string_lossy());
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(entra(&answer)["ownersHidden"], json!(2), "{}", answer.text);
    let messages = s.smtp.messages();
    let to = |subject: &str| {
        messages
            .iter()
            .find(|m| m.subject().contains(subject))
            .map(Received::rcpt_to)
            .unwrap_or_default()
    };
    // By display name, and by application id.
    assert_eq!(to("of payments-api"), ["payments-team@contoso.com"]);
    assert_eq!(to("of crm-sync"), ["crm-team@contoso.com"]);
    let notice = s.smtp.health_notice().text();
    assert!(notice.contains("User.Read.All"), "{notice}");

    // With the permission, the applications' own owners hear of the next step.
    drop(handler);
    s.graph.show_user_owners();
    set(&mut s.settings, "REMINDER_DAYS", "30,6");
    let granted = Handler::start(&pairs(&s.settings)).await.timer().await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let messages = s.smtp.messages();
    let last: Vec<Vec<String>> = messages[messages.len() - 2..]
        .iter()
        .filter(|m| !m.subject().starts_with("Health"))
        .map(Received::rcpt_to)
        .collect();
    assert!(
        last.contains(&vec!["ann@contoso.com".to_owned()]),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_vault_secret_tagged_with_a_credential_id_and_that_credential_name_each_other() {
    let s = setup();
    s.graph.set_applications(&json!([application(
        1,
        "payments-api",
        json!([secret(
            "6c2b8f1e-1d0a-4c55-9a57-3b1f0e2d4c77",
            "ci secret",
            10.5
        )]),
        json!([])
    )]));
    let vault = FakeVault::start(&["kv-a"]);
    vault.set(json!({"vaults": {"kv-a": {"secrets": [
        expiring_with("payments-client-secret", 6.5, json!({"tags": {
            "CredentialId": "6C2B8F1E-1D0A-4C55-9A57-3B1F0E2D4C77",
            "ProviderAddress": id(1),
        }})),
    ]}}}));
    let mut settings = s.settings.clone();
    settings.extend(vault.settings(&["kv-a"], &s.identity));
    // Both stand-ins' test CAs, in one bundle.
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("cas.pem");
    let cas = [vault.certificate(), s.graph.certificate()]
        .map(|ca| std::fs::read_to_string(ca).expect("read CA"));
    std::fs::write(&bundle, cas.concat()).expect("write bundle");
    set(&mut settings, "SSL_CERT_FILE", &bundle.to_string_lossy());
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let messages = s.smtp.messages();
    let text = |subject: &str| {
        messages
            .iter()
            .find(|m| m.subject().starts_with(subject))
            .map(Received::text)
            .unwrap_or_else(|| panic!("no mail {subject}: {}", answer.text))
    };
    let vault_mail = text("Secret payments-client-secret in kv-a");
    assert!(
        vault_mail.contains(
            "This secret holds Entra ID application payments-api's client secret \"ci secret\""
        ),
        "{vault_mail}"
    );
    assert!(vault_mail.contains("which expires on "), "{vault_mail}");
    let app_mail = text("Client secret ci secret of payments-api");
    assert!(
        app_mail.contains("Key Vault secret kv-a/payments-client-secret holds it"),
        "{app_mail}"
    );
}

#[tokio::test]
async fn managed_identities_and_other_tenants_principals_send_nothing() {
    let s = setup();
    s.graph
        .set_applications(&json!([simple(5, "sso-portal", 400.5, 400.5)]));
    s.graph.set_service_principals(&json!([
        principal(16, 900, "backup-identity", "ManagedIdentity", 5.5),
        principal(17, 901, "Office 365 Exchange Online", "Application", 5.5),
        principal(18, 5, "sso-portal", "ManagedIdentity", 5.5),
        principal(15, 5, "sso-portal", "Application", 20.5),
    ]));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    // The application's two, and its enterprise application's signing certificate.
    assert_eq!(entra(&answer)["credentials"], json!(3), "{}", answer.text);
    assert_eq!(
        subjects(&s.smtp),
        [
            "SAML signing certificate CN=Microsoft Azure Federated SSO Certificate of sso-portal expires in 20 days"
        ]
    );
    let text = s.smtp.messages()[0].text();
    assert!(text.contains("Single sign-on"), "{text}");
    assert!(text.contains("service provider"), "{text}");
}
