#!/usr/bin/env bash
# azd postprovision: grants the app's identity the Microsoft Graph application permissions its
# settings need (Bicep cannot: the Graph extension needs a statement the tree-sitter grammar our
# checks use does not parse, and the portal cannot grant them to a managed identity):
# Mail.Send with MAIL_TRANSPORT=graph, Application.Read.All with ENTRA_CREDENTIALS=true. The
# deploying user must be allowed to grant app roles.
set -euo pipefail

principal="${AZURE_FUNCTION_PRINCIPAL_ID:?run azd provision first}"
graph_app="00000003-0000-0000-c000-000000000000"

# Grants the Graph application permission $1 to the app's identity, unless it has it.
grant() {
  local role="$1" graph_sp role_id existing
  graph_sp=$(az ad sp show --id "$graph_app" --query id -o tsv)
  role_id=$(az ad sp show --id "$graph_app" \
    --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
  existing=$(az rest --method GET \
    --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --query "value[?appRoleId=='$role_id'] | length(@)" -o tsv)
  if [ "$existing" = "0" ]; then
    az rest --method POST \
      --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
      --body "{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$role_id\"}" \
      >/dev/null
    echo "kv-notify: granted $role to the app's identity"
  fi
}

if [ "${MAIL_TRANSPORT:-graph}" = "graph" ]; then
  grant Mail.Send
  echo "kv-notify: limit Mail.Send to the sender's mailbox with an application access policy"
fi
if [ "${ENTRA_CREDENTIALS:-false}" = "true" ]; then
  grant Application.Read.All
fi
