//! Merkle blocks, checkpoint roots and inclusion proofs.
//!
//! The ledger is an append-only list of entries numbered from 0. Each entry is committed to by its
//! *leaf hash*; a registry checkpoint signs the *root* over all leaf hashes of a ledger prefix of
//! `size` entries. This module defines the tree exactly, so that anyone can recompute a root or
//! verify an inclusion proof offline without this code.
//!
//! # Hashes
//!
//! `H` is SHA-256. `‖` is byte concatenation. Digests are 32 bytes and travel in JSON as 64
//! lowercase hexadecimal characters.
//!
//! - **Leaf hash** of an entry: `H(0x00 ‖ signed bytes)`, where the signed bytes are the ASCII
//!   bytes of the entry's compact JWS (`header.payload.signature`).
//! - **Node hash** of two children: `H(0x01 ‖ left ‖ right)` (65 bytes hashed).
//!
//! The two prefixes keep leaves and inner nodes apart (as in RFC 6962), so no inner node can be
//! passed off as a leaf.
//!
//! # Complete binary Merkle tree (CBMT)
//!
//! The root of a list `L[0..n)` of `n ≥ 1` digests is computed on an array `T` of `2n − 1` nodes:
//!
//! 1. `T[n − 1 + j] = L[j]` for `j` in `0..n` (the list occupies the last `n` positions, in order);
//! 2. for `i` from `n − 2` down to `0`: `T[i] = node(T[2i + 1], T[2i + 2])`;
//! 3. the root is `T[0]`.
//!
//! So a single digest is its own root, and with 3 digests the root is
//! `node(node(L[1], L[2]), L[0])`: this is *not* the RFC 6962 shape. It is the layout of the
//! `merkle-cbt` crate, which this module uses to build trees.
//!
//! # Blocks and the ledger root
//!
//! The ledger is cut into blocks of `B` entries (`B` = [`BLOCK_SIZE`] = 1024 for Lading ledgers,
//! carried in every checkpoint and proof; any `1 ≤ B ≤ 2³² − 1` is valid). For a ledger of `S`
//! entries:
//!
//! - block `k` holds entries `[k·B, min((k+1)·B, S))`; there are `m = ⌈S / B⌉` blocks;
//! - block `k` has `n_k = B` leaves if `k < ⌊S / B⌋` (a *sealed* block), otherwise
//!   `n_k = S mod B` (the *open* block, present only when `S mod B ≠ 0`);
//! - the **block root** of block `k` is the CBMT root of its `n_k` leaf hashes, in entry order;
//! - the **ledger root** is the CBMT root of the `m` block roots, in block order;
//! - the root of the empty ledger (`S = 0`) is 32 zero bytes.
//!
//! Consequences: while `S ≤ B` the ledger root is the block root of block 0; for `S = 1` it is
//! the leaf hash of entry 0. A sealed block's root never changes, so it is computed once.
//!
//! The root alone does not commit to `S` or `B`: the signed checkpoint does. A verifier therefore
//! takes the root from the checkpoint whose size equals the proof's `size`. (If a proof's `size`
//! is altered but every path position stays the same, it still verifies against the original
//! root; what it proves, that the leaf is entry `index` of the tree with that root, stays true.)
//!
//! # Inclusion proofs
//!
//! An [`InclusionProof`] for entry `i` of a ledger of `S` entries is the JSON object
//!
//! ```json
//! { "index": i, "size": S, "blockSize": B, "leafPath": ["<hex>", ...], "blockPath": ["<hex>", ...] }
//! ```
//!
//! where, with `k = ⌊i / B⌋` and `j = i mod B`, `leafPath` holds the lemmas of leaf `j` in the
//! CBMT of block `k` (`n_k` leaves) and `blockPath` the lemmas of block root `k` in the CBMT of the
//! `m` block roots. The lemmas of list position `j` among `n` are, starting at `p = n − 1 + j`
//! and while `p > 0`: `T[p + 1]` if `p` is odd, else `T[p − 1]` (the sibling), then
//! `p = (p − 1) / 2`. They are listed from the leaf up to the root.
//!
//! **Verification** of a proof against a leaf hash `h` and a checkpoint root `R`
//! ([`verify_inclusion`]):
//!
//! 1. Reject if `B = 0` or `i ≥ S`.
//! 2. Compute `k`, `j`, `m` and `n_k` as above.
//! 3. The lemma count of position `j` among `n` is `d(n, j) = ⌊log₂(n + j)⌋` (the depth of
//!    node `n − 1 + j`). Reject unless `leafPath` has exactly `d(n_k, j)` lemmas and `blockPath`
//!    exactly `d(m, k)`.
//! 4. Fold the leaf path: `node = h`, `p = n_k − 1 + j`; for each lemma in order:
//!    if `p` is odd, `node = node(node, lemma)`, else `node = node(lemma, node)`;
//!    then `p = (p − 1) / 2`. After the last lemma `p = 0` and `node` is the block root.
//! 5. Fold the block path the same way, starting from that block root with `p = m − 1 + k`.
//! 6. Accept if and only if the result equals `R`.
//!
//! (Positions can exceed 2⁶⁴ when `B = 1`; compute them in 128-bit integers.)
//!
//! # Multiproofs: several leaves of one tree at once
//!
//! Many leaves of one block (a customs export proves every entry of a block it holds) share
//! most of their paths. A *multiproof* of the leaves at list positions `j_1 < … < j_m` of a
//! CBMT of `n` leaves holds each node it needs once, and none that the leaves themselves give:
//! it is the list of *lemmas* produced by this walk ([`BlockTree::multiproof`]):
//!
//! 1. A queue holds tree positions, first `n − 1 + j_m, …, n − 1 + j_1` (descending).
//! 2. Take the front position `p`. If `p = 0`, stop. Its sibling is `s = p + 1` if `p` is odd,
//!    `p − 1` if even. If the queue's front is now `s`, remove it (the proof computes that node
//!    itself); otherwise `T[s]` is the next lemma.
//! 3. Unless the parent `(p − 1) / 2` is 0, append it to the queue; go to 2.
//!
//! **Verification** ([`multiproof_root`]) runs the same walk on (position, hash) pairs: start
//! with `(n − 1 + j, h_j)` in descending position order; take the front `(p, x)`; if `p = 0`,
//! the root is `x`, and the proof is valid only if no pair and no lemma is left. Otherwise the
//! sibling's hash `y` is the front pair's when its position is `s` (remove it), else the next
//! lemma (none left: invalid); append `((p − 1) / 2, node(x, y))` if `p` is odd, else
//! `((p − 1) / 2, node(y, x))`, and repeat. The queue stays in descending position order, so a
//! node's sibling, when the proof computes it, is always next. When every leaf of the tree is
//! given the proof has no lemma; for one leaf it is that leaf's path. The walk is the one of
//! `merkle-cbt`'s `MerkleTree::build_proof` and `MerkleProof::root`.
//!
//! # Consistency proofs
//!
//! A [`ConsistencyProof`] shows that the ledger of `N` entries extends the ledger of `M ≤ N`
//! entries: its first `M` leaf hashes are those of the smaller ledger, unchanged and in order.
//! A verifier holds only the two signed checkpoints (`M` and its root `R_M`, `N` and `R_N`, and
//! the block size `B` they carry). The proof is the JSON object
//!
//! ```json
//! { "oldSize": M, "newSize": N, "blockSize": B, "blockRoots": ["<hex>", ...], "leaves": ["<hex>", ...] }
//! ```
//!
//! Let `f = ⌊M / B⌋` (the blocks sealed at `M`), `r = M mod B` (the leaves of `M`'s open block)
//! and `m_N = ⌈N / B⌉`. Then:
//!
//! - if `M = 0` or `M = N`, both lists are empty (nothing needs proving beyond the roots);
//! - otherwise `leaves` is empty when `r = 0`, and when `r > 0` it holds the leaf hashes of
//!   block `f` of the ledger of size `N` — entries `[f·B, min((f+1)·B, N))`, so
//!   `n = min(B, N − f·B)` of them, `n ≥ r` — in entry order;
//! - `blockRoots` holds the block roots of the ledger of size `N`, in block order, leaving out
//!   block `f` when `r > 0` (the verifier derives it from `leaves`): `m_N` digests when
//!   `r = 0`, `m_N − 1` when `r > 0`.
//!
//! **Verification** against `(M, R_M)` and `(N, R_N)` of two checkpoints with block size `B`
//! ([`verify_consistency`]):
//!
//! 1. Reject if `B = 0`, if `M > N`, or if the proof's `oldSize`, `newSize` or `blockSize`
//!    differ from `M`, `N`, `B`.
//! 2. Compute the expected lengths above. Reject unless `blockRoots` and `leaves` have exactly
//!    those lengths.
//! 3. If `M = 0`: accept if and only if `R_M` is the empty root (32 zero bytes) and, when also
//!    `N = 0`, `R_N` is too. (The empty ledger is a prefix of every ledger.)
//! 4. If `M = N`: accept if and only if `R_N = R_M`.
//! 5. Otherwise let `S = blockRoots[0..f)` (the blocks sealed at `M`, which the ledger of size
//!    `N` must hold unchanged) and `T = blockRoots[f..)` (blocks the ledger grew by). If
//!    `r > 0`, let `P` be the CBMT root of `leaves[0..r)` (the open block at `M`) and `Q` the
//!    CBMT root of all of `leaves` (block `f` at `N`).
//! 6. Old block roots: `S`, then `P` if `r > 0`. Reject unless their CBMT root is `R_M`.
//! 7. New block roots: `S`, then `Q` if `r > 0`, then `T`. Reject unless their CBMT root is
//!    `R_N`; otherwise accept.
//!
//! Why it is sound: the shape of a CBMT is fixed by its number of leaves, and the sizes are
//! fixed by the signed checkpoints, so two different lists with the same root would give a
//! SHA-256 collision. Steps 6 and 7 therefore pin the blocks sealed at `M` and the first `r`
//! leaves of block `f` to the same values in both ledgers.
//!
//! Why it is not logarithmic: in a CBMT the children of a node depend on the number of leaves
//! (appending one leaf shifts how every level pairs up), so the inner nodes of the smaller tree
//! are in general not nodes of the larger one, and no RFC 9162-style proof of `O(log N)`
//! digests exists for this layout. The proof carries one digest per block of `N` plus at most
//! `B` leaf hashes: 32 bytes × (`⌈N / B⌉` + `B`), about 64 KB for a million entries with
//! `B = 1024`. Its cost to verify is as many node hashes.

