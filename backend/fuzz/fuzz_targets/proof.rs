//! `lading_domain::merkle::verify_inclusion` on genuine, edited and forged proofs.
//!
//! Input (`arbitrary`): a small ledger (1 to 100 entries, one of a few block sizes), an entry
//! of it, edits to that entry's genuine proof, and a wholly forged proof with its own leaf and
//! root. The ledger is built with `LedgerTree`, `CheckpointTree` and `BlockTree` (once per
//! shape, then cached); its root must equal the one the module docs define, computed here
//! independently, and every genuine proof must verify.
//!
//! Every verdict, on edited and forged proofs alike, must be the one the module docs' six steps
//! give (a second implementation below). And against the real root, a proof that keeps the
//! ledger's size and block size verifies only if it is the genuine proof of the very leaf it
//! names: no other index, leaf or lemma gets through.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;

use arbitrary::Arbitrary;
use lading_domain::digest::Digest;
use lading_domain::merkle::{
    leaf_hash, node_hash, verify_inclusion, BlockTree, InclusionProof, LedgerTree, ProofError,
    EMPTY_ROOT,
};
use libfuzzer_sys::fuzz_target;

const BLOCK_SIZES: [u64; 9] = [1, 2, 3, 4, 5, 7, 8, 16, 1024];
const MAX_LEAVES: u64 = 100;

#[derive(Debug, Arbitrary)]
struct Case {
    leaves: u8,
    block_size: u8,
    index: u8,
    edits: Vec<Edit>,
    forged: Forged,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Index(u64),
    Size(u64),
    BlockSize(u32),
    FlipLeafPath {
        at: u8,
        bit: u8,
    },
    FlipBlockPath {
        at: u8,
        bit: u8,
    },
    PushLeafPath([u8; 32]),
    PopLeafPath,
    PushBlockPath([u8; 32]),
    PopBlockPath,
    /// Moves the last leaf-path lemma to the front of the block path.
    LeafToBlockPath,
    SwapLemmas {
        a: u8,
        b: u8,
    },
    /// Claims the proof is for the ledger's leaf at this index instead.
    OtherLeaf(u8),
    LeafHash([u8; 32]),
}

#[derive(Debug, Arbitrary)]
struct Forged {
    index: u64,
    size: u64,
    block_size: u32,
    leaf_path: Vec<[u8; 32]>,
    block_path: Vec<[u8; 32]>,
    leaf: [u8; 32],
    root: [u8; 32],
}

struct Ledger {
    block_size: u64,
    leaves: Vec<Digest>,
    root: Digest,
    proofs: Vec<InclusionProof>,
}

fuzz_target!(|case: Case| {
    let forged = InclusionProof {
        index: case.forged.index,
        size: case.forged.size,
        block_size: case.forged.block_size,
        leaf_path: case.forged.leaf_path.into_iter().map(Digest).collect(),
        block_path: case.forged.block_path.into_iter().map(Digest).collect(),
    };
    let _ = judge(&forged, Digest(case.forged.leaf), Digest(case.forged.root));

    let size = 1 + u64::from(case.leaves) % MAX_LEAVES;
    let block_size = BLOCK_SIZES[usize::from(case.block_size) % BLOCK_SIZES.len()];
    with_ledger(size, block_size, |ledger| {
        let index = usize::from(case.index) % ledger.leaves.len();
        let mut proof = ledger.proofs[index].clone();
        let mut leaf = ledger.leaves[index];
        for edit in &case.edits {
            apply(edit, &mut proof, &mut leaf, ledger);
        }
        let verdict = judge(&proof, leaf, ledger.root);
        if case.edits.is_empty() {
            assert_eq!(verdict, Ok(()), "a genuine proof was refused");
        }
        let same_shape = proof.size == size && u64::from(proof.block_size) == ledger.block_size;
        if verdict.is_ok() && same_shape {
            let claimed = usize::try_from(proof.index).expect("index < size");
            assert_eq!(leaf, ledger.leaves[claimed], "a wrong leaf verified");
            assert_eq!(proof, ledger.proofs[claimed], "a wrong path verified");
        }
    });
});

fn apply(edit: &Edit, proof: &mut InclusionProof, leaf: &mut Digest, ledger: &Ledger) {
    fn flip(path: &mut [Digest], at: u8, bit: u8) {
        if let Some(lemma) = nth_mut(path, at) {
            lemma.0[usize::from(bit / 8) % 32] ^= 1 << (bit % 8);
        }
    }
    fn nth_mut(path: &mut [Digest], at: u8) -> Option<&mut Digest> {
        let len = path.len();
        (len > 0).then(|| &mut path[usize::from(at) % len])
    }
    match *edit {
        Edit::Index(i) => proof.index = i,
        Edit::Size(s) => proof.size = s,
        Edit::BlockSize(b) => proof.block_size = b,
        Edit::FlipLeafPath { at, bit } => flip(&mut proof.leaf_path, at, bit),
        Edit::FlipBlockPath { at, bit } => flip(&mut proof.block_path, at, bit),
        Edit::PushLeafPath(d) => proof.leaf_path.push(Digest(d)),
        Edit::PopLeafPath => drop(proof.leaf_path.pop()),
        Edit::PushBlockPath(d) => proof.block_path.push(Digest(d)),
        Edit::PopBlockPath => drop(proof.block_path.pop()),
        Edit::LeafToBlockPath => {
            if let Some(d) = proof.leaf_path.pop() {
                proof.block_path.insert(0, d);
            }
        }
        Edit::SwapLemmas { a, b } => {
            let mut all: Vec<Digest> = proof.leaf_path.clone();
            all.extend_from_slice(&proof.block_path);
            if !all.is_empty() {
                let len = all.len();
                all.swap(usize::from(a) % len, usize::from(b) % len);
                let split = proof.leaf_path.len();
                proof.block_path = all.split_off(split);
                proof.leaf_path = all;
            }
        }
        Edit::OtherLeaf(i) => *leaf = ledger.leaves[usize::from(i) % ledger.leaves.len()],
        Edit::LeafHash(d) => *leaf = Digest(d),
    }
}

