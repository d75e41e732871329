//! Who may do what, and the secrets of signing in: roles and their permissions, argon2id
//! password hashes, session tokens (256 random bits, only their SHA-256 stored) and the CSRF
//! token each session's forms carry.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};

/// A user's role on the node's portal. Every role reads; each of the others adds one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and drafts.
    Clerk,
    /// Reads, drafts, signs and submits.
    Signer,
    /// Reads and manages the node's users.
    Admin,
}

/// What a page or an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Draft,
    Sign,
    ManageUsers,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Draft => "draft",
            Self::Sign => "sign",
            Self::ManageUsers => "manage users",
        }
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Clerk, Role::Signer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Clerk => "clerk",
            Self::Signer => "signer",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may do what `permission` names.
    pub fn may(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Draft => matches!(self, Self::Clerk | Self::Signer),
            Permission::Sign => self == Self::Signer,
            Permission::ManageUsers => self == Self::Admin,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| format!("unknown role {name:?} (viewer, clerk, signer or admin)"))
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must be at least {MIN_PASSWORD} characters")]
    TooShort,
    #[error("a password must be at most {MAX_PASSWORD} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (hashing cost does not depend on it, but a bound is a bound).
pub const MAX_PASSWORD: usize = 1024;

/// An argon2id hash of `password` with a fresh random salt (the crate's default cost:
/// 19 MiB, 2 passes), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `hash` (a PHC string). A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password is checked against successfully, checked when the username is unknown
/// so that an unknown user costs as much time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 24];
        OsRng.fill_bytes(&mut random);
        hash_password(&URL_SAFE_NO_PAD.encode(random)).unwrap_or_default()
    })
}

/// A new session token: 256 random bits, base64url (what the cookie carries).
pub fn new_token() -> String {
    let mut token = [0u8; 32];
    OsRng.fill_bytes(&mut token);
    URL_SAFE_NO_PAD.encode(token)
}

/// The SHA-256 of a token's bytes: what the database keeps. `None` for what is not a token.
pub fn token_hash(token: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    Some(Sha256::digest(&bytes).into())
}

/// The CSRF token of a session's forms: derived from the session token, so it is as secret
/// as the session and changes with it, and needs nothing stored.
pub fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"lading-portal csrf\0");
    hasher.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `name` is a valid username: 1 to 64 of `a-z 0-9 . _ @ -`, starting with a letter or
/// digit (the database checks the same).
pub fn valid_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'@' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        assert!(Role::ALL.iter().all(|r| r.may(Permission::Read)));
        assert!(!Role::Viewer.may(Permission::Draft));
        assert!(Role::Clerk.may(Permission::Draft) && !Role::Clerk.may(Permission::Sign));
        assert!(Role::Signer.may(Permission::Sign));
        assert!(!Role::Signer.may(Permission::ManageUsers));
        assert!(Role::Admin.may(Permission::ManageUsers) && !Role::Admin.may(Permission::Sign));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("anything", decoy_hash()));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn tokens_are_256_bits_and_only_their_hash_is_kept() {
        let token = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(token, new_token());
        let hash = token_hash(&token).unwrap();
        assert_eq!(hash, token_hash(&token).unwrap());
        assert!(token_hash("short").is_none());
        assert_ne!(csrf_token(&token), csrf_token(&new_token()));
        assert!(same_secret(&csrf_token(&token), &csrf_token(&token)));
        assert!(!same_secret("a", "b") && !same_secret("a", "ab"));
    }

    #[test]
    fn usernames() {
        assert!(valid_username("alice") && valid_username("a.b-c_d@x"));
        assert!(!valid_username("") && !valid_username("Alice") && !valid_username("-x"));
        assert!(!valid_username(&"a".repeat(65)) && !valid_username("a b"));
    }
}
