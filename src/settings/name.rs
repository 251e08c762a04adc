//! The names of the settings, in one place.

/// A webhook added to the built-in `security` channel.
pub const ALERT_WEBHOOK_URL: &str = "ALERT_WEBHOOK_URL";
/// Azure Communication Services' endpoint, for mail as the app's managed identity.
pub const ACS_ENDPOINT: &str = "ACS_ENDPOINT";
/// Azure Communication Services' connection string (it holds the access key).
pub const ACS_CONNECTION_STRING: &str = "ACS_CONNECTION_STRING";
/// The verified address ACS Email sends from.
pub const ACS_SENDER: &str = "ACS_SENDER";
/// A user-assigned managed identity's client id.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Microsoft Graph's endpoint (a national cloud's).
pub const GRAPH_ENDPOINT: &str = "GRAPH_ENDPOINT";
/// The mailbox Graph sends as.
pub const GRAPH_SENDER: &str = "GRAPH_SENDER";
/// Which way mail leaves: `smtp`, `graph`, `acs` or `outbox`.
pub const MAIL_TRANSPORT: &str = "MAIL_TRANSPORT";
/// How SMTP logs in: `password` or `xoauth2`.
pub const SMTP_AUTH: &str = "SMTP_AUTH";
/// What SMTP's XOAUTH2 tokens are for.
pub const SMTP_OAUTH_RESOURCE: &str = "SMTP_OAUTH_RESOURCE";
/// Bound on a whole invocation.
pub const DEADLINE_SECS: &str = "DEADLINE_SECS";
/// The app folder, set by the Functions host.
pub const FUNCTIONS_APP_ROOT_PATH: &str = "FUNCTIONS_APP_ROOT_PATH";
/// The persistent home of a function app.
pub const HOME: &str = "HOME";
/// The app's storage account (a connection string), set by the Functions host.
pub const AZURE_WEB_JOBS_STORAGE: &str = "AzureWebJobsStorage";
/// The storage account's name, for an identity-based `AzureWebJobsStorage`.
pub const STORAGE_ACCOUNT_NAME: &str = "AzureWebJobsStorage__accountName";
/// The Table service URI, for an identity-based `AzureWebJobsStorage`.
pub const STORAGE_TABLE_URI: &str = "AzureWebJobsStorage__tableServiceUri";
/// The Queue service URI, for an identity-based `AzureWebJobsStorage`.
pub const STORAGE_QUEUE_URI: &str = "AzureWebJobsStorage__queueServiceUri";
/// The Blob service URI, for an identity-based `AzureWebJobsStorage`.
pub const STORAGE_BLOB_URI: &str = "AzureWebJobsStorage__blobServiceUri";
/// How an identity-based `AzureWebJobsStorage` authenticates (`managedidentity`).
pub const STORAGE_CREDENTIAL: &str = "AzureWebJobsStorage__credential";
/// The user-assigned identity of an identity-based `AzureWebJobsStorage`.
pub const STORAGE_CLIENT_ID: &str = "AzureWebJobsStorage__clientId";
/// The managed-identity endpoint, set by the platform.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// The managed-identity endpoint's secret header, set by the platform.
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// Which ledger: `file` or `table`.
pub const LEDGER: &str = "LEDGER";
/// The ledger file.
pub const LEDGER_PATH: &str = "LEDGER_PATH";
/// The ledger's table in the storage account.
pub const LEDGER_TABLE: &str = "LEDGER_TABLE";
/// The blob container Event Grid dead-letters to, which the health notice looks into.
pub const DEADLETTER_CONTAINER: &str = "DEADLETTER_CONTAINER";
/// How long the ledger remembers an action.
pub const LEDGER_RETENTION_DAYS: &str = "LEDGER_RETENTION_DAYS";
/// The sender of every mail.
pub const MAIL_FROM: &str = "MAIL_FROM";
/// Where mail goes without SMTP.
pub const OUTBOX_DIR: &str = "OUTBOX_DIR";
/// Owners of every object no `[[owners]]` entry matches.
pub const OWNER_EMAILS: &str = "OWNER_EMAILS";
/// The routing rules file.
pub const RULES_FILE: &str = "RULES_FILE";
/// The security contacts.
pub const SECURITY_EMAILS: &str = "SECURITY_EMAILS";
/// Whether SMTP connections are reused.
pub const SMTP_POOL: &str = "SMTP_POOL";
/// Bound on one SMTP send.
pub const SMTP_TIMEOUT_SECS: &str = "SMTP_TIMEOUT_SECS";
/// The SMTP connection URL (it may hold a password).
pub const SMTP_URL: &str = "SMTP_URL";
/// Custom mail templates.
pub const TEMPLATES_DIR: &str = "TEMPLATES_DIR";
/// Bound on one webhook call.
pub const WEBHOOK_TIMEOUT_SECS: &str = "WEBHOOK_TIMEOUT_SECS";
/// Set by Azure App Service: the app runs in Azure.
pub const WEBSITE_INSTANCE_ID: &str = "WEBSITE_INSTANCE_ID";
/// The function app's name, set by the platform.
pub const WEBSITE_SITE_NAME: &str = "WEBSITE_SITE_NAME";
/// Whether the daily sweep reads Entra ID's application secrets and certificates too.
pub const ENTRA_CREDENTIALS: &str = "ENTRA_CREDENTIALS";
/// The vaults the expiry sweep reads.
pub const VAULTS: &str = "VAULTS";
/// Subscriptions whose vaults the expiry sweep finds through Azure Resource Manager.
pub const SUBSCRIPTIONS: &str = "SUBSCRIPTIONS";
/// Azure Resource Manager's endpoint (a national cloud's).
pub const ARM_ENDPOINT: &str = "ARM_ENDPOINT";
/// The reminder ladder: days before expiry (negative: after).
pub const REMINDER_DAYS: &str = "REMINDER_DAYS";
/// Bound on one expiry sweep.
pub const SWEEP_BUDGET_SECS: &str = "SWEEP_BUDGET_SECS";
/// What Key Vault tokens are for (a national cloud's Key Vault service).
pub const KEY_VAULT_RESOURCE: &str = "KEY_VAULT_RESOURCE";
/// The daily sweep's NCRONTAB schedule, read by the host from the timer's binding.
pub const SWEEP_SCHEDULE: &str = "SWEEP_SCHEDULE";
/// The tag that names an object's owners.
pub const OWNER_TAG: &str = "OWNER_TAG";
/// Domains an owner tag's addresses may be in, beyond those the configuration mails.
pub const OWNER_TAG_DOMAINS: &str = "OWNER_TAG_DOMAINS";

