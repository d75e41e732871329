//! The registry's side of reconciliation: it compares each replica with its own ledger from
//! the top of the tree down ([`lading_domain::reconcile`]), puts back what the replica lost
//! or had altered from the signed originals, sets aside entries the registry never signed,
//! and keeps every finding as an incident about that replica. The replica's side is
//! `lading_replica::answer`; the messages are [`lading_domain::reconcile::wire`].
//!
//! The exchange, over mutual TLS with the registry's own certificate (`urn:lading:registry`):
//! 1. `POST /v1/reconciliation` with the registry's size and root — the replica answers its
//!    size, what it verified, its root over what both hold and the largest checkpoint it
//!    holds. Equal roots over the whole ledger end it there: one round trip.
//! 2. `POST /v1/reconciliation/{session}/descend`, a bit mask out and 32-byte hashes back, one
//!    round per level of the tree below the first difference.
//! 3. `POST /v1/reconciliation/{session}/repair` with the originals (signed bytes where the
//!    replica's party is entitled to them, the leaf hash alone otherwise); the replica answers
//!    its root after the repair, which must now be the registry's.
//!
//! Under ingest the replica may hold more than the registry's size as read at the start (it
//! followed a page meanwhile): those rows it verified are *ahead*, never "unsigned"; the
//! registry checks at the end that its ledger holds them. Reconciliations of one replica run
//! one at a time (the replica keeps one session): one asked for while another is under way
//! waits for it, then runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use lading_domain::ids::PartyId;
use lading_domain::merkle::merkle_root;
use lading_domain::reconcile::wire::{
    OpenRequest, RepairAnswer, RepairEntry, RepairRequest, Summary,
};
use lading_domain::reconcile::{Descent, Shape, MISSING_LEAF};
use lading_domain::Digest;
use lading_store::{incidents, ledger, reads, reconciliations, to_i64, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::checkpoints::leaf_digests;

/// Why one reconciliation could not be carried through.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the replica cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the replica answered {status} to {what}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    /// It answered something that does not add up.
    #[error("reconciliation: {0}")]
    Protocol(String),
    /// It holds entries it verified from this registry's feed that the registry's ledger does
    /// not hold now (a ledger restored from an old backup, or a replica that says more than it
    /// verified).
    #[error("the replica holds {held} entries it verified from this registry's feed; the registry's ledger holds {registry}")]
    AheadOfTheLedger { held: u64, registry: u64 },
    #[error("the registry's database: {0}")]
    Store(#[from] StoreError),
    #[error("the registry: {0}")]
    Internal(String),
}

/// A replica the registry reconciles.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReplicaTarget {
    pub party: PartyId,
    /// The replica's `https://host:port`.
    pub url: String,
}

/// How a reconciliation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Same entries, same root.
    Agree,
    /// What it holds agrees; it has not caught up yet (it follows the feed on its own).
    Behind,
    /// Differences found and put right; the roots now agree.
    Repaired,
    /// It could not be asked.
    Unreachable,
    /// It answered something that does not add up, or the repair did not give the root.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agree => "agree",
            Self::Behind => "behind",
            Self::Repaired => "repaired",
            Self::Unreachable => "unreachable",
            Self::Failed => "failed",
        }
    }
}

/// What one reconciliation of one replica found.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub party: String,
    pub url: String,
    pub outcome: Outcome,
    pub registry_size: u64,
    pub replica_size: Option<u64>,
    pub replica_root: Option<Digest>,
    pub lag: Option<u64>,
    /// Entries the replica did not have.
    pub lost: Vec<u64>,
    /// Entries whose rows no longer match the signed originals.
    pub altered: Vec<u64>,
    /// Rows the registry never signed (beyond its size and beyond what the replica verified).
    pub unsigned: u64,
    /// Rows the replica verified beyond the registry's size as read at the start: signed and
    /// followed while the reconciliation began, not a finding.
    #[serde(default)]
    pub ahead: u64,
    /// The replica holds a signed checkpoint whose root is not the registry's at that size.
    pub conflicting_checkpoint: Option<u64>,
    /// Requests made (each one round trip).
    pub round_trips: u32,
    /// Hashes received while descending, in bytes (the root's 32 bytes not counted).
    pub hash_bytes: u64,
    /// Request and answer bodies, both ways, besides the repaired entries themselves.
    pub exchanged_bytes: u64,
    /// The repaired entries' bytes.
    pub repair_bytes: u64,
    pub millis: u64,
    /// Of which the replica spent reading its rows' leaves, and building its trees.
    pub replica_scan_millis: u64,
    pub replica_tree_millis: u64,
    /// Milliseconds from the start to the end of the descent, and of the repair.
    pub descent_done_millis: u64,
    pub repair_done_millis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reconciles replicas against the registry's database; cheap to clone, and clones share
