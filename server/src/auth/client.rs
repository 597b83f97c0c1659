//! Where a request comes from: the client address (for rate limits and the
//! audit log) and the origin it was addressed to (for the CSRF Origin
//! check). Forwarding headers (`X-Forwarded-For`, `-Host`, `-Proto`) count
//! only when the TCP peer is a trusted proxy; anyone else could forge them.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::{header, HeaderMap};
use sagascope_auth::Scheme;

use super::AuthConfig;

/// The request's origin facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The TCP peer, if known.
    pub peer: Option<IpAddr>,
    /// The client: the peer, or behind trusted proxies the right-most
    /// untrusted `X-Forwarded-For` entry.
    pub ip: IpAddr,
    /// Host (with port) the browser addressed.
    pub host: String,
    /// Scheme the browser used.
    pub scheme: Scheme,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

pub fn client_info(config: &AuthConfig, headers: &HeaderMap, peer: Option<IpAddr>) -> ClientInfo {
    let trusted_peer = peer.is_some_and(|p| config.is_trusted_proxy(p));
    let ip = match (peer, trusted_peer) {
        (Some(peer), true) => forwarded_client(config, headers).unwrap_or(peer),
        (Some(peer), false) => peer,
        (None, _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let forwarded_host = trusted_peer
        .then(|| header_str(headers, "x-forwarded-host"))
        .flatten()
        .map(|h| h.split(',').next().unwrap_or_default().trim().to_string());
    let host = forwarded_host
        .or_else(|| header_str(headers, header::HOST.as_str()).map(str::to_string))
        .unwrap_or_default();
    let forwarded_proto = trusted_peer
        .then(|| header_str(headers, "x-forwarded-proto"))
        .flatten()
        .map(|p| {
            p.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let scheme = match forwarded_proto.as_deref() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ if config.secure_cookies => Scheme::Https,
        _ => Scheme::Http,
    };
    ClientInfo {
        peer,
        ip,
        host,
        scheme,
    }
}

/// The right-most `X-Forwarded-For` address that is not a trusted proxy
/// (entries left of it could be forged by the client).
fn forwarded_client(config: &AuthConfig, headers: &HeaderMap) -> Option<IpAddr> {
    let entries: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|e| e.trim().parse::<IpAddr>().ok())
        .collect();
    entries
        .iter()
        .rev()
        .find(|ip| !config.is_trusted_proxy(**ip))
        .or(entries.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config(trusted: &[&str]) -> AuthConfig {
        let mut config = AuthConfig::anonymous_viewer();
        config.trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
        config
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let h = headers(&[
            ("host", "internal:3000"),
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
            ("x-forwarded-host", "scope.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        let untrusted = client_info(&config(&[]), &h, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(untrusted.ip, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(untrusted.host, "internal:3000");
        assert_eq!(untrusted.scheme, Scheme::Http);

        let trusted = client_info(
            &config(&["10.0.0.0/8"]),
            &h,
            Some("10.0.0.5".parse().unwrap()),
        );
        assert_eq!(trusted.ip, "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(trusted.host, "scope.example.com");
        assert_eq!(trusted.scheme, Scheme::Https);

        // A chain of trusted proxies: skip them all.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 10.0.0.9")]);
        let chained = client_info(
            &config(&["10.0.0.0/8"]),
            &h,
            Some("10.0.0.5".parse().unwrap()),
        );
        assert_eq!(chained.ip, "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(
            client_info(&config(&[]), &h, None).ip,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }
}
