//! Load that lives through a failover, and what the ledger must hold after one.
//!
//! A [`retrying_submitter`] is the client the issue promises to: it sends each transition of
//! its queue until one of the registries answers `201` or `200 duplicate`, retrying the same
//! bytes on a transport error or a `503` (which must carry `Retry-After`). Anything else — a
//! `500`, a refusal of a transition the chain allows, a `503` without `Retry-After` — is a
//! wrong answer and fails the test. [`check_ledger`] then reads the ledger back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use lading_domain::jws::Jwk;
use lading_domain::merkle::{leaf_hash, verify_consistency, verify_inclusion, ConsistencyProof};
use serde_json::Value;

use crate::gen::LedgerGenerator;
use crate::soak::{self, get_json, CheckpointAnswer, EntryAnswer};

/// One answer that put (or found) a transition on the ledger.
#[derive(Debug, Clone)]
pub struct Ack {
    pub signed: String,
    pub index: u64,
    pub leaf_hash: String,
    pub duplicate: bool,
    /// When it was answered.
    pub at: Instant,
    /// Which base answered it (its place in the list).
    pub via: usize,
    /// The submitter and its sequence number: one submitter's acknowledgements come in order.
    pub task: usize,
    pub seq: usize,
}

/// What the submitters saw of the outage.
#[derive(Debug, Default)]
pub struct Outage {
    /// `503` answers, all with `Retry-After`, by problem code.
    pub unavailable: HashMap<String, usize>,
    /// Requests that got no answer (connection refused or cut).
    pub unanswered: usize,
}

/// Shared state of a set of submitters.
#[derive(Debug, Default)]
pub struct Submissions {
    pub acks: Mutex<Vec<Ack>>,
    pub acked: AtomicUsize,
    pub outage: Mutex<Outage>,
}