use std::fmt;
use std::ops::Range;

use merkle_cbt::merkle_tree::{Merge, MerkleTree, CBMT};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Entries per block in Lading ledgers. Functions take the block size as a parameter, because
/// checkpoints and proofs carry their own.
pub const BLOCK_SIZE: u64 = 1024;

/// First byte hashed for a leaf.
pub const LEAF_PREFIX: u8 = 0x00;

/// First byte hashed for an inner node.
pub const NODE_PREFIX: u8 = 0x01;

/// Root of the empty ledger.
pub const EMPTY_ROOT: Digest = Digest([0; 32]);

/// Largest block size: proofs carry it as a 32-bit number.
const MAX_BLOCK_SIZE: u64 = u32::MAX as u64;

type Cbmt = CBMT<Digest, Digest>;

/// `H(0x00 ‖ signed)`: the leaf hash of an entry, from the ASCII bytes of its compact JWS.
pub fn leaf_hash(signed: &[u8]) -> Digest {
    Digest::of_parts(&[&[LEAF_PREFIX], signed])
}

/// `H(0x01 ‖ left ‖ right)`: the hash of an inner node.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of_parts(&[&[NODE_PREFIX], &left.0, &right.0])
}

/// Lets `merkle-cbt` build our trees with [`node_hash`] as its merge.
impl Merge for Digest {
    type Item = Digest;

    fn merge(left: &Digest, right: &Digest) -> Digest {
        node_hash(left, right)
    }
}

/// CBMT root of `nodes` (see the module docs); [`EMPTY_ROOT`] for an empty list.
pub fn merkle_root(nodes: &[Digest]) -> Digest {
    Cbmt::build_merkle_root(nodes)
}

/// Why a Merkle structure could not be built or a proof could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("block size must be between 1 and 4294967295, got {0}")]
    InvalidBlockSize(u64),
    #[error("a block has at least one leaf")]
    EmptyBlock,
    #[error("the open block must hold fewer than {block_size} leaves, got {leaves}")]
    OpenBlockFull { block_size: u64, leaves: u64 },
    #[error("a ledger of {size} entries has {expected} blocks, got {actual} block roots")]
    BlockCountMismatch {
        size: u64,
        expected: u64,
        actual: u64,
    },
    #[error("entry {index} is not in a ledger of {size} entries")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the block tree given is not block {block} of the ledger at size {size}")]
    WrongBlock { block: u64, size: u64 },
}

/// Why a multiproof does not give a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultiproofError {
    #[error("a multiproof proves at least one leaf")]
    NoLeaves,
    #[error("leaf position {position} is not below the tree's {leaf_count} leaves")]
    PositionOutOfRange { position: u64, leaf_count: u64 },
    #[error("leaf positions must increase, {position} comes after {after}")]
    PositionsNotIncreasing { position: u64, after: u64 },
    #[error("the proof ran out of lemmas")]
    TooFewLemmas,
    #[error("the proof has lemmas it does not use")]
    TooManyLemmas,
}

impl MerkleError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBlockSize(_) => "merkle_invalid_block_size",
            Self::EmptyBlock => "merkle_empty_block",
            Self::OpenBlockFull { .. } => "merkle_open_block_full",
            Self::BlockCountMismatch { .. } => "merkle_block_count_mismatch",
            Self::IndexOutOfRange { .. } => "merkle_index_out_of_range",
            Self::WrongBlock { .. } => "merkle_wrong_block",
        }
    }
}

/// Why an inclusion proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof's block size is 0")]
    InvalidBlockSize,
    #[error("entry {index} is not in a ledger of {size} entries")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the leaf path must have {expected} lemmas, it has {actual}")]
    LeafPathLength { expected: usize, actual: usize },
    #[error("the block path must have {expected} lemmas, it has {actual}")]
    BlockPathLength { expected: usize, actual: usize },
    #[error("the proof does not lead to the checkpoint root")]
    RootMismatch,
}

impl ProofError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBlockSize => "proof_invalid_block_size",
            Self::IndexOutOfRange { .. } => "proof_index_out_of_range",
            Self::LeafPathLength { .. } => "proof_leaf_path_length",
            Self::BlockPathLength { .. } => "proof_block_path_length",
            Self::RootMismatch => "proof_root_mismatch",
        }
    }
}

/// Proof that entry `index` is in the ledger of `size` entries; see the module docs.
///
/// A proof is a claim from outside, so its fields are open; [`verify_inclusion`] checks all of
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub block_size: u32,
    pub leaf_path: Vec<Digest>,
    pub block_path: Vec<Digest>,
}

/// Verifies `proof` for the entry with `leaf_hash` against a checkpoint `root`, following the
/// steps of the module docs. `root` must be the root of the checkpoint of size `proof.size`.
pub fn verify_inclusion(
    proof: &InclusionProof,
    leaf_hash: Digest,
    root: Digest,
) -> Result<(), ProofError> {
    let block_size = u64::from(proof.block_size);
    if block_size == 0 {
        return Err(ProofError::InvalidBlockSize);
    }
    if proof.index >= proof.size {
        return Err(ProofError::IndexOutOfRange {
            index: proof.index,
            size: proof.size,
        });
    }
    let block = proof.index / block_size;
    let leaf = proof.index % block_size;
    let block_count = proof.size.div_ceil(block_size);
    let leaf_count = leaves_in_block(proof.size, block_size, block);

    let expected = path_len(leaf_count, leaf);
    if proof.leaf_path.len() != expected {
        return Err(ProofError::LeafPathLength {
            expected,
            actual: proof.leaf_path.len(),
        });
    }
    let expected = path_len(block_count, block);
    if proof.block_path.len() != expected {
        return Err(ProofError::BlockPathLength {
            expected,
            actual: proof.block_path.len(),
        });
    }

    let block_root = fold_path(leaf_count, leaf, leaf_hash, &proof.leaf_path);
    let computed = fold_path(block_count, block, block_root, &proof.block_path);
    if computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Why a consistency proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the block size is 0")]
    InvalidBlockSize,
    #[error("the old size {old} is larger than the new size {new}")]
    SizesReversed { old: u64, new: u64 },
    #[error("the proof is for sizes {proof_old}..{proof_new} with block size {proof_block_size}, not the checkpoints'")]
    WrongCheckpoints {
        proof_old: u64,
        proof_new: u64,
        proof_block_size: u32,
    },
    #[error("the proof must carry {expected} block roots, it has {actual}")]
    BlockRootsLength { expected: u64, actual: usize },
    #[error("the proof must carry {expected} leaves, it has {actual}")]
    LeavesLength { expected: u64, actual: usize },
    #[error("the proof does not lead to the old checkpoint root")]
    OldRootMismatch,
    #[error("the proof does not lead to the new checkpoint root")]
    NewRootMismatch,
}

