//! JSON shapes of login, roles and the audit log, shared by the server and
//! the browser build. Roles travel as their lowercase names (`viewer`,
//! `operator`, `admin`); the server's `sagascope-auth` crate owns the
//! rules, these are only the wire shapes.

use crate::query_params::{non_empty, parse_cursor, parse_limit, parse_time, query_string};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Roles, least privileged first, as the UI compares them.
pub const ROLE_NAMES: [&str; 3] = ["viewer", "operator", "admin"];

/// Rank of a role name (viewer 0, operator 1, admin 2); unknown names
/// rank below everything, so they never pass a check.
pub fn role_rank(role: &str) -> Option<usize> {
    ROLE_NAMES.iter().position(|r| *r == role)
}

/// The signed-in user as pages and `/api/v1/auth/me` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub name: String,
    /// `viewer`, `operator` or `admin` (an API token's own role).
    pub role: String,
    /// `session`, `api_token` or `proxy`.
    pub method: String,
}

impl CurrentUser {
    /// Whether this user has at least `role` (`viewer|operator|admin`).
    pub fn has_role(&self, role: &str) -> bool {
        matches!((role_rank(&self.role), role_rank(role)), (Some(have), Some(need)) if have >= need)
    }
}

/// What a page knows about the request's authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// `None` when nobody is signed in.
    pub user: Option<CurrentUser>,
    /// The CSRF token every mutating request of this session must send as
    /// `x-csrf-token` (or the form field `csrf_token`). `None` without a
    /// session (and for API tokens, which need none).
    pub csrf_token: Option<String>,
    /// Whether reading is allowed without signing in.
    pub anonymous_viewer: bool,
    /// `local` (password login) or `proxy` (trusted reverse-proxy header).
    pub auth_mode: String,
}

impl SessionInfo {
    /// Whether the signed-in user has at least `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.user.as_ref().is_some_and(|u| u.has_role(role))
    }
}

/// Answer of a successful `POST /api/v1/auth/login` and of
/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub user: CurrentUser,
    /// `None` for API-token requests (`/me` with a bearer token).
    pub csrf_token: Option<String>,
}

/// A local account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub name: String,
    pub role: String,
    pub created_at: Timestamp,
    pub disabled: bool,
}

/// Answer of `POST /api/v1/auth/tokens`: the plaintext is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    /// `Authorization: Bearer <token>`; only its hash is stored.
    pub token: String,
    pub label: String,
    pub user_name: String,
    pub role: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// Outcome recorded on an audit entry.
pub mod audit_result {
    /// The action was performed.
    pub const OK: &str = "ok";
    /// Refused: wrong credentials, missing role, missing CSRF token, rate limit.
    pub const DENIED: &str = "denied";
    /// Attempted and failed (e.g. the broker refused a retry).
    pub const FAILED: &str = "failed";
}

/// One row of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryView {
    pub id: i64,
    pub at: Timestamp,
    /// User name, `anonymous`, or the name tried at a failed login.
    pub actor: String,
    pub actor_role: Option<String>,
    /// `session`, `api_token`, `proxy`, `cli` or `none`.
    pub auth_method: String,
    /// Dotted verb, e.g. `auth.login`, `auth.logout`, `token.create`,
    /// `user.add`, `dlq.retry`.
    pub action: String,
    /// What the action was about (user name, dead-letter id, filter).
    pub target: Option<String>,
    /// The reason the actor gave (retries and discards need one).
    pub reason: Option<String>,
    /// Structured details (never secrets).
    pub detail: serde_json::Value,
    /// `ok`, `denied` or `failed` (see [`audit_result`]).
    pub result: String,
    pub client_ip: Option<String>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page.
    pub next_cursor: Option<String>,
}

/// Audit log filters as they arrive in a query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema, utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A validated [`AuditFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exact actor name.
    pub actor: Option<String>,
    /// Exact action, or a prefix when it ends in `.` or `*` (`auth.`,
    /// `dlq.*`).
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: u32,
    /// Keyset position: (at in µs, id) of the last row seen.
    pub cursor: Option<(i64, i64)>,
}

/// Audit rows per page unless `limit` says otherwise.
pub const DEFAULT_AUDIT_PAGE_SIZE: u32 = 100;
/// Most audit rows one page may hold.
pub const MAX_AUDIT_PAGE_SIZE: u32 = 1000;

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            actor: None,
            action: None,
            since: None,
            until: None,
            limit: DEFAULT_AUDIT_PAGE_SIZE,
            cursor: None,
        }
    }
}

/// The `cursor` of the audit row after which the next page starts.
pub fn encode_audit_cursor(at_us: i64, id: i64) -> String {
    format!("{at_us}.{id}")
}

fn decode_audit_cursor(text: &str) -> Option<(i64, i64)> {
    let (at, id) = text.split_once('.')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

impl AuditFilter {
    pub fn validate(&self) -> Result<AuditQuery, String> {
        let limit = parse_limit(&self.limit, DEFAULT_AUDIT_PAGE_SIZE, MAX_AUDIT_PAGE_SIZE)?;
        let cursor = parse_cursor(&self.cursor, decode_audit_cursor)?;
        Ok(AuditQuery {
            actor: non_empty(&self.actor),
            action: non_empty(&self.action),
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            limit,
            cursor,
        })
    }

    /// The query string of this filter (without `cursor`), for links.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
            ("limit", &self.limit),
        ];
        query_string(&pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_compare_by_rank() {
        let user = |role: &str| CurrentUser {
            name: "a".into(),
            role: role.into(),
            method: "session".into(),
        };
        assert!(user("operator").has_role("viewer"));
        assert!(user("operator").has_role("operator"));
        assert!(!user("operator").has_role("admin"));
        assert!(!user("root").has_role("viewer"));
        assert!(!user("admin").has_role("superuser"));
        assert!(!SessionInfo::default().has_role("viewer"));
    }

    #[test]
    fn audit_filter_validates() {
        let q = AuditFilter {
            actor: Some(" alice ".into()),
            action: Some("".into()),
            since: Some("2026-01-01T00:00:00Z".into()),
            cursor: Some(encode_audit_cursor(5, 7)),
            ..AuditFilter::default()
        }
        .validate()
        .unwrap();
        assert_eq!(q.actor.as_deref(), Some("alice"));
        assert_eq!(q.action, None);
        assert!(q.since.is_some());
        assert_eq!(q.cursor, Some((5, 7)));
        assert_eq!(q.limit, DEFAULT_AUDIT_PAGE_SIZE);
        for bad in [
            AuditFilter {
                limit: Some("0".into()),
                ..AuditFilter::default()
            },
            AuditFilter {
                cursor: Some("x".into()),
                ..AuditFilter::default()
            },
            AuditFilter {
                until: Some("yesterday".into()),
                ..AuditFilter::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let f = AuditFilter {
            actor: Some("a b".into()),
            action: Some("auth.login".into()),
            ..AuditFilter::default()
        };
        assert_eq!(f.to_query_string(), "actor=a%20b&action=auth%2Elogin");
    }
}
