-- Issue 16, compensation integrity: a saga that reads compensated (or
-- ≈ compensated) while a forward step that completed has no compensation
-- event. `missing_compensations` names those steps (a JSON array of step
-- names; NULL: nothing missing). Each write of a saga row sets it from the
-- saga's own events (a compensation event that names the forward step);
-- the learned-flow pass sets it from the step ↔ compensation pairs
-- learned from the type's compensated instances.
ALTER TABLE sagas ADD COLUMN missing_compensations TEXT;
-- The list filter and the overview's count read only the flagged rows,
-- which are few.
CREATE INDEX sagas_incomplete_compensation ON sagas (started_at_us, saga_id)
    WHERE missing_compensations IS NOT NULL;
-- The learned-flow pass reads each type's latest compensated sagas.
CREATE INDEX sagas_compensated_by_type ON sagas (saga_type, last_event_at_us)
    WHERE status = 'compensated';
