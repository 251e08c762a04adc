//! The routing rules, from the documented example to every error `check` reports.

use super::*;
use crate::alert::tests::sample;
use crate::event::ObjectKind::{Certificate, Key, Secret};

const EXAMPLE: &str = include_str!("../../examples/rules.toml");

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let (settings, problems) = Settings::parse(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    });
    assert!(problems.is_empty(), "{problems:?}");
    settings
}

fn routing(text: &str) -> Routing {
    Routing::parse(
        text,
        "rules.toml",
        &settings(&[("OWNER_EMAILS", "fallback@contoso.com")]),
    )
    .expect("valid rules")
}

fn plan(routing: &Routing, event_type: EventType, vault: &str, object: &str) -> Plan {
    let (mut event, _) = sample(event_type, object, Some(5));
    event.vault = Some(vault.to_owned());
    routing.plan(&event)
}

fn emails(plan: &Plan) -> Vec<String> {
    plan.emails.iter().map(|m| m.email.to_string()).collect()
}

fn hooks(plan: &Plan) -> Vec<&str> {
    plan.webhooks
        .iter()
        .map(|(name, _)| name.as_str())
        .collect()
}

#[test]
fn the_documented_example_routes_as_described() {
    let routing = routing(EXAMPLE);

    let db = plan(
        &routing,
        EventType::NearExpiry(Secret),
        "prod-kv",
        "db-password",
    );
    let other = plan(&routing, EventType::NearExpiry(Key), "dev-kv", "signing");
    let expired = plan(&routing, EventType::Expired(Certificate), "prod-kv", "www");
    let policy_prod = plan(
        &routing,
        EventType::VaultAccessPolicyChanged,
        "prod-kv",
        "prod-kv",
    );
    let policy_dev = plan(
        &routing,
        EventType::VaultAccessPolicyChanged,
        "dev-kv",
        "dev-kv",
    );
    let rotation = plan(
        &routing,
        EventType::NewVersionCreated(Secret),
        "prod-kv",
        "db-password",
    );

    assert_eq!(
        emails(&db),
        ["dba@contoso.com"],
        "the first matching owner entry wins"
    );
    assert_eq!(emails(&other), ["platform@contoso.com"]);
    assert_eq!(
        (emails(&expired), hooks(&expired)),
        (vec!["platform@contoso.com".to_owned()], vec!["audit-json"])
    );
    assert_eq!(emails(&policy_prod), ["secops@contoso.com"]);
    assert_eq!(hooks(&policy_prod), ["secops-teams", "secops-slack"]);
    assert!(policy_dev.email_channels.is_empty() && policy_dev.webhooks.is_empty());
    assert!(rotation.rules.is_empty());
}

#[test]
fn guessed_and_given_formats_are_kept() {
    let routing = routing(EXAMPLE);
    let policy = plan(
        &routing,
        EventType::VaultAccessPolicyChanged,
        "prod-kv",
        "prod-kv",
    );
    let formats: Vec<&str> = policy
        .webhooks
        .iter()
        .map(|(_, w)| w.format.as_str())
        .collect();
    assert_eq!(formats, ["teams", "slack"]);
}

#[test]
fn without_a_matching_owner_entry_owners_fall_back_to_owner_emails() {
    let routing = routing(
        "[[owners]]\nvault = \"prod-*\"\nemails = [\"p@contoso.com\"]\n[[rules]]\nevents = [\"*NearExpiry\"]\nnotify = [\"owners\"]\n",
    );
    assert_eq!(
        emails(&plan(
            &routing,
            EventType::NearExpiry(Secret),
            "dev-kv",
            "x"
        )),
        ["fallback@contoso.com"]
    );
    assert_eq!(
        emails(&plan(
            &routing,
            EventType::NearExpiry(Secret),
            "PROD-kv",
            "x"
        )),
        ["p@contoso.com"],
        "globs ignore case"
    );
}

