//! The registry's own state and the sequencer's race paths, against a real PostgreSQL: the
//! block size and the checkpoints a restart must agree with, what is published, readiness,
//! backpressure, and what happens to batches drafted on top of one in flight.
//!
//! A batch is held "in flight" by a test that locks `ledger_head` (the writer's first write):
//! the writer waits for the lock with the batch, while the drafter drafts the next one on top.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use lading_domain::checkpoint::Checkpoint;
use lading_domain::document::{sample_json, TransportDocument};
use lading_domain::ids::{PartyId, Timestamp};
use lading_domain::jws::{Jwk, SigningKey};
use lading_domain::merkle::{leaf_hash, LedgerTree};
use lading_domain::state::DocumentState;
use lading_domain::transition::{Action, TransitionPayload};
use lading_registry::{
    Expect, PublishedCheckpoint, Receipt, Refusal, Registry, RegistryConfig, RegistryError,
};
use lading_store::models::{CheckpointRow, PartyKeyRow, PartyRow};
use lading_store::testing::TestDatabase;
use lading_store::PgConnection;

/// Fields drop in order: the registry stops before its database goes.
struct World {
    registry: Registry,
    db: TestDatabase,
    carrier: SigningKey,
    shipper: SigningKey,
    consignee: SigningKey,
    registry_key: Jwk,
}

const PARTIES: &[(&str, &str, &[&str])] = &[
    ("carrier-oceanic", "carrier", &[]),
    ("shipper-acme", "shipper", &[]),
    ("consignee-globex", "consignee", &[]),
    ("bank-north", "bank", &[]),
    ("customs-sg", "customs_authority", &["SGSIN"]),
];

fn config() -> RegistryConfig {
    RegistryConfig {
        block_size: 4,
        checkpoint_interval: Duration::from_millis(20),
        // The statements here are dated like the fixtures (2026-11), not now.
        max_clock_skew: Duration::from_secs(100 * 365 * 24 * 3600),
        ..RegistryConfig::default()
    }
}

fn world() -> World {
    world_with(config())
}

fn world_with(config: RegistryConfig) -> World {
    let db = TestDatabase::new().unwrap();
    let store = db.store(4).unwrap();
    let mut conn = store.conn().unwrap();
    let mut signers = Vec::new();
    for (id, role, ports) in PARTIES {
        lading_store::parties::upsert_party(
            &mut conn,
            &PartyRow {
                id: (*id).into(),
                name: format!("{id} (TEST)"),
                role: (*role).into(),
                ports: ports.iter().map(|p| Some(p.to_string())).collect(),
                token_sha256: None,
                created_at: Utc::now(),
                added_idx: None,
                removed_idx: None,
            },
        )
        .unwrap();
        let jwk = Jwk::generate(format!("{id}#k1").parse().unwrap(), true);
        lading_store::parties::add_key(
            &mut conn,
            &PartyKeyRow {
                kid: jwk.kid().to_string(),
                party_id: (*id).into(),
                public_key: jwk.public_key_bytes().to_vec(),
                created_at: Utc::now(),
                revoked_at: None,
                added_idx: None,
                revoked_idx: None,
            },
        )
        .unwrap();
        signers.push(jwk.signing_key().unwrap());
    }
    drop(conn);
    let registry_key = Jwk::generate("registry#k1".parse().unwrap(), true);
    let registry = Registry::start(store, registry_key.signing_key().unwrap(), config).unwrap();
    let mut signers = signers.into_iter();
    World {
        db,
        registry,
        carrier: signers.next().unwrap(),
        shipper: signers.next().unwrap(),
        consignee: signers.next().unwrap(),
        registry_key,
    }
}

impl World {
    /// Starts another registry on the same database (the first one stopped).
    fn restart(&self, config: RegistryConfig) -> Result<Registry, RegistryError> {
        Registry::start(
            self.db.store(4).unwrap(),
            self.registry_key.signing_key().unwrap(),
            config,
        )
    }

    fn conn(&self) -> PgConnection {
        self.db.connection().unwrap()
    }
}

fn party(id: &str) -> PartyId {
    id.parse().unwrap()
}

fn document(reference: &str) -> TransportDocument {
    let mut json = sample_json();
    json["transportDocumentReference"] = reference.into();
    TransportDocument::from_json(&json).unwrap()
}

fn time(n: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_000_000_000 + n * 1000).unwrap()
}

/// A signed ISSUE (carrier to shipper) and the state it creates.
fn issue(w: &World, reference: &str) -> (String, DocumentState) {
    let payload = TransitionPayload::issue(
        document(reference),
        party("carrier-oceanic"),
        party("shipper-acme"),
        time(0),
    )
    .unwrap();
    let jws = payload.sign(&w.carrier);
    let checksum = lading_domain::Digest::of(jws.as_bytes());
    (jws, DocumentState::issue(&payload, checksum).unwrap())
}

fn next(
    state: &DocumentState,
    key: &SigningKey,
    action: Action,
    actor: &str,
    recipient: Option<&str>,
    t: i64,
) -> (String, DocumentState) {
    let draft = state.draft(action, party(actor), recipient.map(party), time(t));
    let payload = TransitionPayload::new(draft).unwrap();
    let jws = payload.sign(key);
    let after = state
        .apply(&payload, lading_domain::Digest::of(jws.as_bytes()))
        .unwrap();
    (jws, after)
}

