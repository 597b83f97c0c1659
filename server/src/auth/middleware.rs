//! The guard every request passes (outermost, before routing), and the
//! security headers on every response.
//!
//! Access classes:
//! - **open**: `/healthz`, `/readyz`, `/metrics`, `/login`, static assets
//!   (`/pkg/*`, `/favicon.svg`), `POST /api/v1/auth/login` (it has its own
//!   protections: rate limits, Origin check), the `fetch_session_info`
//!   server function (it only says who is signed in) and `POST /v1/traces`
//!   (the OTLP receiver checks its own token).
//! - **read**: GET/HEAD/OPTIONS, and POSTs to the *read* server functions,
//!   whose names start with `fetch_` (Leptos server functions are POSTs
//!   under `/api/`; a server function that changes anything must not be
//!   named `fetch_…`). Needs a signed-in user unless `--anonymous-viewer`;
//!   otherwise pages redirect to `/login?next=…` and `/api/*` answers 401.
//! - **mutation**: everything else. Needs a signed-in user (401), and for
//!   cookie and proxy sessions a same-origin `Origin`/`Referer` and the
//!   session's CSRF token in `x-csrf-token` or the form field `csrf_token`
//!   (403 otherwise). The role is the route's business ([`super::require`]).
//!   Refusals are audited as `request.denied`.

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use sagascope_auth::{same_origin, security_headers, CspNonce, CSRF_FORM_FIELD, CSRF_HEADER};
use sagascope_model::percent_encode;
use serde_json::json;

use super::audit::audit_logged;
use super::client::client_info;
use super::denials::DenialVerdict;
use super::identify::{identify, Identity};
use super::{reject, Audit, RequestAuth};
use crate::app_state::AppState;

/// The password login endpoint.
pub const LOGIN_API: &str = "/api/v1/auth/login";
/// Largest form body read to find a `csrf_token` field.
const MAX_FORM_BYTES: usize = 1 << 20;

const UNAUTHENTICATED: &str = "authentication required: sign in or send an API token";
const BAD_BEARER: &str = "invalid, expired or revoked API token";
pub const CSRF_REFUSED: &str = "missing or invalid CSRF token";
pub const CROSS_SITE_REFUSED: &str =
    "cross-site request refused: the Origin (or Referer) is not this site";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Read,
    Mutation,
}

fn is_open_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/login" | "/favicon.svg" | "/favicon.ico"
    ) || path.starts_with("/pkg/")
}

/// `/api/NAME<digits>`: the URL of a Leptos server function `NAME` (the
/// macro appends a hash of its module).
fn server_fn_named(path: &str, name_prefix: &str, exact: bool) -> bool {
    let Some(rest) = path.strip_prefix("/api/") else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(name_prefix) else {
        return false;
    };
    if exact {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
    } else {
        !rest.is_empty()
            && !rest.contains('/')
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }
}

pub fn classify(method: &Method, path: &str) -> Access {
    let safe = method.is_safe();
    if safe && is_open_path(path) {
        return Access::Open;
    }
    if *method == Method::POST
        && (path == LOGIN_API || server_fn_named(path, "fetch_session_info", true))
    {
        return Access::Open;
    }
    // OTLP exporters cannot sign in or send a CSRF token, and their bearer
    // token is the OTLP token, not an API token (it would be refused here
    // as a bad bearer): the receiver checks it itself, in constant time.
    if *method == Method::POST && path == crate::http::OTLP_TRACES_PATH {
        return Access::Open;
    }
    if safe || (*method == Method::POST && server_fn_named(path, "fetch_", false)) {
        return Access::Read;
    }
    Access::Mutation
}

/// The middleware; install with `axum::middleware::from_fn_with_state`.
pub async fn auth_middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let nonce = CspNonce::generate();
    let tls = state.auth.config.secure_cookies;
    let mut response = guard(state, request, nonce.clone(), next).await;
    set_security_headers(response.headers_mut(), &nonce, tls);
    response
}

