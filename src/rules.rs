//! Routing: who hears about which event, and where. Read once from `rules.toml` (or built from
//! the settings when there is no file), validated into [`Routing`], then asked for a [`Plan`]
//! per event.
//!
//! Every problem in the file is reported at once, with its line. Globs (`*`, `?`) match vault
//! names, object names and event types case-insensitively; event patterns are resolved to the
//! ten Key Vault types when the file is loaded, so an event name that matches nothing is an
//! error there, not a silent miss later.

use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::settings::{Settings, add_recipient};
use crate::webhook::Webhook;
use globset::{GlobBuilder, GlobMatcher};
use lettre::message::Mailbox;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

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
    /// The owners of an object no `[[owners]]` entry matches (`OWNER_EMAILS`).
    fallback_owners: Vec<Mailbox>,
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
    /// For an Entra ID application's notices: its display name or application id. An entry
    /// with one is for those notices alone, an entry without one for vault objects alone.
    application: Option<Pattern>,
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
    /// Only these reminder steps: an alert that is no step of the ladder does not match.
    steps: Option<Vec<i64>>,
    notify: Vec<String>,
    /// The rules-file line; `None` for a built-in default.
    line: Option<usize>,
}

impl Rule {
    /// A built-in rule: `events` to the channel `to`, whatever the vault or object.
    fn builtin(events: Vec<EventType>, to: &str) -> Self {
        Self {
            events,
            vaults: None,
            objects: None,
            object_types: None,
            steps: None,
            notify: vec![to.to_owned()],
            line: None,
        }
    }
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