impl ConsistencyError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBlockSize => "consistency_invalid_block_size",
            Self::SizesReversed { .. } => "consistency_sizes_reversed",
            Self::WrongCheckpoints { .. } => "consistency_wrong_checkpoints",
            Self::BlockRootsLength { .. } => "consistency_block_roots_length",
            Self::LeavesLength { .. } => "consistency_leaves_length",
            Self::OldRootMismatch => "consistency_old_root_mismatch",
            Self::NewRootMismatch => "consistency_new_root_mismatch",
        }
    }
}

/// Proof that the ledger of `new_size` entries extends the one of `old_size`; see the module
/// docs. Its fields are a claim from outside: [`verify_consistency`] checks all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub block_size: u32,
    pub block_roots: Vec<Digest>,
    pub leaves: Vec<Digest>,
}

/// What a consistency proof between sizes `old ≤ new` carries: (block roots, leaves).
fn consistency_shape(old: u64, new: u64, block_size: u64) -> (u64, u64) {
    if old == 0 || old == new {
        return (0, 0);
    }
    let sealed = old / block_size;
    let blocks = new.div_ceil(block_size);
    if old % block_size == 0 {
        (blocks, 0)
    } else {
        (blocks - 1, (new - sealed * block_size).min(block_size))
    }
}

/// Verifies that the checkpoint `(new_size, new_root)` extends `(old_size, old_root)`, both of
/// block size `block_size`, following the steps of the module docs.
pub fn verify_consistency(
    proof: &ConsistencyProof,
    old_size: u64,
    old_root: Digest,
    new_size: u64,
    new_root: Digest,
    block_size: u32,
) -> Result<(), ConsistencyError> {
    if block_size == 0 {
        return Err(ConsistencyError::InvalidBlockSize);
    }
    if old_size > new_size {
        return Err(ConsistencyError::SizesReversed {
            old: old_size,
            new: new_size,
        });
    }
    if (proof.old_size, proof.new_size, proof.block_size) != (old_size, new_size, block_size) {
        return Err(ConsistencyError::WrongCheckpoints {
            proof_old: proof.old_size,
            proof_new: proof.new_size,
            proof_block_size: proof.block_size,
        });
    }
    let b = u64::from(block_size);
    let (roots_expected, leaves_expected) = consistency_shape(old_size, new_size, b);
    if proof.block_roots.len() as u64 != roots_expected {
        return Err(ConsistencyError::BlockRootsLength {
            expected: roots_expected,
            actual: proof.block_roots.len(),
        });
    }
    if proof.leaves.len() as u64 != leaves_expected {
        return Err(ConsistencyError::LeavesLength {
            expected: leaves_expected,
            actual: proof.leaves.len(),
        });
    }
    if old_size == 0 {
        return if old_root != EMPTY_ROOT {
            Err(ConsistencyError::OldRootMismatch)
        } else if new_size == 0 && new_root != EMPTY_ROOT {
            Err(ConsistencyError::NewRootMismatch)
        } else {
            Ok(())
        };
    }
    if old_size == new_size {
        return if new_root == old_root {
            Ok(())
        } else {
            Err(ConsistencyError::NewRootMismatch)
        };
    }
    // The lengths were checked: both indexes are within the lists.
    let sealed = usize::try_from(old_size / b).map_err(|_| ConsistencyError::OldRootMismatch)?;
    let open = usize::try_from(old_size % b).map_err(|_| ConsistencyError::OldRootMismatch)?;
    let (shared, grown) = proof
        .block_roots
        .split_at_checked(sealed)
        .ok_or(ConsistencyError::OldRootMismatch)?;
    let mut old_roots = shared.to_vec();
    let mut new_roots = shared.to_vec();
    if open > 0 {
        let old_open = proof
            .leaves
            .get(..open)
            .ok_or(ConsistencyError::OldRootMismatch)?;
        old_roots.push(merkle_root(old_open));
        new_roots.push(merkle_root(&proof.leaves));
    }
    new_roots.extend_from_slice(grown);
    if merkle_root(&old_roots) != old_root {
        return Err(ConsistencyError::OldRootMismatch);
    }
    if merkle_root(&new_roots) != new_root {
        return Err(ConsistencyError::NewRootMismatch);
    }
    Ok(())
}

/// `⌊log₂(n + j)⌋`: the depth of node `n − 1 + j`, i.e. its number of lemmas.
fn path_len(n: u64, j: u64) -> usize {
    let position_plus_one = u128::from(n) + u128::from(j);
    (u128::BITS - 1 - position_plus_one.leading_zeros()) as usize
}

/// Step 4 of the verification: climbs from position `n − 1 + j` to the root.
fn fold_path(n: u64, j: u64, start: Digest, lemmas: &[Digest]) -> Digest {
    let mut position = u128::from(n) + u128::from(j) - 1;
    let mut node = start;
    for lemma in lemmas {
        node = if position % 2 == 1 {
            node_hash(&node, lemma)
        } else {
            node_hash(lemma, &node)
        };
        position = position.saturating_sub(1) / 2;
    }
    node
}

/// The ledger root that block `block`'s root and its path among the block roots (an inclusion
/// proof's `blockPath`) give, for a ledger of `size` entries in blocks of `block_size`
/// (steps 3 and 5 of the verification); `None` when the block is not in that ledger or the
/// path has not exactly the lemmas of its position.
pub fn fold_block_path(
    size: u64,
    block_size: u64,
    block: u64,
    block_root: Digest,
    path: &[Digest],
) -> Option<Digest> {
    let block_size = check_block_size(block_size).ok()?;
    let blocks = size.div_ceil(block_size);
    if block >= blocks || path.len() != path_len(blocks, block) {
        return None;
    }
    Some(fold_path(blocks, block, block_root, path))
}

/// Number of leaves of block `block` in a ledger of `size` entries (0 past the end).
fn leaves_in_block(size: u64, block_size: u64, block: u64) -> u64 {
    match block.checked_mul(block_size) {
        Some(start) if start < size => (size - start).min(block_size),
        _ => 0,
    }
}

pub(crate) fn check_block_size(block_size: u64) -> Result<u64, MerkleError> {
    if (1..=MAX_BLOCK_SIZE).contains(&block_size) {
        Ok(block_size)
    } else {
        Err(MerkleError::InvalidBlockSize(block_size))
    }
}

/// Lemmas of list position `j` in a CBMT node array of `n` leaves, leaf to root.
fn lemmas(nodes: &[Digest], n: u64, j: u64) -> Option<Vec<Digest>> {
    if j >= n {
        return None;
    }
    let mut position = usize::try_from(n - 1 + j).ok()?;
    let mut path = Vec::with_capacity(path_len(n, j));
    while position > 0 {
        let sibling = if position % 2 == 1 {
            position + 1
        } else {
            position - 1
        };
        path.push(*nodes.get(sibling)?);
        position = (position - 1) / 2;
    }
    Some(path)
}

/// The root of a CBMT of `leaf_count` leaves, from some of its leaves — `(list position, leaf
/// hash)` in increasing position order — and their multiproof's lemmas (see the module docs).
pub fn multiproof_root(
    leaf_count: u64,
    leaves: &[(u64, Digest)],
    lemmas: &[Digest],
) -> Result<Digest, MultiproofError> {
    if leaves.is_empty() {
        return Err(MultiproofError::NoLeaves);
    }
    let mut queue: std::collections::VecDeque<(u128, Digest)> =
        std::collections::VecDeque::with_capacity(leaves.len());
    let mut after: Option<u64> = None;
    for &(j, hash) in leaves {
        if j >= leaf_count {
            return Err(MultiproofError::PositionOutOfRange {
                position: j,
                leaf_count,
            });
        }
        if let Some(after) = after.filter(|a| j <= *a) {
            return Err(MultiproofError::PositionsNotIncreasing { position: j, after });
        }
        after = Some(j);
        // Positions in 128 bits: `2n − 2` exceeds 64 bits for no block size, but stay uniform
        // with the paths' arithmetic.
        queue.push_front((u128::from(leaf_count) - 1 + u128::from(j), hash));
    }
    let mut lemmas = lemmas.iter();
    while let Some((p, x)) = queue.pop_front() {
        if p == 0 {
            if !queue.is_empty() || lemmas.next().is_some() {
                return Err(MultiproofError::TooManyLemmas);
            }
            return Ok(x);
        }
        let sibling = if p % 2 == 1 { p + 1 } else { p - 1 };
        let y = match queue.front() {
            Some((s, y)) if *s == sibling => {
                let y = *y;
                queue.pop_front();
                y
            }
            _ => *lemmas.next().ok_or(MultiproofError::TooFewLemmas)?,
        };
        let parent = if p % 2 == 1 {
            node_hash(&x, &y)
        } else {
            node_hash(&y, &x)
        };
        queue.push_back(((p - 1) / 2, parent));
    }
    unreachable!("the walk ends at position 0")
}

