//! The events the sweep makes: an object's reminder, and a vault it cannot read.

use crate::event::{Diagnosis, EventKey, EventType, KeyVaultEvent, Reminder};
use crate::ladder::Position;
use crate::vault::{VaultError, VaultObject, VaultRef};
use chrono::{DateTime, Utc};

/// A vault kv-notify cannot read is said at most once in this many days.
pub(super) const BLIND_SPOT_DAYS: i64 = 15;

/// The reminder of `object`'s current step (or, for `inventory`, of its place on the ladder).
pub(super) fn reminder_event(
    vault: &VaultRef,
    object: &VaultObject,
    version: Option<&str>,
    position: Option<Position>,
    auto_renews: Option<bool>,
    now: DateTime<Utc>,
) -> KeyVaultEvent {
    let step = match position {
        Some(Position::In {
            step,
            kept_from,
            next,
        }) => Some((step, kept_from, next)),
        _ => None,
    };
    let key = match (step, version) {
        (Some((step, _, _)), Some(version)) => {
            EventKey::step(&vault.name, object.kind, &object.name, version, step)
        }
        _ => EventKey::Id(String::new()),
    };
    let mut url = vault.url.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend([object.kind.collection(), object.name.as_str()]);
    }
    KeyVaultEvent {
        vault: Some(vault.name.clone()),
        object_type: Some(object.kind.as_str().to_owned()),
        object: Some(object.name.clone()),
        version: version.map(str::to_owned),
        object_url: Some(url.to_string()),
        not_before: object.not_before,
        expires: object.expires,
        event_time: Some(now),
        reminder: step.map(|(step, kept_from, next)| Reminder {
            step,
            kept_from,
            next,
            auto_renews,
        }),
        ..KeyVaultEvent::new(String::new(), key, EventType::Reminder(object.kind))
    }
}

/// The alert for a vault whose lists could not be read for a reason a person must fix (a
/// role, a firewall, a vault that is gone), keyed by the vault and the 15-day period, so that
/// it is sent once per period whichever run or instance sees it. `None` for a passing fault
/// (throttling, a timeout, a budget run out): the next run retries those.
pub(super) fn blind_spot_event(
    vault: &VaultRef,
    errors: &[(crate::event::ObjectKind, VaultError)],
    now: DateTime<Utc>,
) -> Option<KeyVaultEvent> {
    let (lists, blind_spot) = errors
        .iter()
        .find_map(|(_, error)| blind_spot(&vault.name, error))
        .map(|spot| {
            let lists: Vec<&str> = errors.iter().map(|(kind, _)| kind.collection()).collect();
            let lists = match lists.split_last() {
                Some((last, [])) => (*last).to_owned(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            (lists, spot)
        })?;
    let period = now.timestamp().div_euclid(BLIND_SPOT_DAYS * 86_400);
    let diagnosis = Diagnosis {
        cause: format!("{}; its {lists} were not read", blind_spot.cause),
        fix: blind_spot.fix,
    };
    let mut event = KeyVaultEvent::own(
        format!("vault-unreadable/{}/{period}", vault.name),
        EventType::VaultUnreadable,
        Some(vault.name.clone()),
        diagnosis,
        now,
    );
    event.object_url = Some(vault.url.to_string());
    Some(event)
}

/// What a list's failure means for a person, when it needs one.
fn blind_spot(vault: &str, error: &VaultError) -> Option<Diagnosis> {
    let spot = |cause: String, fix: Vec<String>| Some(Diagnosis { cause, fix });
    let principal = "the app's identity (az functionapp identity show -g <group> -n <app> \
                     --query principalId)";
    match error {
        VaultError::Denied { code, status, .. } => match code.as_deref().unwrap_or_default() {
            "ForbiddenByFirewall" => spot(
                format!("the vault's firewall refuses kv-notify's address ({status} ForbiddenByFirewall)"),
                vec![
                    format!("In the Networking blade of vault {vault}, allow the function app's outbound addresses (az functionapp show -g <group> -n <app> --query possibleOutboundIpAddresses)."),
                    "Or integrate the function app with a virtual network that reaches the vault (a private endpoint, or a service endpoint allowed by the vault).".to_owned(),
                    "Allowing \"trusted Microsoft services\" does not cover a function app.".to_owned(),
                ],
            ),
            "ForbiddenByRbac" => spot(
                format!("the app's identity has no role that lets it read the vault ({status} ForbiddenByRbac)"),
                vec![
                    format!("Give {principal} the Key Vault Reader role on vault {vault}: az role assignment create --role \"Key Vault Reader\" --assignee-object-id <principalId> --assignee-principal-type ServicePrincipal --scope $(az keyvault show -n {vault} --query id -o tsv)"),
                    "Key Vault Reader reads metadata only: kv-notify never needs a secret's value.".to_owned(),
                ],
            ),
            code if code.to_ascii_lowercase().contains("disabled") => spot(
                format!("the vault is disabled ({status} {code})"),
                vec![format!("Re-enable vault {vault}, or remove it from VAULTS if it is retired.")],
            ),
            _ if *status == 401 => spot(
                format!("the vault does not accept the app's token ({status})"),
                vec![
                    format!("Check that vault {vault} and the function app's identity are in the same Microsoft Entra tenant."),
                    "Check KEY_VAULT_RESOURCE for a national cloud (https://vault.azure.cn, https://vault.usgovcloudapi.net).".to_owned(),
                ],
            ),
            code => spot(
                format!("the vault's access policy does not let the app's identity list its objects ({status}{})", if code.is_empty() { String::new() } else { format!(" {code}") }),
                vec![
                    format!("Grant {principal} list permissions on vault {vault}: az keyvault set-policy -n {vault} --object-id <principalId> --secret-permissions list --key-permissions list --certificate-permissions list get"),
                    "Or move the vault to Azure RBAC and give the identity the Key Vault Reader role.".to_owned(),
                ],
            ),
        },
        VaultError::NotResolved(host) => spot(
            format!("the vault's name {host} does not resolve"),
            vec![
                format!("If vault {vault} has a private endpoint: link its private DNS zone (privatelink.vaultcore.azure.net) to the virtual network the function app is integrated with, and send the app's outbound traffic through it (az functionapp config set --vnet-route-all-enabled true)."),
                format!("If vault {vault} was deleted: remove it from VAULTS, or recover it (az keyvault list-deleted; az keyvault recover -n {vault})."),
                "Otherwise check the name in VAULTS.".to_owned(),
            ],
        ),
        VaultError::Redirected(why) => spot(
            format!("the vault's address {why}: kv-notify sends its token to the vault alone"),
            vec![
                format!("Check the URI of vault {vault} in VAULTS (https://NAME.vault.azure.net, or its national cloud's)."),
                "If a proxy stands between the function app and Key Vault, let it pass requests to the vault through instead of redirecting them.".to_owned(),
            ],
        ),
        VaultError::NotFound => spot(
            "the vault does not exist (404)".to_owned(),
            vec![format!("Check the name {vault} in VAULTS; remove a vault that was deleted.")],
        ),
        _ => None,
    }
}
