//! Black-box tests: the real `kv-notify` binary, started the way the Azure Functions host
//! starts it, with a real SMTP server receiving its mail.

mod acs_mail;
mod bad_input;
mod batches;
mod cli;
mod crash;
mod discovery;
mod eventgrid;
mod events;
mod exactly_once;
mod graph_mail;
mod health;
mod host_emulator;
mod hostile_vaults;
mod http_policy;
mod identity;
mod layers;
mod ledger_faults;
mod mail;
mod owner_tags;
mod package;
mod protocol;
mod rendering;
mod replay;
mod resilience;
mod routing;
mod setting_mistakes;
mod shared_ledger;
mod slow_clients;
mod smtp_failures;
mod smtp_oauth;
mod storage_faults;
mod support;
mod sweep;
mod sweep_faults;
mod upgrade;
