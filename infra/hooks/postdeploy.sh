#!/usr/bin/env bash
# azd postdeploy: with delivery = function (the default), subscribes each vault's system topic
# to the deployed function with
# infra/modules/event-subscription.bicep (a subscription to a function that did not exist yet
# fails, so it cannot be in the main template); with resourceEvents = on (the default), each
# watched subscription's Resource Manager events too, with
# infra/modules/resource-events-subscription.bicep. Then sends one `kv-notify test` alert with
# the app's settings.
set -euo pipefail
cd "$(dirname "$0")/../.."

app_id="${AZURE_FUNCTION_APP_ID:?run azd provision first}"
dead_letters="${DEAD_LETTER_CONTAINER_ID:?run azd provision first}"
storage_id="${dead_letters%/blobServices/*}"

az provider register --namespace Microsoft.EventGrid --wait >/dev/null
# With delivery = queue the template subscribed each topic to the queue already.
topics="${SYSTEM_TOPICS:-}"
if [ "${KV_NOTIFY_DELIVERY:-function}" = "queue" ]; then
  topics=""
fi
for topic in $topics; do
  group="${topic%%/*}"
  name="${topic#*/}"
  az deployment group create --resource-group "$group" --name "kv-notify-subscription-$name" \
    --template-file infra/modules/event-subscription.bicep \
    --parameters topicName="$name" functionAppId="$app_id" deadLetterStorageId="$storage_id" \
    >/dev/null
  echo "kv-notify: $name delivers to the function"
done

# Resource Manager's events of each watched subscription (role assignments, vault settings),
# pushed to the function whatever the delivery: a subscription's topic has no identity.
for topic in ${RESOURCE_EVENT_TOPICS:-}; do
  subscription="${topic%%/*}"
  rest="${topic#*/}"
  group="${rest%%/*}"
  name="${rest#*/}"
  az deployment group create --subscription "$subscription" --resource-group "$group" \
    --name "kv-notify-access-$name" \
    --template-file infra/modules/resource-events-subscription.bicep \
    --parameters topicName="$name" functionAppId="$app_id" >/dev/null
  echo "kv-notify: $name (subscription $subscription) delivers access changes to the function"
done

# The test alert, through every channel the deployed settings configure, sent from here with
# the app's settings (the platform's identity settings left out: the Azure CLI's login stands in).
settings=$(mktemp)
trap 'rm -f "$settings"' EXIT
az functionapp config appsettings list --ids "${app_id}" \
  --query "[?!(starts_with(name, 'AzureWebJobs') || starts_with(name, 'APPLICATIONINSIGHTS') || starts_with(name, 'IDENTITY_'))].[name, value]" \
  -o tsv > "$settings"
env_args=()
while IFS=$'\t' read -r name value; do
  env_args+=("$name=$value")
done < "$settings"
env "${env_args[@]}" dist/app/kv-notify test || {
  echo "kv-notify: the test alert did not go through every channel (see above)" >&2
  exit 1
}
