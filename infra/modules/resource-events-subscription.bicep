// kv-notify's subscription on a subscription's system topic: Resource Manager's writes and
// deletes of role assignments and of vaults (their settings, private endpoint connections) to
// the function, 30 attempts over 24 hours. Filtered on Event Grid's side, so that the rest of
// the subscription's stream (virtual machines, deployments) is never delivered; kv-notify does
// not count on the filter. Deployed by hooks/postdeploy.sh once the function exists. No dead
// letters: writing them takes an identity, which a subscription's topic cannot have.
param topicName string
param functionAppId string

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = {
  name: topicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: topic
  name: 'kv-notify-access'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/function-trigger'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      subjectBeginsWith: '/subscriptions/'
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.Authorization/roleAssignments/write'
            'Microsoft.Authorization/roleAssignments/delete'
            'Microsoft.KeyVault/vaults/write'
            'Microsoft.KeyVault/vaults/delete'
            'Microsoft.KeyVault/vaults/privateEndpointConnections/write'
            'Microsoft.KeyVault/vaults/privateEndpointConnections/delete'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}
