//! Renders an [`Alert`] as a mail: subject, plain text and HTML, from templates.
//!
//! The built-in templates live in `templates/`; files of the same names in `TEMPLATES_DIR`
//! replace them. The HTML template is auto-escaped by minijinja, so a name holding markup shows
//! as text; undefined variables are errors, so a typo in a custom template is caught by
//! `kv-notify check` rather than sent. Recipients and sender come from settings only.

use crate::alert::Alert;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use minijinja::{Environment, UndefinedBehavior};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A rendered mail, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line: one line, no control characters.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// A template failed to load or render.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct TemplateError(#[from] minijinja::Error);

/// Renders mails from the built-in or custom templates.
pub struct Composer {
    templates: Environment<'static>,
}

impl Default for Composer {
    fn default() -> Self {
        let mut templates = environment();
        for (name, source) in builtin() {
            templates
                .add_template(name, source)
                .expect("the built-in templates parse");
        }
        Self { templates }
    }
}

impl Composer {
    /// Loads the templates, taking each from `dir` when it holds a file of that name.
    /// Returns every problem found (unreadable file, syntax error).
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<String>> {
        let mut templates = environment();
        let mut problems = Vec::new();
        for (name, builtin) in builtin() {
            let custom = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source = match &custom {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => text,
                    Err(e) => {
                        problems.push(format!(
                            "TEMPLATES_DIR: cannot read {}: {e}",
                            path.display()
                        ));
                        continue;
                    }
                },
                None => builtin.to_owned(),
            };
            if let Err(e) = templates.add_template_owned(name, source) {
                problems.push(format!("TEMPLATES_DIR: {name}: {}", TemplateError(e)));
            }
        }
        if problems.is_empty() {
            Ok(Self { templates })
        } else {
            Err(problems)
        }
    }

    /// Renders the mail for an alert.
    pub fn render(&self, alert: &Alert) -> Result<Rendered, TemplateError> {
        let context = minijinja::Value::from(minijinja::value::Serde(alert));
        Ok(Rendered {
            subject: alert.subject.clone(),
            text: self.templates.get_template("mail.txt")?.render(&context)?,
            html: self.templates.get_template("mail.html")?.render(&context)?,
        })
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn builtin() -> [(&'static str, &'static str); 2] {
    [
        ("mail.html", include_str!("../templates/mail.html")),
        ("mail.txt", include_str!("../templates/mail.txt")),
    ]
}

/// The ids of one mail: its `Message-ID`, derived from what the ledger knows the mail by (so
/// that a send repeated after a crash carries the same id, and receivers collapse the two),
/// and the id of the thread of every mail about one object (`References`), so that a mail
/// client shows an object's reminders together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIds {
    /// `<…@domain>`.
    pub message_id: String,
    /// `<…@domain>`, when the mail is about one object.
    pub thread: Option<String>,
}

