DROP TABLE operator_keys;
ALTER TABLE party_keys DROP COLUMN revoked_idx, DROP COLUMN added_idx;
ALTER TABLE parties DROP COLUMN removed_idx, DROP COLUMN added_idx;
DROP INDEX ledger_entries_party;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('transition', 'event'));
