//! What a webhook receives, by its format: Microsoft Teams (Workflows, Adaptive Card), Slack
//! (text plus blocks) or plain JSON.

use crate::alert::Alert;
use crate::text::truncate;
use serde_json::{Value, json};

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

fn teams(alert: &Alert) -> Value {
    let colour = match alert.kind {
        crate::alert::AlertKind::NearExpiry => "Warning",
        crate::alert::AlertKind::Expired => "Attention",
        crate::alert::AlertKind::NewVersion => "Good",
        crate::alert::AlertKind::AccessPolicyChanged | crate::alert::AlertKind::AccessChanged => {
            "Accent"
        }
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
