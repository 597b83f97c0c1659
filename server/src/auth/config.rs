//! Authentication settings: the `--auth-*` flags (flattened into `serve`
//! and `demo`) and the validated [`AuthConfig`] the server runs with.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use sagascope_auth::{CsrfKey, ProxyAuth, RateLimitConfig, Role};

/// How people sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Local accounts (`sagascope user add`) with a password login page.
    Local,
    /// A trusted reverse proxy authenticates and passes the user name in a
    /// header (`--auth-proxy-header`); only from `--auth-trusted-proxies`.
    Proxy,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Local => "local",
            AuthMode::Proxy => "proxy",
        }
    }
}

/// A secret from the command line or environment; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// `12h`, `30m`, `90s`, `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let parsed = match trimmed.strip_suffix('d') {
        Some(days) => days
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|d| *d > 0)
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs),
        None => sagascope_domain::rules::parse_duration(trimmed),
    };
    parsed.ok_or_else(|| format!("`{text}` is not a duration such as 30m, 12h or 7d"))
}

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// `local`: password login for accounts made with `sagascope user add`.
    /// `proxy`: a trusted reverse proxy passes the user in
    /// --auth-proxy-header (API tokens work in both modes).
    #[arg(long, env = "SAGASCOPE_AUTH_MODE", value_enum, default_value = "local")]
    pub auth_mode: AuthMode,
    /// Proxy mode: request header with the authenticated user name, e.g.
    /// x-forwarded-user. Honoured only from --auth-trusted-proxies.
    #[arg(long, env = "SAGASCOPE_AUTH_PROXY_HEADER")]
    pub auth_proxy_header: Option<String>,
    /// Proxy mode: request header with the user's role (viewer, operator,
    /// admin); without it every proxy user gets --auth-proxy-default-role.
    #[arg(long, env = "SAGASCOPE_AUTH_PROXY_ROLE_HEADER")]
    pub auth_proxy_role_header: Option<String>,
    /// Addresses or CIDRs of the reverse proxies whose identity and
    /// X-Forwarded-For/-Host/-Proto headers are trusted, comma separated.
    #[arg(long, env = "SAGASCOPE_AUTH_TRUSTED_PROXIES", value_delimiter = ',')]
    pub auth_trusted_proxies: Vec<String>,
    /// Proxy mode: role of users whose request has no role header.
    #[arg(long, env = "SAGASCOPE_AUTH_PROXY_DEFAULT_ROLE", default_value = "viewer", value_parser = clap::value_parser!(Role))]
    pub auth_proxy_default_role: Role,
    /// Let anyone read (pages, GET /api/v1/*, the live stream) without
    /// signing in. Every change still needs a signed-in user with the role.
    #[arg(long, env = "SAGASCOPE_ANONYMOUS_VIEWER")]
    pub anonymous_viewer: bool,
    /// Lifetime of a login session (absolute, not sliding), e.g. 12h.
    #[arg(long, env = "SAGASCOPE_SESSION_TTL", default_value = "12h", value_parser = parse_ttl)]
    pub session_ttl: Duration,
    /// Hex secret (at least 32 bytes) for CSRF tokens. Generated at start
    /// when absent; replicas behind one load balancer must share one.
    #[arg(long, env = "SAGASCOPE_CSRF_SECRET", hide_env_values = true)]
    pub csrf_secret: Option<Secret>,
    /// Mark the session cookie `Secure` and send HSTS: set this whenever
    /// browsers reach sagascope over HTTPS (also behind a TLS proxy).
    #[arg(long, env = "SAGASCOPE_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

/// The validated authentication configuration.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Proxy-header authentication (proxy mode only).
    pub proxy: Option<ProxyAuth>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub anonymous_viewer: bool,
    pub session_ttl: Duration,
    pub csrf_key: CsrfKey,
    pub secure_cookies: bool,
    /// Login failures per (client ip, user name).
    pub login_limit: RateLimitConfig,
    /// Login failures per client ip, whatever the name (password spraying).
    pub ip_limit: RateLimitConfig,
}

/// Failures one address may have across all user names before it waits.
const IP_MAX_FAILURES: u32 = 20;

fn default_ip_limit() -> RateLimitConfig {
    RateLimitConfig {
        max_failures: IP_MAX_FAILURES,
        ..RateLimitConfig::default()
    }
}

