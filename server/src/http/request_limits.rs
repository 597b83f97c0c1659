//! Answers every client error of the API the same way, `{"error": "…"}`,
//! and turns away what is too big before anything reads it.
//!
//! - URLs longer than [`MAX_URL_BYTES`]: 414 before routing, the auth guard
//!   or the audit log (a flood of 60 KB paths once filled the audit log).
//! - Server-function bodies over [`MAX_SERVER_FN_BODY`]: 413 (Leptos read
//!   them into an error that became a 500).
//! - Under `/api/v1`, an error answer that is not JSON (axum's 405 without a
//!   body, its plain-text 400 for a bad percent-encoding, the 413 of a body
//!   limit) gets a JSON body carrying the same message.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::reject;

/// Longest URL (path and query) served.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Largest body a server function reads (axum's default body limit).
pub const MAX_SERVER_FN_BODY: usize = 2 * 1024 * 1024;
/// Largest non-JSON error body carried over into the JSON message.
const MAX_CARRIED_MESSAGE: usize = 1024;

/// Outermost layer: too-long URLs and oversized server-function bodies.
pub async fn limit_requests(request: Request, next: Next) -> Response {
    let url_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if url_bytes > MAX_URL_BYTES {
        return reject(
            StatusCode::URI_TOO_LONG,
            &format!("the URL is {url_bytes} bytes long; at most {MAX_URL_BYTES} are served"),
        );
    }
    if is_server_function(&request) {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_SERVER_FN_BODY) {
            return too_large();
        }
        if declared.is_none() {
            // Chunked: read it here, within the limit, and hand it on.
            let (parts, body) = request.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_SERVER_FN_BODY).await else {
                return too_large();
            };
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
    }
    next.run(request).await
}

fn too_large() -> Response {
    reject(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than {MAX_SERVER_FN_BODY} bytes"),
    )
}

/// Leptos server functions: POSTs under `/api/` outside the JSON API.
fn is_server_function(request: &Request) -> bool {
    let path = request.uri().path();
    request.method() == Method::POST && path.starts_with("/api/") && !path.starts_with("/api/v1/")
}

/// `/api/v1` error answers that are not JSON get a JSON body.
pub async fn json_error_bodies(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/v1/");
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_CARRIED_MESSAGE)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let message = match (status, text) {
        // 500s are logged where they happen, never explained to clients.
        (status, _) if status.is_server_error() => "internal error; see the server log".to_string(),
        (_, Some(text)) => text,
        (StatusCode::METHOD_NOT_ALLOWED, None) => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("method not allowed here; allowed: {allowed}")
        }
        (status, None) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
    };
    let mut json = reject(status, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}