/// their turns (the schedule and the API use one).
#[derive(Debug, Clone)]
pub struct Reconciler {
    /// The consortium CA, the registry's certificate and key: each replica gets a client that
    /// requires its own party's certificate ([`Self::client_for`]).
    material: Arc<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    clients: Arc<Mutex<HashMap<PartyId, reqwest::Client>>>,
    store: Store,
    block_size: u64,
    /// One turn per replica: its reconciliations run one after another.
    turns: Arc<Mutex<HashMap<PartyId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Reconciler {
    /// `cert_pem`/`key_pem` are the registry's consortium certificate (`lading ca issue
    /// --registry`); replicas must chain to `ca_pem`.
    pub fn new(
        store: Store,
        block_size: u64,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, lading_pki::PkiError> {
        Ok(Self {
            material: Arc::new((ca_pem.to_vec(), cert_pem.to_vec(), key_pem.to_vec())),
            clients: Arc::default(),
            store,
            block_size,
            turns: Arc::default(),
        })
    }

    /// The client that talks to `party`'s replica: the server's certificate must name that
    /// party, so no other member's replica — whatever host names its certificate carries —
    /// can answer for it (and be told what the registry holds for it, or accused in its name).
    fn client_for(&self, party: &PartyId) -> Result<reqwest::Client, RunError> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(party) {
            return Ok(client.clone());
        }
        let (ca, cert, key) = &*self.material;
        let client = lading_pki::https_client_for(
            ca,
            cert,
            key,
            lading_pki::ServerIdentity::Party(party.clone()),
        )
        .map_err(|e| RunError::Internal(e.to_string()))?;
        clients.insert(party.clone(), client.clone());
        Ok(client)
    }

    /// `party`'s turn: held for the whole of one reconciliation of its replica.
    fn turn(&self, party: &PartyId) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(turns.entry(party.clone()).or_default())
    }

    /// Reconciles one replica and records the outcome and every finding. Never fails: what
    /// went wrong is in the report (and, for a replica that cannot be asked, its outcome).
    /// While another reconciliation of the same replica runs, waits for it first.
    pub async fn reconcile(&self, target: &ReplicaTarget) -> Report {
        let turn = self.turn(&target.party);
        let _turn = turn.lock().await;
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let mut report = Report {
            party: target.party.to_string(),
            url: target.url.clone(),
            outcome: Outcome::Failed,
            registry_size: 0,
            replica_size: None,
            replica_root: None,
            lag: None,
            lost: Vec::new(),
            altered: Vec::new(),
            unsigned: 0,
            ahead: 0,
            conflicting_checkpoint: None,
            round_trips: 0,
            hash_bytes: 0,
            exchanged_bytes: 0,
            repair_bytes: 0,
            millis: 0,
            replica_scan_millis: 0,
            replica_tree_millis: 0,
            descent_done_millis: 0,
            repair_done_millis: 0,
            error: None,
        };
        if let Err(e) = self.run(target, &mut report).await {
            report.outcome = match e {
                RunError::Unreachable(_) => Outcome::Unreachable,
                _ => Outcome::Failed,
            };
            report.error = Some(e.to_string());
        }
        report.millis = started.elapsed().as_millis() as u64;
        if let Err(e) = self.record(&report, started_at).await {
            tracing::error!(error = %e, party = %report.party, "could not record a reconciliation");
        }
        tracing::info!(
            party = %report.party,
            outcome = report.outcome.as_str(),
            lost = report.lost.len(),
            altered = report.altered.len(),
            unsigned = report.unsigned,
            ahead = report.ahead,
            millis = report.millis,
            "reconciled"
        );
        report
    }

