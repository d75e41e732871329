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
//!   for the repair that was made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use lading_e2e::gen::fixtures_dir;
use lading_e2e::harness::{
    free_port, get, post, run_lading as lading, sql_number, ReplicaProcess, Server, ServerOptions,
    TestDb, Tls,
};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A consortium CA, the registry's certificate and the parties' (all for 127.0.0.1). The
/// minimum of `tests/tests/consortium.rs`'s helper.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(parties: &[&str]) -> Result<Self> {
        let pki = Self {
            dir: tempfile::tempdir()?,
        };
        let (ca, issued) = (pki.dir.path().join("ca"), pki.issued());
        lading(&["ca", "init", "--dir", path(&ca)], &[])?;
        let issue = |who: &[&str]| {
            let mut args = vec!["ca", "issue", "--dir", path(&ca)];
            args.extend_from_slice(who);
            args.extend_from_slice(&["--server-name", "127.0.0.1", "--out", path(&issued)]);
            lading(&args, &[])
        };
        issue(&["--registry"])?;
        for party in parties {
            issue(&["--party", party])?;
        }
        // The registry's public key, as replicas are given it.
        let jwk: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(
            fixtures_dir().join("keys/registry.jwk"),
        )?)?;
        std::fs::write(pki.registry_key(), serde_json::to_vec(&jwk.to_public())?)?;
        Ok(pki)
    }

    fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca/ca.crt.pem")
    }
    fn issued(&self) -> PathBuf {
        self.dir.path().join("issued")
    }
    fn cert(&self, who: &str) -> PathBuf {
        self.issued().join(format!("{who}.crt.pem"))
    }
    fn key(&self, who: &str) -> PathBuf {
        self.issued().join(format!("{who}.key.pem"))
    }
    fn registry_key(&self) -> PathBuf {
        self.dir.path().join("registry.pub.jwk")
    }

    /// An HTTPS client trusting the consortium CA, presenting `who`'s certificate (a party
    /// id, or `registry`), or none.
    fn client(&self, who: Option<&str>) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
                self.ca_pem(),
            )?)?);
        if let Some(who) = who {
            let mut pem = std::fs::read(self.cert(who))?;
            pem.extend(std::fs::read(self.key(who))?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }

    /// A registry on a new database, serving with its consortium certificate and reconciling
    /// `party`'s replica at `port` every `interval_ms` (0: on demand only).
    async fn registry(
        &self,
        party: &str,
        port: u16,
        interval_ms: u64,
    ) -> Result<(TestDb, Server, Tls)> {
        let tls = Tls::from_pem(
            &std::fs::read_to_string(self.cert("registry"))?,
            &std::fs::read_to_string(self.key("registry"))?,
        )?;
        let options = ServerOptions {
            client_ca: Some(self.ca_pem()),
            env: vec![
                (
                    "LADING_RECONCILE_CERT".into(),
                    path(&self.cert("registry")).into(),
                ),
                (
                    "LADING_RECONCILE_KEY".into(),
                    path(&self.key("registry")).into(),
                ),
                (
                    "LADING_RECONCILE_REPLICAS".into(),
                    format!("{party}=https://127.0.0.1:{port}"),
                ),
                (
                    "LADING_RECONCILE_INTERVAL_MS".into(),
                    interval_ms.to_string(),
                ),
            ],
            ..ServerOptions::default()
        };
        tokio::task::spawn_blocking(move || -> Result<_> {
            let db = TestDb::new()?;
            let server = Server::start(&db, &tls, options)?;
            Ok((db, server, tls))
        })
        .await?
    }

    /// `party`'s replica of `registry`, serving on `port`, with more settings (`LADING_...`).
    async fn replica(
        &self,
        party: &str,
        registry: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Result<(TestDb, ReplicaProcess)> {
        let mut env: Vec<(String, String)> = vec![
            ("LADING_REPLICA_REGISTRY".into(), registry.into()),
            ("LADING_REPLICA_CA".into(), path(&self.ca_pem()).into()),
            ("LADING_REPLICA_CERT".into(), path(&self.cert(party)).into()),
            ("LADING_REPLICA_KEY".into(), path(&self.key(party)).into()),
            (
                "LADING_REPLICA_PARTIES".into(),
                path(&fixtures_dir().join("parties.json")).into(),
            ),
            (
                "LADING_REPLICA_REGISTRY_KEY".into(),
                path(&self.registry_key()).into(),
            ),
            ("LADING_REPLICA_POLL_INTERVAL_MS".into(), "100".into()),
            ("LADING_REPLICA_PAGE_SIZE".into(), "50".into()),
            ("LADING_REPLICA_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("LADING_WORKERS".into(), "1".into()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        tokio::task::spawn_blocking(move || -> Result<_> {
            let db = TestDb::new()?;
            env.extend(db.env());
            let replica = ReplicaProcess::start(env)?;
            Ok((db, replica))
        })
        .await?
    }
}

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

/// Polls `probe` every 100 ms until it returns `Some` (120 s deadline).
async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(found)) = probe().await {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the replica at `port` holds `size` entries and a verified checkpoint of it.
async fn caught_up(client: &reqwest::Client, port: u16, size: u64) -> Result<Value> {
    let url = format!("https://127.0.0.1:{port}/v1/status");
    wait_until(&format!("the replica to hold {size} entries"), || async {
        let (status, body) = get(client, &url).await?;
        Ok(
            (status == StatusCode::OK
                && body["size"] == size
                && body["checkpoint"]["size"] == size)
                .then_some(body),
        )
    })
    .await
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
    let (registry_db, server, _tls) = pki.registry(PARTY, port, 0).await?;
    // A replica that follows as closely as it can (a customs authority holds most entries as
    // their hashes, which it checks fast): now and then it takes a page between the registry
    // reading its size and the replica reading its own.
    let (replica_db, _replica) = pki
        .replica(
            PARTY,
            &server.base,
            port,
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
    let (registry_db, server, _tls) = pki.registry(PARTY, port, 100).await?;
    let plain = pki.client(None)?;
    let total = submit_samples(&plain, &server).await?;
    let (replica_db, _replica) = pki.replica(PARTY, &server.base, port, &[]).await?;
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
    let (registry_db, server, _tls) = pki.registry(PARTY, port, 0).await?;
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

    let (replica_db, _replica) = pki.replica(PARTY, &server.base, port, &[]).await?;
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
