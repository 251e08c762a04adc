//! Which way mail leaves: SMTP, Microsoft Graph as the app's managed identity, or (neither
//! configured) the outbox folder.

use super::name;
use lettre::message::Mailbox;
use secrecy::SecretString;

/// Microsoft Graph's global endpoint, which is also the resource its tokens are for.
const GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

/// Mail through Microsoft Graph.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// `GRAPH_ENDPOINT`: the global service, or a national cloud's.
    pub endpoint: String,
    /// `GRAPH_SENDER`: the mailbox to send as (address or user principal name).
    pub sender: String,
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (a secret), set by the platform; without them
    /// (on a developer's machine), tokens come from the Azure CLI's login.
    pub identity: Option<(String, SecretString)>,
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
    let choice = match (chosen.as_deref(), &smtp_url, &sender) {
        (Some("smtp"), None, _) => {
            problems.push("MAIL_TRANSPORT=smtp needs SMTP_URL".to_owned());
            return (None, None);
        }
        (Some("smtp"), Some(_), _) | (None, Some(_), None) => return (smtp_url, None),
        (Some("outbox"), _, _) | (None, None, None) => return (None, None),
        (Some("graph"), _, _) | (None, None, Some(_)) => "graph",
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
    };
    debug_assert_eq!(choice, "graph");
    let endpoint = get(name::GRAPH_ENDPOINT).unwrap_or_else(|| GRAPH_ENDPOINT.to_owned());
    if !endpoint.starts_with("https://") {
        problems.push(format!(
            "GRAPH_ENDPOINT: {endpoint:?} is not an https:// URL"
        ));
    }
    let identity = match (get(name::IDENTITY_ENDPOINT), get(name::IDENTITY_HEADER)) {
        (Some(endpoint), Some(header)) => Some((endpoint, SecretString::from(header))),
        // In Azure there is no Azure CLI to fall back on.
        _ if get(name::WEBSITE_INSTANCE_ID).is_some() => {
            problems.push(
                "mail through Microsoft Graph needs the app's managed identity (IDENTITY_ENDPOINT \
                 and IDENTITY_HEADER, set by the platform once the identity is enabled)"
                    .to_owned(),
            );
            return (None, None);
        }
        _ => None,
    };
    let graph = GraphSettings {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        sender: sender.unwrap_or_else(|| mail_from.email.to_string()),
        identity,
        client_id: get(name::AZURE_CLIENT_ID),
    };
    (None, Some(graph))
}
