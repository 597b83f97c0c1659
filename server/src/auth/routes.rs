//! The authentication and administration routes under `/api/v1`.

use axum::routing::{get, post};
use axum::Router;
use sagascope_auth::Role;

use super::{audit_api, login, require, tokens};
use crate::app_state::AppState;

/// `/auth/login`, `/auth/logout`, `/auth/me`, `/auth/tokens` (admin),
/// `/users` (admin), `/audit` (operator); merge into the `/api/v1` router.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login::login))
        .route("/auth/logout", post(login::logout))
        .route("/auth/me", get(login::me))
        .route(
            "/auth/tokens",
            post(tokens::create_token).route_layer(require(Role::Admin)),
        )
        .route(
            "/users",
            get(tokens::list_users).route_layer(require(Role::Admin)),
        )
        .route(
            "/audit",
            get(audit_api::list_audit).route_layer(require(Role::Operator)),
        )
}
