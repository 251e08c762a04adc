//! The app's storage account (`AzureWebJobsStorage`): who it is and how requests to it are
//! signed ([`Account`], shared with the ledger's table), its queues ([`Queue`]): the one Event
//! Grid delivers to on private networks, and those kv-notify keeps beside it; and the container
//! Event Grid dead-letters to ([`Container`]).

mod account;
mod container;
mod queue;

pub use account::Account;
pub use container::Container;
pub use queue::Queue;
