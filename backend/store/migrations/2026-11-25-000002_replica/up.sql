-- A party's replica (`lading replica`, issue 3) keeps here what it has checked of the
-- registry's ledger. One schema and one migration history serve both roles, so a registry's
-- database has these tables too, empty, and a replica's has the registry's, empty.
--
-- Unlike `ledger_entries`, these rows are not protected by an append-only trigger:
-- reconciliation must be able to replace a row that was altered from the signed original.

-- Every entry in index order: its leaf hash always; the compact JWS only for entries the
-- party is entitled to (everything else never reaches the replica).
CREATE TABLE replica_entries (
    idx          BIGINT PRIMARY KEY CHECK (idx >= 0),
    leaf_hash    BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32),
    signed       BYTEA,
    document_ref TEXT COLLATE "C",
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX replica_entries_document ON replica_entries (document_ref, idx)
    WHERE document_ref IS NOT NULL;

-- The registry's signed checkpoints as received; `verified` once their root was recomputed
-- from the leaves held. Kept as evidence: two of one size would prove two histories.
CREATE TABLE replica_checkpoints (
    size        BIGINT PRIMARY KEY CHECK (size >= 0),
    root        BYTEA NOT NULL CHECK (octet_length(root) = 32),
    signed      TEXT NOT NULL,
    verified    BOOLEAN NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What the replica refused or found, with the evidence to show for it.
CREATE TABLE incidents (
    id        BIGSERIAL PRIMARY KEY,
    code      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    evidence  JSONB NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at TIMESTAMPTZ
);
CREATE INDEX incidents_open ON incidents (opened_at) WHERE closed_at IS NULL;
