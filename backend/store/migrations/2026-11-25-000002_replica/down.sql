DROP TABLE incidents;
DROP TABLE replica_checkpoints;
DROP TABLE replica_entries;
