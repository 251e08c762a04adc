//! The app's storage account (`AzureWebJobsStorage`): who it is and how requests to it are
//! signed ([`Account`], shared with the ledger's table), and its queues ([`Queue`]): the one
//! Event Grid delivers to on private networks, and those kv-notify keeps beside it.

mod account;
mod queue;

pub use account::Account;
pub use queue::Queue;
