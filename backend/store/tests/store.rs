//! The store against a real PostgreSQL (a throwaway cluster per test process, a fresh
//! database per test).

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use chrono::Utc;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use lading_store::json::JsonText;
use lading_store::ledger::{self, AppendBatch};
use lading_store::models::*;
use lading_store::testing::TestDatabase;
use lading_store::{parties, reads, StoreError, MIGRATIONS};

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

fn seed_parties(conn: &mut PgConnection) {
    for p in [
        party("carrier-a", "carrier", &[]),
        party("shipper-a", "shipper", &[]),
        party("shipper-b", "shipper", &[]),
        party("customs-nl", "customs_authority", &["NLRTM"]),
        party("customs-sg", "customs_authority", &["SGSIN"]),
    ] {
        parties::upsert_party(conn, &p).unwrap();
    }
    for (kid, owner, byte) in [
        ("k-carrier", "carrier-a", 1u8),
        ("k-shipper", "shipper-a", 2),
    ] {
        parties::add_key(
            conn,
            &PartyKeyRow {
                kid: kid.into(),
                party_id: owner.into(),
                public_key: vec![byte; 32],
                created_at: Utc::now(),
                revoked_at: None,
                added_idx: None,
                revoked_idx: None,
            },
        )
        .unwrap();
    }
}

fn entry(idx: i64, document: &str) -> EntryRow {
    EntryRow {
        idx,
        kind: "transition".into(),
        signed: format!("signed-{idx}").into_bytes(),
        leaf_hash: lading_store_test_digest(idx),
        document_ref: Some(document.into()),
        equipment_ref: None,
        actor: "carrier-a".into(),
        kid: "k-carrier".into(),
        received_at: Utc::now(),
        submitted_by: None,
    }
}

fn lading_store_test_digest(idx: i64) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[..8].copy_from_slice(&idx.to_be_bytes());
    d
}

fn issue_batch(expected: u64, idx: i64, reference: &str) -> AppendBatch {
    AppendBatch {
        expected_size: expected,
        entries: vec![entry(idx, reference)],
        transitions: vec![TransitionRow {
            idx,
            document_ref: reference.into(),
            checksum: lading_store_test_digest(1000 + idx),
            previous_checksum: None,
            action: "ISSUE".into(),
            actor: "carrier-a".into(),
            recipient: Some("shipper-a".into()),
        }],
        new_documents: vec![DocumentRow {
            reference: reference.into(),
            checksum: vec![7; 32],
            carrier: "carrier-a".into(),
            port_of_loading: "NLRTM".into(),
            port_of_discharge: "DEHAM".into(),
            status: "ACTIVE".into(),
            possessor: "shipper-a".into(),
            head_checksum: lading_store_test_digest(1000 + idx),
            head_idx: idx,
            issued_idx: idx,
            state: JsonText::of(&serde_json::json!({"status": "ACTIVE"})).unwrap(),
        }],
        updated_documents: vec![],
        new_searchable: vec![],
        events: vec![],
        access: vec![],
        new_access: vec![
            AccessRow {
                document_ref: reference.into(),
                party_id: "carrier-a".into(),
                head_idx: idx,
            },
            AccessRow {
                document_ref: reference.into(),
                party_id: "shipper-a".into(),
                head_idx: idx,
            },
        ],
        sealed_blocks: vec![],
        membership: vec![],
    }
}

#[test]
fn migrations_run_up_down_up() {
    let db = TestDatabase::empty().unwrap();
    let mut conn = db.connection().unwrap();
    let all = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(lading_store::run_migrations(&mut conn).unwrap(), all);
    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(lading_store::run_migrations(&mut conn).unwrap(), all);
    assert_eq!(
        lading_store::run_migrations(&mut conn).unwrap(),
        0,
        "a second run applies nothing"
    );
}

