//! Trusted reverse proxies: the addresses whose `Forwarded` /
//! `X-Forwarded-For` headers name the real client
//! ([`ServerConfig::trusted_proxies`](super::ServerConfig::trusted_proxies)).
//!
//! Behind a load balancer every TCP connection comes from the balancer, so
//! per-IP limits would count all users as one. The forwarded headers are
//! believed only from a configured proxy, and only as far as the proxies
//! go: the client is the right-most address that is not itself a trusted
//! proxy, so a client cannot name itself by sending the header (its value
//! stands left of what the proxy appends).

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::ServerError;

/// A set of proxy addresses and networks (CIDR).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses addresses and networks such as `10.0.0.0/8`, `127.0.0.2`,
    /// `fd00::/8`; an entry that does not parse is an error naming it.
    pub fn parse<I, S>(entries: I) -> Result<Self, ServerError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let bad = || {
                ServerError::Config(format!(
                    "trusted proxies: `{entry}` is not an IP address or a CIDR network"
                ))
            };
            let (addr, len) = match entry.split_once('/') {
                Some((addr, len)) => (addr, Some(len)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(len) => len
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(bad)?,
                None => max,
            };
            nets.push((addr, len));
        }
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets
            .iter()
            .any(|&(net, len)| in_net(ip, canonical(net), len))
    }

    /// The client behind `peer`, a trusted proxy, from the request's
    /// `Forwarded` (RFC 7239) or, without it, `X-Forwarded-For` headers:
    /// the right-most address not itself trusted. `peer` when neither
    /// header names one.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded: Vec<&str> = headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect();
        let hops: Vec<&str> = if forwarded.is_empty() {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect()
        } else {
            forwarded
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An entry that does not parse was written by the client (the
            // proxies write addresses): stop at the last one they wrote.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// The `for=` value of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`,
/// `[::1]`, `[::1]:80`, optionally quoted (`Forwarded`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (addr, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse().ok()
}

/// IPv4-mapped IPv6 addresses as IPv4, so that one network matches both.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse(["10.0.0.0/8", " 127.0.0.2 ", "fd00::/8", ""]).unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("127.0.0.2")));
        assert!(!t.contains(ip("127.0.0.3")));
        assert!(t.contains(ip("fd12::1")));
        assert!(t.contains(ip("::ffff:10.9.9.9")));
        assert!(!t.contains(ip("11.0.0.1")));
        let all = TrustedProxies::parse(["0.0.0.0/0"]).unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(TrustedProxies::parse([bad]).is_err(), "{bad}");
        }
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let t = TrustedProxies::parse(["127.0.0.2", "10.0.0.0/8"]).unwrap();
        let proxy = ip("127.0.0.2");
        // What nginx appends: the client's own header first, then its peer.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 127.0.0.3")]);
        assert_eq!(t.client(proxy, &spoofed), ip("127.0.0.3"));
        // Two proxies: the inner one is trusted too.
        let chain = headers(&[("x-forwarded-for", "9.9.9.9, 203.0.113.7, 10.0.0.5")]);
        assert_eq!(t.client(proxy, &chain), ip("203.0.113.7"));
        // Split over two header lines.
        let split = headers(&[
            ("x-forwarded-for", "9.9.9.9"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(t.client(proxy, &split), ip("203.0.113.8"));
        // No header: the proxy itself (its health checks, say).
        assert_eq!(t.client(proxy, &HeaderMap::new()), proxy);
        // Garbage written by the client stops the walk.
        let junk = headers(&[("x-forwarded-for", "junk, 10.0.0.9")]);
        assert_eq!(t.client(proxy, &junk), ip("10.0.0.9"));
        // RFC 7239, preferred over X-Forwarded-For.
        let fwd = headers(&[
            (
                "forwarded",
                r#"for=1.1.1.1;proto=http, for="[2001:db8::7]:4711""#,
            ),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(t.client(proxy, &fwd), ip("2001:db8::7"));
        let port = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(t.client(proxy, &port), ip("203.0.113.9"));
    }
}
