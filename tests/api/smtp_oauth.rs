//! SMTP without a password: an XOAUTH2 login with a token from the app's managed identity, as
//! Exchange Online takes once Basic authentication is off.

use crate::support::*;

const EXCHANGE: &str = "https://outlook.office365.com";

#[tokio::test]
async fn smtp_logs_in_with_a_token_for_exchange_and_reuses_it() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        xoauth2: Some(EXCHANGE.to_owned()),
        ..SmtpOptions::default()
    });
    let identity = IdentityEndpoint::start();
    let mut settings = mail_settings(&format!(
        "smtp://alerts%40contoso.com@127.0.0.1:{}",
        smtp.port
    ));
    set(&mut settings, "SMTP_AUTH", "xoauth2");
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
    let handler = Handler::start(&pairs(&settings)).await;

    let first = handler
        .invoke(event_grid("SecretNearExpiry", "a", Some(5)))
        .await;
    let second = handler
        .invoke(event_grid("KeyNearExpiry", "b", Some(5)))
        .await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(second.statuses(), ["sent"], "{}", second.text);
    assert_eq!(smtp.messages().len(), 2);
    let logins = smtp.logins();
    assert!(!logins.is_empty());
    assert!(
        logins
            .iter()
            .all(|l| l == &format!("alerts@contoso.com {EXCHANGE}")),
        "{logins:?}"
    );
    assert_eq!(identity.requests(), 1, "one token for both mails");
}

#[tokio::test]
async fn without_the_token_the_server_refuses_the_mail() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        xoauth2: Some(EXCHANGE.to_owned()),
        ..SmtpOptions::default()
    });
    let settings = mail_settings(&format!(
        "smtp://alerts%40contoso.com@127.0.0.1:{}",
        smtp.port
    ));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "a", Some(5)))
        .await;

    assert_eq!(answer.statuses(), ["failed"], "{}", answer.text);
    assert!(smtp.messages().is_empty());
}