/// `verify_inclusion`, held to the module docs' steps.
fn judge(proof: &InclusionProof, leaf: Digest, root: Digest) -> Result<(), ProofError> {
    let verdict = verify_inclusion(proof, leaf, root);
    assert_eq!(
        verdict.is_ok(),
        spec_verify(proof, leaf, root),
        "verify_inclusion says {verdict:?} of {proof:?}"
    );
    verdict
}

/// Steps 1 to 6 of "Verification" in the module docs, in 128-bit arithmetic.
fn spec_verify(proof: &InclusionProof, leaf: Digest, root: Digest) -> bool {
    let (i, s, b) = (
        u128::from(proof.index),
        u128::from(proof.size),
        u128::from(proof.block_size),
    );
    if b == 0 || i >= s {
        return false;
    }
    let (k, j, m) = (i / b, i % b, s.div_ceil(b));
    let n_k = if k < s / b { b } else { s % b };
    let depth = |n: u128, j: u128| (n + j).ilog2() as usize;
    if proof.leaf_path.len() != depth(n_k, j) || proof.block_path.len() != depth(m, k) {
        return false;
    }
    let fold = |n: u128, j: u128, start: Digest, lemmas: &[Digest]| {
        let mut p = n - 1 + j;
        let mut node = start;
        for lemma in lemmas {
            node = if p % 2 == 1 {
                node_hash(&node, lemma)
            } else {
                node_hash(lemma, &node)
            };
            p = (p - 1) / 2;
        }
        assert_eq!(p, 0, "a path of the right length ends at the root");
        node
    };
    let block_root = fold(n_k, j, leaf, &proof.leaf_path);
    fold(m, k, block_root, &proof.block_path) == root
}

/// The CBMT root of the module docs, on a plain node array.
fn spec_root(list: &[Digest]) -> Digest {
    let n = list.len();
    if n == 0 {
        return EMPTY_ROOT;
    }
    let mut t = vec![EMPTY_ROOT; 2 * n - 1];
    t[n - 1..].copy_from_slice(list);
    for i in (0..n - 1).rev() {
        t[i] = node_hash(&t[2 * i + 1], &t[2 * i + 2]);
    }
    t[0]
}

fn spec_ledger_root(leaves: &[Digest], block_size: u64) -> Digest {
    let block_size = usize::try_from(block_size).expect("small block size");
    let roots: Vec<Digest> = leaves.chunks(block_size).map(spec_root).collect();
    spec_root(&roots)
}

/// Runs `f` on the ledger of `size` entries with `block_size`, built once per shape.
fn with_ledger(size: u64, block_size: u64, f: impl FnOnce(&Ledger)) {
    thread_local! {
        static LEDGERS: RefCell<HashMap<(u64, u64), Ledger>> = RefCell::new(HashMap::new());
    }
    LEDGERS.with(|ledgers| {
        let mut ledgers = ledgers.borrow_mut();
        let ledger = ledgers
            .entry((size, block_size))
            .or_insert_with(|| build(size, block_size));
        f(ledger);
    });
}

fn build(size: u64, block_size: u64) -> Ledger {
    let leaves: Vec<Digest> = (0..size)
        .map(|i| leaf_hash(format!("entry-{i}").as_bytes()))
        .collect();
    let mut tree = LedgerTree::new(block_size).expect("a valid block size");
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(*leaf);
        let prefix = &leaves[..=i];
        assert_eq!(tree.root(), spec_ledger_root(prefix, block_size));
    }
    let root = tree.root();
    for s in 0..=size {
        if let Some(at) = tree.root_at(s) {
            let prefix = &leaves[..usize::try_from(s).expect("small size")];
            assert_eq!(at, spec_ledger_root(prefix, block_size), "root_at({s})");
        }
    }
    let checkpoint = tree.checkpoint_tree();
    assert_eq!(checkpoint.root(), root);
    let proofs = (0..size)
        .map(|index| {
            let range = checkpoint.block_entries(index).expect("index < size");
            let block = &leaves[usize::try_from(range.start).expect("small")
                ..usize::try_from(range.end).expect("small")];
            let block = BlockTree::build(block).expect("a block has leaves");
            let proof = checkpoint.prove(index, &block).expect("a provable entry");
            let leaf = leaves[usize::try_from(index).expect("small")];
            assert_eq!(
                judge(&proof, leaf, root),
                Ok(()),
                "genuine proof of {index}"
            );
            proof
        })
        .collect();
    Ledger {
        block_size,
        leaves,
        root,
        proofs,
    }
}
