//! The registry's published checkpoints and what proofs are built from.
//!
//! The sequencer signs a checkpoint when the ledger has grown and the checkpoint interval has
//! passed, and stores it before publishing it here. Proofs are built against stored
//! checkpoints only, so every proof the registry hands out can be checked against a signature
//! the registry will show again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use lading_domain::merkle::{BlockTree, CheckpointTree};
use lading_domain::Digest;
use lading_store::models::CheckpointRow;
use lading_store::{ledger, Store, StoreError};

use crate::refusal::Refusal;

// What is published and proved, as it crosses the wire (`lading_domain::checkpoint`).
pub use lading_domain::checkpoint::{ConsistencyAnswer, ProofAnswer, PublishedCheckpoint};

/// Bounded caches: a proof request costs memory lookups once its trees are built.
const TREE_CACHE: usize = 64;

#[derive(Debug, Default)]
struct State {
    latest: Option<PublishedCheckpoint>,
    sealed_roots: Vec<Digest>,
}

#[derive(Default)]
struct Trees {
    checkpoints: HashMap<u64, Arc<CheckpointTree>>,
    /// Keyed by (block number, leaf count): an open block cut at different sizes differs.
    blocks: HashMap<(u64, u64), Arc<BlockTree>>,
}

/// Shared between the sequencer (which publishes) and the readers (which prove).
#[derive(Clone)]
pub struct CheckpointBook {
    state: Arc<RwLock<State>>,
    trees: Arc<Mutex<Trees>>,
    block_size: u64,
    /// The size of the latest published checkpoint, for readers that wait for one.
    published: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for CheckpointBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointBook")
            .field("latest", &self.latest().map(|c| c.checkpoint.size))
            .finish_non_exhaustive()
    }
}

impl CheckpointBook {
    pub(crate) fn new(block_size: u64, latest: Option<PublishedCheckpoint>) -> Self {
        let size = latest.as_ref().map_or(0, |c| c.checkpoint.size);
        Self {
            published: tokio::sync::watch::Sender::new(size),
            state: Arc::new(RwLock::new(State {
                latest,
                sealed_roots: Vec::new(),
            })),
            trees: Arc::default(),
            block_size,
        }
    }

    pub fn latest(&self) -> Option<PublishedCheckpoint> {
        self.read().latest.clone()
    }

    pub(crate) fn publish(&self, checkpoint: PublishedCheckpoint) {
        let size = checkpoint.checkpoint.size;
        self.write().latest = Some(checkpoint);
        self.published.send_replace(size);
    }

    /// Waits until a published checkpoint covers entry `index` (its size is above `index`), at
    /// most `timeout`; true if one does. Woken by [`Self::publish`], so nothing polls.
    pub async fn wait_until_covered(&self, index: u64, timeout: std::time::Duration) -> bool {
        let mut published = self.published.subscribe();
        let covered = tokio::time::timeout(timeout, published.wait_for(|size| *size > index)).await;
        matches!(covered, Ok(Ok(_)))
    }

    pub(crate) fn set_sealed_roots(&self, roots: Vec<Digest>) {
        self.write().sealed_roots = roots;
    }

    /// How many sealed block roots proofs can use now.
    pub(crate) fn sealed_count(&self) -> u64 {
        self.read().sealed_roots.len() as u64
    }

    pub(crate) fn extend_sealed_roots(&self, roots: &[Digest]) {
        if !roots.is_empty() {
            self.write().sealed_roots.extend_from_slice(roots);
        }
    }

