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
use lading_domain::jws::Jwk;
use lading_domain::merkle::{leaf_hash, verify_inclusion};
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{lading_bin, Server, ServerOptions, TestDb, Tls};
use lading_e2e::soak::{
    self, acknowledged, checkpoint_of, digest, get_json, ledger_size, post, proof, verified_root,
    watch_checkpoints, BatchAnswer, CheckpointAnswer, SoakConfig,
};
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
        match acknowledged(items.len(), as_batch, status, &body) {
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
        Duration::from_millis(5),
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
        let (status, key) = get_json(&client, &format!("{base}/v1/registry/key"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        let key: Jwk = serde_json::from_value(key).unwrap();
        let key = key.verifying_key().unwrap();

        // Every acknowledged entry is on the ledger; the ledger holds only what was sent.
        let size = ledger_size(&client, &base).await.unwrap();
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
        let latest = checkpoint_of(&client, &base, size, deadline).await.unwrap();
        let root = verified_root(&latest, &key).unwrap();

        // Gapless: entries 0..size all exist (and nothing beyond), each proven against the latest checkpoint.
        let leaves: Vec<String> = futures::stream::iter(0..size)
            .map(|i| {
                let client = client.clone();
                let base = base.clone();
                async move {
                    let p = proof(&client, &base, i, size).await.unwrap();
                    assert_eq!((p.proof.index, p.proof.size), (i, size));
                    verify_inclusion(&p.proof, digest(&p.leaf_hash).unwrap(), root)
                        .unwrap_or_else(|e| panic!("proof of {i}: {e}"));
                    p.leaf_hash
                }
            })
            .buffered(16)
            .collect()
            .await;
        let (status, _) = get_json(
            &client,
            &format!("{base}/v1/entries/{size}/proof?size={size}"),
        )
        .await
        .unwrap();
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
            ledger_size(&client, &base).await.unwrap(),
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
                get_json(&client, &format!("{base}/v1/checkpoints/{}", before.size))
                    .await
                    .unwrap();
            assert_eq!(status, 200, "checkpoint {} is gone: {body}", before.size);
            let stored: CheckpointAnswer = serde_json::from_value(body).unwrap();
            assert_eq!(
                (stored.root.as_str(), stored.signed.as_str()),
                (before.root.as_str(), before.signed.as_str())
            );
            let root = verified_root(&stored, &key).unwrap();
            for ack in acks.iter().filter(|a| a.index < before.size).step_by(25) {
                let p = proof(&client, &base, ack.index, before.size).await.unwrap();
                assert_eq!(p.leaf_hash, ack.leaf_hash);
                assert_eq!(p.checkpoint.signed, before.signed);
                verify_inclusion(&p.proof, digest(&ack.leaf_hash).unwrap(), root).unwrap();
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
        let final_size = ledger_size(&client, &base).await.unwrap();
        assert_eq!(final_size, total as u64);
        let last = checkpoint_of(&client, &base, final_size, deadline)
            .await
            .unwrap();
        let root = verified_root(&last, &key).unwrap();
        let p = proof(&client, &base, final_size - 1, final_size)
            .await
            .unwrap();
        verify_inclusion(&p.proof, digest(&p.leaf_hash).unwrap(), root).unwrap();
    });
    server.stop().unwrap();
}

/// The load harness's crash soak (`lading-load --soak`), short: three cycles of concurrent
/// load, `kill -9` of the registry mid-load (in the second with PostgreSQL shut down
/// immediately as well), restart on the same database, and the soak's checks of every
/// acknowledged entry and signed checkpoint so far.
#[test]
fn a_short_crash_soak_loses_nothing() {
    let logs = tempfile::tempdir().unwrap();
    let report = soak::run(&SoakConfig {
        bin: lading_bin().unwrap(),
        cycles: 3,
        load: 400,
        submitters: 8,
        postgres_crash_every: 2,
        workers: 2,
        checkpoint_interval_ms: 50,
        transfers: 4,
        seed: 9,
        log_path: logs.path().join("lading.log"),
        budget: BUDGET,
        postgres_settings: Vec::new(),
    })
    .unwrap();
    for cycle in &report.cycles {
        eprintln!("{}", cycle.line());
    }
    assert!(
        report.passed(),
        "{}: {:#?}",
        report.line(),
        report.problems()
    );
    assert_eq!(report.cycles.len(), 3);
    assert_eq!(report.postgres_crashes(), 1);
    assert!(report.acknowledged() >= 3 * 200, "{}", report.line());
    assert!(report.unanswered() > 0, "nothing in flight at the kills");
    assert!(
        report.chained_across_restart() > 0,
        "no transition extended a chain written before a restart"
    );
    assert!(report.checkpoints_verified() >= 3);
    assert_eq!(
        report.final_size as usize,
        report.acknowledged() + report.landed_unanswered() + report.accepted_on_resubmission()
    );
}

/// PostgreSQL itself crashes (immediate shutdown: no flush, no shutdown checkpoint) in every
/// cycle, on a cluster with `fsync` and `full_page_writes` on but `synchronous_commit = off` as
/// its default: the registry's own `synchronous_commit = on` for its writer session is then all
/// that makes an acknowledgement durable, and every acknowledged entry must be there after
/// recovery. (Without that session setting, acknowledged entries are lost here.)
#[test]
fn acknowledged_entries_survive_postgres_crashes_on_a_cluster_that_commits_asynchronously() {
    let logs = tempfile::tempdir().unwrap();
    let report = soak::run(&SoakConfig {
        bin: lading_bin().unwrap(),
        cycles: 3,
        load: 400,
        submitters: 8,
        postgres_crash_every: 1,
        workers: 2,
        checkpoint_interval_ms: 50,
        transfers: 4,
        seed: 11,
        log_path: logs.path().join("lading.log"),
        budget: BUDGET,
        postgres_settings: vec![("synchronous_commit", "off")],
    })
    .unwrap();
    for cycle in &report.cycles {
        eprintln!("{}", cycle.line());
    }
    assert!(
        report.passed(),
        "{}: {:#?}",
        report.line(),
        report.problems()
    );
    assert_eq!(report.postgres_crashes(), 3);
    assert!(report.acknowledged() >= 3 * 200, "{}", report.line());
}
