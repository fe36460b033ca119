//! No server-side request forgery: which addresses a webhook may reach, checked when a URL is
//! subscribed and again, on the addresses actually connected to, whenever a delivery opens a
//! connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Host;

use crate::domain::webhooks::model::WebhookUrl;
use crate::domain::webhooks::ports::UrlGuard;

/// The URL guard: refuses loopback, private, link-local (cloud metadata), unspecified,
/// shared, multicast and broadcast addresses unless private networks are allowed.
#[derive(Debug, Clone, Copy)]
pub struct AddressGuard {
    allow_private: bool,
}

impl AddressGuard {
    /// A guard; `allow_private` lets everything through.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// The addresses `url`'s host stands for (itself, for an address literal), each checked;
    /// `Err` with why if one is refused or there are none.
    pub async fn resolve(&self, url: &WebhookUrl) -> Result<Vec<SocketAddr>, String> {
        let parsed = url.url();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match parsed.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("host '{name}' does not resolve: {e}"))?
                .collect(),
            None => return Err("the URL names no host".to_owned()),
        };
        if addrs.is_empty() {
            return Err("the URL's host resolves to no address".to_owned());
        }
        self.check_addrs(&addrs)?;
        Ok(addrs)
    }

    /// `Err` with why if `url`'s host is an address literal that is refused; a name is not
    /// resolved here (`Ok`), it is for whoever resolves it to check its addresses.
    pub fn check_literal(&self, url: &WebhookUrl) -> Result<(), String> {
        let parsed = url.url();
        let port = parsed.port_or_known_default().unwrap_or(80);
        match parsed.host() {
            Some(Host::Ipv4(ip)) => self.check_addrs(&[SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => self.check_addrs(&[SocketAddr::new(IpAddr::V6(ip), port)]),
            Some(Host::Domain(_)) => Ok(()),
            None => Err("the URL names no host".to_owned()),
        }
    }

    /// `Err` naming the first refused address, unless private networks are allowed.
    pub fn check_addrs(&self, addrs: &[SocketAddr]) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        match addrs.iter().find(|a| is_refused(a.ip())) {
            Some(addr) => Err(format!(
                "the URL's host resolves to {}, a loopback, private, link-local or otherwise \
                 non-public address, which webhooks may not reach",
                addr.ip()
            )),
            None => Ok(()),
        }
    }
}

impl UrlGuard for AddressGuard {
    async fn check(&self, url: &WebhookUrl) -> Result<(), String> {
        self.resolve(url).await.map(|_| ())
    }
}

/// Whether a webhook may not reach `ip` (when private networks are not allowed).
pub fn is_refused(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing is judged as itself.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7: unique local (fd00::/8 holds cloud metadata such as fd00:ec2::254).
                || (first & 0xfe00) == 0xfc00
                // fe80::/10 link-local and fec0::/10 (deprecated) site-local.
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // 64:ff9b::/96 NAT64: judged by the IPv4 address it embeds.
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && refused_v4(embedded_v4(v6)))
        }
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        // 169.254.0.0/16, where cloud metadata services (169.254.169.254) answer.
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 "this network", 100.64.0.0/10 carrier-grade NAT, 192.0.0.0/24 IETF.
        || a == 0
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15 benchmarking, 240.0.0.0/4 reserved.
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused_and_public_ones_pass() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(is_refused(refused.parse().unwrap()), "{refused}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_refused(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn the_guard_checks_literals_and_resolved_names_unless_allowed() {
        let strict = AddressGuard::new(false);
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
        ] {
            let url = WebhookUrl::parse(url).unwrap();
            let error = strict.check(&url).await.unwrap_err();
            assert!(error.contains("non-public"), "{url:?}: {error}");
        }
        let open = AddressGuard::new(true);
        assert!(
            open.check(&WebhookUrl::parse("http://127.0.0.1:9/x").unwrap())
                .await
                .is_ok()
        );
        assert!(
            strict
                .check(&WebhookUrl::parse("https://93.184.216.34/").unwrap())
                .await
                .is_ok()
        );
    }
}
