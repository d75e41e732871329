-- Issue 11, the portal's write side: bills of lading a clerk prepared and a signer has not yet
-- signed. The document is kept as the domain parsed it (its canonical JSON), with the party
-- it is to be issued to; signing builds the ISSUE from exactly this row.
CREATE TABLE portal_drafts (
    id            BIGSERIAL PRIMARY KEY,
    reference     TEXT COLLATE "C" NOT NULL,
    document      JSONB NOT NULL,
    recipient     TEXT COLLATE "C" NOT NULL,
    created_by    BIGINT REFERENCES portal_users (id) ON DELETE SET NULL,
    created_by_name TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- `draft` until signed (`submitted`, with the outbox's seq) or discarded.
    state         TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'submitted', 'discarded')),
    outbox_seq    BIGINT
);
CREATE INDEX portal_drafts_state ON portal_drafts (state, id);
