-- 200k documents; each has an ISSUE and a TRANSFER; party 'p-big' named in every 10th,
-- 'p-small' in 50 of them.
INSERT INTO parties (id, name, role) VALUES ('carrier-x','c','carrier'),('p-big','b','shipper'),('p-small','s','shipper'),('customs-x','cx','customs_authority');
UPDATE parties SET ports = '{NLRTM}' WHERE id = 'customs-x';
INSERT INTO ledger_entries (idx, kind, signed, leaf_hash, document_ref, actor, kid, received_at)
SELECT i, 'transition', 'x'::bytea, sha256(int8send(i)), 'D' || (i % 200000), 'carrier-x', 'k', now() - make_interval(secs => 400000 - i)
FROM generate_series(0, 399999) i;
INSERT INTO transitions (idx, document_ref, checksum, previous_checksum, action, actor, recipient)
SELECT i, 'D' || (i % 200000), sha256(int8send(i)), CASE WHEN i >= 200000 THEN sha256(int8send(i - 200000)) END,
       CASE WHEN i < 200000 THEN 'ISSUE' ELSE 'TRANSFER' END, 'carrier-x', 'p'
FROM generate_series(0, 399999) i;
-- the head of document d: its transfer (200000 + d) for even d, its issue for odd d (so heads
-- interleave in order)
INSERT INTO documents (reference, checksum, carrier, port_of_loading, port_of_discharge, status, possessor, head_checksum, head_idx, issued_idx, state)
SELECT 'D' || d, sha256(int8send(d)), 'carrier-x', CASE WHEN d % 7 = 0 THEN 'NLRTM' ELSE 'SGSIN' END, 'USLAX', 'ACTIVE', 'p-big',
       sha256(int8send(d)), CASE WHEN d % 2 = 0 THEN 200000 + d ELSE d END, d, '{}'
FROM generate_series(0, 199999) d;
INSERT INTO document_search (reference, vessel, voyage, shipper, consignee, notify_parties, containers, search)
SELECT 'D' || d, 'Vessel ' || (d % 300), 'V' || (d % 50), 'shipper-z', NULL, '{}', ARRAY['CONT' || d],
       lower('D' || d || ' vessel ' || (d % 300) || ' v' || (d % 50) || ' cont' || d || ' carrier-x shipper-z')
FROM generate_series(0, 199999) d;
INSERT INTO document_access (document_ref, party_id, head_idx)
SELECT a.document_ref, a.party_id, d.head_idx
FROM (SELECT 'D' || d AS document_ref, 'carrier-x' AS party_id FROM generate_series(0, 199999) d
      UNION ALL SELECT 'D' || d, 'p-big' FROM generate_series(0, 199999, 10) d
      UNION ALL SELECT 'D' || d, 'p-small' FROM generate_series(0, 199999, 4000) d) a
JOIN documents d ON d.reference = a.document_ref;
ANALYZE;
