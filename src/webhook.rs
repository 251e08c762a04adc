//! Webhook channels: Microsoft Teams (Workflows, Adaptive Card), Slack (text plus blocks) and
//! plain JSON, posted with bounded timeouts.
//!
//! Webhook URLs carry keys, so a [`Webhook`] keeps its URL secret: only the host is ever shown,
//! and errors are stripped of the URL before they are logged or reported.

use crate::alert::Alert;
use crate::http;
use crate::text::truncate;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::fmt;

/// How a webhook wants its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Teams Workflows message with an Adaptive Card attachment.
    Teams,
    /// A Slack incoming-webhook message: text plus blocks.
    Slack,
    /// kv-notify's own JSON shape (see the README).
    Json,
}

impl Format {
    /// Parses `teams`, `slack` or `json`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "teams" => Some(Self::Teams),
            "slack" => Some(Self::Slack),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Guesses the format from the webhook's host.
    pub fn guess(host: &str) -> Self {
        let host = host.to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if host == "hooks.slack.com" {
            Self::Slack
        } else if under("logic.azure.com")
            || under("powerplatform.com")
            || under("webhook.office.com")
        {
            Self::Teams
        } else {
            Self::Json
        }
    }

    /// The name used in configuration and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::Slack => "slack",
            Self::Json => "json",
        }
    }

    /// The request body for an alert.
    pub fn payload(self, alert: &Alert) -> Value {
        match self {
            Self::Teams => teams(alert),
            Self::Slack => slack(alert),
            Self::Json => plain_json(alert),
        }
    }
}

/// A webhook endpoint. Its URL is secret; `Display` shows the host only.
#[derive(Clone)]
pub struct Webhook {
    url: SecretString,
    host: String,
    /// The message format.
    pub format: Format,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Webhook({self})")
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} webhook at {}", self.format.as_str(), self.host)
    }
}

/// Why a webhook URL (or its format) is refused; never repeats the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidWebhook(pub String);

impl Webhook {
    /// Validates an https URL (http only to this machine: the URL is the key) and the format
    /// (guessed from the host when absent). Errors never repeat the URL.
    pub fn parse(url: &str, format: Option<&str>) -> Result<Self, InvalidWebhook> {
        let invalid = |why: String| InvalidWebhook(why);
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| invalid(format!("not a valid URL ({e})")))?;
        http::require_https(&parsed).map_err(|why| invalid(why.0))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("the URL has no host".to_owned()))?
            .to_owned();
        let format = match format {
            Some(name) => Format::parse(name).ok_or_else(|| {
                invalid(format!("unknown format {name:?}: use teams, slack or json"))
            })?,
            None => Format::guess(&host),
        };
        Ok(Self {
            url: SecretString::from(parsed.to_string()),
            host,
            format,
        })
    }

    /// The URL: it holds the key, so it never prints.
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// The URL's host, which may print.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the URL is an Office 365 connector's (`*.webhook.office.com`), which Microsoft
    /// is retiring in favour of Teams Workflows.
    pub fn is_office_connector(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        host == "webhook.office.com" || host.ends_with(".webhook.office.com")
    }
}

fn teams(alert: &Alert) -> Value {
    let colour = match alert.kind {
        crate::alert::AlertKind::NearExpiry => "Warning",
        crate::alert::AlertKind::Expired => "Attention",
        crate::alert::AlertKind::NewVersion => "Good",
        crate::alert::AlertKind::AccessPolicyChanged => "Accent",
        crate::alert::AlertKind::CannotSeeVault | crate::alert::AlertKind::Health => "Attention",
    };
    let facts: Vec<Value> = alert
        .details
        .iter()
        .map(|d| json!({"title": d.label, "value": d.value}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": [
                    {"type": "TextBlock", "text": alert.banner.to_uppercase(), "size": "Small", "weight": "Bolder", "color": colour},
                    {"type": "TextBlock", "text": alert.headline, "size": "Medium", "weight": "Bolder", "wrap": true},
                    {"type": "TextBlock", "text": alert.summary, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in the Azure portal", "url": alert.portal_url}],
            },
        }],
    })
}

