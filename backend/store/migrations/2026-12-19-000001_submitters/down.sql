DROP TABLE submitters;
ALTER TABLE ledger_entries DROP COLUMN submitted_by;
