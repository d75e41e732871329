//! The replica's store on a real PostgreSQL: its sessions commit durably whatever the
//! database's default, because a replica answers `202 Accepted` for a submission once it is
//! kept, and keeps what it checked as the record it shows after a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use diesel::prelude::*;
use lading_domain::follow::Follower;
use lading_replica::node::{open_store, Node, NodeError, NodeSettings};
use lading_replica::FeedClient;
use lading_store::testing::TestDatabase;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A node for `store`, following a registry that is never asked.
fn node(store: lading_store::Store) -> Result<Node, NodeError> {
    let dir = tempfile::tempdir().unwrap();
    let ca = lading_pki::Ca::create(&dir.path().join("ca"), "test CA").unwrap();
    let party = ca
        .issue_party(&"shipper-acme".parse().unwrap(), &[])
        .unwrap();
    let client = FeedClient::new(
        "https://127.0.0.1:1",
        ca.cert_pem().as_bytes(),
        party.cert_pem.as_bytes(),
        party.key_pem.as_bytes(),
    )
    .unwrap();
    let parties = std::fs::read_to_string(fixtures().join("parties.json")).unwrap();
    let genesis = lading_replica::genesis(&parties).unwrap();
    let key: lading_domain::jws::Jwk = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("keys/registry.jwk")).unwrap(),
    )
    .unwrap();
    let key = key.verifying_key().unwrap();
    Node::start(
        NodeSettings {
            party: "shipper-acme".parse().unwrap(),
            registry: "https://127.0.0.1:1".into(),
            page_size: 100,
            poll_interval: Duration::from_secs(1),
            park_after: Duration::from_secs(60),
            subscriptions_interval: Duration::ZERO,
        },
        store,
        client,
        move || {
            Follower::new(
                lading_domain::merkle::BLOCK_SIZE,
                key.clone(),
                genesis.clone(),
            )
            .unwrap()
        },
    )
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

fn synchronous_commit(conn: &mut PgConnection) -> String {
    diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
        .get_result::<Setting>(conn)
        .unwrap()
        .value
}

#[test]
fn every_session_of_a_replica_commits_durably_whatever_the_databases_default() {
    let db = TestDatabase::new().unwrap();
    let mut admin = db.connection().unwrap();
    diesel::sql_query(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', \
         current_database()); END $$",
    )
    .execute(&mut admin)
    .unwrap();
    // The database's default, as any session of it sees it.
    let plain = db.store(1).unwrap();
    assert_eq!(synchronous_commit(&mut plain.conn().unwrap()), "off");

    let node = node(open_store(db.url(), 4).unwrap()).unwrap();
    // Every connection of the pool at once: four sessions, each opened by the pool.
    let mut sessions: Vec<_> = (0..4).map(|_| node.store().conn().unwrap()).collect();
    for conn in &mut sessions {
        assert_eq!(synchronous_commit(conn), "on");
    }
    drop(sessions);
    // A store with the database's defaults is not a replica's.
    assert!(matches!(node_of_plain(&db), Err(NodeError::NotDurable)));
}

fn node_of_plain(db: &TestDatabase) -> Result<Node, NodeError> {
    node(db.store(2).unwrap())
}