    /// Whether the pattern is only stars: it matches every name.
    fn matches_everything(&self) -> bool {
        !self.text.is_empty() && self.text.chars().all(|c| c == '*')
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
        let rule = Rule::builtin;
        let of = |f: fn(ObjectKind) -> EventType| ObjectKind::ALL.into_iter().map(f).collect();
        Self {
            owners: Vec::new(),
            channels: builtin_channels(settings),
            rules: vec![
                rule(of(EventType::NearExpiry), OWNERS),
                rule(of(EventType::Expired), OWNERS),
                rule(of(EventType::Reminder), OWNERS),
                rule(vec![EventType::AppCredentialReminder], OWNERS),
                rule(
                    vec![
                        EventType::VaultAccessPolicyChanged,
                        EventType::VaultRoleAssignmentChanged,
                        EventType::VaultSettingsChanged,
                    ],
                    SECURITY,
                ),
                rule(vec![EventType::VaultUnreadable], SECURITY),
                rule(vec![EventType::EntraUnreadable], SECURITY),
                rule(vec![EventType::HealthNotice], SECURITY),
            ],
            fallback_owners: settings.owners.clone(),
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
        compile::routing(text, origin, settings)
    }

    /// What an event calls for: every matching rule applies, and a recipient reached twice
    /// is mailed once.
    pub fn plan(&self, event: &KeyVaultEvent) -> Plan {
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
                OWNERS => (self.owners_of(event), None),
                _ => match self.channels.get(name) {
                    Some(channel) => (channel.emails.clone(), channel.webhook.clone()),
                    None => continue,
                },
            };
            if name == OWNERS || !emails.is_empty() || webhook.is_none() {
                plan.email_channels.push(name.to_owned());
            }
            for mailbox in emails {
                add_recipient(&mut plan.emails, mailbox);
            }
            if let Some(webhook) = webhook {
                plan.webhooks.push((name.to_owned(), webhook));
            }
        }
        plan
    }

    /// Whether some rule sends mail: to the owners (whose addresses an owner tag may give), or
    /// to a channel with addresses.
    pub fn sends_mail(&self) -> bool {
        self.rules.iter().flat_map(|rule| &rule.notify).any(|name| {
            name == OWNERS
                || self
                    .channels
                    .get(name)
                    .is_some_and(|channel| !channel.emails.is_empty())
        })
    }

    /// Whether some rule sends events of `event_type` somewhere (to some vaults, objects or
    /// steps at least).
    pub fn routes(&self, event_type: EventType) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.events.contains(&event_type))
    }

    /// The channels that post to a webhook, by name.
    pub fn webhooks(&self) -> impl Iterator<Item = (&str, &Webhook)> {
        self.channels
            .iter()
            .filter_map(|(name, channel)| Some((name.as_str(), channel.webhook.as_ref()?)))
    }

    /// Why the mail of `plan` reaches its recipients, and how to change who gets it: one clause
    /// per mail channel (`Why you got this: …`). Empty when the plan mails nobody.
    pub fn why(&self, event: &KeyVaultEvent, plan: &Plan) -> String {
        let clauses: Vec<String> = plan
            .email_channels
            .iter()
            .map(|channel| match channel.as_str() {
                OWNERS => match self.owner_source(event).as_str() {
                    "tag" => "its owner tag (OWNER_TAG, on the object or its vault) names you; \
                              change the tag to change who is told"
                        .to_owned(),
                    "OWNER_EMAILS" => "you are in OWNER_EMAILS, the owners of every object no \
                                       owner tag or [[owners]] entry assigns; an owner tag on \
                                       the object sends its mail to its own team instead"
                        .to_owned(),
                    entry => format!(
                        "{entry} of the rules file names you as its owner; edit that entry to \
                         change who is told"
                    ),
                },
                SECURITY => "you are a security contact (SECURITY_EMAILS)".to_owned(),
                other => format!("you are on channel {other} of the rules file"),
            })
            .collect();
        if clauses.is_empty() {
            return String::new();
        }
        format!("Why you got this: {}.", clauses.join("; "))
    }

    /// Every channel a test alert goes through, by name, with its addresses and webhook: the
    /// owners channel's addresses are `OWNER_EMAILS` and those of the `[[owners]]` entries.
    pub fn test_targets(&self) -> Vec<(String, Vec<Mailbox>, Option<Webhook>)> {
        let mut owners = Vec::new();
        for mailbox in self
            .fallback_owners
            .iter()
            .chain(self.owners.iter().flat_map(|o| &o.emails))
        {
            add_recipient(&mut owners, mailbox.clone());
        }
        let mut targets = Vec::new();
        if !owners.is_empty() {
            targets.push((OWNERS.to_owned(), owners, None));
        }
        for (name, channel) in &self.channels {
            if !channel.emails.is_empty() || channel.webhook.is_some() {
                targets.push((
                    name.clone(),
                    channel.emails.clone(),
                    channel.webhook.clone(),
                ));
            }
        }
        targets
    }

    /// Whether the rules file names owners.
    pub fn has_owner_entries(&self) -> bool {
        !self.owners.is_empty()
    }

    /// The line of an `[[owners]]` entry that matches every vault and object, if any: past it,
    /// `OWNER_EMAILS` is never used.
    pub fn catch_all_owner(&self) -> Option<usize> {
        self.owners
            .iter()
            .find(|o| {
                o.application.is_none()
                    && o.vault.matches_everything()
                    && o.object.matches_everything()
            })
            .map(|o| o.line)
    }

    /// The owners of the event's object: the first matching `[[owners]]` entry, else
    /// `OWNER_EMAILS`.
    fn owners_of(&self, event: &KeyVaultEvent) -> Vec<Mailbox> {
        if let Some(owners) = event.tag_owners.as_ref().filter(|o| !o.is_empty()) {
            return owners.clone();
        }
        self.owner_entry(event)
            .map_or_else(|| self.fallback_owners.clone(), |o| o.emails.clone())
    }

    fn owner_entry(&self, event: &KeyVaultEvent) -> Option<&OwnerEntry> {
        let app_id = event.application.as_ref().map(|a| a.app_id.as_str());
        self.owners.iter().find(|o| match (&o.application, app_id) {
            (Some(application), Some(app_id)) => {
                application.matches(event.vault.as_deref()) || application.matches(Some(app_id))
            }
            (None, None) => {
                o.vault.matches(event.vault.as_deref()) && o.object.matches(event.object.as_deref())
            }
            _ => false,
        })
    }

    /// Where the event's owners come from, in words (`inventory`).
    pub fn owner_source(&self, event: &KeyVaultEvent) -> String {
        if event.tag_owners.as_ref().is_some_and(|o| !o.is_empty()) {
            return "tag".to_owned();
        }
        match self.owner_entry(event) {
            Some(entry) => format!("[[owners]] line {}", entry.line),
            None => "OWNER_EMAILS".to_owned(),
        }
    }

    /// Every address the routing mails: the domains an owner tag may name.
    pub fn mailboxes(&self) -> impl Iterator<Item = &Mailbox> {
        self.owners
            .iter()
            .flat_map(|o| &o.emails)
            .chain(self.channels.values().flat_map(|c| &c.emails))
            .chain(&self.fallback_owners)
    }

    /// The effective routing, for `kv-notify check`.
    pub fn describe(&self) -> String {
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
        match self.catch_all_owner() {
            Some(line) => {
                let _ = writeln!(
                    out,
                    "  (line {line} matches every object: OWNER_EMAILS is not used)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  otherwise: OWNER_EMAILS -> {}",
                    list(&self.fallback_owners)
                );
            }
        }
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
            && self.steps.as_ref().is_none_or(|steps| {
                event
                    .reminder
                    .is_some_and(|reminder| steps.contains(&reminder.step))
            })
    }

    fn describe(&self) -> String {
        match self.line {
            None => format!("default: -> {}", self.notify.join(", ")),
            Some(line) => format!(
                "line {line}: -> {}{}",
                self.notify.join(", "),
                self.filters()
            ),
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
        if let Some(steps) = &self.steps {
            let steps: Vec<String> = steps.iter().map(ToString::to_string).collect();
            let _ = write!(out, " (steps {})", steps.join(", "));
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

mod compile;
#[cfg(test)]
mod tests;
