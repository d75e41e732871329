-- The operator view's ingest chart reads the checkpoints of the last hour, and the size at its
-- start: by time. The registry signs a checkpoint every interval while the ledger grows, so
-- without this index both would read every checkpoint ever signed.
CREATE INDEX checkpoints_created_at ON checkpoints (created_at, size);
