//! The replica's side of reconciliation: it answers from a snapshot of its rows as they are
//! now — not from what it verified, since finding rows changed under it is the point — and
//! puts back what the registry sends, but only what hashes to the leaves it verified itself.
//!
//! A session is opened by the registry (`POST /v1/reconciliation`), answered round by round
//! (`.../descend`) and closed by its repairs (`.../repair`). One session at a time: opening
//! another drops the last.

use std::sync::{Mutex, PoisonError};

use lading_domain::merkle::leaf_hash;
use lading_domain::reconcile::{block_roots, Answerer, Shape};
use lading_domain::Digest;
use lading_store::replica::{self, ReplicaEntryRow};
use lading_store::{incidents, reconciliations};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::node::{row_evidence, Node, NodeError};

/// Rows beyond the registry's size listed in a summary (the rest are counted).
const UNSIGNED_LISTED: usize = 16;

#[derive(Default)]
pub(crate) struct Sessions(Mutex<Option<Session>>);

struct Session {
    id: u64,
    started: chrono::DateTime<chrono::Utc>,
    registry_size: u64,
    compared: u64,
    answerer: Answerer,
    rounds: u32,
    hashes_sent: u64,
}

/// The first answer: what the replica holds, and its root over what both hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub session: u64,
    pub party: String,
    /// Entries held (rows, up to the last one).
    pub size: u64,
    /// Entries compared: the first `min(size, registry size)`.
    pub compared: u64,
    /// The root over the first `compared` rows as they are now.
    pub root: Digest,
    /// The largest signed checkpoint held.
    pub checkpoint: Option<CheckpointHeld>,
    /// Rows at or beyond the registry's size: entries it never signed.
    pub unsigned: Vec<UnsignedRow>,
    pub unsigned_count: u64,
    /// Milliseconds spent reading the rows' leaves, and building the trees over them.
    #[serde(default)]
    pub scan_millis: u64,
    #[serde(default)]
    pub tree_millis: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointHeld {
    pub size: u64,
    pub root: Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsignedRow {
    pub index: u64,
    pub leaf_hash: Digest,
}

/// The registry's originals for the rows that differ, and where rows it never signed begin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairRequest {
    pub entries: Vec<RepairEntry>,
    #[serde(default)]
    pub discard_from: Option<u64>,
    /// What the registry found, for the replica's own record.
    #[serde(default)]
    pub lost: Vec<u64>,
    #[serde(default)]
    pub altered: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairEntry {
    pub index: u64,
    pub leaf_hash: Digest,
    #[serde(default)]
    pub signed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairAnswer {
    pub repaired: u64,
    pub discarded: u64,
    /// The root over the compared entries after the repair, read back from the rows.
    pub root: Digest,
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, Option<Session>> {
    sessions.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// Opens a session: reads the rows' leaves (one row per block from PostgreSQL), builds
    /// the trees on all cores, and sums up.
    pub fn open_reconciliation(
        &self,
        registry_size: u64,
        registry_root: Option<Digest>,
    ) -> Result<Summary, NodeError> {
        let started = chrono::Utc::now();
        let clock = std::time::Instant::now();
        let block_size = self.follower().block_size();
        let mut conn = self.conn()?;
        let size = replica::size(&mut conn)?;
        let compared = size.min(registry_size);
        let leaves: Vec<Digest> = replica::held_leaves(&mut conn, compared, block_size)?
            .into_iter()
            .map(Digest)
            .collect();
        let scan_millis = clock.elapsed().as_millis() as u64;
        let unsigned_rows = if size > registry_size {
            replica::entries(&mut conn, registry_size, i64::MAX)?
        } else {
            Vec::new()
        };
        let checkpoint = replica::latest_checkpoint(&mut conn)?.and_then(|row| {
            Some(CheckpointHeld {
                size: row.size as u64,
                root: Digest::from_slice(&row.root).ok()?,
            })
        });
        drop(conn);
        let clock = std::time::Instant::now();
        let answerer = snapshot(compared, block_size, leaves)?;
        let tree_millis = clock.elapsed().as_millis() as u64;
        let id = rand_id();
        let summary = Summary {
            session: id,
            party: self.party().to_string(),
            size,
            compared,
            root: answerer.root(),
            checkpoint,
            unsigned_count: unsigned_rows.len() as u64,
            unsigned: unsigned_rows
                .iter()
                .take(UNSIGNED_LISTED)
                .map(|row| UnsignedRow {
                    index: row.idx as u64,
                    leaf_hash: Digest::from_slice(&row.leaf_hash).unwrap_or(Digest([0; 32])),
                })
                .collect(),
            scan_millis,
            tree_millis,
        };
        *lock(self.sessions()) = Some(Session {
            id,
            started,
            registry_size,
            compared,
            answerer,
            rounds: 0,
            hashes_sent: 0,
        });
        // Agreement on the whole ledger ends it here: the registry asks nothing more.
        if compared == registry_size && size == registry_size && registry_root == Some(summary.root)
        {
            self.record_agreement(id)?;
        }
        Ok(summary)
    }

    /// One round: the hashes of the children of the nodes the mask marks.
    pub fn descend(&self, session: u64, mask: &[u8]) -> Result<Vec<Digest>, NodeError> {
        let mut sessions = lock(self.sessions());
        let current = sessions
            .as_mut()
            .filter(|s| s.id == session)
            .ok_or_else(|| NodeError::Reconcile(format!("no open session {session}")))?;
        let hashes = current
            .answerer
            .answer(mask)
            .map_err(|e| NodeError::Reconcile(e.to_string()))?;
        current.rounds += 1;
        current.hashes_sent += hashes.len() as u64;
        Ok(hashes)
    }

    /// Puts back the registry's originals — each must hash to the leaf this replica verified
    /// at its index — and sets aside rows the registry never signed. Both are recorded as
    /// incidents with the rows as they were. Closes the session.
    pub fn repair(&self, session: u64, request: &RepairRequest) -> Result<RepairAnswer, NodeError> {
        let Session {
            started,
            registry_size,
            compared,
            mut answerer,
            rounds,
            hashes_sent,
            ..
        } = lock(self.sessions())
            .take()
            .filter(|s| s.id == session)
            .ok_or_else(|| NodeError::Reconcile(format!("no open session {session}")))?;
        let refuse = |detail: String| NodeError::Reconcile(detail);
        let mut rows = Vec::with_capacity(request.entries.len());
        {
            let follower = self.follower();
            for entry in &request.entries {
                if entry.index >= compared {
                    return Err(refuse(format!("entry {} was not compared", entry.index)));
                }
                if follower.leaf(entry.index) != Some(entry.leaf_hash) {
                    return Err(refuse(format!(
                        "entry {}: the registry's leaf is not the one this replica verified",
                        entry.index
                    )));
                }
                if let Some(signed) = &entry.signed {
                    if leaf_hash(signed.as_bytes()) != entry.leaf_hash {
                        return Err(refuse(format!(
                            "entry {}: the bytes sent do not hash to their leaf",
                            entry.index
                        )));
                    }
                }
                rows.push(ReplicaEntryRow {
                    idx: entry.index as i64,
                    leaf_hash: entry.leaf_hash.0.to_vec(),
                    signed: entry.signed.as_ref().map(|s| s.as_bytes().to_vec()),
                    document_ref: entry
                        .signed
                        .as_deref()
                        .and_then(crate::document_of)
                        .map(|d| d.to_string()),
                });
            }
        }
        let indices: Vec<u64> = request.entries.iter().map(|e| e.index).collect();
        let block_size = self.follower().block_size();
        let mut conn = self.conn()?;
        let before = replica::rows_at(&mut conn, &indices)?;
        replica::repair(&mut conn, &rows)?;
        // Rows beyond the registry's ledger: never beyond what this replica verified.
        let discarded = match request.discard_from {
            Some(from) if from >= self.follower().size() => replica::discard_from(&mut conn, from)?,
            Some(from) => {
                return Err(refuse(format!(
                    "rows from {from} on were verified here; they are not set aside"
                )))
            }
            None => Vec::new(),
        };
        // The root after the repair, from the rows of the blocks touched, read back.
        let mut blocks: Vec<u64> = indices.iter().map(|i| i / block_size).collect();
        blocks.dedup();
        let ranges: Vec<(u64, u64)> = blocks
            .iter()
            .map(|block| {
                let start = block * block_size;
                (start, (start + block_size).min(compared))
            })
            .collect();
        let read_back = replica::held_leaves_ranges(&mut conn, &ranges)?;
        for ((start, _), held) in ranges.iter().zip(read_back) {
            let held: Vec<Digest> = held.into_iter().map(Digest).collect();
            answerer
                .replace(*start, &held)
                .map_err(|e| NodeError::Reconcile(e.to_string()))?;
        }
        let root = answerer.root();

        let party = self.party().to_string();
        if !rows.is_empty() {
            let detail = format!(
                "reconciliation with the registry put back {} entries from its signed originals ({} lost, {} altered)",
                rows.len(),
                request.lost.len(),
                request.altered.len()
            );
            incidents::open(
                &mut conn,
                None,
                "entries_repaired",
                &detail,
                &serde_json::json!({
                    "lost": request.lost,
                    "altered": request.altered,
                    "rowsBefore": before.iter().map(row_evidence).collect::<Vec<_>>(),
                }),
            )?;
            // Chains read as damaged may be whole again: the next read of one that is not
            // opens its incident again.
            incidents::close(&mut conn, None, crate::node::CHAIN_DAMAGED)?;
        }
        if !discarded.is_empty() {
            incidents::open(
                &mut conn,
                None,
                "unsigned_entries",
                &format!(
                    "{} rows from index {} on were never signed by the registry; set aside",
                    discarded.len(),
                    registry_size
                ),
                &serde_json::json!({
                    "rows": discarded.iter().map(row_evidence).collect::<Vec<_>>(),
                }),
            )?;
        }
        let outcome = if !rows.is_empty() || !discarded.is_empty() {
            "repaired"
        } else if compared < registry_size {
            "behind"
        } else {
            "agree"
        };
        reconciliations::record(
            &mut conn,
            &reconciliations::NewReconciliation {
                party,
                started_at: started,
                registry_size: registry_size as i64,
                replica_size: Some(compared as i64),
                replica_root: Some(root.0.to_vec()),
                outcome: outcome.to_owned(),
                differences: (rows.len() + discarded.len()) as i64,
                hash_bytes: (hashes_sent * 32) as i64,
                round_trips: i32::try_from(rounds + 2).unwrap_or(i32::MAX),
                report: serde_json::json!({ "lost": request.lost, "altered": request.altered, "discarded": discarded.len() }),
            },
        )?;
        Ok(RepairAnswer {
            repaired: rows.len() as u64,
            discarded: discarded.len() as u64,
            root,
        })
    }

    /// Records a reconciliation that found the copies in agreement (no repair call follows).
    fn record_agreement(&self, session: u64) -> Result<(), NodeError> {
        let Some(s) = lock(self.sessions()).take().filter(|s| s.id == session) else {
            return Ok(());
        };
        reconciliations::record(
            &mut *self.conn()?,
            &reconciliations::NewReconciliation {
                party: self.party().to_string(),
                started_at: s.started,
                registry_size: s.registry_size as i64,
                replica_size: Some(s.compared as i64),
                replica_root: Some(s.answerer.root().0.to_vec()),
                outcome: if s.compared < s.registry_size {
                    "behind"
                } else {
                    "agree"
                }
                .to_owned(),
                differences: 0,
                hash_bytes: 0,
                round_trips: 1,
                report: serde_json::json!({}),
            },
        )?;
        Ok(())
    }
}

/// The answering trees over `leaves`, block roots computed on all cores.
fn snapshot(compared: u64, block_size: u64, leaves: Vec<Digest>) -> Result<Answerer, NodeError> {
    let shape =
        Shape::new(compared, block_size).map_err(|e| NodeError::Reconcile(e.to_string()))?;
    let chunk = usize::try_from(block_size).unwrap_or(usize::MAX);
    let roots: Vec<Digest> = leaves
        .par_chunks(chunk)
        .map(|block| block_roots(block_size, block).map(|r| r[0]))
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Reconcile(e.to_string()))?;
    Answerer::new(shape, leaves, &roots).map_err(|e| NodeError::Reconcile(e.to_string()))
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() >> 11
}
