-- The registry ledger. Entries, transitions, events, blocks and checkpoints are append-only:
-- the triggers at the bottom refuse UPDATE, DELETE and TRUNCATE on them, whatever the client.
--
-- The hot tables (ledger_entries, transitions, events, document_access) carry no foreign keys:
-- the one sequencer checks every reference before it writes, and a foreign key would cost a
-- trigger and an index probe per row on the write path. Uniqueness, which the rules depend on
-- (one entry per signed bytes, one child per transition, one event per id), is enforced by
-- the database.

CREATE TABLE parties (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('carrier', 'shipper', 'freight_forwarder',
                                               'bank', 'consignee', 'customs_authority')),
    -- UN/LOCODEs a customs authority has jurisdiction over (empty for everyone else).
    ports        TEXT[] NOT NULL DEFAULT '{}',
    -- SHA-256 of the party's API bearer token; the token itself is never stored.
    token_sha256 BYTEA UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE party_keys (
    kid        TEXT PRIMARY KEY,
    party_id   TEXT NOT NULL REFERENCES parties (id),
    public_key BYTEA NOT NULL CHECK (octet_length(public_key) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX party_keys_party ON party_keys (party_id);

-- One row: the ledger's size. Every batch moves it with `WHERE size = <expected>`, so a second
-- writer on the same database fails instead of interleaving indexes.
CREATE TABLE ledger_head (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    size      BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO ledger_head (singleton, size) VALUES (TRUE, 0);

CREATE TABLE ledger_entries (
    idx           BIGINT PRIMARY KEY CHECK (idx >= 0),
    kind          TEXT NOT NULL CHECK (kind IN ('transition', 'event')),
    -- The compact JWS exactly as submitted (ASCII).
    signed        BYTEA NOT NULL,
    -- SHA-256(0x00 || signed): the Merkle leaf, and the idempotency key.
    leaf_hash     BYTEA NOT NULL UNIQUE CHECK (octet_length(leaf_hash) = 32),
    document_ref  TEXT,
    equipment_ref TEXT,
    actor         TEXT NOT NULL,
    kid           TEXT NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_entries_document ON ledger_entries (document_ref, idx) WHERE document_ref IS NOT NULL;
CREATE INDEX ledger_entries_equipment ON ledger_entries (equipment_ref, idx) WHERE equipment_ref IS NOT NULL;

-- The title chain of each document. (document_ref, previous_checksum) is unique: a second child
-- of the same parent (a double spend) cannot be stored even if the code let one through.
CREATE TABLE transitions (
    idx               BIGINT PRIMARY KEY,
    document_ref      TEXT NOT NULL,
    -- SHA-256 of the compact JWS: what the next transition names as its previous checksum.
    checksum          BYTEA NOT NULL UNIQUE CHECK (octet_length(checksum) = 32),
    previous_checksum BYTEA CHECK (octet_length(previous_checksum) = 32),
    action            TEXT NOT NULL,
    actor             TEXT NOT NULL,
    recipient         TEXT,
    -- The document state right after this transition, as answered when it was accepted.
    -- JSON, not JSONB: it is written on every transition and never queried inside, and
    -- PostgreSQL stores JSON as checked text without converting it.
    state_after       JSON NOT NULL,
    CONSTRAINT transitions_one_child UNIQUE NULLS NOT DISTINCT (document_ref, previous_checksum)
);

-- Shipment events. An event id is unique per actor: a second event with the same id and
-- different bytes is refused, not stored beside the first.
CREATE TABLE events (
    idx           BIGINT PRIMARY KEY,
    actor         TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    event_code    TEXT NOT NULL,
    document_ref  TEXT,
    equipment_ref TEXT,
    CONSTRAINT events_unique_id UNIQUE (actor, event_id)
);

CREATE TABLE documents (
    reference         TEXT PRIMARY KEY,
    checksum          BYTEA NOT NULL CHECK (octet_length(checksum) = 32),
    carrier           TEXT NOT NULL REFERENCES parties (id),
    port_of_loading   TEXT NOT NULL,
    port_of_discharge TEXT NOT NULL,
    -- The transport document as issued (it never changes; an amendment voids it).
    document          JSONB NOT NULL,
    status            TEXT NOT NULL,
    possessor         TEXT NOT NULL,
    head_checksum     BYTEA NOT NULL CHECK (octet_length(head_checksum) = 32),
    head_idx          BIGINT NOT NULL,
    issued_idx        BIGINT NOT NULL,
    -- The full domain state (serialised `DocumentState`), so the sequencer can resume.
    state             JSON NOT NULL
);
CREATE INDEX documents_ports ON documents (port_of_loading, port_of_discharge);
-- Every transition rewrites its document's row; keep the (large, never changing) transport
-- document out of line so that only the small mutable part is written again, uncompressed.
ALTER TABLE documents ALTER COLUMN document SET STORAGE EXTERNAL;
ALTER TABLE documents ALTER COLUMN state SET STORAGE PLAIN;
ALTER TABLE documents SET (toast_tuple_target = 256, fillfactor = 80);

-- Who may read a document: every party named in it or in its chain. Customs authorities are
-- entitled through their ports, which is checked against `documents` directly.
CREATE TABLE document_access (
    document_ref TEXT NOT NULL,
    party_id     TEXT NOT NULL,
    PRIMARY KEY (party_id, document_ref)
);

-- Sealed blocks: the root of entries [block_no * block_size, (block_no + 1) * block_size),
-- computed once when the block filled.
CREATE TABLE blocks (
    block_no   BIGINT PRIMARY KEY CHECK (block_no >= 0),
    block_size INTEGER NOT NULL CHECK (block_size > 0),
    root       BYTEA NOT NULL CHECK (octet_length(root) = 32),
    sealed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE checkpoints (
    size       BIGINT PRIMARY KEY CHECK (size >= 0),
    root       BYTEA NOT NULL CHECK (octet_length(root) = 32),
    block_size INTEGER NOT NULL CHECK (block_size > 0),
    -- The checkpoint as the registry signed it (compact JWS).
    signed     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION lading_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lading: % on % is refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['ledger_entries', 'transitions', 'events', 'blocks', 'checkpoints'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION lading_refuse_change()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION lading_refuse_change()', t || '_no_truncate', t);
    END LOOP;
END;
$$;