async fn submit(registry: &Registry, jws: &str) -> Result<Receipt, Refusal> {
    registry
        .submit_one(jws.to_owned(), Expect::Transition)
        .await
}

fn size(w: &World) -> u64 {
    lading_store::ledger::ledger_size(&mut w.conn()).unwrap()
}

async fn wait_for_checkpoint(registry: &Registry, size: u64) -> PublishedCheckpoint {
    for _ in 0..1000 {
        if let Some(c) = registry
            .latest_checkpoint()
            .filter(|c| c.checkpoint.size == size)
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no checkpoint of size {size} was signed");
}

/// Runs `sql` as the superuser with the append-only triggers off: an attacker (or an accident)
/// with the database's own rights.
fn behind_the_registrys_back(w: &World, sql: &str) {
    let mut conn = w.conn();
    diesel::sql_query("SET session_replication_role = replica")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(sql).execute(&mut conn).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The registry's own state

#[tokio::test]
async fn a_ledger_keeps_the_block_size_it_began_with() {
    let w = world();
    for i in 0..3 {
        submit(&w.registry, &issue(&w, &format!("BL-BS-{i}")).0)
            .await
            .unwrap();
    }
    wait_for_checkpoint(&w.registry, 3).await;
    w.registry.shutdown();

    // Three entries fit in one open block of 4 or of 8 alike: nothing else would notice, and
    // the registry would go on to sign roots that match neither tree.
    let err = w
        .restart(RegistryConfig {
            block_size: 8,
            ..config()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::BlockSize {
                stored: 4,
                configured: 8
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("registry.block_size = 4"), "{err}");

    // With its own block size it carries on.
    let registry = w.restart(config()).unwrap();
    let receipt = submit(&registry, &issue(&w, "BL-BS-3").0).await.unwrap();
    assert_eq!(receipt.index, 3);
    registry.shutdown();
}

#[tokio::test]
async fn a_registry_does_not_start_on_a_ledger_its_latest_checkpoint_does_not_match() {
    let w = world();
    let mut leaves = Vec::new();
    for i in 0..7 {
        let (jws, _) = issue(&w, &format!("BL-TAMPER-{i}"));
        submit(&w.registry, &jws).await.unwrap();
        leaves.push(leaf_hash(jws.as_bytes()));
    }
    let signed = wait_for_checkpoint(&w.registry, 7).await;
    w.registry.shutdown();

    // An entry of the open block altered behind the registry's back.
    behind_the_registrys_back(
        &w,
        "UPDATE ledger_entries SET leaf_hash = sha256(leaf_hash) WHERE idx = 5",
    );
    let err = w.restart(config()).unwrap_err();
    assert!(matches!(err, RegistryError::Inconsistent(_)), "{err}");
    assert!(
        err.to_string().contains(&signed.checkpoint.root.to_hex()),
        "names the signed root: {err}"
    );

    // Put back, it starts again.
    behind_the_registrys_back(
        &w,
        &format!(
            "UPDATE ledger_entries SET leaf_hash = '\\x{}' WHERE idx = 5",
            leaves[5].to_hex()
        ),
    );
    w.restart(config()).unwrap().shutdown();

    // A checkpoint that covers entries the database does not hold.
    let beyond = Checkpoint {
        size: 9,
        root: signed.checkpoint.root,
        time: time(0),
        block_size: 4,
    };
    lading_store::ledger::insert_checkpoint(
        &mut w.conn(),
        &CheckpointRow {
            size: 9,
            root: beyond.root.0.to_vec(),
            block_size: 4,
            signed: beyond.sign(&w.registry_key.signing_key().unwrap()),
            created_at: Utc::now(),
        },
    )
    .unwrap();
    let err = w.restart(config()).unwrap_err();
    assert!(matches!(err, RegistryError::Inconsistent(_)), "{err}");
    assert!(err.to_string().contains("covers 9 entries"), "{err}");
}

#[tokio::test]
async fn the_registry_publishes_the_checkpoint_it_stored() {
    let w = world();
    let items: Vec<String> = (0..3)
        .map(|i| issue(&w, &format!("BL-PUB-{i}")).0)
        .collect();
    // A checkpoint of size 3 is already stored, signed at another time — as after an attempt
    // whose answer was lost. Its root is the one the three entries make.
    let mut tree = LedgerTree::new(4).unwrap();
    for item in &items {
        tree.push(leaf_hash(item.as_bytes()));
    }
    let earlier = Checkpoint {
        size: 3,
        root: tree.root(),
        time: time(-3600),
        block_size: 4,
    };
    let earlier_signed = earlier.sign(&w.registry_key.signing_key().unwrap());
    lading_store::ledger::insert_checkpoint(
        &mut w.conn(),
        &CheckpointRow {
            size: 3,
            root: earlier.root.0.to_vec(),
            block_size: 4,
            signed: earlier_signed.clone(),
            created_at: Utc::now(),
        },
    )
    .unwrap();

    // One batch of three: the next checkpoint is of size 3.
    let answers = w.registry.submit(items, Expect::Transition).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let published = wait_for_checkpoint(&w.registry, 3).await;
    assert_eq!(
        published.signed, earlier_signed,
        "the registry shows the signature it stored, not one it never will again"
    );
    let stored = lading_store::ledger::checkpoint_at(&mut w.conn(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(stored.signed, published.signed);
}