/// The whole tree of one block, kept in memory so that proofs for its entries are cheap.
pub struct BlockTree {
    tree: MerkleTree<Digest, Digest>,
    leaf_count: u64,
}

impl BlockTree {
    /// Builds the tree of a block from its leaf hashes, in entry order.
    pub fn build(leaves: &[Digest]) -> Result<Self, MerkleError> {
        if leaves.is_empty() {
            return Err(MerkleError::EmptyBlock);
        }
        Ok(Self {
            tree: Cbmt::build_merkle_tree(leaves),
            leaf_count: leaves.len() as u64,
        })
    }

    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    pub fn leaf_count(&self) -> u64 {
        self.leaf_count
    }

    /// Leaf hash at position `j` of the block.
    pub fn leaf(&self, j: u64) -> Option<Digest> {
        if j >= self.leaf_count {
            return None;
        }
        let position = usize::try_from(self.leaf_count - 1 + j).ok()?;
        self.tree.nodes().get(position).copied()
    }

    /// The leaf hashes of the block, in entry order.
    pub fn leaves(&self) -> &[Digest] {
        let nodes = self.tree.nodes();
        let first = usize::try_from(self.leaf_count - 1).unwrap_or(usize::MAX);
        nodes.get(first..).unwrap_or_default()
    }

    /// Lemmas of leaf `j`, leaf to root; `None` if the block has no leaf `j`.
    pub fn path(&self, j: u64) -> Option<Vec<Digest>> {
        lemmas(self.tree.nodes(), self.leaf_count, j)
    }

    /// The multiproof of the leaves at `positions` (strictly increasing, each below the leaf
    /// count), as the module docs define it; `None` if the positions are not such.
    pub fn multiproof(&self, positions: &[u64]) -> Option<Vec<Digest>> {
        let nodes = self.tree.nodes();
        let n = usize::try_from(self.leaf_count).ok()?;
        let mut queue = std::collections::VecDeque::with_capacity(positions.len());
        let mut after: Option<u64> = None;
        for &j in positions.iter().rev() {
            if j >= self.leaf_count || after.is_some_and(|a| j >= a) {
                return None;
            }
            after = Some(j);
            queue.push_back(n - 1 + usize::try_from(j).ok()?);
        }
        let mut lemmas = Vec::new();
        while let Some(p) = queue.pop_front() {
            if p == 0 {
                break;
            }
            let sibling = if p % 2 == 1 { p + 1 } else { p - 1 };
            if queue.front() == Some(&sibling) {
                queue.pop_front();
            } else {
                lemmas.push(*nodes.get(sibling)?);
            }
            let parent = (p - 1) / 2;
            if parent != 0 {
                queue.push_back(parent);
            }
        }
        Some(lemmas)
    }
}

impl fmt::Debug for BlockTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockTree")
            .field("leaf_count", &self.leaf_count)
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

/// The tree over the block roots of one checkpoint: build it once, then prove many entries
/// against it.
pub struct CheckpointTree {
    block_size: u64,
    size: u64,
    tree: MerkleTree<Digest, Digest>,
}

impl CheckpointTree {
    /// Builds the tree of the ledger of `size` entries from its `⌈size / block_size⌉` block
    /// roots (the last one being the open block's root when `size` is not a multiple).
    pub fn from_block_roots(
        block_size: u64,
        size: u64,
        block_roots: &[Digest],
    ) -> Result<Self, MerkleError> {
        let block_size = check_block_size(block_size)?;
        let expected = size.div_ceil(block_size);
        if block_roots.len() as u64 != expected {
            return Err(MerkleError::BlockCountMismatch {
                size,
                expected,
                actual: block_roots.len() as u64,
            });
        }
        Ok(Self {
            block_size,
            size,
            tree: Cbmt::build_merkle_tree(block_roots),
        })
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The checkpoint root ([`EMPTY_ROOT`] for size 0).
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    pub fn block_count(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    pub fn block_root(&self, block: u64) -> Option<Digest> {
        if block >= self.block_count() {
            return None;
        }
        let position = usize::try_from(self.block_count() - 1 + block).ok()?;
        self.tree.nodes().get(position).copied()
    }

    /// The entries whose leaf hashes make the [`BlockTree`] that [`Self::prove`] needs for
    /// `index` (its block, cut at this checkpoint's size).
    pub fn block_entries(&self, index: u64) -> Option<Range<u64>> {
        if index >= self.size {
            return None;
        }
        let start = index / self.block_size * self.block_size;
        Some(start..self.size.min(start + self.block_size))
    }

    /// Proves entry `index`; `block_tree` must be built from the leaf hashes of
    /// [`Self::block_entries`]`(index)`.
    pub fn prove(&self, index: u64, block_tree: &BlockTree) -> Result<InclusionProof, MerkleError> {
        if index >= self.size {
            return Err(MerkleError::IndexOutOfRange {
                index,
                size: self.size,
            });
        }
        let block = index / self.block_size;
        let wrong_block = MerkleError::WrongBlock {
            block,
            size: self.size,
        };
        if block_tree.leaf_count() != leaves_in_block(self.size, self.block_size, block)
            || Some(block_tree.root()) != self.block_root(block)
        {
            return Err(wrong_block);
        }
        let leaf_path = block_tree
            .path(index % self.block_size)
            .ok_or_else(|| wrong_block.clone())?;
        let block_path = lemmas(self.tree.nodes(), self.block_count(), block).ok_or(wrong_block)?;
        Ok(InclusionProof {
            index,
            size: self.size,
            block_size: u32::try_from(self.block_size)
                .map_err(|_| MerkleError::InvalidBlockSize(self.block_size))?,
            leaf_path,
            block_path,
        })
    }
}

impl CheckpointTree {
    /// The entries whose leaf hashes make the [`BlockTree`] that [`Self::prove_consistency`]
    /// needs for `old_size`: block `⌊old_size / B⌋` cut at this checkpoint's size, when the
    /// proof carries leaves (see the module docs); `None` when it carries none.
    pub fn consistency_entries(&self, old_size: u64) -> Result<Option<Range<u64>>, MerkleError> {
        if old_size > self.size {
            return Err(MerkleError::IndexOutOfRange {
                index: old_size,
                size: self.size,
            });
        }
        let (_, leaves) = consistency_shape(old_size, self.size, self.block_size);
        if leaves == 0 {
            return Ok(None);
        }
        let start = old_size / self.block_size * self.block_size;
        Ok(Some(start..start + leaves))
    }

    /// Proves that this checkpoint extends the ledger's first `old_size` entries; `block` must
    /// be built from the leaf hashes of [`Self::consistency_entries`]`(old_size)` when that is
    /// `Some` (it is ignored otherwise).
    pub fn prove_consistency(
        &self,
        old_size: u64,
        block: Option<&BlockTree>,
    ) -> Result<ConsistencyProof, MerkleError> {
        let block_size = u32::try_from(self.block_size)
            .map_err(|_| MerkleError::InvalidBlockSize(self.block_size))?;
        let mut proof = ConsistencyProof {
            old_size,
            new_size: self.size,
            block_size,
            block_roots: Vec::new(),
            leaves: Vec::new(),
        };
        let range = self.consistency_entries(old_size)?;
        if old_size == 0 || old_size == self.size {
            return Ok(proof);
        }
        let split = old_size / self.block_size;
        if let Some(range) = &range {
            let wrong_block = MerkleError::WrongBlock {
                block: split,
                size: self.size,
            };
            let block = block.ok_or_else(|| wrong_block.clone())?;
            if block.leaf_count() != range.end - range.start
                || Some(block.root()) != self.block_root(split)
            {
                return Err(wrong_block);
            }
            proof.leaves = block.leaves().to_vec();
        }
        proof.block_roots = (0..self.block_count())
            .filter(|k| range.is_none() || *k != split)
            .filter_map(|k| self.block_root(k))
            .collect();
        Ok(proof)
    }
}

impl fmt::Debug for CheckpointTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointTree")
            .field("block_size", &self.block_size)
            .field("size", &self.size)
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

/// The growing ledger: the roots of its sealed blocks plus the leaf hashes of its open block.
///
/// A block's root is computed once, when its last leaf is pushed; the root of the ledger then
/// costs one tree over the block roots (about `size / block_size` node hashes) plus the open
/// block's tree, never a pass over all leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTree {
    block_size: u64,
    sealed: Vec<Digest>,
    open: Vec<Digest>,
}

impl LedgerTree {
    /// The empty ledger.
    pub fn new(block_size: u64) -> Result<Self, MerkleError> {
        Self::restore(block_size, Vec::new(), Vec::new())
    }

