-- Issue 11, the web portal of a party's node: its users, their sessions, an audit log, and a
-- projection of the documents the node holds that the portal's list can search quickly.
-- One schema serves the registry and the replicas alike (see 2026-11-25-000002_replica): a
-- registry's database has these tables too, empty.

-- Trigram indexes for the list's free-text search (a trusted contrib extension: the
-- database's owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The people who sign in to a node's portal. All of them act for the node's party; what each
-- may do follows its role. Only an argon2id hash (PHC string) of the password is kept.
CREATE TABLE portal_users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE
                  CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    party         TEXT COLLATE "C" NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'clerk', 'signer', 'admin')),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled      BOOLEAN NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Signed-in sessions. The browser holds a 256-bit random token; only its SHA-256 is kept, so
-- a copy of this table opens no session. A session ends at `expires_at` (absolute) or after
-- a while without requests (idle, from `last_seen`), or when its user logs out.
CREATE TABLE portal_sessions (
    token_sha256 BYTEA PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    user_id      BIGINT NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions (user_id);

-- Who did what, when, through the portal (sign-ins, user changes; later: drafts, signatures).
CREATE TABLE portal_audit (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id      BIGINT REFERENCES portal_users (id) ON DELETE SET NULL,
    username     TEXT NOT NULL,
    action       TEXT NOT NULL,
    document_ref TEXT COLLATE "C",
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX portal_audit_at ON portal_audit (at DESC, id DESC);
CREATE INDEX portal_audit_document ON portal_audit (document_ref, id) WHERE document_ref IS NOT NULL;

-- One row per document whose chain the node verified whole: the transport document's fields
-- (from its ISSUE) and the state after its last transition. Derived from `replica_entries`
-- and what the node verified, never written by hand: kept in the transaction that keeps the
-- entries, and made again from the verified chains when the node restores itself.
CREATE TABLE node_documents (
    reference         TEXT COLLATE "C" PRIMARY KEY,
    -- The status code after the last transition (ACTIVE, SURRENDER_FOR_DELIVERY_REQUESTED, …).
    state             TEXT NOT NULL,
    type_code         TEXT NOT NULL,
    is_to_order       BOOLEAN NOT NULL,
    carrier           TEXT COLLATE "C" NOT NULL,
    shipper           TEXT COLLATE "C" NOT NULL,
    consignee         TEXT COLLATE "C",
    notify_parties    TEXT[] NOT NULL,
    possessor         TEXT COLLATE "C" NOT NULL,
    endorsee          TEXT COLLATE "C",
    vessel            TEXT NOT NULL,
    voyage            TEXT NOT NULL,
    port_of_loading   TEXT NOT NULL,
    port_of_discharge TEXT NOT NULL,
    containers        TEXT[] NOT NULL,
    -- What the node's party is on the document now: carrier, shipper, consignee, notify,
    -- endorsee, holder (in possession), customs (its ports), participant (none of those).
    party_roles       TEXT[] NOT NULL,
    issue_date        DATE NOT NULL,
    -- The ledger times (`time` of the signed statements) of the ISSUE and of the last entry.
    issued_at         TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    issued_index      BIGINT NOT NULL CHECK (issued_index >= 0),
    last_index        BIGINT NOT NULL CHECK (last_index >= issued_index),
    last_action       TEXT NOT NULL,
    last_actor        TEXT COLLATE "C" NOT NULL,
    length            BIGINT NOT NULL CHECK (length >= 1),
    head              BYTEA NOT NULL CHECK (octet_length(head) = 32),
    -- Lower-case text of what the free-text search looks in (reference, parties, vessel,
    -- voyage, ports, containers).
    search            TEXT NOT NULL
);
-- Keyset pagination for each sort, newest first or oldest first, ties broken by reference.
CREATE INDEX node_documents_updated ON node_documents (updated_at, reference);
CREATE INDEX node_documents_issued ON node_documents (issued_at, reference);
CREATE INDEX node_documents_issue_date ON node_documents (issue_date, reference);
CREATE INDEX node_documents_state ON node_documents (state, updated_at);
CREATE INDEX node_documents_roles ON node_documents USING gin (party_roles);
CREATE INDEX node_documents_search ON node_documents USING gin (search gin_trgm_ops);
