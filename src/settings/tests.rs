//! Settings: defaults, every problem at once, and where state lives.

use super::*;
use std::collections::HashMap;

fn load(pairs: &[(&str, &str)]) -> Result<Settings, Vec<String>> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (settings, problems) = Settings::parse(|name| map.get(name).cloned());
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

#[test]
fn defaults_need_no_settings_at_all() {
    let settings = load(&[]).expect("defaults are valid");
    assert_eq!(settings.mail_from.email.to_string(), "kv-notify@localhost");
    assert_eq!(settings.outbox_dir, PathBuf::from("outbox"));
    assert_eq!(settings.ledger_path, PathBuf::from("data/ledger.redb"));
    assert_eq!(settings.retention, Duration::from_secs(7 * 86_400));
    assert!(settings.owners.is_empty());
    assert_eq!(
        settings.warnings().len(),
        2,
        "no SMTP, no security contacts"
    );
}

#[test]
fn outside_azure_the_ledger_lives_in_the_app_folder() {
    let settings = load(&[
        ("HOME", "/home/me"),
        ("FUNCTIONS_APP_ROOT_PATH", "/src/app"),
    ])
    .expect("valid");
    assert_eq!(
        settings.ledger_path,
        PathBuf::from("/src/app/data/ledger.redb")
    );
}

#[test]
fn in_azure_the_ledger_lives_in_the_persistent_home() {
    let settings = load(&[
        ("HOME", "/home"),
        ("WEBSITE_INSTANCE_ID", "abc123"),
        ("FUNCTIONS_APP_ROOT_PATH", "/home/site/wwwroot"),
    ])
    .expect("valid");
    assert_eq!(
        settings.ledger_path,
        PathBuf::from("/home/data/kv-notify/ledger.redb")
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = load(&[
        ("MAIL_FROM", "not an address"),
        ("OWNER_EMAILS", "a@contoso.com, nope"),
        ("SECURITY_EMAILS", "@@"),
        ("SMTP_URL", "ftp://secret-password@x"),
        ("SMTP_TIMEOUT_SECS", "-1"),
    ])
    .expect_err("five bad settings");
    assert_eq!(err.len(), 5, "{err:?}");
    assert!(!format!("{err:?}").contains("secret-password"));
}

#[test]
fn recipient_lists_accept_commas_semicolons_and_display_names() {
    let settings = load(&[(
        "OWNER_EMAILS",
        "Ann <a@contoso.com>; b@contoso.com,,a@contoso.com",
    )])
    .expect("valid list");
    let emails: Vec<String> = settings
        .owners
        .iter()
        .map(|m| m.email.to_string())
        .collect();
    assert_eq!(emails, ["a@contoso.com", "b@contoso.com"]);
}

#[test]
fn default_timeouts_shrink_to_fit_a_short_deadline_but_a_chosen_one_must_fit() {
    // 5 s: 2 s for the reads before a send, 1 s to record it, 2 s for the send.
    let settings = load(&[("DEADLINE_SECS", "5")]).expect("valid");
    assert_eq!(settings.smtp_timeout, Duration::from_secs(2));
    assert_eq!(settings.webhook_timeout, Duration::from_secs(2));

    let problems =
        load(&[("DEADLINE_SECS", "5"), ("WEBHOOK_TIMEOUT_SECS", "8")]).expect_err("refused");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("WEBHOOK_TIMEOUT_SECS (8 s)"),
        "{problems:?}"
    );
    assert!(problems[0].contains("at least 11 s"), "{problems:?}");
    // A send that would have to start at once leaves nothing for the reads before it.
    assert!(load(&[("DEADLINE_SECS", "11"), ("SMTP_TIMEOUT_SECS", "10")]).is_err());
}

#[test]
fn the_storage_account_ledger_is_the_default_when_the_app_has_a_storage_account() {
    let dev = ("AzureWebJobsStorage", "UseDevelopmentStorage=true");
    let chosen = |pairs: &[(&str, &str)]| load(pairs).map(|s| s.table_ledger.map(|(_, t)| t));

    assert_eq!(chosen(&[dev]), Ok(Some("kvnotifyledger".to_owned())));
    assert_eq!(
        chosen(&[dev, ("LEDGER_PATH", "x.redb")]),
        Ok(None),
        "a file was named"
    );
    assert_eq!(chosen(&[dev, ("LEDGER", "file")]), Ok(None));
    assert_eq!(chosen(&[]), Ok(None));
    assert_eq!(
        chosen(&[
            dev,
            ("LEDGER", "TABLE"),
            ("LEDGER_PATH", "x.redb"),
            ("LEDGER_TABLE", "alerts2")
        ]),
        Ok(Some("alerts2".to_owned()))
    );
}

