ALTER TABLE documents ALTER COLUMN port_of_loading TYPE TEXT COLLATE "default",
                      ALTER COLUMN port_of_discharge TYPE TEXT COLLATE "default";
ALTER TABLE documents ALTER COLUMN state TYPE JSON USING state::json;
ALTER TABLE documents ADD CONSTRAINT documents_carrier_fkey FOREIGN KEY (carrier) REFERENCES parties (id);
