// The vault's Event Grid system topic, with an identity for dead-lettering. Only one system
// topic may exist per vault: where one exists already (Defender, a Logic App, a portal click),
// its name is given and kv-notify's subscription joins it (hooks/postdeploy.sh subscribes).
param vaultName string
param existingTopicName string = ''
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource created 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = if (empty(existingTopicName)) {
  name: 'evgt-${vaultName}'
  location: vault.location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource given 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = if (!empty(existingTopicName)) {
  name: existingTopicName
}

output name string = empty(existingTopicName) ? created.name : given.name
output principalId string = empty(existingTopicName) ? created.identity.principalId : given.identity.principalId