    /// Resumes a ledger from stored block roots and the leaf hashes of its open block.
    pub fn restore(
        block_size: u64,
        sealed_roots: Vec<Digest>,
        open_leaves: Vec<Digest>,
    ) -> Result<Self, MerkleError> {
        let block_size = check_block_size(block_size)?;
        if open_leaves.len() as u64 >= block_size {
            return Err(MerkleError::OpenBlockFull {
                block_size,
                leaves: open_leaves.len() as u64,
            });
        }
        Ok(Self {
            block_size,
            sealed: sealed_roots,
            open: open_leaves,
        })
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.sealed.len() as u64 * self.block_size + self.open.len() as u64
    }

    pub fn sealed_roots(&self) -> &[Digest] {
        &self.sealed
    }

    pub fn open_leaves(&self) -> &[Digest] {
        &self.open
    }

    /// Appends an entry's leaf hash. Returns the block root when this leaf sealed a block, so
    /// the caller can store it.
    pub fn push(&mut self, leaf: Digest) -> Option<Digest> {
        self.open.push(leaf);
        if (self.open.len() as u64) < self.block_size {
            return None;
        }
        let root = merkle_root(&self.open);
        self.open.clear();
        self.sealed.push(root);
        Some(root)
    }

    /// The root of the whole ledger.
    pub fn root(&self) -> Digest {
        if self.open.is_empty() {
            return merkle_root(&self.sealed);
        }
        let mut roots = Vec::with_capacity(self.sealed.len() + 1);
        roots.extend_from_slice(&self.sealed);
        roots.push(merkle_root(&self.open));
        merkle_root(&roots)
    }

    /// The root of the first `size` entries, when it can be computed from what is held: `size`
    /// is a multiple of the block size or falls in the open block. Otherwise `None`: rebuild
    /// that block from its leaf hashes and use [`CheckpointTree::from_block_roots`].
    pub fn root_at(&self, size: u64) -> Option<Digest> {
        if size == self.size() {
            return Some(self.root());
        }
        self.block_roots_at(size).map(|roots| merkle_root(&roots))
    }

    /// The tree over the current block roots, to prove many entries against one checkpoint.
    pub fn checkpoint_tree(&self) -> CheckpointTree {
        let mut roots = Vec::with_capacity(self.sealed.len() + 1);
        roots.extend_from_slice(&self.sealed);
        if !self.open.is_empty() {
            roots.push(merkle_root(&self.open));
        }
        CheckpointTree {
            block_size: self.block_size,
            size: self.size(),
            tree: Cbmt::build_merkle_tree(&roots),
        }
    }

    /// [`Self::checkpoint_tree`] for the first `size` entries, under the condition of
    /// [`Self::root_at`].
    pub fn checkpoint_tree_at(&self, size: u64) -> Option<CheckpointTree> {
        let roots = self.block_roots_at(size)?;
        Some(CheckpointTree {
            block_size: self.block_size,
            size,
            tree: Cbmt::build_merkle_tree(&roots),
        })
    }

