// The function app on Flex Consumption: the custom runtime (kv-notify's own binary, from the
// release zip in the package container), a system-assigned identity, and identity-based host
// storage. Settings that are secrets are Key Vault references.
param name string
param location string
param tags object
param storageName string
param packageContainer string
param appInsightsConnectionString string

@description('kv-notify settings; empty values are left out.')
param settings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

var hostSettings = {
  AzureWebJobsStorage__accountName: storageName
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

var kvNotifySettings = filter(items(settings), setting => !empty(setting.value))

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: packageContainer
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 512
        maximumInstanceCount: 40
      }
    }
    siteConfig: {
      appSettings: concat(
        map(items(hostSettings), setting => { name: setting.key, value: setting.value }),
        map(kvNotifySettings, setting => { name: setting.key, value: setting.value })
      )
    }
  }
}

output name string = site.name
output id string = site.id
output principalId string = site.identity.principalId
