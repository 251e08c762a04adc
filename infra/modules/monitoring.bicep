// Application Insights on a Log Analytics workspace, without keys: the app sends as its identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING) with the Monitoring Metrics Publisher role.
param name string
param location string
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsName string = insights.name
output connectionString string = insights.properties.ConnectionString
