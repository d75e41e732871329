-- Issue 13, credentials: who handed each entry to the registry, as against who signed it, and
-- which parties a party lets submit for it (a forwarder submitting for its customer).
-- NULL for the entries before this migration, and for submissions without a party's
-- credential (anonymous writes where allowed, the consortium's own certificate, imports).
-- A column without a default: PostgreSQL adds it without rewriting the ledger.
ALTER TABLE ledger_entries ADD COLUMN submitted_by TEXT;

-- `party_id` lets `submitter_id` submit statements it signed. Removed by the party's admin
-- (DELETE): the ledger's `submitted_by` keeps who submitted what.
CREATE TABLE submitters (
    party_id     TEXT NOT NULL REFERENCES parties (id),
    submitter_id TEXT NOT NULL REFERENCES parties (id),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (party_id, submitter_id),
    CHECK (party_id <> submitter_id)
);