impl MessageIds {
    /// The ids of the mail known to the ledger as `ledger_key`, about `object` (`vault`,
    /// kind and name), sent from `from`'s domain.
    pub fn new(ledger_key: &str, object: Option<(&str, &str, &str)>, from: &Mailbox) -> Self {
        let domain = from.email.domain();
        let id = |text: &str| {
            let digest = Sha256::digest(text.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("<{hex}@{domain}>")
        };
        let thread = object.map(|(vault, kind, name)| {
            id(&format!(
                "thread\n{}\n{kind}\n{}",
                vault.to_lowercase(),
                name.to_lowercase()
            ))
        });
        Self {
            message_id: id(&format!("mail\n{ledger_key}")),
            thread,
        }
    }
}

/// Builds the message: one multipart/alternative mail with every recipient in `To`.
pub fn message(
    from: &Mailbox,
    to: &[Mailbox],
    rendered: Rendered,
    ids: &MessageIds,
) -> Result<Message, lettre::error::Error> {
    let to: Mailboxes = to.iter().cloned().collect();
    let mut builder = Message::builder()
        .from(from.clone())
        .mailbox(lettre::message::header::To::from(to))
        .message_id(Some(ids.message_id.clone()));
    if let Some(thread) = &ids.thread {
        builder = builder.references(thread.clone());
    }
    builder
        .subject(literal_subject(&rendered.subject))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
}

/// The subject as it must show. Mail clients decode RFC 2047 encoded-words (`=?utf-8?q?…?=`)
/// wherever they appear, and lettre passes ASCII through as it is, so a name holding a literal
/// encoded-word would show as other text (`Bcc: evil@x`). A zero-width space after each `=`
/// that opens one makes the word non-ASCII: lettre then encodes it, and clients show it as
/// it was written.
pub fn literal_subject(subject: &str) -> String {
    subject.replace("=?", "=\u{200B}?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::sample;
    use crate::event::{EventType, ObjectKind};

    fn render(object: &str) -> Rendered {
        let (event, now) = sample(EventType::NearExpiry(ObjectKind::Secret), object, Some(5));
        Composer::default()
            .render(&Alert::new(&event, now))
            .expect("renders")
    }

    #[test]
    fn markup_in_names_is_escaped_in_html_only() {
        let mail = render("<b>x</b>");
        assert!(!mail.html.contains("<b>x</b>"));
        assert!(mail.html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
        assert!(mail.text.contains("<b>x</b>"));
    }

    #[test]
    fn an_encoded_word_in_a_name_shows_literally_in_the_subject() {
        let from: Mailbox = "kv-notify <kv@contoso.com>".parse().expect("mailbox");
        let mut rendered = render("=?utf-8?q?Bcc:_evil@x?=");
        rendered.subject = format!("Secret {} expires", "=?utf-8?q?Bcc:_evil@x?=");
        let ids = MessageIds::new("key", None, &from);
        let raw = message(&from, std::slice::from_ref(&from), rendered, &ids)
            .expect("builds")
            .formatted();

        let parsed = mailparse::parse_mail(&raw).expect("parses");
        let subject = parsed.headers.iter().find(|h| h.get_key() == "Subject");
        let shown = subject.expect("a Subject").get_value();

        assert_eq!(shown, "Secret =\u{200B}?utf-8?q?Bcc:_evil@x?= expires");
        assert!(!shown.contains("Bcc: evil"));
    }

    #[test]
    fn every_alert_kind_renders_with_the_built_in_templates() {
        for event_type in EventType::all() {
            let (event, now) = sample(event_type, "o", Some(3));
            let alert = Alert::new(&event, now);
            let mail = Composer::default().render(&alert).expect("renders");
            assert!(mail.html.contains(alert.banner), "{event_type}");
            assert!(mail.text.contains(&alert.headline), "{event_type}");
        }
    }

    #[test]
    fn custom_templates_replace_the_built_in_ones_and_typos_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("mail.txt"), "Custom: {{ headline }}").expect("write");
        let composer = Composer::load(Some(dir.path())).expect("loads");
        let (event, now) = sample(EventType::Expired(ObjectKind::Key), "k", Some(-1));
        assert!(
            composer
                .render(&Alert::new(&event, now))
                .expect("renders")
                .text
                .starts_with("Custom: Key k")
        );

        std::fs::write(dir.path().join("mail.txt"), "{{ headlin }}").expect("write");
        let composer = Composer::load(Some(dir.path())).expect("parses");
        assert!(composer.render(&Alert::new(&event, now)).is_err());

        std::fs::write(dir.path().join("mail.html"), "{% if %}").expect("write");
        let problems = Composer::load(Some(dir.path()))
            .err()
            .expect("a syntax error");
        assert!(problems[0].contains("mail.html"), "{problems:?}");
    }

    #[test]
    fn a_mails_id_comes_from_its_ledger_key_and_an_objects_mails_share_a_thread() {
        let from: Mailbox = "kv-notify <kv@contoso.com>".parse().expect("mailbox");
        let object = Some(("Prod-KV", "secrets", "DB"));
        let first = MessageIds::new(r#"["step","kv",30]"#, object, &from);
        let repeat = MessageIds::new(r#"["step","kv",30]"#, object, &from);
        let next_step = MessageIds::new(
            r#"["step","kv",7]"#,
            Some(("prod-kv", "secrets", "db")),
            &from,
        );

        assert_eq!(first, repeat, "a repeated send carries the same id");
        assert_ne!(first.message_id, next_step.message_id);
        assert_eq!(first.thread, next_step.thread);
        assert!(first.message_id.starts_with('<') && first.message_id.ends_with("@contoso.com>"));
    }
}