/// Sends `queue` one transition at a time (a document's transitions are all in one queue, in
/// order) and retries each until acknowledged, moving to the next of `bases` after a failed
/// attempt. Returns why it stopped early, if it did.
pub async fn retrying_submitter(
    task: usize,
    client: reqwest::Client,
    bases: Arc<Vec<String>>,
    mut queue: VecDeque<String>,
    shared: Arc<Submissions>,
    deadline: Instant,
) -> Result<()> {
    let mut base = task % bases.len();
    let mut seq = 0;
    while let Some(signed) = queue.pop_front() {
        loop {
            ensure!(
                Instant::now() < deadline,
                "task {task}: not acknowledged in time"
            );
            let sent = client
                .post(format!("{}/v1/transitions", bases[base]))
                .header("content-type", "application/jose")
                .body(signed.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(_) => {
                    shared
                        .outage
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .unanswered += 1;
                    base = (base + 1) % bases.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: Value = match response.json().await {
                Ok(body) => body,
                Err(_) => {
                    // Cut mid-answer: unknown whether it landed, like no answer.
                    shared
                        .outage
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .unanswered += 1;
                    continue;
                }
            };
            match status {
                200 | 201 => {
                    let entry: EntryAnswer = serde_json::from_value(body.clone())
                        .with_context(|| format!("task {task}: answer {status}: {body}"))?;
                    ensure!(
                        entry.duplicate == (status == 200),
                        "task {task}: {status} with duplicate = {}",
                        entry.duplicate
                    );
                    shared
                        .acks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Ack {
                            signed,
                            index: entry.index,
                            leaf_hash: entry.leaf_hash,
                            duplicate: entry.duplicate,
                            at: Instant::now(),
                            via: base,
                            task,
                            seq,
                        });
                    shared.acked.fetch_add(1, Ordering::SeqCst);
                    seq += 1;
                    break;
                }
                503 => {
                    ensure!(retry_after, "task {task}: 503 without Retry-After: {body}");
                    let code = body["code"].as_str().unwrap_or("").to_owned();
                    ensure!(
                        code == "ledger_unavailable" || code == "not_ready",
                        "task {task}: 503 with code {code}: {body}"
                    );
                    *shared
                        .outage
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .unavailable
                        .entry(code)
                        .or_default() += 1;
                    base = (base + 1) % bases.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => bail!("task {task}: a wrong answer, {status}: {body}"),
            }
        }
    }
    Ok(())
}

/// Every transition `generator` makes, in its order, and the same split into `tasks` queues
/// with each document wholly in one, so that no transition is sent before its parent was
/// acknowledged.
pub fn split(
    mut generator: LedgerGenerator,
    tasks: usize,
) -> Result<(Vec<VecDeque<String>>, Vec<String>)> {
    let mut queues: Vec<VecDeque<String>> = vec![VecDeque::new(); tasks];
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut sent = Vec::new();
    while let Some(t) = generator.next_transition()? {
        let next = owner.len() % tasks;
        let task = *owner.entry(t.reference.to_string()).or_insert(next);
        queues[task].push_back(t.compact.clone());
        sent.push(t.compact);
    }
    Ok((queues, sent))
}

/// A [`retrying_submitter`] for each queue, on `runtime`.
pub fn spawn_submitters(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    bases: &Arc<Vec<String>>,
    queues: Vec<VecDeque<String>>,
    shared: &Arc<Submissions>,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    queues
        .into_iter()
        .enumerate()
        .map(|(i, queue)| {
            runtime.spawn(retrying_submitter(
                i,
                client.clone(),
                bases.clone(),
                queue,
                shared.clone(),
                deadline,
            ))
        })
        .collect()
}

/// Blocks until at least `n` transitions are acknowledged.
pub fn wait_for_acks(shared: &Submissions, n: usize, deadline: Instant) -> Result<()> {
    while shared.acked.load(Ordering::SeqCst) < n {
        ensure!(
            Instant::now() < deadline,
            "fewer than {n} acknowledgements in time"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// What [`check_ledger`] found.
#[derive(Debug)]
pub struct LedgerReport {
    pub size: u64,
    pub duplicates: usize,
    pub checkpoints_checked: usize,
}

/// Reads the ledger back through `base` and checks it against everything sent:
/// - it holds exactly the `sent` transitions, each once, at the index every acknowledgement of
///   it named, with the leaf hash of the bytes sent, each proven against the latest checkpoint;
/// - one submitter's acknowledgements are in ledger order (it waited for each);
/// - every checkpoint seen before is consistent with the latest (one history).
pub async fn check_ledger(
    client: &reqwest::Client,
    base: &str,
    sent: &[String],
    acks: &[Ack],
    seen: &[CheckpointAnswer],
    deadline: Instant,
) -> Result<LedgerReport> {
    let (status, key) = get_json(client, &format!("{base}/v1/registry/key")).await?;
    ensure!(status == 200, "registry key: {status}");
    let key: Jwk = serde_json::from_value(key)?;
    let key = key.verifying_key()?;
    let size = soak::ledger_size(client, base).await?;
    ensure!(
        size == sent.len() as u64,
        "the ledger holds {size} entries, {} transitions were sent (each until acknowledged)",
        sent.len()
    );
    let latest = soak::checkpoint_of(client, base, size, deadline).await?;
    let root = soak::verified_root(&latest, &key)?;
    let leaves: Vec<String> = futures::stream::iter(0..size)
        .map(|i| {
            let client = client.clone();
            async move {
                let p = soak::proof(&client, base, i, size).await?;
                ensure!((p.proof.index, p.proof.size) == (i, size), "proof of {i}");
                verify_inclusion(&p.proof, soak::digest(&p.leaf_hash)?, root)
                    .map_err(|e| anyhow::anyhow!("proof of {i}: {e}"))?;
                Ok(p.leaf_hash)
            }
        })
        .buffered(16)
        .collect::<Vec<Result<String>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let on_ledger: HashMap<&str, u64> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u64))
        .collect();
    ensure!(on_ledger.len() == leaves.len(), "a leaf is stored twice");
    for signed in sent {
        let leaf = leaf_hash(signed.as_bytes()).to_hex();
        ensure!(
            on_ledger.contains_key(leaf.as_str()),
            "a transition sent and acknowledged is not on the ledger: {leaf}"
        );
    }
    let mut index_of: HashMap<&str, u64> = HashMap::new();
    for ack in acks {
        ensure!(
            leaf_hash(ack.signed.as_bytes()).to_hex() == ack.leaf_hash,
            "acknowledged leaf hash is not the hash of the bytes sent"
        );
        ensure!(
            on_ledger.get(ack.leaf_hash.as_str()) == Some(&ack.index),
            "acknowledged at {}, the ledger has it elsewhere",
            ack.index
        );
        if let Some(before) = index_of.insert(ack.signed.as_str(), ack.index) {
            ensure!(
                before == ack.index,
                "acknowledged at {before} and {}",
                ack.index
            );
        }
    }
    let acknowledged: HashSet<&str> = acks.iter().map(|a| a.signed.as_str()).collect();
    ensure!(
        acknowledged.len() == sent.len(),
        "{} of {} transitions acknowledged",
        acknowledged.len(),
        sent.len()
    );
    let mut by_task: HashMap<usize, Vec<&Ack>> = HashMap::new();
    for ack in acks {
        by_task.entry(ack.task).or_default().push(ack);
    }
    for (task, mut list) in by_task {
        list.sort_by_key(|a| a.seq);
        ensure!(
            list.windows(2).all(|w| w[0].index < w[1].index),
            "task {task}: acknowledgements out of ledger order"
        );
    }
    let mut checked = 0;
    for old in seen.iter().filter(|c| c.size > 0 && c.size <= size) {
        let old_root = soak::verified_root(old, &key)?;
        let (status, body) = get_json(
            client,
            &format!(
                "{base}/v1/checkpoints/consistency?from={}&to={size}",
                old.size
            ),
        )
        .await?;
        ensure!(
            status == 200,
            "consistency {}..{size}: {status} {body}",
            old.size
        );
        let proof: ConsistencyProof = serde_json::from_value(body["proof"].clone())?;
        verify_consistency(&proof, old.size, old_root, size, root, proof.block_size)
            .map_err(|e| anyhow::anyhow!("checkpoint {} is not an ancestor: {e:?}", old.size))?;
        checked += 1;
    }
    Ok(LedgerReport {
        size,
        duplicates: acks.iter().filter(|a| a.duplicate).count(),
        checkpoints_checked: checked,
    })
}
