//! `POST /api/v1/auth/login`, `POST /api/v1/auth/logout`,
//! `GET /api/v1/auth/me`.
//!
//! Login accepts JSON (`{"name", "password"}`; answers JSON) or a plain
//! HTML form (`name`, `password`, `next`; answers with a redirect to `next`
//! or back to `/login?error=…`), so the login page works without
//! JavaScript. Protections: a cross-site `Origin`/`Referer` is refused
//! (login CSRF), failures are rate limited per (client ip, name) and per
//! client ip, unknown names cost the same argon2 time as known ones
//! (`dummy_verify`), and every attempt is audited without the password.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{TimeDelta, Utc};
use sagascope_auth::{
    clear_session_cookie, dummy_verify, hash_password, needs_rehash, same_origin, session_cookie,
    validate_username, verify_password, AuthMethod, LoginKey, NewSession, Principal,
};
use sagascope_model::{percent_encode, LoginResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit::audit_logged;
use super::request_auth::current_user;
use super::{reject, Audit, AuthMode, RequestAuth};
use crate::app_state::AppState;
use crate::http::openapi::{ErrorBody, LogoutResponse};

/// The login body. No `Debug`: it holds the password.
#[derive(Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
struct LoginForm {
    /// The user name.
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// Forms only: the same-site path to go to after signing in.
    #[serde(default)]
    next: Option<String>,
}

const BAD_CREDENTIALS: &str = "wrong user name or password";

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// See [`sagascope_model::safe_next`]: the page's "Continue" link uses it too.
pub use sagascope_model::safe_next;

fn login_page_with_error(error: &str, next: &str, retry_after: Option<u64>) -> Response {
    let retry = retry_after.map_or(String::new(), |s| format!("&retry_after={s}"));
    Redirect::to(&format!(
        "/login?error={error}{retry}&next={}",
        percent_encode(next)
    ))
    .into_response()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    summary = "Sign in",
    description = "Checks the password and starts a cookie session: JSON in, JSON out (the \
        user and the session's CSRF token), or an HTML form, answered with a redirect. \
        Failures are rate limited per client address and name, and audited. Open: no \
        authentication needed.",
    request_body(content(
        (LoginForm = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded"),
    )),
    security(()),
    responses(
        (status = 200, description = "Signed in; the session cookie is set.", body = LoginResponse,
            headers(("set-cookie" = String, description = "The session cookie."))),
        (status = 303, description = "Forms: signed in (to `next`) or refused (back to `/login?error=…`)."),
        (status = 400, description = "Neither JSON `{name, password}` nor a form.", body = ErrorBody),
        (status = 401, description = "Wrong user name or password.", body = ErrorBody),
        (status = 403, description = "A cross-site Origin, or password login is disabled (`--auth-mode proxy`).", body = ErrorBody),
        (status = 413, description = "The body is larger than 2 MiB."),
        (status = 429, description = "Too many failures: retry after `Retry-After` seconds.", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 503, description = "The database could not be reached, or too many sign-ins are being verified at once (retry after `Retry-After` seconds).", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    auth: RequestAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = is_form(&headers);
    let parsed: Option<LoginForm> = if form {
        serde_urlencoded::from_bytes(&body).ok()
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(LoginForm {
        name,
        password,
        next,
    }) = parsed
    else {
        return reject(
            StatusCode::BAD_REQUEST,
            "send JSON {\"name\", \"password\"} or a form with name and password",
        );
    };
    let name = name.trim().to_string();
    let next = safe_next(next.as_deref());
    let config = &state.auth.config;
    let attempt = |result: Audit| result.actor(&name, None, "none").target(name.clone());

    if config.mode == AuthMode::Proxy {
        return reject(
            StatusCode::FORBIDDEN,
            "password login is disabled: sagascope runs with --auth-mode proxy",
        );
    }

    // Login CSRF: a foreign page must not sign the browser in.
    let client = &auth.client;
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    if origin.is_some() && !same_origin(origin, &client.host, client.scheme) {
        audit_logged(
            &auth,
            attempt(Audit::new("auth.login"))
                .detail(json!({ "error": "cross-site login refused" }))
                .denied(),
        )
        .await;
        return reject(StatusCode::FORBIDDEN, super::middleware::CROSS_SITE_REFUSED);
    }

    let now = Instant::now();
    let key = LoginKey::new(auth.client_ip, &name);
    // The attempt is reserved (address and name) before anything else, so
    // concurrent attempts cannot all pass a check made before the first of
    // them failed; see sagascope_auth::rate_limit.
    let attempt_slot = match LoginAttempt::reserve(&state.auth, key, now) {
        Ok(slot) => slot,
        Err(wait) => {
            audit_logged(
                &auth,
                attempt(Audit::new("auth.login"))
                    .detail(
                        json!({ "error": "rate limited", "retry_after_s": wait.as_secs_ceil() }),
                    )
                    .denied(),
            )
            .await;
            if form {
                let mut response =
                    login_page_with_error("rate_limited", &next, Some(wait.as_secs_ceil()));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs_ceil()));
                return response;
            }
            let mut response = reject(StatusCode::TOO_MANY_REQUESTS, &wait.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs_ceil()));
            return response;
        }
    };
    // Bounded argon2 work: excess attempts are turned away at once rather
    // than queued (a queue would hold their bodies and connections).
    let Ok(hashing_permit) = state.auth.hashing.try_acquire() else {
        // The slot goes back on drop: nothing was verified.
        let mut response = reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins in progress; retry in 1 s",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        return response;
    };

    let user = if validate_username(&name).is_ok() {
        match state.store.find_user(&name).await {
            Ok(user) => user.filter(|u| !u.disabled),
            Err(error) => {
                tracing::error!(%error, "login: user lookup failed");
                return reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "login is unavailable (database error); see the server log",
                );
            }
        }
    } else {
        None
    };
    // argon2 takes ~0.1 s of CPU: off the async workers.
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || match stored_hash {
        Some(hash) => verify_password(&password, &hash).then_some(password),
        None => {
            dummy_verify(&password);
            None
        }
    })
    .await
    .unwrap_or(None);
    drop(hashing_permit);

    let (Some(user), Some(password)) = (user, verified) else {
        attempt_slot.failed(now);
        audit_logged(
            &auth,
            attempt(Audit::new("auth.login"))
                .detail(json!({ "error": BAD_CREDENTIALS }))
                .denied(),
        )
        .await;
        return if form {
            login_page_with_error("invalid", &next, None)
        } else {
            reject(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS)
        };
    };
    attempt_slot.succeeded();

    if needs_rehash(&user.password_hash) {
        let rehashed = tokio::task::spawn_blocking(move || hash_password(&password)).await;
        if let Ok(Ok(hash)) = rehashed {
            if let Err(error) = state.store.update_user(&user.name, None, Some(&hash)).await {
                tracing::warn!(%error, "could not store the re-hashed password");
            }
        }
    }

    let now_utc = Utc::now();
    if let Err(error) = state.store.purge_expired_sessions(now_utc).await {
        tracing::warn!(%error, "could not purge expired sessions");
    }
    let ttl = TimeDelta::from_std(config.session_ttl).unwrap_or(TimeDelta::hours(12));
    let (token, session) = NewSession::issue(&user.name, now_utc, ttl);
    if let Err(error) = state.store.create_session(&session).await {
        tracing::error!(%error, "login: could not store the session");
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "login is unavailable (database error); see the server log",
        );
    }
    let principal = Principal {
        name: user.name.clone(),
        role: user.role,
        method: AuthMethod::Session,
    };
    audit_logged(
        &auth,
        Audit::new("auth.login")
            .actor(&user.name, Some(user.role), "session")
            .target(user.name.clone())
            .detail(json!({ "expires_at": session.expires_at }))
            .ok(),
    )
    .await;
    let cookie = session_cookie(&token, config.session_ttl, config.secure_cookies);
    let mut response = if form {
        Redirect::to(&next).into_response()
    } else {
        Json(LoginResponse {
            user: current_user(&principal),
            csrf_token: Some(config.csrf_key.token_for(&session.token_hash)),
        })
        .into_response()
    };
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    no_store(response)
}

