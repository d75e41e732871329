//! The sequencer's lease: a PostgreSQL session-level advisory lock that at most one registry
//! process holds on a database at a time. It is held by the writer's own connection, so every
//! batch is written by the session that holds it, and it goes when that session goes — a
//! process killed, or a connection cut, releases it for the next process at once.

use diesel::sql_types::{BigInt, Bool};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};

use crate::StoreError;

/// The advisory lock's key ("LADING" and 1). Advisory locks are per database, so registries
/// of different ledgers on one server do not contend.
pub const SEQUENCER_LEASE_KEY: i64 = 0x4c41_4449_4e47_0001;

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
}

/// Takes the lease for this session if no other session holds it; never waits.
pub fn try_take(conn: &mut PgConnection) -> Result<bool, StoreError> {
    let row: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS taken")
        .bind::<BigInt, _>(SEQUENCER_LEASE_KEY)
        .get_result(conn)?;
    Ok(row.taken)
}

/// Whether some session of this database holds the lease (for operators and tests).
pub fn is_held(conn: &mut PgConnection) -> Result<bool, StoreError> {
    let row: Taken = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND ((classid::bigint << 32) | objid::bigint) = $1) AS taken",
    )
    .bind::<BigInt, _>(SEQUENCER_LEASE_KEY)
    .get_result(conn)?;
    Ok(row.taken)
}
