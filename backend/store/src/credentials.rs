//! A party's API credentials (`api_credentials`): bearer secrets, kept only as their SHA-256,
//! each with scopes, a label, an expiry, its last use and its revocation. The rules (which
//! scope a route needs, when a credential counts as expired) are the HTTP face's.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::models::PartyRow;
use crate::schema::{api_credentials, parties};
use crate::StoreError;

/// One credential as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_credentials)]
pub struct CredentialRow {
    pub id: String,
    pub party_id: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<Option<String>>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl CredentialRow {
    /// The scopes, without the NULLs a PostgreSQL array may hold.
    pub fn scope_names(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().flatten().map(String::as_str)
    }
}

/// The id of the credential `import-parties --tokens` keeps for `party` (one per party, as the
/// tokens file has one per party).
pub fn imported_id(party: &str) -> String {
    format!("imported-{party}")
}

/// Stores a new credential.
pub fn insert(conn: &mut PgConnection, row: &CredentialRow) -> Result<(), StoreError> {
    diesel::insert_into(api_credentials::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Creates or replaces the imported credential of `row.party_id` (`import-parties --tokens`):
/// a re-import with another token replaces the secret and lifts a revocation, as replacing the
/// party's token did before credentials had their own table.
pub fn upsert_imported(conn: &mut PgConnection, row: &CredentialRow) -> Result<(), StoreError> {
    diesel::insert_into(api_credentials::table)
        .values(row)
        .on_conflict(api_credentials::id)
        .do_update()
        .set((
            api_credentials::secret_sha256.eq(&row.secret_sha256),
            api_credentials::scopes.eq(&row.scopes),
            api_credentials::expires_at.eq(row.expires_at),
            api_credentials::revoked_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)?;
    Ok(())
}

/// The credential whose secret hashes to `secret_sha256`, with its party.
pub fn by_secret(
    conn: &mut PgConnection,
    secret_sha256: &[u8],
) -> Result<Option<(CredentialRow, PartyRow)>, StoreError> {
    Ok(api_credentials::table
        .inner_join(parties::table)
        .filter(api_credentials::secret_sha256.eq(secret_sha256))
        .select((CredentialRow::as_select(), PartyRow::as_select()))
        .first(conn)
        .optional()?)
}

/// Every credential, or `party`'s, oldest first.
pub fn list(
    conn: &mut PgConnection,
    party: Option<&str>,
) -> Result<Vec<CredentialRow>, StoreError> {
    let mut query = api_credentials::table
        .select(CredentialRow::as_select())
        .order((api_credentials::created_at, api_credentials::id))
        .into_boxed();
    if let Some(party) = party {
        query = query.filter(api_credentials::party_id.eq(party.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Revokes credential `id` — only if it is `party`'s, when a party is given — and answers it;
/// `None` when there is no such credential (of that party). Revoking twice keeps the first time.
pub fn revoke(
    conn: &mut PgConnection,
    id: &str,
    party: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Option<CredentialRow>, StoreError> {
    let Some(row) = api_credentials::table
        .find(id)
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    if party.is_some_and(|p| p != row.party_id) {
        return Ok(None);
    }
    if row.revoked_at.is_some() {
        return Ok(Some(row));
    }
    Ok(Some(
        diesel::update(api_credentials::table.find(id))
            .set(api_credentials::revoked_at.eq(at))
            .returning(CredentialRow::as_returning())
            .get_result(conn)?,
    ))
}

/// Records that credential `id` was used at `at`.
pub fn touch(conn: &mut PgConnection, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(api_credentials::table.find(id))
        .set(api_credentials::last_used_at.eq(at))
        .execute(conn)?;
    Ok(())
}