/// `src/schema.rs` must be what `diesel print-schema` makes of the migrated database.
#[test]
fn schema_rs_matches_the_migrations() {
    let db = TestDatabase::new().unwrap();
    let output = std::process::Command::new("diesel")
        .args(["print-schema", "--database-url", db.url()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the diesel CLI is needed to check schema.rs: run deploy/ensure-deps.sh --dev");
    assert!(
        output.status.success(),
        "diesel print-schema failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.rs")).unwrap();
    assert_eq!(
        generated.trim(),
        committed.trim(),
        "src/schema.rs is stale: regenerate it with `diesel print-schema > backend/store/src/schema.rs`"
    );
}

#[test]
fn ledger_rows_cannot_be_updated_deleted_or_truncated() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    for sql in [
        "UPDATE ledger_entries SET signed = 'forged' WHERE idx = 0",
        "DELETE FROM ledger_entries WHERE idx = 0",
        "TRUNCATE ledger_entries CASCADE",
        "UPDATE transitions SET actor = 'shipper-b'",
        "DELETE FROM transitions",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let signed: Vec<u8> = lading_store::schema::ledger_entries::table
        .select(lading_store::schema::ledger_entries::signed)
        .first(&mut conn)
        .unwrap();
    assert_eq!(signed, b"signed-0");
}

#[test]
fn a_stale_writer_writes_nothing() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    // A second writer that still believes the ledger is empty.
    let err = ledger::append(&mut conn, &issue_batch(0, 1, "BL-2")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::HeadMoved {
                expected: 0,
                found: 1
            }
        ),
        "{err}"
    );
    assert_eq!(ledger::ledger_size(&mut conn).unwrap(), 1);
    assert!(ledger::entry(&mut conn, 1).unwrap().is_none());
    assert!(ledger::document_heads(&mut conn, &["BL-2"])
        .unwrap()
        .is_empty());
}

#[test]
fn a_batch_that_fails_midway_leaves_nothing() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    let mut batch = issue_batch(0, 0, "BL-1");
    // The second transition names the same parent: the one-child constraint refuses it.
    let mut second = batch.transitions[0].clone();
    second.idx = 1;
    second.checksum = vec![9; 32];
    batch.entries.push(entry(1, "BL-1"));
    batch.transitions.push(second);
    assert!(ledger::append(&mut conn, &batch).is_err());
    assert_eq!(ledger::ledger_size(&mut conn).unwrap(), 0);
    assert!(ledger::entry(&mut conn, 0).unwrap().is_none());
}

#[test]
fn resubmitted_transitions_are_found_by_document_and_checksum() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    let found = ledger::transitions_by_checksum(
        &mut conn,
        &["BL-1", "BL-9"],
        &[lading_store_test_digest(1000), vec![5; 32]],
    )
    .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].idx, 0);
    assert_eq!(found[0].leaf_hash, lading_store_test_digest(0));
    assert_eq!(found[0].document_ref.as_deref(), Some("BL-1"));
    // The checksum of BL-1's transition, asked for under another document: nothing.
    assert!(ledger::transitions_by_checksum(
        &mut conn,
        &["BL-9"],
        &[lading_store_test_digest(1000)]
    )
    .unwrap()
    .is_empty());
}

#[test]
fn events_are_found_by_actor_and_id_and_read_by_document() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    let mut event_entry = entry(1, "BL-1");
    event_entry.kind = "event".into();
    let batch = AppendBatch {
        expected_size: 1,
        entries: vec![event_entry],
        events: vec![EventRow {
            idx: 1,
            actor: "carrier-a".into(),
            event_id: "ev-1".into(),
            event_code: "LOAD".into(),
            document_ref: Some("BL-1".into()),
            equipment_ref: None,
            location: Some("NLRTM".into()),
        }],
        ..AppendBatch::default()
    };
    ledger::append(&mut conn, &batch).unwrap();
    let found = ledger::events_by_id(&mut conn, "carrier-a", &["ev-1", "ev-2"]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].idx, found[0].kind.as_str()), (1, "event"));
    assert!(ledger::events_by_id(&mut conn, "shipper-a", &["ev-1"])
        .unwrap()
        .is_empty());
    let events = reads::document_events(&mut conn, "BL-1").unwrap();
    assert_eq!(events.iter().map(|e| e.idx).collect::<Vec<_>>(), vec![1]);
    assert!(reads::document_events(&mut conn, "BL-2")
        .unwrap()
        .is_empty());
}