/// Ends the cookie session (CSRF-checked by the middleware like every
/// mutation) and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    summary = "Sign out",
    description = "Ends the cookie session and clears the cookie. Forms are answered with a \
        redirect to `/login`.",
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Signed out.", body = LogoutResponse),
        (status = 303, description = "Forms: to `/login`."),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    auth: RequestAuth,
    headers: HeaderMap,
) -> Response {
    let mut ended = false;
    if let Some(hash) = &auth.session_hash {
        // Its live streams end with it, here at once (other replicas'
        // streams notice at their next re-check of the session).
        crate::http::api_stream::end_session_streams(&state, hash);
        match state.store.delete_session(hash).await {
            Ok(found) => ended = found,
            Err(error) => {
                tracing::error!(%error, "logout: could not delete the session");
                return reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "logout is unavailable (database error); see the server log",
                );
            }
        }
    }
    audit_logged(
        &auth,
        Audit::new("auth.logout")
            .target(auth.actor().to_string())
            .detail(json!({ "session_ended": ended }))
            .ok(),
    )
    .await;
    let mut response = if is_form(&headers) {
        Redirect::to("/login").into_response()
    } else {
        Json(json!({ "logged_out": ended })).into_response()
    };
    if let Ok(cookie) =
        HeaderValue::from_str(&clear_session_cookie(state.auth.config.secure_cookies))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    no_store(response)
}

