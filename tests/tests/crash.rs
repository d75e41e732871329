//! Crash safety: a registry killed with SIGKILL while requests are in flight loses nothing it
//! acknowledged, stores nothing twice, keeps its indexes gapless and its signed checkpoints
//! verifiable, and goes on working after a restart.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::jws::{Jwk, VerifyingKey};
use lading_domain::merkle::{leaf_hash, verify_inclusion, InclusionProof};
use lading_domain::Digest;
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use serde::Deserialize;
use serde_json::Value;

/// Concurrent submitters.
const TASKS: usize = 16;
/// Acknowledgements after which the registry is killed.
const KILL_AFTER: usize = 300;
/// Every wait of this test ends by then.
const BUDGET: Duration = Duration::from_secs(300);

/// One acknowledged submission.
#[derive(Debug, Clone)]
struct Ack {
    index: u64,
    leaf_hash: String,
    signed: String,
}

/// Where a submitter stood when the registry died.
#[derive(Debug, Default)]
struct TaskEnd {
    /// Sent, never answered: on the ledger at most once.
    in_flight: Vec<String>,
    /// Never sent.
    unsent: Vec<String>,
    /// Anything but a transport failure is a bug.
    unexpected: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    index: u64,
    leaf_hash: String,
    duplicate: bool,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    status: u16,
    entry: Option<Entry>,
    problem: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BatchAnswer {
    accepted: usize,
    duplicates: usize,
    refused: usize,
    results: Vec<BatchItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointAnswer {
    size: u64,
    root: String,
    signed: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofAnswer {
    leaf_hash: String,
    proof: InclusionProof,
    checkpoint: CheckpointAnswer,
}

fn digest(hex: &str) -> Digest {
    let bytes = hex::decode(hex).unwrap();
    Digest::from_slice(&bytes).unwrap()
}

/// Posts one transition (`application/jose`) or several (batch); `Err` only when no answer came.
async fn post(
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
            .body(items[0].clone())
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await?;
    Ok((status, body))
}

/// The entries a successful answer acknowledges, one per item, or why it is not one.
fn acknowledged(
    items: &[String],
    as_batch: bool,
    status: u16,
    body: &Value,
) -> Result<Vec<Entry>, String> {
    if as_batch {
        let answer: BatchAnswer =
            serde_json::from_value(body.clone()).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || answer.refused != 0 || answer.results.len() != items.len() {
            return Err(format!("batch answered {status}: {body}"));
        }
        answer
            .results
            .into_iter()
            .map(|r| match (r.status, r.entry) {
                (201, Some(e)) if !e.duplicate => Ok(e),
                (s, _) => Err(format!("batch item {s}: {:?}", r.problem)),
            })
            .collect()
    } else {
        let entry: Entry =
            serde_json::from_value(body.clone()).map_err(|e| format!("{e}: {body}"))?;
        if status != 201 || entry.duplicate {
            return Err(format!("single answered {status}: {body}"));
        }
        Ok(vec![entry])
    }
}

/// One submitter: sends its documents' transitions in order, alternating single requests and
/// small batches, until the queue is empty or the registry stops answering.
async fn submitter(
    task: usize,
    client: reqwest::Client,
    base: String,
    mut queue: VecDeque<String>,
    acks: Arc<Mutex<Vec<Ack>>>,
    acked: Arc<AtomicUsize>,
    kill: std::sync::mpsc::Sender<()>,
) -> TaskEnd {
    let mut step = task;
    while !queue.is_empty() {
        step += 1;
        let as_batch = step % 3 == 0;
        let n = if as_batch {
            (1 + step % 4).min(queue.len())
        } else {
            1
        };
        let items: Vec<String> = queue.drain(..n).collect();
        let (status, body) = match post(&client, &base, &items, as_batch).await {
            Ok(answer) => answer,
            Err(_) => {
                return TaskEnd {
                    in_flight: items,
                    unsent: queue.into(),
                    unexpected: None,
                }
            }
        };
        match acknowledged(&items, as_batch, status, &body) {
            Ok(entries) => {
                let mut all = acks.lock().unwrap();
                for (signed, e) in items.into_iter().zip(entries) {
                    all.push(Ack {
                        index: e.index,
                        leaf_hash: e.leaf_hash,
                        signed,
                    });
                }
                drop(all);
                if acked.fetch_add(n, Ordering::SeqCst) + n >= KILL_AFTER {
                    let _ = kill.send(());
                }
            }
            Err(why) => {
                return TaskEnd {
                    in_flight: items,
                    unsent: queue.into(),
                    unexpected: Some(why),
                }
            }
        }
    }
    TaskEnd::default()
}

/// Polls the latest checkpoint while the load runs, keeping every distinct one.
async fn watch_checkpoints(
    client: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
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
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

async fn get_json(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn proof(client: &reqwest::Client, base: &str, index: u64, size: u64) -> ProofAnswer {
    let (status, body) = get_json(
        client,
        format!("{base}/v1/entries/{index}/proof?size={size}"),
    )
    .await;
    assert_eq!(status, 200, "proof of {index} at size {size}: {body}");
    serde_json::from_value(body).unwrap()
}

/// The checkpoint's signature is the registry's and its fields are the ones answered.
fn verified_root(checkpoint: &CheckpointAnswer, key: &VerifyingKey) -> Digest {
    let signed = SignedCheckpoint::parse(&checkpoint.signed).unwrap();
    let content = signed.verify(key).unwrap();
    assert_eq!(content.size, checkpoint.size);
    assert_eq!(content.root.to_hex(), checkpoint.root);
    content.root
}

async fn ledger_size(client: &reqwest::Client, base: &str) -> u64 {
    let (status, body) = get_json(client, format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    body["size"].as_u64().unwrap()
}

/// Waits for a signed checkpoint of exactly `size` entries.
async fn checkpoint_of(
    client: &reqwest::Client,
    base: &str,
    size: u64,
    deadline: Instant,
) -> CheckpointAnswer {
    loop {
        let (status, body) = get_json(client, format!("{base}/v1/checkpoint")).await;
        if status == 200 {
            let c: CheckpointAnswer = serde_json::from_value(body).unwrap();
            if c.size == size {
                return c;
            }
            assert!(
                c.size < size,
                "checkpoint of {} beyond the ledger of {size}",
                c.size
            );
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn acknowledged_entries_survive_kill_9_mid_stream() {
    let deadline = Instant::now() + BUDGET;
    let db = TestDb::new().unwrap();
    let tls = Tls::new().unwrap();
    let mut server = Server::start(
        &db,
        &tls,
        ServerOptions {
            checkpoint_interval_ms: 20,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let base = server.base.clone();

    // 1,250 transitions of 250 documents, each document wholly in one submitter's queue so that
    // no transition is sent before its parent was acknowledged.
    let parties = FixtureParties::load().unwrap();
    let mut config = GeneratorConfig::new(250, 4, 0xC0FFEE);
    config.reference_prefix = "CRASH".into();
    let mut generator = LedgerGenerator::new(&parties, config).unwrap();
    let mut queues: Vec<VecDeque<String>> = vec![VecDeque::new(); TASKS];
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    while let Some(t) = generator.next_transition().unwrap() {
        let next = owner.len() % TASKS;
        let task = *owner.entry(t.reference.to_string()).or_insert(next);
        queues[task].push_back(t.compact);
        total += 1;
    }
    assert_eq!(total, 1250);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tls.client().unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let (kill_tx, kill_rx) = std::sync::mpsc::channel();
    let watcher = runtime.spawn(watch_checkpoints(
        client.clone(),
        base.clone(),
        stop_watch.clone(),
    ));
    let tasks: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(i, queue)| {
            runtime.spawn(submitter(
                i,
                client.clone(),
                base.clone(),
                queue,
                acks.clone(),
                acked.clone(),
                kill_tx.clone(),
            ))
        })
        .collect();
    drop(kill_tx);

    // Kill as soon as enough is acknowledged: the other submitters are mid-request.
    kill_rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .expect("not enough acknowledgements before the deadline");
    server.kill_9().unwrap();
    let ends: Vec<TaskEnd> = runtime.block_on(async {
        let mut ends = Vec::new();
        for t in tasks {
            ends.push(
                tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), t)
                    .await
                    .expect("a submitter did not stop after the kill")
                    .unwrap(),
            );
        }
        ends
    });
    stop_watch.store(true, Ordering::SeqCst);
    let seen_checkpoints = runtime.block_on(watcher).unwrap();

    for end in &ends {
        assert!(
            end.unexpected.is_none(),
            "unexpected answer before the kill: {:?}",
            end.unexpected
        );
    }
    let acks: Vec<Ack> = acks.lock().unwrap().clone();
    let in_flight: Vec<String> = ends
        .iter()
        .flat_map(|e| e.in_flight.iter().cloned())
        .collect();
    assert!(acks.len() >= KILL_AFTER, "only {} acknowledged", acks.len());
    assert!(
        acks.len() < total,
        "everything was acknowledged before the kill"
    );
    assert!(
        !in_flight.is_empty(),
        "no request was in flight at the kill"
    );
    assert!(
        seen_checkpoints.len() >= 2,
        "saw {} checkpoints before the kill",
        seen_checkpoints.len()
    );

    server.spawn().unwrap();

    runtime.block_on(async {
        let (status, key) = get_json(&client, format!("{base}/v1/registry/key")).await;
        assert_eq!(status, 200);
        let key: Jwk = serde_json::from_value(key).unwrap();
        let key = key.verifying_key().unwrap();

        // Every acknowledged entry is on the ledger; the ledger holds only what was sent.
        let size = ledger_size(&client, &base).await;
        let acked_count = acks.len() as u64;
        assert!(
            size >= acked_count,
            "ledger of {size} < {acked_count} acknowledged"
        );
        assert!(
            size <= acked_count + in_flight.len() as u64,
            "ledger of {size} holds more than the {acked_count} acknowledged and {} in flight",
            in_flight.len()
        );
        let latest = checkpoint_of(&client, &base, size, deadline).await;
        let root = verified_root(&latest, &key);

        // Gapless: entries 0..size all exist (and nothing beyond), each proven against the latest checkpoint.
        let leaves: Vec<String> = futures::stream::iter(0..size)
            .map(|i| {
                let client = client.clone();
                let base = base.clone();
                async move {
                    let p = proof(&client, &base, i, size).await;
                    assert_eq!((p.proof.index, p.proof.size), (i, size));
                    verify_inclusion(&p.proof, digest(&p.leaf_hash), root)
                        .unwrap_or_else(|e| panic!("proof of {i}: {e}"));
                    p.leaf_hash
                }
            })
            .buffered(16)
            .collect()
            .await;
        let (status, _) = get_json(
            &client,
            format!("{base}/v1/entries/{size}/proof?size={size}"),
        )
        .await;
        assert_eq!(status, 404, "an entry beyond the ledger");
        let rows = db
            .psql("SELECT count(*) || ' ' || min(idx) || ' ' || max(idx) FROM ledger_entries")
            .unwrap();
        assert_eq!(
            rows.trim(),
            format!("{size} 0 {}", size - 1),
            "rows behind the registry"
        );
        let distinct: HashSet<&String> = leaves.iter().collect();
        assert_eq!(distinct.len() as u64, size, "a leaf is stored twice");

        // Each acknowledgement holds: same index, same leaf hash, which is the hash of the bytes sent.
        let mut indexes = HashSet::new();
        for ack in &acks {
            assert!(
                indexes.insert(ack.index),
                "index {} acknowledged twice",
                ack.index
            );
            assert_eq!(leaf_hash(ack.signed.as_bytes()).to_hex(), ack.leaf_hash);
            assert_eq!(
                leaves[ack.index as usize], ack.leaf_hash,
                "entry {} changed",
                ack.index
            );
        }
        // In-flight requests: absent or present once; nothing else is on the ledger.
        let acked_leaves: HashSet<&str> = acks.iter().map(|a| a.leaf_hash.as_str()).collect();
        let flight_leaves: HashSet<String> = in_flight
            .iter()
            .map(|s| leaf_hash(s.as_bytes()).to_hex())
            .collect();
        for (i, leaf) in leaves.iter().enumerate() {
            assert!(
                acked_leaves.contains(leaf.as_str()) || flight_leaves.contains(leaf),
                "entry {i} was neither acknowledged nor in flight"
            );
        }
        let stored_in_flight = leaves.iter().filter(|l| flight_leaves.contains(*l)).count();
        assert_eq!(acks.len() + stored_in_flight, size as usize);
        eprintln!(
            "crash: {} acknowledged, {} in flight at the kill ({stored_in_flight} of them stored), \
             ledger {size}, {} checkpoints seen before",
            acks.len(),
            in_flight.len(),
            seen_checkpoints.len()
        );

        // Resubmitting every acknowledged item: 200 duplicate at the same index, nothing new.
        let signed: Vec<String> = acks.iter().map(|a| a.signed.clone()).collect();
        let (status, body) = post(&client, &base, &signed, true).await.unwrap();
        assert_eq!(status, 200);
        let answer: BatchAnswer = serde_json::from_value(body).unwrap();
        assert_eq!(
            (answer.accepted, answer.duplicates, answer.refused),
            (0, acks.len(), 0)
        );
        for (ack, item) in acks.iter().zip(&answer.results) {
            let entry = item.entry.as_ref().unwrap();
            assert_eq!(
                (item.status, entry.index, entry.duplicate),
                (200, ack.index, true)
            );
            assert_eq!(entry.leaf_hash, ack.leaf_hash);
        }
        for ack in acks.iter().take(20) {
            let (status, body) = post(&client, &base, std::slice::from_ref(&ack.signed), false)
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["index"].as_u64(), Some(ack.index));
            assert_eq!(body["duplicate"], Value::Bool(true));
        }
        assert_eq!(
            ledger_size(&client, &base).await,
            size,
            "a resubmission was stored again"
        );

        // Every checkpoint signed before the crash is still served, still verifies, and proves
        // the acknowledged entries it covers.
        let mut sampled: Vec<&CheckpointAnswer> = seen_checkpoints
            .iter()
            .step_by((seen_checkpoints.len() / 12).max(1))
            .collect();
        sampled.extend(seen_checkpoints.last());
        for before in sampled {
            let (status, body) =
                get_json(&client, format!("{base}/v1/checkpoints/{}", before.size)).await;
            assert_eq!(status, 200, "checkpoint {} is gone: {body}", before.size);
            let stored: CheckpointAnswer = serde_json::from_value(body).unwrap();
            assert_eq!(
                (stored.root.as_str(), stored.signed.as_str()),
                (before.root.as_str(), before.signed.as_str())
            );
            let root = verified_root(&stored, &key);
            for ack in acks.iter().filter(|a| a.index < before.size).step_by(25) {
                let p = proof(&client, &base, ack.index, before.size).await;
                assert_eq!(p.leaf_hash, ack.leaf_hash);
                assert_eq!(p.checkpoint.signed, before.signed);
                verify_inclusion(&p.proof, digest(&ack.leaf_hash), root).unwrap();
            }
        }

        // The registry keeps working: each submitter finishes its queue, starting with what was in
        // flight (200 if it had made it, 201 if not).
        let stored_leaves: HashMap<String, u64> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as u64))
            .collect();
        let resumed = ends.into_iter().map(|end| {
            let client = client.clone();
            let base = base.clone();
            let stored_leaves = &stored_leaves;
            async move {
                for item in end.in_flight.iter().chain(&end.unsent) {
                    let (status, body) = post(&client, &base, std::slice::from_ref(item), false)
                        .await
                        .unwrap();
                    match stored_leaves.get(&leaf_hash(item.as_bytes()).to_hex()) {
                        Some(&index) => {
                            assert_eq!(status, 200, "{body}");
                            assert_eq!(body["index"].as_u64(), Some(index));
                        }
                        None => assert_eq!(status, 201, "{body}"),
                    }
                }
            }
        });
        futures::future::join_all(resumed).await;
        let final_size = ledger_size(&client, &base).await;
        assert_eq!(final_size, total as u64);
        let last = checkpoint_of(&client, &base, final_size, deadline).await;
        let root = verified_root(&last, &key);
        let p = proof(&client, &base, final_size - 1, final_size).await;
        verify_inclusion(&p.proof, digest(&p.leaf_hash), root).unwrap();
    });
    server.stop().unwrap();
}
