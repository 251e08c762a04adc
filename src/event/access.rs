//! What a security alert about a vault's access says beyond Key Vault's own events: a role
//! assignment that reaches a vault, or a change to the settings that decide who can reach it at
//! all (its network, its private endpoints, its permission model).

use crate::text::clean;
use serde::{Deserialize, Serialize};

/// A change of access to a vault, as read from a resource event and Resource Manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessChange {
    /// Who made it, in words (name or UPN, else application id).
    pub caller: String,
    /// The address the request came from, when the event says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The Resource Manager operation, e.g. `Microsoft.Authorization/roleAssignments/write`.
    pub operation: String,
    /// The resource id the change applies at: the assignment's scope, or the vault.
    pub scope: String,
    /// The vault's resource id, for portal links, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    /// The tenant, for portal links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Ties the operations of one request or deployment together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
    /// For a role assignment: which role to whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
    /// For settings: each change in words (`public network access: Disabled → Enabled`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// What could not be read, and so what the alert cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

/// A role assignment's role and principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Whether it was deleted (else written).
    pub deleted: bool,
    /// The role's name (`Key Vault Secrets Officer`), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role definition's id, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// The principal's object id, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// `User`, `Group`, `ServicePrincipal`, `ForeignGroup` or `Device`, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// The principal's display name, when Microsoft Graph gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_name: Option<String>,
    /// What the role allows on the vault, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<String>,
}

impl Assignment {
    /// The principal in words: `Ada (User 0f1…)`, `User 0f1…`, or `an unknown principal`.
    pub fn principal(&self) -> String {
        let kind = self.principal_type.as_deref().unwrap_or("principal");
        match (&self.principal_name, &self.principal_id) {
            (Some(name), Some(id)) => format!("{name} ({kind} {id})"),
            (None, Some(id)) => format!("{kind} {id}"),
            (Some(name), None) => name.clone(),
            (None, None) => "an unknown principal".to_owned(),
        }
    }

    /// The principal in a few words, for a headline: its name when known, else its type and id.
    pub fn principal_short(&self) -> String {
        match &self.principal_name {
            Some(name) => name.clone(),
            None => self.principal(),
        }
    }

    /// The role in words, or `an unknown role`.
    pub fn role_name(&self) -> &str {
        self.role.as_deref().unwrap_or("an unknown role")
    }
}

impl AccessChange {
    /// The same change with every text cleaned of control characters, for display.
    pub fn cleaned(&self) -> Self {
        let text = |value: &Option<String>| value.as_deref().map(clean);
        Self {
            caller: clean(&self.caller),
            address: text(&self.address),
            operation: clean(&self.operation),
            scope: clean(&self.scope),
            vault_id: text(&self.vault_id),
            tenant: text(&self.tenant),
            correlation: text(&self.correlation),
            assignment: self.assignment.as_ref().map(|a| Assignment {
                deleted: a.deleted,
                role: text(&a.role),
                role_id: text(&a.role_id),
                principal_id: text(&a.principal_id),
                principal_type: text(&a.principal_type),
                principal_name: text(&a.principal_name),
                grants: text(&a.grants),
            }),
            changes: self.changes.iter().map(|c| clean(c)).collect(),
            unread: text(&self.unread),
        }
    }
}
