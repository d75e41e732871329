-- Issue 13, notifications: a party's webhook subscriptions and the log of their deliveries.
--
-- The ledger itself is the outbox. Every entry is written in the transaction that sequences it,
-- and a subscription's `next_index` (the first entry not yet delivered to it) moves only after
-- its receiver acknowledged, in the same statement that clears its failures: a crash at any
-- moment loses no notification, and at worst one is delivered again (receivers deduplicate by
-- `webhook-id`). Delivering in ledger order keeps the order of every document.
CREATE TABLE subscriptions (
    id            TEXT COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    party_id      TEXT COLLATE "C" NOT NULL,
    url           TEXT NOT NULL CHECK (url LIKE 'https://%'),
    filter        TEXT NOT NULL,
    secret        TEXT NOT NULL,
    next_index    BIGINT NOT NULL CHECK (next_index >= 0),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'failing', 'deleted')),
    failures      INT NOT NULL DEFAULT 0 CHECK (failures >= 0),
    failing_since TIMESTAMPTZ,
    retry_at      TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX subscriptions_by_party ON subscriptions (party_id) WHERE status <> 'deleted';

CREATE TABLE subscription_deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    subscription_id TEXT COLLATE "C" NOT NULL REFERENCES subscriptions (id),
    entry_index     BIGINT NOT NULL,
    attempt         INT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_code     INT,
    error           TEXT,
    millis          INT NOT NULL
);
CREATE INDEX subscription_deliveries_by_subscription
    ON subscription_deliveries (subscription_id, seq DESC);
