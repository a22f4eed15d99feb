//! Which addresses banter's clients may connect to, and a DNS resolver that enforces it.
//!
//! By default banter-scrape (and the Hub client, for redirects away from a public endpoint) refuses every address that is not public unicast on the Internet: private,
//! loopback, link-local, unique-local, CGNAT, multicast, broadcast, unspecified, reserved and documentation
//! ranges — and the IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), which are judged by the IPv4 address inside; Teredo
//! (`2001::/32`) and local-use NAT64 (`64:ff9b:1::/48`) are refused outright.
//!
//! Host names are checked by [`PublicOnly`], the client's resolver: the addresses it checks are the ones
//! the connection uses, so a second DNS answer (rebinding) cannot slip a private address in between the
//! check and the connection. Literal addresses in URLs (which skip DNS) are checked by [`check_url`], for the
//! first URL and for every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use url::{Host, Url};

/// True for IPv4 addresses a crawler must not reach by default.
fn v4_blocked(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0 // 0.0.0.0/8, "this network"
        || a >= 240 // 240.0.0.0/4, reserved
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, CGNAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24, IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && (b == 18 || b == 19)) // 198.18.0.0/15, benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
}

/// True for IPv6 addresses a crawler must not reach by default.
fn v6_blocked(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4_blocked(v4);
    }
    if s[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d.
        return v6.is_unspecified() || v6.is_loopback() || v4_blocked(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_blocked(embedded(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return v4_blocked(embedded(s[1], s[2])); // 6to4
    }
    (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[..4] == [0x100, 0, 0, 0]) // discard-only
        || (s[0] & 0xfe00) == 0xfc00 // unique-local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

/// True for addresses a crawler must not reach by default.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_blocked(*v4),
        IpAddr::V6(v6) => v6_blocked(*v6),
    }
}

fn refused(host: &str, ip: &IpAddr) -> String {
    format!("{host} is the non-public address {ip}")
}

/// Refuses schemes other than http(s) and, unless `allow_private`, a URL whose host is a non-public address
/// or a name that resolves to one (for a clear message early; the connection itself is guarded by
/// [`PublicOnly`], which checks the addresses it actually connects to).
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("only http and https are fetched, not {}:", url.scheme()));
    }
    let ip = match (url.host(), literal_ip(url)) {
        (None, _) => return Err("no host".into()),
        (_, Some(ip)) => ip,
        (Some(_), None) if allow_private => return Ok(()),
        (Some(d), None) => return resolve_public(&d.to_string()).map(|_| ()),
    };
    if !allow_private && is_private(&ip) {
        return Err(refused(&ip.to_string(), &ip));
    }
    Ok(())
}

/// The address a URL names literally (IPv4, IPv6, or a domain that parses as one); `None` for a name.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(d) => d.parse().ok(),
    }
}

/// The addresses of `host`, all of them public, or why not.
pub fn resolve_public(host: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> =
        (host, 0u16).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    if let Some(a) = addrs.iter().find(|a| is_private(&a.ip())) {
        return Err(format!("{host} resolves to the non-public address {}", a.ip()));
    }
    if addrs.is_empty() {
        return Err(format!("cannot resolve {host}: no addresses"));
    }
    Ok(addrs)
}

/// The client's resolver when private addresses are refused: resolves with the system resolver and fails
/// if any answer is non-public; the connection then uses exactly the addresses checked.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve_public(&host).map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_form_is_refused() {
        let blocked = [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9", // IPv4
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1", // IPv6
        ];
        for ip in blocked {
            assert!(is_private(&ip.parse().unwrap()), "{ip} should be refused");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2a00:1450:4001::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in public {
            assert!(!is_private(&ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn literal_hosts_in_urls_are_checked_in_every_spelling() {
        for u in [
            "http://127.0.0.1:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "https://[64:ff9b::7f00:1]/",
            "http://0/",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(check_url(&url, false).is_err(), "{u}");
            assert!(check_url(&url, true).is_ok(), "{u}");
        }
        assert!(check_url(&Url::parse("http://localhost/").unwrap(), false).is_err());
        assert!(check_url(&Url::parse("http://localhost/").unwrap(), true).is_ok());
        assert!(check_url(&Url::parse("ftp://example.org/").unwrap(), true).is_err());
        assert!(check_url(&Url::parse("file:///etc/passwd").unwrap(), true).is_err());
    }

    #[test]
    fn names_that_resolve_to_loopback_are_refused() {
        let err = resolve_public("localhost").unwrap_err();
        assert!(err.contains("non-public"), "{err}");
    }
}
