//! Webhook subscriptions and their delivery log (the registry's notifications).
//!
//! The ledger is the outbox (see the migration): a subscription holds only its place in it,
//! `next_index`, which moves when a delivery was acknowledged. Every query names the owning
//! party, so one party's subscription answers another exactly as a missing one does.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::{subscription_deliveries, subscriptions};
use crate::StoreError;

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub party_id: String,
    pub url: String,
    /// The filter as JSON text (the API's `filter` object).
    pub filter: String,
    /// The signing secret (`whsec_…`): the registry signs with it, so it keeps it.
    pub secret: String,
    pub next_index: i64,
    pub status: String,
    pub failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Batched delivery: at most this many events a request (`None`: one event a request).
    pub batch_max: Option<i32>,
    /// The last index of the batch that failed and is retried as it was (see the migration).
    pub batch_end: Option<i64>,
}

/// A new subscription.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = subscriptions)]
pub struct NewSubscription {
    pub id: String,
    pub party_id: String,
    pub url: String,
    pub filter: String,
    pub secret: String,
    pub next_index: i64,
    pub batch_max: Option<i32>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = subscription_deliveries)]
pub struct DeliveryRow {
    pub seq: i64,
    pub subscription_id: String,
    pub entry_index: i64,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub millis: i32,
    /// A batch's last entry (`entry_index` is its first); `None` for one event.
    pub last_index: Option<i64>,
    /// How many events the batch held; `None` for one event.
    pub events: Option<i32>,
}

/// A delivery attempt to log.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = subscription_deliveries)]
pub struct NewDelivery {
    pub subscription_id: String,
    pub entry_index: i64,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub millis: i32,
    pub last_index: Option<i64>,
    pub events: Option<i32>,
}

