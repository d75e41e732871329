//! A party's replica of the ledger: what it has checked, the checkpoints it holds, and its
//! incidents. The replica checks everything before it calls these (see
//! `lading_domain::follow`); these keep it durable and gapless.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::{replica_checkpoints, replica_entries};
use crate::StoreError;

/// One checked entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = replica_entries, treat_none_as_default_value = false)]
pub struct ReplicaEntryRow {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    /// The compact JWS, for entries the party is entitled to.
    pub signed: Option<Vec<u8>>,
    pub document_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = replica_checkpoints)]
pub struct ReplicaCheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub signed: String,
    pub verified: bool,
}

/// The number of entries held (they are gapless from 0).
pub fn size(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let next: Option<i64> = replica_entries::table
        .select(diesel::dsl::max(replica_entries::idx))
        .first(conn)?;
    Ok(next.map_or(0, |i| i as u64 + 1))
}

/// Appends checked entries, which must continue the replica's ledger exactly; all or nothing,
/// durable on return.
pub fn append(conn: &mut PgConnection, rows: &[ReplicaEntryRow]) -> Result<(), StoreError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    conn.transaction(|conn| {
        let held = size(conn)?;
        let gapless = rows
            .iter()
            .enumerate()
            .all(|(i, r)| r.idx == first.idx + i as i64);
        if first.idx as u64 != held || !gapless {
            return Err(StoreError::HeadMoved {
                expected: first.idx as u64,
                found: held,
            });
        }
        // COPY: a page of thousands of rows in one stream, not a statement planned per page.
        diesel::copy_from(replica_entries::table)
            .from_insertable(rows)
            .execute(conn)?;
        Ok(())
    })
}

/// Fills in the signed bytes of an entry held as a hash only; the caller checked that they
/// hash to its leaf, and the row must still hold that leaf.
pub fn backfill(
    conn: &mut PgConnection,
    idx: u64,
    leaf_hash: &[u8],
    signed: &[u8],
    document_ref: Option<&str>,
) -> Result<(), StoreError> {
    let updated = diesel::update(
        replica_entries::table
            .filter(replica_entries::idx.eq(idx as i64))
            .filter(replica_entries::leaf_hash.eq(leaf_hash)),
    )
    .set((
        replica_entries::signed.eq(signed),
        replica_entries::document_ref.eq(document_ref),
    ))
    .execute(conn)?;
    if updated != 1 {
        return Err(StoreError::corrupt(
            "replica_entries",
            format!("no entry {idx} with that leaf hash to back-fill"),
        ));
    }
    Ok(())
}

/// Entries from `from`, at most `limit`, in index order.
pub fn entries(
    conn: &mut PgConnection,
    from: u64,
    limit: i64,
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    Ok(replica_entries::table
        .filter(replica_entries::idx.ge(from as i64))
        .order(replica_entries::idx.asc())
        .limit(limit)
        .select(ReplicaEntryRow::as_select())
        .load(conn)?)
}

/// The index and leaf hash of every row from `from` on, in index order (no payloads).
pub fn leaves_from(conn: &mut PgConnection, from: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = replica_entries::table
        .filter(replica_entries::idx.ge(crate::ledger::to_i64(from)))
        .order(replica_entries::idx.asc())
        .select((replica_entries::idx, replica_entries::leaf_hash))
        .load(conn)?;
    Ok(rows.into_iter().map(|(i, leaf)| (i as u64, leaf)).collect())
}

/// Keeps a checkpoint (or marks one held as verified). A second, different checkpoint of the
/// same size is not stored over the first: the caller records an incident with both.
pub fn keep_checkpoint(
    conn: &mut PgConnection,
    row: &ReplicaCheckpointRow,
) -> Result<(), StoreError> {
    use diesel::sql_types::{Bool, Bytea, Int8, Text};
    diesel::sql_query(
        "INSERT INTO replica_checkpoints (size, root, signed, verified) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (size) DO UPDATE \
         SET verified = replica_checkpoints.verified OR EXCLUDED.verified \
         WHERE replica_checkpoints.root = EXCLUDED.root",
    )
    .bind::<Int8, _>(row.size)
    .bind::<Bytea, _>(&row.root)
    .bind::<Text, _>(&row.signed)
    .bind::<Bool, _>(row.verified)
    .execute(conn)?;
    Ok(())
}

pub fn checkpoints(conn: &mut PgConnection) -> Result<Vec<ReplicaCheckpointRow>, StoreError> {
    checkpoints_after(conn, None, i64::MAX)
}

/// Checkpoints held of size above `after` (all when `None`), smallest first, at most `limit`.
pub fn checkpoints_after(
    conn: &mut PgConnection,
    after: Option<u64>,
    limit: i64,
) -> Result<Vec<ReplicaCheckpointRow>, StoreError> {
    let mut query = replica_checkpoints::table
        .order(replica_checkpoints::size.asc())
        .limit(limit)
        .select(ReplicaCheckpointRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(replica_checkpoints::size.gt(crate::ledger::to_i64(after)));
    }
    Ok(query.load(conn)?)
}

