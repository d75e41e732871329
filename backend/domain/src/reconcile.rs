//! Reconciliation: where two copies of the ledger differ, found from the top of the Merkle tree
//! down, so that the hashes exchanged grow with the number of differences and the depth of the
//! tree, never with the size of the ledger.
//!
//! Two sides hold `size` leaf hashes under the two-level tree of [`crate::merkle`] (block trees
//! under a tree of block roots). The *asking* side (the registry) drives; the *answering* side
//! (a replica) answers from a snapshot of what it holds.
//!
//! 1. The answering side sends its root over the first `size` leaves. Equal roots: the copies
//!    agree, and that was the whole exchange.
//! 2. Otherwise, in rounds: the asking side sends one bit per hash it last received — *differs*
//!    or not — and the answering side sends the hashes of the children of every node whose bit
//!    is set, in order ([`Shape::children`] fixes the order; both sides compute it). The asking
//!    side checks that each pair of children hashes to the parent it was sent before (an
//!    answering side whose tree does not add up is caught), and compares them with its own.
//! 3. A differing node that is a leaf is a [`Difference`]: the entry's index, with both sides'
//!    leaf hashes. When no differing node has children left, the descent is over.
//!
//! Each difference costs at most two hashes per level of the tree (about 40 levels for a
//! billion entries); differences close together share the upper levels.
//!
//! [`wire`] holds the messages the two sides exchange around the descent.

use std::collections::HashMap;

pub mod wire;

use crate::merkle::{merkle_root, node_hash, MerkleError};
use crate::Digest;

/// The leaf hash a side reports for an entry it does not hold: no entry hashes to zero.
pub const MISSING_LEAF: Digest = Digest([0; 32]);

/// A node of the two-level tree, by its place in the CBMT layout of [`crate::merkle`]
/// (position `p` has children `2p + 1` and `2p + 2`; the last `n` of `2n − 1` are the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// Position in the tree over the block roots.
    Top(u64),
    /// Position in the tree of block `block`'s leaf hashes.
    Block { block: u64, position: u64 },
}

/// What a node stands for below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Below {
    /// An inner node: its two children, left then right.
    Children(Node, Node),
    /// The leaf hash of this entry.
    Entry(u64),
}

/// Why a reconciliation cannot go on: the other side broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    #[error("expected {expected} hashes, got {got}")]
    WrongCount { expected: usize, got: usize },
    #[error("expected a mask of {expected} bits, got {got} bytes")]
    WrongMask { expected: usize, got: usize },
    #[error("the children sent for {parent:?} do not hash to the parent sent before")]
    Inconsistent { parent: Node },
    #[error("block {block} should hold {expected} leaves, not {got}")]
    BlockLength { block: u64, expected: u64, got: u64 },
    #[error("the leaves of block {block} do not hash to its block root")]
    BlockRoot { block: u64 },
}

/// The tree's shape: `size` entries in blocks of `block_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    size: u64,
    block_size: u64,
}

