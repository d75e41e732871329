//! What the registry's integration tests share: a registry on a throwaway database with the
//! test parties and their keys, and signed transitions to feed it.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::time::Duration;

use chrono::Utc;
use lading_domain::document::{sample_json, TransportDocument};
use lading_domain::ids::{PartyId, Timestamp};
use lading_domain::jws::{Jwk, SigningKey};
use lading_domain::state::DocumentState;
use lading_domain::transition::{Action, TransitionPayload};
use lading_registry::{Registry, RegistryConfig, RegistryError};
use lading_store::models::{PartyKeyRow, PartyRow};
use lading_store::testing::TestDatabase;
use lading_store::PgConnection;

/// Fields drop in order: the registry stops before its database goes.
pub struct World {
    pub registry: Registry,
    pub db: TestDatabase,
    pub carrier: SigningKey,
    pub shipper: SigningKey,
    pub consignee: SigningKey,
    /// Every party's key, by party id.
    pub keys: Vec<(String, SigningKey)>,
    pub registry_key: Jwk,
}

pub const PARTIES: &[(&str, &str, &[&str])] = &[
    ("carrier-oceanic", "carrier", &[]),
    ("shipper-acme", "shipper", &[]),
    ("consignee-globex", "consignee", &[]),
    ("bank-north", "bank", &[]),
    ("customs-sg", "customs_authority", &["SGSIN"]),
];

pub fn config() -> RegistryConfig {
    RegistryConfig {
        block_size: 4,
        checkpoint_interval: Duration::from_millis(20),
        // The statements here are dated like the fixtures (2026-11), not now.
        max_clock_skew: Duration::from_secs(100 * 365 * 24 * 3600),
        ..RegistryConfig::default()
    }
}

pub fn world() -> World {
    world_with(config())
}

pub fn world_with(config: RegistryConfig) -> World {
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
        signers.push(((*id).to_owned(), jwk.signing_key().unwrap()));
    }
    drop(conn);
    let registry_key = Jwk::generate("registry#k1".parse().unwrap(), true);
    let registry = Registry::start(store, registry_key.signing_key().unwrap(), config).unwrap();
    let key = |n: usize| signers[n].1.clone();
    World {
        db,
        registry,
        carrier: key(0),
        shipper: key(1),
        consignee: key(2),
        keys: signers,
        registry_key,
    }
}

impl World {
    /// Starts another registry on the same database (the first one stopped).
    pub fn restart(&self, config: RegistryConfig) -> Result<Registry, RegistryError> {
        Registry::start(
            self.db.store(4).unwrap(),
            self.registry_key.signing_key().unwrap(),
            config,
        )
    }

    pub fn conn(&self) -> PgConnection {
        self.db.connection().unwrap()
    }
}

pub fn party(id: &str) -> PartyId {
    id.parse().unwrap()
}

pub fn document(reference: &str) -> TransportDocument {
    let mut json = sample_json();
    json["transportDocumentReference"] = reference.into();
    TransportDocument::from_json(&json).unwrap()
}

pub fn time(n: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_000_000_000 + n * 1000).unwrap()
}

/// A signed ISSUE (carrier to shipper) and the state it creates.
pub fn issue(w: &World, reference: &str) -> (String, DocumentState) {
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

pub fn next(
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

pub fn size(w: &World) -> u64 {
    lading_store::ledger::ledger_size(&mut w.conn()).unwrap()
}
