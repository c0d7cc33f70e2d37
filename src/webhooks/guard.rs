//! The SSRF guard: a webhook may only reach public addresses (unless private ones are allowed), checked when
//! the webhook is created and again at every delivery, through the resolver the delivery connects with, so a DNS
//! answer that changes between the check and the connection cannot slip through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

pub const MAX_URL_LENGTH: usize = 2048;

/// Whether an address is one a webhook must not reach: loopback, private, carrier-grade NAT, link-local (cloud
/// metadata lives there), unspecified, multicast, broadcast or reserved, also in IPv6 forms that embed an IPv4
/// address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10 (Alibaba's metadata is 100.100.100.200)
        || ip.is_link_local() // 169.254/16: AWS, GCP and Azure metadata at 169.254.169.254
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (Oracle's metadata is 192.0.0.192)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || ip.is_multicast()
        || a >= 240 // reserved 240/4 and broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata: fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still private)
        || (first & 0xff00) == 0xff00 // multicast
        || ip.segments()[..4] == [0x100, 0, 0, 0] // discard-only 100::/64
}

/// The IPv4 address inside IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and
/// 6to4 (2002::/16) addresses: each reaches that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// A webhook URL as given: absolute http(s), a host, no credentials, at most `MAX_URL_LENGTH` characters.
pub fn parse_url(text: &str) -> Result<Url, String> {
    if text.is_empty() || text.len() > MAX_URL_LENGTH {
        return Err(format!("url must be 1 to {MAX_URL_LENGTH} characters"));
    }
    let url = Url::parse(text).map_err(|error| format!("url is not a valid URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("url must be an http or https URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("url must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry credentials".to_owned());
    }
    Ok(url)
}

/// Resolves a URL's host and refuses it if any of its addresses is forbidden (unless `allow_private`).
pub async fn check_destination(url: &Url, allow_private: bool) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = resolve(host, port).await?;
    if !allow_private && let Some(bad) = addresses.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "url resolves to {}, a loopback, private, link-local or otherwise internal address",
            bad.ip()
        ));
    }
    Ok(())
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    // An IP literal in brackets ([::1]) is what `host_str` gives for IPv6.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err(format!("url host {host} has no address"))
            } else {
                Ok(addresses)
            }
        }
        Ok(Err(_)) => Err(format!("url host {host} does not resolve")),
        Err(_) => Err(format!("url host {host} did not resolve in time")),
    }
}

/// The resolver deliveries connect through: it resolves and hands over only addresses that passed the check, so
/// the connection goes to the very address that was checked.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve(&host, 0).await?;
            if !allow_private && addresses.iter().any(|a| is_forbidden(a.ip())) {
                return Err(format!("{host} resolves to an internal address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// An IP-literal URL host, which reqwest connects to without asking the resolver.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        is_forbidden(text.parse().expect("address"))
    }

    #[test]
    fn internal_ipv4_ranges_are_forbidden() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "100.100.100.200",
            "169.254.169.254",
            "169.254.0.1",
            "192.0.0.192",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(forbidden(address), "{address} should be forbidden");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.169.0.1",
            "223.255.255.255",
        ] {
            assert!(!forbidden(address), "{address} should pass");
        }
    }

    #[test]
    fn internal_ipv6_ranges_and_embedded_ipv4_forms_are_forbidden() {
        for address in [
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::",
        ] {
            assert!(forbidden(address), "{address} should be forbidden");
        }
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for address in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!forbidden(address), "{address} should pass");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(parse_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse_url("http://hooks.example.com:8080/").is_ok());
        for bad in [
            "",
            "hooks.example.com/x",
            "ftp://hooks.example.com/",
            "file:///etc/passwd",
            "https://user:pw@hooks.example.com/",
            "http://",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_url(&format!("https://a.example/{}", "x".repeat(MAX_URL_LENGTH))).is_err());
    }

    #[tokio::test]
    async fn a_loopback_destination_is_refused_unless_private_ones_are_allowed() {
        for text in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            let url = parse_url(text).expect("url");
            assert!(check_destination(&url, false).await.is_err(), "{text}");
            assert!(check_destination(&url, true).await.is_ok(), "{text}");
        }
    }
}
