// Event Grid writes events it gave up on (30 attempts over 24 hours) to the dead-letter
// container as the system topic's identity.
param storageName string
param topicPrincipalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, topicPrincipalId, storageBlobDataContributor)
  scope: account
  properties: {
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}
