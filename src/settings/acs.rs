//! Azure Communication Services Email's settings: the resource (`ACS_ENDPOINT` with the app's
//! identity, or `ACS_CONNECTION_STRING` with its access key) and the sender (`ACS_SENDER`).

use super::identity::identity;
use super::name;
use crate::delivery::{AcsAuth, AcsSettings};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretString;

/// ACS's settings; `None` (with the problems noted) when they do not hold. The sender defaults
/// to `mail_from`.
pub(super) fn acs(
    get: &impl Fn(&str) -> Option<String>,
    mail_from: String,
    problems: &mut Vec<String>,
) -> Option<AcsSettings> {
    let sender = get(name::ACS_SENDER).unwrap_or(mail_from);
    let (endpoint, auth) = match (get(name::ACS_ENDPOINT), get(name::ACS_CONNECTION_STRING)) {
        (Some(_), Some(_)) => {
            problems.push(
                "both ACS_ENDPOINT and ACS_CONNECTION_STRING are set: ACS_ENDPOINT sends as the \
                 app's managed identity, ACS_CONNECTION_STRING with the resource's access key; \
                 keep one"
                    .to_owned(),
            );
            return None;
        }
        (None, Some(connection)) => connection_string(&connection, problems)?,
        (Some(endpoint), None) => {
            let identity = identity(get, "mail through ACS_ENDPOINT", problems).ok()?;
            let client_id = get(name::AZURE_CLIENT_ID);
            (
                endpoint,
                AcsAuth::Token {
                    identity,
                    client_id,
                },
            )
        }
        (None, None) => {
            problems.push(
                "MAIL_TRANSPORT=acs needs ACS_ENDPOINT (https://<resource>.communication.azure.com, \
                 with the app's managed identity) or ACS_CONNECTION_STRING"
                    .to_owned(),
            );
            return None;
        }
    };
    if !endpoint.starts_with("https://") {
        problems.push(format!("ACS endpoint {endpoint:?} is not an https:// URL"));
        return None;
    }
    Some(AcsSettings {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        sender,
        auth,
    })
}

/// `endpoint=https://…/;accesskey=…`, as the portal shows it (names in any case). The value is
/// never quoted in a problem: it holds the key.
fn connection_string(value: &str, problems: &mut Vec<String>) -> Option<(String, AcsAuth)> {
    let part = |wanted: &str| {
        value.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_owned())
        })
    };
    let (Some(endpoint), Some(key)) = (part("endpoint"), part("accesskey")) else {
        problems.push(
            "ACS_CONNECTION_STRING needs endpoint=https://…;accesskey=… (copy it from the \
             resource's Keys page; the value is not shown: it holds the key)"
                .to_owned(),
        );
        return None;
    };
    if BASE64.decode(&key).is_err() {
        problems.push(
            "ACS_CONNECTION_STRING: the accesskey is not base64 (the value is not shown)"
                .to_owned(),
        );
        return None;
    }
    Some((endpoint, AcsAuth::Key(SecretString::from(key))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_connection_string_gives_the_endpoint_and_the_key_in_any_case() {
        let mut problems = Vec::new();
        let (endpoint, auth) = connection_string(
            "Endpoint=https://kv.communication.azure.com/; AccessKey=c2VjcmV0",
            &mut problems,
        )
        .expect("valid");
        assert_eq!(endpoint, "https://kv.communication.azure.com/");
        assert!(matches!(auth, AcsAuth::Key(key) if key.expose_secret() == "c2VjcmV0"));
        assert!(problems.is_empty());
    }

    #[test]
    fn a_broken_connection_string_is_a_problem_that_does_not_show_the_key() {
        let mut problems = Vec::new();
        assert!(
            connection_string("endpoint=https://x/;accesskey=not base64!", &mut problems).is_none()
        );
        assert!(connection_string("accesskey=c2VjcmV0", &mut problems).is_none());
        assert_eq!(problems.len(), 2);
        assert!(
            problems
                .iter()
                .all(|p| !p.contains("not base64!") && !p.contains("c2VjcmV0"))
        );
    }
}
