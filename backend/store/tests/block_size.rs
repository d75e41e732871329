//! The ledger's block size is stored with it (`ledger_head.block_size`), taken at upgrade from
//! what was already signed, and fixed once set.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use chrono::Utc;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use lading_store::ledger;
use lading_store::models::CheckpointRow;
use lading_store::testing::TestDatabase;
use lading_store::MIGRATIONS;

#[test]
fn a_new_ledger_takes_the_configured_block_size_and_keeps_it() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    assert_eq!(ledger::claim_block_size(&mut conn, 16).unwrap(), 16);
    // Another configuration later gets the stored one back, to compare.
    assert_eq!(ledger::claim_block_size(&mut conn, 1024).unwrap(), 16);
    // The database refuses a change, whoever asks.
    let err = diesel::sql_query("UPDATE ledger_head SET block_size = 1024")
        .execute(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("cannot change"), "{err}");
    // The writer's own update of the size is not affected.
    diesel::sql_query("UPDATE ledger_head SET size = 0")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(ledger::claim_block_size(&mut conn, 1024).unwrap(), 16);
}

/// The migration that stores the block size.
const BLOCK_SIZE_MIGRATION: &str = "20261208000001";

#[test]
fn an_upgraded_ledger_takes_the_block_size_it_was_signed_with() {
    let db = TestDatabase::empty().unwrap();
    let mut conn = db.connection().unwrap();
    lading_store::run_migrations(&mut conn).unwrap();
    // The ledger as it was before the block size was stored: a checkpoint signed with blocks
    // of 8.
    let mut reverted = 0;
    while conn
        .applied_migrations()
        .unwrap()
        .iter()
        .any(|v| v.to_string() == BLOCK_SIZE_MIGRATION)
    {
        conn.revert_last_migration(MIGRATIONS).unwrap();
        reverted += 1;
    }
    diesel::insert_into(lading_store::schema::checkpoints::table)
        .values(&CheckpointRow {
            size: 0,
            root: vec![0; 32],
            block_size: 8,
            signed: "signed".into(),
            created_at: Utc::now(),
        })
        .execute(&mut conn)
        .unwrap();
    assert_eq!(lading_store::run_migrations(&mut conn).unwrap(), reverted);
    assert_eq!(ledger::claim_block_size(&mut conn, 1024).unwrap(), 8);
}
