DROP TABLE reconciliations;
DROP INDEX incidents_party_open;
ALTER TABLE incidents DROP COLUMN party;
DROP TABLE replica_outbox;
ALTER TABLE replica_entries DROP COLUMN held_leaf;
