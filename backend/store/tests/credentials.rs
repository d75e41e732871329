//! `api_credentials` against a real PostgreSQL: the migration moves the tokens parties had
//! (`parties.token_sha256`) into credentials with every scope, and a credential is revoked
//! only through its own party.

#![cfg(test)]

use chrono::Utc;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use lading_store::credentials;
use lading_store::testing::TestDatabase;
use lading_store::MIGRATIONS;

/// The migration that made `api_credentials`.
const CREDENTIALS_MIGRATION: &str = "20261218000001";

#[test]
fn the_migration_moves_party_tokens_into_credentials() {
    let db = TestDatabase::empty().unwrap();
    let mut conn = db.connection().unwrap();
    lading_store::run_migrations(&mut conn).unwrap();
    // Back to the schema before credentials (and any migration after them).
    loop {
        let reverted = conn.revert_last_migration(MIGRATIONS).unwrap();
        if reverted.to_string() == CREDENTIALS_MIGRATION {
            break;
        }
    }
    let hash = [7u8; 32];
    diesel::sql_query(
        "INSERT INTO parties (id, name, role, token_sha256) VALUES \
         ('shipper-a', 'Shipper A', 'shipper', $1), ('carrier-a', 'Carrier A', 'carrier', NULL)",
    )
    .bind::<diesel::sql_types::Bytea, _>(hash.to_vec())
    .execute(&mut conn)
    .unwrap();

    lading_store::run_migrations(&mut conn).unwrap();
    let all = credentials::list(&mut conn, None).unwrap();
    assert_eq!(
        all.len(),
        1,
        "only the party that had a token has a credential"
    );
    let (row, party) = credentials::by_secret(&mut conn, &hash).unwrap().unwrap();
    assert_eq!(row.id, credentials::imported_id("shipper-a"));
    assert_eq!(party.id, "shipper-a");
    assert_eq!(
        row.scope_names().collect::<Vec<_>>(),
        ["read", "submit", "subscribe", "admin"]
    );
    assert!(row.expires_at.is_none() && row.revoked_at.is_none());

    // Down again (through the migrations after it): the token is back on its party.
    while conn.revert_last_migration(MIGRATIONS).unwrap().to_string() != CREDENTIALS_MIGRATION {}
    let back: Vec<Option<Vec<u8>>> =
        diesel::sql_query("SELECT token_sha256 FROM parties ORDER BY id")
            .load::<TokenRow>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.token_sha256)
            .collect();
    assert_eq!(back, [None, Some(hash.to_vec())]);
}

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    token_sha256: Option<Vec<u8>>,
}

#[test]
fn a_credential_is_revoked_only_through_its_party() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    diesel::sql_query(
        "INSERT INTO parties (id, name, role) VALUES ('shipper-a', 'A', 'shipper'), ('shipper-b', 'B', 'shipper')",
    )
    .execute(&mut conn)
    .unwrap();
    let row = credentials::CredentialRow {
        id: "tok_a".into(),
        party_id: "shipper-a".into(),
        secret_sha256: vec![1; 32],
        scopes: vec![Some("read".into())],
        label: "TMS".into(),
        created_at: Utc::now(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    };
    credentials::insert(&mut conn, &row).unwrap();
    let now = Utc::now();
    assert!(
        credentials::revoke(&mut conn, "tok_a", Some("shipper-b"), now)
            .unwrap()
            .is_none()
    );
    assert!(
        credentials::revoke(&mut conn, "tok_x", Some("shipper-a"), now)
            .unwrap()
            .is_none()
    );
    let revoked = credentials::revoke(&mut conn, "tok_a", Some("shipper-a"), now)
        .unwrap()
        .unwrap();
    let first = revoked.revoked_at.unwrap();
    let again = credentials::revoke(&mut conn, "tok_a", None, Utc::now())
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first),
        "revoking twice keeps the first time"
    );
    assert_eq!(
        credentials::list(&mut conn, Some("shipper-b"))
            .unwrap()
            .len(),
        0
    );
}