/// The largest checkpoint held of size in `(above, up_to]`: one stored checkpoint for a page
/// of entries, when a replica restores itself.
pub fn largest_checkpoint_within(
    conn: &mut PgConnection,
    above: u64,
    up_to: u64,
) -> Result<Option<ReplicaCheckpointRow>, StoreError> {
    Ok(replica_checkpoints::table
        .filter(replica_checkpoints::size.gt(crate::ledger::to_i64(above)))
        .filter(replica_checkpoints::size.le(crate::ledger::to_i64(up_to)))
        .order(replica_checkpoints::size.desc())
        .select(ReplicaCheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// The largest checkpoint held.
pub fn latest_checkpoint(
    conn: &mut PgConnection,
) -> Result<Option<ReplicaCheckpointRow>, StoreError> {
    Ok(replica_checkpoints::table
        .order(replica_checkpoints::size.desc())
        .select(ReplicaCheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// The largest checkpoint this replica verified.
pub fn latest_verified_checkpoint(
    conn: &mut PgConnection,
) -> Result<Option<ReplicaCheckpointRow>, StoreError> {
    Ok(replica_checkpoints::table
        .filter(replica_checkpoints::verified.eq(true))
        .order(replica_checkpoints::size.desc())
        .select(ReplicaCheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// The rows held in full below `below` that name no document (party statements, and events
/// about a container alone), in index order.
pub fn undocumented_entries(
    conn: &mut PgConnection,
    below: u64,
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    Ok(replica_entries::table
        .filter(replica_entries::document_ref.is_null())
        .filter(replica_entries::signed.is_not_null())
        .filter(replica_entries::idx.lt(crate::ledger::to_i64(below)))
        .order(replica_entries::idx.asc())
        .select(ReplicaEntryRow::as_select())
        .load(conn)?)
}

/// The leaves held for entries `[0, upto)` as rows say now (`held_leaf`: a row whose payload
/// and leaf hash disagree stands for 0xff bytes), with 32 zero bytes where a row is missing.
///
/// One row per block of `block_size` comes back (a million entries are a thousand rows): the
/// leaves and their indices, aggregated side by side from one index range scan of the primary
/// key (which carries the leaf). Each leaf is placed by its own index, whatever the order.
pub fn held_leaves(
    conn: &mut PgConnection,
    upto: u64,
    block_size: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    use diesel::sql_types::{Array, Bytea, Int8, Nullable};
    #[derive(QueryableByName)]
    struct Block {
        #[diesel(sql_type = Nullable<Bytea>)]
        leaves: Option<Vec<u8>>,
        #[diesel(sql_type = Nullable<Array<Int8>>)]
        indices: Option<Vec<i64>>,
    }
    let block_size = block_size.max(1);
    let blocks: Vec<Block> = diesel::sql_query(
        "SELECT held.leaves, held.indices \
         FROM generate_series(0, ($1 + $2 - 1) / $2 - 1) AS b, \
         LATERAL (SELECT string_agg(held_leaf, ''::bytea) AS leaves, array_agg(idx) AS indices \
                  FROM replica_entries \
                  WHERE idx >= b * $2 AND idx < LEAST((b + 1) * $2, $1)) AS held \
         ORDER BY b",
    )
    .bind::<Int8, _>(crate::ledger::to_i64(upto))
    .bind::<Int8, _>(crate::ledger::to_i64(block_size))
    .load(conn)?;
    let corrupt = |what: &str| StoreError::corrupt("replica_entries", what.to_owned());
    let mut leaves = vec![[0u8; 32]; usize::try_from(upto).unwrap_or(0)];
    for block in blocks {
        let (Some(bytes), Some(indices)) = (block.leaves, block.indices) else {
            continue;
        };
        if bytes.len() != indices.len() * 32 {
            return Err(corrupt("held_leaf is not 32 bytes"));
        }
        for (idx, leaf) in indices.into_iter().zip(bytes.chunks_exact(32)) {
            let slot = leaves
                .get_mut(usize::try_from(idx).unwrap_or(usize::MAX))
                .ok_or_else(|| corrupt("index out of range"))?;
            slot.copy_from_slice(leaf);
        }
    }
    Ok(leaves)
}

/// [`held_leaves`] of several ranges `[from, to)` in one query (blocks read back after a
/// repair), in the order given.
pub fn held_leaves_ranges(
    conn: &mut PgConnection,
    ranges: &[(u64, u64)],
) -> Result<Vec<Vec<[u8; 32]>>, StoreError> {
    let held = leaves_in_ranges(conn, "replica_entries", "held_leaf", ranges)?;
    ranges
        .iter()
        .map(|(from, to)| {
            (*from..*to)
                .map(|idx| match held.get(&crate::ledger::to_i64(idx)) {
                    None => Ok([0u8; 32]),
                    Some(leaf) => leaf.as_slice().try_into().map_err(|_| {
                        StoreError::corrupt("replica_entries", "held_leaf is not 32 bytes")
                    }),
                })
                .collect()
        })
        .collect()
}

/// The 32-byte column `column` of `table` (`idx`-keyed) for every index in `ranges`, by index:
/// one index range scan per range (an `= ANY` of every index would probe them one by one).
pub(crate) fn leaves_in_ranges(
    conn: &mut PgConnection,
    table: &'static str,
    column: &'static str,
    ranges: &[(u64, u64)],
) -> Result<std::collections::HashMap<i64, Vec<u8>>, StoreError> {
    #[derive(QueryableByName)]
    struct Leaf {
        #[diesel(sql_type = diesel::sql_types::Int8)]
        idx: i64,
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        leaf: Vec<u8>,
    }
    let (froms, tos): (Vec<i64>, Vec<i64>) = ranges
        .iter()
        .map(|(from, to)| (crate::ledger::to_i64(*from), crate::ledger::to_i64(*to)))
        .unzip();
    let rows: Vec<Leaf> = diesel::sql_query(format!(
        "SELECT e.idx, e.{column} AS leaf FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) \
         JOIN {table} e ON e.idx >= r.lo AND e.idx < r.hi"
    ))
    .bind::<diesel::sql_types::Array<diesel::sql_types::Int8>, _>(froms)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Int8>, _>(tos)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.idx, r.leaf)).collect())
}

/// Marks the rows written so far as visible to every transaction (`VACUUM`), so that
/// [`held_leaves`] reads the primary key's index alone instead of visiting every row. Run
/// outside any transaction, as the table's owner (`Store::maintain`): for any other role
/// PostgreSQL 15 skips the table with a warning, and the rows wait for autovacuum.
pub fn settle(conn: &mut PgConnection) -> Result<(), StoreError> {
    diesel::sql_query("VACUUM (ANALYZE) replica_entries").execute(conn)?;
    // The portal's list plans its searches by these statistics; a large catch-up changed
    // most of its rows.
    diesel::sql_query("VACUUM (ANALYZE) node_documents").execute(conn)?;
    Ok(())
}

/// The rows at `indices` as they are (the evidence of what a repair replaces).
pub fn rows_at(
    conn: &mut PgConnection,
    indices: &[u64],
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    let indices: Vec<i64> = indices.iter().map(|i| crate::ledger::to_i64(*i)).collect();
    Ok(replica_entries::table
        .filter(replica_entries::idx.eq_any(indices))
        .order(replica_entries::idx.asc())
        .select(ReplicaEntryRow::as_select())
        .load(conn)?)
}

/// Puts back entries from the registry's signed originals, over whatever the rows hold (or
/// where they are missing); the caller checked each against the leaf it verified before.
pub fn repair(conn: &mut PgConnection, rows: &[ReplicaEntryRow]) -> Result<(), StoreError> {
    use diesel::upsert::excluded;
    conn.transaction(|conn| {
        for chunk in rows.chunks(1000) {
            diesel::insert_into(replica_entries::table)
                .values(chunk)
                .on_conflict(replica_entries::idx)
                .do_update()
                .set((
                    replica_entries::leaf_hash.eq(excluded(replica_entries::leaf_hash)),
                    replica_entries::signed.eq(excluded(replica_entries::signed)),
                    replica_entries::document_ref.eq(excluded(replica_entries::document_ref)),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Takes out the rows from `from` on (entries the registry never signed), returning them as
/// evidence.
pub fn discard_from(
    conn: &mut PgConnection,
    from: u64,
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    Ok(diesel::delete(
        replica_entries::table.filter(replica_entries::idx.ge(crate::ledger::to_i64(from))),
    )
    .returning(ReplicaEntryRow::as_returning())
    .get_results(conn)?)
}

/// Sets the document each row at `idx` names (rows that were changed by hand); all or nothing.
pub fn set_document_refs(
    conn: &mut PgConnection,
    rows: &[(i64, Option<String>)],
) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        for (idx, document) in rows {
            diesel::update(replica_entries::table.filter(replica_entries::idx.eq(idx)))
                .set(replica_entries::document_ref.eq(document))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The entries held in full whose rows name the document `reference`, below index `below`,
/// in index order (the party's reads). The rows say so, not the signed bytes: the caller
/// checks the chain they make against what it verified.
pub fn document_entries(
    conn: &mut PgConnection,
    reference: &str,
    below: u64,
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    Ok(replica_entries::table
        .filter(replica_entries::document_ref.eq(reference))
        .filter(replica_entries::idx.lt(crate::ledger::to_i64(below)))
        .filter(replica_entries::signed.is_not_null())
        .order(replica_entries::idx.asc())
        .select(ReplicaEntryRow::as_select())
        .load(conn)?)
}

/// [`document_entries`] of several documents in one query: their rows below `below`, held in
/// full, by document then index.
pub fn documents_entries(
    conn: &mut PgConnection,
    references: &[String],
    below: u64,
) -> Result<Vec<ReplicaEntryRow>, StoreError> {
    Ok(replica_entries::table
        .filter(replica_entries::document_ref.eq_any(references))
        .filter(replica_entries::idx.lt(crate::ledger::to_i64(below)))
        .filter(replica_entries::signed.is_not_null())
        .order((
            replica_entries::document_ref.asc(),
            replica_entries::idx.asc(),
        ))
        .select(ReplicaEntryRow::as_select())
        .load(conn)?)
}
