//! Crash soak: cycles of concurrent load, `kill -9` of the registry at a random moment while
//! requests are in flight (and, every few cycles, an immediate shutdown of PostgreSQL first),
//! a restart on the same database, and a check of everything acknowledged and signed so far.
//!
//! After each restart, a cycle checks:
//! - every entry acknowledged so far, in any cycle, is on the ledger at the index it was
//!   acknowledged with and with the same leaf hash (the hash of the bytes sent); the ledger's
//!   indexes are `0..n` with no gap and no leaf twice; each submitter's acknowledgements come
//!   in ascending index order (it waits for each answer before sending the next request);
//! - the ledger holds nothing else but requests sent and never answered (or answered
//!   `503`): those that landed are counted, and resubmitting one answers `duplicate` at the
//!   index it landed at, while one that did not land is accepted;
//! - every checkpoint seen so far (polled during the load, or listed after a restart) is
//!   still served with the same bytes, its signature verifies with the registry's key, and its
//!   root equals the root recomputed from the ledger's leaf hashes at its size — so every
//!   later checkpoint extends every earlier one;
//! - the registry signs a checkpoint of its whole ledger after the restart, a sample of the
//!   cycle's entries proves against it, and resubmitting a sample of earlier entries answers
//!   `duplicate` at their index.
//!
//! The load chains across restarts: each submitter follows its own generator of interleaved
//! document chains, so many transitions of a cycle extend a document whose head was written by
//! an earlier registry process, which must have reloaded it from the database.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::jws::{Jwk, VerifyingKey};
use lading_domain::merkle::{leaf_hash, verify_inclusion, InclusionProof, LedgerTree};
use lading_domain::Digest;
use serde::Deserialize;
use serde_json::Value;

use crate::gen::{
    FixtureParties, GeneratedTransition, GeneratorConfig, LedgerGenerator, SplitMix64,
};
use crate::harness::Tls;
use crate::load::{DurableCluster, RegistryProcess, RegistrySettings};

/// An entry as a submission's answer gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryAnswer {
    pub index: u64,
    pub leaf_hash: String,
    pub duplicate: bool,
}

