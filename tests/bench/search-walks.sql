SET jit = off;
PREPARE ledger(text) AS
SELECT doc.reference, doc.head_idx, le.received_at
FROM transitions tr
JOIN documents doc ON doc.reference = tr.document_ref
JOIN document_search s ON s.reference = doc.reference
JOIN ledger_entries le ON le.idx = tr.idx
WHERE tr.idx = (SELECT h.head_idx FROM documents h WHERE h.reference = tr.document_ref)
 AND (EXISTS (SELECT 1 FROM document_access a WHERE a.document_ref = doc.reference AND a.party_id = $1)
   OR EXISTS (SELECT 1 FROM documents d JOIN parties p ON p.id = $1 WHERE d.reference = doc.reference AND p.role = 'customs_authority' AND (d.port_of_loading = ANY(p.ports) OR d.port_of_discharge = ANY(p.ports))))
ORDER BY tr.idx DESC, tr.document_ref DESC LIMIT 51;
PREPARE own(text) AS
SELECT doc.reference, doc.head_idx, le.received_at
FROM (SELECT a.head_idx AS idx, a.document_ref
      FROM document_access a
      WHERE a.party_id = $1
        AND NOT EXISTS (SELECT 1 FROM parties p WHERE p.id = $1 AND p.role = 'customs_authority')) tr
JOIN documents doc ON doc.reference = tr.document_ref
JOIN document_search s ON s.reference = doc.reference
JOIN ledger_entries le ON le.idx = tr.idx
WHERE TRUE
ORDER BY tr.idx DESC, tr.document_ref DESC LIMIT 51;
\o /dev/null
EXECUTE ledger('p-small'); EXECUTE own('p-small'); EXECUTE ledger('p-big'); EXECUTE own('p-big');
\o