    /// Builds the inclusion proof of entry `index` against the stored checkpoint of `size`
    /// (the latest when `None`). Blocking: reads leaf hashes from the database on a cache miss.
    pub fn prove(
        &self,
        store: &Store,
        index: u64,
        size: Option<u64>,
    ) -> Result<ProofAnswer, Refusal> {
        let checkpoint = match size {
            None => self.latest().ok_or_else(|| Refusal::Rule {
                code: "unknown_checkpoint",
                detail: "no checkpoint has been signed yet".into(),
            })?,
            Some(size) => self.stored_checkpoint(store, size)?,
        };
        let size = checkpoint.checkpoint.size;
        if index >= size {
            return Err(Refusal::Rule {
                code: "entry_not_in_checkpoint",
                detail: format!("entry {index} is not in the checkpoint of size {size}"),
            });
        }
        let tree = self
            .checkpoint_tree(store, size)
            .map_err(Refusal::unavailable)?;
        if tree.root() != checkpoint.checkpoint.root {
            return Err(Refusal::unavailable(format!(
                "the stored checkpoint of size {size} does not match the stored entries"
            )));
        }
        let range = tree.block_entries(index).ok_or_else(|| Refusal::Rule {
            code: "entry_not_in_checkpoint",
            detail: format!("entry {index} is not in the checkpoint of size {size}"),
        })?;
        let block = self
            .block_tree(store, range)
            .map_err(Refusal::unavailable)?;
        let proof = tree.prove(index, &block).map_err(Refusal::unavailable)?;
        let leaf_hash = block
            .leaf(index % self.block_size)
            .ok_or_else(|| Refusal::unavailable("leaf missing from its block"))?;
        Ok(ProofAnswer {
            proof,
            leaf_hash,
            checkpoint,
        })
    }

    /// Proves that the stored checkpoint of size `to` extends the one of size `from`
    /// (`from ≤ to`; the caller refuses the reverse). Blocking: reads the database.
    pub fn consistency(
        &self,
        store: &Store,
        from: u64,
        to: u64,
    ) -> Result<ConsistencyAnswer, Refusal> {
        let (old, new) = (
            self.stored_checkpoint(store, from)?,
            self.stored_checkpoint(store, to)?,
        );
        let tree = self
            .checkpoint_tree(store, to)
            .map_err(Refusal::unavailable)?;
        if tree.root() != new.checkpoint.root {
            return Err(Refusal::unavailable(format!(
                "the stored checkpoint of size {to} does not match the stored entries"
            )));
        }
        let block = match tree
            .consistency_entries(from)
            .map_err(Refusal::unavailable)?
        {
            Some(range) => Some(
                self.block_tree(store, range)
                    .map_err(Refusal::unavailable)?,
            ),
            None => None,
        };
        let proof = tree
            .prove_consistency(from, block.as_deref())
            .map_err(Refusal::unavailable)?;
        Ok(ConsistencyAnswer {
            from: old,
            to: new,
            proof,
        })
    }

    fn checkpoint_tree(&self, store: &Store, size: u64) -> Result<Arc<CheckpointTree>, StoreError> {
        if let Some(tree) = self.lock_trees().checkpoints.get(&size) {
            return Ok(tree.clone());
        }
        let full = size / self.block_size;
        let mut roots: Vec<Digest> = {
            let state = self.read();
            state
                .sealed_roots
                .get(..usize::try_from(full).unwrap_or(usize::MAX))
                .map(<[Digest]>::to_vec)
                .ok_or_else(|| StoreError::Corrupt {
                    table: "blocks",
                    detail: format!("checkpoint of size {size} is beyond the sealed blocks"),
                })?
        };
        if size % self.block_size != 0 {
            let open = self.block_tree(store, full * self.block_size..size)?;
            roots.push(open.root());
        }
        let tree = Arc::new(
            CheckpointTree::from_block_roots(self.block_size, size, &roots).map_err(|e| {
                StoreError::Corrupt {
                    table: "blocks",
                    detail: e.to_string(),
                }
            })?,
        );
        let mut trees = self.lock_trees();
        if trees.checkpoints.len() >= TREE_CACHE {
            trees.checkpoints.clear();
        }
        trees.checkpoints.insert(size, tree.clone());
        Ok(tree)
    }

