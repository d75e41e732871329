//! The portal's users, sessions and audit log (`lading-portal`, `lading user`).
//!
//! The store keeps rows; the portal decides: it hashes passwords (argon2id) before they come
//! here, hands in only the SHA-256 of a session token, and judges expiry with the times these
//! rows carry.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::schema::{portal_audit, portal_drafts, portal_sessions, portal_users};
use crate::StoreError;

/// A user of a node's portal.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = portal_users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub party: String,
    /// `viewer`, `clerk`, `signer` or `admin`.
    pub role: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

/// Whether [`add_user`] made the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    Done(Box<UserRow>),
    /// The username is taken.
    Exists,
}

/// Adds a user; a taken username is [`Added::Exists`], nothing written.
pub fn add_user(
    conn: &mut PgConnection,
    username: &str,
    party: &str,
    role: &str,
    password_hash: &str,
) -> Result<Added, StoreError> {
    let row: Option<UserRow> = diesel::insert_into(portal_users::table)
        .values((
            portal_users::username.eq(username),
            portal_users::party.eq(party),
            portal_users::role.eq(role),
            portal_users::password_hash.eq(password_hash),
        ))
        .on_conflict(portal_users::username)
        .do_nothing()
        .returning(UserRow::as_returning())
        .get_result(conn)
        .optional()?;
    Ok(row.map_or(Added::Exists, |r| Added::Done(Box::new(r))))
}

pub fn user_by_name(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(portal_users::table
        .filter(portal_users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every user, by username.
pub fn users(conn: &mut PgConnection) -> Result<Vec<UserRow>, StoreError> {
    Ok(portal_users::table
        .order(portal_users::username.asc())
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Disables a user and ends its sessions, in one transaction; whether the user exists.
pub fn disable_user(conn: &mut PgConnection, username: &str) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        let id: Option<i64> = diesel::update(portal_users::table)
            .filter(portal_users::username.eq(username))
            .set(portal_users::disabled.eq(true))
            .returning(portal_users::id)
            .get_result(conn)
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        diesel::delete(portal_sessions::table.filter(portal_sessions::user_id.eq(id)))
            .execute(conn)?;
        Ok(true)
    })
}

/// Sets a user's password hash and ends its sessions (whoever knew the old password is signed
/// out), in one transaction; whether the user exists.
pub fn set_password(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        let id: Option<i64> = diesel::update(portal_users::table)
            .filter(portal_users::username.eq(username))
            .set((
                portal_users::password_hash.eq(password_hash),
                portal_users::password_changed_at.eq(diesel::dsl::now),
            ))
            .returning(portal_users::id)
            .get_result(conn)
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        diesel::delete(portal_sessions::table.filter(portal_sessions::user_id.eq(id)))
            .execute(conn)?;
        Ok(true)
    })
}

