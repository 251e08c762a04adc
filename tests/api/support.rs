//! The test harness: a Functions host emulation, a real SMTP server, and event builders.

pub mod acs;
pub mod azurite;
pub mod binaries;
pub mod command;
pub mod endless;
pub mod events;
pub mod graph;
pub mod host;
pub mod identity;
pub mod proxy;
pub mod queues;
pub mod smtp;
pub mod stand_in;
pub mod tls;
pub mod vault;
pub mod wait;
pub mod webhook;

pub use acs::*;
pub use azurite::*;
pub use binaries::*;
pub use command::*;
pub use endless::*;
pub use events::*;
pub use graph::*;
pub use host::*;
pub use identity::*;
pub use proxy::*;
pub use queues::*;
pub use smtp::*;
pub use vault::*;
pub use wait::*;
pub use webhook::*;
