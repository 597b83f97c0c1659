//! What server-rendered pages and server functions learn about the
//! request: the CSP nonce (so Leptos' inline scripts carry the nonce the
//! `Content-Security-Policy` header names) and the [`sagascope_model::SessionInfo`] (user,
//! role and CSRF token for the top bar, the `csrf-token` meta tag and role
//! checks in server functions).

use axum::http::request::Parts;
use leptos::prelude::{provide_context, use_context};
use sagascope_auth::CspNonce;

use super::RequestAuth;

/// Call from the Leptos routes' additional context. leptos_axum has put the
/// request `Parts` into the context by then, and provided its own random
/// nonce, which this replaces with the middleware's.
pub fn provide_request_context() {
    let Some(parts) = use_context::<Parts>() else {
        return;
    };
    if let Some(nonce) = parts.extensions.get::<CspNonce>() {
        provide_context(leptos::nonce::Nonce::from_value(nonce.as_str()));
    }
    let session = parts
        .extensions
        .get::<RequestAuth>()
        .map(RequestAuth::session_info)
        .unwrap_or_default();
    provide_context(session);
}
