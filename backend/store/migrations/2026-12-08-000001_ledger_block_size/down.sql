DROP TRIGGER ledger_head_block_size_fixed ON ledger_head;
DROP FUNCTION lading_block_size_is_fixed();
ALTER TABLE ledger_head DROP COLUMN block_size;
