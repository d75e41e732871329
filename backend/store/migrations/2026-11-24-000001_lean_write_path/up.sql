-- A leaner write path: every index and column here was paid for on each accepted transition.
--
-- * `ledger_entries.leaf_hash` needs no unique index: one entry per signed bytes is already
--   enforced by `transitions.checksum` (SHA-256 of the signed bytes) and by
--   `events (actor, event_id)`, and exact resubmissions are looked up through those.
-- * Entries by document or container are read for shipment events only, so those indexes
--   move to `events`, which is written far less often than `ledger_entries`.
-- * `documents.document` copied the transport document that the ISSUE entry already holds,
--   signed; it is read from there.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_leaf_hash_key;
DROP INDEX ledger_entries_document;
DROP INDEX ledger_entries_equipment;
CREATE INDEX events_document ON events (document_ref, idx) WHERE document_ref IS NOT NULL;
CREATE INDEX events_equipment ON events (equipment_ref, idx) WHERE equipment_ref IS NOT NULL;
ALTER TABLE documents DROP COLUMN document;