    fn block_roots_at(&self, size: u64) -> Option<Vec<Digest>> {
        if size > self.size() {
            return None;
        }
        let full = usize::try_from(size / self.block_size).ok()?;
        let rest = usize::try_from(size % self.block_size).ok()?;
        if rest == 0 {
            return self.sealed.get(..full).map(<[Digest]>::to_vec);
        }
        if full != self.sealed.len() {
            return None;
        }
        let mut roots = Vec::with_capacity(full + 1);
        roots.extend_from_slice(&self.sealed);
        roots.push(merkle_root(self.open.get(..rest)?));
        Some(roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Digest {
        s.parse().unwrap()
    }

    fn entry(i: u64) -> Digest {
        leaf_hash(format!("entry-{i}").as_bytes())
    }

    /// The module-doc definition, with a plain node array.
    fn spec_root(list: &[Digest]) -> Digest {
        let n = list.len();
        if n == 0 {
            return EMPTY_ROOT;
        }
        let mut t = vec![EMPTY_ROOT; n - 1];
        t.extend_from_slice(list);
        for i in (0..n - 1).rev() {
            t[i] = node_hash(&t[2 * i + 1], &t[2 * i + 2]);
        }
        t[0]
    }

    fn spec_ledger_root(leaves: &[Digest], block_size: u64) -> Digest {
        let roots: Vec<Digest> = leaves.chunks(block_size as usize).map(spec_root).collect();
        spec_root(&roots)
    }

    fn ledger(block_size: u64, size: u64) -> LedgerTree {
        let mut ledger = LedgerTree::new(block_size).unwrap();
        for i in 0..size {
            ledger.push(entry(i));
        }
        ledger
    }

    fn block_tree(block_size: u64, size: u64, index: u64) -> BlockTree {
        let start = index / block_size * block_size;
        let leaves: Vec<Digest> = (start..size.min(start + block_size)).map(entry).collect();
        BlockTree::build(&leaves).unwrap()
    }

    fn prove(ledger: &LedgerTree, checkpoint: &CheckpointTree, index: u64) -> InclusionProof {
        checkpoint
            .prove(
                index,
                &block_tree(ledger.block_size(), checkpoint.size(), index),
            )
            .unwrap()
    }

    // Expected values computed with Python's hashlib, independently of this code.
    #[test]
    fn hashes_match_independent_computation() {
        assert_eq!(
            leaf_hash(b""),
            hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"entry-0"),
            hex("40766b2033429026f53d54502679a839706b4741f8dcaf3a8bba5f41b5ffe075")
        );
        assert_eq!(
            node_hash(&Digest([0x11; 32]), &Digest([0x22; 32])),
            hex("1d8f52d3ec81ac02cd97cb3281523be47af850c0f0295af866f04bc245f46bbf")
        );
        assert_eq!(
            <Digest as Merge>::merge(&Digest([0x11; 32]), &Digest([0x22; 32])),
            node_hash(&Digest([0x11; 32]), &Digest([0x22; 32]))
        );
        // Three leaves: node(node(L1, L2), L0).
        assert_eq!(
            merkle_root(&[entry(0), entry(1), entry(2)]),
            hex("62b347cd0b4073ed6ee88fe319b7b86e732d319e95bb20ef0dd14985dc6140ed")
        );
    }

    #[test]
    fn small_roots_follow_the_definition() {
        assert_eq!(ledger(4, 0).root(), EMPTY_ROOT);
        assert_eq!(ledger(4, 0).root(), Digest([0; 32]));
        assert_eq!(ledger(4, 1).root(), entry(0));
        assert_eq!(ledger(4, 2).root(), node_hash(&entry(0), &entry(1)));
        let block0 = node_hash(
            &node_hash(&entry(0), &entry(1)),
            &node_hash(&entry(2), &entry(3)),
        );
        assert_eq!(ledger(4, 4).root(), block0);
        assert_eq!(ledger(4, 5).root(), node_hash(&block0, &entry(4)));
    }

    #[test]
    fn paths_equal_merkle_cbt_lemmas() {
        for n in 1..40u64 {
            let leaves: Vec<Digest> = (0..n).map(entry).collect();
            let tree = BlockTree::build(&leaves).unwrap();
            let cbmt = Cbmt::build_merkle_tree(&leaves);
            for j in 0..n {
                let proof = cbmt.build_proof(&[j as u32]).unwrap();
                assert_eq!(tree.path(j).unwrap(), proof.lemmas(), "n={n} j={j}");
                assert_eq!(tree.leaf(j), Some(leaves[j as usize]));
            }
            assert_eq!(tree.path(n), None);
            assert_eq!(tree.leaf(n), None);
            assert_eq!(tree.leaf_count(), n);
            assert_eq!(tree.root(), spec_root(&leaves));
        }
        assert_eq!(
            BlockTree::build(&[]).unwrap_err().code(),
            "merkle_empty_block"
        );
    }

    #[test]
    fn push_seals_each_full_block_once() {
        let mut ledger = LedgerTree::new(3).unwrap();
        let mut sealed = Vec::new();
        for i in 0..10 {
            if let Some(root) = ledger.push(entry(i)) {
                sealed.push((i, root));
            }
        }
        let blocks: Vec<Digest> = (0..3)
            .map(|k| merkle_root(&[entry(3 * k), entry(3 * k + 1), entry(3 * k + 2)]))
            .collect();
        assert_eq!(sealed, vec![(2, blocks[0]), (5, blocks[1]), (8, blocks[2])]);
        assert_eq!(ledger.sealed_roots(), blocks.as_slice());
        assert_eq!(ledger.open_leaves(), &[entry(9)]);
        assert_eq!(ledger.size(), 10);
    }

    #[test]
    fn sealed_roots_are_taken_as_stored() {
        // Synthetic roots that no leaves produce: the root must be built from them as given.
        let roots = vec![Digest([1; 32]), Digest([2; 32])];
        let ledger = LedgerTree::restore(4, roots.clone(), vec![entry(8)]).unwrap();
        assert_eq!(ledger.size(), 9);
        assert_eq!(ledger.root(), spec_root(&[roots[0], roots[1], entry(8)]));
        assert_eq!(ledger.root_at(8), Some(spec_root(&roots)));
    }

    #[test]
    fn root_at_answers_exactly_when_the_blocks_are_held() {
        let block_size = 4;
        let full = ledger(block_size, 14);
        let leaves: Vec<Digest> = (0..14).map(entry).collect();
        for size in 0..=16u64 {
            let available = size <= 14 && (size % block_size == 0 || size >= 12);
            let expected = available.then(|| spec_ledger_root(&leaves[..size as usize], 4));
            assert_eq!(full.root_at(size), expected, "size {size}");
            assert_eq!(
                full.checkpoint_tree_at(size).map(|c| (c.size(), c.root())),
                expected.map(|root| (size, root)),
                "size {size}"
            );
        }
    }

    #[test]
    fn block_size_must_fit_a_proof() {
        assert_eq!(
            LedgerTree::new(0).unwrap_err(),
            MerkleError::InvalidBlockSize(0)
        );
        assert_eq!(
            LedgerTree::new(1 << 32).unwrap_err().code(),
            "merkle_invalid_block_size"
        );
        assert!(LedgerTree::new(u64::from(u32::MAX)).is_ok());
        assert_eq!(
            CheckpointTree::from_block_roots(0, 0, &[])
                .unwrap_err()
                .code(),
            "merkle_invalid_block_size"
        );
    }

    #[test]
    fn restore_refuses_a_full_open_block() {
        assert_eq!(
            LedgerTree::restore(2, vec![], vec![entry(0), entry(1)]).unwrap_err(),
            MerkleError::OpenBlockFull {
                block_size: 2,
                leaves: 2
            }
        );
        assert!(LedgerTree::restore(2, vec![], vec![entry(0)]).is_ok());
    }

    #[test]
    fn checkpoint_tree_needs_one_root_per_block() {
        let roots = [entry(0), entry(1)];
        assert!(CheckpointTree::from_block_roots(4, 5, &roots).is_ok());
        assert!(CheckpointTree::from_block_roots(4, 8, &roots).is_ok());
        for size in [4, 9] {
            assert_eq!(
                CheckpointTree::from_block_roots(4, size, &roots)
                    .unwrap_err()
                    .code(),
                "merkle_block_count_mismatch"
            );
        }
        let empty = CheckpointTree::from_block_roots(4, 0, &[]).unwrap();
        assert_eq!(empty.root(), EMPTY_ROOT);
        assert_eq!(empty.block_entries(0), None);
    }

    #[test]
    fn checkpoint_tree_matches_ledger_and_stored_roots() {
        let ledger = ledger(4, 10);
        let checkpoint = ledger.checkpoint_tree();
        assert_eq!(checkpoint.root(), ledger.root());
        assert_eq!(checkpoint.size(), 10);
        assert_eq!(checkpoint.block_size(), 4);
        assert_eq!(checkpoint.block_count(), 3);
        assert_eq!(checkpoint.block_root(0), Some(ledger.sealed_roots()[0]));
        assert_eq!(
            checkpoint.block_root(2),
            Some(merkle_root(&[entry(8), entry(9)]))
        );
        assert_eq!(checkpoint.block_root(3), None);
        assert_eq!(checkpoint.block_entries(5), Some(4..8));
        assert_eq!(checkpoint.block_entries(9), Some(8..10));
        assert_eq!(checkpoint.block_entries(10), None);
        let rebuilt = CheckpointTree::from_block_roots(
            4,
            10,
            &[
                ledger.sealed_roots()[0],
                ledger.sealed_roots()[1],
                merkle_root(ledger.open_leaves()),
            ],
        )
        .unwrap();
        assert_eq!(rebuilt.root(), ledger.root());
    }

    #[test]
    fn prove_refuses_the_wrong_block_or_index() {
        let ledger = ledger(4, 10);
        let checkpoint = ledger.checkpoint_tree();
        let err = checkpoint.prove(10, &block_tree(4, 10, 9)).unwrap_err();
        assert_eq!(
            err,
            MerkleError::IndexOutOfRange {
                index: 10,
                size: 10
            }
        );
        assert_eq!(err.code(), "merkle_index_out_of_range");
        // Block 1 given for an entry of block 0 (same leaf count, other root).
        let err = checkpoint.prove(1, &block_tree(4, 10, 5)).unwrap_err();
        assert_eq!(err, MerkleError::WrongBlock { block: 0, size: 10 });
        assert_eq!(err.code(), "merkle_wrong_block");
        // The open block cut at another size.
        let err = checkpoint.prove(8, &block_tree(4, 11, 8)).unwrap_err();
        assert_eq!(err, MerkleError::WrongBlock { block: 2, size: 10 });
    }

    #[test]
    fn verify_rejects_malformed_proofs_with_their_codes() {
        let ledger = ledger(4, 10);
        let root = ledger.root();
        let good = prove(&ledger, &ledger.checkpoint_tree(), 5);
        assert_eq!(verify_inclusion(&good, entry(5), root), Ok(()));

        let zero = InclusionProof {
            block_size: 0,
            ..good.clone()
        };
        assert_eq!(
            verify_inclusion(&zero, entry(5), root).unwrap_err().code(),
            "proof_invalid_block_size"
        );
        let outside = InclusionProof {
            index: 10,
            ..good.clone()
        };
        assert_eq!(
            verify_inclusion(&outside, entry(5), root),
            Err(ProofError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        let mut long_leaf = good.clone();
        long_leaf.leaf_path.push(root);
        assert_eq!(
            verify_inclusion(&long_leaf, entry(5), root),
            Err(ProofError::LeafPathLength {
                expected: 2,
                actual: 3
            })
        );
        let mut short_block = good.clone();
        short_block.block_path.pop();
        assert_eq!(
            verify_inclusion(&short_block, entry(5), root)
                .unwrap_err()
                .code(),
            "proof_block_path_length"
        );
        assert_eq!(
            verify_inclusion(&good, entry(6), root).unwrap_err().code(),
            "proof_root_mismatch"
        );
    }

    #[test]
    fn verify_handles_positions_beyond_64_bits() {
        // Block size 1 and a huge size: the block position m − 1 + k exceeds u64::MAX. The
        // lengths are checked before any hashing, so a short path is refused, not overflowed.
        let proof = InclusionProof {
            index: u64::MAX - 1,
            size: u64::MAX,
            block_size: 1,
            leaf_path: vec![],
            block_path: vec![],
        };
        assert_eq!(
            verify_inclusion(&proof, entry(0), EMPTY_ROOT),
            Err(ProofError::BlockPathLength {
                expected: 64,
                actual: 0
            })
        );
        let proof = InclusionProof {
            block_path: vec![EMPTY_ROOT; 64],
            ..proof
        };
        assert_eq!(
            verify_inclusion(&proof, entry(0), EMPTY_ROOT),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn proof_json_is_camel_case_with_hex_digests() {
        let ledger = ledger(4, 5);
        let proof = prove(&ledger, &ledger.checkpoint_tree(), 4);
        let json = serde_json::to_value(&proof).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "index": 4,
                "size": 5,
                "blockSize": 4,
                "leafPath": [],
                "blockPath": [ledger.sealed_roots()[0].to_hex()],
            })
        );
        let back: InclusionProof = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, proof);
        let mut extra = json;
        extra["leafHash"] = serde_json::json!(entry(4).to_hex());
        assert!(serde_json::from_value::<InclusionProof>(extra).is_err());
    }

    #[test]
    fn error_codes_are_distinct_snake_case() {
        let codes = [
            MerkleError::InvalidBlockSize(0).code(),
            MerkleError::EmptyBlock.code(),
            MerkleError::OpenBlockFull {
                block_size: 1,
                leaves: 1,
            }
            .code(),
            MerkleError::BlockCountMismatch {
                size: 0,
                expected: 0,
                actual: 1,
            }
            .code(),
            MerkleError::IndexOutOfRange { index: 0, size: 0 }.code(),
            MerkleError::WrongBlock { block: 0, size: 0 }.code(),
            ProofError::InvalidBlockSize.code(),
            ProofError::IndexOutOfRange { index: 0, size: 0 }.code(),
            ProofError::LeafPathLength {
                expected: 0,
                actual: 1,
            }
            .code(),
            ProofError::BlockPathLength {
                expected: 0,
                actual: 1,
            }
            .code(),
            ProofError::RootMismatch.code(),
        ];
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    /// Path positions of entry `index` at `size`: (leaf count, block count).
    fn shape(block_size: u64, size: u64, index: u64) -> (u64, u64) {
        (
            leaves_in_block(size, block_size, index / block_size),
            size.div_ceil(block_size),
        )
    }

    /// An honest consistency proof from the ledger of `leaves` at `old` to `new` entries.
    fn prove_consistency(
        leaves: &[Digest],
        block_size: u64,
        old: u64,
        new: u64,
    ) -> ConsistencyProof {
        let mut ledger = LedgerTree::new(block_size).unwrap();
        for leaf in &leaves[..new as usize] {
            ledger.push(*leaf);
        }
        let checkpoint = ledger.checkpoint_tree();
        let block = checkpoint.consistency_entries(old).unwrap().map(|range| {
            BlockTree::build(&leaves[range.start as usize..range.end as usize]).unwrap()
        });
        checkpoint.prove_consistency(old, block.as_ref()).unwrap()
    }

    #[test]
    fn consistency_proof_json_and_shape() {
        let leaves: Vec<Digest> = (0..11).map(entry).collect();
        let proof = prove_consistency(&leaves, 4, 6, 11);
        let blocks: Vec<Digest> = leaves.chunks(4).map(spec_root).collect();
        let json = serde_json::to_value(&proof).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "oldSize": 6,
                "newSize": 11,
                "blockSize": 4,
                "blockRoots": [blocks[0].to_hex(), blocks[2].to_hex()],
                "leaves": [entry(4).to_hex(), entry(5).to_hex(), entry(6).to_hex(), entry(7).to_hex()],
            })
        );
        let back: ConsistencyProof = serde_json::from_value(json).unwrap();
        assert_eq!(back, proof);
        let old = spec_ledger_root(&leaves[..6], 4);
        let new = spec_ledger_root(&leaves, 4);
        assert_eq!(verify_consistency(&proof, 6, old, 11, new, 4), Ok(()));
        // A block boundary at the old size: block roots only.
        let proof = prove_consistency(&leaves, 4, 8, 11);
        assert_eq!(proof.block_roots, blocks);
        assert!(proof.leaves.is_empty());
        // Nothing to carry from the empty ledger, or between equal sizes.
        for (old, new) in [(0, 11), (7, 7), (0, 0)] {
            let proof = prove_consistency(&leaves, 4, old, new);
            assert!(proof.block_roots.is_empty() && proof.leaves.is_empty());
        }
    }

