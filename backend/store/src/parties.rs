//! The party registry: who exists, and their keys (API credentials: [`crate::credentials`]).

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::models::{MembershipRow, OperatorKeyRow, PartyKeyRow, PartyRow};
use crate::schema::{operator_keys, parties, party_keys};
use crate::StoreError;

/// Creates the party or brings its name, role and ports up to date.
pub fn upsert_party(conn: &mut PgConnection, row: &PartyRow) -> Result<(), StoreError> {
    diesel::insert_into(parties::table)
        .values(row)
        .on_conflict(parties::id)
        .do_update()
        .set((
            parties::name.eq(&row.name),
            parties::role.eq(&row.role),
            parties::ports.eq(&row.ports),
        ))
        .execute(conn)?;
    Ok(())
}

/// Registers a key. A kid is bound to one party and one public key forever: registering the
/// same kid with another key or party fails.
pub fn add_key(conn: &mut PgConnection, row: &PartyKeyRow) -> Result<(), StoreError> {
    let inserted = diesel::insert_into(party_keys::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        let existing: PartyKeyRow = party_keys::table
            .find(&row.kid)
            .select(PartyKeyRow::as_select())
            .first(conn)?;
        if existing.party_id != row.party_id || existing.public_key != row.public_key {
            return Err(StoreError::corrupt(
                "party_keys",
                format!("kid {} is already bound to another key", row.kid),
            ));
        }
    }
    Ok(())
}

/// Registers a key of the operator, with the same rule as [`add_key`].
pub fn add_operator_key(conn: &mut PgConnection, row: &OperatorKeyRow) -> Result<(), StoreError> {
    let inserted = diesel::insert_into(operator_keys::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        let existing: OperatorKeyRow = operator_keys::table
            .find(&row.kid)
            .select(OperatorKeyRow::as_select())
            .first(conn)?;
        if existing.public_key != row.public_key {
            return Err(StoreError::corrupt(
                "operator_keys",
                format!("kid {} is already bound to another key", row.kid),
            ));
        }
    }
    Ok(())
}

pub fn operator_keys(conn: &mut PgConnection) -> Result<Vec<OperatorKeyRow>, StoreError> {
    Ok(operator_keys::table
        .order(operator_keys::kid.asc())
        .select(OperatorKeyRow::as_select())
        .load(conn)?)
}

/// Writes what party statements changed (in the caller's transaction: the statements' own).
pub fn apply(conn: &mut PgConnection, changes: &[MembershipRow]) -> Result<(), StoreError> {
    for change in changes {
        let touched = match change {
            MembershipRow::NewParty(row) => diesel::insert_into(parties::table)
                .values(row)
                .execute(conn)?,
            MembershipRow::NewKey(row) => diesel::insert_into(party_keys::table)
                .values(row)
                .execute(conn)?,
            MembershipRow::NewOperatorKey(row) => diesel::insert_into(operator_keys::table)
                .values(row)
                .execute(conn)?,
            MembershipRow::RemoveParty { id, idx } => diesel::update(parties::table.find(id))
                .filter(parties::removed_idx.is_null())
                .set(parties::removed_idx.eq(idx))
                .execute(conn)?,
            MembershipRow::RevokeKey { kid, idx } => {
                diesel::update(party_keys::table.find(kid))
                    .filter(party_keys::revoked_idx.is_null())
                    .set((
                        party_keys::revoked_idx.eq(idx),
                        party_keys::revoked_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?
                    + diesel::update(operator_keys::table.find(kid))
                        .filter(operator_keys::revoked_idx.is_null())
                        .set(operator_keys::revoked_idx.eq(idx))
                        .execute(conn)?
            }
        };
        if touched != 1 {
            return Err(StoreError::corrupt(
                "parties",
                format!("a party statement's change did not apply: {change:?}"),
            ));
        }
    }
    Ok(())
}

pub fn all_parties(conn: &mut PgConnection) -> Result<Vec<PartyRow>, StoreError> {
    Ok(parties::table
        .order(parties::id.asc())
        .select(PartyRow::as_select())
        .load(conn)?)
}

pub fn all_keys(conn: &mut PgConnection) -> Result<Vec<PartyKeyRow>, StoreError> {
    Ok(party_keys::table
        .select(PartyKeyRow::as_select())
        .load(conn)?)
}

pub fn key(conn: &mut PgConnection, kid: &str) -> Result<Option<PartyKeyRow>, StoreError> {
    Ok(party_keys::table
        .find(kid)
        .select(PartyKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Which of `kids` are registered, as a party's or the operator's: one round trip for any
/// number of them.
pub fn known_kids(conn: &mut PgConnection, kids: &[&str]) -> Result<Vec<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Known {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kid: String,
    }
    if kids.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<Known> = diesel::sql_query(
        "SELECT kid FROM party_keys WHERE kid = ANY($1) \
         UNION SELECT kid FROM operator_keys WHERE kid = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(kids)
    .load(conn)?;
    Ok(known.into_iter().map(|k| k.kid).collect())
}

pub fn party(conn: &mut PgConnection, id: &str) -> Result<Option<PartyRow>, StoreError> {
    Ok(parties::table
        .find(id)
        .select(PartyRow::as_select())
        .first(conn)
        .optional()?)
}
