DROP INDEX replica_outbox_parked;
UPDATE replica_outbox SET state = 'pending', answer = NULL, answered_at = NULL
    WHERE state = 'parked';
ALTER TABLE replica_outbox DROP CONSTRAINT replica_outbox_check;
ALTER TABLE replica_outbox DROP CONSTRAINT replica_outbox_state_check;
ALTER TABLE replica_outbox ADD CONSTRAINT replica_outbox_state_check
    CHECK (state IN ('pending', 'sequenced', 'refused'));
ALTER TABLE replica_outbox ADD CONSTRAINT replica_outbox_check
    CHECK ((state = 'pending') = (answer IS NULL));
ALTER TABLE replica_outbox
    DROP COLUMN failing_since,
    DROP COLUMN attempts,
    DROP COLUMN document_ref;
