-- Login and roles (issue 5): local users, browser sessions, API tokens and
-- the append-only audit log. Times are epoch microseconds (BIGINT) and JSON
-- is TEXT, as everywhere; only the audit log's identity column differs from
-- the Postgres migration. Secrets are never stored: passwords as argon2id PHC
-- strings, session and API tokens as the SHA-256 hex of the token.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    -- viewer | operator | admin
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    -- 1: cannot log in; its sessions and API tokens stop authenticating
    disabled      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    token_hash      TEXT PRIMARY KEY,
    user_name       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at_us   BIGINT NOT NULL,
    expires_at_us   BIGINT NOT NULL,
    last_seen_at_us BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_us);

CREATE TABLE api_tokens (
    token_hash    TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    user_name     TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    -- the token's own role, never above its user's
    role          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_name);

-- Append-only: the application only ever INSERTs and SELECTs here.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    actor_role  TEXT,
    auth_method TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    reason      TEXT,
    detail      TEXT NOT NULL,
    result      TEXT NOT NULL,
    client_ip   TEXT
);
CREATE INDEX audit_log_by_at ON audit_log (at_us DESC, id DESC);
CREATE INDEX audit_log_by_actor ON audit_log (actor, at_us DESC);
CREATE INDEX audit_log_by_action ON audit_log (action, at_us DESC);
