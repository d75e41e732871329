-- Issue 13, credentials: a party's API credentials, made and revoked by its admin. Only the
-- SHA-256 of each secret is kept (the secret is 256 random bits, so a fast hash is enough: no
-- dictionary to search). The one token a party had (`parties.token_sha256`, from
-- `import-parties --tokens`) moves here with every scope, so existing tokens keep working.
CREATE TABLE api_credentials (
    id            TEXT COLLATE "C" PRIMARY KEY,
    party_id      TEXT NOT NULL REFERENCES parties (id),
    secret_sha256 BYTEA NOT NULL UNIQUE CHECK (octet_length(secret_sha256) = 32),
    scopes        TEXT[] NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_credentials_party ON api_credentials (party_id, created_at);

INSERT INTO api_credentials (id, party_id, secret_sha256, scopes, label)
SELECT 'imported-' || id, id, token_sha256, ARRAY['read', 'submit', 'subscribe', 'admin'],
       'imported'
FROM parties WHERE token_sha256 IS NOT NULL;

ALTER TABLE parties DROP COLUMN token_sha256;
