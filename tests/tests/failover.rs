//! The registry on a PostgreSQL primary with a synchronous standby, reached by a multi-host
//! URL (`target_session_attrs=read-write`). Under load the primary's postmaster is killed with
//! SIGKILL; while there is no primary the registry answers `503` with `Retry-After`, never a
//! wrong answer; the standby is promoted, the registry reconnects, reloads its state and goes
//! on. Every acknowledged entry is on the promoted standby, in order, once; the checkpoints
//! signed before the kill are ancestors of the one after.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lading_e2e::failover::{check_ledger, spawn_submitters, split, wait_for_acks, Submissions};
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{cluster_dir, database_env, Server, ServerOptions, Tls, WRITER_ROLE};
use lading_e2e::soak::{get_json, watch_checkpoints};
use lading_pgcluster::{Cluster, ClusterOptions};

/// Concurrent submitters.
const TASKS: usize = 8;
/// Acknowledgements after which the primary is killed.
const KILL_AFTER: usize = 200;
/// How long the test leaves the registry without a primary once it has seen it refuse, before
/// it promotes the standby: the submitters meet the outage too.
const OUTAGE: Duration = Duration::from_millis(500);
/// Every wait of this test ends by then.
const BUDGET: Duration = Duration::from_secs(300);

#[test]
fn the_registry_follows_a_promoted_synchronous_standby_and_loses_nothing_acknowledged() {
    let deadline = Instant::now() + BUDGET;
    let base = cluster_dir("lading-failover-").unwrap();
    // fsync is off as in every test cluster: what is under test is the standby's copy, and
    // the server dies, not the machine.
    let options = |name: &str| {
        ClusterOptions::new(base.path().join(name))
            .setting("fsync", "off")
            .setting("full_page_writes", "off")
    };
    let mut primary = Cluster::start(options("primary")).unwrap();
    let standby = primary
        .start_standby(options("standby"), "lading_standby")
        .unwrap();
    primary.require_synchronous_standby().unwrap();
    primary
        .wait_for_synchronous_standby(Duration::from_secs(30))
        .unwrap();
    primary.create_database("lading").unwrap();
    let writer = primary.ensure_login_role(WRITER_ROLE).unwrap();
    let database = database_env(&[&primary, &standby], &writer, "lading");
    let tls = Tls::new().unwrap();
    let server = Server::start_with_database(
        database,
        &tls,
        ServerOptions {
            checkpoint_interval_ms: 20,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tls.client().unwrap();

    let parties = FixtureParties::load().unwrap();
    let mut config = GeneratorConfig::new(120, 4, 0xFA11_0FE4);
    config.reference_prefix = "FAILOVER".into();
    let generator = LedgerGenerator::new(&parties, config).unwrap();
    let (queues, sent) = split(generator, TASKS).unwrap();
    assert!(sent.len() > 2 * KILL_AFTER, "{} transitions", sent.len());

    let bases = Arc::new(vec![server.base.clone()]);
    let shared = Arc::new(Submissions::default());
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = runtime.spawn(watch_checkpoints(
        client.clone(),
        server.base.clone(),
        stop_watch.clone(),
        Duration::from_millis(5),
    ));
    let tasks = spawn_submitters(&runtime, &client, &bases, queues, &shared, deadline);
    wait_for_acks(&shared, KILL_AFTER, deadline).unwrap();
    stop_watch.store(true, Ordering::SeqCst);
    let seen = runtime.block_on(watcher).unwrap();

    primary.kill_postmaster();
    let killed = Instant::now();
    // No primary: the registry is up and says so, with when to ask again — a submission at
    // once (the sequencer found the database gone), readiness, and what needs the database.
    runtime.block_on(async {
        loop {
            let refused = client
                .post(server.url("/v1/transitions"))
                .header("content-type", "application/jose")
                .body(sent[sent.len() - 1].clone())
                .send()
                .await
                .unwrap();
            let status = refused.status().as_u16();
            assert_ne!(status, 201, "acknowledged without a primary");
            if status == 503 {
                assert!(refused.headers().contains_key("retry-after"));
                let problem: serde_json::Value = refused.json().await.unwrap();
                assert_eq!(problem["code"], "ledger_unavailable", "{problem}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still taking writes without a primary"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ready = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status().as_u16(), 503);
        assert!(ready.headers().contains_key("retry-after"));
        let (status, _) = get_json(&client, &server.url("/v1/checkpoint"))
            .await
            .unwrap();
        assert_eq!(status, 200, "the latest checkpoint is still served");
    });
    std::thread::sleep(OUTAGE);
    standby.promote().unwrap();
    let promoted = Instant::now();
    for task in tasks {
        runtime.block_on(task).unwrap().unwrap();
    }
    let acks = shared.acks.lock().unwrap().clone();
    let first_after = acks
        .iter()
        .filter(|a| a.at > promoted)
        .map(|a| a.at)
        .min()
        .expect("nothing acknowledged after the promotion");
    assert!(
        seen.len() >= 2,
        "saw {} checkpoints before the kill",
        seen.len()
    );

    let report = runtime
        .block_on(check_ledger(
            &client,
            &server.base,
            &sent,
            &acks,
            &seen,
            deadline,
        ))
        .unwrap();
    // What the registry reads is the promoted standby, now a primary.
    assert!(!standby.is_standby().unwrap());
    assert_eq!(
        standby
            .psql("lading", "SELECT count(*) FROM ledger_entries")
            .unwrap()
            .trim(),
        sent.len().to_string()
    );
    let outage = shared.outage.lock().unwrap();
    assert!(
        outage.unavailable.values().sum::<usize>() > 0,
        "no 503 seen during the outage"
    );
    eprintln!(
        "failover: {} entries, {} acknowledged as duplicates on retry, {} checkpoints before the \
         kill proven ancestors; promoted {} ms after the kill; first acknowledgement {} ms after \
         the promotion; during the outage {} requests unanswered, 503s by code {:?}",
        report.size,
        report.duplicates,
        report.checkpoints_checked,
        promoted.duration_since(killed).as_millis(),
        first_after.duration_since(promoted).as_millis(),
        outage.unanswered,
        outage.unavailable,
    );
}

/// `lading cluster run` makes the pair and the registry's settings; after the primary's
/// postmaster is killed, `lading cluster promote` makes the standby the primary, and the
/// registry on those settings takes the same transition it refused meanwhile.
#[test]
fn lading_cluster_run_and_promote_carry_a_registry_through_the_loss_of_its_primary() {
    use lading_e2e::harness::{run_lading, wait_for_line};
    use std::process::{Command, Stdio};

    let deadline = Instant::now() + BUDGET;
    let dir = cluster_dir("lading-cluster-cli-").unwrap();
    let cluster_dir = dir.path().join("pair");
    let cluster_arg = cluster_dir.display().to_string();
    let mut pair = Command::new(lading_e2e::harness::lading_bin().unwrap())
        .args(["cluster", "run", "--dir", &cluster_arg])
        .env("LADING_CONFIG", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(&mut pair, "database settings in ", BUDGET).unwrap();
    let settings = std::fs::read_to_string(cluster_dir.join("database.toml")).unwrap();
    let value = |key: &str| {
        settings
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {key} in {settings}"))
            .to_owned()
    };
    let url = value("url");
    assert!(url.contains("target_session_attrs=read-write"), "{url}");
    let database = vec![
        ("LADING_DATABASE_URL".to_owned(), url),
        ("LADING_DATABASE_OWNER_URL".to_owned(), value("owner_url")),
    ];
    let tls = Tls::new().unwrap();
    let server = Server::start_with_database(database, &tls, ServerOptions::default()).unwrap();
    let client = tls.client().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let parties = FixtureParties::load().unwrap();
    let mut config = GeneratorConfig::new(2, 2, 0xC1_0057E);
    config.reference_prefix = "PAIR".into();
    let mut generator = LedgerGenerator::new(&parties, config).unwrap();
    let mut transitions = Vec::new();
    while let Some(t) = generator.next_transition().unwrap() {
        transitions.push(t.compact);
    }
    let post = |signed: &str| {
        let request = client
            .post(server.url("/v1/transitions"))
            .header("content-type", "application/jose")
            .body(signed.to_owned());
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            (status, retry_after)
        })
    };
    assert_eq!(post(&transitions[0]).0, 201);

    // The primary's postmaster dies (its pid is the first line of postmaster.pid).
    let pid = std::fs::read_to_string(cluster_dir.join("primary/pgdata/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    loop {
        let (status, retry_after) = post(&transitions[1]);
        assert_ne!(status, 201, "acknowledged without a primary");
        if status == 503 {
            assert!(retry_after, "503 without Retry-After");
            break;
        }
        assert!(Instant::now() < deadline, "never refused without a primary");
        std::thread::sleep(Duration::from_millis(20));
    }

    let promoted = run_lading(&["cluster", "promote", "--dir", &cluster_arg], &[]).unwrap();
    assert!(promoted.starts_with("promoted "), "{promoted}");
    loop {
        match post(&transitions[1]) {
            (201, _) => break,
            (503, true) => {}
            other => panic!("after the promotion: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "not sequencing after the promotion"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for signed in &transitions[2..] {
        assert_eq!(post(signed).0, 201);
    }
    drop(server);
    lading_e2e::harness::signal(&pair, "TERM");
    assert!(
        pair.wait().unwrap().success(),
        "lading cluster run did not stop cleanly"
    );
}
