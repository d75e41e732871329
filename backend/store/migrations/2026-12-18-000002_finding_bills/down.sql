DROP INDEX events_actor;
DROP INDEX events_location;
DROP INDEX events_code;
ALTER TABLE events DROP COLUMN location;
DROP TABLE document_search;
