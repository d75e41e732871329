-- Issue 13, finding bills: each party's documents in the order of their last change.
--
-- A page of `GET /v1/documents` walked the ledger backwards and kept the heads the party may
-- read: about `limit / share` transitions a page, ~500 for a party entitled to one document in
-- ten (~6 ms of PostgreSQL a page at 1,000,000 documents, so two cores served ~200 pages a
-- second). With the head's ledger index on each access row, a page is one range of one index:
-- 50 rows for a page of 50, whatever the party's share and the ledger's length.
--
-- The price is on the write path: every transition moves its document's head, so every access
-- row of the document is rewritten (a non-HOT update: `head_idx` is indexed). Measured in
-- BENCHMARKS.md ("finding bills ... by the party's index").
ALTER TABLE document_access ADD COLUMN head_idx BIGINT;
UPDATE document_access a SET head_idx = d.head_idx FROM documents d WHERE d.reference = a.document_ref;
-- An access row without its document cannot be written by the registry (both go in one
-- transaction); if one exists, it would otherwise fail the NOT NULL below.
DELETE FROM document_access WHERE head_idx IS NULL;
ALTER TABLE document_access ALTER COLUMN head_idx SET NOT NULL;

-- The rows of a document are found by its reference first: a batch moves them by document,
-- and the entitlement probe (`document_ref = ? AND party_id = ?`) is served either way.
ALTER TABLE document_access DROP CONSTRAINT document_access_pkey;
ALTER TABLE document_access ADD PRIMARY KEY (document_ref, party_id);
CREATE INDEX document_access_recent ON document_access (party_id, head_idx DESC, document_ref DESC);
