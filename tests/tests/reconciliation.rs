//! Reconciliation as it runs in a live consortium: real `lading serve` and `lading replica`
//! processes, each on its own PostgreSQL database, mutual TLS from a consortium CA made by
//! `lading ca`.
//!
//! What must hold:
//! - under ingest at full speed the replica is never accused: rows it verified beyond the
//!   registry's size as read at the start are ahead, not "entries the registry never signed";
//!   every reconciliation ends `agree` or `behind`, and no incident names a finding;
//! - reconciliations of one replica asked for at once (the API's, the schedule's) each end with
//!   a proper outcome: they take turns, none breaks another's session;
//! - a reconciliation that could not be carried through (a replica unreachable, a repair its
//!   database refused) is recorded as such and opens no incident: findings are opened only
//!   for the repair that was made;
//! - the registry reconciles a party's replica only if the certificate that answers names that
//!   party: another member's replica at the configured address is refused in the handshake,
//!   learns nothing and is accused of nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use lading_e2e::consortium::{caught_up, Pki};
use lading_e2e::harness::{free_port, get, post, sql_number, Server, TestDb};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

/// Every sample transition, in order, to the registry; how many.
async fn submit_samples(client: &reqwest::Client, server: &Server) -> Result<u64> {
    let samples = Samples::load()?;
    let mut total = 0;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let response = client
                .post(server.url("/v1/transitions"))
                .header("content-type", "application/jose")
                .body(jws.clone())
                .send()
                .await?;
            ensure!(response.status() == StatusCode::CREATED, "{jws} refused");
            total += 1;
        }
    }
    Ok(total)
}

