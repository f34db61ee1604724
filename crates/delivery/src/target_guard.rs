//! Which addresses deliveries may reach. Private, loopback, link-local and
//! other internal addresses are refused unless an operator allow-list admits
//! them; the check applies to every address a name resolves to, at the time
//! of the connection, so DNS cannot smuggle an internal target in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The allow-list of internal networks deliveries may reach.
#[derive(Clone, Debug, Default)]
pub struct TargetGuard {
    allowed: Vec<IpNet>,
}

impl TargetGuard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        TargetGuard { allowed }
    }

    /// Parses a comma-separated list of CIDRs (`127.0.0.1/32, 10.0.0.0/8`).
    pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{part}` is not a CIDR such as 127.0.0.1/32"))
            })
            .collect()
    }

    /// Whether a delivery may connect to this address.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }
}

/// Addresses that are not the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 of any IPv4
        }
    }
}

/// The address of a URL host that is an IP literal (no resolver sees those).
pub(crate) fn literal_ip(host: Option<&str>) -> Option<IpAddr> {
    host?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The addresses of `host` the guard permits; an error naming the host when
/// none is left.
pub(crate) async fn permitted_addresses(
    guard: &TargetGuard,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|addr| guard.permits(addr.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(if found.is_empty() {
            format!("`{host}` resolves to no address").into()
        } else {
            RefusedTarget(host.to_owned()).into()
        });
    }
    Ok(allowed)
}

/// A resolver that drops the addresses the guard refuses and fails when none is left.
pub(crate) struct GuardedResolver {
    pub guard: Arc<TargetGuard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let allowed = permitted_addresses(&guard, name.as_str()).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A target whose every address is internal and not allowed.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is a private, loopback or link-local address; deliveries may reach it only when \
     delivery.allow_targets admits it"
)]
pub struct RefusedTarget(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let guard = TargetGuard::default();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!guard.permits(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(guard.permits(public.parse().unwrap()), "{public}");
        }
        let loopback = TargetGuard::new(TargetGuard::parse_list("127.0.0.1/32, ::1").unwrap());
        assert!(loopback.permits("127.0.0.1".parse().unwrap()));
        assert!(loopback.permits("::1".parse().unwrap()));
        assert!(!loopback.permits("127.0.0.2".parse().unwrap()));
        assert!(!loopback.permits("10.0.0.1".parse().unwrap()));
        assert!(TargetGuard::parse_list("127.0.0.1/33").is_err());
        assert!(TargetGuard::parse_list("").unwrap().is_empty());
    }
}
