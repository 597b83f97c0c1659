//! CSRF protection for cookie sessions.
//!
//! # Policy
//!
//! Every mutating request (any method other than GET, HEAD, OPTIONS) that is
//! authenticated by the session cookie must carry the session's CSRF token,
//! either in the header [`CSRF_HEADER`] (`x-csrf-token`, used by fetch
//! calls) or in the form field [`CSRF_FORM_FIELD`] (`csrf_token`, used by
//! plain HTML forms), equal to [`CsrfKey::token_for`] of that session.
//! Otherwise the server answers 403 and does nothing. As a second,
//! independent check, the request's `Origin` (or, failing that, `Referer`)
//! must be this server's own origin ([`same_origin`]); a request with
//! neither header is refused too.
//!
//! Requests authenticated by `Authorization: Bearer <api token>` are exempt:
//! a browser never attaches that header on its own (it is no ambient
//! credential), so a third-party page cannot forge such a request. A
//! request that carries both a cookie and a bearer token is treated as a
//! cookie request by the server (the stricter rule) — see the server's
//! middleware.
//!
//! GET requests must not change state, so they need no token; together with
//! the `SameSite=Strict` session cookie this covers the classic vectors.
//!
//! # Why a derived token
//!
//! The token is `HMAC-SHA256(server secret, "sagascope-csrf-v1\0" ||
//! session token hash)`, hex-encoded. It needs no storage and survives
//! across replicas that share the secret, changes with every session (so a
//! token seen by one user is useless for another), and cannot be computed
//! from a leaked database, which holds only session token hashes and not the
//! secret. The domain-separation label keeps it distinct from any other MAC
//! made with the same key.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{AuthError, Result};

/// Request header carrying the CSRF token on fetch/XHR requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Form field carrying the CSRF token on `application/x-www-form-urlencoded`
/// and `multipart/form-data` posts.
pub const CSRF_FORM_FIELD: &str = "csrf_token";

/// Minimum CSRF secret length in bytes (256 bits, the HMAC-SHA256 block's
/// security level).
pub const MIN_CSRF_KEY_LEN: usize = 32;

/// Domain-separation label mixed into every CSRF MAC.
const LABEL: &[u8] = b"sagascope-csrf-v1\0";

/// The CSRF binding for a user authenticated by the trusted reverse proxy,
/// who has no session of ours: pass it to [`CsrfKey::token_for`] and
/// [`CsrfKey::verify`] in place of a session token hash. The token is then
/// per user rather than per session (it changes only with the secret), still
/// unforgeable without the secret. Session hashes are 64 hex digits, so the
/// `proxy:` prefix cannot collide with one.
pub fn proxy_csrf_binding(user_name: &str) -> String {
    format!("proxy:{user_name}")
}

/// The server secret for CSRF tokens. Every replica behind one load
/// balancer needs the same key; rotating it invalidates outstanding tokens
/// (pages reload them with the next render).
#[derive(Clone)]
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    /// A key from raw secret bytes: at least [`MIN_CSRF_KEY_LEN`].
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_CSRF_KEY_LEN {
            return Err(AuthError::SecretTooShort {
                min: MIN_CSRF_KEY_LEN,
            });
        }
        Ok(CsrfKey(secret.to_vec()))
    }

    /// A key from a hex string (as configured): at least
    /// [`MIN_CSRF_KEY_LEN`] bytes, i.e. 64 hex digits.
    pub fn from_hex(secret: &str) -> Result<Self> {
        let bytes = hex::decode(secret.trim()).map_err(|_| AuthError::SecretNotHex)?;
        CsrfKey::new(&bytes)
    }

    /// A fresh random key from the OS RNG: fine for a single replica, whose
    /// sessions' CSRF tokens then change on restart.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; MIN_CSRF_KEY_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("operating system RNG failed");
        CsrfKey(bytes)
    }

    /// The CSRF token of the session whose stored token hash is
    /// `session_token_hash` (see [`crate::hash_token`]): 64 lowercase hex
    /// digits.
    pub fn token_for(&self, session_token_hash: &str) -> String {
        hex::encode(self.mac(session_token_hash))
    }

    /// Whether `presented` is this session's CSRF token. Compared in
    /// constant time, so response timing leaks nothing about the expected
    /// value.
    pub fn verify(&self, session_token_hash: &str, presented: &str) -> bool {
        let expected = self.token_for(session_token_hash);
        bool::from(expected.as_bytes().ct_eq(presented.trim().as_bytes()))
    }

    fn mac(&self, session_token_hash: &str) -> impl AsRef<[u8]> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(LABEL);
        mac.update(session_token_hash.as_bytes());
        mac.finalize().into_bytes()
    }
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

