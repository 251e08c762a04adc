//! Webhook channels: where an alert is posted (a [`Webhook`]), and in which shape
//! ([`Format`]: Microsoft Teams' Adaptive Card, Slack's text plus blocks, or plain JSON). The
//! delivery room posts them.
//!
//! Webhook URLs carry keys, so a [`Webhook`] keeps its URL secret: only the host is ever shown,
//! and errors are stripped of the URL before they are logged or reported.

mod payload;

pub use payload::Format;

use crate::http;
use secrecy::SecretString;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
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