#[test]
fn a_table_ledger_without_an_account_or_with_a_bad_name_is_refused() {
    let problems = load(&[("LEDGER", "table")]).expect_err("no account");
    assert!(
        problems[0].contains("needs the app's storage account: AzureWebJobsStorage"),
        "{problems:?}"
    );
    let problems = load(&[
        ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
        ("LEDGER_TABLE", "kv-ledger"),
    ])
    .expect_err("a bad name");
    assert!(problems[0].starts_with("LEDGER_TABLE"), "{problems:?}");
    let problems = load(&[("LEDGER", "sql")]).expect_err("an unknown ledger");
    assert!(problems[0].starts_with("LEDGER:"), "{problems:?}");
}

#[test]
fn the_mail_transport_is_the_one_configured_or_the_one_chosen() {
    let identity = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token"),
        ("IDENTITY_HEADER", "secret"),
    ];
    let with = |extra: &[(&str, &str)]| load(&[&identity[..], extra].concat());
    let graph = with(&[
        ("GRAPH_SENDER", "alerts@contoso.com"),
        ("AZURE_CLIENT_ID", "c1"),
    ])
    .expect("graph alone is valid")
    .mail;
    let MailRoute::Graph(graph) = graph else {
        panic!("graph is chosen: {graph:?}")
    };
    assert_eq!(graph.sender, "alerts@contoso.com");
    assert_eq!(graph.endpoint, "https://graph.microsoft.com");
    let from = with(&[("GRAPH_SENDER", "alerts@contoso.com")]).expect("valid");
    assert_eq!(
        from.mail_from.email.to_string(),
        "alerts@contoso.com",
        "from the mailbox"
    );
    assert_eq!(graph.client_id.as_deref(), Some("c1"));

    let smtp = with(&[("SMTP_URL", "smtp://mail.contoso.com:25")]).expect("smtp alone is valid");
    assert!(matches!(smtp.mail, MailRoute::Smtp { oauth: None, .. }));

    let chosen = with(&[
        ("MAIL_TRANSPORT", "graph"),
        ("SMTP_URL", "smtp://mail.contoso.com:25"),
        ("MAIL_FROM", "kv@contoso.com"),
    ])
    .expect("graph chosen over a configured SMTP");
    assert!(
        matches!(&chosen.mail, MailRoute::Graph(graph) if graph.sender == "kv@contoso.com"),
        "{:?}",
        chosen.mail
    );

    let acs = with(&[
        ("ACS_ENDPOINT", "https://kv.communication.azure.com/"),
        ("ACS_SENDER", "DoNotReply@alerts.contoso.com"),
    ])
    .expect("acs alone is valid");
    assert!(
        matches!(&acs.mail, MailRoute::Acs(acs) if acs.endpoint == "https://kv.communication.azure.com"
            && matches!(acs.auth, AcsAuth::Token { identity: Some(_), .. })),
        "{:?}",
        acs.mail
    );
    assert_eq!(
        acs.mail_from.email.to_string(),
        "DoNotReply@alerts.contoso.com"
    );
    let keyed = load(&[(
        "ACS_CONNECTION_STRING",
        "endpoint=https://kv.communication.azure.com/;accesskey=c2VjcmV0",
    )])
    .expect("an access key needs no identity");
    assert!(matches!(
        &keyed.mail,
        MailRoute::Acs(acs) if matches!(acs.auth, AcsAuth::Key(_))
    ));
    assert!(
        !format!("{:?}", keyed.mail).contains("c2VjcmV0"),
        "the key never prints"
    );
}

