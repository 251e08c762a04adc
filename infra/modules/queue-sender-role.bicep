// With delivery = 'queue': the system topic's identity may write messages to the app's queues
// (Storage Queue Data Message Sender on the account: it can add messages, not read them).
param storageName string
param topicPrincipalId string

var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, topicPrincipalId, storageQueueDataMessageSender)
  scope: account
  properties: {
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}
