//! Resource Manager's events (`Microsoft.Resources.ResourceWriteSuccess` and
//! `ResourceDeleteSuccess`, either schema), as a subscription's or resource group's system topic
//! publishes them: what was written or deleted, by whom. kv-notify reads them for the access
//! changes Key Vault itself does not report (role assignments, a vault's network settings); the
//! rest of the stream (virtual machines, deployments) is told apart here, without any request.

use super::EventKey;
use chrono::{DateTime, Utc};

/// The resource provider path of a role assignment, as it appears in a resource id.
const ROLE_ASSIGNMENTS: &str = "/providers/microsoft.authorization/roleassignments/";

/// The resource provider path of a vault, as it appears in a resource id.
const VAULTS: &str = "/providers/microsoft.keyvault/vaults/";

/// The operations that can change a vault's access, as Resource Manager names them: the
/// template's Event Grid filter lists the same (scripts/infra-check holds them together).
pub const ACCESS_OPERATIONS: [&str; 6] = [
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
    "Microsoft.KeyVault/vaults/write",
    "Microsoft.KeyVault/vaults/delete",
    "Microsoft.KeyVault/vaults/privateEndpointConnections/write",
    "Microsoft.KeyVault/vaults/privateEndpointConnections/delete",
];

/// Whether a resource was written or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceAction {
    /// `ResourceWriteSuccess`: created or updated.
    Write,
    /// `ResourceDeleteSuccess`.
    Delete,
}

impl ResourceAction {
    /// The event type's full name.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Write => "Microsoft.Resources.ResourceWriteSuccess",
            Self::Delete => "Microsoft.Resources.ResourceDeleteSuccess",
        }
    }

    /// The action of a resource event type (short or full name, any case); `None` for another
    /// type.
    pub fn from_type(name: &str) -> Option<Self> {
        let name = name.trim();
        let short = name
            .get(..20)
            .filter(|prefix| prefix.eq_ignore_ascii_case("Microsoft.Resources."))
            .map_or(name, |_| &name[20..]);
        if short.eq_ignore_ascii_case("ResourceWriteSuccess") {
            Some(Self::Write)
        } else if short.eq_ignore_ascii_case("ResourceDeleteSuccess") {
            Some(Self::Delete)
        } else {
            None
        }
    }
}

/// Who made a change, from the token claims the event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The display name (`name`).
    pub name: Option<String>,
    /// The user principal name (`…/claims/upn`, else `…/claims/name`).
    pub upn: Option<String>,
    /// The application id, for a service principal or a managed identity (`appid`).
    pub app_id: Option<String>,
    /// The caller's object id (`…/identity/claims/objectidentifier`).
    pub object_id: Option<String>,
    /// The address the request came from: `httpRequest.clientIpAddress`, else `ipaddr`.
    pub ip: Option<String>,
}

impl Caller {
    /// The caller in words: `Ada Lovelace (ada@contoso.com)`, `application 1f0…`, or
    /// `someone the event does not name`.
    pub fn who(&self) -> String {
        match (&self.name, &self.upn, &self.app_id) {
            (Some(name), Some(upn), _) if name != upn => format!("{name} ({upn})"),
            (_, Some(upn), _) => upn.clone(),
            (Some(name), None, _) => name.clone(),
            (None, None, Some(app)) => format!("application {app}"),
            (None, None, None) => match &self.object_id {
                Some(id) => format!("object {id}"),
                None => "someone the event does not name".to_owned(),
            },
        }
    }
}

/// A resource event, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceEvent {
    /// The event id as sent.
    pub id: String,
    /// What the ledger knows the event by.
    pub key: EventKey,
    /// Written or deleted.
    pub action: ResourceAction,
    /// `data.operationName`, e.g. `Microsoft.Authorization/roleAssignments/write`.
    pub operation: String,
    /// The resource's id: `data.resourceUri`, else the subject.
    pub resource: String,
    /// The tenant (`data.tenantId`), for portal links.
    pub tenant: Option<String>,
    /// Who did it.
    pub caller: Caller,
    /// Ties the operations of one request or deployment together (`data.correlationId`).
    pub correlation: Option<String>,
    /// When Resource Manager raised the event.
    pub event_time: Option<DateTime<Utc>>,
}

/// What a resource event is about, as far as Key Vault access goes: read from the operation and
/// the resource id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern<'a> {
    /// A role assignment written or deleted at `scope` (a vault, a resource group, a
    /// subscription, anything).
    RoleAssignment {
        /// The assignment's resource id.
        id: &'a str,
        /// Where it applies: the id it hangs under.
        scope: &'a str,
    },
    /// A vault written (its properties), or deleted.
    Vault {
        /// The vault's resource id.
        id: &'a str,
        /// Its name, as in the id.
        name: &'a str,
    },
    /// A private endpoint connection of a vault approved, rejected or removed.
    PrivateEndpoint {
        /// The vault's resource id.
        id: &'a str,
        /// Its name, as in the id.
        name: &'a str,
    },
    /// Anything else: acknowledged, nothing to do.
    Nothing,
}

impl ResourceEvent {
    /// What the event is about. An access-policy write is `Nothing` here: Key Vault's own
    /// `VaultAccessPolicyChanged` reports it.
    pub fn concern(&self) -> Concern<'_> {
        let resource = self.resource.as_str();
        let operation = ACCESS_OPERATIONS
            .iter()
            .position(|known| known.eq_ignore_ascii_case(self.operation.trim()));
        // In the order of ACCESS_OPERATIONS: role assignments, vaults, private endpoints.
        match operation {
            Some(0 | 1) => match find(resource, ROLE_ASSIGNMENTS) {
                Some(at) if at > 0 => Concern::RoleAssignment {
                    id: resource,
                    scope: &resource[..at],
                },
                _ => Concern::Nothing,
            },
            Some(2 | 3) => match vault_of(resource) {
                Some((id, name)) if id.len() == resource.trim_end_matches('/').len() => {
                    Concern::Vault { id, name }
                }
                _ => Concern::Nothing,
            },
            Some(4 | 5) => match vault_of(resource) {
                Some((id, name)) => Concern::PrivateEndpoint { id, name },
                None => Concern::Nothing,
            },
            _ => Concern::Nothing,
        }
    }
}

