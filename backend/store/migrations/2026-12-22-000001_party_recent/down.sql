DROP INDEX document_access_recent;
ALTER TABLE document_access DROP CONSTRAINT document_access_pkey;
ALTER TABLE document_access ADD PRIMARY KEY (party_id, document_ref);
ALTER TABLE document_access DROP COLUMN head_idx;
