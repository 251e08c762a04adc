// The system topic of this resource group's subscription (location global). A subscription's
// topic cannot have a managed identity, so its events are pushed to the function: they cannot
// take the queue path's identity-based delivery.
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: 'evgt-kv-notify-resources'
  location: 'global'
  tags: tags
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output name string = topic.name
