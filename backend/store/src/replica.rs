//! A party's replica of the ledger: what it has checked, the checkpoints it holds, and its
//! incidents. The replica checks everything before it calls these (see
//! `lading_domain::follow`); these keep it durable and gapless.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::{incidents, replica_checkpoints, replica_entries};
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

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: i64,
    pub code: String,
    pub detail: String,
    pub evidence: serde_json::Value,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
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
    Ok(replica_checkpoints::table
        .order(replica_checkpoints::size.asc())
        .select(ReplicaCheckpointRow::as_select())
        .load(conn)?)
}

/// Records an incident; returns its id.
pub fn open_incident(
    conn: &mut PgConnection,
    code: &str,
    detail: &str,
    evidence: &serde_json::Value,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(incidents::table)
        .values((
            incidents::code.eq(code),
            incidents::detail.eq(detail),
            incidents::evidence.eq(evidence),
        ))
        .returning(incidents::id)
        .get_result(conn)?)
}

/// Incidents not closed yet, oldest first.
pub fn open_incidents(conn: &mut PgConnection) -> Result<Vec<IncidentRow>, StoreError> {
    Ok(incidents::table
        .filter(incidents::closed_at.is_null())
        .order(incidents::id.asc())
        .select(IncidentRow::as_select())
        .load(conn)?)
}
