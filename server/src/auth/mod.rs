//! Login and roles on the HTTP surface (DESIGN.md, "Security"): who is
//! asking ([`RequestAuth`], resolved once per request by [`middleware`]),
//! what they may do (reads need a viewer unless `--anonymous-viewer`;
//! every mutation needs a signed-in user, a CSRF token on cookie and proxy
//! sessions, and the role its route declares with [`require`]), and the
//! record of it ([`audit`]). The security decisions themselves live in the
//! pure `sagascope-auth` crate; this module wires them into axum.
//!
//! One file per concern:
//! - `config.rs`: the `--auth-*` flags and [`AuthConfig`].
//! - `client.rs`: client address, host and scheme (trusted proxies).
//! - `identify.rs`: bearer token → session cookie → proxy header.
//! - `request_auth.rs`: [`RequestAuth`], the per-request view handlers use.
//! - `middleware.rs`: the guard every request passes, and the security
//!   headers (CSP with a per-request nonce) on every response.
//! - `require.rs`: [`require`], a route layer declaring a role.
//! - `audit.rs`: [`audit`] and [`Audit`], append-only audit entries.
//! - `leptos_context.rs`: the nonce and session for server-rendered pages.
//! - `login.rs`, `tokens.rs`, `audit_api.rs`: the endpoints; `routes.rs`.
//! - `admin_cli.rs`: `sagascope user …` and `sagascope token …`.

pub mod admin_cli;
mod audit;
pub(crate) mod audit_api;
mod client;
mod config;
pub mod denials;
mod identify;
mod leptos_context;
pub(crate) mod login;
pub mod middleware;
mod reject;
mod request_auth;
mod require;
mod routes;
pub(crate) mod tokens;

use std::net::IpAddr;

use sagascope_auth::{LoginKey, RateLimiter};

pub use audit::{audit, Audit};
pub use config::{parse_ttl, AuthArgs, AuthConfig, AuthMode, Secret};
pub use leptos_context::provide_request_context;
pub use middleware::auth_middleware;
pub use reject::reject;
pub use request_auth::RequestAuth;
pub use require::{require, RequireRole};
pub use routes::api_routes;

/// The configuration plus the in-memory login rate limiters; one per
/// process, shared through `AppState`.
#[derive(Debug)]
pub struct AuthState {
    pub config: AuthConfig,
    /// Failures per (client ip, user name).
    pub login_limiter: RateLimiter<LoginKey>,
    /// Failures per client ip across names (password spraying).
    pub ip_limiter: RateLimiter<IpAddr>,
    /// Password verifications running at once. Each argon2id run holds
    /// 19 MiB for ~0.1 s of a core: unbounded, a burst of 150 logins held
    /// 2.9 GB; bounded, a burst costs at most this many × 19 MiB, and the
    /// excess is refused at once with 503 and `Retry-After`.
    pub hashing: tokio::sync::Semaphore,
    /// Refusals of the auth guard: audited once per address, kind and
    /// minute, counted otherwise (see `denials.rs`).
    pub denials: denials::DenialLog,
}

/// Password verifications allowed at once (see [`AuthState::hashing`]).
pub const CONCURRENT_PASSWORD_CHECKS: usize = 4;

impl AuthState {
    pub fn new(config: AuthConfig) -> AuthState {
        AuthState {
            login_limiter: RateLimiter::new(config.login_limit),
            ip_limiter: RateLimiter::new(config.ip_limit),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
            denials: Default::default(),
            config,
        }
    }
}
