//! The record of every reconciliation, on the registry (one row per replica per run) and on
//! the replica (one row per run it answered).

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::reconciliations;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = reconciliations)]
pub struct NewReconciliation {
    pub party: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub registry_size: i64,
    pub replica_size: Option<i64>,
    pub replica_root: Option<Vec<u8>>,
    pub outcome: String,
    pub differences: i64,
    pub hash_bytes: i64,
    pub round_trips: i32,
    pub report: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = reconciliations)]
pub struct ReconciliationRow {
    pub id: i64,
    pub party: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub registry_size: i64,
    pub replica_size: Option<i64>,
    pub replica_root: Option<Vec<u8>>,
    pub outcome: String,
    pub differences: i64,
    pub hash_bytes: i64,
    pub round_trips: i32,
    pub report: serde_json::Value,
}

pub fn record(conn: &mut PgConnection, row: &NewReconciliation) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(reconciliations::table)
        .values(row)
        .returning(reconciliations::id)
        .get_result(conn)?)
}

/// The latest reconciliation of `party`.
pub fn last(conn: &mut PgConnection, party: &str) -> Result<Option<ReconciliationRow>, StoreError> {
    Ok(reconciliations::table
        .filter(reconciliations::party.eq(party))
        .order(reconciliations::id.desc())
        .select(ReconciliationRow::as_select())
        .first(conn)
        .optional()?)
}