/// A session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = portal_sessions)]
pub struct SessionRow {
    pub token_sha256: Vec<u8>,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for `user_id`, ending at `expires_at` at the latest.
pub fn open_session(
    conn: &mut PgConnection,
    token_sha256: &[u8],
    user_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(portal_sessions::table)
        .values((
            portal_sessions::token_sha256.eq(token_sha256),
            portal_sessions::user_id.eq(user_id),
            portal_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session whose token hashes to `token_sha256`, with its user.
pub fn session(
    conn: &mut PgConnection,
    token_sha256: &[u8],
) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
    Ok(portal_sessions::table
        .inner_join(portal_users::table)
        .filter(portal_sessions::token_sha256.eq(token_sha256))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?)
}

/// Notes that the session was used now.
pub fn touch_session(conn: &mut PgConnection, token_sha256: &[u8]) -> Result<(), StoreError> {
    diesel::update(portal_sessions::table.filter(portal_sessions::token_sha256.eq(token_sha256)))
        .set(portal_sessions::last_seen.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}

/// Ends a session; whether there was one.
pub fn end_session(conn: &mut PgConnection, token_sha256: &[u8]) -> Result<bool, StoreError> {
    Ok(diesel::delete(
        portal_sessions::table.filter(portal_sessions::token_sha256.eq(token_sha256)),
    )
    .execute(conn)?
        > 0)
}

/// Deletes sessions past their absolute end or idle for longer than `idle`: they could not be
/// used any more, and need not be kept. How many.
pub fn purge_sessions(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        portal_sessions::table.filter(
            portal_sessions::expires_at
                .le(now)
                .or(portal_sessions::last_seen.le(now - idle)),
        ),
    )
    .execute(conn)?)
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = portal_audit)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub username: String,
    pub action: String,
    pub document_ref: Option<String>,
    pub detail: serde_json::Value,
}

/// Records that `username` did `action` (on `document_ref`).
pub fn audit(
    conn: &mut PgConnection,
    user_id: Option<i64>,
    username: &str,
    action: &str,
    document_ref: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    diesel::insert_into(portal_audit::table)
        .values((
            portal_audit::user_id.eq(user_id),
            portal_audit::username.eq(username),
            portal_audit::action.eq(action),
            portal_audit::document_ref.eq(document_ref),
            portal_audit::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// The latest `limit` lines of the audit log, newest first.
pub fn audit_log(conn: &mut PgConnection, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    Ok(portal_audit::table
        .order((portal_audit::at.desc(), portal_audit::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// A bill of lading prepared in the portal, not yet signed.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = portal_drafts)]
pub struct DraftRow {
    pub id: i64,
    pub reference: String,
    /// The transport document as the domain parsed it.
    pub document: serde_json::Value,
    /// The party the ISSUE names.
    pub recipient: String,
    pub created_by: Option<i64>,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    /// `draft`, `submitted` or `discarded`.
    pub state: String,
    pub outbox_seq: Option<i64>,
}

/// Keeps a draft; its id.
pub fn add_draft(
    conn: &mut PgConnection,
    reference: &str,
    document: &serde_json::Value,
    recipient: &str,
    user_id: i64,
    username: &str,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(portal_drafts::table)
        .values((
            portal_drafts::reference.eq(reference),
            portal_drafts::document.eq(document),
            portal_drafts::recipient.eq(recipient),
            portal_drafts::created_by.eq(Some(user_id)),
            portal_drafts::created_by_name.eq(username),
        ))
        .returning(portal_drafts::id)
        .get_result(conn)?)
}

pub fn draft(conn: &mut PgConnection, id: i64) -> Result<Option<DraftRow>, StoreError> {
    Ok(portal_drafts::table
        .find(id)
        .select(DraftRow::as_select())
        .first(conn)
        .optional()?)
}

/// The latest `limit` drafts, newest first.
pub fn drafts(conn: &mut PgConnection, limit: i64) -> Result<Vec<DraftRow>, StoreError> {
    Ok(portal_drafts::table
        .order(portal_drafts::id.desc())
        .limit(limit)
        .select(DraftRow::as_select())
        .load(conn)?)
}

/// Replaces a draft's document and recipient; false when it was no longer a draft (signed or
/// discarded meanwhile), and then nothing changes.
pub fn update_draft(
    conn: &mut PgConnection,
    id: i64,
    reference: &str,
    document: &serde_json::Value,
    recipient: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        portal_drafts::table
            .find(id)
            .filter(portal_drafts::state.eq("draft")),
    )
    .set((
        portal_drafts::reference.eq(reference),
        portal_drafts::document.eq(document),
        portal_drafts::recipient.eq(recipient),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks a draft discarded; false when it was no longer a draft.
pub fn discard_draft(conn: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        portal_drafts::table
            .find(id)
            .filter(portal_drafts::state.eq("draft")),
    )
    .set(portal_drafts::state.eq("discarded"))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks a draft submitted as outbox submission `seq`; false when it was no longer a draft
/// (signed or discarded meanwhile), and then nothing changes.
pub fn draft_submitted(conn: &mut PgConnection, id: i64, seq: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        portal_drafts::table
            .find(id)
            .filter(portal_drafts::state.eq("draft")),
    )
    .set((
        portal_drafts::state.eq("submitted"),
        portal_drafts::outbox_seq.eq(Some(seq)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The audit lines of the signatures that made outbox submissions, by seq: who asked.
pub fn signatures(conn: &mut PgConnection, seqs: &[i64]) -> Result<Vec<(i64, String)>, StoreError> {
    let rows: Vec<AuditRow> = portal_audit::table
        .filter(portal_audit::action.like("sign %"))
        .order(portal_audit::id.desc())
        .limit(1000)
        .select(AuditRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let seq = r.detail.get("outboxSeq")?.as_i64()?;
            seqs.contains(&seq).then_some((seq, r.username))
        })
        .collect())
}

/// The latest `limit` submissions of the node's outbox, newest first (the portal's list).
pub fn latest_submissions(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<crate::outbox::OutboxRow>, StoreError> {
    use crate::schema::replica_outbox;
    Ok(replica_outbox::table
        .order(replica_outbox::seq.desc())
        .limit(limit)
        .select(crate::outbox::OutboxRow::as_select())
        .load(conn)?)
}
