use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sagascope_ingest::ConsumerState;
use serde_json::{json, Value};

use crate::app_state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers and the consumer is not degraded. A
/// subscribed name or pattern that matches no topic yet (the default DLQ
/// pattern on a new cluster) is reported under `info` and keeps it ready:
/// the consumer picks such topics up when they appear.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match state.store.ping().await {
        Ok(()) => json!({ "status": "ok", "backend": state.store.backend().name() }),
        Err(error) => json!({ "status": "error", "error": error.to_string() }),
    };
    let store_ok = store["status"] == "ok";
    let mut info: Vec<String> = Vec::new();
    let (consumer, consumer_ok) = match &state.ingest {
        None => (json!({ "state": "disabled" }), true),
        Some(status) => {
            let view = status.view();
            info.extend(view.unmatched_subscriptions.iter().map(|u| {
                format!(
                    "subscription `{}` matches no topic yet; its topics are consumed once they exist",
                    u.subscription
                )
            }));
            let ok = matches!(view.state, ConsumerState::Starting | ConsumerState::Running);
            (serde_json::to_value(view).unwrap_or(Value::Null), ok)
        }
    };
    let code = if store_ok && consumer_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "ready": code == StatusCode::OK,
            "store": store,
            "consumer": consumer,
            "info": info,
        })),
    )
}
