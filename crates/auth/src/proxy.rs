//! Trusted reverse-proxy authentication.
//!
//! In this mode an authenticating proxy (oauth2-proxy, an SSO gateway, …)
//! puts the user name in a configured header, e.g. `x-forwarded-user`, and
//! optionally the role in a second header (default [`DEFAULT_ROLE_HEADER`]).
//! Anyone can send such headers, so they count only when the TCP peer is
//! one of the configured proxy addresses or networks; from any other peer
//! they are ignored (the request is then treated as unauthenticated by this
//! mode). The proxy must overwrite (not append to) these headers on every
//! request, so that clients cannot smuggle their own values through it.
//!
//! The peer is the socket address of the connection, never an
//! `X-Forwarded-For` value, which the client controls.
//!
//! Failing closed: a name that fails [`validate_username`] or a role header
//! that is present but not a known role yields no identity rather than a
//! guess.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::records::validate_username;
use crate::{AuthError, Result, Role};

/// The default role header name.
pub const DEFAULT_ROLE_HEADER: &str = "x-sagascope-role";

/// A user authenticated by the trusted proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyIdentity {
    /// User name from the user header.
    pub name: String,
    /// Role from the role header, else the configured default.
    pub role: Role,
}

/// Configuration of trusted-proxy header authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    user_header: String,
    role_header: Option<String>,
    trusted: Vec<IpNet>,
    default_role: Role,
}

impl ProxyAuth {
    /// Builds the configuration.
    ///
    /// - `user_header`: header carrying the user name (case-insensitive).
    /// - `role_header`: header carrying the role, or `None` to always use
    ///   `default_role`.
    /// - `trusted`: proxy addresses (`10.0.0.5`, `::1`) or networks
    ///   (`10.0.0.0/8`, `fd00::/8`). An empty list trusts nobody.
    pub fn new<S: AsRef<str>>(
        user_header: &str,
        role_header: Option<&str>,
        trusted: &[S],
        default_role: Role,
    ) -> Result<Self> {
        let trusted = trusted
            .iter()
            .map(|entry| parse_net(entry.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(ProxyAuth {
            user_header: header_name(user_header)?,
            role_header: role_header.map(header_name).transpose()?,
            trusted,
            default_role,
        })
    }

    /// The user header name, lowercase.
    pub fn user_header(&self) -> &str {
        &self.user_header
    }

    /// The role header name, lowercase, if configured.
    pub fn role_header(&self) -> Option<&str> {
        self.role_header.as_deref()
    }

    /// The role of proxy users without a role header.
    pub fn default_role(&self) -> Role {
        self.default_role
    }

    /// Whether `peer` is a configured proxy. IPv4-mapped IPv6 peers
    /// (`::ffff:10.0.0.5`, seen on dual-stack listeners) match IPv4 entries.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// The identity asserted by the proxy: `Some` only when `peer` is
    /// trusted, `user_value` (the user header's value) is a valid user name,
    /// and `role_value` (the role header's value; ignored unless a role
    /// header is configured) is absent or a known role.
    pub fn authenticate(
        &self,
        peer: IpAddr,
        user_value: Option<&str>,
        role_value: Option<&str>,
    ) -> Option<ProxyIdentity> {
        if !self.is_trusted(peer) {
            return None;
        }
        let name = user_value?.trim();
        validate_username(name).ok()?;
        let role = match (&self.role_header, role_value) {
            (Some(_), Some(value)) => Role::parse(value)?,
            _ => self.default_role,
        };
        Some(ProxyIdentity {
            name: name.to_owned(),
            role,
        })
    }
}

fn parse_net(entry: &str) -> Result<IpNet> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        // Normalize e.g. 10.1.2.3/8 to 10.0.0.0/8.
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| AuthError::InvalidProxyAddress(entry.to_owned()))
}

