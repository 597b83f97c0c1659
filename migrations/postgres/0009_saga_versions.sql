-- A compare-and-set version per saga row: the ingest keeps live sagas'
-- projections in memory and writes a row only if its version is still the
-- one it merged from; every other writer of the row (the stall sweep, a
-- second replica) bumps it, so a stale copy is detected, re-read and merged
-- again instead of overwriting. Rows from before start at 0.
ALTER TABLE sagas ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