#[test]
fn events_take_short_names_full_names_and_globs() {
    for pattern in [
        "KeyExpired",
        "Microsoft.KeyVault.KeyExpired",
        "Key*",
        "*Expired",
        "microsoft.keyvault.k?yexpired",
    ] {
        let text = format!("[[rules]]\nevents = [\"{pattern}\"]\nnotify = [\"owners\"]\n");
        assert!(
            !plan(&routing(&text), EventType::Expired(Key), "v", "o")
                .rules
                .is_empty(),
            "{pattern}"
        );
    }
}

#[test]
fn object_and_object_type_filters_narrow_a_rule() {
    let text = "[[rules]]\nevents = [\"*\"]\nobjects = [\"tls-*\"]\nobjectTypes = [\"Certificate\"]\nnotify = [\"owners\"]\n";
    let routing = routing(text);
    assert!(
        !plan(&routing, EventType::Expired(Certificate), "v", "tls-www")
            .rules
            .is_empty()
    );
    assert!(
        plan(&routing, EventType::Expired(Certificate), "v", "api")
            .rules
            .is_empty()
    );
    assert!(
        plan(&routing, EventType::Expired(Secret), "v", "tls-www")
            .rules
            .is_empty()
    );
}

#[test]
fn a_recipient_reached_through_two_rules_is_listed_once() {
    let text = "[channels.a]\nemail = [\"x@contoso.com\", \"y@contoso.com\"]\n[channels.b]\nemail = [\"X@contoso.com\"]\n\
                [[rules]]\nevents = [\"SecretExpired\"]\nnotify = [\"a\"]\n[[rules]]\nevents = [\"*Expired\"]\nnotify = [\"b\", \"a\"]\n";
    let plan = plan(&routing(text), EventType::Expired(Secret), "v", "o");
    assert_eq!(plan.rules.len(), 2);
    assert_eq!(emails(&plan), ["x@contoso.com", "y@contoso.com"]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    let text = "[channels.hook]\nwebhook = \"ftp://x\"\n\
                [channels.mail]\nemail = [\"not-an-address\"]\n\
                [[owners]]\nvault = \"prod-[\"\nemails = [\"a@contoso.com\"]\n\
                [[rules]]\nevents = [\"SecretExploded\"]\nnotify = [\"nobody\"]\n";
    let problems = Routing::parse(text, "rules.toml", &settings(&[])).expect_err("five problems");
    let expected = [
        ("rules.toml:2:", "webhook"),
        ("rules.toml:4:", "not an email address"),
        ("rules.toml:6:", "bad glob"),
        ("rules.toml:9:", "unknown event name"),
        ("rules.toml:10:", "unknown channel \"nobody\""),
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (line, message) in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(line) && p.contains(message)),
            "{line} {message}: {problems:#?}"
        );
    }
}

#[test]
fn syntax_errors_and_unknown_keys_name_their_line() {
    let unknown = Routing::parse(
        "[[rules]]\nevents = [\"*\"]\nnotfy = [\"owners\"]\n",
        "r.toml",
        &settings(&[]),
    )
    .expect_err("typo");
    assert!(
        unknown[0].starts_with("r.toml:3:") && unknown[0].contains("notfy"),
        "{unknown:?}"
    );
    let broken = Routing::parse("[[rules]\n", "r.toml", &settings(&[])).expect_err("syntax");
    assert!(broken[0].starts_with("r.toml:1:"), "{broken:?}");
}

#[test]
fn built_in_channel_names_cannot_be_redefined() {
    let problems = Routing::parse(
        "[channels.security]\nemail = [\"a@b.com\"]\n",
        "r.toml",
        &settings(&[]),
    )
    .expect_err("reserved");
    assert!(problems[0].contains("built in"), "{problems:?}");
}

#[test]
fn the_defaults_mail_owners_and_security_and_alert_webhook() {
    let settings = settings(&[
        ("OWNER_EMAILS", "o@contoso.com"),
        ("SECURITY_EMAILS", "s@contoso.com"),
        ("ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/x"),
    ]);
    let routing = Routing::defaults(&settings);
    let (expiring, _) = sample(EventType::NearExpiry(Secret), "o", Some(3));
    let (policy, _) = sample(EventType::VaultAccessPolicyChanged, "v", None);
    let (rotation, _) = sample(EventType::NewVersionCreated(Key), "k", None);

    assert_eq!(emails(&routing.plan(&expiring)), ["o@contoso.com"]);
    let policy = routing.plan(&policy);
    assert_eq!(
        (emails(&policy), hooks(&policy)),
        (vec!["s@contoso.com".to_owned()], vec!["security"])
    );
    assert!(routing.plan(&rotation).rules.is_empty());
}

