//! Incidents: what a replica refused, or what reconciliation found, with the evidence to show
//! for it. On a registry each names the replica (`party`) it is about; on a replica, none.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::incidents;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: i64,
    pub code: String,
    pub detail: String,
    pub evidence: serde_json::Value,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub party: Option<String>,
}

/// Records an incident; returns its id.
pub fn open(
    conn: &mut PgConnection,
    party: Option<&str>,
    code: &str,
    detail: &str,
    evidence: &serde_json::Value,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(incidents::table)
        .values((
            incidents::party.eq(party),
            incidents::code.eq(code),
            incidents::detail.eq(detail),
            incidents::evidence.eq(evidence),
        ))
        .returning(incidents::id)
        .get_result(conn)?)
}

/// Records an incident unless one with the same `party` and `code` is open whose evidence
/// contains `same` (a JSON object: `evidence @> same`); returns the new incident's id, `None`
/// when one was open already. What keeps being found — a document's damaged rows read again, a
/// peer that keeps serving the same kind of bad checkpoint — is one incident, not one a read.
pub fn open_unless_open(
    conn: &mut PgConnection,
    party: Option<&str>,
    code: &str,
    detail: &str,
    evidence: &serde_json::Value,
    same: &serde_json::Value,
) -> Result<Option<i64>, StoreError> {
    use diesel::sql_types::{Int8, Jsonb, Nullable, Text};
    #[derive(QueryableByName)]
    struct Opened {
        #[diesel(sql_type = Int8)]
        id: i64,
    }
    let opened: Option<Opened> = diesel::sql_query(
        "INSERT INTO incidents (party, code, detail, evidence) \
         SELECT $1, $2, $3, $4 \
         WHERE NOT EXISTS (SELECT 1 FROM incidents \
                           WHERE closed_at IS NULL AND code = $2 \
                             AND party IS NOT DISTINCT FROM $1 AND evidence @> $5) \
         RETURNING id",
    )
    .bind::<Nullable<Text>, _>(party)
    .bind::<Text, _>(code)
    .bind::<Text, _>(detail)
    .bind::<Jsonb, _>(evidence)
    .bind::<Jsonb, _>(same)
    .get_result(conn)
    .optional()?;
    Ok(opened.map(|o| o.id))
}

/// Incidents not closed yet, oldest first: all of them, or those about `party`.
pub fn open_incidents(
    conn: &mut PgConnection,
    party: Option<&str>,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut query = incidents::table
        .filter(incidents::closed_at.is_null())
        .order(incidents::id.asc())
        .select(IncidentRow::as_select())
        .into_boxed();
    if let Some(party) = party {
        query = query.filter(incidents::party.eq(party.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// How many incidents are open, by the party they are about (`None`: none named).
pub fn count_open_by_party(
    conn: &mut PgConnection,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    Ok(incidents::table
        .filter(incidents::closed_at.is_null())
        .group_by(incidents::party)
        .select((incidents::party, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Closes the open incidents about `party` with `code` (a replica that was behind has caught
/// up); returns how many.
pub fn close(
    conn: &mut PgConnection,
    party: Option<&str>,
    code: &str,
) -> Result<usize, StoreError> {
    let open = incidents::table
        .filter(incidents::closed_at.is_null())
        .filter(incidents::code.eq(code));
    let closed = match party {
        Some(party) => diesel::update(open.filter(incidents::party.eq(party)))
            .set(incidents::closed_at.eq(diesel::dsl::now))
            .execute(conn)?,
        None => diesel::update(open.filter(incidents::party.is_null()))
            .set(incidents::closed_at.eq(diesel::dsl::now))
            .execute(conn)?,
    };
    Ok(closed)
}

/// Closes the open incidents about `party` with `code` whose evidence contains `same` (as in
/// [`open_unless_open`]): what was found about one document is over; returns how many.
pub fn close_matching(
    conn: &mut PgConnection,
    party: Option<&str>,
    code: &str,
    same: &serde_json::Value,
) -> Result<usize, StoreError> {
    use diesel::sql_types::{Jsonb, Nullable, Text};
    Ok(diesel::sql_query(
        "UPDATE incidents SET closed_at = now() \
         WHERE closed_at IS NULL AND code = $2 AND party IS NOT DISTINCT FROM $1 \
           AND evidence @> $3",
    )
    .bind::<Nullable<Text>, _>(party)
    .bind::<Text, _>(code)
    .bind::<Jsonb, _>(same)
    .execute(conn)?)
}
