//! Writing the audit log from handlers: one call per action, with the
//! principal, how it authenticated, the client address, and what the
//! handler says (action, target, reason, details, result).
//!
//! ```ignore
//! audit(&auth, Audit::new("dlq.retry").target(&id).reason(&reason).ok()).await?;
//! ```

use sagascope_auth::Role;
use sagascope_model::audit_result;
use sagascope_store::{NewAuditEntry, StoreError};

use super::request_auth::method_name;
use super::RequestAuth;

/// One audit entry in the making. Never put secrets in it.
#[derive(Debug, Clone)]
pub struct Audit {
    action: String,
    target: Option<String>,
    reason: Option<String>,
    detail: serde_json::Value,
    result: &'static str,
    /// Overrides the principal: (name, role, method), for a login attempt
    /// that has no principal yet.
    actor: Option<(String, Option<Role>, &'static str)>,
}

impl Audit {
    /// An entry for `action` (dotted verb: `auth.login`, `dlq.retry`),
    /// result `ok` unless changed.
    pub fn new(action: &str) -> Audit {
        Audit {
            action: action.to_string(),
            target: None,
            reason: None,
            detail: serde_json::Value::Object(Default::default()),
            result: audit_result::OK,
            actor: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Audit {
        self.target = Some(target.into());
        self
    }

    /// The reason the actor gave (required for retries and discards).
    pub fn reason(mut self, reason: impl Into<String>) -> Audit {
        self.reason = Some(reason.into());
        self
    }

    /// Structured details (a JSON object).
    pub fn detail(mut self, detail: serde_json::Value) -> Audit {
        self.detail = detail;
        self
    }

    pub fn ok(mut self) -> Audit {
        self.result = audit_result::OK;
        self
    }

    pub fn denied(mut self) -> Audit {
        self.result = audit_result::DENIED;
        self
    }

    pub fn failed(mut self) -> Audit {
        self.result = audit_result::FAILED;
        self
    }

    /// Records someone other than the request's principal as the actor,
    /// e.g. the user name of a login attempt.
    pub fn actor(mut self, name: &str, role: Option<Role>, method: &'static str) -> Audit {
        self.actor = Some((name.to_string(), role, method));
        self
    }
}

/// Longest target kept (a refused request's method and path): the rest of
/// a 60 KB path is noise that only fills the log.
pub const MAX_TARGET_CHARS: usize = 512;
/// Longest reason kept (the forms allow 500 characters).
const MAX_REASON_CHARS: usize = 2000;
/// Longest actor name kept (login attempts carry whatever name was sent).
const MAX_NAME_CHARS: usize = 128;

/// `text` cut to `max` characters, marked with `…` when cut.
fn capped(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Appends `entry` for this request. Returns the entry's id; an action that
/// must not happen unaudited should not proceed on `Err`.
pub async fn audit(auth: &RequestAuth, entry: Audit) -> Result<i64, StoreError> {
    let (actor, actor_role, auth_method) = match (&entry.actor, &auth.principal) {
        (Some((name, role, method)), _) => (
            name.clone(),
            role.map(|r| r.as_str().to_string()),
            method.to_string(),
        ),
        (None, Some(p)) => (
            p.name.clone(),
            Some(p.role.as_str().to_string()),
            method_name(p.method).to_string(),
        ),
        (None, None) => ("anonymous".to_string(), None, "none".to_string()),
    };
    let record = NewAuditEntry {
        at: chrono::Utc::now(),
        actor: capped(actor, MAX_NAME_CHARS),
        actor_role,
        auth_method,
        action: entry.action,
        target: entry.target.map(|t| capped(t, MAX_TARGET_CHARS)),
        reason: entry.reason.map(|r| capped(r, MAX_REASON_CHARS)),
        detail: entry.detail,
        result: entry.result.to_string(),
        client_ip: Some(auth.client_ip.to_string()),
    };
    auth.store.append_audit(&record).await
}

/// [`audit`] where a failure must not change the response (refusals):
/// logged, not returned.
pub async fn audit_logged(auth: &RequestAuth, entry: Audit) {
    if let Err(error) = audit(auth, entry).await {
        tracing::error!(%error, "could not write the audit log");
    }
}
