-- A sealed block keeps its leaf hashes, in order (32 bytes each), written once with its root.
-- Reconciliation compares a replica's blocks with the registry's: one row of 32 KB per block
-- instead of 1,024 ledger rows of ~1 KB each. NULL for blocks sealed before this migration
-- (their leaves are read from ledger_entries).
ALTER TABLE blocks ADD COLUMN leaves BYTEA
    CHECK (leaves IS NULL OR octet_length(leaves) = 32 * block_size);
