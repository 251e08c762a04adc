//! Routing: who hears about which event, and where. Read once from `rules.toml` (or built from
//! the settings when there is no file), validated into [`Routing`], then asked for a [`Plan`]
//! per event.
//!
//! Every problem in the file is reported at once, with its line. Globs (`*`, `?`) match vault
//! names, object names and event types case-insensitively; event patterns are resolved to the
//! ten Key Vault types when the file is loaded, so an event name that matches nothing is an
//! error there, not a silent miss later.

use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::settings::{Settings, same_address};
use crate::webhook::Webhook;
use globset::{GlobBuilder, GlobMatcher};
use lettre::message::Mailbox;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use toml::Spanned;

/// The built-in channel of an event object's owners.
pub const OWNERS: &str = "owners";
/// The built-in channel of the security contacts.
pub const SECURITY: &str = "security";

/// Validated routing.
#[derive(Debug, Clone)]
pub struct Routing {
    owners: Vec<OwnerEntry>,
    channels: BTreeMap<String, Channel>,
    rules: Vec<Rule>,
    /// Where the routing came from, for `check` and `explain`.
    pub origin: String,
}

/// A named destination: mail recipients, a webhook, or both.
#[derive(Debug, Clone, Default)]
pub struct Channel {
    /// Mail recipients.
    pub emails: Vec<Mailbox>,
    /// A webhook.
    pub webhook: Option<Webhook>,
}

#[derive(Debug, Clone)]
struct OwnerEntry {
    vault: Pattern,
    object: Pattern,
    emails: Vec<Mailbox>,
    line: usize,
}

#[derive(Debug, Clone)]
struct Rule {
    events: Vec<EventType>,
    vaults: Option<Vec<Pattern>>,
    objects: Option<Vec<Pattern>>,
    object_types: Option<Vec<ObjectKind>>,
    notify: Vec<String>,
    line: usize,
}

/// A glob and the text it came from.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    fn new(text: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(text.trim())
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("bad glob {text:?}: {}", e.kind()))?;
        Ok(Self {
            text: text.trim().to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    fn any() -> Self {
        Self::new("*").expect("* is a glob")
    }

    fn matches(&self, name: Option<&str>) -> bool {
        self.matcher.is_match(name.unwrap_or_default())
    }
}

/// What one event calls for.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Lines (or names, for the built-in defaults) of the rules that matched.
    pub rules: Vec<String>,
    /// Everyone to mail, without duplicates: one mail goes to all of them.
    pub emails: Vec<Mailbox>,
    /// The mail channels asked for, to explain an empty recipient list.
    pub email_channels: Vec<String>,
    /// Webhook channels to post to, by name.
    pub webhooks: Vec<(String, Webhook)>,
}

impl Routing {
    /// The routing without a rules file: expiry mail to the owners (`OWNER_EMAILS`), access
    /// policy alerts to the security contacts.
    pub fn defaults(settings: &Settings) -> Self {
        let rule = |events: Vec<EventType>, to: &str, line| Rule {
            events,
            vaults: None,
            objects: None,
            object_types: None,
            notify: vec![to.to_owned()],
            line,
        };
        let of = |f: fn(ObjectKind) -> EventType| ObjectKind::ALL.into_iter().map(f).collect();
        Self {
            owners: Vec::new(),
            channels: builtin_channels(settings),
            rules: vec![
                rule(of(EventType::NearExpiry), OWNERS, 0),
                rule(of(EventType::Expired), OWNERS, 0),
                rule(vec![EventType::VaultAccessPolicyChanged], SECURITY, 0),
            ],
            origin: "built-in defaults (no rules file)".to_owned(),
        }
    }