    fn block_tree(
        &self,
        store: &Store,
        range: std::ops::Range<u64>,
    ) -> Result<Arc<BlockTree>, StoreError> {
        let key = (range.start / self.block_size, range.end - range.start);
        if let Some(tree) = self.lock_trees().blocks.get(&key) {
            return Ok(tree.clone());
        }
        // Every entry below a signed checkpoint was acknowledged: a hot standby that holds a
        // checkpoint covering the range answers it (with all of it, or not at all).
        let wanted = range.end - range.start;
        let standby = store.on_standby(range.end, |conn, bound| {
            if range.end > bound {
                return Ok(None);
            }
            let leaves = leaf_digests(conn, range.start, range.end)?;
            Ok((leaves.len() as u64 == wanted).then_some(leaves))
        });
        let leaves = match standby {
            Some(leaves) => leaves,
            None => {
                let mut conn = store.conn()?;
                leaf_digests(&mut conn, range.start, range.end)?
            }
        };
        if leaves.len() as u64 != wanted {
            return Err(StoreError::Corrupt {
                table: "ledger_entries",
                detail: format!("entries {range:?} are not all stored"),
            });
        }
        let tree = Arc::new(BlockTree::build(&leaves).map_err(|e| StoreError::Corrupt {
            table: "blocks",
            detail: e.to_string(),
        })?);
        let mut trees = self.lock_trees();
        if trees.blocks.len() >= TREE_CACHE {
            trees.blocks.clear();
        }
        trees.blocks.insert(key, tree.clone());
        Ok(tree)
    }

    /// The signed checkpoint of `size`, as stored: from a hot standby when it holds it within
    /// its bound (at most the latest checkpoint published here), else from the primary.
    fn stored_checkpoint(&self, store: &Store, size: u64) -> Result<PublishedCheckpoint, Refusal> {
        let cap = self.latest().map_or(0, |c| c.checkpoint.size);
        let standby = store.on_standby(cap, |conn, bound| {
            if size > bound {
                return Ok(None);
            }
            ledger::checkpoint_at(conn, size)
        });
        if let Some(row) = standby {
            return published(&row).map_err(Refusal::unavailable);
        }
        let mut conn = store.conn().map_err(Refusal::unavailable)?;
        stored_checkpoint(&mut conn, size)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_trees(&self) -> std::sync::MutexGuard<'_, Trees> {
        self.trees.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Rebuilds a published checkpoint from its stored row (the signed JWS is the source of truth).
pub fn published(row: &CheckpointRow) -> Result<PublishedCheckpoint, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "checkpoints",
        detail,
    };
    let signed = lading_domain::checkpoint::SignedCheckpoint::parse(&row.signed)
        .map_err(|e| corrupt(e.to_string()))?;
    let checkpoint = *signed.unverified();
    if checkpoint.size as i64 != row.size || checkpoint.root.0.as_slice() != row.root.as_slice() {
        return Err(corrupt(format!(
            "checkpoint {} differs from its signature",
            row.size
        )));
    }
    Ok(PublishedCheckpoint {
        checkpoint,
        signed: row.signed.clone(),
    })
}

/// The signed checkpoint of `size`, as stored; `unknown_checkpoint` when none was signed.
fn stored_checkpoint(
    conn: &mut lading_store::PgConnection,
    size: u64,
) -> Result<PublishedCheckpoint, Refusal> {
    let row = ledger::checkpoint_at(conn, size)
        .map_err(Refusal::unavailable)?
        .ok_or_else(|| Refusal::Rule {
            code: "unknown_checkpoint",
            detail: format!("no checkpoint of size {size} was signed"),
        })?;
    published(&row).map_err(Refusal::unavailable)
}

/// Leaf hashes of entries `[from, to)` as digests.
pub fn leaf_digests(
    conn: &mut lading_store::PgConnection,
    from: u64,
    to: u64,
) -> Result<Vec<Digest>, StoreError> {
    ledger::leaf_hashes(conn, from, to)?
        .iter()
        .map(|l| Digest::from_slice(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt {
            table: "ledger_entries",
            detail: e.to_string(),
        })
}
