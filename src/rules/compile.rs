//! From rules-file text to [`Routing`]: the TOML shape, and the checks that turn each part
//! into its validated form, collecting every problem with its line.

use super::{Channel, OWNERS, OwnerEntry, Pattern, Routing, Rule, SECURITY, builtin_channels};
use crate::event::{EventType, ObjectKind, without_key_vault_prefix};
use crate::settings::{Settings, add_recipient};
use crate::webhook::Webhook;
use lettre::message::Mailbox;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// Parses and validates rules-file text into routing, collecting every problem.
pub(super) fn routing(
    text: &str,
    origin: &str,
    settings: &Settings,
) -> Result<Routing, Vec<String>> {
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
    let mut rules: Vec<Rule> = raw
        .rules
        .into_iter()
        .filter_map(|r| compile_rule(r, &channels, &mut problems))
        .collect();
    // A vault kv-notify cannot read, and its health notice, must never go unsaid: to the
    // security contacts unless a rule of the file routes them. So must the access changes a
    // rules file written before they were reported does not know of.
    for own in [
        EventType::VaultUnreadable,
        EventType::EntraUnreadable,
        EventType::HealthNotice,
        EventType::VaultRoleAssignmentChanged,
        EventType::VaultSettingsChanged,
    ] {
        if !rules.iter().any(|r| r.events.contains(&own)) {
            rules.push(Rule::builtin(vec![own], SECURITY));
        }
    }
    if !problems.list.is_empty() {
        return Err(problems.list);
    }
    Ok(Routing {
        owners,
        channels,
        rules,
        fallback_owners: settings.owners.clone(),
        origin: origin.to_owned(),
    })
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
                Ok(mailbox) => add_recipient(&mut out, mailbox),
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
    if let (Some(application), true) = (
        &raw.application,
        raw.vault.is_some() || raw.object.is_some(),
    ) {
        problems.at(
            application,
            "an [[owners]] entry names an Entra ID `application` or a `vault` and `object`, not both",
        );
    }
    let mut pattern = |p: Option<Spanned<String>>| match p {
        None => Some(Pattern::any()),
        Some(p) => Pattern::new(p.get_ref())
            .map_err(|e| problems.at(&p, e))
            .ok(),
    };
    let application = raw.application.map(|p| pattern(Some(p)));
    let (vault, object) = (pattern(raw.vault), pattern(raw.object));
    let emails = problems.emails(raw.emails.get_ref());
    if emails.is_empty() && raw.emails.get_ref().is_empty() {
        problems.at(
            &raw.emails,
            "an [[owners]] entry needs at least one address in `emails`",
        );
    }
    Some(OwnerEntry {
        application: match application {
            Some(pattern) => Some(pattern?),
            None => None,
        },
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
        steps: raw.steps,
        notify: raw.notify.into_iter().map(Spanned::into_inner).collect(),
        line: Some(line),
    })
}

/// Resolves a short name, full name or glob to the Key Vault event types it names.
fn event_types(pattern: &str) -> Result<Vec<EventType>, String> {
    let trimmed = pattern.trim();
    let short = without_key_vault_prefix(trimmed).unwrap_or(trimmed);
    // `Reminder`: the sweep's reminders of every kind of object.
    let short = if short.eq_ignore_ascii_case("Reminder") {
        "*Reminder"
    } else {
        short
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
    application: Option<Spanned<String>>,
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
    /// Reminder-ladder steps (days before the expiry) the rule is for.
    steps: Option<Vec<i64>>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}