    /// Reads and validates a rules file.
    pub fn load(path: &Path, settings: &Settings) -> Result<Self, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("RULES_FILE: cannot read {}: {e}", path.display())])?;
        Self::parse(&text, &path.display().to_string(), settings)
    }

    /// Validates rules-file text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str, settings: &Settings) -> Result<Self, Vec<String>> {
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(String::new(), |s| format!(":{}", at(s)));
            vec![format!("{origin}{line}: {}", e.message())]
        })?;
        let mut problems = Problems {
            origin,
            text,
            list: Vec::new(),
        };
        let mut channels = builtin_channels(settings);
        for (name, raw_channel) in raw.channels {
            if let Some(channel) = compile_channel(&name, raw_channel, &mut problems) {
                channels.insert(name, channel);
            }
        }
        let owners = raw
            .owners
            .into_iter()
            .filter_map(|o| compile_owner(o, &mut problems))
            .collect();
        let rules = raw
            .rules
            .into_iter()
            .filter_map(|r| compile_rule(r, &channels, &mut problems))
            .collect();
        if !problems.list.is_empty() {
            return Err(problems.list);
        }
        Ok(Self {
            owners,
            channels,
            rules,
            origin: origin.to_owned(),
        })
    }

    /// What an event calls for: every matching rule applies, and a recipient reached twice
    /// is mailed once.
    pub fn plan(&self, event: &KeyVaultEvent, settings: &Settings) -> Plan {
        let mut plan = Plan::default();
        let mut notify: Vec<&str> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(event)) {
            plan.rules.push(rule.describe());
            for name in &rule.notify {
                if !notify.contains(&name.as_str()) {
                    notify.push(name);
                }
            }
        }
        for name in notify {
            let (emails, webhook) = match name {
                OWNERS => (self.owners_of(event, settings), None),
                _ => match self.channels.get(name) {
                    Some(channel) => (channel.emails.clone(), channel.webhook.clone()),
                    None => continue,
                },
            };
            if name == OWNERS || !emails.is_empty() || webhook.is_none() {
                plan.email_channels.push(name.to_owned());
            }
            for mailbox in emails {
                if !plan.emails.iter().any(|m| same_address(m, &mailbox)) {
                    plan.emails.push(mailbox);
                }
            }
            if let Some(webhook) = webhook {
                plan.webhooks.push((name.to_owned(), webhook));
            }
        }
        plan
    }

    /// Whether the rules file names owners.
    pub fn has_owner_entries(&self) -> bool {
        !self.owners.is_empty()
    }

    /// The owners of the event's object: the first matching `[[owners]]` entry, else
    /// `OWNER_EMAILS`.
    fn owners_of(&self, event: &KeyVaultEvent, settings: &Settings) -> Vec<Mailbox> {
        self.owners
            .iter()
            .find(|o| {
                o.vault.matches(event.vault.as_deref()) && o.object.matches(event.object.as_deref())
            })
            .map_or_else(|| settings.owners.clone(), |o| o.emails.clone())
    }

    /// The effective routing, for `kv-notify check`.
    pub fn describe(&self, settings: &Settings) -> String {
        let mut out = format!(
            "routing from {}\n\nowners (first match wins):\n",
            self.origin
        );
        for owner in &self.owners {
            let _ = writeln!(
                out,
                "  line {:>3}: vault {} object {} -> {}",
                owner.line,
                owner.vault.text,
                owner.object.text,
                list(&owner.emails)
            );
        }
        let _ = writeln!(
            out,
            "  otherwise: OWNER_EMAILS -> {}",
            list(&settings.owners)
        );
        out.push_str("\nchannels:\n");
        let _ = writeln!(out, "  {OWNERS}: the owners matched above");
        for (name, channel) in &self.channels {
            let _ = writeln!(out, "  {name}: {}", channel.describe());
        }
        out.push_str("\nevents:\n");
        for event_type in EventType::all() {
            let targets: Vec<String> = self
                .rules
                .iter()
                .filter(|r| r.events.contains(&event_type))
                .map(|r| format!("{}{}", r.notify.join(", "), r.filters()))
                .collect();
            let targets = if targets.is_empty() {
                "recorded only".to_owned()
            } else {
                targets.join("; ")
            };
            let _ = writeln!(out, "  {:<30} -> {targets}", event_type.short_name());
        }
        out
    }
}

impl Channel {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.emails.is_empty() || self.webhook.is_none() {
            parts.push(format!("email {}", list(&self.emails)));
        }
        if let Some(webhook) = &self.webhook {
            parts.push(webhook.to_string());
        }
        parts.join(" + ")
    }
}

impl Rule {
    fn matches(&self, event: &KeyVaultEvent) -> bool {
        let any = |patterns: &Option<Vec<Pattern>>, name: Option<&str>| {
            patterns
                .as_ref()
                .is_none_or(|p| p.iter().any(|p| p.matches(name)))
        };
        self.events.contains(&event.event_type)
            && any(&self.vaults, event.vault.as_deref())
            && any(&self.objects, event.object.as_deref())
            && self.object_types.as_ref().is_none_or(|kinds| {
                let sent = event.object_type.as_deref().unwrap_or_default();
                kinds.iter().any(|k| k.as_str().eq_ignore_ascii_case(sent))
            })
    }

