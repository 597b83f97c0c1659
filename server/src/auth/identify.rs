//! Who a request is, in this order: `Authorization: Bearer ssk_…` API
//! token → session cookie → trusted proxy header (proxy mode) → nobody
//! (anonymous, which `--anonymous-viewer` may allow to read).
//!
//! A request that carries both a bearer token and a session cookie is
//! authenticated by the token but still needs the cookie session's CSRF
//! token for mutations (the stricter rule of `sagascope_auth::csrf`): a
//! browser attaches the cookie on its own, so the request could have been
//! forged around it.

use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use sagascope_auth::{
    hash_token, looks_like_token, proxy_csrf_binding, session_token_from_cookie_header, AuthMethod,
    Principal, TokenKind,
};
use sagascope_store::{Store, StoreError};

use super::AuthConfig;

/// How often a session's `last_seen_at` is refreshed at most.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The outcome of identification.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub principal: Option<Principal>,
    /// The stored hash of the session token, for cookie sessions.
    pub session_hash: Option<String>,
    /// What the CSRF token is bound to, when mutations need one.
    pub csrf_binding: Option<String>,
    /// A bearer token was sent but is malformed, unknown, revoked or
    /// expired: the request is refused rather than treated as anonymous.
    pub bad_bearer: bool,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_token_from_cookie_header)
}

pub async fn identify(
    config: &AuthConfig,
    store: &Store,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<Identity, StoreError> {
    let cookie_hash = session_cookie(headers).map(hash_token);

    if let Some(token) = bearer(headers) {
        let record = if looks_like_token(TokenKind::Api, token) {
            store.find_api_token(&hash_token(token), now).await?
        } else {
            None
        };
        return Ok(match record {
            Some(record) => Identity {
                principal: Some(Principal {
                    name: record.user_name,
                    role: record.role,
                    method: AuthMethod::ApiToken,
                }),
                session_hash: None,
                // Stricter rule when a cookie rides along.
                csrf_binding: cookie_hash,
                bad_bearer: false,
            },
            None => Identity {
                bad_bearer: true,
                ..Identity::default()
            },
        });
    }

    if let Some(hash) = cookie_hash {
        if let Some(session) = store.find_session(&hash, now).await? {
            if now - session.last_seen_at >= TOUCH_EVERY {
                store.touch_session(&hash, now).await?;
            }
            return Ok(Identity {
                principal: Some(Principal {
                    name: session.user_name,
                    role: session.role,
                    method: AuthMethod::Session,
                }),
                session_hash: Some(hash.clone()),
                csrf_binding: Some(hash),
                bad_bearer: false,
            });
        }
    }

    if let (Some(proxy), Some(peer)) = (&config.proxy, peer) {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let role_value = proxy.role_header().and_then(value);
        if let Some(identity) = proxy.authenticate(peer, value(proxy.user_header()), role_value) {
            return Ok(Identity {
                csrf_binding: Some(proxy_csrf_binding(&identity.name)),
                principal: Some(Principal {
                    name: identity.name,
                    role: identity.role,
                    method: AuthMethod::Proxy,
                }),
                session_hash: None,
                bad_bearer: false,
            });
        }
    }

    Ok(Identity::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_and_cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  ssk_x "),
        );
        assert_eq!(bearer(&h), Some("ssk_x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        let t = format!("sss_{}", "ab".repeat(32));
        h.append(header::COOKIE, HeaderValue::from_static("theme=dark"));
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("sagascope_session={t}")).unwrap(),
        );
        assert_eq!(session_cookie(&h), Some(t.as_str()));
    }
}
