//! Which way mail leaves: SMTP (with a password, or XOAUTH2 as the app's managed identity),
//! Microsoft Graph as the app's managed identity, or (neither configured) the outbox folder.

use super::name;
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};

/// Microsoft Graph's global endpoint, which is also the resource its tokens are for.
const GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

/// What Exchange Online's SMTP tokens are for.
const EXCHANGE_RESOURCE: &str = "https://outlook.office365.com";

/// The platform's managed identity (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, a secret);
/// `None` on a developer's machine, where tokens come from the Azure CLI's login.
pub type Identity = Option<(String, SecretString)>;

/// SMTP with XOAUTH2: a token instead of a password.
#[derive(Debug, Clone)]
pub struct SmtpOAuth {
    /// The mailbox that logs in: the user of `SMTP_URL`.
    pub user: String,
    /// `SMTP_OAUTH_RESOURCE`: what the tokens are for.
    pub resource: String,
    /// Where tokens come from.
    pub identity: Identity,
    /// `AZURE_CLIENT_ID`: a user-assigned identity; unset for the system-assigned one.
    pub client_id: Option<String>,
}

/// Mail through Microsoft Graph.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// `GRAPH_ENDPOINT`: the global service, or a national cloud's.
    pub endpoint: String,
    /// `GRAPH_SENDER`: the mailbox to send as (address or user principal name).
    pub sender: String,
    /// Where tokens come from.
    pub identity: Identity,
    /// `AZURE_CLIENT_ID`: a user-assigned identity; unset for the system-assigned one.
    pub client_id: Option<String>,
}

/// The transport the settings choose: `MAIL_TRANSPORT` (`smtp`, `graph` or `outbox`), or,
/// without it, the one configured (`SMTP_URL`, or `GRAPH_SENDER`), else the outbox. Returns the
/// SMTP URL to use (none unless SMTP is chosen) and the Graph settings (none unless Graph is).
pub(super) fn transport(
    get: &impl Fn(&str) -> Option<String>,
    smtp_url: Option<SecretString>,
    mail_from: &Mailbox,
    problems: &mut Vec<String>,
) -> (Option<SecretString>, Option<GraphSettings>) {
    let sender = get(name::GRAPH_SENDER);
    let chosen = get(name::MAIL_TRANSPORT).map(|v| v.to_ascii_lowercase());
    match (chosen.as_deref(), &smtp_url, &sender) {
        (Some("smtp"), None, _) => {
            problems.push("MAIL_TRANSPORT=smtp needs SMTP_URL".to_owned());
            return (None, None);
        }
        (Some("smtp"), Some(_), _) | (None, Some(_), None) => return (smtp_url, None),
        (Some("outbox"), _, _) | (None, None, None) => return (None, None),
        // Graph: read its settings below.
        (Some("graph"), _, _) | (None, None, Some(_)) => {}
        (None, Some(_), Some(_)) => {
            problems.push(
                "both SMTP_URL and GRAPH_SENDER are set: choose one with MAIL_TRANSPORT \
                 (smtp or graph)"
                    .to_owned(),
            );
            return (None, None);
        }
        (Some(other), _, _) => {
            problems.push(format!(
                "MAIL_TRANSPORT: {other:?} is not smtp, graph or outbox"
            ));
            return (None, None);
        }
    }
    let endpoint = get(name::GRAPH_ENDPOINT).unwrap_or_else(|| GRAPH_ENDPOINT.to_owned());
    if !endpoint.starts_with("https://") {
        problems.push(format!(
            "GRAPH_ENDPOINT: {endpoint:?} is not an https:// URL"
        ));
    }
    let Ok(identity) = identity(get, "mail through Microsoft Graph", problems) else {
        return (None, None);
    };
    let graph = GraphSettings {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        sender: sender.unwrap_or_else(|| mail_from.email.to_string()),
        identity,
        client_id: get(name::AZURE_CLIENT_ID),
    };
    (None, Some(graph))
}

/// SMTP's XOAUTH2 login, when `SMTP_AUTH=xoauth2`: the mailbox is the user of `SMTP_URL`
/// (which holds no password), the token from the app's identity.
pub(super) fn smtp_oauth(
    get: &impl Fn(&str) -> Option<String>,
    smtp_url: Option<&SecretString>,
    problems: &mut Vec<String>,
) -> Option<SmtpOAuth> {
    match get(name::SMTP_AUTH)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("password") => return None,
        Some("xoauth2") => {}
        Some(other) => {
            problems.push(format!("SMTP_AUTH: {other:?} is not password or xoauth2"));
            return None;
        }
    }
    let url = smtp_url?;
    let user = reqwest::Url::parse(url.expose_secret())
        .ok()
        .filter(|url| url.password().is_none())
        .map(|url| {
            percent_encoding::percent_decode_str(url.username())
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|user| !user.is_empty());
    let Some(user) = user else {
        problems.push(
            "SMTP_AUTH=xoauth2 needs the mailbox as the user of SMTP_URL and no password: \
             smtp://alerts%40contoso.com@smtp.office365.com:587?tls=required"
                .to_owned(),
        );
        return None;
    };
    let identity = identity(get, "SMTP_AUTH=xoauth2", problems).ok()?;
    Some(SmtpOAuth {
        user,
        resource: get(name::SMTP_OAUTH_RESOURCE).unwrap_or_else(|| EXCHANGE_RESOURCE.to_owned()),
        identity,
        client_id: get(name::AZURE_CLIENT_ID),
    })
}

/// The platform's identity; on a developer's machine none (the Azure CLI's login stands in),
/// but in Azure (`WEBSITE_INSTANCE_ID` set) a missing identity is a problem for `what`.
pub(super) fn identity(
    get: &impl Fn(&str) -> Option<String>,
    what: &str,
    problems: &mut Vec<String>,
) -> Result<Identity, ()> {
    match (get(name::IDENTITY_ENDPOINT), get(name::IDENTITY_HEADER)) {
        (Some(endpoint), Some(header)) => Ok(Some((endpoint, SecretString::from(header)))),
        _ if get(name::WEBSITE_INSTANCE_ID).is_some() => {
            problems.push(format!(
                "{what} needs the app's managed identity (IDENTITY_ENDPOINT and IDENTITY_HEADER, \
                 set by the platform once the identity is enabled)"
            ));
            Err(())
        }
        _ => Ok(None),
    }
}
