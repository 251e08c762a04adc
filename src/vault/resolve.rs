//! Name resolution for vault hosts: `localhost` and every name under it (`kv.localhost`) are
//! the loopback addresses, as RFC 6761 asks of resolvers (browsers, curl and systemd-resolved
//! do the same); everything else goes to the system resolver. A vault served on this machine
//! (a test vault, a tunnel to a private endpoint) can then be named like a real one.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The resolver: loopback for `*.localhost`, the system's for the rest.
pub struct LoopbackAware;

impl Resolve for LoopbackAware {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if is_localhost(&host) {
                let loopback = [
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ];
                let addrs: Addrs = Box::new(loopback.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                return Ok(addrs);
            }
            let found = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect::<Vec<_>>(),
                Err(source) => {
                    let host = host.clone();
                    return Err(Box::new(NotResolved { host, source }) as _);
                }
            };
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// A host name the system's resolver does not know (or could not look up).
#[derive(Debug, thiserror::Error)]
#[error("{host} does not resolve: {source}")]
pub struct NotResolved {
    /// The name.
    pub host: String,
    source: std::io::Error,
}

/// The name a request failed to resolve, if that is why it failed.
pub fn not_resolved<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a NotResolved> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(found) = error.downcast_ref::<NotResolved>() {
            return Some(found);
        }
        cause = error.source();
    }
    None
}

pub(super) fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_localhost_are_loopback_and_others_are_not() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("kv-a.localhost"));
        assert!(!is_localhost("localhost.contoso.com"));
        assert!(!is_localhost("kv.vault.azure.net"));
        assert!(!is_localhost("notlocalhost"));
    }
}