pub fn create(conn: &mut PgConnection, new: &NewSubscription) -> Result<(), StoreError> {
    diesel::insert_into(subscriptions::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// The party's subscriptions that are not deleted, oldest first.
pub fn list(conn: &mut PgConnection, party: &str) -> Result<Vec<SubscriptionRow>, StoreError> {
    Ok(subscriptions::table
        .filter(subscriptions::party_id.eq(party))
        .filter(subscriptions::status.ne("deleted"))
        .order((subscriptions::created_at, subscriptions::id))
        .select(SubscriptionRow::as_select())
        .load(conn)?)
}

/// The party's subscription `id`, unless it is deleted (or another party's).
pub fn get(
    conn: &mut PgConnection,
    party: &str,
    id: &str,
) -> Result<Option<SubscriptionRow>, StoreError> {
    Ok(subscriptions::table
        .filter(subscriptions::id.eq(id))
        .filter(subscriptions::party_id.eq(party))
        .filter(subscriptions::status.ne("deleted"))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks the party's subscription deleted (its log stays); whether there was one.
pub fn delete(conn: &mut PgConnection, party: &str, id: &str) -> Result<bool, StoreError> {
    let n = diesel::update(
        subscriptions::table
            .filter(subscriptions::id.eq(id))
            .filter(subscriptions::party_id.eq(party))
            .filter(subscriptions::status.ne("deleted")),
    )
    .set((
        subscriptions::status.eq("deleted"),
        subscriptions::deleted_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Every subscription whose delivery may run now: not deleted, and not waiting for a retry.
pub fn due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    Ok(subscriptions::table
        .filter(subscriptions::status.ne("deleted"))
        .filter(
            subscriptions::retry_at
                .is_null()
                .or(subscriptions::retry_at.le(now)),
        )
        .order(subscriptions::id)
        .select(SubscriptionRow::as_select())
        .load(conn)?)
}

/// Moves the subscription from `from` past what was delivered (or passed over: entries its
/// party may not read or its filter leaves out) to `next`, and clears its failures — only if it
/// is still at `from` (a redelivery asked meanwhile wins); whether it moved.
pub fn advance(
    conn: &mut PgConnection,
    id: &str,
    from: u64,
    next: u64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        subscriptions::table
            .filter(subscriptions::id.eq(id))
            .filter(subscriptions::status.ne("deleted"))
            .filter(subscriptions::next_index.eq(crate::ledger::to_i64(from))),
    )
    .set((
        subscriptions::next_index.eq(crate::ledger::to_i64(next)),
        subscriptions::status.eq("active"),
        subscriptions::failures.eq(0),
        subscriptions::failing_since.eq(None::<DateTime<Utc>>),
        subscriptions::retry_at.eq(None::<DateTime<Utc>>),
        subscriptions::last_error.eq(None::<String>),
        subscriptions::batch_end.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed delivery: one failure more, the next try at `retry_at`, and `failing` once
/// it has failed for longer than `failing_after`; for a batch, `batch_end` its last index, so
/// that the retry sends the same batch.
pub fn failed(conn: &mut PgConnection, id: &str, failure: &Failure<'_>) -> Result<(), StoreError> {
    let Failure {
        retry_at,
        error,
        failing_after,
        batch_end,
    } = *failure;
    let now = Utc::now();
    let Some(row) = subscriptions::table
        .filter(subscriptions::id.eq(id))
        .filter(subscriptions::status.ne("deleted"))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(());
    };
    let since = row.failing_since.unwrap_or(now);
    let status = if now - since >= failing_after {
        "failing"
    } else {
        row.status.as_str()
    };
    diesel::update(subscriptions::table.filter(subscriptions::id.eq(id)))
        .set((
            subscriptions::failures.eq(row.failures.saturating_add(1)),
            subscriptions::failing_since.eq(Some(since)),
            subscriptions::retry_at.eq(Some(retry_at)),
            subscriptions::last_error.eq(Some(error)),
            subscriptions::status.eq(status),
            subscriptions::batch_end.eq(batch_end.map(crate::ledger::to_i64)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed delivery, as [`failed`] records it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// When it is tried again.
    pub retry_at: DateTime<Utc>,
    pub error: &'a str,
    /// Failing this long marks the subscription `failing`.
    pub failing_after: chrono::Duration,
    /// The failed batch's last index (none for one event).
    pub batch_end: Option<u64>,
}

/// Sets the party's subscription back to `from`, to deliver again from there; whether there
/// was one.
pub fn redeliver(
    conn: &mut PgConnection,
    party: &str,
    id: &str,
    from: u64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        subscriptions::table
            .filter(subscriptions::id.eq(id))
            .filter(subscriptions::party_id.eq(party))
            .filter(subscriptions::status.ne("deleted")),
    )
    .set((
        subscriptions::next_index.eq(crate::ledger::to_i64(from)),
        subscriptions::retry_at.eq(None::<DateTime<Utc>>),
        subscriptions::batch_end.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records one round of deliveries to a subscription in one transaction: its attempts, its
/// move from `from` to `next` (as [`advance`]; none when `next == from`) and, when a delivery
/// failed, the failure (as [`failed`]: the next try at `retry_at`). Whether it moved (or had
/// nowhere to move); when it could not (a redelivery asked meanwhile) the failure is not
/// recorded either, since the subscription starts again from its new place.
///
/// Committed without waiting for the disk (`synchronous_commit = off` for this transaction
/// only): a crash may lose the last fraction of a second of it, which at worst delivers those
/// entries again (at least once, with the same `webhook-id`); never an entry passed over. The
/// deliverer no longer waits for a flush per delivery, nor takes turns with the sequencer's.
pub fn settle(
    conn: &mut PgConnection,
    id: &str,
    log: &[NewDelivery],
    from: u64,
    next: u64,
    failure: Option<Failure<'_>>,
) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
        for chunk in log.chunks(1000) {
            diesel::insert_into(subscription_deliveries::table)
                .values(chunk)
                .execute(conn)?;
        }
        let moved = next <= from || advance(conn, id, from, next)?;
        if moved {
            if let Some(failure) = &failure {
                failed(conn, id, failure)?;
            }
        }
        Ok(moved)
    })
}

pub fn log_delivery(conn: &mut PgConnection, delivery: &NewDelivery) -> Result<(), StoreError> {
    diesel::insert_into(subscription_deliveries::table)
        .values(delivery)
        .execute(conn)?;
    Ok(())
}

/// The party's subscription's latest `limit` delivery attempts, newest first (empty for a
/// subscription that is not the party's).
pub fn deliveries(
    conn: &mut PgConnection,
    party: &str,
    id: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(subscription_deliveries::table
        .inner_join(subscriptions::table)
        .filter(subscriptions::id.eq(id))
        .filter(subscriptions::party_id.eq(party))
        .order(subscription_deliveries::seq.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?)
}