#[test]
fn documents_are_read_only_by_entitled_parties() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    let sees = |conn: &mut PgConnection, party: &str| {
        reads::document_for_party(conn, "BL-1", party)
            .unwrap()
            .is_some()
    };
    assert!(sees(&mut conn, "carrier-a"));
    assert!(sees(&mut conn, "shipper-a"));
    assert!(
        sees(&mut conn, "customs-nl"),
        "customs of the port of loading"
    );
    assert!(!sees(&mut conn, "customs-sg"), "customs elsewhere");
    assert!(!sees(&mut conn, "shipper-b"), "an unrelated shipper");
    assert!(reads::document_for_party(&mut conn, "BL-404", "carrier-a")
        .unwrap()
        .is_none());
    assert_eq!(reads::chain(&mut conn, "BL-1").unwrap().len(), 1);
}

#[test]
fn moved_documents_are_updated_in_one_statement() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    ledger::append(&mut conn, &issue_batch(0, 0, "BL-1")).unwrap();
    let batch = AppendBatch {
        expected_size: 1,
        entries: vec![entry(1, "BL-1")],
        updated_documents: vec![DocumentStateUpdate {
            reference: "BL-1".into(),
            status: "ACTIVE".into(),
            possessor: "carrier-a".into(),
            head_checksum: vec![3; 32],
            head_idx: 1,
            state: JsonText::of(&serde_json::json!({"possessor": "carrier-a"})).unwrap(),
        }],
        // Access to an existing document: a party it already names, and a new one.
        access: vec![
            AccessRow {
                document_ref: "BL-1".into(),
                party_id: "carrier-a".into(),
                head_idx: 1,
            },
            AccessRow {
                document_ref: "BL-1".into(),
                party_id: "customs-x".into(),
                head_idx: 1,
            },
        ],
        ..AppendBatch::default()
    };
    ledger::append(&mut conn, &batch).unwrap();
    let named: Vec<(String, i64)> = lading_store::schema::document_access::table
        .filter(lading_store::schema::document_access::document_ref.eq("BL-1"))
        .select((
            lading_store::schema::document_access::party_id,
            lading_store::schema::document_access::head_idx,
        ))
        .order(lading_store::schema::document_access::party_id.asc())
        .load(&mut conn)
        .unwrap();
    // Every row, old (shipper-a), named again (carrier-a) or new (customs-x), is at the
    // document's new head: what each party's documents are ordered by.
    assert_eq!(
        named,
        vec![
            ("carrier-a".to_owned(), 1),
            ("customs-x".to_owned(), 1),
            ("shipper-a".to_owned(), 1)
        ]
    );
    let head = ledger::document_heads(&mut conn, &["BL-1"]).unwrap();
    assert_eq!(head[0].head_idx, 1);
    assert_eq!(
        head[0].state.parse::<serde_json::Value>().unwrap(),
        serde_json::json!({"possessor": "carrier-a"})
    );
}

#[test]
fn a_kid_stays_bound_to_its_key() {
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    seed_parties(&mut conn);
    let rebind = PartyKeyRow {
        kid: "k-carrier".into(),
        party_id: "shipper-b".into(),
        public_key: vec![1; 32],
        created_at: Utc::now(),
        revoked_at: None,
        added_idx: None,
        revoked_idx: None,
    };
    assert!(parties::add_key(&mut conn, &rebind).is_err());
    assert_eq!(
        parties::key(&mut conn, "k-carrier")
            .unwrap()
            .unwrap()
            .party_id,
        "carrier-a"
    );
}

fn replica_row(idx: i64, signed: Option<&str>) -> lading_store::replica::ReplicaEntryRow {
    lading_store::replica::ReplicaEntryRow {
        idx,
        leaf_hash: lading_store_test_digest(idx),
        signed: signed.map(|s| s.as_bytes().to_vec()),
        document_ref: signed.map(|_| "BL-1".to_owned()),
    }
}