#[derive(Debug, Deserialize)]
pub struct BatchItem {
    pub status: u16,
    pub entry: Option<EntryAnswer>,
    pub problem: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct BatchAnswer {
    pub accepted: usize,
    pub duplicates: usize,
    pub refused: usize,
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointAnswer {
    pub size: u64,
    pub root: String,
    pub signed: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofAnswer {
    pub leaf_hash: String,
    pub proof: InclusionProof,
    pub checkpoint: CheckpointAnswer,
}

/// Posts one transition (`application/jose`) or several (batch); `Err` only when no answer came.
pub async fn post(
    client: &reqwest::Client,
    base: &str,
    items: &[String],
    as_batch: bool,
) -> Result<(u16, Value), reqwest::Error> {
    let request = if as_batch {
        client
            .post(format!("{base}/v1/transitions/batch"))
            .json(items)
    } else {
        client
            .post(format!("{base}/v1/transitions"))
            .header("content-type", "application/jose")
            .body(items.first().cloned().unwrap_or_default())
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await?;
    Ok((status, body))
}

/// What an answer says about one item it was sent.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Newly on the ledger (`201`).
    Acked(EntryAnswer),
    /// `503`, or an item after a `503` in the same batch that failed for want of it: whether
    /// it landed is unknown until the ledger is read.
    Unanswered,
    /// Anything else: a bug in the registry or in the load.
    Unexpected(String),
}

/// The outcome of each of `count` items from one answer.
pub fn outcomes(count: usize, as_batch: bool, status: u16, body: &Value) -> Vec<Outcome> {
    let all = |o: Outcome| vec![o; count];
    if status == 503 {
        return all(Outcome::Unanswered);
    }
    if !as_batch {
        return match serde_json::from_value::<EntryAnswer>(body.clone()) {
            Ok(e) if status == 201 && !e.duplicate => vec![Outcome::Acked(e)],
            _ => all(Outcome::Unexpected(format!(
                "single answered {status}: {body}"
            ))),
        };
    }
    let answer = match serde_json::from_value::<BatchAnswer>(body.clone()) {
        Ok(a) if status == 200 && a.results.len() == count => a,
        _ => {
            return all(Outcome::Unexpected(format!(
                "batch answered {status}: {body}"
            )))
        }
    };
    let mut unavailable = false;
    answer
        .results
        .into_iter()
        .map(|r| match (r.status, r.entry) {
            (201, Some(e)) if !e.duplicate => Outcome::Acked(e),
            (503, _) => {
                unavailable = true;
                Outcome::Unanswered
            }
            _ if unavailable => Outcome::Unanswered,
            (s, _) => {
                Outcome::Unexpected(format!("batch item {s}: {}", r.problem.unwrap_or_default()))
            }
        })
        .collect()
}

/// The entries a successful answer acknowledges, one per item, or why it is not one.
pub fn acknowledged(
    count: usize,
    as_batch: bool,
    status: u16,
    body: &Value,
) -> Result<Vec<EntryAnswer>, String> {
    outcomes(count, as_batch, status, body)
        .into_iter()
        .map(|o| match o {
            Outcome::Acked(e) => Ok(e),
            Outcome::Unanswered => Err(format!("unavailable ({status}): {body}")),
            Outcome::Unexpected(why) => Err(why),
        })
        .collect()
}

/// Polls the latest checkpoint until `stop`, keeping every distinct one.
pub async fn watch_checkpoints(
    client: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
    every: Duration,
) -> Vec<CheckpointAnswer> {
    let mut seen: Vec<CheckpointAnswer> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Ok(response) = client.get(format!("{base}/v1/checkpoint")).send().await {
            if response.status().as_u16() == 200 {
                if let Ok(c) = response.json::<CheckpointAnswer>().await {
                    if seen.last().is_none_or(|l| l.size != c.size) {
                        seen.push(c);
                    }
                }
            }
        }
        tokio::time::sleep(every).await;
    }
    seen
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> Result<(u16, Value)> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// The checkpoint's signature is `key`'s and its fields are the ones answered; its root.
pub fn verified_root(checkpoint: &CheckpointAnswer, key: &VerifyingKey) -> Result<Digest> {
    let content = SignedCheckpoint::parse(&checkpoint.signed)?.verify(key)?;
    if content.size != checkpoint.size || content.root.to_hex() != checkpoint.root {
        bail!(
            "checkpoint answer ({}, {}) differs from what it signs ({}, {})",
            checkpoint.size,
            checkpoint.root,
            content.size,
            content.root
        );
    }
    Ok(content.root)
}

/// The ledger size `/readyz` reports.
pub async fn ledger_size(client: &reqwest::Client, base: &str) -> Result<u64> {
    let (status, body) = get_json(client, &format!("{base}/readyz")).await?;
    match body["size"].as_u64() {
        Some(size) if status == 200 => Ok(size),
        _ => bail!("readyz answered {status}: {body}"),
    }
}

/// Waits (until `deadline`) for the latest signed checkpoint to cover exactly `size` entries.
pub async fn checkpoint_of(
    client: &reqwest::Client,
    base: &str,
    size: u64,
    deadline: Instant,
) -> Result<CheckpointAnswer> {
    loop {
        let (status, body) = get_json(client, &format!("{base}/v1/checkpoint")).await?;
        if status == 200 {
            let c: CheckpointAnswer = serde_json::from_value(body)?;
            if c.size == size {
                return Ok(c);
            }
            if c.size > size {
                bail!("checkpoint of {} beyond the ledger of {size}", c.size);
            }
        }
        if Instant::now() > deadline {
            bail!("no checkpoint of size {size} in time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The inclusion proof of entry `index` in the checkpoint of `size`.
pub async fn proof(
    client: &reqwest::Client,
    base: &str,
    index: u64,
    size: u64,
) -> Result<ProofAnswer> {
    let (status, body) = get_json(
        client,
        &format!("{base}/v1/entries/{index}/proof?size={size}"),
    )
    .await?;
    if status != 200 {
        bail!("proof of {index} at size {size} answered {status}: {body}");
    }
    Ok(serde_json::from_value(body)?)
}

/// A hex digest as answered.
pub fn digest(hex: &str) -> Result<Digest> {
    Ok(hex.parse()?)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The `lading` binary.
    pub bin: PathBuf,
    pub cycles: usize,
    /// The registry is killed after a random number of acknowledgements in `load/2..=load`.
    pub load: usize,
    /// Concurrent submitters, each with documents of its own.
    pub submitters: usize,
    /// PostgreSQL is shut down immediately (before the registry's kill) in every cycle whose
    /// number is a multiple of this; 0 never.
    pub postgres_crash_every: usize,
    pub workers: usize,
    pub checkpoint_interval_ms: u64,
    /// Transitions after each document's ISSUE.
    pub transfers: u32,
    pub seed: u64,
    pub log_path: PathBuf,
    /// Every wait of the soak ends by then.
    pub budget: Duration,
    /// PostgreSQL settings on top of the durable defaults (e.g. `synchronous_commit = off`, so
    /// that only the registry's own session setting keeps acknowledgements durable).
    pub postgres_settings: Vec<(&'static str, &'static str)>,
}

/// What one cycle saw.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    pub cycle: usize,
    pub postgres_crashed: bool,
    /// Acknowledgements (of this cycle's load) after which the kill came.
    pub kill_after: usize,
    /// Answered `201` during the load.
    pub acknowledged: usize,
    /// Of those, transitions whose document's previous entry was written by an earlier
    /// registry process.
    pub chained_across_restart: usize,
    /// Sent and never answered, or answered `503`.
    pub unanswered: usize,
    /// Of those, on the ledger after the restart (and answered `duplicate` when resubmitted).
    pub landed_unanswered: usize,
    /// Of those, not on the ledger, and accepted when resubmitted.
    pub accepted_on_resubmission: usize,
    /// Entries acknowledged so far (any cycle) that are missing or changed.
    pub lost: usize,
    /// Checkpoints whose signature and root were checked (all signed so far).
    pub checkpoints_verified: usize,
    /// The ledger size after the restart (before resubmissions).
    pub ledger_size: u64,
    /// From the kill to the registry listening again.
    pub restart: Duration,
    pub wall: Duration,
    /// Everything else that went wrong.
    pub problems: Vec<String>,
}

impl CycleReport {
    /// One line for a log.
    pub fn line(&self) -> String {
        format!(
            "cycle {:>2}{}: killed after {} acks; acked {} ({} chained across a restart), unanswered {} (landed {}, accepted on resubmission {}), lost {}, checkpoints verified {}, ledger {}, restart {:.2} s, cycle {:.2} s{}",
            self.cycle,
            if self.postgres_crashed { " +pg" } else { "" },
            self.kill_after,
            self.acknowledged,
            self.chained_across_restart,
            self.unanswered,
            self.landed_unanswered,
            self.accepted_on_resubmission,
            self.lost,
            self.checkpoints_verified,
            self.ledger_size,
            self.restart.as_secs_f64(),
            self.wall.as_secs_f64(),
            if self.problems.is_empty() {
                String::new()
            } else {
                format!("; PROBLEMS: {:?}", self.problems)
            }
        )
    }
}

/// The whole soak.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    pub cycles: Vec<CycleReport>,
    /// Entries on the ledger at the end, every one acknowledged (directly or on resubmission).
    pub final_size: u64,
    /// Distinct checkpoints signed over the soak, all verified in the last check.
    pub distinct_checkpoints: usize,
    pub wall: Duration,
    /// Failures outside any cycle (the final check).
    pub problems: Vec<String>,
}

impl SoakReport {
    fn sum(&self, f: impl Fn(&CycleReport) -> usize) -> usize {
        self.cycles.iter().map(f).sum()
    }

    pub fn acknowledged(&self) -> usize {
        self.sum(|c| c.acknowledged)
    }

    pub fn chained_across_restart(&self) -> usize {
        self.sum(|c| c.chained_across_restart)
    }

    pub fn unanswered(&self) -> usize {
        self.sum(|c| c.unanswered)
    }

    pub fn landed_unanswered(&self) -> usize {
        self.sum(|c| c.landed_unanswered)
    }

    pub fn accepted_on_resubmission(&self) -> usize {
        self.sum(|c| c.accepted_on_resubmission)
    }

    pub fn lost(&self) -> usize {
        self.sum(|c| c.lost)
    }

    pub fn checkpoints_verified(&self) -> usize {
        self.sum(|c| c.checkpoints_verified)
    }

    pub fn postgres_crashes(&self) -> usize {
        self.cycles.iter().filter(|c| c.postgres_crashed).count()
    }

    /// Every problem, cycle by cycle.
    pub fn problems(&self) -> Vec<String> {
        self.cycles
            .iter()
            .flat_map(|c| {
                c.problems
                    .iter()
                    .map(move |p| format!("cycle {}: {p}", c.cycle))
            })
            .chain(self.problems.iter().cloned())
            .collect()
    }

    /// Nothing lost, every checkpoint verified, no other problem.
    pub fn passed(&self) -> bool {
        self.lost() == 0 && self.problems().is_empty()
    }

    /// The summary line.
    pub fn line(&self) -> String {
        format!(
            "{} cycles ({} with PostgreSQL crashed too) in {:.1} s: {} acknowledged under load ({} chained across a restart), {} unanswered ({} landed, {} accepted on resubmission), lost {}, {} checkpoint verifications ({} distinct checkpoints), final ledger {}",
            self.cycles.len(),
            self.postgres_crashes(),
            self.wall.as_secs_f64(),
            self.acknowledged(),
            self.chained_across_restart(),
            self.unanswered(),
            self.landed_unanswered(),
            self.accepted_on_resubmission(),
            self.lost(),
            self.checkpoints_verified(),
            self.distinct_checkpoints,
            self.final_size
        )
    }
}

/// One submitter's documents.
#[derive(Debug)]
struct Lane {
    generator: LedgerGenerator,
    queue: VecDeque<GeneratedTransition>,
    /// Sent without an acknowledgement; resolved after the restart, before the queue.
    unanswered: Vec<GeneratedTransition>,
    /// Index of its last acknowledged entry: the next must be above it.
    last_index: Option<u64>,
}

/// What a submitter brought back from a cycle's load.
#[derive(Debug, Default)]
struct LaneEnd {
    acks: Vec<(GeneratedTransition, EntryAnswer)>,
    unanswered: Vec<GeneratedTransition>,
    unsent: VecDeque<GeneratedTransition>,
    unexpected: Option<String>,
}

/// Sends `queue` in order, single requests and batches of 2–16 at random, until it is empty
/// or an answer is anything but acknowledgements. Signals `kill` once `acked` reaches
/// `kill_after`.
async fn submit(
    client: reqwest::Client,
    base: String,
    mut queue: VecDeque<GeneratedTransition>,
    seed: u64,
    acked: Arc<AtomicUsize>,
    kill_after: usize,
    kill: mpsc::Sender<()>,
) -> LaneEnd {
    let mut rng = SplitMix64::new(seed);
    let mut end = LaneEnd::default();
    while !queue.is_empty() {
        let as_batch = rng.below(3) == 0;
        let n = if as_batch {
            (2 + rng.below(15) as usize).min(queue.len())
        } else {
            1
        };
        let items: Vec<GeneratedTransition> = queue.drain(..n).collect();
        let bodies: Vec<String> = items.iter().map(|t| t.compact.clone()).collect();
        let (status, body) = match post(&client, &base, &bodies, as_batch).await {
            Ok(answer) => answer,
            Err(_) => {
                end.unanswered = items;
                break;
            }
        };
        let mut stop = false;
        let mut newly = 0;
        for (item, outcome) in items.into_iter().zip(outcomes(n, as_batch, status, &body)) {
            match outcome {
                Outcome::Acked(e) => {
                    end.acks.push((item, e));
                    newly += 1;
                }
                Outcome::Unanswered => {
                    end.unanswered.push(item);
                    stop = true;
                }
                Outcome::Unexpected(why) => {
                    end.unexpected.get_or_insert(why);
                    end.unanswered.push(item);
                    stop = true;
                }
            }
        }
        let before = acked.fetch_add(newly, Ordering::SeqCst);
        if before < kill_after && before + newly >= kill_after {
            let _ = kill.send(());
        }
        if stop {
            break;
        }
    }
    end.unsent = queue;
    end
}

/// Everything acknowledged so far, and what checks need across cycles.
#[derive(Debug, Default)]
struct Book {
    /// Leaf hash → the index it was acknowledged at.
    acked: HashMap<Digest, u64>,
    /// Document reference → the registry process (generation) that wrote its head.
    heads: HashMap<String, usize>,
    /// Every 64th acknowledged entry: resubmitted after each restart, must be `duplicate`.
    samples: Vec<(String, u64)>,
    /// Checkpoints seen so far, by size: the signed bytes.
    checkpoints: BTreeMap<u64, String>,
}

impl Book {
    /// Records an acknowledgement of `t` at `index` by registry process `generation`; `true`
    /// when `t` extends a document whose head an earlier process wrote.
    fn ack(
        &mut self,
        t: &GeneratedTransition,
        index: u64,
        leaf: Digest,
        generation: usize,
    ) -> bool {
        if self.acked.len() % 64 == 0 && self.samples.len() < 2_000 {
            self.samples.push((t.compact.clone(), index));
        }
        self.acked.insert(leaf, index);
        let previous = self.heads.insert(t.reference.to_string(), generation);
        previous.is_some_and(|g| g < generation)
    }
}

/// The ledger's leaf hashes in index order, read from the database behind the registry;
/// fails unless the indexes are exactly `0..n`.
fn ledger_leaves(cluster: &DurableCluster, db: &str) -> Result<Vec<Digest>> {
    let out = cluster.cluster()?.psql(
        db,
        "SELECT idx || ' ' || encode(leaf_hash, 'hex') FROM ledger_entries ORDER BY idx",
    )?;
    out.lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let (idx, hex) = line.split_once(' ').context("malformed row")?;
            if idx.parse::<usize>()? != i {
                bail!("ledger index {idx} at position {i}: a gap");
            }
            digest(hex)
        })
        .collect()
}

/// Runs the soak. `Err` when it could not run; a run that found lost entries or bad
/// checkpoints returns a report that has not [`SoakReport::passed`].
pub fn run(config: &SoakConfig) -> Result<SoakReport> {
    const DB: &str = "lading_soak";
    let started = Instant::now();
    let deadline = started + config.budget;
    let parties = FixtureParties::load()?;
    let key = parties.registry_jwk().verifying_key()?;
    let mut cluster = DurableCluster::start_with(&config.postgres_settings)?;
    cluster.cluster()?.create_database(DB)?;
    let tls = Tls::new()?;
    let settings = RegistrySettings {
        bin: config.bin.clone(),
        database_url: cluster.cluster()?.local_url(DB),
        cert: tls.cert_path(),
        key: tls.key_path(),
        workers: config.workers,
        checkpoint_interval_ms: config.checkpoint_interval_ms,
        log_filter: "warn".into(),
        log_path: config.log_path.clone(),
        client_ca: None,
        env: Vec::new(),
    };
    let mut registry = RegistryProcess::start(&settings)?;
    let base = registry.base.clone();
    let client = tls.client()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let submitters = config.submitters.max(1);
    let capacity = (config.load * 3 / 2).div_ceil(submitters) + 1;
    let mut lanes: Vec<Lane> = (0..submitters)
        .map(|i| -> Result<Lane> {
            let mut c = GeneratorConfig::new(1_000_000, config.transfers, config.seed + i as u64);
            c.reference_prefix = format!("K{i}");
            Ok(Lane {
                generator: LedgerGenerator::new(&parties, c)?,
                queue: VecDeque::new(),
                unanswered: Vec::new(),
                last_index: None,
            })
        })
        .collect::<Result<_>>()?;
    let mut rng = SplitMix64::new(config.seed ^ 0x50A4);
    let mut book = Book::default();
    let mut report = SoakReport::default();
    // Which registry process is running: 1 is the first, each restart adds one.
    let mut generation = 1;

    for cycle in 1..=config.cycles {
        let cycle_start = Instant::now();
        let mut c = CycleReport {
            cycle,
            postgres_crashed: config.postgres_crash_every > 0
                && cycle % config.postgres_crash_every == 0,
            kill_after: config.load / 2 + rng.below(config.load as u64 / 2 + 1) as usize,
            ..CycleReport::default()
        };
        for lane in &mut lanes {
            while lane.queue.len() < capacity {
                match lane.generator.next_transition()? {
                    Some(t) => lane.queue.push_back(t),
                    None => bail!("a generator ran out of documents"),
                }
            }
        }

        // Load, and the kill at the chosen moment.
        let acked = Arc::new(AtomicUsize::new(0));
        let stop_watch = Arc::new(AtomicBool::new(false));
        let (kill_tx, kill_rx) = mpsc::channel();
        let watcher = runtime.spawn(watch_checkpoints(
            client.clone(),
            base.clone(),
            stop_watch.clone(),
            Duration::from_millis(20),
        ));
        let tasks: Vec<_> = lanes
            .iter_mut()
            .enumerate()
            .map(|(i, lane)| {
                runtime.spawn(submit(
                    client.clone(),
                    base.clone(),
                    std::mem::take(&mut lane.queue),
                    rng.next_u64() ^ i as u64,
                    acked.clone(),
                    c.kill_after,
                    kill_tx.clone(),
                ))
            })
            .collect();
        drop(kill_tx);
        // Disconnected: every submitter stopped before the threshold (reported below).
        let _ = kill_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let killed_at = Instant::now();
        if c.postgres_crashed {
            cluster.crash();
            // Let the registry meet the dead database before it dies itself.
            std::thread::sleep(Duration::from_millis(rng.below(50)));
        }
        registry.kill_9()?;
        let ends: Vec<LaneEnd> = runtime.block_on(async {
            let mut ends = Vec::new();
            for t in tasks {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, t).await {
                    Ok(Ok(end)) => ends.push(end),
                    Ok(Err(e)) => bail!("a submitter failed: {e}"),
                    Err(_) => bail!("a submitter did not stop after the kill"),
                }
            }
            Ok(ends)
        })?;
        stop_watch.store(true, Ordering::SeqCst);
        let seen = runtime.block_on(watcher)?;
        if c.postgres_crashed {
            cluster.recover()?;
        }
        registry.respawn(&settings)?;
        generation += 1;
        c.restart = killed_at.elapsed();

        // What the load saw.
        for (lane, end) in lanes.iter_mut().zip(ends) {
            if let Some(why) = end.unexpected {
                c.problems.push(format!("unexpected answer: {why}"));
            }
            for (t, e) in end.acks {
                let leaf = leaf_hash(t.compact.as_bytes());
                if e.leaf_hash != leaf.to_hex() {
                    c.problems.push(format!(
                        "entry {} answered with a foreign leaf hash",
                        e.index
                    ));
                }
                if lane.last_index.is_some_and(|last| last >= e.index) {
                    c.problems.push(format!(
                        "entry {} acknowledged after {:?} of the same submitter",
                        e.index, lane.last_index
                    ));
                }
                lane.last_index = Some(e.index);
                c.acknowledged += 1;
                if book.ack(&t, e.index, leaf, generation - 1) {
                    c.chained_across_restart += 1;
                }
            }
            c.unanswered += end.unanswered.len();
            lane.unanswered = end.unanswered;
            lane.queue = end.unsent;
        }
        if c.unanswered == 0 {
            c.problems
                .push("no request was in flight at the kill".into());
        }
        for s in seen {
            book.checkpoints.insert(s.size, s.signed);
        }

        runtime.block_on(check_cycle(
            &client, &base, &cluster, DB, &key, &mut lanes, &mut book, &mut c, generation, deadline,
        ))?;
        c.wall = cycle_start.elapsed();
        eprintln!("soak: {}", c.line());
        report.cycles.push(c);
    }

    // Let the last registry sign its whole ledger, then stop it cleanly.
    let final_check = runtime.block_on(async {
        let size = ledger_size(&client, &base).await?;
        checkpoint_of(&client, &base, size, deadline).await?;
        Ok::<_, anyhow::Error>(size)
    });
    match final_check {
        Ok(size) => report.final_size = size,
        Err(e) => report.problems.push(format!("final check: {e:#}")),
    }
    report.distinct_checkpoints = book.checkpoints.len();
    if report.final_size != book.acked.len() as u64 {
        report.problems.push(format!(
            "final ledger of {} entries, {} acknowledged",
            report.final_size,
            book.acked.len()
        ));
    }
    let _status = registry.stop()?;
    cluster.stop()?;
    report.wall = started.elapsed();
    Ok(report)
}

/// The checks after a restart (see the module docs), then the resubmission of what was never
/// answered.
#[allow(clippy::too_many_arguments)]
async fn check_cycle(
    client: &reqwest::Client,
    base: &str,
    cluster: &DurableCluster,
    db: &str,
    key: &VerifyingKey,
    lanes: &mut [Lane],
    book: &mut Book,
    c: &mut CycleReport,
    generation: usize,
    deadline: Instant,
) -> Result<()> {
    let (status, served_key) = get_json(client, &format!("{base}/v1/registry/key")).await?;
    let served_key: Jwk = serde_json::from_value(served_key)
        .with_context(|| format!("registry key answered {status}"))?;
    if served_key.verifying_key()?.key != key.key {
        c.problems.push("the registry serves another key".into());
    }

    // The ledger: gapless (read), no leaf twice, every acknowledgement where it was.
    let leaves = ledger_leaves(cluster, db)?;
    let size = leaves.len() as u64;
    c.ledger_size = size;
    let served_size = ledger_size(client, base).await?;
    if served_size != size {
        c.problems.push(format!(
            "readyz says {served_size}, the database holds {size}"
        ));
    }
    let positions: HashMap<Digest, u64> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, i as u64))
        .collect();
    if positions.len() != leaves.len() {
        c.problems.push("a leaf is on the ledger twice".into());
    }
    for (leaf, index) in &book.acked {
        if leaves.get(*index as usize) != Some(leaf) {
            c.lost += 1;
            if c.lost <= 5 {
                c.problems.push(format!(
                    "acknowledged entry {index} ({leaf}) is {}",
                    match positions.get(leaf) {
                        Some(at) => format!("at index {at}"),
                        None => "gone".into(),
                    }
                ));
            }
        }
    }
    let unanswered: HashSet<Digest> = lanes
        .iter()
        .flat_map(|l| &l.unanswered)
        .map(|t| leaf_hash(t.compact.as_bytes()))
        .collect();
    let strangers: Vec<usize> = (0..leaves.len())
        .filter(|&i| !book.acked.contains_key(&leaves[i]) && !unanswered.contains(&leaves[i]))
        .collect();
    if let Some(first) = strangers.first() {
        c.problems.push(format!(
            "{} entries (the first at {first}) were neither acknowledged nor sent unanswered",
            strangers.len()
        ));
    }

