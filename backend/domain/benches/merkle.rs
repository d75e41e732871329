//! Merkle costs at the scale of a 10,000,000-entry ledger (block size 1024: 9,765 sealed blocks
//! and an open block of 640 leaves).
//!
//! Sealed block roots are synthesised (hashing 10M leaves would only slow the setup down), except
//! for the block the proof benches use, whose root is the real root of its leaves.

// Setup failures should stop the bench loudly; they are not error paths of the library.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lading_domain::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, BlockTree, CheckpointTree, LedgerTree,
    BLOCK_SIZE,
};
use lading_domain::Digest;

const ENTRIES: u64 = 10_000_000;
const PROVED_BLOCK: u64 = 5_000;
const PROVED_INDEX: u64 = PROVED_BLOCK * BLOCK_SIZE + 123;

fn entry(i: u64) -> Digest {
    leaf_hash(format!("entry-{i}").as_bytes())
}

fn block_leaves(block: u64, count: u64) -> Vec<Digest> {
    (block * BLOCK_SIZE..block * BLOCK_SIZE + count)
        .map(entry)
        .collect()
}

struct Scale {
    ledger: LedgerTree,
    checkpoint: CheckpointTree,
    proved_block: BlockTree,
}

fn ten_million() -> Scale {
    let sealed = ENTRIES / BLOCK_SIZE;
    let open = ENTRIES % BLOCK_SIZE;
    let proved_block =
        BlockTree::build(&block_leaves(PROVED_BLOCK, BLOCK_SIZE)).expect("a full block");
    let roots: Vec<Digest> = (0..sealed)
        .map(|k| {
            if k == PROVED_BLOCK {
                proved_block.root()
            } else {
                Digest::of(&k.to_be_bytes())
            }
        })
        .collect();
    let ledger =
        LedgerTree::restore(BLOCK_SIZE, roots, block_leaves(sealed, open)).expect("a valid ledger");
    assert_eq!(ledger.size(), ENTRIES);
    assert_eq!(ledger.sealed_roots().len(), 9_765);
    assert_eq!(ledger.open_leaves().len(), 640);
    let checkpoint = ledger.checkpoint_tree();
    Scale {
        ledger,
        checkpoint,
        proved_block,
    }
}

fn benches(c: &mut Criterion) {
    let scale = ten_million();
    let root = scale.ledger.root();

    c.bench_function("proof generation (10M entries, in-memory trees)", |b| {
        b.iter(|| {
            scale
                .checkpoint
                .prove(black_box(PROVED_INDEX), &scale.proved_block)
                .expect("proof")
        })
    });

    c.bench_function("checkpoint root over 10,000,000 entries", |b| {
        b.iter(|| black_box(&scale.ledger).root())
    });

    c.bench_function("checkpoint tree over 10,000,000 entries", |b| {
        b.iter(|| black_box(&scale.ledger).checkpoint_tree())
    });

    let full_block = block_leaves(0, BLOCK_SIZE);
    let (last, first) = full_block.split_last().expect("a full block");
    let almost_full =
        LedgerTree::restore(BLOCK_SIZE, Vec::new(), first.to_vec()).expect("an open block");
    c.bench_function(
        "seal one block of 1,024 leaves (push of the last leaf)",
        |b| {
            b.iter_batched_ref(
                || almost_full.clone(),
                |ledger| ledger.push(black_box(*last)).expect("the block seals"),
                BatchSize::SmallInput,
            )
        },
    );

    c.bench_function("block tree of 1,024 leaves", |b| {
        b.iter(|| BlockTree::build(black_box(&full_block)).expect("a full block"))
    });

    let proof = scale
        .checkpoint
        .prove(PROVED_INDEX, &scale.proved_block)
        .expect("proof");
    let leaf = entry(PROVED_INDEX);
    verify_inclusion(&proof, leaf, root).expect("the proof verifies");
    c.bench_function("verify one proof (10M entries)", |b| {
        b.iter(|| verify_inclusion(black_box(&proof), black_box(leaf), black_box(root)))
    });
}

/// A consistency proof between checkpoints of 500,123 and 1,000,000 entries: the old size cuts
/// a block, so the proof carries the new ledger's 976 other block roots and one block of leaves.
fn consistency(c: &mut Criterion) {
    const OLD: u64 = 500_123;
    const NEW: u64 = 1_000_000;
    let split = OLD / BLOCK_SIZE;
    let split_block = BlockTree::build(&block_leaves(split, BLOCK_SIZE)).expect("a full block");
    let roots: Vec<Digest> = (0..NEW / BLOCK_SIZE)
        .map(|k| {
            if k == split {
                split_block.root()
            } else {
                Digest::of(&k.to_be_bytes())
            }
        })
        .collect();
    let open = NEW % BLOCK_SIZE;
    let ledger = LedgerTree::restore(
        BLOCK_SIZE,
        roots.clone(),
        block_leaves(NEW / BLOCK_SIZE, open),
    )
    .expect("a valid ledger");
    let new = ledger.checkpoint_tree();
    let mut old_roots = roots[..split as usize].to_vec();
    old_roots.push(
        BlockTree::build(&block_leaves(split, OLD % BLOCK_SIZE))
            .expect("the open block")
            .root(),
    );
    let old = CheckpointTree::from_block_roots(BLOCK_SIZE, OLD, &old_roots).expect("old tree");
    c.bench_function(
        "consistency proof generation (500,123 -> 1M entries)",
        |b| {
            b.iter(|| {
                new.prove_consistency(black_box(OLD), Some(&split_block))
                    .expect("proof")
            })
        },
    );
    let proof = new
        .prove_consistency(OLD, Some(&split_block))
        .expect("proof");
    let bytes = serde_json::to_vec(&proof).expect("json").len();
    eprintln!(
        "consistency proof 500,123 -> 1M: {} block roots, {} leaves, {bytes} bytes of JSON",
        proof.block_roots.len(),
        proof.leaves.len()
    );
    verify_consistency(&proof, OLD, old.root(), NEW, new.root(), 1024).expect("it verifies");
    c.bench_function("verify a consistency proof (500,123 -> 1M entries)", |b| {
        b.iter(|| {
            verify_consistency(
                black_box(&proof),
                OLD,
                black_box(old.root()),
                NEW,
                black_box(new.root()),
                1024,
            )
        })
    });
}

criterion_group!(merkle, benches, consistency);
criterion_main!(merkle);