fn slack(alert: &Alert) -> Value {
    let fields: Vec<Value> = alert
        .details
        .iter()
        .take(10)
        .map(|d| json!({"type": "mrkdwn", "text": format!("*{}*\n{}", d.label, slack_escape(&truncate(&d.value, 1900)))}))
        .collect();
    json!({
        "text": slack_escape(&alert.subject),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&alert.headline, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&truncate(&alert.summary, 2900))}},
            {"type": "section", "fields": fields},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in the Azure portal"},
                "url": alert.portal_url,
            }]},
        ],
    })
}

/// The stable JSON shape, documented in the README.
fn plain_json(alert: &Alert) -> Value {
    let mut event = serde_json::to_value(&alert.facts).unwrap_or_else(|_| json!({}));
    event["id"] = json!(alert.event_id);
    event["type"] = json!(alert.event_type);
    event["daysLeft"] = json!(alert.days_left);
    event["reminderStep"] = json!(alert.step);
    event["autoRenews"] = json!(alert.auto_renews);
    json!({
        "source": "kv-notify",
        "schemaVersion": 1,
        "kind": alert.kind,
        "subject": alert.subject,
        "headline": alert.headline,
        "summary": alert.summary,
        "portalUrl": alert.portal_url,
        "event": event,
    })
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::sample;
    use crate::event::{EventType, ObjectKind};

    #[test]
    fn formats_are_guessed_from_the_host() {
        let guess = |url: &str| Webhook::parse(url, None).map(|w| w.format);
        assert_eq!(
            guess("https://hooks.slack.com/services/T/B/x"),
            Ok(Format::Slack)
        );
        assert_eq!(
            guess("https://prod-00.westeurope.logic.azure.com/workflows/x"),
            Ok(Format::Teams)
        );
        assert_eq!(
            guess("https://x.environment.api.powerplatform.com/p"),
            Ok(Format::Teams)
        );
        assert_eq!(
            guess("https://contoso.webhook.office.com/webhookb2/x"),
            Ok(Format::Teams)
        );
        assert_eq!(guess("https://audit.contoso.com/kv"), Ok(Format::Json));
        assert_eq!(
            guess("https://notlogic.azure.com.evil.example/x"),
            Ok(Format::Json)
        );
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        let err = Webhook::parse("ftp://secret-key@host/x", None).expect_err("not http");
        assert!(!err.0.contains("secret-key"), "{err}");
        assert!(Webhook::parse("not a url", None).is_err());
        assert!(Webhook::parse("https://h/x", Some("xml")).is_err());
    }

    #[test]
    fn display_shows_the_host_but_never_the_path_or_key() {
        let hook = Webhook::parse("https://hooks.slack.com/services/T0/B0/SECRETKEY", None)
            .expect("valid");
        assert_eq!(hook.to_string(), "slack webhook at hooks.slack.com");
        assert!(!format!("{hook:?}").contains("SECRETKEY"));
    }

    #[test]
    fn slack_text_escapes_its_control_characters() {
        let (event, now) = sample(
            EventType::NearExpiry(ObjectKind::Secret),
            "<!channel> & co",
            Some(3),
        );
        let payload = Format::Slack.payload(&Alert::new(&event, now));
        let mrkdwn = [
            &payload["text"],
            &payload["blocks"][1]["text"]["text"],
            &payload["blocks"][2]["fields"][2]["text"],
        ];
        for text in mrkdwn.map(|t| t.as_str().unwrap_or_default()) {
            assert!(!text.contains("<!channel>"), "{text}");
            assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        }
        assert_eq!(
            payload["blocks"][0]["text"]["type"], "plain_text",
            "the header is not parsed"
        );
    }

    #[test]
    fn teams_gets_an_adaptive_card_with_a_portal_button() {
        let (event, now) = sample(EventType::Expired(ObjectKind::Key), "k", Some(-1));
        let payload = Format::Teams.payload(&Alert::new(&event, now));
        let card = &payload["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["actions"][0]["type"], "Action.OpenUrl");
    }
}
