//! Which way mail leaves: SMTP (with a password, or XOAUTH2 as the app's managed identity),
//! Microsoft Graph as the app's managed identity, Azure Communication Services Email (see
//! [`super::acs`]), or (none configured) the outbox folder.

use super::identity::identity;
use super::name;
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};

/// Microsoft Graph's global endpoint, which is also the resource its tokens are for.
const GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

/// What Exchange Online's SMTP tokens are for.
const EXCHANGE_RESOURCE: &str = "https://outlook.office365.com";

pub use crate::delivery::{AcsAuth, AcsSettings};
pub use crate::identity::Identity;

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

/// Which way mail leaves.
#[derive(Debug, Clone)]
pub enum MailRoute {
    /// `.eml` files in the outbox folder.
    Outbox,
    /// SMTP.
    Smtp {
        /// The lettre connection URL. It may hold a password: never log it.
        url: SecretString,
        /// XOAUTH2 instead of a password (`SMTP_AUTH=xoauth2`).
        oauth: Option<SmtpOAuth>,
    },
    /// Microsoft Graph `sendMail`.
    Graph(GraphSettings),
    /// Azure Communication Services Email.
    Acs(AcsSettings),
}

impl MailRoute {
    /// The address mail is sent as, when the transport fixes it (Graph's mailbox, ACS's
    /// sender): a mail without `MAIL_FROM` is from it.
    pub fn sender(&self) -> Option<&str> {
        match self {
            Self::Graph(graph) => Some(&graph.sender),
            Self::Acs(acs) => Some(&acs.sender),
            Self::Outbox | Self::Smtp { .. } => None,
        }
    }
}

/// The transport the settings choose: `MAIL_TRANSPORT` (`smtp`, `graph`, `acs` or `outbox`),
/// or, without it, the one configured (`SMTP_URL`, `GRAPH_SENDER`, `ACS_ENDPOINT` or
/// `ACS_CONNECTION_STRING`), else the outbox.
pub(super) fn route(
    get: &impl Fn(&str) -> Option<String>,
    smtp_url: Option<SecretString>,
    mail_from: &Mailbox,
    problems: &mut Vec<String>,
) -> MailRoute {
    let configured: Vec<&str> = [
        ("smtp", smtp_url.is_some()),
        ("graph", get(name::GRAPH_SENDER).is_some()),
        (
            "acs",
            get(name::ACS_ENDPOINT).is_some() || get(name::ACS_CONNECTION_STRING).is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(transport, set)| set.then_some(transport))
    .collect();
    let chosen = match get(name::MAIL_TRANSPORT).map(|v| v.to_ascii_lowercase()) {
        Some(chosen) => chosen,
        None => match configured.as_slice() {
            [] => "outbox".to_owned(),
            [one] => (*one).to_owned(),
            several => {
                problems.push(format!(
                    "settings for several mail transports are set ({}): choose one with \
                     MAIL_TRANSPORT",
                    several.join(", ")
                ));
                return MailRoute::Outbox;
            }
        },
    };
    let mail_from = mail_from.email.to_string();
    match chosen.as_str() {
        "outbox" => MailRoute::Outbox,
        "smtp" => match smtp_url {
            Some(url) => {
                let oauth = smtp_oauth(get, &url, problems);
                MailRoute::Smtp { url, oauth }
            }
            None => {
                problems.push("MAIL_TRANSPORT=smtp needs SMTP_URL".to_owned());
                MailRoute::Outbox
            }
        },
        "graph" => graph(get, mail_from, problems).map_or(MailRoute::Outbox, MailRoute::Graph),
        "acs" => {
            super::acs::acs(get, mail_from, problems).map_or(MailRoute::Outbox, MailRoute::Acs)
        }
        other => {
            problems.push(format!(
                "MAIL_TRANSPORT: {other:?} is not smtp, graph, acs or outbox"
            ));
            MailRoute::Outbox
        }
    }
}

/// Microsoft Graph's settings; `None` (with the problems noted) when they do not hold.
fn graph(
    get: &impl Fn(&str) -> Option<String>,
    mail_from: String,
    problems: &mut Vec<String>,
) -> Option<GraphSettings> {
    let endpoint = get(name::GRAPH_ENDPOINT).unwrap_or_else(|| GRAPH_ENDPOINT.to_owned());
    if !endpoint.starts_with("https://") {
        problems.push(format!(
            "GRAPH_ENDPOINT: {endpoint:?} is not an https:// URL"
        ));
    }
    let identity = identity(get, "mail through Microsoft Graph", problems).ok()?;
    Some(GraphSettings {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        sender: get(name::GRAPH_SENDER).unwrap_or(mail_from),
        identity,
        client_id: get(name::AZURE_CLIENT_ID),
    })
}

/// SMTP's XOAUTH2 login, when `SMTP_AUTH=xoauth2`: the mailbox is the user of `SMTP_URL`
/// (which holds no password), the token from the app's identity.
fn smtp_oauth(
    get: &impl Fn(&str) -> Option<String>,
    url: &SecretString,
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
