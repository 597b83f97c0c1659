-- Correlation (issue 3): keys that place events in saga instances, what
-- reprojection needs to re-derive an event under changed rules, and groups
-- that are not sagas (entity streams).

-- the saga id the message named itself, whether the rules classified the
-- event (reproject re-classifies those), and its business keys (JSON array)
ALTER TABLE events ADD COLUMN explicit_saga_id TEXT;
ALTER TABLE events ADD COLUMN rule_classified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN business_keys TEXT NOT NULL DEFAULT '[]';

-- 'saga', or 'stream' for groups of events without saga meaning (kept for
-- traces and search, not listed as sagas)
ALTER TABLE sagas ADD COLUMN kind TEXT NOT NULL DEFAULT 'saga';
-- rank of the correlation source that gave the saga id; when two instances
-- turn out to share a key, the lower (rank, saga_id) survives
ALTER TABLE sagas ADD COLUMN id_rank BIGINT NOT NULL DEFAULT 0;
-- what the stall sweep sets when the saga goes quiet: NULL means 'stalled';
-- a choreography known only from the default rules ends with its outcome
-- so far (completed, failed, compensated), shown as inferred
ALTER TABLE sagas ADD COLUMN quiet_status TEXT;

-- correlation key (trace:…, pointer:order:/order_id=…) → saga instance
CREATE TABLE correlation_keys (
    correlation_key TEXT PRIMARY KEY,
    saga_id         TEXT NOT NULL
);
CREATE INDEX correlation_keys_by_saga ON correlation_keys (saga_id);
