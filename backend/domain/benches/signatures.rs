//! Ed25519 verification as the registry does it: one at a time, and in batches signed by a
//! handful of parties (the shape of real traffic: many signatures, few keys).

// Setup failures should stop the bench loudly; they are not error paths of the library.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::Signer;
use lading_domain::ed25519::{verify, verify_batch, Item};

/// Signers, messages (about the size of a signed transition) and signatures.
fn corpus(count: usize, keys: usize) -> Vec<(ed25519_dalek::VerifyingKey, Vec<u8>, [u8; 64])> {
    let signers: Vec<ed25519_dalek::SigningKey> = (0..keys)
        .map(|k| ed25519_dalek::SigningKey::from_bytes(&[k as u8 + 1; 32]))
        .collect();
    (0..count)
        .map(|i| {
            let signer = &signers[i % keys];
            let message = format!("{i:0>900}").into_bytes();
            let signature = signer.sign(&message).to_bytes();
            (signer.verifying_key(), message, signature)
        })
        .collect()
}

fn items(corpus: &[(ed25519_dalek::VerifyingKey, Vec<u8>, [u8; 64])]) -> Vec<Item<'_>> {
    corpus
        .iter()
        .map(|(key, message, signature)| Item {
            key,
            message,
            signature,
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519");
    let one = corpus(1, 1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify one", |b| {
        b.iter(|| assert!(verify(black_box(&items(&one)[0]))))
    });
    for (size, keys) in [(64, 6), (256, 6), (512, 6), (1024, 6), (64, 64)] {
        let corpus = corpus(size, keys);
        let items = items(&corpus);
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(
            BenchmarkId::new("verify batch", format!("{size} signatures, {keys} keys")),
            &items,
            |b, items| b.iter(|| assert!(verify_batch(black_box(items)))),
        );
    }
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
