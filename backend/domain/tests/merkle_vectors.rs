//! Known-answer vectors for the Merkle scheme, `fixtures/merkle/vectors.json`.
//!
//! Everything in the file is recomputed twice: by a naive implementation written from the
//! `lading_domain::merkle` module docs alone (plain loops over SHA-256, no `merkle-cbt`, no
//! `Digest`), and by the library. Both must agree with each other and with the file.
//!
//! `LADING_REGENERATE_VECTORS=1 cargo test -p lading-domain --test merkle_vectors` rewrites the
//! file (after the two implementations have been checked against each other).

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::path::PathBuf;

use lading_domain::merkle::{verify_inclusion, BlockTree, LedgerTree};
use lading_domain::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

const DESCRIPTION: &str = "Lading Merkle known-answer vectors. Entry i's signed bytes are the \
ASCII string \"entry-<i>\". leaf hash = SHA-256(0x00 || signed bytes); node = SHA-256(0x01 || left \
|| right); CBMT root of n digests: T[n-1+j] = L[j], T[i] = node(T[2i+1], T[2i+2]) for i from n-2 \
down to 0, root = T[0]; block k holds entries [k*B, (k+1)*B); ledger root = CBMT root of the block \
roots; the empty ledger's root is 32 zero bytes. Proofs: leafPath = lemmas of the leaf in its block, \
blockPath = lemmas of the block root among the block roots, leaf to root. All digests lowercase hex.";

/// (block size, ledger size) of each vector.
const CASES: &[(u32, u64)] = &[
    (4, 0),
    (4, 1),
    (4, 2),
    (4, 3),  // also B - 1
    (4, 4),  // B
    (4, 5),  // also B + 1
    (4, 11), // 2B + 3
    (1024, 2500),
];

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Vectors {
    description: String,
    ledgers: Vec<Ledger>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Ledger {
    block_size: u32,
    size: u64,
    leaves: Vec<String>,
    leaf_hashes: Vec<String>,
    block_roots: Vec<String>,
    root: String,
    proofs: Vec<Proof>,
}

/// The JSON form of an inclusion proof, spelled out independently of the library's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Proof {
    index: u64,
    size: u64,
    block_size: u32,
    leaf_path: Vec<String>,
    block_path: Vec<String>,
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/merkle/vectors.json")
}

fn proof_indices(size: u64) -> Vec<u64> {
    if size <= 16 {
        (0..size).collect()
    } else {
        [0, 1, 511, 1023, 1024, 1500, 2047, 2048, 2049, size - 1]
            .into_iter()
            .filter(|i| *i < size)
            .collect()
    }
}

fn leaf_text(i: u64) -> String {
    format!("entry-{i}")
}

/// The scheme from its definition only.
mod naive {
    use super::*;

    pub type Hash = [u8; 32];

    fn sha256(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    pub fn leaf(bytes: &[u8]) -> Hash {
        sha256(&[&[0x00], bytes])
    }

    pub fn node(left: &Hash, right: &Hash) -> Hash {
        sha256(&[&[0x01], left, right])
    }

    /// The node array T of the module docs.
    fn tree(list: &[Hash]) -> Vec<Hash> {
        let n = list.len();
        let mut t = vec![[0u8; 32]; n - 1];
        t.extend_from_slice(list);
        for i in (0..n - 1).rev() {
            t[i] = node(&t[2 * i + 1], &t[2 * i + 2]);
        }
        t
    }

    pub fn root(list: &[Hash]) -> Hash {
        if list.is_empty() {
            [0u8; 32]
        } else {
            tree(list)[0]
        }
    }

    pub fn lemmas(list: &[Hash], j: usize) -> Vec<Hash> {
        let t = tree(list);
        let mut p = list.len() - 1 + j;
        let mut out = Vec::new();
        while p > 0 {
            out.push(if p % 2 == 1 { t[p + 1] } else { t[p - 1] });
            p = (p - 1) / 2;
        }
        out
    }

    fn fold(n: u64, j: u64, start: Hash, lemmas: &[Hash]) -> Option<Hash> {
        let mut p = n - 1 + j;
        let mut node_value = start;
        for lemma in lemmas {
            if p == 0 {
                return None;
            }
            node_value = if p % 2 == 1 {
                node(&node_value, lemma)
            } else {
                node(lemma, &node_value)
            };
            p = (p - 1) / 2;
        }
        (p == 0).then_some(node_value)
    }

    /// Verification steps 1–6 of the module docs.
    pub fn verify(proof: &Proof, leaf_hash: &Hash, root: &Hash) -> bool {
        let b = u64::from(proof.block_size);
        if b == 0 || proof.index >= proof.size {
            return false;
        }
        let (k, j) = (proof.index / b, proof.index % b);
        let m = proof.size.div_ceil(b);
        let n = if k < proof.size / b {
            b
        } else {
            proof.size % b
        };
        let decode = |path: &[String]| -> Vec<Hash> {
            path.iter()
                .map(|h| <[u8; 32]>::try_from(hex::decode(h).unwrap()).unwrap())
                .collect()
        };
        let Some(block_root) = fold(n, j, *leaf_hash, &decode(&proof.leaf_path)) else {
            return false;
        };
        fold(m, k, block_root, &decode(&proof.block_path)) == Some(*root)
    }

    pub fn ledger(block_size: u32, size: u64) -> Ledger {
        let b = block_size as usize;
        let leaves: Vec<String> = (0..size).map(leaf_text).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf(l.as_bytes())).collect();
        let block_roots: Vec<Hash> = hashes.chunks(b).map(root).collect();
        let proofs = proof_indices(size)
            .into_iter()
            .map(|i| {
                let (k, j) = (i as usize / b, i as usize % b);
                let block = &hashes[k * b..hashes.len().min((k + 1) * b)];
                Proof {
                    index: i,
                    size,
                    block_size,
                    leaf_path: lemmas(block, j).iter().map(hex::encode).collect(),
                    block_path: lemmas(&block_roots, k).iter().map(hex::encode).collect(),
                }
            })
            .collect();
        Ledger {
            block_size,
            size,
            leaf_hashes: hashes.iter().map(hex::encode).collect(),
            block_roots: block_roots.iter().map(hex::encode).collect(),
            root: hex::encode(root(&block_roots)),
            leaves,
            proofs,
        }
    }
}

