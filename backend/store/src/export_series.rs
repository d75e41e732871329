//! The customs exports a node made for its authority, in order: where `--since-last` starts,
//! and what the next export names as its previous.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::export_series;
use crate::StoreError;

/// One export of the series.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = export_series)]
pub struct ExportRow {
    pub seq: i64,
    pub authority: String,
    pub range_from: i64,
    pub range_to: i64,
    pub manifest_sha256: String,
    pub entries: i64,
    pub path: String,
    pub created_at: DateTime<Utc>,
}

/// Records an export written whole.
pub fn record(
    conn: &mut PgConnection,
    authority: &str,
    range: std::ops::Range<u64>,
    manifest_sha256: &str,
    entries: u64,
    path: &str,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(export_series::table)
        .values((
            export_series::authority.eq(authority),
            export_series::range_from.eq(crate::ledger::to_i64(range.start)),
            export_series::range_to.eq(crate::ledger::to_i64(range.end)),
            export_series::manifest_sha256.eq(manifest_sha256),
            export_series::entries.eq(crate::ledger::to_i64(entries)),
            export_series::path.eq(path),
        ))
        .returning(export_series::seq)
        .get_result(conn)?)
}

/// The latest export for `authority`, if any.
pub fn last(conn: &mut PgConnection, authority: &str) -> Result<Option<ExportRow>, StoreError> {
    Ok(export_series::table
        .filter(export_series::authority.eq(authority))
        .order(export_series::seq.desc())
        .select(ExportRow::as_select())
        .first(conn)
        .optional()?)
}
