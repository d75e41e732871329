-- Writing a document row cost twice what it needed (measured with COPY of 40,000 rows):
--
-- * The foreign key `documents.carrier -> parties` ran a trigger and a query for every issued
--   document, which doubled the cost of the insert. The carrier of a document is the party
--   that signed its ISSUE with a key registered to it (the registry refuses anything else), and
--   parties are never deleted, so the key guarded nothing the write path does not already.
-- * `state` is the registry's own serialisation of the document state; as `json`, PostgreSQL
--   parsed every byte again on every write. It is stored as text.
-- * Ports are codes compared byte for byte (COLLATE "C"), like the other identifiers.
ALTER TABLE documents DROP CONSTRAINT documents_carrier_fkey;
ALTER TABLE documents ALTER COLUMN state TYPE TEXT;
ALTER TABLE documents ALTER COLUMN port_of_loading TYPE TEXT COLLATE "C",
                      ALTER COLUMN port_of_discharge TYPE TEXT COLLATE "C";
