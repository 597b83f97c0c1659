//! Opaque random tokens for browser sessions and API access.
//!
//! A token is a kind prefix plus 32 bytes (256 bits) from the OS RNG in
//! lowercase hex, e.g. `ssk_3f9a…` (68 characters). Tokens carry no data:
//! the server looks them up, so revoking one is deleting a row.
//!
//! Only the SHA-256 of a token is ever stored. With 256 bits of entropy a
//! plain, fast hash is enough (nothing to brute-force, unlike passwords),
//! lookups stay a single indexed equality, and a leaked database or backup
//! hands out no usable sessions or API keys. The plaintext exists only in
//! the response that issues it (cookie or one-time display).
//!
//! The prefixes differ per kind so a token is recognisable in logs and by
//! secret scanners, and so an API token pasted into a cookie (or the
//! reverse) is rejected by shape before any lookup.

use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// Random bytes per token.
const TOKEN_BYTES: usize = 32;

/// What a token authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A browser session, carried in the session cookie.
    Session,
    /// An API token, carried as `Authorization: Bearer <token>`.
    Api,
}

impl TokenKind {
    /// The plaintext prefix: `sss_` for sessions, `ssk_` for API keys.
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "sss_",
            TokenKind::Api => "ssk_",
        }
    }

    /// Length of a whole plaintext token of this kind.
    pub const fn token_len(self) -> usize {
        self.prefix().len() + 2 * TOKEN_BYTES
    }
}

/// Makes a new token of `kind`: returns `(plaintext, sha256_hex)`. Hand the
/// plaintext to the client once; store only the hash.
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn new_token(kind: TokenKind) -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("operating system RNG failed");
    let plaintext = format!("{}{}", kind.prefix(), hex::encode(bytes));
    let hash = hash_token(&plaintext);
    (plaintext, hash)
}

/// SHA-256 of the whole plaintext token (prefix included), as 64 lowercase
/// hex characters: the value stored and looked up.
pub fn hash_token(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Whether `candidate` has the exact shape of a `kind` token: its prefix
/// followed by 64 lowercase hex digits. A cheap filter before hashing and
/// looking up; it says nothing about validity.
pub fn looks_like_token(kind: TokenKind, candidate: &str) -> bool {
    candidate.len() == kind.token_len()
        && candidate.strip_prefix(kind.prefix()).is_some_and(|body| {
            body.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_and_hash() {
        for kind in [TokenKind::Session, TokenKind::Api] {
            let (plain, hash) = new_token(kind);
            assert_eq!(plain.len(), 68);
            assert!(plain.starts_with(kind.prefix()));
            assert!(looks_like_token(kind, &plain), "{plain}");
            assert_eq!(hash.len(), 64);
            assert!(hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(hash, hash_token(&plain));
            assert_ne!(hash, plain[4..], "the stored value is not the token");
        }
    }

    #[test]
    fn prefixes_are_distinct_and_checked() {
        assert_eq!(TokenKind::Session.prefix(), "sss_");
        assert_eq!(TokenKind::Api.prefix(), "ssk_");
        let (api, _) = new_token(TokenKind::Api);
        let (session, _) = new_token(TokenKind::Session);
        assert!(!looks_like_token(TokenKind::Session, &api));
        assert!(!looks_like_token(TokenKind::Api, &session));
    }

    #[test]
    fn tokens_are_unique() {
        let (a, ha) = new_token(TokenKind::Api);
        let (b, hb) = new_token(TokenKind::Api);
        assert_ne!(a, b);
        assert_ne!(ha, hb);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // Known answer: SHA-256("abc").
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let body = "0123456789abcdef".repeat(4);
        assert_eq!(
            hash_token(&format!("ssk_{body}")),
            hex::encode(Sha256::digest(format!("ssk_{body}")))
        );
    }

    #[test]
    fn looks_like_token_rejects_wrong_shapes() {
        let body = "0123456789abcdef".repeat(4);
        assert!(looks_like_token(TokenKind::Api, &format!("ssk_{body}")));
        assert!(!looks_like_token(
            TokenKind::Api,
            &format!("ssk_{}", &body[1..])
        ));
        assert!(!looks_like_token(TokenKind::Api, &format!("ssk_{body}0")));
        assert!(!looks_like_token(
            TokenKind::Api,
            &format!("ssk_{}", body.to_uppercase())
        ));
        assert!(!looks_like_token(
            TokenKind::Api,
            &format!("ssk_{}g", &body[1..])
        ));
        assert!(!looks_like_token(TokenKind::Api, &format!("SSK_{body}")));
        assert!(!looks_like_token(TokenKind::Api, ""));
        // Same byte length, multi-byte characters: rejected, no panic.
        assert!(!looks_like_token(
            TokenKind::Api,
            &format!("ssk_é{}", &body[2..])
        ));
    }
}
