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

/// Readiness: the store answers and the consumer is not degraded. While
/// the database is down it says since when and why (`store.message`, also
/// first in `reasons`), within the ping's timeout rather than the pool's.
/// A subscribed name or pattern that matches no topic yet (the default DLQ
/// pattern on a new cluster) is reported under `info` and keeps it ready:
/// the consumer picks such topics up when they appear.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut reasons: Vec<String> = Vec::new();
    let store = match state.store.check_availability().await {
        None => json!({ "status": "ok", "backend": state.store.backend().name() }),
        Some(outage) => {
            reasons.push(outage.message());
            json!({
                "status": "unavailable",
                "backend": state.store.backend().name(),
                "since": outage.since,
                "error": outage.last_error,
                "message": outage.message(),
            })
        }
    };
    let mut info: Vec<String> = Vec::new();
    let consumer = match &state.ingest {
        None => json!({ "state": "disabled" }),
        Some(status) => {
            let view = status.view();
            info.extend(view.unmatched_subscriptions.iter().map(|u| {
                format!(
                    "subscription `{}` matches no topic yet; its topics are consumed once they exist",
                    u.subscription
                )
            }));
            match &view.state {
                ConsumerState::Starting | ConsumerState::Running => {}
                ConsumerState::Degraded { reason, .. } => {
                    reasons.push(format!("consumer: {reason}"))
                }
                ConsumerState::Stopped => reasons.push("consumer: stopped".into()),
            }
            serde_json::to_value(view).unwrap_or(Value::Null)
        }
    };
    let code = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "ready": code == StatusCode::OK,
            "reasons": reasons,
            "store": store,
            "consumer": consumer,
            "info": info,
        })),
    )
}
