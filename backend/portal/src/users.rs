//! Managing a node's portal users (`lading user add|list|disable|passwd`): every user acts
//! for the node's party; passwords are hashed here, never stored or logged as given.

use lading_store::portal::{self, Added, UserRow};
use lading_store::{PgConnection, StoreError};

use crate::auth::{self, PasswordError, Role};

/// Why a user could not be added or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("invalid username {0:?}: 1 to 64 of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit")]
    Username(String),
    #[error("there is already a user {0:?}")]
    Exists(String),
    #[error("there is no user {0:?}")]
    Unknown(String),
}

/// Adds `username` with `role` for `party`, with an argon2id hash of `password`.
pub fn add(
    conn: &mut PgConnection,
    username: &str,
    party: &str,
    role: Role,
    password: &str,
) -> Result<UserRow, UserError> {
    if !auth::valid_username(username) {
        return Err(UserError::Username(username.to_owned()));
    }
    let hash = auth::hash_password(password)?;
    match portal::add_user(conn, username, party, role.as_str(), &hash)? {
        Added::Done(row) => {
            portal::audit(
                conn,
                None,
                "lading user",
                "user_added",
                None,
                &serde_json::json!({ "username": username, "role": role.as_str() }),
            )?;
            Ok(*row)
        }
        Added::Exists => Err(UserError::Exists(username.to_owned())),
    }
}

/// Disables `username` and ends its sessions.
pub fn disable(conn: &mut PgConnection, username: &str) -> Result<(), UserError> {
    if !portal::disable_user(conn, username)? {
        return Err(UserError::Unknown(username.to_owned()));
    }
    portal::audit(
        conn,
        None,
        "lading user",
        "user_disabled",
        None,
        &serde_json::json!({ "username": username }),
    )?;
    Ok(())
}

/// Sets `username`'s password and ends its sessions.
pub fn set_password(
    conn: &mut PgConnection,
    username: &str,
    password: &str,
) -> Result<(), UserError> {
    let hash = auth::hash_password(password)?;
    if !portal::set_password(conn, username, &hash)? {
        return Err(UserError::Unknown(username.to_owned()));
    }
    portal::audit(
        conn,
        None,
        "lading user",
        "password_changed",
        None,
        &serde_json::json!({ "username": username }),
    )?;
    Ok(())
}

/// Every user, by username.
pub fn list(conn: &mut PgConnection) -> Result<Vec<UserRow>, UserError> {
    Ok(portal::users(conn)?)
}
