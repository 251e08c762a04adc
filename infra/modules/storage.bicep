// The app's storage account: the host's blobs and queues, kv-notify's ledger tables, the
// deployment package and Event Grid's dead letters. No shared keys: every caller uses its
// identity and a role.
param name string
param location string
param tags object

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource package 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'app-package'
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'kv-notify-deadletter'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// The queue Event Grid writes to (delivery = 'queue'), the host's poison queue for it, and
// where kv-notify sets aside a message holding no event.
resource eventQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in ['kv-notify-events', 'kv-notify-events-poison', 'kv-notify-events-rejected']: {
  parent: queues
  name: queue
}]

output name string = account.name
output packageContainer string = '${account.properties.primaryEndpoints.blob}${package.name}'
output deadLetterContainerId string = deadLetters.id
output id string = account.id
