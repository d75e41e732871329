ALTER TABLE document_access ALTER COLUMN document_ref TYPE TEXT COLLATE "default",
                            ALTER COLUMN party_id TYPE TEXT COLLATE "default";
ALTER TABLE documents ALTER COLUMN reference TYPE TEXT COLLATE "default";
ALTER TABLE events ALTER COLUMN actor TYPE TEXT COLLATE "default",
                   ALTER COLUMN event_id TYPE TEXT COLLATE "default",
                   ALTER COLUMN document_ref TYPE TEXT COLLATE "default",
                   ALTER COLUMN equipment_ref TYPE TEXT COLLATE "default";
ALTER TABLE transitions ALTER COLUMN document_ref TYPE TEXT COLLATE "default";
ALTER TABLE ledger_entries RESET (toast_tuple_target);
ALTER TABLE documents ADD COLUMN document JSONB;
-- The transport document is the `transportDocument` member of the ISSUE's payload (the second
-- part of the compact JWS, base64url without padding).
UPDATE documents AS d
SET document = (convert_from(decode(
        rpad(translate(split_part(convert_from(e.signed, 'UTF8'), '.', 2), '-_', '+/'),
             ((length(split_part(convert_from(e.signed, 'UTF8'), '.', 2)) + 3) / 4) * 4, '='),
        'base64'), 'UTF8')::jsonb) -> 'transportDocument'
FROM ledger_entries AS e
WHERE e.idx = d.issued_idx;
ALTER TABLE documents ALTER COLUMN document SET NOT NULL;
ALTER TABLE documents ALTER COLUMN document SET STORAGE EXTERNAL;
DROP INDEX events_equipment;
DROP INDEX events_document;
CREATE INDEX ledger_entries_equipment ON ledger_entries (equipment_ref, idx) WHERE equipment_ref IS NOT NULL;
CREATE INDEX ledger_entries_document ON ledger_entries (document_ref, idx) WHERE document_ref IS NOT NULL;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_leaf_hash_key UNIQUE (leaf_hash);
-- The states after each transition are not recomputed here (that needs the domain's state
-- machine); the column comes back empty and nullable.
ALTER TABLE transitions ADD COLUMN state_after JSON;
ALTER TABLE transitions ADD CONSTRAINT transitions_checksum_key UNIQUE (checksum);