    // Checkpoints: a new one of the whole ledger, then every one so far, verified and
    // recomputed from the leaves.
    let latest = checkpoint_of(client, base, size, deadline).await?;
    let latest_root = verified_root(&latest, key)?;
    let mut served: BTreeMap<u64, String> = BTreeMap::new();
    let mut after = None;
    for _ in 0..100_000 {
        let url = match after {
            Some(a) => format!("{base}/v1/checkpoints?after={a}&limit=1000"),
            None => format!("{base}/v1/checkpoints?limit=1000"),
        };
        let (status, body) = get_json(client, &url).await?;
        let page: Vec<String> = serde_json::from_value(body["checkpoints"].clone())
            .with_context(|| format!("checkpoint list answered {status}: {body}"))?;
        let Some(last) = page.last() else { break };
        let last_size = SignedCheckpoint::parse(last)?.unverified().size;
        for signed in page {
            let s = SignedCheckpoint::parse(&signed)?.unverified().size;
            served.insert(s, signed);
        }
        after = Some(last_size);
    }
    // The list starts above size 0; the empty ledger's checkpoint is asked for by its size.
    for s in book.checkpoints.keys() {
        if !served.contains_key(s) {
            let (status, body) = get_json(client, &format!("{base}/v1/checkpoints/{s}")).await?;
            if let (200, Ok(answer)) = (status, serde_json::from_value::<CheckpointAnswer>(body)) {
                served.insert(answer.size, answer.signed);
            }
        }
    }
    for (s, signed) in &book.checkpoints {
        match served.get(s) {
            Some(now) if now == signed => {}
            Some(_) => c.problems.push(format!(
                "the checkpoint of size {s} was signed again differently"
            )),
            None => c
                .problems
                .push(format!("the checkpoint of size {s} is no longer served")),
        }
    }
    let mut tree: Option<LedgerTree> = None;
    let mut pushed = 0usize;
    for (s, signed) in &served {
        let checkpoint = match SignedCheckpoint::parse(signed).and_then(|p| p.verify(key)) {
            Ok(cp) => cp,
            Err(e) => {
                c.problems
                    .push(format!("checkpoint of size {s} does not verify: {e}"));
                continue;
            }
        };
        if checkpoint.size > size {
            c.problems.push(format!(
                "checkpoint of size {s} beyond the ledger of {size}"
            ));
            continue;
        }
        if tree.is_none() {
            tree = Some(LedgerTree::new(u64::from(checkpoint.block_size))?);
        }
        let Some(tree) = tree.as_mut() else { continue };
        if u64::from(checkpoint.block_size) != tree.block_size() {
            c.problems
                .push(format!("checkpoint of size {s} has another block size"));
            continue;
        }
        while (pushed as u64) < checkpoint.size {
            tree.push(leaves[pushed]);
            pushed += 1;
        }
        if tree.root() != checkpoint.root {
            c.problems.push(format!(
                "checkpoint of size {s}: signed root {} but the ledger gives {}",
                checkpoint.root,
                tree.root()
            ));
        }
        c.checkpoints_verified += 1;
    }
    if !served.contains_key(&size) {
        c.problems
            .push(format!("the latest checkpoint ({size}) is not listed"));
    }
    book.checkpoints.extend(served);

