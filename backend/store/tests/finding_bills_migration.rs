//! The migration `finding_bills` fills `document_search` and `events.location` for documents and
//! events sequenced before it, from their signed entries.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Int8, Nullable, Text};
use diesel_migrations::MigrationHarness;
use lading_store::testing::TestDatabase;
use lading_store::MIGRATIONS;

const FINDING_BILLS: &str = "20261218000002";

/// The first chain's ISSUE and the first event of `fixtures/samples.json`.
fn samples() -> (String, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/samples.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (
        v["chains"][0]["transitions"][0]
            .as_str()
            .unwrap()
            .to_owned(),
        v["events"][0].as_str().unwrap().to_owned(),
    )
}

#[derive(Debug, QueryableByName)]
struct Searchable {
    #[diesel(sql_type = Text)]
    vessel: String,
    #[diesel(sql_type = Text)]
    voyage: String,
    #[diesel(sql_type = Text)]
    shipper: String,
    #[diesel(sql_type = Nullable<Text>)]
    consignee: Option<String>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    notify_parties: Vec<Option<String>>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    containers: Vec<Option<String>>,
    #[diesel(sql_type = Text)]
    search: String,
}

#[derive(Debug, QueryableByName)]
struct Located {
    #[diesel(sql_type = Nullable<Text>)]
    location: Option<String>,
}

#[test]
fn documents_and_events_sequenced_before_the_migration_are_searchable_after_it() {
    let db = TestDatabase::empty().unwrap();
    let mut conn = db.connection().unwrap();
    lading_store::run_migrations(&mut conn).unwrap();
    while conn
        .applied_migrations()
        .unwrap()
        .iter()
        .any(|v| v.to_string() == FINDING_BILLS)
    {
        conn.revert_last_migration(MIGRATIONS).unwrap();
    }
    let (issue, event) = samples();
    for (idx, kind, signed) in [(0i64, "transition", &issue), (1, "event", &event)] {
        diesel::sql_query(
            "INSERT INTO ledger_entries (idx, kind, signed, leaf_hash, document_ref, actor, kid, \
             received_at) VALUES ($1, $2, $3, $4, 'OCNL2026000101', 'carrier-oceanic', 'k', now())",
        )
        .bind::<Int8, _>(idx)
        .bind::<Text, _>(kind)
        .bind::<Bytea, _>(signed.as_bytes())
        .bind::<Bytea, _>(vec![idx as u8; 32])
        .execute(&mut conn)
        .unwrap();
    }
    diesel::sql_query(
        "INSERT INTO events (idx, actor, event_id, event_code, document_ref) \
         VALUES (1, 'carrier-oceanic', 'ev-1', 'GTIN', 'OCNL2026000101')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO documents (reference, checksum, carrier, port_of_loading, port_of_discharge, \
         status, possessor, head_checksum, head_idx, issued_idx, state) VALUES \
         ('OCNL2026000101', $1, 'carrier-oceanic', 'NLRTM', 'SGSIN', 'ACTIVE', 'shipper-acme', \
          $1, 0, 0, '{}')",
    )
    .bind::<Bytea, _>(vec![7u8; 32])
    .execute(&mut conn)
    .unwrap();

    lading_store::run_migrations(&mut conn).unwrap();

    let row: Searchable = diesel::sql_query(
        "SELECT vessel, voyage, shipper, consignee, notify_parties, containers, search \
         FROM document_search WHERE reference = 'OCNL2026000101'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(row.vessel, "Oceanic Star");
    assert_eq!(row.voyage, "045E");
    assert_eq!(row.shipper, "shipper-acme");
    assert_eq!(row.consignee.as_deref(), Some("consignee-delta"));
    assert_eq!(row.notify_parties, vec![Some("forwarder-swift".to_owned())]);
    assert_eq!(
        row.containers,
        vec![
            Some("CSQU3054383".to_owned()),
            Some("OCLU4127759".to_owned())
        ]
    );
    for word in [
        "ocnl2026000101",
        "oceanic star",
        "045e",
        "csqu3054383",
        "carrier-oceanic",
        "forwarder-swift",
    ] {
        assert!(row.search.contains(word), "{word} in {}", row.search);
    }
    let event: Located = diesel::sql_query("SELECT location FROM events WHERE idx = 1")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(event.location.as_deref(), Some("NLRTM"));
    // The ledger is append-only again.
    let refused = diesel::sql_query("UPDATE events SET location = 'SGSIN'")
        .execute(&mut conn)
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
}
