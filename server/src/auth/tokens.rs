//! Admin endpoints: `POST /api/v1/auth/tokens` (an API token for a user,
//! plaintext shown once) and `GET /api/v1/users`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{TimeDelta, Utc};
use sagascope_auth::{NewApiToken, Role};
use sagascope_model::{CreatedApiToken, UserView};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{audit, parse_ttl, reject, Audit, RequestAuth};
use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// The user the token acts for.
    pub user: String,
    /// What it is for, e.g. `ci-retry-bot`.
    pub label: String,
    /// At most the user's role; default the user's role.
    #[serde(default)]
    pub role: Option<String>,
    /// Lifetime such as `90d` or `12h`; default: until revoked.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// Checks a token label: 1 to 100 printable characters.
pub fn validate_label(label: &str) -> Result<String, String> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err("`label` must be 1 to 100 printable characters".to_string());
    }
    Ok(label.to_string())
}

/// The role a new token for a user with `user_role` gets.
pub fn token_role(requested: Option<&str>, user_role: Role) -> Result<Role, String> {
    let role = match requested {
        None => user_role,
        Some(text) => Role::parse(text)
            .ok_or_else(|| format!("unknown role `{text}`: expected viewer, operator or admin"))?,
    };
    if !user_role.allows(role) {
        return Err(format!(
            "a token cannot have more than its user's role ({user_role})"
        ));
    }
    Ok(role)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/tokens",
    tag = "auth",
    summary = "Create an API token",
    description = "An API token for a user, with at most the user's role; the plaintext is \
        answered once and only its hash is stored. Audited. Admin role.",
    request_body = CreateTokenRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "The token (shown once).", body = CreatedApiToken),
        (status = 400, description = "Malformed JSON, or an invalid label, role or lifetime.", body = ErrorBody),
        (status = 404, description = "No active user with that name.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`."),
        (status = 422, description = "The JSON is not a CreateTokenRequest."),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    auth: RequestAuth,
    Json(request): Json<CreateTokenRequest>,
) -> Result<Response, AppError> {
    let label = validate_label(&request.label).map_err(AppError::BadRequest)?;
    let Some(user) = state
        .store
        .find_user(request.user.trim())
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(reject(
            StatusCode::NOT_FOUND,
            &format!("no active user `{}`", request.user.trim()),
        ));
    };
    let role = token_role(request.role.as_deref(), user.role).map_err(AppError::BadRequest)?;
    let now = Utc::now();
    let expires_at = match request.expires_in.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let ttl = parse_ttl(text).map_err(AppError::BadRequest)?;
            Some(now + TimeDelta::from_std(ttl).map_err(|e| AppError::BadRequest(e.to_string()))?)
        }
    };
    let (plaintext, token) = NewApiToken::issue(&label, &user.name, role, now, expires_at);
    // Audited before the token exists: no token without its record.
    audit(
        &auth,
        Audit::new("token.create")
            .target(user.name.clone())
            .detail(json!({ "label": label, "role": role.as_str(), "expires_at": expires_at }))
            .ok(),
    )
    .await?;
    state.store.create_api_token(&token).await?;
    let created = CreatedApiToken {
        token: plaintext,
        label,
        user_name: user.name,
        role: role.as_str().to_string(),
        created_at: now,
        expires_at,
    };
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "auth",
    summary = "Local users",
    description = "The local accounts, without their password hashes. Admin role.",
    responses(
        (status = 200, description = "The users.", body = Vec<UserView>),
        (status = 403, description = "The admin role is required.", body = ErrorBody),
    )
)]
pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, AppError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(|u| u.view()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_roles_never_exceed_the_user() {
        assert_eq!(token_role(None, Role::Operator), Ok(Role::Operator));
        assert_eq!(token_role(Some("viewer"), Role::Operator), Ok(Role::Viewer));
        assert!(token_role(Some("admin"), Role::Operator).is_err());
        assert!(token_role(Some("root"), Role::Admin).is_err());
        assert!(validate_label("  ").is_err());
        assert!(validate_label("a\nb").is_err());
        assert_eq!(validate_label(" ci ").unwrap(), "ci");
    }
}
