DROP TABLE node_documents;
DROP TABLE portal_audit;
DROP TABLE portal_sessions;
DROP TABLE portal_users;
DROP EXTENSION IF EXISTS pg_trgm;
