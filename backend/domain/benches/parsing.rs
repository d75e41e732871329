//! Parsing a signed transition as the registry does for every submission: the JWS envelope,
//! the typed payload and the proof that the payload bytes are canonical.

// Setup failures should stop the bench loudly; they are not error paths of the library.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use lading_domain::document::{sample_json, TransportDocument};
use lading_domain::jws::Jwk;
use lading_domain::transition::{Action, SignedTransition, TransitionDraft, TransitionPayload};

fn parsing(c: &mut Criterion) {
    let key = Jwk::generate("carrier-oceanic:bench".parse().expect("kid"), true)
        .signing_key()
        .expect("key");
    let document = TransportDocument::from_json(&sample_json()).expect("document");
    let issue = TransitionPayload::issue(
        document,
        "carrier-oceanic".parse().expect("party"),
        "shipper-acme".parse().expect("party"),
        "2026-11-02T08:00:00.000Z".parse().expect("time"),
    )
    .expect("issue");
    let transfer = TransitionPayload::new(TransitionDraft {
        previous_transition_checksum: Some(
            SignedTransition::parse(&issue.sign(&key))
                .expect("issue")
                .checksum(),
        ),
        action: Action::Transfer,
        actor: "shipper-acme".parse().expect("party"),
        recipient: Some("forwarder-swift".parse().expect("party")),
        transport_document: None,
        ..issue.clone().into_draft()
    })
    .expect("transfer")
    .sign(&key);
    let issue = issue.sign(&key);
    c.bench_function("parse a signed ISSUE", |b| {
        b.iter(|| SignedTransition::parse(black_box(&issue)).expect("parses"))
    });
    c.bench_function("parse a signed TRANSFER", |b| {
        b.iter(|| SignedTransition::parse(black_box(&transfer)).expect("parses"))
    });
}

criterion_group!(benches, parsing);
criterion_main!(benches);
