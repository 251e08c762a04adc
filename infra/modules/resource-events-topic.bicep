// A subscription's Event Grid system topic for Resource Manager's events (role assignments, a
// vault's settings): kv-notify's access alerts for vaults that use Azure RBAC. Only one system
// topic may exist per subscription: where one exists already, its name and resource group are
// given and kv-notify's subscription joins it (hooks/postdeploy.sh subscribes).
targetScope = 'subscription'

param groupName string
param existingTopicName string = ''
param location string
param tags object

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = if (empty(existingTopicName)) {
  name: groupName
  location: location
  tags: tags
}

module topic 'resource-events-system-topic.bicep' = if (empty(existingTopicName)) {
  name: 'kv-notify-resource-events'
  scope: resourceGroup(groupName)
  params: {
    tags: tags
  }
  dependsOn: [
    group
  ]
}

output group string = groupName
output name string = empty(existingTopicName) ? 'evgt-kv-notify-resources' : existingTopicName
