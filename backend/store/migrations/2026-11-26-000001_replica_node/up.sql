-- Issue 3, the replica as a node: reconciliation, submissions taken while the registry is
-- away, and what each side shows of its replicas.

-- The leaf a row stands for *as it is now*, kept by PostgreSQL itself on every write, so
-- reconciliation reads 32 bytes a row instead of hashing every payload again. A row whose
-- payload no longer hashes to its leaf hash (one of the two was changed by hand) stands for
-- 32 bytes of 0xff, which no entry hashes to: it differs from the registry's leaf wherever it
-- is, and reconciliation finds it.
ALTER TABLE replica_entries ADD COLUMN held_leaf BYTEA NOT NULL GENERATED ALWAYS AS (
    CASE
        WHEN signed IS NULL OR sha256('\x00'::bytea || signed) = leaf_hash THEN leaf_hash
        ELSE '\xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'::bytea
    END
) STORED;

-- Signed submissions a replica took from its own party, forwarded to the registry in `seq`
-- order. The registry's answer is kept: its receipt, or its problem+json when it refused.
CREATE TABLE replica_outbox (
    seq         BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('transition', 'event')),
    signed      TEXT NOT NULL,
    -- The same signed submission taken twice is one submission.
    leaf_hash   BYTEA NOT NULL UNIQUE CHECK (octet_length(leaf_hash) = 32),
    taken_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sequenced', 'refused')),
    answer      JSONB,
    answered_at TIMESTAMPTZ,
    CHECK ((state = 'pending') = (answer IS NULL))
);
CREATE INDEX replica_outbox_pending ON replica_outbox (seq) WHERE state = 'pending';

-- On a registry, incidents name the replica they are about; on a replica, none.
ALTER TABLE incidents ADD COLUMN party TEXT COLLATE "C";
CREATE INDEX incidents_party_open ON incidents (party, id) WHERE closed_at IS NULL;

-- Every reconciliation, on both sides: what was compared and what was found.
CREATE TABLE reconciliations (
    id            BIGSERIAL PRIMARY KEY,
    party         TEXT COLLATE "C" NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    registry_size BIGINT NOT NULL CHECK (registry_size >= 0),
    replica_size  BIGINT CHECK (replica_size >= 0),
    replica_root  BYTEA CHECK (octet_length(replica_root) = 32),
    -- agree, behind, repaired, unreachable, failed
    outcome       TEXT NOT NULL,
    differences   BIGINT NOT NULL DEFAULT 0,
    hash_bytes    BIGINT NOT NULL DEFAULT 0,
    round_trips   INT NOT NULL DEFAULT 0,
    report        JSONB NOT NULL
);
CREATE INDEX reconciliations_party ON reconciliations (party, id);
