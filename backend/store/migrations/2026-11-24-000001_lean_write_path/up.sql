-- A leaner write path: every index and column here was paid for on each accepted transition.
--
-- * `ledger_entries.leaf_hash` and `transitions.checksum` need no unique index: the same signed
--   bytes twice would break `transitions_one_child` (same document, same parent) or
--   `events_unique_id` (same actor, same event id). Exact resubmissions are looked up through
--   those two indexes.
-- * `transitions.state_after` copied what the signed chain already determines: the state after
--   a transition is recomputed from the chain when a resubmission asks for it (rare), instead
--   of being written with every transition.
-- * Entries by document or container are read for shipment events only, so those indexes
--   move to `events`, which is written far less often than `ledger_entries`.
-- * `documents.document` copied the transport document that the ISSUE entry already holds,
--   signed; it is read from there.
-- * Identifiers are compared byte for byte (COLLATE "C"): they are keys, not prose, and a
--   locale-aware comparison costs a strcoll() on every index probe.
-- * Signed entries stay inline and uncompressed up to a page: an ISSUE (a few KB) would
--   otherwise be run through pglz on the write path, to save little on base64 text.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_leaf_hash_key;
ALTER TABLE transitions DROP CONSTRAINT transitions_checksum_key;
ALTER TABLE transitions DROP COLUMN state_after;
DROP INDEX ledger_entries_document;
DROP INDEX ledger_entries_equipment;
CREATE INDEX events_document ON events (document_ref, idx) WHERE document_ref IS NOT NULL;
CREATE INDEX events_equipment ON events (equipment_ref, idx) WHERE equipment_ref IS NOT NULL;
ALTER TABLE documents DROP COLUMN document;

ALTER TABLE ledger_entries SET (toast_tuple_target = 8160);
ALTER TABLE transitions ALTER COLUMN document_ref TYPE TEXT COLLATE "C";
ALTER TABLE events ALTER COLUMN actor TYPE TEXT COLLATE "C",
                   ALTER COLUMN event_id TYPE TEXT COLLATE "C",
                   ALTER COLUMN document_ref TYPE TEXT COLLATE "C",
                   ALTER COLUMN equipment_ref TYPE TEXT COLLATE "C";
ALTER TABLE documents ALTER COLUMN reference TYPE TEXT COLLATE "C";
ALTER TABLE document_access ALTER COLUMN document_ref TYPE TEXT COLLATE "C",
                            ALTER COLUMN party_id TYPE TEXT COLLATE "C";