impl Shape {
    pub fn new(size: u64, block_size: u64) -> Result<Self, MerkleError> {
        let block_size = crate::merkle::check_block_size(block_size)?;
        Ok(Self { size, block_size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Number of blocks, the last one possibly open.
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    /// Leaves in block `block`.
    pub fn block_len(&self, block: u64) -> u64 {
        let start = block * self.block_size;
        self.size.saturating_sub(start).min(self.block_size)
    }

    /// The root, where every descent starts (`None` for the empty ledger).
    pub fn root(&self) -> Option<Node> {
        (self.size > 0).then_some(Node::Top(0))
    }

    /// What `node` stands for. A block root is the top tree's leaf and its block tree's root at
    /// once; its children are those of the block tree.
    pub fn below(&self, node: Node) -> Below {
        let blocks = self.blocks();
        match node {
            Node::Top(p) if p + 1 < blocks => {
                Below::Children(Node::Top(2 * p + 1), Node::Top(2 * p + 2))
            }
            Node::Top(p) => self.below(Node::Block {
                block: p + 1 - blocks,
                position: 0,
            }),
            Node::Block { block, position } => {
                let n = self.block_len(block);
                if position + 1 >= n {
                    Below::Entry(block * self.block_size + position + 1 - n)
                } else {
                    Below::Children(
                        Node::Block {
                            block,
                            position: 2 * position + 1,
                        },
                        Node::Block {
                            block,
                            position: 2 * position + 2,
                        },
                    )
                }
            }
        }
    }

    /// The children of `node`, or nothing for an entry.
    pub fn children(&self, node: Node) -> Option<[Node; 2]> {
        match self.below(node) {
            Below::Children(left, right) => Some([left, right]),
            Below::Entry(_) => None,
        }
    }

    /// The block whose tree holds `node`'s hash (`None` for inner nodes of the top tree).
    fn block_of(&self, node: Node) -> Option<u64> {
        match node {
            Node::Top(p) if p + 1 < self.blocks() => None,
            Node::Top(p) => Some(p + 1 - self.blocks()),
            Node::Block { block, .. } => Some(block),
        }
    }
}

/// Every node of the CBMT over `list`, in the layout's order (`[0]` is the root).
fn cbmt_nodes(list: &[Digest]) -> Vec<Digest> {
    let n = list.len();
    if n == 0 {
        return Vec::new();
    }
    let mut nodes = vec![MISSING_LEAF; 2 * n - 1];
    nodes[n - 1..].copy_from_slice(list);
    for i in (0..n - 1).rev() {
        nodes[i] = node_hash(&nodes[2 * i + 1], &nodes[2 * i + 2]);
    }
    nodes
}

/// The root of every block of `leaves` (the ledger's first `leaves.len()` entries).
pub fn block_roots(block_size: u64, leaves: &[Digest]) -> Result<Vec<Digest>, MerkleError> {
    let block_size = crate::merkle::check_block_size(block_size)?;
    let chunk = usize::try_from(block_size).unwrap_or(usize::MAX);
    Ok(leaves.chunks(chunk).map(merkle_root).collect())
}

/// One side's hashes: the block roots of all its leaves, and the node arrays of the blocks a
/// descent has gone into (built from their leaves when first needed).
#[derive(Debug)]
struct Hashes {
    shape: Shape,
    top: Vec<Digest>,
    blocks: HashMap<u64, Vec<Digest>>,
}

impl Hashes {
    fn new(shape: Shape, block_roots: &[Digest]) -> Result<Self, ReconcileError> {
        let expected = shape.blocks();
        if block_roots.len() as u64 != expected {
            return Err(ReconcileError::WrongCount {
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
                got: block_roots.len(),
            });
        }
        Ok(Self {
            shape,
            top: cbmt_nodes(block_roots),
            blocks: HashMap::new(),
        })
    }

    fn root(&self) -> Digest {
        self.top
            .first()
            .copied()
            .unwrap_or(crate::merkle::EMPTY_ROOT)
    }

    fn has_block(&self, block: u64) -> bool {
        self.blocks.contains_key(&block)
    }

    fn add_block(&mut self, block: u64, leaves: &[Digest]) -> Result<(), ReconcileError> {
        let expected = self.shape.block_len(block);
        if leaves.len() as u64 != expected || expected == 0 {
            return Err(ReconcileError::BlockLength {
                block,
                expected,
                got: leaves.len() as u64,
            });
        }
        let nodes = cbmt_nodes(leaves);
        if Some(&nodes[0]) != self.top_leaf(block) {
            return Err(ReconcileError::BlockRoot { block });
        }
        self.blocks.insert(block, nodes);
        Ok(())
    }

    fn top_leaf(&self, block: u64) -> Option<&Digest> {
        let blocks = self.shape.blocks();
        usize::try_from(blocks - 1 + block)
            .ok()
            .and_then(|i| self.top.get(i))
    }

    /// `node`'s hash; `None` when it lies in a block not loaded yet.
    fn get(&self, node: Node) -> Option<Digest> {
        match node {
            Node::Top(p) => self.top.get(usize::try_from(p).ok()?).copied(),
            Node::Block { block, position } => self
                .blocks
                .get(&block)?
                .get(usize::try_from(position).ok()?)
                .copied(),
        }
    }
}

/// An entry found to differ: its index and the leaf hash each side holds there
/// ([`MISSING_LEAF`] where the answering side has no entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Difference {
    pub index: u64,
    pub ours: Digest,
    pub theirs: Digest,
}

/// The asking side of a descent.
#[derive(Debug)]
pub struct Descent {
    hashes: Hashes,
    /// The nodes whose hashes the other side sent last, with those hashes.
    received: Vec<(Node, Digest)>,
    /// For each of `received`: whether it differs from ours.
    differs: Vec<bool>,
    differences: Vec<Difference>,
    hashes_received: u64,
    rounds: u64,
}

impl Descent {
    /// Starts from the other side's root over the first `shape.size()` leaves, with our block
    /// roots over the same leaves.
    pub fn start(
        shape: Shape,
        our_block_roots: &[Digest],
        their_root: Digest,
    ) -> Result<Self, ReconcileError> {
        let hashes = Hashes::new(shape, our_block_roots)?;
        let mut descent = Self {
            hashes,
            received: Vec::new(),
            differs: Vec::new(),
            differences: Vec::new(),
            hashes_received: 0,
            rounds: 0,
        };
        if let Some(root) = shape.root() {
            descent.received.push((root, their_root));
            descent.compare()?;
        }
        Ok(descent)
    }

    /// Whether the roots agreed.
    pub fn agreed(&self) -> bool {
        !self.differs.iter().any(|d| *d)
    }

    /// The nodes whose hashes the next answer must hold, in order.
    pub fn asking(&self) -> Vec<Node> {
        children_of_marked(
            &self.hashes.shape,
            self.received.iter().map(|(node, _)| *node),
            &self.differs,
        )
    }

    /// Whether the descent is over: no differing node has children left to ask for.
    pub fn is_done(&self) -> bool {
        self.asking().is_empty()
    }

    /// Blocks whose leaves this side must load ([`Self::add_block`]) before the next answer
    /// can be compared.
    pub fn blocks_needed(&self) -> Vec<u64> {
        let mut blocks: Vec<u64> = self
            .asking()
            .into_iter()
            .filter_map(|node| self.hashes.shape.block_of(node))
            .filter(|block| !self.hashes.has_block(*block))
            .collect();
        blocks.dedup();
        blocks
    }

    /// Our leaf hashes of `block`, checked against our block root.
    pub fn add_block(&mut self, block: u64, leaves: &[Digest]) -> Result<(), ReconcileError> {
        self.hashes.add_block(block, leaves)
    }

    /// The mask to send: one bit per hash received last, set where it differs from ours
    /// (least significant bit first).
    pub fn mask(&self) -> Vec<u8> {
        pack(&self.differs)
    }

    /// Takes the other side's answer to [`Self::mask`]: the hashes of [`Self::asking`].
    pub fn receive(&mut self, answer: &[Digest]) -> Result<(), ReconcileError> {
        let asking = self.asking();
        if asking.len() != answer.len() {
            return Err(ReconcileError::WrongCount {
                expected: asking.len(),
                got: answer.len(),
            });
        }
        // Each pair must add up to the parent the other side sent before.
        let parents = self
            .received
            .iter()
            .zip(&self.differs)
            .filter(|(_, differs)| **differs)
            .filter(|((node, _), _)| self.hashes.shape.children(*node).is_some());
        for (((parent, parent_hash), _), pair) in parents.zip(answer.chunks(2)) {
            if pair.len() != 2 || node_hash(&pair[0], &pair[1]) != *parent_hash {
                return Err(ReconcileError::Inconsistent { parent: *parent });
            }
        }
        self.hashes_received += answer.len() as u64;
        self.rounds += 1;
        self.received = asking.into_iter().zip(answer.iter().copied()).collect();
        self.compare()
    }

    fn compare(&mut self) -> Result<(), ReconcileError> {
        let shape = self.hashes.shape;
        let mut differs = Vec::with_capacity(self.received.len());
        for (node, theirs) in &self.received {
            let needs_leaves =
                shape.children(*node).is_some() || matches!(node, Node::Block { .. });
            let ours = match self.hashes.get(*node) {
                Some(ours) => ours,
                None if needs_leaves => {
                    let block = shape.block_of(*node).unwrap_or_default();
                    return Err(ReconcileError::BlockLength {
                        block,
                        expected: shape.block_len(block),
                        got: 0,
                    });
                }
                None => return Err(ReconcileError::Inconsistent { parent: *node }),
            };
            let differ = ours != *theirs;
            if differ {
                if let Below::Entry(index) = shape.below(*node) {
                    self.differences.push(Difference {
                        index,
                        ours,
                        theirs: *theirs,
                    });
                }
            }
            differs.push(differ);
        }
        self.differs = differs;
        // The layout puts the leaves at two depths, so they are found out of index order.
        self.differences.sort_unstable_by_key(|d| d.index);
        Ok(())
    }

    /// The entries found to differ so far, in index order.
    pub fn differences(&self) -> &[Difference] {
        &self.differences
    }

    /// Hashes received after the root.
    pub fn hashes_received(&self) -> u64 {
        self.hashes_received
    }

    /// Rounds after the first exchange of roots.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }
}

/// The answering side of a descent: a snapshot of its leaves. Only the blocks a descent goes
/// into have their trees built.
#[derive(Debug)]
pub struct Answerer {
    hashes: Hashes,
    leaves: Vec<Digest>,
    /// The nodes whose hashes were sent last.
    sent: Vec<Node>,
}

impl Answerer {
    /// `leaves` are the first `shape.size()` leaf hashes held ([`MISSING_LEAF`] where an entry
    /// is missing); `block_roots` their block roots ([`block_roots`], which a caller may compute
    /// on several cores).
    pub fn new(
        shape: Shape,
        leaves: Vec<Digest>,
        block_roots: &[Digest],
    ) -> Result<Self, ReconcileError> {
        if leaves.len() as u64 != shape.size() {
            return Err(ReconcileError::WrongCount {
                expected: usize::try_from(shape.size()).unwrap_or(usize::MAX),
                got: leaves.len(),
            });
        }
        Ok(Self {
            hashes: Hashes::new(shape, block_roots)?,
            leaves,
            sent: shape.root().into_iter().collect(),
        })
    }

    /// The root over the snapshot, the first thing sent.
    pub fn root(&self) -> Digest {
        self.hashes.root()
    }

    /// Answers a mask over the hashes sent last with the hashes of the marked nodes' children.
    pub fn answer(&mut self, mask: &[u8]) -> Result<Vec<Digest>, ReconcileError> {
        let marked = unpack(mask, self.sent.len())?;
        let next = children_of_marked(&self.hashes.shape, self.sent.iter().copied(), &marked);
        for node in &next {
            if let Some(block) = self.hashes.shape.block_of(*node) {
                if !self.hashes.has_block(block) {
                    let range = self.block_range(block);
                    let leaves = self.leaves.get(range).unwrap_or_default().to_vec();
                    self.hashes.add_block(block, &leaves)?;
                }
            }
        }
        let hashes = next
            .iter()
            .map(|node| {
                self.hashes
                    .get(*node)
                    .ok_or(ReconcileError::Inconsistent { parent: *node })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.sent = next;
        Ok(hashes)
    }

    /// Replaces leaves from `start` on (rows put back) and recomputes the roots above them.
    pub fn replace(&mut self, start: u64, leaves: &[Digest]) -> Result<(), ReconcileError> {
        let shape = self.hashes.shape;
        let from = usize::try_from(start).unwrap_or(usize::MAX);
        let slots = self
            .leaves
            .get_mut(from..from.saturating_add(leaves.len()))
            .ok_or(ReconcileError::WrongCount {
                expected: 0,
                got: leaves.len(),
            })?;
        slots.copy_from_slice(leaves);
        let first = start / shape.block_size();
        let last = (start + leaves.len().max(1) as u64 - 1) / shape.block_size();
        let mut roots: Vec<Digest> = (0..shape.blocks())
            .map(|block| self.hashes.top_leaf(block).copied().unwrap_or(MISSING_LEAF))
            .collect();
        for block in first..=last {
            let range = self.block_range(block);
            roots[block as usize] = merkle_root(self.leaves.get(range).unwrap_or_default());
            self.hashes.blocks.remove(&block);
        }
        let blocks = std::mem::take(&mut self.hashes.blocks);
        self.hashes = Hashes::new(shape, &roots)?;
        self.hashes.blocks = blocks;
        Ok(())
    }

    fn block_range(&self, block: u64) -> std::ops::Range<usize> {
        let shape = self.hashes.shape;
        let start = usize::try_from(block * shape.block_size()).unwrap_or(usize::MAX);
        let len = usize::try_from(shape.block_len(block)).unwrap_or(0);
        start..start.saturating_add(len)
    }
}

fn children_of_marked(
    shape: &Shape,
    nodes: impl Iterator<Item = Node>,
    marked: &[bool],
) -> Vec<Node> {
    nodes
        .zip(marked)
        .filter(|(_, marked)| **marked)
        .filter_map(|(node, _)| shape.children(node))
        .flatten()
        .collect()
}

fn pack(bits: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; bits.len().div_ceil(8)];
    for (i, bit) in bits.iter().enumerate() {
        if *bit {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    bytes
}

fn unpack(bytes: &[u8], bits: usize) -> Result<Vec<bool>, ReconcileError> {
    if bytes.len() != bits.div_ceil(8) {
        return Err(ReconcileError::WrongMask {
            expected: bits,
            got: bytes.len(),
        });
    }
    Ok((0..bits)
        .map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, LedgerTree};
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n)
            .map(|i| leaf_hash(format!("entry-{i}").as_bytes()))
            .collect()
    }

    /// Runs a whole descent between our leaves and theirs, as the two sides would.
    fn reconcile(block_size: u64, ours: &[Digest], theirs: &[Digest]) -> Descent {
        let shape = Shape::new(ours.len() as u64, block_size).unwrap();
        let their_roots = block_roots(block_size, theirs).unwrap();
        let mut answerer = Answerer::new(shape, theirs.to_vec(), &their_roots).unwrap();
        let our_roots = block_roots(block_size, ours).unwrap();
        let mut descent = Descent::start(shape, &our_roots, answerer.root()).unwrap();
        let chunk = block_size as usize;
        while !descent.is_done() {
            for block in descent.blocks_needed() {
                let start = block as usize * chunk;
                let end = (start + chunk).min(ours.len());
                descent.add_block(block, &ours[start..end]).unwrap();
            }
            let answer = answerer.answer(&descent.mask()).unwrap();
            descent.receive(&answer).unwrap();
        }
        descent
    }

    #[test]
    fn the_root_is_the_ledger_root() {
        for (n, b) in [(1, 4), (3, 4), (4, 4), (5, 4), (17, 4), (1000, 7)] {
            let l = leaves(n);
            let shape = Shape::new(n, b).unwrap();
            let answerer = Answerer::new(shape, l.clone(), &block_roots(b, &l).unwrap()).unwrap();
            let mut tree = LedgerTree::new(b).unwrap();
            for leaf in &l {
                tree.push(*leaf);
            }
            assert_eq!(answerer.root(), tree.root(), "n={n} b={b}");
        }
    }

    #[test]
    fn agreeing_copies_exchange_only_the_root() {
        let l = leaves(100);
        let descent = reconcile(8, &l, &l);
        assert!(descent.agreed());
        assert!(descent.is_done());
        assert_eq!(descent.hashes_received(), 0);
        assert!(descent.differences().is_empty());
    }

    #[test]
    fn finds_one_altered_and_one_missing_entry() {
        let ours = leaves(1000);
        let mut theirs = ours.clone();
        theirs[17] = leaf_hash(b"altered");
        theirs[999] = MISSING_LEAF;
        let descent = reconcile(16, &ours, &theirs);
        let found: Vec<(u64, Digest)> = descent
            .differences()
            .iter()
            .map(|d| (d.index, d.theirs))
            .collect();
        assert_eq!(found, vec![(17, theirs[17]), (999, MISSING_LEAF)]);
        assert_eq!(descent.differences()[0].ours, ours[17]);
    }

    #[test]
    fn replaced_leaves_give_the_root_of_the_repaired_copy() {
        let ours = leaves(50);
        let mut theirs = ours.clone();
        theirs[9] = MISSING_LEAF;
        theirs[10] = MISSING_LEAF;
        theirs[33] = leaf_hash(b"altered");
        let shape = Shape::new(50, 8).unwrap();
        let mut answerer =
            Answerer::new(shape, theirs.clone(), &block_roots(8, &theirs).unwrap()).unwrap();
        assert_ne!(
            answerer.root(),
            merkle_root(&block_roots(8, &ours).unwrap())
        );
        answerer.replace(9, &ours[9..11]).unwrap();
        answerer.replace(33, &ours[33..34]).unwrap();
        assert_eq!(
            answerer.root(),
            merkle_root(&block_roots(8, &ours).unwrap())
        );
        // And it still answers a descent consistently.
        let descent = Descent::start(shape, &block_roots(8, &ours).unwrap(), answerer.root());
        assert!(descent.unwrap().agreed());
    }

    #[test]
    fn a_single_entry_ledger_differs_at_its_root() {
        let descent = reconcile(4, &leaves(1), &[MISSING_LEAF]);
        assert_eq!(descent.differences().len(), 1);
        assert_eq!(descent.differences()[0].index, 0);
        assert_eq!(descent.rounds(), 0);
    }

    #[test]
    fn an_answer_that_does_not_add_up_is_refused() {
        let ours = leaves(64);
        let mut theirs = ours.clone();
        theirs[5] = MISSING_LEAF;
        let shape = Shape::new(64, 8).unwrap();
        let mut answerer =
            Answerer::new(shape, theirs.clone(), &block_roots(8, &theirs).unwrap()).unwrap();
        let mut descent =
            Descent::start(shape, &block_roots(8, &ours).unwrap(), answerer.root()).unwrap();
        let mut answer = answerer.answer(&descent.mask()).unwrap();
        answer[0] = leaf_hash(b"lie");
        assert!(matches!(
            descent.receive(&answer),
            Err(ReconcileError::Inconsistent { .. })
        ));
        assert!(matches!(
            answerer.answer(&[0xff, 0xff]),
            Err(ReconcileError::WrongMask { .. })
        ));
    }

    #[test]
    fn a_block_that_is_not_ours_is_refused() {
        let ours = leaves(16);
        let shape = Shape::new(16, 8).unwrap();
        let mut descent =
            Descent::start(shape, &block_roots(8, &ours).unwrap(), leaf_hash(b"other")).unwrap();
        assert_eq!(
            descent.add_block(0, &ours[8..]),
            Err(ReconcileError::BlockRoot { block: 0 })
        );
        assert!(matches!(
            descent.add_block(1, &ours[8..15]),
            Err(ReconcileError::BlockLength { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Exactly the changed entries are found, and each costs at most two hashes per level.
        #[test]
        fn finds_exactly_the_changes(
            size in 1u64..600,
            block_size in 1u64..40,
            changes in proptest::collection::btree_set(0u64..600, 0..12),
            missing in any::<bool>(),
        ) {
            let ours = leaves(size);
            let mut theirs = ours.clone();
            let changed: Vec<u64> = changes.into_iter().filter(|i| *i < size).collect();
            for i in &changed {
                theirs[*i as usize] = if missing { MISSING_LEAF } else { leaf_hash(&i.to_le_bytes()) };
            }
            let descent = reconcile(block_size, &ours, &theirs);
            let found: Vec<u64> = descent.differences().iter().map(|d| d.index).collect();
            prop_assert_eq!(&found, &changed);
            let depth = |n: u64| 64 - n.max(1).leading_zeros() as u64 + 1;
            let levels = depth(size.div_ceil(block_size)) + depth(block_size);
            prop_assert!(descent.hashes_received() <= 2 * levels * changed.len() as u64);
        }
    }
}