#[test]
fn a_replica_appends_gapless_backfills_by_leaf_and_keeps_checkpoints_and_incidents() {
    use lading_store::replica::{self, ReplicaCheckpointRow};
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    assert_eq!(replica::size(&mut conn).unwrap(), 0);
    replica::append(
        &mut conn,
        &[replica_row(0, Some("jws-0")), replica_row(1, None)],
    )
    .unwrap();
    assert_eq!(replica::size(&mut conn).unwrap(), 2);

    // A gap, a repeat and a hole inside the batch are refused whole.
    for bad in [
        vec![replica_row(3, None)],
        vec![replica_row(1, None)],
        vec![replica_row(2, None), replica_row(4, None)],
    ] {
        let err = replica::append(&mut conn, &bad).unwrap_err();
        assert!(
            matches!(err, StoreError::HeadMoved { found: 2, .. }),
            "{err}"
        );
    }
    assert_eq!(replica::size(&mut conn).unwrap(), 2);

    // Back-fill needs the leaf the row holds.
    assert!(replica::backfill(&mut conn, 1, &[0u8; 32], b"jws-1", Some("BL-1")).is_err());
    replica::backfill(
        &mut conn,
        1,
        &lading_store_test_digest(1),
        b"jws-1",
        Some("BL-1"),
    )
    .unwrap();
    let rows = replica::entries(&mut conn, 0, 10).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].signed.as_deref(), Some(&b"jws-1"[..]));
    assert_eq!(replica::entries(&mut conn, 1, 10).unwrap().len(), 1);

    // Checkpoints: verified later; a different one of the same size does not replace the first.
    let first = ReplicaCheckpointRow {
        size: 2,
        root: vec![7; 32],
        signed: "checkpoint-a".into(),
        verified: false,
    };
    replica::keep_checkpoint(&mut conn, &first).unwrap();
    replica::keep_checkpoint(
        &mut conn,
        &ReplicaCheckpointRow {
            verified: true,
            ..first.clone()
        },
    )
    .unwrap();
    replica::keep_checkpoint(
        &mut conn,
        &ReplicaCheckpointRow {
            root: vec![8; 32],
            signed: "checkpoint-b".into(),
            verified: true,
            ..first.clone()
        },
    )
    .unwrap();
    let held = replica::checkpoints(&mut conn).unwrap();
    assert_eq!(
        held,
        vec![ReplicaCheckpointRow {
            verified: true,
            ..first
        }]
    );

    let id = lading_store::incidents::open(
        &mut conn,
        None,
        "conflicting_checkpoints",
        "two checkpoints of size 2",
        &serde_json::json!({"first": "checkpoint-a", "second": "checkpoint-b"}),
    )
    .unwrap();
    let open = lading_store::incidents::open_incidents(&mut conn, None).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, id);
    assert_eq!(open[0].evidence["second"], "checkpoint-b");
}

/// A row whose payload really hashes to its leaf.
fn honest_row(idx: i64, signed: Option<&str>) -> lading_store::replica::ReplicaEntryRow {
    let leaf = match signed {
        Some(s) => lading_domain::merkle::leaf_hash(s.as_bytes()).0.to_vec(),
        None => lading_store_test_digest(idx),
    };
    lading_store::replica::ReplicaEntryRow {
        leaf_hash: leaf,
        ..replica_row(idx, signed)
    }
}

