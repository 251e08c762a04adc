//! `kv-notify test`: one clearly labelled test alert through every configured channel (mail to
//! each channel's addresses, a post to each webhook), straight through the transports: no
//! ledger, so it can be run again at will. It says what each channel answered.

use crate::alert::{Alert, Detail};
use crate::config::Config;
use crate::delivery::{Delivered, Letter, MailTransport, Repeat, WebhookClient, WebhookTransport};
use crate::event::{Diagnosis, EventType, KeyVaultEvent};
use crate::mail::{self, MessageIds};
use chrono::Utc;
use lettre::address::Envelope;
use lettre::message::Mailbox;

/// Sends the test alert through every channel and prints one line per channel. Returns
/// whether every channel took it.
pub async fn test_alert(config: &Config, mail: &dyn MailTransport) -> anyhow::Result<bool> {
    let settings = &config.settings;
    let webhooks = WebhookClient::new(settings.webhook_timeout);
    let channels = config.routing.test_targets();
    if channels.is_empty() {
        say!("no channel has an address or a webhook: nothing to test (see kv-notify check)");
        return Ok(false);
    }
    let mut ok = true;
    for (channel, emails, webhook) in channels {
        let alert = test_alert_for(&channel);
        if !emails.is_empty() {
            let answer = send_mail(config, mail, &alert, &emails).await;
            let to: Vec<String> = emails.iter().map(ToString::to_string).collect();
            ok &= answer.is_ok();
            say!("{channel}: mail to {}: {}", to.join(", "), said(answer));
        }
        if let Some(webhook) = webhook {
            let payload = webhook.format.payload(&alert);
            let answer = webhooks
                .post(&webhook, &payload)
                .await
                .map(|()| "accepted".to_owned());
            ok &= answer.is_ok();
            say!(
                "{channel}: {webhook}: {}",
                said(answer.map_err(|f| f.reason().to_owned()))
            );
        }
    }
    say!("(a test: nothing was recorded in the ledger)");
    Ok(ok)
}

/// The test alert, as channel `channel` gets it.
fn test_alert_for(channel: &str) -> Alert {
    let now = Utc::now();
    let diagnosis = Diagnosis {
        cause: String::new(),
        fix: Vec::new(),
    };
    let event = KeyVaultEvent::own(
        format!("test/{channel}/{}", now.timestamp_millis()),
        EventType::HealthNotice,
        None,
        diagnosis,
        now,
    );
    let mut alert = Alert::new(&event, now);
    alert.subject = format!("kv-notify test alert for channel {channel}");
    alert.banner = "Test";
    alert.headline = format!("This is a test of channel {channel}");
    alert.summary = format!(
        "kv-notify sent this test through channel {channel} to check that its alerts reach you. \
         Nothing needs doing."
    );
    alert.details = vec![Detail {
        label: "Channel",
        value: channel.to_owned(),
        strong: true,
    }];
    alert.next_steps = Vec::new();
    alert.origin = "Sent by kv-notify test.".to_owned();
    alert
}

async fn send_mail(
    config: &Config,
    transport: &dyn MailTransport,
    alert: &Alert,
    to: &[Mailbox],
) -> Result<String, String> {
    let from = &config.settings.mail_from;
    let rendered = config.composer.render(alert).map_err(|e| e.to_string())?;
    let ids = MessageIds::new(&alert.subject, None, from);
    let raw = mail::message(from, to, rendered.clone(), &ids)
        .map_err(|e| e.to_string())?
        .formatted();
    let recipients = to.iter().map(|m| m.email.clone()).collect();
    let envelope =
        Envelope::new(Some(from.email.clone()), recipients).map_err(|e| e.to_string())?;
    let repeat = Repeat::of([]);
    let letter = Letter {
        envelope: &envelope,
        raw: &raw,
        parts: &rendered,
        name: "kv-notify-test",
        repeat: &repeat,
    };
    match transport.send(&letter).await {
        Ok(Delivered::Sent) => Ok("sent".to_owned()),
        Ok(Delivered::Written(path)) => Ok(format!("written to {}", path.display())),
        Err(error) => Err(error.failure().reason().to_owned()),
    }
}

/// An answer in words.
fn said(answer: Result<String, String>) -> String {
    match answer {
        Ok(done) => done,
        Err(why) => format!("FAILED: {why}"),
    }
}
