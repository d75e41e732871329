//! Two registry processes on one database: one sequences (it holds the sequencer's lease, a
//! PostgreSQL advisory lock), the other stands by — it serves reads and refuses submissions
//! with `503` and `Retry-After`. `kill -9` of the active one: the other takes over, and
//! clients that retry get `201` or `200 duplicate`, never a double entry.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lading_e2e::failover::{check_ledger, spawn_submitters, split, wait_for_acks, Submissions};
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::soak::{get_json, watch_checkpoints};

/// Concurrent submitters.
const TASKS: usize = 8;
/// Acknowledgements after which the active registry is killed.
const KILL_AFTER: usize = 200;
/// Every wait of this test ends by then.
const BUDGET: Duration = Duration::from_secs(300);

/// Waits until `base` answers `/readyz` with `status`.
async fn readiness_becomes(client: &reqwest::Client, base: &str, status: u16, deadline: Instant) {
    loop {
        let (now, _) = get_json(client, &format!("{base}/readyz"))
            .await
            .unwrap_or((0, serde_json::Value::Null));
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/readyz never answered {status} (last {now})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_standby_registry_takes_over_after_kill_9_and_retried_submissions_land_once() {
    let deadline = Instant::now() + BUDGET;
    let db = TestDb::new().unwrap();
    let tls = Tls::new().unwrap();
    let mut active = Server::start(
        &db,
        &tls,
        ServerOptions {
            checkpoint_interval_ms: 20,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let mut standby = active.beside().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tls.client().unwrap();

    let parties = FixtureParties::load().unwrap();
    let mut config = GeneratorConfig::new(120, 4, 0x7A4E0FF);
    config.reference_prefix = "TAKEOVER".into();
    let generator = LedgerGenerator::new(&parties, config).unwrap();
    let (queues, sent) = split(generator, TASKS).unwrap();
    assert!(sent.len() > 2 * KILL_AFTER, "{} transitions", sent.len());

    runtime.block_on(async {
        // The second process stands by: not ready, refuses writes (saying when to retry),
        // writes nothing, serves reads.
        readiness_becomes(&client, &active.base, 200, deadline).await;
        let ready = client.get(standby.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status().as_u16(), 503);
        assert!(ready.headers().contains_key("retry-after"));
        let refused = client
            .post(standby.url("/v1/transitions"))
            .header("content-type", "application/jose")
            .body(queues[0][0].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 503);
        assert!(refused.headers().contains_key("retry-after"));
        let problem: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(problem["code"], "ledger_unavailable", "{problem}");
        assert_eq!(
            db.psql("SELECT count(*) FROM ledger_entries")
                .unwrap()
                .trim(),
            "0"
        );
        let (status, _) = get_json(&client, &standby.url("/v1/registry/key"))
            .await
            .unwrap();
        assert_eq!(status, 200, "the standby serves reads");
    });

    // Load through both addresses; the kill comes mid-stream.
    let bases = Arc::new(vec![active.base.clone(), standby.base.clone()]);
    let shared = Arc::new(Submissions::default());
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = runtime.spawn(watch_checkpoints(
        client.clone(),
        active.base.clone(),
        stop_watch.clone(),
        Duration::from_millis(5),
    ));
    let tasks = spawn_submitters(&runtime, &client, &bases, queues, &shared, deadline);
    wait_for_acks(&shared, KILL_AFTER, deadline).unwrap();
    stop_watch.store(true, Ordering::SeqCst);
    let seen = runtime.block_on(watcher).unwrap();
    active.kill_9().unwrap();
    let killed = Instant::now();
    for task in tasks {
        runtime.block_on(task).unwrap().unwrap();
    }
    let acks = shared.acks.lock().unwrap().clone();
    let taken_over = acks
        .iter()
        .filter(|a| a.at > killed && a.via == 1)
        .map(|a| a.at)
        .min()
        .expect("nothing acknowledged by the standby after the kill");
    assert!(
        seen.len() >= 2,
        "saw {} checkpoints before the kill",
        seen.len()
    );

    let report = runtime
        .block_on(check_ledger(
            &client,
            &standby.base,
            &sent,
            &acks,
            &seen,
            deadline,
        ))
        .unwrap();
    let outage = shared.outage.lock().unwrap();
    eprintln!(
        "takeover: {} entries, {} acknowledged as duplicates on retry, {} checkpoints before the \
         kill proven ancestors; first acknowledgement by the standby {} ms after the kill; \
         during the outage {} requests unanswered, 503s by code {:?}",
        report.size,
        report.duplicates,
        report.checkpoints_checked,
        taken_over.duration_since(killed).as_millis(),
        outage.unanswered,
        outage.unavailable,
    );
    drop(outage);

    // The killed one comes back and stands by; killing the other hands the ledger back.
    active.spawn().unwrap();
    runtime.block_on(async {
        readiness_becomes(&client, &active.base, 503, deadline).await;
        standby.kill_9().unwrap();
        readiness_becomes(&client, &active.base, 200, deadline).await;
        // Every acknowledged transition, resubmitted: a duplicate at its index, nothing new.
        let signed: Vec<String> = acks.iter().map(|a| a.signed.clone()).collect();
        let (status, body) = lading_e2e::soak::post(&client, &active.base, &signed, true)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["accepted"], 0, "{body}");
        assert_eq!(body["duplicates"], acks.len(), "{body}");
    });
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger_entries")
            .unwrap()
            .trim(),
        sent.len().to_string()
    );
}
