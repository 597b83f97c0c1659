//! Route guards: a route declares the role it needs in one line,
//!
//! ```ignore
//! .route("/dlq/{id}/retry", post(retry).route_layer(require(Role::Operator)))
//! ```
//!
//! Nobody signed in → 401; signed in with a lesser role → 403
//! `"operator role required"` (audited for mutations). Authentication and
//! CSRF were already checked by the auth middleware.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures::future::BoxFuture;
use sagascope_auth::Role;
use serde_json::json;
use tower::{Layer, Service};

use super::audit::audit_logged;
use super::{reject, Audit, RequestAuth};

/// A layer that lets a request through only with at least `role`.
pub fn require(role: Role) -> RequireRole {
    RequireRole(role)
}

#[derive(Debug, Clone, Copy)]
pub struct RequireRole(Role);

impl<S> Layer<S> for RequireRole {
    type Service = RequireRoleService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireRoleService {
            inner,
            role: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequireRoleService<S> {
    inner: S,
    role: Role,
}

/// The refusal for a request that lacks `role`, if it does.
async fn refusal(
    auth: Option<RequestAuth>,
    method: Method,
    path: String,
    role: Role,
) -> Option<Response> {
    let Some(auth) = auth else {
        tracing::error!("RequestAuth missing: the route is not behind auth_middleware");
        return Some(reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        ));
    };
    let message = match &auth.principal {
        None => {
            return Some(reject(
                StatusCode::UNAUTHORIZED,
                "authentication required: sign in or send an API token",
            ))
        }
        Some(principal) if principal.allows(role) => return None,
        Some(_) => format!("{role} role required"),
    };
    if !method.is_safe() {
        audit_logged(
            &auth,
            Audit::new("request.denied")
                .target(format!("{method} {path}"))
                .detail(json!({ "error": message, "required_role": role.as_str() }))
                .denied(),
        )
        .await;
    }
    Some(reject(StatusCode::FORBIDDEN, &message))
}

impl<S> Service<Request> for RequireRoleService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let role = self.role;
        let auth = request.extensions().get::<RequestAuth>().cloned();
        let method = request.method().clone();
        // The path as the client sent it: inside a nested router (`/api/v1`)
        // the request's own URI has lost the prefix, and audit rows showed
        // `POST /dlq/retry`.
        let path = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| request.uri().path(), |original| original.path())
            .to_string();
        Box::pin(async move {
            match refusal(auth, method, path, role).await {
                Some(response) => Ok(response),
                None => inner.call(request).await,
            }
        })
    }
}
