//! Backups of the registry's database: a primary that archives its WAL, a base backup taken
//! under load, more load after it, and a restore of the backup plus the archive into a fresh
//! cluster. A registry starts on the restored cluster (it refuses a ledger whose latest
//! checkpoint does not match its entries) and the restored ledger is checked: every
//! acknowledged entry, at its acknowledged index, proven against the latest checkpoint; every
//! checkpoint row signed by the registry's key, its root recomputed from the restored entries,
//! and proven an ancestor of the latest; the same rows as the primary had. Restoring the base
//! backup without the archive gives a shorter ledger, a prefix of the full one: the archive is
//! what carries the entries written after the backup.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::digest::Digest;
use lading_domain::jws::Jwk;
use lading_domain::merkle::{
    leaf_hash, verify_consistency, BlockTree, CheckpointTree, ConsistencyProof,
};
use lading_e2e::failover::{check_ledger, retrying_submitter, Submissions};
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{
    cluster_dir, database_env, repo_root, Server, ServerOptions, Tls, WRITER_ROLE,
};
use lading_e2e::soak::{checkpoint_of, get_json, watch_checkpoints};
use lading_pgcluster::{Cluster, ClusterOptions};

/// Concurrent submitters.
const TASKS: usize = 8;
/// Every wait of this test ends by then.
const BUDGET: Duration = Duration::from_secs(300);

/// One row of the `checkpoints` table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckpointRow {
    size: u64,
    block_size: u64,
    root: String,
    signed: String,
}

fn checkpoint_rows(cluster: &Cluster) -> Vec<CheckpointRow> {
    cluster
        .psql(
            "lading",
            "SELECT size, block_size, encode(root, 'hex'), signed FROM checkpoints ORDER BY size",
        )
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 4, "{line}");
            CheckpointRow {
                size: f[0].parse().unwrap(),
                block_size: f[1].parse().unwrap(),
                root: f[2].to_owned(),
                signed: f[3].to_owned(),
            }
        })
        .collect()
}

/// The ledger's leaf hashes in index order, each checked against the stored entry's bytes.
fn leaves(cluster: &Cluster) -> Vec<Digest> {
    cluster
        .psql(
            "lading",
            "SELECT idx, convert_from(signed, 'UTF8'), encode(leaf_hash, 'hex') \
             FROM ledger_entries ORDER BY idx",
        )
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 3, "{line}");
            assert_eq!(f[0], i.to_string(), "the ledger has a gap before {}", f[0]);
            let leaf = leaf_hash(f[1].as_bytes());
            assert_eq!(leaf.to_hex(), f[2], "entry {i}: stored leaf hash");
            leaf
        })
        .collect()
}

/// The root of the ledger's first `size` entries in blocks of `block_size`, from the leaves.
fn root_of(leaves: &[Digest], size: u64, block_size: u64) -> Digest {
    let entries = &leaves[..usize::try_from(size).unwrap()];
    let block_roots: Vec<Digest> = entries
        .chunks(usize::try_from(block_size).unwrap())
        .map(|block| BlockTree::build(block).unwrap().root())
        .collect();
    CheckpointTree::from_block_roots(block_size, size, &block_roots)
        .unwrap()
        .root()
}