/// The same vectors from `lading_domain::merkle`.
fn library_ledger(block_size: u32, size: u64) -> Ledger {
    let b = u64::from(block_size);
    let leaves: Vec<String> = (0..size).map(leaf_text).collect();
    let hashes: Vec<Digest> = leaves
        .iter()
        .map(|l| lading_domain::merkle::leaf_hash(l.as_bytes()))
        .collect();
    let mut ledger = LedgerTree::new(b).unwrap();
    for hash in &hashes {
        ledger.push(*hash);
    }
    let checkpoint = ledger.checkpoint_tree();
    assert_eq!(checkpoint.root(), ledger.root());
    let block_roots: Vec<Digest> = (0..checkpoint.block_count())
        .map(|k| checkpoint.block_root(k).unwrap())
        .collect();
    let proofs = proof_indices(size)
        .into_iter()
        .map(|i| {
            let range = checkpoint.block_entries(i).unwrap();
            let block =
                BlockTree::build(&hashes[range.start as usize..range.end as usize]).unwrap();
            let proof = checkpoint.prove(i, &block).unwrap();
            verify_inclusion(&proof, hashes[i as usize], ledger.root()).unwrap();
            // Through JSON, so the file also pins the proof's wire form.
            serde_json::from_value(serde_json::to_value(&proof).unwrap()).unwrap()
        })
        .collect();
    Ledger {
        block_size,
        size,
        leaves,
        leaf_hashes: hashes.iter().map(Digest::to_hex).collect(),
        block_roots: block_roots.iter().map(Digest::to_hex).collect(),
        root: ledger.root().to_hex(),
        proofs,
    }
}

fn vectors(build: fn(u32, u64) -> Ledger) -> Vectors {
    Vectors {
        description: DESCRIPTION.to_owned(),
        ledgers: CASES.iter().map(|&(b, s)| build(b, s)).collect(),
    }
}

#[test]
fn naive_and_library_agree_with_the_fixture() {
    let naive = vectors(naive::ledger);
    let library = vectors(library_ledger);
    assert_eq!(naive, library);

    for ledger in &naive.ledgers {
        let root = <[u8; 32]>::try_from(hex::decode(&ledger.root).unwrap()).unwrap();
        for proof in &ledger.proofs {
            let leaf = naive::leaf(ledger.leaves[proof.index as usize].as_bytes());
            assert!(naive::verify(proof, &leaf, &root), "{proof:?}");
            let mut tampered = proof.clone();
            tampered.index = (proof.index + 1) % (proof.size + 1);
            assert!(!naive::verify(&tampered, &leaf, &root), "{tampered:?}");
        }
    }

    let path = fixture_path();
    if std::env::var("LADING_REGENERATE_VECTORS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&naive).unwrap() + "\n";
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Through a rename, so that a test reading the file never sees half of it.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text).unwrap();
        std::fs::rename(&partial, &path).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let file: Vectors = serde_json::from_str(&text).unwrap();
    assert_eq!(file, naive);
}

#[test]
fn fixture_pins_known_values() {
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    let file: Vectors = serde_json::from_str(&text).unwrap();
    let sizes: Vec<(u32, u64)> = file
        .ledgers
        .iter()
        .map(|l| (l.block_size, l.size))
        .collect();
    assert_eq!(sizes, CASES);
    assert_eq!(file.ledgers[0].root, "0".repeat(64));
    // Size 1: the root is the leaf hash of "entry-0" (computed with Python's hashlib).
    assert_eq!(
        file.ledgers[1].root,
        "40766b2033429026f53d54502679a839706b4741f8dcaf3a8bba5f41b5ffe075"
    );
    // Size 3 = node(node(L1, L2), L0) (computed with Python's hashlib).
    assert_eq!(
        file.ledgers[3].root,
        "62b347cd0b4073ed6ee88fe319b7b86e732d319e95bb20ef0dd14985dc6140ed"
    );
    // Every proof in the file verifies with the library and fails for another leaf.
    for ledger in &file.ledgers {
        let root: Digest = ledger.root.parse().unwrap();
        for proof in &ledger.proofs {
            let proof: lading_domain::InclusionProof =
                serde_json::from_value(serde_json::to_value(proof).unwrap()).unwrap();
            let leaf: Digest = ledger.leaf_hashes[proof.index as usize].parse().unwrap();
            assert_eq!(verify_inclusion(&proof, leaf, root), Ok(()));
            let other = lading_domain::merkle::leaf_hash(b"not an entry");
            assert!(verify_inclusion(&proof, other, root).is_err());
        }
    }
}