fn parse_net(entry: &str) -> anyhow::Result<IpNet> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<std::net::IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .with_context(|| {
            format!("invalid trusted proxy {entry:?}: expected an IP address or CIDR such as 10.0.0.0/8")
        })
}

impl AuthConfig {
    /// Validates the flags. Without `--csrf-secret` a random key is made
    /// (and a warning logged, never the key).
    pub fn from_args(args: &AuthArgs) -> anyhow::Result<AuthConfig> {
        let trusted_proxies = args
            .auth_trusted_proxies
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| parse_net(e))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let proxy = match args.auth_mode {
            AuthMode::Local => None,
            AuthMode::Proxy => {
                let header = args.auth_proxy_header.as_deref().context(
                    "--auth-mode proxy needs --auth-proxy-header (e.g. x-forwarded-user)",
                )?;
                anyhow::ensure!(
                    !trusted_proxies.is_empty(),
                    "--auth-mode proxy needs --auth-trusted-proxies: the proxy header is only believed from those addresses"
                );
                let trusted: Vec<String> = trusted_proxies.iter().map(IpNet::to_string).collect();
                Some(ProxyAuth::new(
                    header,
                    args.auth_proxy_role_header.as_deref(),
                    &trusted,
                    args.auth_proxy_default_role,
                )?)
            }
        };
        let csrf_key = match &args.csrf_secret {
            Some(secret) => CsrfKey::from_hex(secret.expose()).context("invalid --csrf-secret")?,
            None => {
                tracing::warn!(
                    "no --csrf-secret given: generated a random one for this process; \
                     several replicas behind one load balancer must share one secret \
                     (e.g. `openssl rand -hex 32`), and a restart invalidates open pages' CSRF tokens"
                );
                CsrfKey::generate()
            }
        };
        Ok(AuthConfig {
            mode: args.auth_mode,
            proxy,
            trusted_proxies,
            anonymous_viewer: args.anonymous_viewer,
            session_ttl: args.session_ttl,
            csrf_key,
            secure_cookies: args.secure_cookies,
            login_limit: RateLimitConfig::default(),
            ip_limit: default_ip_limit(),
        })
    }

    /// Local login with anonymous read access and a random CSRF key: what
    /// `run::start` uses (API tests, benchmarks), so reads work without a
    /// login while every change still needs one.
    pub fn anonymous_viewer() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Local,
            proxy: None,
            trusted_proxies: Vec::new(),
            anonymous_viewer: true,
            session_ttl: Duration::from_secs(12 * 3600),
            csrf_key: CsrfKey::generate(),
            secure_cookies: false,
            login_limit: RateLimitConfig::default(),
            ip_limit: default_ip_limit(),
        }
    }

    /// Whether `peer` is one of the trusted proxies.
    pub fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<AuthConfig> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        AuthConfig::from_args(&cli.auth)
    }

    #[test]
    fn defaults_are_local_closed_and_twelve_hours() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.mode, AuthMode::Local);
        assert!(!config.anonymous_viewer);
        assert!(!config.secure_cookies);
        assert_eq!(config.session_ttl, Duration::from_secs(12 * 3600));
        assert!(config.proxy.is_none());
    }

    #[test]
    fn proxy_mode_needs_header_and_trusted_proxies() {
        assert!(parse(&["--auth-mode", "proxy"]).is_err());
        assert!(parse(&["--auth-mode", "proxy", "--auth-proxy-header", "x-user"]).is_err());
        let config = parse(&[
            "--auth-mode",
            "proxy",
            "--auth-proxy-header",
            "X-User",
            "--auth-trusted-proxies",
            "10.0.0.0/8,::1",
            "--auth-proxy-default-role",
            "operator",
        ])
        .unwrap();
        let proxy = config.proxy.unwrap();
        assert_eq!(proxy.user_header(), "x-user");
        assert_eq!(proxy.default_role(), Role::Operator);
        assert!(config.trusted_proxies.len() == 2);
        assert!(parse(&["--auth-trusted-proxies", "not-an-ip"]).is_err());
    }

    #[test]
    fn csrf_secret_is_checked_and_never_printed() {
        assert!(parse(&["--csrf-secret", "abcd"]).is_err());
        let hex = "ab".repeat(32);
        assert!(parse(&["--csrf-secret", &hex]).is_ok());
        let cli = Cli::try_parse_from(["x", "--csrf-secret", &hex]).unwrap();
        assert!(!format!("{cli:?}").contains(&hex));
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1_800));
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
