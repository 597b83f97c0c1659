//! Plain records handed to the store, and the authenticated principal.
//!
//! No persistence here: the store crate maps these onto tables. They hold
//! only what is safe to store: password PHC hashes and token SHA-256
//! hashes, never plaintext secrets.

use chrono::{DateTime, TimeDelta, Utc};

use crate::token::{new_token, TokenKind};
use crate::{AuthError, Result, Role};

/// Longest accepted user name, in bytes (names are ASCII).
const MAX_USERNAME_LEN: usize = 64;

/// Checks a user name (local account or from a trusted proxy header):
/// 1 to 64 ASCII characters from letters, digits and `. _ - @ +`,
/// starting with a letter or digit. Narrow on purpose: names end up in
/// logs, audit trails and HTML, and the allowed set still covers e-mail
/// style names that SSO proxies send.
pub fn validate_username(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(AuthError::InvalidUsername("it is empty"));
    }
    if name.len() > MAX_USERNAME_LEN {
        return Err(AuthError::InvalidUsername(
            "it is longer than 64 characters",
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(AuthError::InvalidUsername(
            "it must start with a letter or digit",
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b".-_@+".contains(&b);
    if !name.bytes().all(allowed) {
        return Err(AuthError::InvalidUsername(
            "only letters, digits and . _ - @ + are allowed",
        ));
    }
    Ok(())
}

/// A local account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name, valid per [`validate_username`].
    pub name: String,
    /// The account's role.
    pub role: Role,
    /// argon2id PHC string from [`crate::hash_password`].
    pub password_hash: String,
}

/// A browser session to store. The plaintext token goes only into the
/// cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 hex of the session token: the lookup key.
    pub token_hash: String,
    /// Whose session it is.
    pub user_name: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted (the cookie's `Max-Age` matches).
    pub expires_at: DateTime<Utc>,
}

impl NewSession {
    /// Issues a session for `user_name` valid for `ttl` from `now`: returns
    /// the plaintext token (for the cookie) and the record to store.
    pub fn issue(user_name: &str, now: DateTime<Utc>, ttl: TimeDelta) -> (String, NewSession) {
        let (plaintext, token_hash) = new_token(TokenKind::Session);
        let session = NewSession {
            token_hash,
            user_name: user_name.to_owned(),
            created_at: now,
            expires_at: now + ttl,
        };
        (plaintext, session)
    }
}

/// An API token to store. The plaintext is shown to its creator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Human label, e.g. "ci-retry-bot".
    pub label: String,
    /// The user the token acts for.
    pub user_name: String,
    /// The token's own role; the server must not grant more than the
    /// creating user has.
    pub role: Role,
    /// SHA-256 hex of the token: the lookup key.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted; `None` until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiToken {
    /// Issues an API token: returns the plaintext (display once) and the
    /// record to store.
    pub fn issue(
        label: &str,
        user_name: &str,
        role: Role,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> (String, NewApiToken) {
        let (plaintext, token_hash) = new_token(TokenKind::Api);
        let token = NewApiToken {
            label: label.to_owned(),
            user_name: user_name.to_owned(),
            role,
            token_hash,
            created_at: now,
            expires_at,
        };
        (plaintext, token)
    }
}

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Session cookie from a local password login.
    Session,
    /// `Authorization: Bearer` API token.
    ApiToken,
    /// Trusted reverse-proxy header.
    Proxy,
}

impl AuthMethod {
    /// Whether mutating requests need a CSRF token. Cookies, and whatever
    /// credential a reverse proxy keeps (usually its own cookie), are
    /// ambient: the browser attaches them to cross-site requests. A bearer
    /// token is not.
    pub const fn requires_csrf(self) -> bool {
        match self {
            AuthMethod::Session | AuthMethod::Proxy => true,
            AuthMethod::ApiToken => false,
        }
    }
}

/// Who is making a request, as the server's handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name.
    pub name: String,
    /// Effective role (an API token's role, not its owner's).
    pub role: Role,
    /// How the request was authenticated.
    pub method: AuthMethod,
}

impl Principal {
    /// Whether this principal may do something that needs `required`.
    pub fn allows(&self, required: Role) -> bool {
        self.role.allows(required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{hash_token, looks_like_token};

    #[test]
    fn usernames() {
        for ok in [
            "a",
            "alice",
            "ops.bot-1",
            "jane.doe+ops@example.com",
            "9lives",
            &"x".repeat(64),
        ] {
            assert_eq!(validate_username(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "it is empty"),
            (&*"x".repeat(65), "it is longer than 64 characters"),
            ("-alice", "it must start with a letter or digit"),
            (".alice", "it must start with a letter or digit"),
            ("al ice", "only letters, digits and . _ - @ + are allowed"),
            (
                "alice<script>",
                "only letters, digits and . _ - @ + are allowed",
            ),
            ("alicé", "only letters, digits and . _ - @ + are allowed"),
            ("al\nice", "only letters, digits and . _ - @ + are allowed"),
        ];
        for (name, why) in cases {
            assert_eq!(
                validate_username(name),
                Err(AuthError::InvalidUsername(why)),
                "{name:?}"
            );
        }
        assert_eq!(
            validate_username("").unwrap_err().to_string(),
            "invalid user name: it is empty"
        );
    }

    #[test]
    fn issued_session_stores_only_the_hash() {
        let now = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let (plain, session) = NewSession::issue("alice", now, TimeDelta::hours(12));
        assert!(looks_like_token(TokenKind::Session, &plain));
        assert_eq!(session.token_hash, hash_token(&plain));
        assert_eq!(session.user_name, "alice");
        assert_eq!(session.created_at, now);
        assert_eq!(session.expires_at.to_rfc3339(), "2025-01-02T15:04:05+00:00");
    }

    #[test]
    fn issued_api_token_stores_only_the_hash() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let (plain, token) = NewApiToken::issue("ci", "alice", Role::Operator, now, None);
        assert!(looks_like_token(TokenKind::Api, &plain));
        assert_eq!(token.token_hash, hash_token(&plain));
        assert_eq!(
            (token.label.as_str(), token.user_name.as_str(), token.role),
            ("ci", "alice", Role::Operator)
        );
        assert_eq!(token.expires_at, None);
    }

    #[test]
    fn csrf_requirement_per_method() {
        assert!(AuthMethod::Session.requires_csrf());
        assert!(AuthMethod::Proxy.requires_csrf());
        assert!(!AuthMethod::ApiToken.requires_csrf());
        let p = Principal {
            name: "bot".into(),
            role: Role::Operator,
            method: AuthMethod::ApiToken,
        };
        assert!(p.allows(Role::Operator));
        assert!(!p.allows(Role::Admin));
    }
}
