// Read access to one watched vault, in whatever resource group it sits: the Key Vault Reader
// role on an Azure RBAC vault, or an access policy with list and get (metadata only: no secret
// value is ever read) on an access-policy vault.
param vaultName string
param principalId string
param accessPolicies bool = false

var keyVaultReader = '21090545-7ca7-4776-b22c-e363652d74d2'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!accessPolicies) {
  name: guid(vault.id, principalId, keyVaultReader)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultReader)
  }
}

resource policy 'Microsoft.KeyVault/vaults/accessPolicies@2023-07-01' = if (accessPolicies) {
  parent: vault
  name: 'add'
  properties: {
    accessPolicies: [
      {
        tenantId: subscription().tenantId
        objectId: principalId
        permissions: {
          secrets: ['list', 'get']
          keys: ['list', 'get']
          certificates: ['list', 'get']
        }
      }
    ]
  }
}