/// Lowercases and checks an HTTP header name (RFC 9110 token characters).
fn header_name(name: &str) -> Result<String> {
    let name = name.trim();
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(AuthError::InvalidHeaderName(name.to_owned()));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn config() -> ProxyAuth {
        ProxyAuth::new(
            "X-Forwarded-User",
            Some(DEFAULT_ROLE_HEADER),
            &["10.0.0.0/8", "192.168.1.10", "fd00:1234::/32", "::1"],
            Role::Viewer,
        )
        .unwrap()
    }

    #[test]
    fn trusted_peers_ipv4_and_ipv6() {
        let c = config();
        for peer in [
            "10.0.0.1",
            "10.255.255.255",
            "192.168.1.10",
            "fd00:1234::1",
            "fd00:1234:ffff::9",
            "::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(c.is_trusted(ip(peer)), "{peer}");
        }
        for peer in [
            "11.0.0.1",
            "192.168.1.11",
            "127.0.0.1",
            "fd00:1235::1",
            "::2",
            "::ffff:11.0.0.1",
        ] {
            assert!(!c.is_trusted(ip(peer)), "{peer}");
        }
    }

    #[test]
    fn authenticates_only_from_trusted_peers() {
        let c = config();
        assert_eq!(
            c.authenticate(ip("10.0.0.7"), Some("alice"), None),
            Some(ProxyIdentity {
                name: "alice".into(),
                role: Role::Viewer
            })
        );
        assert_eq!(
            c.authenticate(
                ip("fd00:1234::7"),
                Some(" jane.doe@example.com "),
                Some("operator")
            ),
            Some(ProxyIdentity {
                name: "jane.doe@example.com".into(),
                role: Role::Operator
            })
        );
        // Untrusted peer: headers are ignored, whatever they say.
        assert_eq!(
            c.authenticate(ip("203.0.113.9"), Some("alice"), Some("admin")),
            None
        );
        assert_eq!(c.authenticate(ip("2001:db8::1"), Some("alice"), None), None);
    }

    #[test]
    fn fails_closed_on_bad_values() {
        let c = config();
        let peer = ip("10.0.0.7");
        assert_eq!(c.authenticate(peer, None, None), None);
        assert_eq!(c.authenticate(peer, Some(""), None), None);
        assert_eq!(c.authenticate(peer, Some("alice, mallory"), None), None);
        assert_eq!(c.authenticate(peer, Some("alice"), Some("superuser")), None);
        assert_eq!(c.authenticate(peer, Some("alice"), Some("")), None);
    }

    #[test]
    fn role_header_is_optional() {
        let c = ProxyAuth::new("x-forwarded-user", None, &["127.0.0.1"], Role::Operator).unwrap();
        assert_eq!(c.role_header(), None);
        assert_eq!(
            c.authenticate(ip("127.0.0.1"), Some("bob"), Some("admin")),
            Some(ProxyIdentity {
                name: "bob".into(),
                role: Role::Operator
            }),
            "without a configured role header a role value is ignored"
        );
    }

    #[test]
    fn config_validation() {
        let c = config();
        assert_eq!(c.user_header(), "x-forwarded-user");
        assert_eq!(c.role_header(), Some("x-sagascope-role"));
        assert_eq!(c.default_role(), Role::Viewer);
        assert_eq!(
            ProxyAuth::new("x-user", None, &["10.0.0.0/33"], Role::Viewer).unwrap_err(),
            AuthError::InvalidProxyAddress("10.0.0.0/33".into())
        );
        assert_eq!(
            ProxyAuth::new("x-user", None, &["proxy.local"], Role::Viewer).unwrap_err(),
            AuthError::InvalidProxyAddress("proxy.local".into())
        );
        assert_eq!(
            ProxyAuth::new("x user", None, &["10.0.0.1"], Role::Viewer).unwrap_err(),
            AuthError::InvalidHeaderName("x user".into())
        );
        assert_eq!(
            ProxyAuth::new("x-user", Some(""), &["10.0.0.1"], Role::Viewer).unwrap_err(),
            AuthError::InvalidHeaderName(String::new())
        );
        // Host bits in a CIDR are dropped; an empty list trusts nobody.
        let c = ProxyAuth::new("x-user", None, &["10.1.2.3/8"], Role::Viewer).unwrap();
        assert!(c.is_trusted(ip("10.200.0.1")));
        let none = ProxyAuth::new::<&str>("x-user", None, &[], Role::Viewer).unwrap();
        assert_eq!(
            none.authenticate(ip("127.0.0.1"), Some("alice"), None),
            None
        );
        // An IPv4-mapped entry trusts the plain IPv4 peer.
        let mapped = ProxyAuth::new("x-user", None, &["::ffff:10.0.0.5"], Role::Viewer).unwrap();
        assert!(mapped.is_trusted(ip("10.0.0.5")));
    }
}
