//! Whether a role reaches a vault's secrets or its access: read from the role definition's
//! permissions, net of their exclusions, so that custom roles count as built-in ones do.
//!
//! A role matters when, net of `notDataActions`, one of its `dataActions` covers Key Vault's data
//! plane (`Microsoft.KeyVault/…`, or `*`), or when, net of `notActions`, its `actions` cover
//! granting access (`Microsoft.Authorization/roleAssignments/write`) or managing vaults
//! (`Microsoft.KeyVault/vaults/…`: a vault's access policies and network are written there).

use serde::Deserialize;

/// Management actions that change who can reach a vault's contents.
const SENSITIVE_ACTIONS: [&str; 4] = [
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.KeyVault/vaults/write",
    "Microsoft.KeyVault/vaults/accessPolicies/write",
    "Microsoft.KeyVault/vaults/delete",
];

/// One block of a role definition's `permissions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Permission {
    actions: Vec<String>,
    not_actions: Vec<String>,
    data_actions: Vec<String>,
    not_data_actions: Vec<String>,
}

/// A role definition's name and permissions, as Resource Manager gives them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleDefinition {
    /// `Key Vault Secrets Officer`, or a custom role's name.
    pub role_name: String,
    /// What it allows.
    pub permissions: Vec<Permission>,
}

impl RoleDefinition {
    /// What the role allows on a vault that matters, in words; `None` when nothing does.
    pub fn reach(&self) -> Option<String> {
        let mut reach = Vec::new();
        for permission in &self.permissions {
            let data = permission.data_actions.iter().filter(|action| {
                covers_key_vault(action)
                    && !permission
                        .not_data_actions
                        .iter()
                        .any(|not| glob(not, action))
            });
            reach.extend(data.map(|action| format!("{action} (data)")));
            let actions = SENSITIVE_ACTIONS.iter().filter(|sensitive| {
                permission.actions.iter().any(|a| glob(a, sensitive))
                    && !permission
                        .not_actions
                        .iter()
                        .any(|not| glob(not, sensitive))
            });
            reach.extend(actions.map(|action| (*action).to_owned()));
        }
        reach.dedup();
        match reach.len() {
            0 => None,
            1..=4 => Some(reach.join(", ")),
            n => Some(format!("{}, and {} more", reach[..4].join(", "), n - 4)),
        }
    }
}

/// Whether a data action pattern names part of Key Vault's data plane: `Microsoft.KeyVault/…`,
/// or a wildcard that takes it in (`*`, `Microsoft.*`).
fn covers_key_vault(action: &str) -> bool {
    let named = action
        .get(..19)
        .is_some_and(|head| head.eq_ignore_ascii_case("Microsoft.KeyVault/"));
    named || glob(action, "Microsoft.KeyVault/vaults/secrets/getSecret/action")
}

/// Whether `pattern` (with `*` for any run of characters, ASCII case ignored, as Azure reads
/// actions) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(permissions: serde_json::Value) -> RoleDefinition {
        serde_json::from_value(json!({"roleName": "r", "permissions": permissions}))
            .expect("a role definition")
    }

    #[test]
    fn key_vault_data_roles_matter_and_reader_roles_elsewhere_do_not() {
        let officer = role(json!([{"dataActions": ["Microsoft.KeyVault/vaults/secrets/*"]}]));
        assert_eq!(
            officer.reach().as_deref(),
            Some("Microsoft.KeyVault/vaults/secrets/* (data)")
        );
        let reader = role(json!([{"actions": ["*/read"]}]));
        assert_eq!(reader.reach(), None);
        let blob = role(
            json!([{"dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"]}]),
        );
        assert_eq!(blob.reach(), None);
    }

    #[test]
    fn owner_contributor_and_access_administrators_matter() {
        let owner = role(json!([{"actions": ["*"]}]));
        assert!(
            owner
                .reach()
                .expect("Owner reaches")
                .contains("roleAssignments/write")
        );
        let contributor = role(json!([{"actions": ["*"], "notActions": [
            "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write"]}]));
        let reach = contributor.reach().expect("Contributor reaches");
        assert!(reach.contains("Microsoft.KeyVault/vaults/write"), "{reach}");
        assert!(!reach.contains("roleAssignments"), "{reach}");
        let uaa = role(json!([{"actions": ["*/read", "Microsoft.Authorization/*"]}]));
        assert_eq!(
            uaa.reach().as_deref(),
            Some("Microsoft.Authorization/roleAssignments/write")
        );
        let kv_contributor = role(json!([{"actions": ["Microsoft.KeyVault/*"]}]));
        assert!(kv_contributor.reach().is_some());
    }

    #[test]
    fn exclusions_take_away_what_they_cover() {
        let none_left = role(
            json!([{"dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
            "notDataActions": ["Microsoft.KeyVault/*"]}]),
        );
        assert_eq!(none_left.reach(), None);
        let everything = role(json!([{"dataActions": ["*"]}]));
        assert_eq!(everything.reach().as_deref(), Some("* (data)"));
    }

    #[test]
    fn globs_match_as_azure_reads_actions() {
        assert!(glob(
            "Microsoft.Authorization/*/Write",
            "microsoft.authorization/roleAssignments/write"
        ));
        assert!(glob("*", "anything"));
        assert!(!glob("*/read", "Microsoft.KeyVault/vaults/write"));
        assert!(glob(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/read"
        ));
    }
}