    // A sample of entries proves against the latest checkpoint.
    let sample: Vec<u64> = (0..8).map(|k| size * k / 8).filter(|&i| i < size).collect();
    for index in sample {
        let p = proof(client, base, index, size).await?;
        let leaf = digest(&p.leaf_hash)?;
        if leaves.get(index as usize) != Some(&leaf)
            || p.checkpoint.signed != latest.signed
            || verify_inclusion(&p.proof, leaf, latest_root).is_err()
        {
            c.problems
                .push(format!("the proof of entry {index} does not verify"));
        }
    }

    // Earlier acknowledgements, resubmitted: duplicates at their index.
    if !book.samples.is_empty() {
        let bodies: Vec<String> = book.samples.iter().map(|(s, _)| s.clone()).collect();
        let (status, body) = post(client, base, &bodies, true).await?;
        match serde_json::from_value::<BatchAnswer>(body.clone()) {
            Ok(answer) if status == 200 && answer.results.len() == bodies.len() => {
                for ((_, index), item) in book.samples.iter().zip(&answer.results) {
                    let ok = item.status == 200
                        && item
                            .entry
                            .as_ref()
                            .is_some_and(|e| e.duplicate && e.index == *index);
                    if !ok {
                        c.problems.push(format!(
                            "resubmitted entry {index} answered {}: {:?}",
                            item.status, item.problem
                        ));
                        break;
                    }
                }
            }
            _ => c.problems.push(format!(
                "resubmitting earlier entries answered {status}: {body}"
            )),
        }
    }

