ALTER TABLE parties ADD COLUMN token_sha256 BYTEA;
UPDATE parties SET token_sha256 = c.secret_sha256
FROM api_credentials c WHERE c.id = 'imported-' || parties.id AND c.revoked_at IS NULL;
DROP TABLE api_credentials;