    #[test]
    fn consistency_refusals_have_their_codes() {
        let leaves: Vec<Digest> = (0..11).map(entry).collect();
        let old = spec_ledger_root(&leaves[..6], 4);
        let new = spec_ledger_root(&leaves, 4);
        let proof = prove_consistency(&leaves, 4, 6, 11);
        let code = |p: &ConsistencyProof, o: u64, n: u64, b: u32| {
            verify_consistency(p, o, old, n, new, b).unwrap_err().code()
        };
        assert_eq!(code(&proof, 6, 11, 0), "consistency_invalid_block_size");
        assert_eq!(code(&proof, 11, 6, 4), "consistency_sizes_reversed");
        assert_eq!(code(&proof, 5, 11, 4), "consistency_wrong_checkpoints");
        assert_eq!(code(&proof, 6, 11, 8), "consistency_wrong_checkpoints");
        let mut short = proof.clone();
        short.block_roots.pop();
        assert_eq!(code(&short, 6, 11, 4), "consistency_block_roots_length");
        let mut long = proof.clone();
        long.leaves.push(entry(8));
        assert_eq!(code(&long, 6, 11, 4), "consistency_leaves_length");
        assert_eq!(
            verify_consistency(&proof, 6, new, 11, new, 4),
            Err(ConsistencyError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(&proof, 6, old, 11, old, 4),
            Err(ConsistencyError::NewRootMismatch)
        );
        let checkpoint = ledger(4, 11).checkpoint_tree();
        assert_eq!(
            checkpoint.prove_consistency(6, None).unwrap_err().code(),
            "merkle_wrong_block"
        );
        assert_eq!(
            checkpoint.prove_consistency(12, None).unwrap_err().code(),
            "merkle_index_out_of_range"
        );
        let codes = [
            ConsistencyError::InvalidBlockSize,
            ConsistencyError::SizesReversed { old: 1, new: 0 },
            ConsistencyError::WrongCheckpoints {
                proof_old: 0,
                proof_new: 0,
                proof_block_size: 0,
            },
            ConsistencyError::BlockRootsLength {
                expected: 0,
                actual: 1,
            },
            ConsistencyError::LeavesLength {
                expected: 0,
                actual: 1,
            },
            ConsistencyError::OldRootMismatch,
            ConsistencyError::NewRootMismatch,
        ]
        .map(|e| e.code());
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn consistency_from_the_empty_ledger() {
        let new = spec_ledger_root(&[entry(0), entry(1)], 4);
        let proof = prove_consistency(&[entry(0), entry(1)], 4, 0, 2);
        assert_eq!(verify_consistency(&proof, 0, EMPTY_ROOT, 2, new, 4), Ok(()));
        assert_eq!(
            verify_consistency(&proof, 0, new, 2, new, 4),
            Err(ConsistencyError::OldRootMismatch)
        );
        let empty = prove_consistency(&[], 4, 0, 0);
        assert_eq!(
            verify_consistency(&empty, 0, EMPTY_ROOT, 0, EMPTY_ROOT, 4),
            Ok(())
        );
        assert_eq!(
            verify_consistency(&empty, 0, EMPTY_ROOT, 0, new, 4),
            Err(ConsistencyError::NewRootMismatch)
        );
    }

    /// The leaves `keep` picks, with their positions.
    fn picked(leaves: &[Digest], keep: &[bool]) -> (Vec<u64>, Vec<(u64, Digest)>) {
        let positions: Vec<u64> = (0..leaves.len() as u64)
            .filter(|j| keep[*j as usize % keep.len()])
            .collect();
        let given = positions
            .iter()
            .map(|j| (*j, leaves[*j as usize]))
            .collect();
        (positions, given)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A multiproof gives the tree's root, has merkle-cbt's lemmas in merkle-cbt's order,
        /// and no lemma for a whole tree.
        #[test]
        fn multiproofs_give_the_root_and_match_merkle_cbt(
            n in 1u64..70,
            keep in proptest::collection::vec(any::<bool>(), 1..9),
        ) {
            let leaves: Vec<Digest> = (0..n).map(entry).collect();
            let tree = BlockTree::build(&leaves).expect("tree");
            let (positions, given) = picked(&leaves, &keep);
            prop_assume!(!positions.is_empty());
            let lemmas = tree.multiproof(&positions).expect("multiproof");
            prop_assert_eq!(multiproof_root(n, &given, &lemmas), Ok(tree.root()));
            let indices: Vec<u32> = positions.iter().map(|j| *j as u32).collect();
            let theirs = Cbmt::build_merkle_proof(&leaves, &indices).expect("merkle-cbt proof");
            prop_assert_eq!(theirs.lemmas(), lemmas.as_slice());
            if positions.len() as u64 == n {
                prop_assert!(lemmas.is_empty());
            }
            if let [j] = positions.as_slice() {
                prop_assert_eq!(Some(lemmas.clone()), tree.path(*j));
            }
        }

        /// Any change to a multiproof or its leaves loses the root.
        #[test]
        fn an_altered_multiproof_does_not_give_the_root(
            n in 2u64..70,
            keep in proptest::collection::vec(any::<bool>(), 1..9),
            pick in any::<prop::sample::Index>(),
        ) {
            let leaves: Vec<Digest> = (0..n).map(entry).collect();
            let tree = BlockTree::build(&leaves).expect("tree");
            let (positions, mut given) = picked(&leaves, &keep);
            prop_assume!(!positions.is_empty());
            let mut lemmas = tree.multiproof(&positions).expect("multiproof");
            if lemmas.is_empty() {
                let k = pick.index(given.len());
                given[k].1 = entry(1_000 + k as u64);
            } else {
                let k = pick.index(lemmas.len());
                lemmas[k] = entry(1_000 + k as u64);
            }
            prop_assert_ne!(multiproof_root(n, &given, &lemmas), Ok(tree.root()));
        }
    }

    #[test]
    fn a_multiproof_with_a_lemma_short_or_over_or_bad_positions_is_refused() {
        let leaves: Vec<Digest> = (0..10).map(entry).collect();
        let tree = BlockTree::build(&leaves).expect("tree");
        let given = [(2, leaves[2]), (7, leaves[7])];
        let lemmas = tree.multiproof(&[2, 7]).expect("multiproof");
        assert_eq!(multiproof_root(10, &given, &lemmas), Ok(tree.root()));
        assert_eq!(
            multiproof_root(10, &given, &lemmas[1..]),
            Err(MultiproofError::TooFewLemmas)
        );
        let mut over = lemmas.clone();
        over.push(entry(99));
        assert_eq!(
            multiproof_root(10, &given, &over),
            Err(MultiproofError::TooManyLemmas)
        );
        assert_eq!(
            multiproof_root(10, &[(7, leaves[7]), (2, leaves[2])], &lemmas),
            Err(MultiproofError::PositionsNotIncreasing {
                position: 2,
                after: 7
            })
        );
        assert_eq!(
            multiproof_root(10, &[(10, leaves[2])], &lemmas),
            Err(MultiproofError::PositionOutOfRange {
                position: 10,
                leaf_count: 10
            })
        );
        assert_eq!(
            multiproof_root(10, &[], &lemmas),
            Err(MultiproofError::NoLeaves)
        );
        assert_eq!(tree.multiproof(&[7, 2]), None);
        assert_eq!(tree.multiproof(&[10]), None);
        let one = BlockTree::build(&leaves[..1]).expect("tree");
        assert_eq!(one.multiproof(&[0]), Some(Vec::new()));
        assert_eq!(multiproof_root(1, &[(0, leaves[0])], &[]), Ok(leaves[0]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn incremental_root_equals_spec_root(block_size in 1u64..=9, size in 0u64..=70) {
            let leaves: Vec<Digest> = (0..size).map(entry).collect();
            let mut ledger = LedgerTree::new(block_size).unwrap();
            prop_assert_eq!(ledger.root(), EMPTY_ROOT);
            for (i, leaf) in leaves.iter().enumerate() {
                ledger.push(*leaf);
                prop_assert_eq!(ledger.root(), spec_ledger_root(&leaves[..=i], block_size));
            }
            prop_assert_eq!(ledger.checkpoint_tree().root(), ledger.root());
        }

        #[test]
        fn every_proof_verifies_and_tampering_fails(
            block_size in 1u64..=9,
            size in 1u64..=70,
            pick in any::<prop::sample::Index>(),
            other in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let ledger = ledger(block_size, size);
            let root = ledger.root();
            let checkpoint = ledger.checkpoint_tree();
            for index in 0..size {
                let proof = prove(&ledger, &checkpoint, index);
                prop_assert_eq!(verify_inclusion(&proof, entry(index), root), Ok(()));
            }

            let index = pick.index(size as usize) as u64;
            let proof = prove(&ledger, &checkpoint, index);
            prop_assert!(verify_inclusion(&proof, entry(index + 1), root).is_err());
            let mut other_root = root;
            other_root.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                verify_inclusion(&proof, entry(index), other_root),
                Err(ProofError::RootMismatch)
            );
            let lemma_count = proof.leaf_path.len() + proof.block_path.len();
            for lemma in 0..lemma_count {
                let mut bad = proof.clone();
                let target = if lemma < bad.leaf_path.len() {
                    &mut bad.leaf_path[lemma]
                } else {
                    &mut bad.block_path[lemma - proof.leaf_path.len()]
                };
                target.0[bit / 8] ^= 1 << (bit % 8);
                prop_assert_eq!(
                    verify_inclusion(&bad, entry(index), root),
                    Err(ProofError::RootMismatch)
                );
            }

            let wrong_index = other.index(size as usize + 2) as u64;
            if wrong_index != index {
                let bad = InclusionProof { index: wrong_index, ..proof.clone() };
                prop_assert!(verify_inclusion(&bad, entry(index), root).is_err());
            }

            // A wrong size fails unless it leaves both path positions unchanged (see module docs).
            for wrong_size in (0..size + 2 * block_size + 2).filter(|s| *s != size) {
                let bad = InclusionProof { size: wrong_size, ..proof.clone() };
                let same_shape = index < wrong_size
                    && shape(block_size, wrong_size, index) == shape(block_size, size, index);
                prop_assert_eq!(
                    verify_inclusion(&bad, entry(index), root).is_ok(),
                    same_shape,
                    "wrong size {}", wrong_size
                );
            }
        }
        #[test]
        fn consistency_proofs_verify_and_tampering_fails(
            block_size in 1u64..=9,
            new_size in 0u64..=60,
            pick in any::<prop::sample::Index>(),
            changed in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let leaves: Vec<Digest> = (0..new_size).map(entry).collect();
            let roots: Vec<Digest> = (0..=new_size)
                .map(|size| spec_ledger_root(&leaves[..size as usize], block_size))
                .collect();
            let b = block_size as u32;
            for old in 0..=new_size {
                let proof = prove_consistency(&leaves, block_size, old, new_size);
                prop_assert_eq!(
                    verify_consistency(&proof, old, roots[old as usize], new_size, roots[new_size as usize], b),
                    Ok(()),
                    "old {}", old
                );
            }

            let old = pick.index(new_size as usize + 1) as u64;
            let (old_root, new_root) = (roots[old as usize], roots[new_size as usize]);
            let proof = prove_consistency(&leaves, block_size, old, new_size);

            // Every digest of the proof matters.
            let digests = proof.block_roots.len() + proof.leaves.len();
            for d in 0..digests {
                let mut bad = proof.clone();
                let target = if d < bad.block_roots.len() {
                    &mut bad.block_roots[d]
                } else {
                    &mut bad.leaves[d - proof.block_roots.len()]
                };
                target.0[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(&bad, old, old_root, new_size, new_root, b).is_err());
            }

            // Swapped or altered roots.
            if old_root != new_root {
                prop_assert!(verify_consistency(&proof, old, new_root, new_size, old_root, b).is_err());
            }
            // (Every ledger extends the empty one: from 0, the new root is not looked at.)
            let mut other = new_root;
            other.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                verify_consistency(&proof, old, old_root, new_size, other, b).is_err(),
                old > 0 || new_size == 0
            );
            if old > 0 {
                let mut other = old_root;
                other.0[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(&proof, old, other, new_size, new_root, b).is_err());
            }

            // A proof for other sizes does not pass for these checkpoints, even relabelled.
            for wrong in (0..=new_size).filter(|s| *s != old) {
                let bad = prove_consistency(&leaves, block_size, wrong, new_size);
                prop_assert!(verify_consistency(&bad, old, old_root, new_size, new_root, b).is_err());
                let relabelled = ConsistencyProof { old_size: old, ..bad };
                // (From 0 and between equal sizes both proofs are empty, so they coincide.)
                if relabelled != proof {
                    prop_assert!(
                        verify_consistency(&relabelled, old, old_root, new_size, new_root, b).is_err(),
                        "proof for {} passed as {}", wrong, old
                    );
                }
                let relabelled = ConsistencyProof { old_size: wrong, ..proof.clone() };
                prop_assert!(
                    verify_consistency(&relabelled, wrong, old_root, new_size, new_root, b).is_err()
                );
            }

            // A new ledger that changed one of the first `old` entries is not an extension.
            if old > 0 {
                let i = changed.index(old as usize);
                let mut rewritten = leaves.clone();
                rewritten[i] = leaf_hash(b"rewritten");
                let rewritten_root = spec_ledger_root(&rewritten, block_size);
                let forged = prove_consistency(&rewritten, block_size, old, new_size);
                prop_assert!(
                    verify_consistency(&forged, old, old_root, new_size, rewritten_root, b).is_err(),
                    "entry {} rewritten", i
                );
            }
        }
    }
}
