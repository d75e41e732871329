-- Issue 13, finding bills: `GET /v1/submissions` lists what one party's credential handed in,
-- newest first. Read backwards along this index, a page stops after its rows however long the
-- ledger. Partial: the entries without a submitting party (before 2026-12-19, anonymous
-- writes, imports) are never asked for and cost the index nothing.
CREATE INDEX ledger_entries_submitted_by ON ledger_entries (submitted_by, idx DESC)
    WHERE submitted_by IS NOT NULL;