/// The URL scheme the server is reached by (after any TLS-terminating
/// proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (development, or a trusted network).
    Http,
    /// HTTPS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    const fn default_port_suffix(self) -> &'static str {
        match self {
            Scheme::Http => ":80",
            Scheme::Https => ":443",
        }
    }
}

/// Whether an `Origin` (or `Referer`) header value names this server's
/// origin: scheme `scheme` and authority `host` (the `Host` header value,
/// possibly with a port). Hosts compare case-insensitively and a default
/// port (`:80`, `:443`) equals no port. A missing header, the opaque origin
/// `null`, a different scheme, host or port, or a URL with credentials is
/// not same-origin.
pub fn same_origin(origin_or_referer: Option<&str>, host: &str, scheme: Scheme) -> bool {
    let Some(value) = origin_or_referer.map(str::trim) else {
        return false;
    };
    let Some((value_scheme, rest)) = value.split_once("://") else {
        return false;
    };
    if !value_scheme.eq_ignore_ascii_case(scheme.as_str()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let ours = normalize_authority(host, scheme);
    !ours.is_empty() && normalize_authority(authority, scheme) == ours
}

fn normalize_authority(authority: &str, scheme: Scheme) -> String {
    let lower = authority.trim().to_ascii_lowercase();
    match lower.strip_suffix(scheme.default_port_suffix()) {
        Some(stripped) => stripped.to_owned(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CsrfKey {
        CsrfKey::new(&[byte; 32]).unwrap()
    }

    const SESSION_A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const SESSION_B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn derivation_is_stable_and_hmac_sha256() {
        let k = key(7);
        let t = k.token_for(SESSION_A);
        assert_eq!(t, k.token_for(SESSION_A));
        assert_eq!(t.len(), 64);
        // Independent computation of the documented construction.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(b"sagascope-csrf-v1\0");
        mac.update(SESSION_A.as_bytes());
        assert_eq!(t, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = 32 x 0x00, "sagascope-csrf-v1\0" || "s"), pinned
        // so an accidental change of the construction fails loudly.
        let k = key(0);
        assert_eq!(k.token_for("s"), KNOWN_ANSWER);
    }

    const KNOWN_ANSWER: &str = "62afe54a33ead667a6ebeb6e4964b4e5245d1b2ee4f3cad62494ed908d456f8d";

    #[test]
    fn differs_per_session_and_per_secret() {
        assert_ne!(key(1).token_for(SESSION_A), key(1).token_for(SESSION_B));
        assert_ne!(key(1).token_for(SESSION_A), key(2).token_for(SESSION_A));
    }

    #[test]
    fn verify_accepts_only_the_right_token() {
        let k = key(3);
        let t = k.token_for(SESSION_A);
        assert!(k.verify(SESSION_A, &t));
        assert!(k.verify(SESSION_A, &format!(" {t} ")), "header whitespace");
        // Tampered: one digit changed, truncated, extended, upper-cased.
        let mut tampered = t.clone().into_bytes();
        tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
        assert!(!k.verify(SESSION_A, std::str::from_utf8(&tampered).unwrap()));
        assert!(!k.verify(SESSION_A, &t[..63]));
        assert!(!k.verify(SESSION_A, &format!("{t}0")));
        assert!(!k.verify(SESSION_A, &t.to_uppercase()));
        assert!(!k.verify(SESSION_A, ""));
        // Another session's token or another secret's token.
        assert!(!k.verify(SESSION_B, &t));
        assert!(!key(4).verify(SESSION_A, &t));
    }

    #[test]
    fn proxy_binding_is_distinct_per_user() {
        let k = key(5);
        let alice = k.token_for(&proxy_csrf_binding("alice"));
        assert!(k.verify(&proxy_csrf_binding("alice"), &alice));
        assert!(!k.verify(&proxy_csrf_binding("bob"), &alice));
        assert_eq!(proxy_csrf_binding("alice"), "proxy:alice");
    }

    #[test]
    fn key_validation() {
        assert_eq!(
            CsrfKey::new(&[0; 31]).unwrap_err(),
            AuthError::SecretTooShort { min: 32 }
        );
        assert!(CsrfKey::new(&[0; 32]).is_ok());
        assert_eq!(
            CsrfKey::from_hex("zz").unwrap_err(),
            AuthError::SecretNotHex
        );
        assert_eq!(
            CsrfKey::from_hex(&"ab".repeat(31)).unwrap_err(),
            AuthError::SecretTooShort { min: 32 }
        );
        let from_hex = CsrfKey::from_hex(&"07".repeat(32)).unwrap();
        assert_eq!(from_hex.token_for(SESSION_A), key(7).token_for(SESSION_A));
        assert_eq!(format!("{from_hex:?}"), "CsrfKey(<redacted>)");
        let a = CsrfKey::generate();
        let b = CsrfKey::generate();
        assert_ne!(a.token_for(SESSION_A), b.token_for(SESSION_A));
    }

    #[test]
    fn same_origin_checks() {
        use Scheme::{Http, Https};
        let yes = [
            (Some("https://dash.example.com"), "dash.example.com", Https),
            (Some("https://DASH.example.com"), "dash.example.com", Https),
            (
                Some("https://dash.example.com:443"),
                "dash.example.com",
                Https,
            ),
            (
                Some("https://dash.example.com"),
                "dash.example.com:443",
                Https,
            ),
            (Some("http://127.0.0.1:3000"), "127.0.0.1:3000", Http),
            (Some("http://[::1]:3000"), "[::1]:3000", Http),
            (Some("http://localhost"), "localhost:80", Http),
            // Referer values: path, query and fragment are ignored.
            (
                Some("https://dash.example.com/sagas/42?x=1"),
                "dash.example.com",
                Https,
            ),
            (
                Some("https://dash.example.com?x"),
                "dash.example.com",
                Https,
            ),
        ];
        for (value, host, scheme) in yes {
            assert!(
                same_origin(value, host, scheme),
                "{value:?} {host} {scheme:?}"
            );
        }
        let no = [
            (None, "dash.example.com", Https),
            (Some("null"), "dash.example.com", Https),
            (Some(""), "dash.example.com", Https),
            (Some("dash.example.com"), "dash.example.com", Https),
            (Some("http://dash.example.com"), "dash.example.com", Https),
            (Some("https://dash.example.com"), "dash.example.com", Http),
            (Some("https://evil.example.com"), "dash.example.com", Https),
            (
                Some("https://dash.example.com.evil.com"),
                "dash.example.com",
                Https,
            ),
            (
                Some("https://dash.example.com:8443"),
                "dash.example.com",
                Https,
            ),
            (Some("http://127.0.0.1:3001"), "127.0.0.1:3000", Http),
            (
                Some("https://evil.com@dash.example.com"),
                "dash.example.com",
                Https,
            ),
            (
                Some("https://dash.example.com@evil.com/"),
                "dash.example.com",
                Https,
            ),
            (Some("https://"), "", Https),
        ];
        for (value, host, scheme) in no {
            assert!(
                !same_origin(value, host, scheme),
                "{value:?} {host} {scheme:?}"
            );
        }
    }
}