#[test]
fn held_leaves_show_rows_changed_by_hand_and_repairs_put_them_back() {
    use diesel::RunQueryDsl;
    use lading_store::replica;
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    let rows: Vec<_> = (0..10)
        .map(|i| honest_row(i, (i % 2 == 0).then(|| format!("jws-{i}")).as_deref()))
        .collect();
    replica::append(&mut conn, &rows).unwrap();
    let as_held = |conn: &mut PgConnection| replica::held_leaves(conn, 10, 4).unwrap();
    let originals: Vec<[u8; 32]> = rows
        .iter()
        .map(|r| r.leaf_hash.clone().try_into().unwrap())
        .collect();
    assert_eq!(as_held(&mut conn), originals);

    // Changed payload, changed leaf of a hash-only row, a deleted row.
    diesel::sql_query("UPDATE replica_entries SET signed = 'forged' WHERE idx = 2")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "UPDATE replica_entries SET leaf_hash = decode(repeat('ab', 32), 'hex') WHERE idx = 5",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("DELETE FROM replica_entries WHERE idx = 7")
        .execute(&mut conn)
        .unwrap();
    let held = as_held(&mut conn);
    assert_eq!(
        held[2], [0xff; 32],
        "a payload that no longer hashes to its leaf"
    );
    assert_eq!(held[5], [0xab; 32]);
    assert_eq!(held[7], [0; 32], "a missing row");
    let changed: Vec<usize> = (0..10).filter(|i| held[*i] != originals[*i]).collect();
    assert_eq!(changed, vec![2, 5, 7]);
    // Only the first entries asked for.
    assert_eq!(replica::held_leaves(&mut conn, 3, 4).unwrap(), held[..3]);

    let evidence = replica::rows_at(&mut conn, &[2, 5, 7]).unwrap();
    assert_eq!(evidence.len(), 2);
    assert_eq!(evidence[0].signed.as_deref(), Some(&b"forged"[..]));
    replica::repair(
        &mut conn,
        &[rows[2].clone(), rows[5].clone(), rows[7].clone()],
    )
    .unwrap();
    assert_eq!(as_held(&mut conn), originals);

    // Rows the registry never signed come out as evidence.
    replica::append(&mut conn, &[honest_row(10, None), honest_row(11, None)]).unwrap();
    let discarded = replica::discard_from(&mut conn, 10).unwrap();
    assert_eq!(discarded.len(), 2);
    assert_eq!(replica::size(&mut conn).unwrap(), 10);
    assert_eq!(
        replica::document_entries(&mut conn, "BL-1", 10)
            .unwrap()
            .len(),
        5
    );
    // Rows at or above what the caller verified are not read.
    assert!(
        replica::document_entries(&mut conn, "BL-1", 4)
            .unwrap()
            .len()
            < 5
    );
}

