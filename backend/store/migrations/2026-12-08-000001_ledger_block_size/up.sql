-- The block size belongs to the ledger, not to the configuration: every block root and every
-- checkpoint root depends on it. It is stored with the ledger head — taken here from what was
-- already signed, else written by the registry's first start — and the registry refuses to
-- start with another. Once set it never changes; the writer's per-batch UPDATE of `size` does
-- not name the column, so the trigger costs it nothing.
ALTER TABLE ledger_head ADD COLUMN block_size INTEGER CHECK (block_size > 0);

UPDATE ledger_head SET block_size = COALESCE(
    (SELECT block_size FROM checkpoints ORDER BY size DESC LIMIT 1),
    (SELECT block_size FROM blocks ORDER BY block_no DESC LIMIT 1));

CREATE FUNCTION lading_block_size_is_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lading: the ledger''s block size is % and cannot change', OLD.block_size;
END;
$$;

CREATE TRIGGER ledger_head_block_size_fixed
    BEFORE UPDATE OF block_size ON ledger_head
    FOR EACH ROW
    WHEN (OLD.block_size IS NOT NULL AND NEW.block_size IS DISTINCT FROM OLD.block_size)
    EXECUTE FUNCTION lading_block_size_is_fixed();
