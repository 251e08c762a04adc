//! The app's managed identity, as the platform sets it (`IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER`): read once for each thing that needs tokens.

use super::name;
use crate::identity::Identity;
use secrecy::SecretString;

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
