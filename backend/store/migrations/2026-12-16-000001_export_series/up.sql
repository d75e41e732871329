-- Issue 12, customs exports: the series of exports a node made for its authority. Each one
-- names the one before (its manifest's SHA-256 and range), so that a gap or an overlap
-- between two exports is evident; `--since-last` starts where the last one ended.
CREATE TABLE export_series (
    seq             BIGSERIAL PRIMARY KEY,
    authority       TEXT COLLATE "C" NOT NULL,
    range_from      BIGINT NOT NULL CHECK (range_from >= 0),
    range_to        BIGINT NOT NULL CHECK (range_to >= range_from),
    manifest_sha256 TEXT NOT NULL CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    entries         BIGINT NOT NULL CHECK (entries >= 0),
    path            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX export_series_authority ON export_series (authority, seq DESC);
