//! The ledger's time per entry: `ledger_entries.received_at`, the registry's clock when it
//! sequenced the entry's batch. What a time window of a customs export is mapped with.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::ledger_entries;
use crate::StoreError;

/// When the registry sequenced entry `idx`, if it holds it.
pub fn received_at(conn: &mut PgConnection, idx: u64) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::idx.eq(crate::ledger::to_i64(idx)))
        .select(ledger_entries::received_at)
        .first(conn)
        .optional()?)
}

/// The first index below `size` whose entry was sequenced at or after `at` (`size` when none):
/// a binary search over the primary key, a few dozen look-ups however long the ledger, which
/// relies on the registry's clock not going back between batches (indexes are given in the
/// order of that clock).
pub fn first_at_or_after(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
    size: u64,
) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (0u64, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match received_at(conn, mid)? {
            Some(t) if t < at => lo = mid + 1,
            Some(_) => hi = mid,
            None => {
                return Err(StoreError::corrupt(
                    "ledger_entries",
                    format!("no entry {mid} below the size {size}"),
                ))
            }
        }
    }
    Ok(lo)
}