/// One login attempt's reservations on both limiters (address and name,
/// address alone). Dropped without a verdict (a database error, or the
/// client went away while the password was verified) it gives both back,
/// so an abandoned request never holds a key's attempts.
struct LoginAttempt<'a> {
    auth: &'a super::AuthState,
    key: LoginKey,
    ended: bool,
}

impl<'a> LoginAttempt<'a> {
    fn reserve(
        auth: &'a super::AuthState,
        key: LoginKey,
        now: Instant,
    ) -> Result<LoginAttempt<'a>, sagascope_auth::RetryAfter> {
        auth.ip_limiter.reserve(&key.ip(), now)?;
        if let Err(wait) = auth.login_limiter.reserve(&key, now) {
            auth.ip_limiter.release(&key.ip());
            return Err(wait);
        }
        Ok(LoginAttempt {
            auth,
            key,
            ended: false,
        })
    }

    fn failed(mut self, now: Instant) {
        self.auth.ip_limiter.record_failure(&self.key.ip(), now);
        self.auth.login_limiter.record_failure(&self.key, now);
        self.ended = true;
    }

    /// The name's failures are forgotten; the address's are kept (one
    /// correct password must not reset a spraying count).
    fn succeeded(mut self) {
        self.auth.ip_limiter.release(&self.key.ip());
        self.auth.login_limiter.record_success(&self.key);
        self.ended = true;
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.auth.ip_limiter.release(&self.key.ip());
            self.auth.login_limiter.release(&self.key);
        }
    }
}

/// The principal and its CSRF token, or 401.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    summary = "The current user",
    description = "Who is signed in, and the session's CSRF token (none for API tokens).",
    responses(
        (status = 200, description = "The signed-in user.", body = LoginResponse),
    )
)]
pub async fn me(auth: RequestAuth) -> Response {
    match &auth.principal {
        Some(principal) => no_store(
            Json(LoginResponse {
                user: current_user(principal),
                csrf_token: auth.csrf_token.clone(),
            })
            .into_response(),
        ),
        None => reject(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}
