//! Signed submissions a replica took from its own party, kept until the registry has
//! answered them: forwarded in the order they were taken, each answer kept beside it.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::replica_outbox;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = replica_outbox)]
pub struct OutboxRow {
    pub seq: i64,
    pub kind: String,
    pub signed: String,
    pub leaf_hash: Vec<u8>,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    /// `pending`, `sequenced` or `refused`.
    pub state: String,
    /// The registry's receipt, or its problem+json.
    pub answer: Option<serde_json::Value>,
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Keeps a submission (durable on return); the same signed bytes taken again are the row
/// already kept.
pub fn take(
    conn: &mut PgConnection,
    kind: &str,
    signed: &str,
    leaf_hash: &[u8],
) -> Result<OutboxRow, StoreError> {
    diesel::insert_into(replica_outbox::table)
        .values((
            replica_outbox::kind.eq(kind),
            replica_outbox::signed.eq(signed),
            replica_outbox::leaf_hash.eq(leaf_hash),
        ))
        .on_conflict(replica_outbox::leaf_hash)
        .do_nothing()
        .execute(conn)?;
    Ok(replica_outbox::table
        .filter(replica_outbox::leaf_hash.eq(leaf_hash))
        .select(OutboxRow::as_select())
        .first(conn)?)
}

/// The oldest submissions still waiting for the registry, at most `limit`.
pub fn pending(conn: &mut PgConnection, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(replica_outbox::table
        .filter(replica_outbox::state.eq("pending"))
        .order(replica_outbox::seq.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Keeps the registry's answer to submission `seq`.
pub fn answer(
    conn: &mut PgConnection,
    seq: i64,
    sequenced: bool,
    answer: &serde_json::Value,
) -> Result<(), StoreError> {
    diesel::update(
        replica_outbox::table
            .filter(replica_outbox::seq.eq(seq))
            .filter(replica_outbox::state.eq("pending")),
    )
    .set((
        replica_outbox::state.eq(if sequenced { "sequenced" } else { "refused" }),
        replica_outbox::answer.eq(answer),
        replica_outbox::answered_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(())
}

/// One submission.
pub fn get(conn: &mut PgConnection, seq: i64) -> Result<Option<OutboxRow>, StoreError> {
    Ok(replica_outbox::table
        .find(seq)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?)
}

/// Submissions from `from` on, at most `limit`, in the order they were taken.
pub fn list(conn: &mut PgConnection, from: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(replica_outbox::table
        .filter(replica_outbox::seq.ge(from))
        .order(replica_outbox::seq.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// How many submissions are in each state: pending, sequenced, refused.
pub fn counts(conn: &mut PgConnection) -> Result<(i64, i64, i64), StoreError> {
    let rows: Vec<(String, i64)> = replica_outbox::table
        .group_by(replica_outbox::state)
        .select((replica_outbox::state, diesel::dsl::count_star()))
        .load(conn)?;
    let of = |state: &str| rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
    Ok((of("pending"), of("sequenced"), of("refused")))
}