impl Concern<'_> {
    /// The vault it names, when it names one: the vault written, or the one an assignment's
    /// scope lies in (none for an assignment on a resource group or subscription).
    pub fn vault_id(&self) -> Option<&str> {
        match self {
            Concern::RoleAssignment { scope, .. } => vault_of(scope).map(|(id, _)| id),
            Concern::Vault { id, .. } | Concern::PrivateEndpoint { id, .. } => Some(id),
            Concern::Nothing => None,
        }
    }
}

/// The vault a resource id lies in (the vault itself, or something under it): its id and name.
pub fn vault_of(resource: &str) -> Option<(&str, &str)> {
    let at = find(resource, VAULTS)?;
    let rest = &resource[at + VAULTS.len()..];
    let name = rest.split('/').next().filter(|n| !n.is_empty())?;
    let end = at + VAULTS.len() + name.len();
    Some((&resource[..end], name))
}

/// Where `needle` (lower case) first occurs in `text`, ignoring ASCII case.
fn find(text: &str, needle: &str) -> Option<usize> {
    text.as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether `scope` is `resource` or lies above it (a resource group or subscription holding
/// it), ignoring case as Resource Manager does.
pub fn covers(scope: &str, resource: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    let resource = resource.trim_end_matches('/');
    if scope.len() > resource.len() || scope.is_empty() {
        return false;
    }
    let (head, tail) = resource.split_at(scope.len());
    head.eq_ignore_ascii_case(scope) && (tail.is_empty() || tail.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(operation: &str, resource: &str) -> ResourceEvent {
        ResourceEvent {
            id: "1".to_owned(),
            key: EventKey::Id("1".to_owned()),
            action: ResourceAction::Write,
            operation: operation.to_owned(),
            resource: resource.to_owned(),
            tenant: None,
            caller: Caller::default(),
            correlation: None,
            event_time: None,
        }
    }

    const VAULT: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/prod-kv";

    #[test]
    fn a_role_assignment_is_known_by_its_scope() {
        let id = format!("{VAULT}/providers/Microsoft.Authorization/roleAssignments/abc");
        let e = event("Microsoft.Authorization/roleAssignments/write", &id);
        assert_eq!(
            e.concern(),
            Concern::RoleAssignment {
                id: &id,
                scope: VAULT
            }
        );
        let at_subscription =
            "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/x";
        let e = event(
            "microsoft.authorization/roleassignments/delete",
            at_subscription,
        );
        assert!(matches!(
            e.concern(),
            Concern::RoleAssignment {
                scope: "/subscriptions/s1",
                ..
            }
        ));
    }

    #[test]
    fn a_vault_write_names_the_vault_and_other_writes_concern_nothing() {
        let e = event("Microsoft.KeyVault/vaults/write", VAULT);
        assert_eq!(
            e.concern(),
            Concern::Vault {
                id: VAULT,
                name: "prod-kv"
            }
        );
        let vm =
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm";
        assert_eq!(
            event("Microsoft.Compute/virtualMachines/write", vm).concern(),
            Concern::Nothing
        );
        let policy = event("Microsoft.KeyVault/vaults/accessPolicies/write", VAULT);
        assert_eq!(policy.concern(), Concern::Nothing);
        // A secret's write names a vault, but is not a write of the vault.
        let secret = format!("{VAULT}/secrets/db");
        assert_eq!(
            event("Microsoft.KeyVault/vaults/write", &secret).concern(),
            Concern::Nothing
        );
    }

    #[test]
    fn a_scope_covers_what_lies_under_it_and_nothing_beside_it() {
        assert!(covers("/subscriptions/s1", VAULT));
        assert!(covers("/subscriptions/S1/resourcegroups/RG", VAULT));
        assert!(covers(VAULT, VAULT));
        assert!(!covers("/subscriptions/s1/resourceGroups/rg2", VAULT));
        assert!(!covers("/subscriptions/s1/resourceGroups/r", VAULT));
        assert!(!covers(&format!("{VAULT}/secrets/x"), VAULT));
        assert!(!covers("", VAULT));
    }

    #[test]
    fn resource_types_are_read_in_either_spelling() {
        assert_eq!(
            ResourceAction::from_type("Microsoft.Resources.ResourceWriteSuccess"),
            Some(ResourceAction::Write)
        );
        assert_eq!(
            ResourceAction::from_type("resourcedeletesuccess"),
            Some(ResourceAction::Delete)
        );
        assert_eq!(
            ResourceAction::from_type("Microsoft.Resources.ResourceActionSuccess"),
            None
        );
        assert_eq!(ResourceAction::from_type("Micro"), None);
    }

    #[test]
    fn the_caller_is_named_by_what_the_claims_hold() {
        let person = Caller {
            name: Some("Ada Lovelace".to_owned()),
            upn: Some("ada@contoso.com".to_owned()),
            ip: Some("203.0.113.4".to_owned()),
            ..Caller::default()
        };
        assert_eq!(person.who(), "Ada Lovelace (ada@contoso.com)");
        let app = Caller {
            app_id: Some("1f0".to_owned()),
            ..Caller::default()
        };
        assert_eq!(app.who(), "application 1f0");
    }
}
