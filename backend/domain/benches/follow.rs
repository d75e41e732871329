//! What a replica spends judging the feed (`lading_domain::follow`), per entry: every entry in
//! full (a party entitled to everything, the worst case), ISSUE + TRANSFER chains. Checking
//! one by one against a page whose signatures are checked in one batch; parsing is on one
//! thread here (the replica spreads it over its cores).

// Setup failures should stop the bench loudly; they are not error paths of the library.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lading_domain::document::{sample_json, TransportDocument};
use lading_domain::follow::{FeedEntry, Follower};
use lading_domain::jws::{Jwk, SigningKey};
use lading_domain::membership::Membership;
use lading_domain::merkle::{leaf_hash, BLOCK_SIZE};
use lading_domain::party::PartyRegistryFile;
use lading_domain::transition::{Action, TransitionDraft, TransitionPayload};
use lading_domain::Digest;

const DOCUMENTS: usize = 500;

fn key(kid: &str) -> SigningKey {
    Jwk::generate(kid.parse().expect("kid"), true)
        .signing_key()
        .expect("key")
}

fn feed(carrier: &SigningKey, shipper: &SigningKey) -> Vec<FeedEntry> {
    let mut signed = Vec::new();
    for n in 0..DOCUMENTS {
        let mut json = sample_json();
        json["transportDocumentReference"] = format!("OCNL{n:010}").into();
        let document = TransportDocument::from_json(&json).expect("document");
        let issue = TransitionPayload::issue(
            document,
            "carrier-oceanic".parse().expect("party"),
            "shipper-acme".parse().expect("party"),
            "2026-11-02T08:00:00.000Z".parse().expect("time"),
        )
        .expect("issue");
        let issue_jws = issue.sign(carrier);
        let transfer = TransitionPayload::new(TransitionDraft {
            previous_transition_checksum: Some(Digest::of(issue_jws.as_bytes())),
            action: Action::Transfer,
            actor: "shipper-acme".parse().expect("party"),
            recipient: Some("consignee-globex".parse().expect("party")),
            transport_document: None,
            ..issue.into_draft()
        })
        .expect("transfer")
        .sign(shipper);
        signed.push(issue_jws);
        signed.push(transfer);
    }
    signed
        .into_iter()
        .enumerate()
        .map(|(index, jws)| FeedEntry {
            index: index as u64,
            leaf_hash: leaf_hash(jws.as_bytes()),
            signed: Some(jws),
        })
        .collect()
}

fn follow(c: &mut Criterion) {
    let carrier = key("carrier-oceanic#1");
    let shipper = key("shipper-acme#1");
    let registry = key("registry#1");
    let genesis = serde_json::json!({"parties": [
        {"id": "carrier-oceanic", "name": "Oceanic", "role": "carrier",
         "keys": [Jwk::from_signing_key(&carrier, true).to_public()]},
        {"id": "shipper-acme", "name": "Acme", "role": "shipper",
         "keys": [Jwk::from_signing_key(&shipper, true).to_public()]},
    ]});
    let keys =
        Membership::genesis(&PartyRegistryFile::parse(&genesis.to_string()).expect("genesis"))
            .expect("genesis");
    let entries = feed(&carrier, &shipper);
    let fresh =
        || Follower::new(BLOCK_SIZE, registry.verifying_key(), keys.clone()).expect("follower");

    let mut group = c.benchmark_group("follow");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("accept one by one", |b| {
        b.iter_batched(
            fresh,
            |mut follower| {
                for entry in &entries {
                    follower.accept(entry).expect("accepted");
                }
                follower
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("prepare + accept_page (pages of 1000)", |b| {
        b.iter_batched(
            fresh,
            |mut follower| {
                for page in entries.chunks(1000) {
                    let prepared: Vec<_> = page
                        .iter()
                        .map(|e| follower.prepare(e).expect("prepared"))
                        .collect();
                    follower.accept_page(&prepared).expect("accepted");
                }
                follower
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, follow);
criterion_main!(benches);
