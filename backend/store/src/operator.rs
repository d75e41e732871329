//! What the registry's operator view reads (issue 11): the latest checkpoints, and how the
//! ledger grew minute by minute (from the checkpoints' sizes and times, not by scanning the
//! entries).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::models::CheckpointRow;
use crate::schema::checkpoints;
use crate::StoreError;

/// The latest `limit` checkpoints, largest first.
pub fn latest_checkpoints(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<CheckpointRow>, StoreError> {
    Ok(checkpoints::table
        .order(checkpoints::size.desc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)?)
}

/// The ledger's size at `since` (the largest checkpoint signed by then), and for each minute
/// after it in which a checkpoint was signed, the minute (0 = the first after `since`) and
/// the largest size signed by its end.
pub fn growth_since(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
) -> Result<(i64, Vec<(i32, i64)>), StoreError> {
    use diesel::sql_types::{Int4, Int8, Timestamptz};
    #[derive(QueryableByName)]
    struct Minute {
        #[diesel(sql_type = Int4)]
        minute: i32,
        #[diesel(sql_type = Int8)]
        size: i64,
    }
    // The latest checkpoint by then is the largest (sizes only grow): one index probe.
    let start: Option<i64> = checkpoints::table
        .filter(checkpoints::created_at.le(since))
        .order((checkpoints::created_at.desc(), checkpoints::size.desc()))
        .select(checkpoints::size)
        .first(conn)
        .optional()?;
    let minutes: Vec<Minute> = diesel::sql_query(
        "SELECT floor(extract(epoch FROM created_at - $1) / 60)::int4 AS minute, \
                max(size) AS size \
         FROM checkpoints WHERE created_at > $1 GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .get_results(conn)?;
    Ok((
        start.unwrap_or(0),
        minutes.into_iter().map(|m| (m.minute, m.size)).collect(),
    ))
}
