//! Local users, browser sessions and API tokens (migration 0005).
//!
//! Only what is safe to keep is stored: argon2id PHC strings for passwords,
//! SHA-256 hex for session and API tokens (see `sagascope-auth`). Lookups
//! decide validity in SQL against the caller's `now`: an expired session,
//! a revoked or expired API token, or anything of a disabled user is simply
//! not found, so no caller can forget a check.

use chrono::{DateTime, Utc};
use sagascope_auth::{NewApiToken, NewSession, NewUser, Role};
use sagascope_domain::{from_micros, micros};
use sagascope_model::UserView;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// A local account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string; never log or serialize it.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

impl UserRecord {
    /// The account without its password hash, for the API and the CLI.
    pub fn view(&self) -> UserView {
        UserView {
            name: self.name.clone(),
            role: self.role.as_str().to_string(),
            created_at: self.created_at,
            disabled: self.disabled,
        }
    }
}

/// A live session: not expired, its user not disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user_name: String,
    /// The user's current role (a role change applies to open sessions).
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A usable API token: not revoked, not expired, its user not disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub token_hash: String,
    pub label: String,
    pub user_name: String,
    /// Effective role: the token's own role, capped by its user's current
    /// role (a demoted user's tokens are demoted too).
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn role_column(row: &AnyRow, column: &str) -> Result<Role> {
    let text: String = row.try_get(column)?;
    Role::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown role `{text}`")))
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord> {
    let disabled: i64 = row.try_get("disabled")?;
    Ok(UserRecord {
        name: row.try_get("name")?,
        role: role_column(row, "role")?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_micros(row.try_get("created_at_us")?),
        disabled: disabled != 0,
    })
}

const USER_COLUMNS: &str = "name, role, password_hash, created_at_us, disabled";

impl Store {
    /// Creates a local account. `Ok(false)` when the name is taken (nothing
    /// changes).
    #[tracing::instrument(skip_all, fields(user = %user.name, role = %user.role), err)]
    pub async fn add_user(&self, user: &NewUser, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at_us, disabled) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(user.name.clone())
        .bind(user.role.as_str().to_string())
        .bind(user.password_hash.clone())
        .bind(micros(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes a user's role and/or password hash. `Ok(false)` when there
    /// is no such user. A new password ends the user's open sessions.
    #[tracing::instrument(skip(self, password_hash), fields(new_password = password_hash.is_some()), err)]
    pub async fn update_user(
        &self,
        name: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET role = COALESCE($2, role), password_hash = COALESCE($3, password_hash) WHERE name = $1",
        )
        .bind(name.to_string())
        .bind(role.map(|r| r.as_str().to_string()))
        .bind(password_hash.map(str::to_string))
        .execute(&mut *tx)
        .await?;
        if password_hash.is_some() {
            sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(name.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disables (or re-enables) an account. Disabling ends its sessions at
    /// once; its API tokens stop authenticating while it stays disabled.
    /// `Ok(false)` when there is no such user.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1")
            .bind(name.to_string())
            .bind(i64::from(disabled))
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(name.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The account named `name`, disabled or not.
    #[tracing::instrument(skip(self), err)]
    pub async fn find_user(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        sqlx::query(&sql)
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// Every account, by name.
    #[tracing::instrument(skip(self), err)]
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// Stores a new session (its token hash only).
    #[tracing::instrument(skip_all, fields(user = %session.user_name), err)]
    pub async fn create_session(&self, session: &NewSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, created_at_us, expires_at_us, last_seen_at_us) VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(session.token_hash.clone())
        .bind(session.user_name.clone())
        .bind(micros(session.created_at))
        .bind(micros(session.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token hash if it is still valid at `now`:
    /// not expired and its user not disabled. Expired sessions never
    /// authenticate, purged or not.
    #[tracing::instrument(skip_all, err)]
    pub async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_name, u.role, s.created_at_us, s.expires_at_us, s.last_seen_at_us \
             FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_hash = $1 AND s.expires_at_us > $2 AND u.disabled = 0",
        )
        .bind(token_hash.to_string())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                token_hash: row.try_get("token_hash")?,
                user_name: row.try_get("user_name")?,
                role: role_column(&row, "role")?,
                created_at: from_micros(row.try_get("created_at_us")?),
                expires_at: from_micros(row.try_get("expires_at_us")?),
                last_seen_at: from_micros(row.try_get("last_seen_at_us")?),
            })
        })
        .transpose()
    }

    /// Records activity on a session (shown to admins; the expiry stays
    /// absolute).
    #[tracing::instrument(skip_all, err)]
    pub async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at_us = $2 WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session (logout). `Ok(false)` when it did not exist.
    #[tracing::instrument(skip_all, err)]
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the sessions expired at `now`; returns how many.
    #[tracing::instrument(skip(self), err)]
    pub async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at_us <= $1")
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a new API token (its hash only).
    #[tracing::instrument(skip_all, fields(user = %token.user_name, label = %token.label, role = %token.role), err)]
    pub async fn create_api_token(&self, token: &NewApiToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, label, user_name, role, created_at_us, expires_at_us, revoked_at_us) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(token.token_hash.clone())
        .bind(token.label.clone())
        .bind(token.user_name.clone())
        .bind(token.role.as_str().to_string())
        .bind(micros(token.created_at))
        .bind(token.expires_at.map(micros))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The API token with this hash if it authenticates at `now`: not
    /// revoked, not expired, its user not disabled. Its role is capped by
    /// the user's current role.
    #[tracing::instrument(skip_all, err)]
    pub async fn find_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiTokenRecord>> {
        let row = sqlx::query(
            "SELECT t.token_hash, t.label, t.user_name, t.role, u.role AS user_role, t.created_at_us, t.expires_at_us \
             FROM api_tokens t JOIN users u ON u.name = t.user_name \
             WHERE t.token_hash = $1 AND t.revoked_at_us IS NULL \
             AND (t.expires_at_us IS NULL OR t.expires_at_us > $2) AND u.disabled = 0",
        )
        .bind(token_hash.to_string())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let token_role = role_column(&row, "role")?;
            let user_role = role_column(&row, "user_role")?;
            Ok(ApiTokenRecord {
                token_hash: row.try_get("token_hash")?,
                label: row.try_get("label")?,
                user_name: row.try_get("user_name")?,
                role: token_role.min(user_role),
                created_at: from_micros(row.try_get("created_at_us")?),
                expires_at: row
                    .try_get::<Option<i64>, _>("expires_at_us")?
                    .map(from_micros),
            })
        })
        .transpose()
    }

    /// Revokes an API token for good. `Ok(false)` when there is no such
    /// token or it was revoked before.
    #[tracing::instrument(skip_all, err)]
    pub async fn revoke_api_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = $2 WHERE token_hash = $1 AND revoked_at_us IS NULL",
        )
        .bind(token_hash.to_string())
        .bind(micros(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
