-- Issue 13, batched notifications: a subscription may ask for its deliveries as CloudEvents
-- batches (`application/cloudevents-batch+json`, a JSON array of the structured mode's
-- events), at most `batch_max` in a request. NULL: one event per request, as before.
--
-- `batch_end` is the last ledger index of the batch that failed and waits for its retry: the
-- retry sends exactly that batch again (the same entries, the same `webhook-id`), however far
-- the ledger has grown meanwhile. Cleared when the subscription moves on or is redelivered.
--
-- A delivery attempt of a batch logs its first entry (`entry_index`, as before), its last
-- (`last_index`) and how many events it held (`events`); both NULL for one event's attempt.
ALTER TABLE subscriptions
    ADD COLUMN batch_max INT CHECK (batch_max BETWEEN 1 AND 1000),
    ADD COLUMN batch_end BIGINT CHECK (batch_end >= 0);
ALTER TABLE subscription_deliveries
    ADD COLUMN last_index BIGINT,
    ADD COLUMN events INT CHECK (events >= 1);