    async fn run(&self, target: &ReplicaTarget, report: &mut Report) -> Result<(), RunError> {
        let clock = Instant::now();
        let base = target.url.trim_end_matches('/');
        let block_size = self.block_size;
        let (registry_size, registry_roots) = self
            .blocking(move |conn| {
                let size = ledger::ledger_size(conn)?;
                Ok((size, block_roots_at(conn, size, block_size)?))
            })
            .await?;
        let registry_root = merkle_root(&registry_roots);
        report.registry_size = registry_size;

        // 1. Roots.
        let request = serde_json::to_vec(&OpenRequest {
            registry_size,
            registry_root: Some(registry_root),
        })
        .map_err(|e| RunError::Internal(e.to_string()))?;
        let answer = self
            .post(
                &target.party,
                &format!("{base}/v1/reconciliation"),
                "application/json",
                request,
                report,
            )
            .await?;
        let summary: Summary =
            serde_json::from_slice(&answer).map_err(|e| protocol(format!("the summary: {e}")))?;
        if summary.party != target.party.as_str() {
            return Err(protocol(format!(
                "{} answered for {}, not {}",
                target.url, summary.party, target.party
            )));
        }
        report.replica_size = Some(summary.size);
        report.replica_scan_millis = summary.scan_millis;
        report.replica_tree_millis = summary.tree_millis;
        report.replica_root = Some(summary.root);
        report.lag = Some(registry_size.saturating_sub(summary.size));
        report.unsigned = summary.unsigned_count;
        // Followed while this began: rows it verified beyond the size read above. Its word that
        // it verified them is checked against the ledger as it is now.
        report.ahead = summary
            .verified
            .min(summary.size)
            .saturating_sub(registry_size);
        if report.ahead > 0 {
            let registry = self.blocking(ledger::ledger_size).await?;
            let held = registry_size + report.ahead;
            if registry < held {
                return Err(RunError::AheadOfTheLedger { held, registry });
            }
        }
        if let Some(held) = &summary.checkpoint {
            let (size, root) = (held.size, held.root);
            let ours = self
                .blocking(move |conn| ledger::checkpoint_at(conn, size))
                .await?;
            if ours.map(|row| row.root) != Some(root.0.to_vec()) {
                report.conflicting_checkpoint = Some(size);
            }
        }

        // 2. Down the tree.
        let compared = summary.compared;
        let shape = Shape::new(compared, block_size).map_err(|e| protocol(e.to_string()))?;
        let roots = if compared == registry_size {
            registry_roots
        } else {
            self.blocking(move |conn| block_roots_at(conn, compared, block_size))
                .await?
        };
        let mut descent =
            Descent::start(shape, &roots, summary.root).map_err(|e| protocol(e.to_string()))?;
        while !descent.is_done() {
            let needed = descent.blocks_needed();
            if !needed.is_empty() {
                let loaded = self
                    .blocking(move |conn| block_leaves(conn, &needed, block_size, compared))
                    .await?;
                for (block, leaves) in loaded {
                    descent
                        .add_block(block, &leaves)
                        .map_err(|e| protocol(e.to_string()))?;
                }
            }
            let answer = self
                .post(
                    &target.party,
                    &format!("{base}/v1/reconciliation/{}/descend", summary.session),
                    "application/octet-stream",
                    descent.mask(),
                    report,
                )
                .await?;
            if answer.len() % 32 != 0 {
                return Err(protocol("hashes are 32 bytes each".into()));
            }
            let hashes: Vec<Digest> = answer
                .chunks_exact(32)
                .map(|c| Digest::from_slice(c).unwrap_or(MISSING_LEAF))
                .collect();
            descent
                .receive(&hashes)
                .map_err(|e| protocol(e.to_string()))?;
        }
        report.hash_bytes = descent.hashes_received() * 32;
        report.descent_done_millis = clock.elapsed().as_millis() as u64;
        for difference in descent.differences() {
            if difference.theirs == MISSING_LEAF {
                report.lost.push(difference.index);
            } else {
                report.altered.push(difference.index);
            }
        }

        // 3. Repair.
        let differing: Vec<u64> = descent.differences().iter().map(|d| d.index).collect();
        if differing.is_empty() && summary.unsigned_count == 0 {
            report.outcome = if compared < registry_size {
                Outcome::Behind
            } else {
                Outcome::Agree
            };
            if report.outcome == Outcome::Behind {
                // The replica cannot tell on its own that its prefix agrees.
                let body = serde_json::to_vec(&RepairRequest {
                    entries: Vec::new(),
                    discard_from: None,
                    lost: Vec::new(),
                    altered: Vec::new(),
                })
                .map_err(|e| RunError::Internal(e.to_string()))?;
                self.post(
                    &target.party,
                    &format!("{base}/v1/reconciliation/{}/repair", summary.session),
                    "application/json",
                    body,
                    report,
                )
                .await?;
            }
            return Ok(());
        }
        let party = target.party.to_string();
        let wanted = differing.clone();
        let originals = self
            .blocking(move |conn| reads::feed_at(conn, &party, &wanted))
            .await?;
        let entries: Vec<RepairEntry> = originals
            .into_iter()
            .map(|row| RepairEntry {
                index: row.idx as u64,
                leaf_hash: Digest::from_slice(&row.leaf_hash).unwrap_or(MISSING_LEAF),
                signed: row.signed.map(|s| String::from_utf8_lossy(&s).into_owned()),
            })
            .collect();
        report.repair_bytes = entries
            .iter()
            .map(|e| e.signed.as_ref().map_or(0, String::len) as u64 + 32)
            .sum();
        let body = serde_json::to_vec(&RepairRequest {
            entries,
            discard_from: (summary.unsigned_count > 0)
                .then(|| summary.unsigned_from(registry_size)),
            lost: report.lost.clone(),
            altered: report.altered.clone(),
        })
        .map_err(|e| RunError::Internal(e.to_string()))?;
        let repair_len = body.len() as u64;
        let answer = self
            .post(
                &target.party,
                &format!("{base}/v1/reconciliation/{}/repair", summary.session),
                "application/json",
                body,
                report,
            )
            .await?;
        // The repaired entries are counted apart from the exchange.
        report.exchanged_bytes = report
            .exchanged_bytes
            .saturating_sub(repair_len.min(report.repair_bytes));
        report.repair_done_millis = clock.elapsed().as_millis() as u64;
        let repaired: RepairAnswer = serde_json::from_slice(&answer)
            .map_err(|e| protocol(format!("the repair answer: {e}")))?;
        let ours = merkle_root(&roots);
        if repaired.root == ours {
            report.outcome = Outcome::Repaired;
            report.replica_root = Some(repaired.root);
        } else {
            return Err(protocol(format!(
                "after the repair the replica's root is {}, not the registry's {ours}",
                repaired.root
            )));
        }
        Ok(())
    }

