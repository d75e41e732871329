//! The replica's side of reconciliation: it answers from a snapshot of its rows as they are
//! now — not from what it verified, since finding rows changed under it is the point — and
//! puts back what the registry sends, but only what hashes to the leaves it verified itself.
//!
//! A session is opened by the registry (`POST /v1/reconciliation`), answered round by round
//! (`.../descend`) and closed by its repairs (`.../repair`). One session at a time: opening
//! another drops the last (the registry runs one reconciliation of a replica at a time).
//!
//! Rows beyond the registry's size that this replica verified from the feed are *ahead*, not
//! unsigned: the registry read its size, then went on taking entries, and the follow loop took
//! a page before the session opened. Only rows beyond both are the registry's to set aside.

use std::sync::{Mutex, PoisonError};

use lading_domain::merkle::leaf_hash;
use lading_domain::reconcile::wire::{
    CheckpointHeld, RepairAnswer, RepairRequest, Summary, UnsignedRow,
};
use lading_domain::reconcile::{block_roots, Answerer, Shape};
use lading_domain::Digest;
use lading_store::replica::{self, ReplicaEntryRow};
use lading_store::{incidents, reconciliations, to_i64};
use rayon::prelude::*;

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
        let (block_size, verified_before) = {
            let follower = self.follower();
            (follower.block_size(), follower.size())
        };
        let mut conn = self.conn()?;
        let size = replica::size(&mut conn)?;
        let compared = size.min(registry_size);
        let leaves: Vec<Digest> = replica::held_leaves(&mut conn, compared, block_size)?
            .into_iter()
            .map(Digest)
            .collect();
        let scan_millis = clock.elapsed().as_millis() as u64;
        // Rows beyond the registry's size are the registry's own when this replica verified
        // them: the follow loop took a page while the registry's size was on its way here. It
        // keeps a page only after the follower took it, under the follower's lock, so every
        // row it wrote before the query below lies below the follower's size read after it.
        let beyond = replica::leaves_from(&mut conn, registry_size.max(verified_before))?;
        let verified = self.follower().size();
        let unsigned_from = registry_size.max(verified);
        let unsigned_rows: Vec<(u64, Vec<u8>)> = beyond
            .into_iter()
            .filter(|(index, _)| *index >= unsigned_from)
            .collect();
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
            verified,
            compared,
            root: answerer.root(),
            checkpoint,
            unsigned_count: unsigned_rows.len() as u64,
            unsigned: unsigned_rows
                .iter()
                .take(UNSIGNED_LISTED)
                .map(|(index, leaf)| UnsignedRow {
                    index: *index,
                    leaf_hash: Digest::from_slice(leaf).unwrap_or(Digest([0; 32])),
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
        // Agreement on the whole of the registry's ledger ends it here, whatever this replica
        // verified beyond it: the registry asks nothing more.
        if compared == registry_size
            && summary.unsigned_count == 0
            && registry_root == Some(summary.root)
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
                    idx: to_i64(entry.index),
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
        // Rows beyond the registry's ledger, never what this replica verified: from its
        // follower's size on at the earliest (the follow loop may have gone on since the
        // session opened).
        let discard_from = request
            .discard_from
            .map(|from| from.max(self.follower().size()));
        let discarded = match discard_from {
            Some(from) => replica::discard_from(&mut conn, from)?,
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
                    discard_from.unwrap_or(registry_size)
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
                registry_size: to_i64(registry_size),
                replica_size: Some(to_i64(compared)),
                replica_root: Some(root.0.to_vec()),
                outcome: outcome.to_owned(),
                differences: (rows.len() + discarded.len()) as i64,
                hash_bytes: to_i64(hashes_sent * 32),
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
                registry_size: to_i64(s.registry_size),
                replica_size: Some(to_i64(s.compared)),
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
