-- Issue 13, finding bills: what `GET /v1/documents` and `GET /v1/events` filter on.
--
-- The registry's hot tables keep only what the sequencer needs; a search also needs what the
-- transport document says and never changes (vessel, voyage, containers, the parties it
-- names). Those are written once, at ISSUE, into `document_search`, in the batch's own
-- transaction (a COPY of the batch's new documents). Nothing is added to `documents`: every
-- transition rewrites its row, and an index on a column it moves would make each of those
-- writes a non-HOT update. The list is ordered by a document's last change through the
-- primary key of `transitions` (a document's row is joined where `head_idx` is that
-- transition), so it needs no index of its own on `documents`.
CREATE TABLE document_search (
    reference      TEXT COLLATE "C" PRIMARY KEY,
    vessel         TEXT NOT NULL,
    voyage         TEXT NOT NULL,
    shipper        TEXT COLLATE "C" NOT NULL,
    consignee      TEXT COLLATE "C",
    notify_parties TEXT[] COLLATE "C" NOT NULL,
    containers     TEXT[] COLLATE "C" NOT NULL,
    -- Lowercase reference, vessel, voyage, containers and named parties, for `q`.
    search         TEXT NOT NULL
);
CREATE INDEX document_search_vessel ON document_search (lower(vessel), voyage);
CREATE INDEX document_search_voyage ON document_search (voyage);
CREATE INDEX document_search_containers ON document_search USING gin (containers);
CREATE INDEX document_search_text ON document_search USING gin (search gin_trgm_ops);

-- Where an event happened (its `location`, a UN/LOCODE): written by the sequencer from now on.
ALTER TABLE events ADD COLUMN location TEXT COLLATE "C";
CREATE INDEX events_code ON events (event_code, idx);
CREATE INDEX events_location ON events (location, idx) WHERE location IS NOT NULL;
CREATE INDEX events_actor ON events (actor, idx);

-- Documents and events sequenced before this migration: read from their signed entries.
CREATE FUNCTION lading_jws_payload(signed BYTEA) RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_from(decode(rpad(p, (length(p) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb
    FROM (SELECT translate(split_part(convert_from(signed, 'UTF8'), '.', 2), '-_', '+/') AS p) s
$$;

INSERT INTO document_search
SELECT d.reference,
       td->>'vesselName',
       td->>'carrierExportVoyageNumber',
       td->>'shipper',
       td->>'consignee',
       ARRAY(SELECT jsonb_array_elements_text(coalesce(td->'notifyParties', '[]'))),
       ARRAY(SELECT u->'equipment'->>'equipmentReference'
             FROM jsonb_array_elements(coalesce(td->'utilizedTransportEquipments', '[]')) u),
       lower(concat_ws(' ', d.reference, td->>'vesselName', td->>'carrierExportVoyageNumber',
             (SELECT string_agg(u->'equipment'->>'equipmentReference', ' ')
              FROM jsonb_array_elements(coalesce(td->'utilizedTransportEquipments', '[]')) u),
             td->>'carrier', td->>'shipper', td->>'consignee', td->>'endorsee',
             (SELECT string_agg(n, ' ')
              FROM jsonb_array_elements_text(coalesce(td->'notifyParties', '[]')) n)))
FROM documents d
JOIN ledger_entries e ON e.idx = d.issued_idx
CROSS JOIN LATERAL (SELECT lading_jws_payload(e.signed)->'transportDocument' AS td) t;

ALTER TABLE events DISABLE TRIGGER events_append_only;
UPDATE events ev SET location = lading_jws_payload(e.signed)->>'location'
FROM ledger_entries e WHERE e.idx = ev.idx;
ALTER TABLE events ENABLE TRIGGER events_append_only;

DROP FUNCTION lading_jws_payload(BYTEA);
