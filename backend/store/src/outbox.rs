//! Signed submissions a replica took from its own party, kept until the registry has
//! answered them: forwarded in the order they were taken, each answer kept beside it.
//!
//! A submission the registry keeps answering as unavailable is *parked* after a bounded time,
//! with the reason, so the queue moves on; every later submission of the same document is
//! parked behind it (none overtakes another of its document). [`requeue`] puts them back.

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
    /// `pending`, `sequenced`, `refused` or `parked`.
    pub state: String,
    /// The registry's receipt, or its problem+json; for a parked submission, why.
    pub answer: Option<serde_json::Value>,
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The document the submission is about (none for an event about a container only).
    pub document_ref: Option<String>,
    /// How many times the registry answered "unavailable" to it.
    pub attempts: i32,
    /// Since when the registry has answered "unavailable" to it without a break.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Keeps a submission (durable on return); the same signed bytes taken again are the row
/// already kept.
pub fn take(
    conn: &mut PgConnection,
    kind: &str,
    signed: &str,
    leaf_hash: &[u8],
    document_ref: Option<&str>,
) -> Result<OutboxRow, StoreError> {
    diesel::insert_into(replica_outbox::table)
        .values((
            replica_outbox::kind.eq(kind),
            replica_outbox::signed.eq(signed),
            replica_outbox::leaf_hash.eq(leaf_hash),
            replica_outbox::document_ref.eq(document_ref),
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

/// Counts one more "unavailable" answer to submission `seq`; returns since when it has been
/// failing (the first such answer's time, kept until it is answered or parked).
pub fn failed(
    conn: &mut PgConnection,
    seq: i64,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    Ok(diesel::update(
        replica_outbox::table
            .filter(replica_outbox::seq.eq(seq))
            .filter(replica_outbox::state.eq("pending")),
    )
    .set((
        replica_outbox::attempts.eq(replica_outbox::attempts + 1),
        replica_outbox::failing_since.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(failing_since, now())")),
    ))
    .returning(replica_outbox::failing_since)
    .get_result::<Option<chrono::DateTime<chrono::Utc>>>(conn)?
    .unwrap_or_else(chrono::Utc::now))
}

/// Parks pending submission `seq`, keeping `why` as its answer.
pub fn park(conn: &mut PgConnection, seq: i64, why: &serde_json::Value) -> Result<(), StoreError> {
    diesel::update(
        replica_outbox::table
            .filter(replica_outbox::seq.eq(seq))
            .filter(replica_outbox::state.eq("pending")),
    )
    .set((
        replica_outbox::state.eq("parked"),
        replica_outbox::answer.eq(why),
        replica_outbox::answered_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(())
}

/// The oldest parked submission of each document among `documents`: what a pending
/// submission of that document must wait behind.
pub fn parked_before(
    conn: &mut PgConnection,
    documents: &[&str],
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows: Vec<(Option<String>, Option<i64>)> = replica_outbox::table
        .filter(replica_outbox::state.eq("parked"))
        .filter(replica_outbox::document_ref.eq_any(documents))
        .group_by(replica_outbox::document_ref)
        .select((
            replica_outbox::document_ref,
            diesel::dsl::min(replica_outbox::seq),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(doc, seq)| Some((doc?, seq?)))
        .collect())
}

/// What [`requeue`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeued {
    /// Back in the queue (with those of its document parked behind it).
    Done(Box<OutboxRow>),
    /// The submission is not parked: nothing changed.
    NotParked,
    /// There is no such submission.
    Unknown,
}

/// Puts parked submission `seq` back in the queue, with every submission of its document
/// parked behind it, in their order.
pub fn requeue(conn: &mut PgConnection, seq: i64) -> Result<Requeued, StoreError> {
    conn.transaction(|conn| {
        let row = match get(conn, seq)? {
            None => return Ok(Requeued::Unknown),
            Some(row) if row.state != "parked" => return Ok(Requeued::NotParked),
            Some(row) => row,
        };
        let reset = (
            replica_outbox::state.eq("pending"),
            replica_outbox::answer.eq(None::<serde_json::Value>),
            replica_outbox::answered_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            replica_outbox::attempts.eq(0),
            replica_outbox::failing_since.eq(None::<chrono::DateTime<chrono::Utc>>),
        );
        match &row.document_ref {
            Some(document) => diesel::update(
                replica_outbox::table
                    .filter(replica_outbox::state.eq("parked"))
                    .filter(replica_outbox::document_ref.eq(document))
                    .filter(replica_outbox::seq.ge(seq)),
            )
            .set(reset)
            .execute(conn)?,
            None => diesel::update(replica_outbox::table.find(seq))
                .set(reset)
                .execute(conn)?,
        };
        Ok(get(conn, seq)?.map_or(Requeued::Unknown, |row| Requeued::Done(Box::new(row))))
    })
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

/// How many submissions are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sequenced: i64,
    pub refused: i64,
    pub parked: i64,
}

/// How many submissions are in each state.
pub fn counts(conn: &mut PgConnection) -> Result<OutboxCounts, StoreError> {
    let rows: Vec<(String, i64)> = replica_outbox::table
        .group_by(replica_outbox::state)
        .select((replica_outbox::state, diesel::dsl::count_star()))
        .load(conn)?;
    let of = |state: &str| rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
    Ok(OutboxCounts {
        pending: of("pending"),
        sequenced: of("sequenced"),
        refused: of("refused"),
        parked: of("parked"),
    })
}
