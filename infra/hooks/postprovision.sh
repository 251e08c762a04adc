#!/usr/bin/env bash
# azd postprovision: with MAIL_TRANSPORT=graph, grants the app's identity Microsoft Graph's
# Mail.Send application permission (Bicep cannot: the Graph extension needs a statement the
# tree-sitter grammar our checks use does not parse, and the portal cannot grant it to a
# managed identity). The deploying user must be allowed to grant app roles.
set -euo pipefail

if [ "${MAIL_TRANSPORT:-graph}" != "graph" ]; then
  exit 0
fi
principal="${AZURE_FUNCTION_PRINCIPAL_ID:?run azd provision first}"
graph_app="00000003-0000-0000-c000-000000000000"
graph_sp=$(az ad sp show --id "$graph_app" --query id -o tsv)
mail_send=$(az ad sp show --id "$graph_app" \
  --query "appRoles[?value=='Mail.Send' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
existing=$(az rest --method GET \
  --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
  --query "value[?appRoleId=='$mail_send'] | length(@)" -o tsv)
if [ "$existing" = "0" ]; then
  az rest --method POST \
    --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$mail_send\"}" \
    >/dev/null
  echo "kv-notify: granted Mail.Send to the app's identity (limit it to the sender's mailbox with an application access policy)"
fi
