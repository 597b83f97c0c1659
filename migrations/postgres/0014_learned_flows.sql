-- Issue 16: sagas whose end no event declares are ended by their type's
-- learned flow. `last_node` is the flow node of a saga's latest event
-- (`flow_node_name`), so the sweep finds the running sagas that stopped at
-- a learned end event with one indexed statement per type; `inferred_from`
-- says which inference set the stored status (NULL: the events' own, or
-- the flat stall timeout), for the status badge. Every write of a saga row
-- recomputes its status from its events and clears it.
ALTER TABLE sagas ADD COLUMN last_node TEXT;
ALTER TABLE sagas ADD COLUMN inferred_from TEXT;
