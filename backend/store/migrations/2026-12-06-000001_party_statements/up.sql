-- Parties and keys become ledger entries: the party statements (kind 'party') add and remove
-- parties and add and revoke keys. `parties` and `party_keys` stay the registry's projection of
-- the membership, written in the statement's own transaction; rows imported from parties.json
-- (the genesis) have no index.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('transition', 'event', 'party'));
-- Party statements are few and read at start-up.
CREATE INDEX ledger_entries_party ON ledger_entries (idx) WHERE kind = 'party';

ALTER TABLE parties
    ADD COLUMN added_idx   BIGINT CHECK (added_idx >= 0),
    ADD COLUMN removed_idx BIGINT CHECK (removed_idx > added_idx OR (added_idx IS NULL AND removed_idx >= 0));

ALTER TABLE party_keys
    ADD COLUMN added_idx   BIGINT CHECK (added_idx >= 0),
    ADD COLUMN revoked_idx BIGINT CHECK (revoked_idx > added_idx OR (added_idx IS NULL AND revoked_idx >= 0));

-- The consortium operator's keys: they sign ADD_PARTY and REMOVE_PARTY.
CREATE TABLE operator_keys (
    kid         TEXT PRIMARY KEY,
    public_key  BYTEA NOT NULL CHECK (octet_length(public_key) = 32),
    added_idx   BIGINT CHECK (added_idx >= 0),
    revoked_idx BIGINT CHECK (revoked_idx > added_idx OR (added_idx IS NULL AND revoked_idx >= 0))
);
