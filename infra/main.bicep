// kv-notify in Azure: a Flex Consumption function app running the release zip, its storage
// (host, ledger, package, dead letters), Application Insights, the roles it needs, read access
// to each watched vault, and an Event Grid system topic per vault. The Event Grid
// subscriptions to the function are made after the code is deployed (hooks/postdeploy.sh):
// a subscription to a function that does not exist yet fails.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('The azd environment name: names and tags every resource.')
param environmentName string

@description('Where the resources go.')
param location string

// The structured parameters come as JSON text: azd passes every parameter from its environment
// as a string.

@description('The vaults to watch, as JSON: [{"name", "resourceGroup", "accessPolicies" (true for a vault without Azure RBAC), "existingSystemTopic" (the name of a system topic the vault already has: only one may exist per vault)}].')
param vaultsJson string = '[]'

@description('Subscription ids whose vaults the daily sweep finds through Resource Manager (the app gets Reader on each), as a JSON list.')
param subscriptionsJson string = '[]'

@description('OWNER_EMAILS: owners of every object no owner tag or rules entry assigns.')
param ownerEmails string

@description('SECURITY_EMAILS: who hears about access changes and blind spots.')
param securityEmails string

@description('MAIL_FROM: the sender of every mail.')
param mailFrom string

@allowed(['smtp', 'graph', 'acs'])
@description('MAIL_TRANSPORT: how mail leaves.')
param mailTransport string = 'graph'

@description('For smtp: the Key Vault secret URI holding SMTP_URL (it holds a password).')
param smtpUrlSecretUri string = ''

@description('For graph: the mailbox Microsoft Graph sends as (the identity needs Mail.Send, granted by hooks/postprovision.sh).')
param graphSender string = ''

@description('For acs: the Azure Communication Services endpoint.')
param acsEndpoint string = ''

@allowed(['true', 'false'])
@description('ENTRA_CREDENTIALS: also remind of the client secrets and certificates of Entra ID app registrations (hooks/postprovision.sh grants Application.Read.All).')
param entraCredentials string = 'false'

@allowed(['function', 'queue'])
@description('How Event Grid reaches the app: function (push to the function; the postdeploy hook subscribes each vault) or queue (to the queue kv-notify-events of the app\'s storage account, as each topic\'s identity: for an app behind private endpoints, which push cannot reach).')
param delivery string = 'function'

@allowed(['on', 'off'])
@description('Access alerts for vaults that use Azure RBAC: subscribe the Resource Manager events (role assignments, vault settings) of the subscription and of each of subscriptionsJson to the function. Pushed even with delivery = queue: a subscription\'s system topic has no identity.')
param resourceEvents string = 'on'

@description('Subscription system topics that exist already (only one may exist per subscription), as JSON: {"<subscription id>": {"name", "resourceGroup"}}. kv-notify\'s subscription joins them.')
param resourceEventsTopicsJson string = '{}'

@description('The vault holding the secrets the settings refer to (SMTP_URL), as JSON {"name", "resourceGroup"}: the app gets Key Vault Secrets User there.')
param secretsVaultJson string = '{}'

var vaults = json(vaultsJson)
var subscriptions = json(subscriptionsJson)
var secretsVault = json(secretsVaultJson)
var existingEventTopics = json(resourceEventsTopicsJson)
var eventSubscriptions = resourceEvents == 'on' ? union([subscription().subscriptionId], subscriptions) : []
var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: group
  params: {
    name: 'kvnotify-${token}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: group
  params: {
    name: 'kvnotify${token}'
    location: location
    tags: tags
  }
}

module app 'modules/function.bicep' = {
  name: 'function'
  scope: group
  params: {
    name: 'kvnotify-${token}'
    location: location
    tags: union(tags, { 'azd-service-name': 'kv-notify' })
    storageName: storage.outputs.name
    packageContainer: storage.outputs.packageContainer
    appInsightsConnectionString: monitoring.outputs.connectionString
    settings: {
      MAIL_TRANSPORT: mailTransport
      MAIL_FROM: mailFrom
      OWNER_EMAILS: ownerEmails
      SECURITY_EMAILS: securityEmails
      // By resource id: an assignment at a vault's resource group or subscription then
      // names it.
      VAULTS: join(map(vaults, v => '/subscriptions/${subscription().subscriptionId}/resourceGroups/${v.resourceGroup}/providers/Microsoft.KeyVault/vaults/${v.name}'), ',')
      SUBSCRIPTIONS: join(subscriptions, ',')
      SMTP_URL: empty(smtpUrlSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${smtpUrlSecretUri})'
      GRAPH_SENDER: graphSender
      ACS_ENDPOINT: acsEndpoint
      ENTRA_CREDENTIALS: entraCredentials == 'true' ? 'true' : ''
    }
  }
}