/// Every setting kv-notify reads that a user sets: what a misspelt name is compared with.
pub const OWN: &[&str] = &[
    ALERT_WEBHOOK_URL,
    ACS_ENDPOINT,
    ACS_CONNECTION_STRING,
    ACS_SENDER,
    AZURE_CLIENT_ID,
    GRAPH_ENDPOINT,
    GRAPH_SENDER,
    MAIL_TRANSPORT,
    SMTP_AUTH,
    SMTP_OAUTH_RESOURCE,
    DEADLINE_SECS,
    LEDGER,
    LEDGER_PATH,
    LEDGER_TABLE,
    DEADLETTER_CONTAINER,
    LEDGER_RETENTION_DAYS,
    MAIL_FROM,
    OUTBOX_DIR,
    OWNER_EMAILS,
    RULES_FILE,
    SECURITY_EMAILS,
    SMTP_POOL,
    SMTP_TIMEOUT_SECS,
    SMTP_URL,
    TEMPLATES_DIR,
    WEBHOOK_TIMEOUT_SECS,
    VAULTS,
    SUBSCRIPTIONS,
    ENTRA_CREDENTIALS,
    ARM_ENDPOINT,
    REMINDER_DAYS,
    SWEEP_BUDGET_SECS,
    KEY_VAULT_RESOURCE,
    OWNER_TAG,
    OWNER_TAG_DOMAINS,
    SWEEP_SCHEDULE,
];

/// Settings the platform sets, which kv-notify reads but nobody types.
pub const PLATFORM: &[&str] = &[
    FUNCTIONS_APP_ROOT_PATH,
    HOME,
    AZURE_WEB_JOBS_STORAGE,
    STORAGE_ACCOUNT_NAME,
    STORAGE_TABLE_URI,
    STORAGE_QUEUE_URI,
    STORAGE_BLOB_URI,
    STORAGE_CREDENTIAL,
    STORAGE_CLIENT_ID,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    WEBSITE_INSTANCE_ID,
    WEBSITE_SITE_NAME,
];
