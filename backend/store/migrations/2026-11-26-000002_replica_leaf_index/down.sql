ALTER TABLE replica_entries
    DROP CONSTRAINT replica_entries_pkey,
    ADD PRIMARY KEY (idx);
