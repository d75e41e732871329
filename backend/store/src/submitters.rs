//! Who may submit for a party (`submitters`): a party's admin lets another party hand the
//! registry statements the party signed (a forwarder submitting for its customer). The rule
//! itself (when the check applies) is the registry's.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::submitters;
use crate::StoreError;

/// One authorisation: `party_id` lets `submitter_id` submit for it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = submitters)]
pub struct SubmitterRow {
    pub party_id: String,
    pub submitter_id: String,
    pub created_at: DateTime<Utc>,
}

/// Lets `submitter` submit for `party`; authorising again keeps the first authorisation.
/// Returns the authorisation as stored and whether it is new.
pub fn authorise(
    conn: &mut PgConnection,
    party: &str,
    submitter: &str,
    now: DateTime<Utc>,
) -> Result<(SubmitterRow, bool), StoreError> {
    let row = SubmitterRow {
        party_id: party.to_owned(),
        submitter_id: submitter.to_owned(),
        created_at: now,
    };
    let added = diesel::insert_into(submitters::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    let stored = submitters::table
        .find((party, submitter))
        .select(SubmitterRow::as_select())
        .first(conn)?;
    Ok((stored, added == 1))
}

/// The parties `party` lets submit for it, oldest authorisation first.
pub fn list(conn: &mut PgConnection, party: &str) -> Result<Vec<SubmitterRow>, StoreError> {
    Ok(submitters::table
        .filter(submitters::party_id.eq(party))
        .order((submitters::created_at, submitters::submitter_id))
        .select(SubmitterRow::as_select())
        .load(conn)?)
}

/// Withdraws `submitter`'s authorisation from `party`: whether there was one.
pub fn remove(conn: &mut PgConnection, party: &str, submitter: &str) -> Result<bool, StoreError> {
    let removed = diesel::delete(submitters::table.find((party, submitter))).execute(conn)?;
    Ok(removed == 1)
}

/// Which of `signers` let `submitter` submit for them: one indexed look-up for a request's
/// distinct signers.
pub fn authorising(
    conn: &mut PgConnection,
    submitter: &str,
    signers: &[&str],
) -> Result<Vec<String>, StoreError> {
    if signers.is_empty() {
        return Ok(Vec::new());
    }
    Ok(submitters::table
        .filter(submitters::submitter_id.eq(submitter))
        .filter(submitters::party_id.eq_any(signers))
        .select(submitters::party_id)
        .load(conn)?)
}
