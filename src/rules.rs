//! Routing: who hears about which event, and where. Read once from `rules.toml` (or built from
//! the settings when there is no file), validated into [`Routing`], then asked for a [`Plan`]
//! per event.
//!
//! Every problem in the file is reported at once, with its line. Globs (`*`, `?`) match vault
//! names, object names and event types case-insensitively; event patterns are resolved to the
//! ten Key Vault types when the file is loaded, so an event name that matches nothing is an
//! error there, not a silent miss later.

use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::settings::Settings;
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
                if !plan.emails.iter().any(|m| m.email == mailbox.email) {
                    plan.emails.push(mailbox);
                }
            }
            if let Some(webhook) = webhook {
                plan.webhooks.push((name.to_owned(), webhook));
            }
        }
        plan
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
                Ok(mailbox) if !out.iter().any(|m| m.email == mailbox.email) => out.push(mailbox),
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
        .filter(|t| glob.matches(Some(&t.short_name())))
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
