//! The reads a customs export from the registry makes (`reads::entitled_statements`,
//! `reads::chain_before`, `ledger::block_size`), against a real PostgreSQL.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use chrono::Utc;
use diesel::prelude::*;
use lading_store::json::JsonText;
use lading_store::ledger::{self, AppendBatch};
use lading_store::models::*;
use lading_store::testing::TestDatabase;
use lading_store::{parties, reads};

fn party(id: &str, role: &str, ports: &[&str]) -> PartyRow {
    PartyRow {
        id: id.into(),
        name: format!("{id} (TEST)"),
        role: role.into(),
        ports: ports.iter().map(|p| Some(p.to_string())).collect(),
        created_at: Utc::now(),
        added_idx: None,
        removed_idx: None,
    }
}

fn digest(n: i64) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[..8].copy_from_slice(&n.to_be_bytes());
    d
}

/// The ISSUE of `reference` at `idx`, loaded at `loading`, by carrier-a to shipper-a.
fn issue(idx: i64, reference: &str, loading: &str) -> AppendBatch {
    AppendBatch {
        expected_size: idx as u64,
        entries: vec![EntryRow {
            idx,
            kind: "transition".into(),
            signed: format!("signed-{idx}").into_bytes(),
            leaf_hash: digest(idx),
            document_ref: Some(reference.into()),
            equipment_ref: None,
            actor: "carrier-a".into(),
            kid: "k-carrier".into(),
            received_at: Utc::now(),
            submitted_by: None,
        }],
        transitions: vec![TransitionRow {
            idx,
            document_ref: reference.into(),
            checksum: digest(1000 + idx),
            previous_checksum: None,
            action: "ISSUE".into(),
            actor: "carrier-a".into(),
            recipient: Some("shipper-a".into()),
        }],
        new_documents: vec![DocumentRow {
            reference: reference.into(),
            checksum: vec![7; 32],
            carrier: "carrier-a".into(),
            port_of_loading: loading.into(),
            port_of_discharge: "DEHAM".into(),
            status: "ACTIVE".into(),
            possessor: "shipper-a".into(),
            head_checksum: digest(1000 + idx),
            head_idx: idx,
            issued_idx: idx,
            state: JsonText::of(&serde_json::json!({"status": "ACTIVE"})).unwrap(),
        }],
        updated_documents: vec![],
        new_searchable: vec![],
        events: vec![],
        access: vec![],
        new_access: vec![AccessRow {
            document_ref: reference.into(),
            party_id: "carrier-a".into(),
            head_idx: idx,
        }],
        sealed_blocks: vec![],
        membership: vec![],
    }
}

fn indexes(rows: &[reads::FeedEntry]) -> Vec<i64> {
    rows.iter().map(|r| r.idx).collect()
}

#[test]
fn an_export_reads_a_range_a_page_at_a_time_by_the_rule_of_document_reads() {
    let db = TestDatabase::new().unwrap();
    let mut conn: PgConnection = db.connection().unwrap();
    for p in [
        party("carrier-a", "carrier", &[]),
        party("shipper-a", "shipper", &[]),
        party("customs-nl", "customs_authority", &["NLRTM"]),
        party("customs-sg", "customs_authority", &["SGSIN"]),
    ] {
        parties::upsert_party(&mut conn, &p).unwrap();
    }
    parties::add_key(
        &mut conn,
        &PartyKeyRow {
            kid: "k-carrier".into(),
            party_id: "carrier-a".into(),
            public_key: vec![1; 32],
            created_at: Utc::now(),
            revoked_at: None,
            added_idx: None,
            revoked_idx: None,
        },
    )
    .unwrap();
    // Rotterdam at 0, 2, 4; Singapore at 1, 3.
    for idx in 0..5 {
        let port = if idx % 2 == 0 { "NLRTM" } else { "SGSIN" };
        ledger::append(&mut conn, &issue(idx, &format!("BL-{idx}"), port)).unwrap();
    }
    let read = |conn: &mut PgConnection, party: &str, from: u64, to: u64, limit: u64| {
        reads::entitled_statements(conn, party, from, to, limit).unwrap()
    };
    assert_eq!(
        indexes(&read(&mut conn, "customs-nl", 0, 5, 100)),
        [0, 2, 4]
    );
    assert_eq!(indexes(&read(&mut conn, "customs-sg", 0, 5, 100)), [1, 3]);
    // A page, the next from one past its last, and the range's end.
    assert_eq!(indexes(&read(&mut conn, "customs-nl", 0, 5, 2)), [0, 2]);
    assert_eq!(indexes(&read(&mut conn, "customs-nl", 3, 5, 2)), [4]);
    assert_eq!(indexes(&read(&mut conn, "customs-nl", 0, 4, 100)), [0, 2]);
    // The same entries, with the same bytes, as the authority's replication feed holds in full.
    let fed: Vec<reads::FeedEntry> = reads::feed_for_party(&mut conn, "customs-nl", 0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.signed.is_some())
        .collect();
    let exported = read(&mut conn, "customs-nl", 0, 5, 100);
    assert_eq!(indexes(&fed), indexes(&exported));
    assert!(fed
        .iter()
        .zip(&exported)
        .all(|(f, e)| f.signed == e.signed && f.leaf_hash == e.leaf_hash));
    assert!(read(&mut conn, "shipper-a", 0, 5, 100).is_empty());

    let chain = |conn: &mut PgConnection, before: u64| {
        reads::chain_before(conn, "BL-2", before)
            .unwrap()
            .into_iter()
            .map(|(idx, _)| idx)
            .collect::<Vec<_>>()
    };
    assert_eq!(chain(&mut conn, 2), Vec::<i64>::new());
    assert_eq!(chain(&mut conn, 3), [2]);

    assert_eq!(ledger::block_size(&mut conn).unwrap(), None);
    ledger::claim_block_size(&mut conn, 4).unwrap();
    assert_eq!(ledger::block_size(&mut conn).unwrap(), Some(4));
}
