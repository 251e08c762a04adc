//! The words of an alert about a change of access that Resource Manager reported: a role
//! assignment reaching a vault, or a change to the settings that decide who can reach it.

use super::{Detail, SUBJECT_NAME_LIMIT, format_time};
use crate::event::{AccessChange, EventType, KeyVaultEvent};
use crate::text::{clean, truncate};

/// The change, cleaned for display (an event without one says so in words).
fn change(event: &KeyVaultEvent) -> AccessChange {
    event
        .access
        .as_ref()
        .map(AccessChange::cleaned)
        .unwrap_or_default()
}

/// Where an assignment applies, in words: `vault prod-kv`, or a scope above it.
fn place(change: &AccessChange, vault: &str) -> String {
    let scope = change.scope.trim_end_matches('/');
    let parts: Vec<&str> = scope.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["subscriptions", id] => format!("subscription {id} (above vault {vault})"),
        ["subscriptions", _, group_word, group]
            if group_word.eq_ignore_ascii_case("resourceGroups") =>
        {
            format!("resource group {group} (above vault {vault})")
        }
        _ => format!("vault {vault}"),
    }
}

/// Who made the change, with the address it came from.
fn by(change: &AccessChange) -> String {
    match &change.address {
        Some(address) => format!("{}, from {address}", change.caller),
        None => change.caller.clone(),
    }
}

/// One line saying what happened.
pub(super) fn headline(event: &KeyVaultEvent, vault: &str) -> String {
    let change = change(event);
    let vault = truncate(vault, SUBJECT_NAME_LIMIT);
    if event.event_type == EventType::VaultSettingsChanged {
        return match change.changes.first() {
            Some(first) if first.starts_with("the vault was deleted") => {
                format!("Vault {vault} was deleted")
            }
            Some(first) if !first.starts_with("kv-notify had not seen") => format!(
                "Access settings changed on vault {vault}: {}",
                truncate(first, SUBJECT_NAME_LIMIT)
            ),
            _ => format!("Access settings changed on vault {vault}"),
        };
    }
    let Some(assignment) = &change.assignment else {
        return format!("A role assignment changed on vault {vault}");
    };
    let place = place(&change, &vault);
    let role = truncate(assignment.role_name(), SUBJECT_NAME_LIMIT);
    let principal = truncate(&assignment.principal_short(), SUBJECT_NAME_LIMIT);
    match (assignment.deleted, assignment.role.is_some()) {
        (false, true) => format!("{role} granted to {principal} on {place}"),
        (true, true) => format!("{role} removed from {principal} on {place}"),
        (false, false) => format!("A role was assigned on {place}"),
        (true, false) => format!("A role assignment was removed on {place}"),
    }
}

/// A paragraph saying what it means.
pub(super) fn summary(event: &KeyVaultEvent, vault: &str) -> String {
    let change = change(event);
    let by = &change.caller;
    let place = place(&change, vault);
    let mut said = if event.event_type == EventType::VaultSettingsChanged {
        match change.changes.len() {
            0 => format!("{by} changed the settings of Key Vault {vault}."),
            _ => format!(
                "{by} changed the settings that decide who can reach Key Vault {vault}: {}.",
                change.changes.join("; ")
            ),
        }
    } else {
        match &change.assignment {
            Some(a) if a.deleted => format!(
                "{by} removed the assignment of {} to {} on {place}.",
                a.role_name(),
                a.principal(),
            ),
            Some(a) => format!(
                "{by} assigned {} to {} on {place}. {}",
                a.role_name(),
                a.principal(),
                match &a.grants {
                    Some(grants) => format!("The role reaches the vault: {grants}."),
                    None => "What the role allows could not be read.".to_owned(),
                }
            ),
            None => format!("{by} changed a role assignment on {place}."),
        }
    };
    if let Some(unread) = &change.unread {
        said.push_str(&format!(" {unread}."));
    }
    said.trim_end().to_owned()
}

/// What to do, in order.
pub(super) fn next_steps(event: &KeyVaultEvent, vault: &str) -> Vec<String> {
    let change = change(event);
    let activity = activity_log(&change);
    let by = &change.caller;
    if event.event_type == EventType::VaultSettingsChanged {
        return vec![
            format!("Check with {by} that the change to vault {vault} was expected."),
            format!("Review the vault's networking settings in the portal (the button below); who changed what is in its activity log: {activity}"),
            "If it was not expected, put the settings back and treat it as a security incident: look in the vault's diagnostic logs for reads since the change.".to_owned(),
        ];
    }
    vec![
        format!("Check with {by} that the assignment was expected."),
        format!("Review the vault's access control (IAM) in the portal (the button below); the activity log has the change: {activity}"),
        "If it was not expected, remove the assignment and treat it as a security incident: look in the vault's diagnostic logs for what the principal read.".to_owned(),
    ]
}

/// The facts, in display order.
pub(super) fn details(event: &KeyVaultEvent, vault: &str) -> Vec<Detail> {
    let change = change(event);
    let row = |label, value: String, strong| Detail {
        label,
        value,
        strong,
    };
    let mut rows = vec![row("Vault", vault.to_owned(), true)];
    if let Some(a) = &change.assignment {
        let action = if a.deleted { "removed" } else { "assigned" };
        rows.push(row("Role", format!("{} ({action})", a.role_name()), true));
        rows.push(row("Principal", a.principal(), true));
        rows.push(row("Scope", change.scope.clone(), false));
        if let Some(grants) = &a.grants {
            rows.push(row("Reaches", grants.clone(), false));
        }
    }
    for said in &change.changes {
        rows.push(row("Change", said.clone(), true));
    }
    rows.push(row("By", by(&change), true));
    if let Some(unread) = &change.unread {
        rows.push(row("Not read", unread.clone(), false));
    }
    rows.push(row("Operation", change.operation.clone(), false));
    if let Some(correlation) = &change.correlation {
        rows.push(row("Correlation id", correlation.clone(), false));
    }
    let time = event
        .event_time
        .map_or_else(|| "(not given)".to_owned(), format_time);
    rows.push(row("Event time", time, false));
    rows
}

/// The vault's activity log in the portal, or the portal's activity log when the vault's id is
/// not known.
fn activity_log(change: &AccessChange) -> String {
    match change.vault_id.as_deref().map(clean) {
        Some(id) if id.starts_with("/subscriptions/") && !id.contains(char::is_whitespace) => {
            format!("https://portal.azure.com/#@/resource{id}/activitylog")
        }
        _ => {
            "https://portal.azure.com/#view/Microsoft_Azure_ActivityLog/ActivityLogBlade".to_owned()
        }
    }
}