    // What was never answered: a duplicate where it landed, accepted where it did not; in each
    // submitter's order, since later ones may chain on earlier ones.
    let resolved = futures::stream::iter(lanes.iter_mut().map(|lane| {
        let positions = &positions;
        async move {
            let mut out = Vec::new();
            for t in std::mem::take(&mut lane.unanswered) {
                let leaf = leaf_hash(t.compact.as_bytes());
                let landed = positions.get(&leaf).copied();
                let answer = post(client, base, std::slice::from_ref(&t.compact), false).await;
                out.push((t, leaf, landed, answer.map_err(anyhow::Error::from)));
            }
            out
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for (t, leaf, landed, answer) in resolved.into_iter().flatten() {
        let (status, body) = answer?;
        let entry: Option<EntryAnswer> = serde_json::from_value(body.clone()).ok();
        let index = entry.as_ref().map(|e| e.index);
        match (landed, status, entry) {
            (Some(at), 200, Some(e)) if e.duplicate && e.index == at => {
                c.landed_unanswered += 1;
                book.ack(&t, at, leaf, generation);
            }
            (None, 201, Some(e)) if !e.duplicate && e.leaf_hash == leaf.to_hex() => {
                c.accepted_on_resubmission += 1;
                if book.ack(&t, e.index, leaf, generation) {
                    c.chained_across_restart += 1;
                }
            }
            _ => c.problems.push(format!(
                "an unanswered submission (landed at {landed:?}) answered {status} at {index:?}: {body}"
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(index: u64) -> Value {
        json!({"index": index, "leafHash": "00", "duplicate": false})
    }

    #[test]
    fn a_batch_cut_short_by_an_unavailable_ledger_is_unanswered_from_there() {
        let body = json!({
            "accepted": 1, "duplicates": 0, "refused": 2,
            "results": [
                {"status": 201, "entry": entry(7)},
                {"status": 503, "problem": {"code": "ledger_unavailable"}},
                {"status": 409, "problem": {"code": "wrong_previous_checksum"}},
            ]
        });
        let o = outcomes(3, true, 200, &body);
        assert!(matches!(&o[0], Outcome::Acked(e) if e.index == 7));
        assert!(matches!(o[1], Outcome::Unanswered));
        assert!(matches!(o[2], Outcome::Unanswered));
        assert!(acknowledged(3, true, 200, &body).is_err());
    }

    #[test]
    fn a_refusal_without_an_outage_is_unexpected() {
        let body = json!({
            "accepted": 0, "duplicates": 0, "refused": 1,
            "results": [{"status": 409, "problem": {"code": "double_spend"}}]
        });
        assert!(matches!(
            outcomes(1, true, 200, &body)[0],
            Outcome::Unexpected(_)
        ));
        let dup = json!({"index": 3, "leafHash": "00", "duplicate": true});
        assert!(matches!(
            outcomes(1, false, 200, &dup)[0],
            Outcome::Unexpected(_)
        ));
        assert!(matches!(
            outcomes(1, false, 503, &json!({}))[0],
            Outcome::Unanswered
        ));
        let ok = acknowledged(1, false, 201, &entry(4)).unwrap();
        assert_eq!(ok[0].index, 4);
        // A batch answer that does not match the request is not an acknowledgement.
        let short = json!({"accepted": 1, "duplicates": 0, "refused": 0,
                           "results": [{"status": 201, "entry": entry(1)}]});
        assert!(matches!(
            outcomes(2, true, 200, &short)[1],
            Outcome::Unexpected(_)
        ));
    }
}
