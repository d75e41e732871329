//! A time window `[since, until)` as an export's range of ledger indexes.
//!
//! The ledger's time of an entry is when the registry sequenced it (`ledger_entries.received_at`,
//! what `GET /v1/entries/{index}` answers as `receivedAt`); the registry maps a window exactly,
//! to the indexes sequenced within it. A node is not sent that time on the feed, so it maps a
//! window with the times it does hold, signed by the registry: those of the checkpoints it
//! verified. Every entry below a checkpoint signed before `since` was sequenced before it, so
//! the range starts at the largest such checkpoint and ends at the largest signed before
//! `until`: windows that meet give exports that chain with no gap and no overlap, with
//! boundaries as fine as the node's checkpoints (one a poll while it follows the registry).

use std::ops::Range;

use chrono::{DateTime, Utc};
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::Jwk;
use lading_store::{ledger_time, replica, Store};

use crate::ExportError;

fn store(e: lading_store::StoreError) -> ExportError {
    ExportError::Source(e.to_string())
}

/// Refuses a window that ends before it starts.
fn ordered(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<(), ExportError> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(ExportError::Refused(format!(
            "the window starts ({}) after it ends ({})",
            s.to_rfc3339(),
            u.to_rfc3339()
        ))),
        _ => Ok(()),
    }
}

/// The registry's indexes below `size` sequenced in `[since, until)` (an open end: from 0, to
/// `size`).
pub fn registry_range(
    store_: &Store,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    size: u64,
) -> Result<Range<u64>, ExportError> {
    ordered(since, until)?;
    let mut conn = store_.conn().map_err(store)?;
    let mut at = |t: Option<DateTime<Utc>>, open: u64| match t {
        Some(t) => ledger_time::first_at_or_after(&mut conn, t, size).map_err(store),
        None => Ok(open),
    };
    let from = at(since, 0)?;
    let to = at(until, size)?;
    Ok(from..to.max(from))
}

/// The range a node exports for `[since, until)`: `(from, to)`, `to` none for an open end (the
/// latest checkpoint the node verified).
pub fn node_range(
    store_: &Store,
    registry_key: &Jwk,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<(u64, Option<u64>), ExportError> {
    ordered(since, until)?;
    let key = registry_key
        .verifying_key()
        .map_err(|e| ExportError::Source(format!("the registry's key: {e}")))?;
    let mut conn = store_.conn().map_err(store)?;
    let verified = replica::latest_verified_checkpoint(&mut conn)
        .map_err(store)?
        .map(|row| row.size as u64)
        .ok_or_else(|| {
            ExportError::Refused(
                "the node has verified no checkpoint yet: nothing can be proved".into(),
            )
        })?;
    // The time the registry signed into the checkpoint held of the largest size up to `s`.
    let mut checkpoint_at_most = |s: u64| -> Result<Option<(u64, DateTime<Utc>)>, ExportError> {
        let Some(row) = replica::largest_checkpoint_within(&mut conn, 0, s).map_err(store)? else {
            return Ok(None);
        };
        let checkpoint = SignedCheckpoint::parse(&row.signed)
            .and_then(|c| c.verify(&key))
            .map_err(|e| {
                ExportError::Source(format!("the node's checkpoint of size {}: {e}", row.size))
            })?;
        Ok(Some((row.size as u64, checkpoint.time.as_datetime())))
    };
    // The largest size of a checkpoint signed before `t` (0: none); checkpoints are signed in
    // the order of their sizes, so a binary search over sizes finds it.
    let mut before = |t: DateTime<Utc>| -> Result<u64, ExportError> {
        let (mut best, mut lo, mut hi) = (0u64, 1u64, verified);
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            match checkpoint_at_most(mid)? {
                None => lo = mid + 1,
                Some((size, time)) if time < t => {
                    best = best.max(size);
                    lo = mid + 1;
                }
                Some((size, _)) => {
                    if size == 0 {
                        break;
                    }
                    hi = size - 1;
                }
            }
        }
        Ok(best)
    };
    let from = match since {
        Some(t) => before(t)?,
        None => 0,
    };
    let to = until.map(&mut before).transpose()?;
    Ok((from, to.map(|to| to.max(from))))
}