    fn describe(&self) -> String {
        if self.line == 0 {
            format!("default: -> {}", self.notify.join(", "))
        } else {
            format!(
                "line {}: -> {}{}",
                self.line,
                self.notify.join(", "),
                self.filters()
            )
        }
    }

    fn filters(&self) -> String {
        let texts = |p: &Option<Vec<Pattern>>| {
            p.as_ref().map(|p| {
                p.iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let mut out = String::new();
        if let Some(vaults) = texts(&self.vaults) {
            let _ = write!(out, " (vaults {vaults})");
        }
        if let Some(objects) = texts(&self.objects) {
            let _ = write!(out, " (objects {objects})");
        }
        if let Some(kinds) = &self.object_types {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            let _ = write!(out, " (objectTypes {})", names.join(", "));
        }
        out
    }
}

fn builtin_channels(settings: &Settings) -> BTreeMap<String, Channel> {
    let security = Channel {
        emails: settings.security.clone(),
        webhook: settings.alert_webhook.clone(),
    };
    BTreeMap::from([(SECURITY.to_owned(), security)])
}

fn list(mailboxes: &[Mailbox]) -> String {
    if mailboxes.is_empty() {
        return "(nobody)".to_owned();
    }
    mailboxes
        .iter()
        .map(|m| m.email.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Collects problems with their line in the file.
struct Problems<'a> {
    origin: &'a str,
    text: &'a str,
    list: Vec<String>,
}

impl Problems<'_> {
    fn at<T>(&mut self, spanned: &Spanned<T>, message: impl std::fmt::Display) {
        let line = line_of(self.text, spanned.span().start);
        self.list.push(format!("{}:{line}: {message}", self.origin));
    }

    fn line<T>(&self, spanned: &Spanned<T>) -> usize {
        line_of(self.text, spanned.span().start)
    }

    fn emails(&mut self, raw: &[Spanned<String>]) -> Vec<Mailbox> {
        let mut out: Vec<Mailbox> = Vec::new();
        for entry in raw {
            match entry.get_ref().trim().parse::<Mailbox>() {
                Ok(mailbox) if !out.iter().any(|m| same_address(m, &mailbox)) => out.push(mailbox),
                Ok(_) => {}
                Err(_) => self.at(
                    entry,
                    format!("{:?} is not an email address", entry.get_ref()),
                ),
            }
        }
        out
    }

    fn patterns(&mut self, raw: &[Spanned<String>]) -> Vec<Pattern> {
        raw.iter()
            .filter_map(|p| Pattern::new(p.get_ref()).map_err(|e| self.at(p, e)).ok())
            .collect()
    }
}

fn compile_channel(
    name: &str,
    raw: Spanned<RawChannel>,
    problems: &mut Problems<'_>,
) -> Option<Channel> {
    if name == OWNERS || name == SECURITY {
        problems.at(
            &raw,
            format!("channel {name:?} is built in: choose another name"),
        );
        return None;
    }
    let line = problems.line(&raw);
    let RawChannel {
        webhook,
        format,
        email,
    } = raw.into_inner();
    if webhook.is_none() && email.as_ref().is_none_or(Vec::is_empty) {
        problems.list.push(format!(
            "{}:{line}: channel {name:?} needs `webhook` or `email`",
            problems.origin
        ));
        return None;
    }
    if let (None, Some(format)) = (&webhook, &format) {
        problems.at(format, "`format` only applies to a webhook");
    }
    let emails = problems.emails(email.as_deref().unwrap_or_default());
    let webhook = webhook.and_then(|url| {
        let format = format.as_ref().map(|f| f.get_ref().as_str());
        Webhook::parse(url.get_ref(), format)
            .map_err(|e| problems.at(&url, format!("channel {name:?}: webhook {e}")))
            .ok()
    });
    Some(Channel { emails, webhook })
}

fn compile_owner(raw: RawOwner, problems: &mut Problems<'_>) -> Option<OwnerEntry> {
    let line = problems.line(&raw.emails);
    let mut pattern = |p: Option<Spanned<String>>| match p {
        None => Some(Pattern::any()),
        Some(p) => Pattern::new(p.get_ref())
            .map_err(|e| problems.at(&p, e))
            .ok(),
    };
    let (vault, object) = (pattern(raw.vault), pattern(raw.object));
    let emails = problems.emails(raw.emails.get_ref());
    if emails.is_empty() && raw.emails.get_ref().is_empty() {
        problems.at(
            &raw.emails,
            "an [[owners]] entry needs at least one address in `emails`",
        );
    }
    Some(OwnerEntry {
        vault: vault?,
        object: object?,
        emails,
        line,
    })
}

fn compile_rule(
    raw: Spanned<RawRule>,
    channels: &BTreeMap<String, Channel>,
    problems: &mut Problems<'_>,
) -> Option<Rule> {
    let line = problems.line(&raw);
    let raw = raw.into_inner();
    let mut events = Vec::new();
    for pattern in &raw.events {
        match event_types(pattern.get_ref()) {
            Ok(types) => events.extend(
                types
                    .into_iter()
                    .filter(|t| !events.contains(t))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => problems.at(pattern, e),
        }
    }
    if raw.events.is_empty() {
        problems.list.push(format!(
            "{}:{line}: a rule needs at least one entry in `events`",
            problems.origin
        ));
    }
    if raw.notify.is_empty() {
        problems.list.push(format!(
            "{}:{line}: a rule needs at least one channel in `notify`",
            problems.origin
        ));
    }
    for name in &raw.notify {
        if name.get_ref() != OWNERS && !channels.contains_key(name.get_ref()) {
            let known: Vec<&str> = std::iter::once(OWNERS)
                .chain(channels.keys().map(String::as_str))
                .collect();
            problems.at(
                name,
                format!(
                    "unknown channel {:?} (known: {})",
                    name.get_ref(),
                    known.join(", ")
                ),
            );
        }
    }
    let object_types = raw.object_types.as_ref().map(|kinds| {
        kinds
            .iter()
            .filter_map(|k| {
                let found = ObjectKind::ALL
                    .into_iter()
                    .find(|o| o.as_str().eq_ignore_ascii_case(k.get_ref().trim()));
                if found.is_none() {
                    problems.at(
                        k,
                        format!(
                            "unknown object type {:?}: use Secret, Key or Certificate",
                            k.get_ref()
                        ),
                    );
                }
                found
            })
            .collect()
    });
    Some(Rule {
        events,
        vaults: raw.vaults.as_deref().map(|p| problems.patterns(p)),
        objects: raw.objects.as_deref().map(|p| problems.patterns(p)),
        object_types,
        notify: raw.notify.into_iter().map(Spanned::into_inner).collect(),
        line,
    })
}

/// Resolves a short name, full name or glob to the Key Vault event types it names.
fn event_types(pattern: &str) -> Result<Vec<EventType>, String> {
    let trimmed = pattern.trim();
    let prefix = "Microsoft.KeyVault.";
    let short = match trimmed.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &trimmed[prefix.len()..],
        _ => trimmed,
    };
    let glob = Pattern::new(short)?;
    let types: Vec<EventType> = EventType::all()
        .filter(|t| glob.matches(Some(t.short_name())))
        .collect();
    if types.is_empty() {
        return Err(format!(
            "unknown event name {pattern:?}: no Key Vault event type matches it"
        ));
    }
    Ok(types)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    owners: Vec<RawOwner>,
    #[serde(default)]
    channels: BTreeMap<String, Spanned<RawChannel>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOwner {
    vault: Option<Spanned<String>>,
    object: Option<Spanned<String>>,
    emails: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    webhook: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    email: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    events: Vec<Spanned<String>>,
    vaults: Option<Vec<Spanned<String>>>,
    objects: Option<Vec<Spanned<String>>>,
    #[serde(rename = "objectTypes")]
    object_types: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::sample;
    use crate::event::ObjectKind::{Certificate, Key, Secret};

    const EXAMPLE: &str = include_str!("../examples/rules.toml");

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
        routing.plan(
            &event,
            &settings(&[("OWNER_EMAILS", "fallback@contoso.com")]),
        )
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
        let problems =
            Routing::parse(text, "rules.toml", &settings(&[])).expect_err("five problems");
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

        assert_eq!(
            emails(&routing.plan(&expiring, &settings)),
            ["o@contoso.com"]
        );
        let policy = routing.plan(&policy, &settings);
        assert_eq!(
            (emails(&policy), hooks(&policy)),
            (vec!["s@contoso.com".to_owned()], vec!["security"])
        );
        assert!(routing.plan(&rotation, &settings).rules.is_empty());
    }
}