#[test]
fn an_ambiguous_or_incomplete_mail_transport_is_a_problem() {
    let both = load(&[
        ("SMTP_URL", "smtp://mail.contoso.com:25"),
        ("GRAPH_SENDER", "alerts@contoso.com"),
    ])
    .expect_err("ambiguous");
    assert!(both[0].contains("MAIL_TRANSPORT"), "{both:?}");
    let two_acs = load(&[
        ("ACS_ENDPOINT", "https://kv.communication.azure.com"),
        (
            "ACS_CONNECTION_STRING",
            "endpoint=https://x/;accesskey=c2VjcmV0",
        ),
    ])
    .expect_err("two ways to authorise");
    assert!(two_acs[0].contains("keep one"), "{two_acs:?}");
    let no_resource = load(&[("MAIL_TRANSPORT", "acs")]).expect_err("no resource");
    assert!(no_resource[0].contains("ACS_ENDPOINT"), "{no_resource:?}");
    let in_azure = [
        ("GRAPH_SENDER", "alerts@contoso.com"),
        ("WEBSITE_INSTANCE_ID", "1"),
    ];
    let no_identity = load(&in_azure).expect_err("no identity in Azure");
    assert!(
        no_identity[0].contains("IDENTITY_ENDPOINT"),
        "{no_identity:?}"
    );
    let local = load(&[("GRAPH_SENDER", "alerts@contoso.com")]).expect("the Azure CLI locally");
    assert!(matches!(&local.mail, MailRoute::Graph(graph) if graph.identity.is_none()));
    let unknown = load(&[("MAIL_TRANSPORT", "pigeon")]).expect_err("unknown");
    assert!(unknown[0].contains("pigeon"), "{unknown:?}");
    let plain = load(&[
        ("GRAPH_SENDER", "alerts@contoso.com"),
        ("GRAPH_ENDPOINT", "http://graph.example"),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token"),
        ("IDENTITY_HEADER", "secret"),
    ])
    .expect_err("plain http");
    assert!(plain[0].contains("https://"), "{plain:?}");
}

#[test]
fn an_xoauth2_login_takes_the_mailbox_from_the_smtp_url_and_no_password() {
    let oauth = load(&[
        (
            "SMTP_URL",
            "smtp://alerts%40contoso.com@smtp.office365.com:587?tls=required",
        ),
        ("SMTP_AUTH", "xoauth2"),
    ])
    .expect("valid")
    .mail;
    let MailRoute::Smtp {
        oauth: Some(oauth), ..
    } = oauth
    else {
        panic!("xoauth2: {oauth:?}")
    };
    assert_eq!(oauth.user, "alerts@contoso.com");
    assert_eq!(oauth.resource, "https://outlook.office365.com");
    let with_password = load(&[
        ("SMTP_URL", "smtp://alerts:secret@smtp.office365.com:587"),
        ("SMTP_AUTH", "xoauth2"),
    ])
    .expect_err("a password with xoauth2");
    assert!(
        with_password[0].contains("no password"),
        "{with_password:?}"
    );
    assert!(!with_password[0].contains("secret"));
}

#[test]
fn subscriptions_alone_turn_the_sweep_on_with_the_public_resource_manager() {
    let settings = load(&[(
        "SUBSCRIPTIONS",
        "0000000A-0000-0000-0000-000000000001; 0000000a-0000-0000-0000-000000000001,",
    )])
    .expect("valid");
    let sweep = settings.sweep.expect("the sweep is on");
    assert!(sweep.vaults.is_empty());
    assert_eq!(
        sweep.subscriptions,
        ["0000000a-0000-0000-0000-000000000001"],
        "lower case, once"
    );
    assert_eq!(sweep.arm_endpoint.as_str(), "https://management.azure.com/");
}

#[test]
fn a_subscription_name_and_a_clear_text_resource_manager_are_refused_together() {
    let problems = load(&[
        ("SUBSCRIPTIONS", "contoso-prod"),
        ("ARM_ENDPOINT", "http://management.azure.com"),
    ])
    .expect_err("invalid");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("\"contoso-prod\" is not a subscription id"));
    assert!(problems[1].starts_with("ARM_ENDPOINT"));
}

#[test]
fn mail_templates_in_the_app_root_are_read_without_a_setting() {
    let app = tempfile::tempdir().expect("temp dir");
    let root = app.path().to_str().expect("utf-8");
    assert_eq!(
        load(&[("FUNCTIONS_APP_ROOT_PATH", root)])
            .expect("valid")
            .templates_dir,
        None,
        "no folder, no templates"
    );

    std::fs::create_dir(app.path().join("mail-templates")).expect("mkdir");
    let settings = load(&[("FUNCTIONS_APP_ROOT_PATH", root)]).expect("valid");
    assert_eq!(
        settings.templates_dir,
        Some(app.path().join("mail-templates"))
    );

    let chosen = tempfile::tempdir().expect("temp dir");
    let chosen_dir = chosen.path().to_str().expect("utf-8");
    let settings = load(&[
        ("FUNCTIONS_APP_ROOT_PATH", root),
        ("TEMPLATES_DIR", chosen_dir),
    ])
    .expect("valid");
    assert_eq!(
        settings.templates_dir,
        Some(chosen.path().to_owned()),
        "TEMPLATES_DIR wins"
    );
}
