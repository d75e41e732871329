-- A submission the registry keeps answering as unavailable is parked after a bounded time, so
-- one poisoned submission cannot hold up every later one; submissions of the same document
-- wait behind it (parked too), so none overtakes another of its document.
ALTER TABLE replica_outbox
    -- The document a submission is about (none for an event about a container only): what
    -- keeps submissions of one document in order when one of them is parked.
    ADD COLUMN document_ref  TEXT COLLATE "C",
    -- Answers of "unavailable" so far, and since when without a break.
    ADD COLUMN attempts      INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE replica_outbox DROP CONSTRAINT replica_outbox_state_check;
ALTER TABLE replica_outbox DROP CONSTRAINT replica_outbox_check;
ALTER TABLE replica_outbox ADD CONSTRAINT replica_outbox_state_check
    CHECK (state IN ('pending', 'sequenced', 'refused', 'parked'));
-- Every state but pending has its answer: the registry's, or why it was parked.
ALTER TABLE replica_outbox ADD CONSTRAINT replica_outbox_check
    CHECK ((state = 'pending') = (answer IS NULL));
CREATE INDEX replica_outbox_parked ON replica_outbox (document_ref, seq) WHERE state = 'parked';