#[test]
fn a_restored_backup_holds_every_acknowledged_entry_and_checkpoint() {
    let deadline = Instant::now() + BUDGET;
    let base = cluster_dir("lading-backup-").unwrap();
    let archive = base.path().join("archive");
    // fsync is off as in every test cluster: what is under test is what the backup and the
    // archive hold, and the machine does not crash. The archive itself is flushed regardless.
    let options = |name: &str| ClusterOptions::new(base.path().join(name)).setting("fsync", "off");
    let primary = Cluster::start(options("primary").archive_wal_to(&archive).unwrap()).unwrap();
    primary.create_database("lading").unwrap();
    let writer = primary.ensure_login_role(WRITER_ROLE).unwrap();
    let database_of = |cluster: &Cluster, writer| database_env(&[cluster], writer, "lading");
    let server_options = || ServerOptions {
        checkpoint_interval_ms: 20,
        ..ServerOptions::default()
    };
    let tls = Tls::new().unwrap();
    let mut server =
        Server::start_with_database(database_of(&primary, &writer), &tls, server_options())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tls.client().unwrap();

    let parties = FixtureParties::load().unwrap();
    let mut config = GeneratorConfig::new(80, 4, 0xBAC4_0B5E);
    config.reference_prefix = "BACKUP".into();
    let mut generator = LedgerGenerator::new(&parties, config).unwrap();
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut sent = Vec::new();
    let mut tasks_of = Vec::new();
    while let Some(t) = generator.next_transition().unwrap() {
        let next = owner.len() % TASKS;
        tasks_of.push(*owner.entry(t.reference.to_string()).or_insert(next));
        sent.push(t.compact);
    }
    assert!(sent.len() >= 300, "{} transitions", sent.len());
    // Two rounds of load, in the generator's order: the base backup is taken during the first
    // (two thirds of the transitions); the second starts once the first and the backup are
    // done, so its entries are only in the archive. A document's transitions are all one
    // submitter's, in order; the second round's submitters are numbered after the first's.
    let second_round = sent.len() * 2 / 3;
    let queues = |range: std::ops::Range<usize>| {
        let mut queues: Vec<VecDeque<String>> = vec![VecDeque::new(); TASKS];
        for i in range {
            queues[tasks_of[i]].push_back(sent[i].clone());
        }
        queues
    };
    let bases = Arc::new(vec![server.base.clone()]);
    let shared = Arc::new(Submissions::default());
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = runtime.spawn(watch_checkpoints(
        client.clone(),
        server.base.clone(),
        stop_watch.clone(),
        Duration::from_millis(5),
    ));
    let spawn_round = |round: usize, queues: Vec<VecDeque<String>>| -> Vec<_> {
        queues
            .into_iter()
            .enumerate()
            .map(|(i, queue)| {
                runtime.spawn(retrying_submitter(
                    round * TASKS + i,
                    client.clone(),
                    bases.clone(),
                    queue,
                    shared.clone(),
                    deadline,
                ))
            })
            .collect()
    };
    let first = spawn_round(0, queues(0..second_round));

    // The base backup, taken while the submitters go on.
    while shared.acked.load(Ordering::SeqCst) < sent.len() / 3 {
        assert!(Instant::now() < deadline, "too few acknowledgements");
        std::thread::sleep(Duration::from_millis(2));
    }
    let acked_before = shared.acked.load(Ordering::SeqCst);
    let started = Instant::now();
    let backup = primary.base_backup(base.path().join("backup")).unwrap();
    let backup_time = started.elapsed();
    let acked_after = shared.acked.load(Ordering::SeqCst);
    for task in first {
        runtime.block_on(task).unwrap().unwrap();
    }
    for task in spawn_round(1, queues(second_round..sent.len())) {
        runtime.block_on(task).unwrap().unwrap();
    }
    let acks = shared.acks.lock().unwrap().clone();
    runtime
        .block_on(checkpoint_of(
            &client,
            &server.base,
            sent.len() as u64,
            deadline,
        ))
        .unwrap();
    stop_watch.store(true, Ordering::SeqCst);
    let seen = runtime.block_on(watcher).unwrap();
    assert!(seen.len() >= 2, "saw {} checkpoints", seen.len());
    server.stop().unwrap();
    // What the primary committed is now all in the archive, up to the last segment.
    primary
        .archive_current_wal(Duration::from_secs(60))
        .unwrap();
    let primary_checkpoints = checkpoint_rows(&primary);
    let primary_leaves = leaves(&primary);
    assert_eq!(primary_leaves.len(), sent.len());
    primary.stop().unwrap();

    // The restore: a fresh root, the backup and the archive.
    let started = Instant::now();
    let restored =
        Cluster::restore(&backup.dir, Some(&archive), options("restored"), None).unwrap();
    let restore_time = started.elapsed();
    assert!(!restored.is_standby().unwrap());
    // The login role and its password came with the backup.
    let restored_writer = restored.ensure_login_role(WRITER_ROLE).unwrap();
    assert_eq!(restored_writer.password(), writer.password());

    // The first check: the registry starts only on a ledger whose latest checkpoint matches.
    let restored_server = Server::start_with_database(
        database_of(&restored, &restored_writer),
        &tls,
        server_options(),
    )
    .unwrap();
    let report = runtime
        .block_on(check_ledger(
            &client,
            &restored_server.base,
            &sent,
            &acks,
            &seen,
            deadline,
        ))
        .unwrap();
    assert_eq!(report.size, sent.len() as u64);

    // The registry's key, as the fixtures hold it and the restored registry serves it.
    let fixture: Jwk = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("fixtures/keys/registry.jwk")).unwrap(),
    )
    .unwrap();
    let key = fixture.verifying_key().unwrap();
    let (status, served) = runtime
        .block_on(get_json(&client, &restored_server.url("/v1/registry/key")))
        .unwrap();
    assert_eq!(status, 200);
    let served: Jwk = serde_json::from_value(served).unwrap();
    assert_eq!(served.public_key_bytes(), fixture.public_key_bytes());
    assert_eq!(served.kid(), fixture.kid());

    // Every checkpoint row: the primary's rows, signed by the registry, each root that of the
    // restored entries, each an ancestor of the latest by the registry's own proof.
    let restored_leaves = leaves(&restored);
    assert_eq!(restored_leaves, primary_leaves);
    let rows = checkpoint_rows(&restored);
    assert_eq!(
        rows, primary_checkpoints,
        "the restored checkpoints differ from the primary's"
    );
    let latest = rows.last().cloned().unwrap();
    assert_eq!(latest.size, sent.len() as u64);
    let latest_root = root_of(&restored_leaves, latest.size, latest.block_size);
    for row in &rows {
        let content = SignedCheckpoint::parse(&row.signed)
            .unwrap()
            .verify(&key)
            .unwrap_or_else(|e| panic!("checkpoint {}: {e}", row.size));
        assert_eq!(content.size, row.size);
        assert_eq!(u64::from(content.block_size), row.block_size);
        assert_eq!(content.root.to_hex(), row.root, "checkpoint {}", row.size);
        assert_eq!(
            content.root,
            root_of(&restored_leaves, row.size, row.block_size),
            "checkpoint {}: its root is not that of the restored entries",
            row.size
        );
    }
    let proven = runtime.block_on(async {
        futures::stream::iter(rows.iter().filter(|r| r.size > 0))
            .map(|row| {
                let client = client.clone();
                let url = restored_server.url(&format!(
                    "/v1/checkpoints/consistency?from={}&to={}",
                    row.size, latest.size
                ));
                async move {
                    let (status, body) = get_json(&client, &url).await.unwrap();
                    assert_eq!(status, 200, "{url}: {body}");
                    let proof: ConsistencyProof =
                        serde_json::from_value(body["proof"].clone()).unwrap();
                    let old_root: Digest = row.root.parse().unwrap();
                    verify_consistency(
                        &proof,
                        row.size,
                        old_root,
                        latest.size,
                        latest_root,
                        proof.block_size,
                    )
                    .unwrap_or_else(|e| panic!("checkpoint {}: {e:?}", row.size));
                }
            })
            .buffered(8)
            .count()
            .await
    });
    drop(restored_server);
    restored.stop().unwrap();

    // The base backup alone: the ledger as it was while the backup ran, a strict prefix.
    let alone = Cluster::restore(&backup.dir, None, options("alone"), None).unwrap();
    let alone_leaves = leaves(&alone);
    assert!(
        alone_leaves.len() >= acked_before && alone_leaves.len() <= second_round,
        "the backup alone holds {} entries; {acked_before} were acknowledged before it, \
         {second_round} before the round after it",
        alone_leaves.len(),
    );
    assert_eq!(alone_leaves[..], restored_leaves[..alone_leaves.len()]);
    let alone_latest = checkpoint_rows(&alone).last().cloned().unwrap();
    assert!(alone_latest.size <= alone_leaves.len() as u64);
    alone.stop().unwrap();

    eprintln!(
        "backup/restore: {} entries, {} checkpoints stored ({} proven ancestors of the latest by \
         the restored registry, {} seen while the load ran); base backup {} ms under load \
         ({acked_before}..{acked_after} acknowledged during it); restore of backup and archive \
         {} ms; the backup alone holds {} entries",
        report.size,
        rows.len(),
        proven,
        report.checkpoints_checked,
        backup_time.as_millis(),
        restore_time.as_millis(),
        alone_leaves.len(),
    );
}
