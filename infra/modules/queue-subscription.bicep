// kv-notify's subscription on a vault's system topic for a private network: the ten Key Vault
// event types written to the queue kv-notify-events of the app's storage account as the
// topic's own identity (Storage Queue Data Message Sender, given by queue-sender-role.bicep),
// read by the app's event-queue function over its own endpoint. Messages live two days, longer
// than the host's 23.5 hours of retries (host.json); what Event Grid cannot write in 24 hours
// is dead-lettered with the same identity. No hook: the queue exists before the function does.
param topicName string
param storageId string
param deadLetterContainer string = 'kv-notify-deadletter'

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' existing = {
  name: topicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: topic
  name: 'kv-notify-queue'
  properties: {
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storageId
          queueName: 'kv-notify-events'
          queueMessageTimeToLiveInSeconds: 172800
        }
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.KeyNearExpiry'
        'Microsoft.KeyVault.KeyExpired'
        'Microsoft.KeyVault.KeyNewVersionCreated'
        'Microsoft.KeyVault.CertificateNearExpiry'
        'Microsoft.KeyVault.CertificateExpired'
        'Microsoft.KeyVault.CertificateNewVersionCreated'
        'Microsoft.KeyVault.VaultAccessPolicyChanged'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageId
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}
