//! The session cookie's `Set-Cookie` values and parsing.
//!
//! Attributes and why:
//! - `HttpOnly`: page scripts (including any injected ones) cannot read the
//!   session token; the page gets its CSRF token separately.
//! - `SameSite=Strict`: the browser sends the cookie only on requests that
//!   start from this site. `Lax` would also send it on top-level GET
//!   navigations from other sites; `Strict` closes that too, so even a GET
//!   handler that (wrongly) changed state could not be driven cross-site,
//!   and cross-site pages cannot probe a logged-in session. The cost: a user
//!   following a link from elsewhere (chat, e-mail, an alert) lands on the
//!   first page without the cookie, i.e. looks logged out, until the next
//!   same-site navigation. For an operations dashboard that can retry
//!   sagas, the stricter default is the right trade; CSRF tokens remain the
//!   primary defence either way (see `csrf.rs`).
//! - `Path=/`: one session for the whole app, API included.
//! - `Secure`: set when the deployment is behind TLS (a configuration flag,
//!   since TLS often terminates at a proxy); browsers then never send the
//!   token in clear text. Off only for local development over plain HTTP.
//! - `Max-Age`: the session's lifetime, so the cookie disappears when the
//!   server-side session expires. No `Domain`: the cookie stays host-only.

use std::time::Duration;

use crate::token::{looks_like_token, TokenKind};

/// Name of the session cookie.
pub const SESSION_COOKIE_NAME: &str = "sagascope_session";

/// `Set-Cookie` value that stores `session_token` for `max_age`.
///
/// # Panics
/// If `session_token` is not shaped like a session token from
/// [`crate::new_token`]: anything else could smuggle attributes (`;`) into
/// the header, and is a programming error.
pub fn session_cookie(session_token: &str, max_age: Duration, secure: bool) -> String {
    assert!(
        looks_like_token(TokenKind::Session, session_token),
        "session_cookie needs a session token from new_token"
    );
    format!(
        "{SESSION_COOKIE_NAME}={session_token}; {}",
        attributes(max_age.as_secs(), secure)
    )
}

/// `Set-Cookie` value that deletes the session cookie (logout). It repeats
/// the same attributes, since browsers match the cookie to replace by name,
/// path and domain; `Expires` in the past covers old clients that ignore
/// `Max-Age`.
pub fn clear_session_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE_NAME}=; {}; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        attributes(0, secure)
    )
}

fn attributes(max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}")
}

/// The session token from a `Cookie` request header value, if any. Only a
/// value with the exact session token shape counts; with several
/// `sagascope_session` cookies (e.g. one set for another path) the first
/// well-formed one wins.
pub fn session_token_from_cookie_header(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim() == SESSION_COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .find(|value| looks_like_token(TokenKind::Session, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> String {
        format!("sss_{}", "0123456789abcdef".repeat(4))
    }

    #[test]
    fn session_cookie_attributes_exactly() {
        let t = token();
        assert_eq!(
            session_cookie(&t, Duration::from_secs(43_200), true),
            format!(
                "sagascope_session={t}; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure"
            )
        );
        assert_eq!(
            session_cookie(&t, Duration::from_millis(3_600_999), false),
            format!("sagascope_session={t}; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict")
        );
    }

    #[test]
    fn clearing_cookie_exactly() {
        assert_eq!(
            clear_session_cookie(true),
            "sagascope_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            clear_session_cookie(false),
            "sagascope_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    #[should_panic(expected = "session token")]
    fn refuses_attribute_smuggling() {
        session_cookie("x; Domain=evil.com", Duration::from_secs(1), true);
    }

    #[test]
    #[should_panic(expected = "session token")]
    fn refuses_api_tokens() {
        let api = format!("ssk_{}", "0123456789abcdef".repeat(4));
        session_cookie(&api, Duration::from_secs(1), true);
    }

    #[test]
    fn parses_the_session_token() {
        let t = token();
        assert_eq!(
            session_token_from_cookie_header(&format!("sagascope_session={t}")),
            Some(t.as_str())
        );
        assert_eq!(
            session_token_from_cookie_header(&format!(
                "theme=dark; sagascope_session={t} ; other=1"
            )),
            Some(t.as_str())
        );
        // Malformed first value is skipped, the well-formed second one wins.
        assert_eq!(
            session_token_from_cookie_header(&format!(
                "sagascope_session=garbage; sagascope_session={t}"
            )),
            Some(t.as_str())
        );
        assert_eq!(session_token_from_cookie_header(""), None);
        assert_eq!(session_token_from_cookie_header("sagascope_session="), None);
        assert_eq!(session_token_from_cookie_header("theme=dark"), None);
        assert_eq!(
            session_token_from_cookie_header(&format!("xsagascope_session={t}")),
            None
        );
        let api = format!("ssk_{}", "0123456789abcdef".repeat(4));
        assert_eq!(
            session_token_from_cookie_header(&format!("sagascope_session={api}")),
            None
        );
    }
}