fn set_security_headers(headers: &mut HeaderMap, nonce: &CspNonce, tls: bool) {
    for (name, value) in security_headers(Some(nonce), tls) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

fn login_redirect(request: &Request) -> Response {
    let next = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    Redirect::to(&format!("/login?next={}", percent_encode(next))).into_response()
}

fn denied(request: &Request, error: &str) -> Audit {
    Audit::new("request.denied")
        .target(format!("{} {}", request.method(), request.uri().path()))
        .detail(json!({ "error": error }))
        .denied()
}

/// A refusal of the guard. Anonymous ones are audited when they are the
/// first of their kind from this address this minute, counted otherwise,
/// and answered 429 for an address that keeps being refused (see
/// `denials.rs`); a signed-in principal's are all audited.
async fn refuse(
    state: &AppState,
    auth: &RequestAuth,
    // Built before any await: the request itself is not `Sync`.
    entry: Audit,
    status: StatusCode,
    error: &'static str,
) -> Response {
    // Signed-in principals are accountable and audited one by one; the
    // flood to bound is anonymous.
    if auth.principal.is_some() {
        audit_logged(auth, entry).await;
        return reject(status, error);
    }
    match state.auth.denials.note(auth.client_ip, error, Utc::now()) {
        DenialVerdict::Audit => {
            audit_logged(auth, entry).await;
            reject(status, error)
        }
        DenialVerdict::Counted => reject(status, error),
        DenialVerdict::Throttled(seconds) => {
            let mut response = reject(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many refused requests from this address; retry in {seconds} s"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

async fn guard(state: AppState, mut request: Request, nonce: CspNonce, next: Next) -> Response {
    let config = &state.auth.config;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_info(config, request.headers(), peer);
    let access = classify(request.method(), request.uri().path());
    let identity = match identify(config, &state.store, request.headers(), peer, Utc::now()).await {
        Ok(identity) => identity,
        // Probes and the login page stay up without the database.
        Err(error) if access == Access::Open => {
            tracing::warn!(%error, "authentication lookup failed; treating the request as anonymous");
            Identity::default()
        }
        Err(error) => {
            tracing::error!(%error, "authentication lookup failed");
            return reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication is unavailable (database error); see the server log",
            );
        }
    };
    let auth = RequestAuth::new(
        &identity,
        &config.csrf_key,
        client.clone(),
        config.anonymous_viewer,
        config.mode,
        state.store.clone(),
    );
    request.extensions_mut().insert(auth.clone());
    request.extensions_mut().insert(nonce);

    match access {
        Access::Open => {}
        Access::Read => {
            if identity.bad_bearer {
                return reject(StatusCode::UNAUTHORIZED, BAD_BEARER);
            }
            if auth.principal.is_none() && !config.anonymous_viewer {
                return if request.uri().path().starts_with("/api/") {
                    reject(StatusCode::UNAUTHORIZED, UNAUTHENTICATED)
                } else {
                    login_redirect(&request)
                };
            }
        }
        Access::Mutation => {
            if identity.bad_bearer {
                return refuse(
                    &state,
                    &auth,
                    denied(&request, BAD_BEARER),
                    StatusCode::UNAUTHORIZED,
                    BAD_BEARER,
                )
                .await;
            }
            let Some(principal) = &auth.principal else {
                return refuse(
                    &state,
                    &auth,
                    denied(&request, UNAUTHENTICATED),
                    StatusCode::UNAUTHORIZED,
                    UNAUTHENTICATED,
                )
                .await;
            };
            let binding = identity.csrf_binding.as_deref();
            if binding.is_some() || principal.method.requires_csrf() {
                let origin = request
                    .headers()
                    .get(header::ORIGIN)
                    .or_else(|| request.headers().get(header::REFERER))
                    .and_then(|v| v.to_str().ok());
                if !same_origin(origin, &client.host, client.scheme) {
                    return refuse(
                        &state,
                        &auth,
                        denied(&request, CROSS_SITE_REFUSED),
                        StatusCode::FORBIDDEN,
                        CROSS_SITE_REFUSED,
                    )
                    .await;
                }
                let (back, presented) = match presented_csrf_token(request).await {
                    Ok(found) => found,
                    Err(response) => return response,
                };
                request = back;
                let valid = match (binding, presented) {
                    (Some(binding), Some(token)) => config.csrf_key.verify(binding, &token),
                    _ => false,
                };
                if !valid {
                    return refuse(
                        &state,
                        &auth,
                        denied(&request, CSRF_REFUSED),
                        StatusCode::FORBIDDEN,
                        CSRF_REFUSED,
                    )
                    .await;
                }
            }
        }
    }
    next.run(request).await
}

/// The CSRF token from the `x-csrf-token` header, else from the
/// `csrf_token` field of a URL-encoded form (the body is read and put
/// back for the handler).
async fn presented_csrf_token(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let token = token.to_string();
        return Ok((request, Some(token)));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| reject(StatusCode::PAYLOAD_TOO_LARGE, "form body too large"))?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(name, _)| name == CSRF_FORM_FIELD)
                .map(|(_, value)| value)
        });
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use Access::*;
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(classify(&get, "/healthz"), Open);
        assert_eq!(classify(&get, "/pkg/sagascope.wasm"), Open);
        assert_eq!(classify(&get, "/login"), Open);
        assert_eq!(classify(&post, "/login"), Mutation);
        assert_eq!(classify(&post, LOGIN_API), Open);
        assert_eq!(classify(&post, "/api/fetch_session_info123"), Open);
        assert_eq!(classify(&post, "/api/fetch_session_info123/x"), Mutation);
        assert_eq!(classify(&post, "/v1/traces"), Open);
        assert_eq!(classify(&post, "/v1/traces/x"), Mutation);
        assert_eq!(classify(&get, "/"), Read);
        assert_eq!(classify(&get, "/api/v1/sagas"), Read);
        assert_eq!(classify(&Method::HEAD, "/sagas"), Read);
        assert_eq!(classify(&post, "/api/fetch_saga_page1234"), Read);
        assert_eq!(classify(&post, "/api/fetch_x/../v1/auth/tokens"), Mutation);
        assert_eq!(classify(&post, "/api/retry_dead_letter1234"), Mutation);
        assert_eq!(classify(&post, "/api/v1/auth/logout"), Mutation);
        assert_eq!(classify(&Method::DELETE, "/api/v1/sagas"), Mutation);
        assert_eq!(classify(&Method::PUT, "/healthz"), Mutation);
    }
}