module appRoles 'modules/app-roles.bicep' = {
  name: 'app-roles'
  scope: group
  params: {
    principalId: app.outputs.principalId
    storageName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module vaultAccess 'modules/vault-access.bicep' = [for vault in vaults: {
  name: 'vault-access-${vault.name}'
  scope: resourceGroup(vault.resourceGroup)
  params: {
    vaultName: vault.name
    principalId: app.outputs.principalId
    accessPolicies: vault.?accessPolicies ?? false
  }
}]

module topics 'modules/event-grid.bicep' = [for vault in vaults: {
  name: 'event-grid-${vault.name}'
  scope: resourceGroup(vault.resourceGroup)
  params: {
    vaultName: vault.name
    existingTopicName: vault.?existingSystemTopic ?? ''
    tags: tags
  }
}]

module deadLetterRoles 'modules/dead-letter-roles.bicep' = [for (vault, i) in vaults: {
  name: 'dead-letter-${vault.name}'
  scope: group
  params: {
    storageName: storage.outputs.name
    topicPrincipalId: topics[i].outputs.principalId
  }
}]

module queueSenders 'modules/queue-sender-role.bicep' = [for (vault, i) in vaults: if (delivery == 'queue') {
  name: 'queue-sender-${vault.name}'
  scope: group
  params: {
    storageName: storage.outputs.name
    topicPrincipalId: topics[i].outputs.principalId
  }
}]

module queueSubscriptions 'modules/queue-subscription.bicep' = [for (vault, i) in vaults: if (delivery == 'queue') {
  name: 'queue-subscription-${vault.name}'
  scope: resourceGroup(vault.resourceGroup)
  params: {
    topicName: topics[i].outputs.name
    storageId: storage.outputs.id
  }
  dependsOn: [
    queueSenders[i]
    deadLetterRoles[i]
  ]
}]

module readers 'modules/subscription-reader.bicep' = [for id in subscriptions: {
  name: 'reader-${id}'
  scope: subscription(id)
  params: {
    principalId: app.outputs.principalId
  }
}]

// Reader where the role assignments are made: an access alert names the role and principal
// (the subscriptions of subscriptionsJson have it already).
module accessReaders 'modules/subscription-reader.bicep' = [for id in eventSubscriptions: if (!contains(subscriptions, id)) {
  name: 'access-reader-${id}'
  scope: subscription(id)
  params: {
    principalId: app.outputs.principalId
  }
}]

module resourceTopics 'modules/resource-events-topic.bicep' = [for id in eventSubscriptions: {
  name: 'resource-events-${id}'
  scope: subscription(id)
  params: {
    groupName: existingEventTopics[?id].?resourceGroup ?? 'rg-${environmentName}'
    existingTopicName: existingEventTopics[?id].?name ?? ''
    location: location
    tags: tags
  }
}]

module secretReader 'modules/secret-reader.bicep' = if (!empty(secretsVault)) {
  name: 'secret-reader'
  scope: resourceGroup(secretsVault.?resourceGroup ?? group.name)
  params: {
    vaultName: secretsVault.?name ?? ''
    principalId: app.outputs.principalId
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_FUNCTION_APP_ID string = app.outputs.id
output AZURE_FUNCTION_PRINCIPAL_ID string = app.outputs.principalId
output DEAD_LETTER_CONTAINER_ID string = storage.outputs.deadLetterContainerId
output KV_NOTIFY_DELIVERY string = delivery
output RESOURCE_EVENT_TOPICS string = join([for (id, i) in eventSubscriptions: '${id}/${resourceTopics[i].outputs.group}/${resourceTopics[i].outputs.name}'], ' ')
output SYSTEM_TOPICS string = join([for (vault, i) in vaults: '${vault.resourceGroup}/${topics[i].outputs.name}'], ' ')