    async fn post(
        &self,
        party: &PartyId,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        report: &mut Report,
    ) -> Result<Vec<u8>, RunError> {
        report.round_trips += 1;
        report.exchanged_bytes += body.len() as u64;
        let response = self
            .client_for(party)?
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        report.exchanged_bytes += bytes.len() as u64;
        if !status.is_success() {
            return Err(RunError::Refused {
                what: url.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }

    /// Runs `f` on a connection, off the async workers (diesel blocks).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut lading_store::PgConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RunError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let mut conn = store.conn()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| RunError::Internal(e.to_string()))??)
    }

    /// The run and its findings, in the registry's database. An incident names what was
    /// done: rows restored, replaced or set aside only when the repair went through
    /// (`repaired`), `replica_behind` only for a replica found behind. A run that could not be
    /// carried through (`unreachable`, `failed`) is a `reconciliations` row with its error,
    /// and no finding — except a conflicting checkpoint, which the replica's first answer
    /// showed whatever came after.
    async fn record(
        &self,
        report: &Report,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), RunError> {
        let report = report.clone();
        self.blocking(move |conn| {
            let party = report.party.as_str();
            let evidence = serde_json::to_value(&report).unwrap_or_default();
            let open = |conn: &mut lading_store::PgConnection, code: &str, detail: String| {
                incidents::open(conn, Some(party), code, &detail, &evidence).map(|_| ())
            };
            if let Some(size) = report.conflicting_checkpoint {
                open(
                    conn,
                    "conflicting_checkpoints",
                    format!("the replica holds a checkpoint of size {size} that is not the registry's"),
                )?;
            }
            match report.outcome {
                Outcome::Repaired => {
                    if !report.lost.is_empty() {
                        open(
                            conn,
                            "replica_lost_entries",
                            format!("{} entries missing; restored from the signed originals", report.lost.len()),
                        )?;
                    }
                    if !report.altered.is_empty() {
                        open(
                            conn,
                            "replica_altered_entries",
                            format!(
                                "{} rows no longer matched the signed originals; replaced, and the replica flagged",
                                report.altered.len()
                            ),
                        )?;
                    }
                    if report.unsigned > 0 {
                        open(
                            conn,
                            "replica_unsigned_entries",
                            format!("{} rows the registry never signed; set aside at the replica", report.unsigned),
                        )?;
                    }
                    incidents::close(conn, Some(party), "replica_behind")?;
                }
                Outcome::Behind => {
                    if incidents::open_incidents(conn, Some(party))?
                        .iter()
                        .all(|i| i.code != "replica_behind")
                    {
                        open(
                            conn,
                            "replica_behind",
                            format!("{} entries behind", report.lag.unwrap_or_default()),
                        )?;
                    }
                }
                Outcome::Agree => {
                    incidents::close(conn, Some(party), "replica_behind")?;
                }
                Outcome::Unreachable | Outcome::Failed => {}
            }
            reconciliations::record(
                conn,
                &reconciliations::NewReconciliation {
                    party: report.party.clone(),
                    started_at,
                    registry_size: to_i64(report.registry_size),
                    replica_size: report.replica_size.map(to_i64),
                    replica_root: report.replica_root.map(|r| r.0.to_vec()),
                    outcome: report.outcome.as_str().to_owned(),
                    differences: to_i64(
                        (report.lost.len() + report.altered.len()) as u64 + report.unsigned,
                    ),
                    hash_bytes: to_i64(report.hash_bytes),
                    round_trips: i32::try_from(report.round_trips).unwrap_or(i32::MAX),
                    report: serde_json::to_value(&report).unwrap_or_default(),
                },
            )?;
            Ok(())
        })
        .await
    }
}

fn protocol(detail: String) -> RunError {
    RunError::Protocol(detail)
}

/// The registry's block roots over its first `size` entries: sealed blocks from the `blocks`
/// table, the last one rebuilt from its leaves when `size` falls inside it.
fn block_roots_at(
    conn: &mut lading_store::PgConnection,
    size: u64,
    block_size: u64,
) -> Result<Vec<Digest>, StoreError> {
    let sealed = size / block_size;
    let corrupt = |what: &str| StoreError::corrupt("blocks", what.to_owned());
    let mut roots: Vec<Digest> = ledger::block_roots(conn)?
        .into_iter()
        .take(sealed as usize)
        .map(|row| Digest::from_slice(&row.root).map_err(|_| corrupt("a root is not 32 bytes")))
        .collect::<Result<_, _>>()?;
    if roots.len() as u64 != sealed {
        return Err(corrupt(
            "fewer sealed blocks than the ledger's size implies",
        ));
    }
    if size % block_size != 0 {
        let leaves = leaf_digests(conn, sealed * block_size, size)?;
        roots.push(merkle_root(&leaves));
    }
    Ok(roots)
}

/// The leaves of `blocks` within the first `size` entries: those kept with the sealed blocks
/// (one row of 32 KB each), the others (the open block, blocks sealed before leaves were kept)
/// from the ledger's rows, in one query.
fn block_leaves(
    conn: &mut lading_store::PgConnection,
    blocks: &[u64],
    block_size: u64,
    size: u64,
) -> Result<Vec<(u64, Vec<Digest>)>, StoreError> {
    let corrupt = |what: &str| StoreError::corrupt("blocks", what.to_owned());
    let to_digests = |bytes: &[u8]| -> Result<Vec<Digest>, StoreError> {
        if bytes.len() % 32 != 0 {
            return Err(corrupt("leaves are not 32 bytes each"));
        }
        bytes
            .chunks_exact(32)
            .map(|leaf| Digest::from_slice(leaf).map_err(|_| corrupt("a leaf is not 32 bytes")))
            .collect()
    };
    let sealed_in_size: Vec<u64> = blocks
        .iter()
        .copied()
        .filter(|block| (block + 1) * block_size <= size)
        .collect();
    let mut found: std::collections::HashMap<u64, Vec<Digest>> =
        ledger::sealed_block_leaves(conn, &sealed_in_size)?
            .into_iter()
            .map(|(block, bytes)| Ok((block as u64, to_digests(&bytes)?)))
            .collect::<Result<_, StoreError>>()?;
    let missing: Vec<(u64, (u64, u64))> = blocks
        .iter()
        .filter(|block| !found.contains_key(block))
        .map(|block| {
            let from = block * block_size;
            (*block, (from, (from + block_size).min(size)))
        })
        .collect();
    let ranges: Vec<(u64, u64)> = missing.iter().map(|(_, range)| *range).collect();
    for ((block, _), leaves) in missing
        .iter()
        .zip(ledger::leaf_hashes_of_ranges(conn, &ranges)?)
    {
        let leaves = leaves
            .iter()
            .map(|leaf| {
                Digest::from_slice(leaf)
                    .map_err(|_| StoreError::corrupt("ledger_entries", "a leaf is not 32 bytes"))
            })
            .collect::<Result<_, _>>()?;
        found.insert(*block, leaves);
    }
    Ok(blocks
        .iter()
        .filter_map(|block| found.remove(block).map(|leaves| (*block, leaves)))
        .collect())
}
