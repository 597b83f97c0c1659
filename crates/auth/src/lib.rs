//! Pure security logic for sagascope's login and roles.
//!
//! Everything here is framework- and storage-agnostic on purpose: the server
//! wires these functions into axum, and the store persists the plain records
//! ([`NewUser`], [`NewSession`], [`NewApiToken`]). Keeping the security
//! decisions in one small crate without I/O makes them easy to test exactly
//! and to review in one place (see DESIGN.md, section "Security").
//!
//! Concerns, one module each:
//! - [`Role`]: viewer < operator < admin, and what each may do.
//! - passwords: argon2id PHC hashes, the password policy, generated passwords.
//! - tokens: opaque random session and API tokens, stored only as SHA-256.
//! - CSRF: stateless per-session tokens (HMAC of the session hash) plus an
//!   Origin/Referer check.
//! - cookies: the exact `Set-Cookie` strings for the session cookie.
//! - rate limiting: login failures per (client ip, username) with back-off.
//! - proxy: trusted reverse-proxy header authentication.
//! - security headers: strict CSP (with Leptos nonces) and friends.

mod cookie;
mod csrf;
mod password;
mod proxy;
mod rate_limit;
mod records;
mod role;
mod security_headers;
mod token;

pub use cookie::{
    clear_session_cookie, session_cookie, session_token_from_cookie_header, SESSION_COOKIE_NAME,
};
pub use csrf::{
    proxy_csrf_binding, same_origin, CsrfKey, Scheme, CSRF_FORM_FIELD, CSRF_HEADER,
    MIN_CSRF_KEY_LEN,
};
pub use password::{
    check_password_policy, check_password_policy_for, dummy_verify, generate_password,
    hash_password, needs_rehash, verify_password, GENERATED_PASSWORD_LEN, MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
};
pub use proxy::{ProxyAuth, ProxyIdentity, DEFAULT_ROLE_HEADER};
pub use rate_limit::{LoginKey, RateLimitConfig, RateLimiter, RetryAfter};
pub use records::{validate_username, AuthMethod, NewApiToken, NewSession, NewUser, Principal};
pub use role::Role;
pub use security_headers::{content_security_policy, security_headers, CspNonce};
pub use token::{hash_token, looks_like_token, new_token, TokenKind};

/// Everything that can go wrong in this crate. Messages are written for the
/// operator or the user who caused them (e.g. a too-short password), never
/// containing secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The new password is shorter than the policy minimum.
    #[error("password is too short: it has {actual} characters, at least {min} are required")]
    PasswordTooShort {
        /// Required minimum, in Unicode characters.
        min: usize,
        /// Length of the rejected password, in Unicode characters.
        actual: usize,
    },
    /// The new password is longer than the policy maximum.
    #[error("password is too long: at most {max} characters are allowed")]
    PasswordTooLong {
        /// Allowed maximum, in Unicode characters.
        max: usize,
    },
    /// The new password is the user name (or differs from it only by case).
    #[error("password must not be the user name")]
    PasswordIsUsername,
    /// The argon2 implementation failed (not a wrong password).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A user name failed [`validate_username`].
    #[error("invalid user name: {0}")]
    InvalidUsername(&'static str),
    /// A role string is not one of `viewer`, `operator`, `admin`.
    #[error("unknown role {0:?}: expected viewer, operator or admin")]
    UnknownRole(String),
    /// A trusted-proxy entry is neither an IP address nor a CIDR.
    #[error(
        "invalid trusted proxy address {0:?}: expected an IP address or CIDR such as 10.0.0.0/8"
    )]
    InvalidProxyAddress(String),
    /// A proxy header name is empty or not a valid HTTP token.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// The CSRF key is too short to be a secret.
    #[error("CSRF secret is too short: at least {min} bytes are required")]
    SecretTooShort {
        /// Required minimum, in bytes.
        min: usize,
    },
    /// The CSRF key is not valid hex.
    #[error("CSRF secret must be hex-encoded")]
    SecretNotHex,
}

/// Result alias for this crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