/// The registry's incidents about `party`, by code, oldest first.
fn incident_codes(db: &TestDb, party: &str) -> Result<Vec<String>> {
    Ok(db
        .psql(&format!(
            "SELECT code FROM incidents WHERE party = '{party}' ORDER BY id"
        ))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The registry's reconciliations of `party`, by outcome, oldest first.
fn outcomes(db: &TestDb, party: &str) -> Result<Vec<String>> {
    Ok(db
        .psql(&format!(
            "SELECT outcome FROM reconciliations WHERE party = '{party}' ORDER BY id"
        ))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_ingest_at_full_speed_the_replica_is_never_accused() -> Result<()> {
    const PARTY: &str = "customs-us";
    let pki = Pki::new(&[PARTY])?;
    let port = free_port()?;
    let (registry_db, server, _tls) = pki.registry(&[(PARTY, port)], 0, &[]).await?;
    // A replica that follows as closely as it can (a customs authority holds most entries as
    // their hashes, which it checks fast): now and then it takes a page between the registry
    // reading its size and the replica reading its own.
    let (replica_db, _replica) = pki
        .replica(
            PARTY,
            &server.base,
            port,
            &[],
            &[
                ("LADING_REPLICA_POLL_INTERVAL_MS", "5"),
                ("LADING_REPLICA_PAGE_SIZE", "20"),
            ],
        )
        .await?;
    // The load harness's transitions: documents of every fixture party, carriers and all.
    let shard = tokio::task::spawn_blocking(|| lading_e2e::load::generate_shards(&[3000], 3, 7, 1))
        .await??
        .pop()
        .context("one shard")?;
    let total = shard.len() as u64;

    let plain = pki.client(None)?;
    let ingesting = Arc::new(AtomicBool::new(true));
    let ingest = {
        let (plain, base, ingesting) = (plain.clone(), server.base.clone(), ingesting.clone());
        tokio::spawn(async move {
            let result: Result<()> = async {
                for batch in shard.chunks(10) {
                    let (status, body) = lading_e2e::soak::post(&plain, &base, batch, true).await?;
                    ensure!(
                        status == 200 && body["accepted"] == batch.len(),
                        "a batch was not taken whole: {status} {body}"
                    );
                }
                Ok(())
            }
            .await;
            ingesting.store(false, Ordering::SeqCst);
            result
        })
    };

    let operator = pki.client(Some("registry"))?;
    let reconcile = server.url(&format!("/v1/replicas/{PARTY}/reconcile"));
    let (mut runs, mut ahead) = (0u32, 0u32);
    while ingesting.load(Ordering::SeqCst) || runs == 0 {
        let (status, report) = post(&operator, &reconcile).await?;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert!(
            report["outcome"] == "agree" || report["outcome"] == "behind",
            "{report}"
        );
        assert_eq!(report["unsigned"], 0, "{report}");
        assert_eq!(report["error"], Value::Null, "{report}");
        runs += 1;
        if report["ahead"].as_u64().unwrap_or(0) > 0 {
            // The replica held rows past the size the registry read: the race of the issue.
            ahead += 1;
            assert_eq!(report["outcome"], "agree", "{report}");
            assert_eq!(report["lag"], 0, "{report}");
        }
    }
    ingest.await??;
    let party = pki.client(Some(PARTY))?;
    caught_up(&party, port, total).await?;
    let (_, last) = post(&operator, &reconcile).await?;
    assert_eq!(last["outcome"], "agree", "{last}");
    eprintln!("{runs} reconciliations under ingest, {ahead} with the replica ahead");

    // Nothing was found because nothing was wrong: no finding, no failure, on either side.
    let codes = incident_codes(&registry_db, PARTY)?;
    assert!(
        codes.iter().all(|c| c == "replica_behind"),
        "incidents at the registry: {codes:?}"
    );
    let recorded = outcomes(&registry_db, PARTY)?;
    assert_eq!(recorded.len() as u32, runs + 1);
    assert!(
        recorded.iter().all(|o| o == "agree" || o == "behind"),
        "{recorded:?}"
    );

    // The race itself, every time: the replica asked as the registry would, with a size the
    // registry signed before the replica took its last pages. Its rows beyond that size are
    // ones it verified: ahead, none "unsigned", and its root over the size is the registry's.
    let (_, listed) = get(&plain, &server.url("/v1/checkpoints?after=0&limit=1000")).await?;
    let earlier = listed["checkpoints"]
        .as_array()
        .context("checkpoints")?
        .iter()
        .filter_map(|c| lading_domain::SignedCheckpoint::parse(c.as_str()?).ok())
        .map(|c| *c.unverified())
        .filter(|c| c.size > 0 && c.size < total)
        .max_by_key(|c| c.size)
        .context("a checkpoint below the ledger's size")?;
    let (status, summary) = {
        let response = operator
            .post(format!("https://127.0.0.1:{port}/v1/reconciliation"))
            .json(&serde_json::json!({
                "registrySize": earlier.size,
                "registryRoot": earlier.root,
            }))
            .send()
            .await?;
        (response.status(), response.json::<Value>().await?)
    };
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["unsignedCount"], 0, "{summary}");
    assert_eq!(summary["verified"], total, "{summary}");
    assert_eq!(summary["size"], total, "{summary}");
    assert_eq!(summary["compared"], earlier.size, "{summary}");
    assert_eq!(summary["root"], earlier.root.to_hex(), "{summary}");

    assert_eq!(
        sql_number(&replica_db, "SELECT count(*) FROM incidents")?,
        0,
        "{}",
        replica_db.psql("SELECT code, detail FROM incidents")?
    );
    assert_eq!(
        sql_number(&replica_db, "SELECT count(*) FROM replica_entries")?,
        total
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliations_of_one_replica_asked_at_once_take_turns() -> Result<()> {
    const PARTY: &str = "shipper-acme";
    let pki = Pki::new(&[PARTY])?;
    let port = free_port()?;
    // The schedule runs as well, every 100 ms, beside the requests.
    let (registry_db, server, _tls) = pki.registry(&[(PARTY, port)], 100, &[]).await?;
    let plain = pki.client(None)?;
    let total = submit_samples(&plain, &server).await?;
    let (replica_db, _replica) = pki.replica(PARTY, &server.base, port, &[], &[]).await?;
    caught_up(&pki.client(Some(PARTY))?, port, total).await?;
    // The schedule's runs until now (the replica was not up at first).
    let before = outcomes(&registry_db, PARTY)?.len();

    let operator = pki.client(Some("registry"))?;
    let reconcile = server.url(&format!("/v1/replicas/{PARTY}/reconcile"));
    for round in 0..3 {
        // Rows lost: a reconciliation takes several round trips to find and repair them.
        replica_db.psql(&format!(
            "DELETE FROM replica_entries WHERE idx IN ({}, {})",
            1 + round,
            total / 2 + round
        ))?;
        let (first, second, third) = tokio::join!(
            post(&operator, &reconcile),
            post(&operator, &reconcile),
            post(&operator, &reconcile)
        );
        for (status, report) in [first?, second?, third?] {
            assert_eq!(status, StatusCode::OK, "{report}");
            assert_eq!(report["error"], Value::Null, "{report}");
            assert!(
                report["outcome"] == "repaired" || report["outcome"] == "agree",
                "{report}"
            );
        }
        assert_eq!(
            sql_number(&replica_db, "SELECT count(*) FROM replica_entries")?,
            total,
            "round {round}"
        );
    }
    // Every run since, the schedule's and the requests', ended properly.
    let recorded = outcomes(&registry_db, PARTY)?.split_off(before);
    assert!(recorded.len() >= 9, "{recorded:?}");
    assert!(
        recorded.iter().all(|o| o == "repaired" || o == "agree"),
        "{recorded:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_that_fails_records_a_failure_and_no_finding() -> Result<()> {
    const PARTY: &str = "shipper-acme";
    let pki = Pki::new(&[PARTY])?;
    let port = free_port()?;
    let (registry_db, server, _tls) = pki.registry(&[(PARTY, port)], 0, &[]).await?;
    let plain = pki.client(None)?;
    let total = submit_samples(&plain, &server).await?;
    let operator = pki.client(Some("registry"))?;
    let reconcile = server.url(&format!("/v1/replicas/{PARTY}/reconcile"));

    // No replica listens yet: unreachable, recorded, nothing opened.
    let (status, report) = post(&operator, &reconcile).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "unreachable", "{report}");
    assert!(report["error"].is_string(), "{report}");
    assert_eq!(outcomes(&registry_db, PARTY)?, ["unreachable"]);
    assert_eq!(incident_codes(&registry_db, PARTY)?, Vec::<String>::new());

    let (replica_db, _replica) = pki.replica(PARTY, &server.base, port, &[], &[]).await?;
    caught_up(&pki.client(Some(PARTY))?, port, total).await?;
    // A row lost, and the replica's database refusing to write any row back.
    replica_db.psql("DELETE FROM replica_entries WHERE idx = 1")?;
    replica_db.psql(
        "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'the disk is read-only'; END $$; \
         CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON replica_entries \
         FOR EACH ROW EXECUTE FUNCTION refuse_writes();",
    )?;
    let (status, report) = post(&operator, &reconcile).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "failed", "{report}");
    assert_eq!(
        report["lost"],
        serde_json::json!([1]),
        "found, not restored"
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("repair"),
        "{report}"
    );
    // A failure, not a finding: nothing was restored, so nothing says it was.
    assert_eq!(outcomes(&registry_db, PARTY)?, ["unreachable", "failed"]);
    assert_eq!(incident_codes(&registry_db, PARTY)?, Vec::<String>::new());
    assert_eq!(
        sql_number(
            &replica_db,
            "SELECT count(*) FROM incidents WHERE code = 'entries_repaired'"
        )?,
        0
    );

    // Writes allowed again: the repair is made, and now it is a finding.
    replica_db.psql("DROP TRIGGER refuse_writes ON replica_entries")?;
    let (_, report) = post(&operator, &reconcile).await?;
    assert_eq!(report["outcome"], "repaired", "{report}");
    assert_eq!(
        outcomes(&registry_db, PARTY)?,
        ["unreachable", "failed", "repaired"]
    );
    assert_eq!(
        incident_codes(&registry_db, PARTY)?,
        ["replica_lost_entries"]
    );
    assert_eq!(
        sql_number(&replica_db, "SELECT count(*) FROM replica_entries")?,
        total
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_replica_cannot_answer_for_a_party() -> Result<()> {
    const PARTY: &str = "shipper-acme";
    const OTHER: &str = "carrier-oceanic";
    let pki = Pki::new(&[PARTY, OTHER])?;
    let port = free_port()?;
    // The registry is told that shipper-acme's replica is at `port`, where the carrier's is.
    let (registry_db, server, _tls) = pki.registry(&[(PARTY, port)], 0, &[]).await?;
    let plain = pki.client(None)?;
    let total = submit_samples(&plain, &server).await?;
    let (_other_db, _other) = pki.replica(OTHER, &server.base, port, &[], &[]).await?;
    let carrier = pki.client(Some(OTHER))?;
    caught_up(&carrier, port, total).await?;

    let operator = pki.client(Some("registry"))?;
    let (status, report) = post(
        &operator,
        &server.url(&format!("/v1/replicas/{PARTY}/reconcile")),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "unreachable", "{report}");
    assert_eq!(report["roundTrips"], 1, "{report}");
    assert_eq!(outcomes(&registry_db, PARTY)?, ["unreachable"]);
    assert_eq!(incident_codes(&registry_db, PARTY)?, Vec::<String>::new());
    // The carrier's replica was never asked: it reconciled with no one.
    let (_, status) = get(&carrier, &format!("https://127.0.0.1:{port}/v1/status")).await?;
    assert!(status["lastReconciliation"].is_null(), "{status}");
    Ok(())
}