#[test]
fn a_catch_all_owners_entry_makes_the_owner_emails_fallback_unreachable() {
    let with_catch_all = routing(
        "[[owners]]\nvault = \"prod-*\"\nemails = [\"a@contoso.com\"]\n\n\
         [[owners]]\nvault = \"*\"\nemails = [\"b@contoso.com\"]\n",
    );
    let without = routing("[[owners]]\nvault = \"prod-*\"\nemails = [\"a@contoso.com\"]\n");

    let line = with_catch_all.catch_all_owner().expect("the second entry");
    assert_eq!(without.catch_all_owner(), None);
    let described = with_catch_all.describe();
    assert!(
        !described.contains("otherwise: OWNER_EMAILS"),
        "{described}"
    );
    assert!(
        described.contains(&format!("line {line} matches every object")),
        "{described}"
    );
    let described = without.describe();
    assert!(described.contains("otherwise: OWNER_EMAILS"), "{described}");
}

#[test]
fn owners_from_a_tag_come_before_owner_entries_which_come_before_owner_emails() {
    let routing = routing(
        "[[owners]]\nvault = \"prod-*\"\nemails = [\"p@contoso.com\"]\n[[rules]]\nevents = [\"*NearExpiry\"]\nnotify = [\"owners\"]\n",
    );
    let (mut event, _) = sample(EventType::NearExpiry(Secret), "db", Some(5));
    event.vault = Some("prod-kv".to_owned());
    assert_eq!(emails(&routing.plan(&event)), ["p@contoso.com"]);
    // The entry's `emails` line, as `check` names it.
    assert_eq!(routing.owner_source(&event), "[[owners]] line 3");

    event.tag_owners = Some(vec!["ann@contoso.com".parse().expect("mailbox")]);
    assert_eq!(emails(&routing.plan(&event)), ["ann@contoso.com"]);
    assert_eq!(routing.owner_source(&event), "tag");

    event.tag_owners = Some(Vec::new());
    event.vault = Some("dev-kv".to_owned());
    assert_eq!(
        emails(&routing.plan(&event)),
        ["fallback@contoso.com"],
        "a tag that names nobody usable leaves the rules' owners"
    );
    assert_eq!(routing.owner_source(&event), "OWNER_EMAILS");
}

#[test]
fn a_rules_file_without_a_rule_for_unreadable_vaults_still_sends_them_to_security() {
    let silent = routing("[[rules]]\nevents = [\"*NearExpiry\"]\nnotify = [\"owners\"]\n");
    let (event, _) = sample(EventType::VaultUnreadable, "", None);
    assert!(
        silent
            .plan(&event)
            .email_channels
            .contains(&SECURITY.to_owned())
    );
}

#[test]
fn a_rules_file_that_knows_no_access_changes_still_sends_them_to_security() {
    let older =
        routing("[[rules]]\nevents = [\"VaultAccessPolicyChanged\"]\nnotify = [\"security\"]\n");
    for event_type in [
        EventType::VaultRoleAssignmentChanged,
        EventType::VaultSettingsChanged,
    ] {
        let (event, _) = sample(event_type, "", None);
        assert!(
            older
                .plan(&event)
                .email_channels
                .contains(&SECURITY.to_owned()),
            "{event_type}"
        );
    }
    let routed = routing(
        "[channels.sec]\nemail = [\"sec@contoso.com\"]\n\n[[rules]]\nevents = [\"VaultSettingsChanged\"]\nnotify = [\"sec\"]\n",
    );
    let (event, _) = sample(EventType::VaultSettingsChanged, "", None);
    assert_eq!(
        routed.plan(&event).email_channels,
        ["sec"],
        "a rule of the file wins"
    );
}
