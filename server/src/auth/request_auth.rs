//! [`RequestAuth`]: what the middleware found out about a request, for
//! handlers (as an extractor), route guards and server-rendered pages.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use sagascope_auth::{AuthMethod, CsrfKey, Principal};
use sagascope_model::{CurrentUser, SessionInfo};
use sagascope_store::Store;

use super::client::ClientInfo;
use super::identify::Identity;
use super::{reject, AuthMode};

/// The request's authentication, inserted into the request extensions by
/// [`super::auth_middleware`] before any handler runs.
#[derive(Debug, Clone)]
pub struct RequestAuth {
    /// `None`: nobody signed in (reads may still be allowed anonymously).
    pub principal: Option<Principal>,
    /// Hash of the session token, for cookie sessions (logout deletes it).
    pub session_hash: Option<String>,
    /// The CSRF token this principal's pages must send with mutations.
    pub csrf_token: Option<String>,
    /// The client (see `client.rs`).
    pub client_ip: IpAddr,
    pub anonymous_viewer: bool,
    pub mode: AuthMode,
    /// Host and scheme the browser addressed (for Origin checks).
    pub(super) client: ClientInfo,
    pub(super) store: Store,
}

impl RequestAuth {
    pub(super) fn new(
        identity: &Identity,
        csrf_key: &CsrfKey,
        client: ClientInfo,
        anonymous_viewer: bool,
        mode: AuthMode,
        store: Store,
    ) -> RequestAuth {
        // Only ambient credentials get a CSRF token to embed in pages.
        let csrf_token = match identity.principal.as_ref().map(|p| p.method) {
            Some(AuthMethod::Session | AuthMethod::Proxy) => identity
                .csrf_binding
                .as_deref()
                .map(|binding| csrf_key.token_for(binding)),
            _ => None,
        };
        RequestAuth {
            principal: identity.principal.clone(),
            session_hash: identity.session_hash.clone(),
            csrf_token,
            client_ip: client.ip,
            anonymous_viewer,
            mode,
            client,
            store,
        }
    }

    /// The principal's name, or `anonymous`.
    pub fn actor(&self) -> &str {
        self.principal
            .as_ref()
            .map_or("anonymous", |p| p.name.as_str())
    }

    /// What the pages get to know (no secrets but the CSRF token).
    pub fn session_info(&self) -> SessionInfo {
        SessionInfo {
            user: self.principal.as_ref().map(current_user),
            csrf_token: self.csrf_token.clone(),
            anonymous_viewer: self.anonymous_viewer,
            auth_mode: self.mode.as_str().to_string(),
        }
    }
}

/// `session`, `api_token` or `proxy`.
pub fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Session => "session",
        AuthMethod::ApiToken => "api_token",
        AuthMethod::Proxy => "proxy",
    }
}

pub fn current_user(principal: &Principal) -> CurrentUser {
    CurrentUser {
        name: principal.name.clone(),
        role: principal.role.as_str().to_string(),
        method: method_name(principal.method).to_string(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestAuth {
    type Rejection = Response;

    /// Always present behind the auth middleware; a router without it is a
    /// programming error, answered with 500 rather than as anonymous.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestAuth>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("RequestAuth missing: the route is not behind auth_middleware");
                reject(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            })
    }
}