#[test]
fn the_outbox_keeps_submissions_in_order_with_their_answers() {
    use lading_store::outbox;
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    let a = outbox::take(&mut conn, "transition", "jws-a", &[1; 32], Some("BL-1")).unwrap();
    let b = outbox::take(&mut conn, "transition", "jws-b", &[2; 32], Some("BL-1")).unwrap();
    // The same submission again is the same row.
    assert_eq!(
        outbox::take(&mut conn, "transition", "jws-a", &[1; 32], Some("BL-1")).unwrap(),
        a
    );
    assert!(a.seq < b.seq);
    assert_eq!(a.state, "pending");
    let pending: Vec<i64> = outbox::pending(&mut conn, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(pending, vec![a.seq, b.seq]);

    outbox::answer(&mut conn, a.seq, true, &serde_json::json!({"index": 4})).unwrap();
    outbox::answer(
        &mut conn,
        b.seq,
        false,
        &serde_json::json!({"code": "stale_previous"}),
    )
    .unwrap();
    // An answer is kept once: a second one does not overwrite it.
    outbox::answer(&mut conn, b.seq, true, &serde_json::json!({"index": 5})).unwrap();
    assert!(outbox::pending(&mut conn, 10).unwrap().is_empty());
    let b = outbox::get(&mut conn, b.seq).unwrap().unwrap();
    assert_eq!(b.state, "refused");
    assert_eq!(b.answer.unwrap()["code"], "stale_previous");
    assert_eq!(
        outbox::counts(&mut conn).unwrap(),
        outbox::OutboxCounts {
            sequenced: 1,
            refused: 1,
            ..Default::default()
        }
    );
    assert_eq!(outbox::list(&mut conn, 0, 10).unwrap().len(), 2);
}

#[test]
fn a_parked_submission_keeps_its_reason_and_requeues_with_those_behind_it() {
    use lading_store::outbox;
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    let take = |conn: &mut _, n: u8, doc: Option<&str>| {
        outbox::take(conn, "event", &format!("jws-{n}"), &[n; 32], doc).unwrap()
    };
    let a = take(&mut conn, 1, Some("BL-1"));
    let b = take(&mut conn, 2, Some("BL-2"));
    let c = take(&mut conn, 3, Some("BL-1"));
    let d = take(&mut conn, 4, None);

    // Failures are counted; the first one's time is kept.
    let since = outbox::failed(&mut conn, a.seq).unwrap();
    assert_eq!(outbox::failed(&mut conn, a.seq).unwrap(), since);
    assert_eq!(outbox::get(&mut conn, a.seq).unwrap().unwrap().attempts, 2);

    let why = serde_json::json!({"code": "parked", "status": 503});
    outbox::park(&mut conn, a.seq, &why).unwrap();
    outbox::park(&mut conn, c.seq, &serde_json::json!({"behind": a.seq})).unwrap();
    // Parking is for pending submissions only: an answered one keeps its answer.
    outbox::answer(&mut conn, b.seq, true, &serde_json::json!({"index": 1})).unwrap();
    outbox::park(&mut conn, b.seq, &why).unwrap();
    assert_eq!(
        outbox::get(&mut conn, b.seq).unwrap().unwrap().state,
        "sequenced"
    );

    let pending: Vec<i64> = outbox::pending(&mut conn, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(pending, vec![d.seq], "the queue moves on past the parked");
    assert_eq!(
        outbox::parked_before(&mut conn, &["BL-1", "BL-2"]).unwrap(),
        vec![("BL-1".to_owned(), a.seq)]
    );
    assert_eq!(outbox::counts(&mut conn).unwrap().parked, 2);
    let parked = outbox::get(&mut conn, a.seq).unwrap().unwrap();
    assert_eq!(parked.answer.unwrap(), why);

    // Only a parked submission is requeued, and those of its document behind it come along.
    assert_eq!(
        outbox::requeue(&mut conn, d.seq).unwrap(),
        outbox::Requeued::NotParked
    );
    assert_eq!(
        outbox::requeue(&mut conn, 9_999).unwrap(),
        outbox::Requeued::Unknown
    );
    let outbox::Requeued::Done(again) = outbox::requeue(&mut conn, a.seq).unwrap() else {
        panic!("a parked submission is requeued");
    };
    assert_eq!((again.state.as_str(), again.attempts), ("pending", 0));
    assert!(again.answer.is_none() && again.failing_since.is_none());
    let pending: Vec<i64> = outbox::pending(&mut conn, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(pending, vec![a.seq, c.seq, d.seq]);
}

#[test]
fn reconciliations_and_incidents_are_kept_per_replica() {
    use lading_store::{incidents, reconciliations};
    let db = TestDatabase::new().unwrap();
    let mut conn = db.connection().unwrap();
    let row = |outcome: &str| reconciliations::NewReconciliation {
        party: "shipper-a".into(),
        started_at: chrono::Utc::now(),
        registry_size: 10,
        replica_size: Some(8),
        replica_root: Some(vec![3; 32]),
        outcome: outcome.into(),
        differences: 0,
        hash_bytes: 0,
        round_trips: 1,
        report: serde_json::json!({}),
    };
    reconciliations::record(&mut conn, &row("behind")).unwrap();
    reconciliations::record(&mut conn, &row("agree")).unwrap();
    assert_eq!(
        reconciliations::last(&mut conn, "shipper-a")
            .unwrap()
            .unwrap()
            .outcome,
        "agree"
    );
    assert!(reconciliations::last(&mut conn, "carrier-b")
        .unwrap()
        .is_none());

    incidents::open(
        &mut conn,
        Some("shipper-a"),
        "replica_behind",
        "2 behind",
        &serde_json::json!({}),
    )
    .unwrap();
    incidents::open(
        &mut conn,
        Some("carrier-b"),
        "replica_altered_entries",
        "1 altered",
        &serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(
        incidents::open_incidents(&mut conn, Some("shipper-a"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(incidents::open_incidents(&mut conn, None).unwrap().len(), 2);
    assert_eq!(
        incidents::close(&mut conn, Some("shipper-a"), "replica_behind").unwrap(),
        1
    );
    assert!(incidents::open_incidents(&mut conn, Some("shipper-a"))
        .unwrap()
        .is_empty());
}
