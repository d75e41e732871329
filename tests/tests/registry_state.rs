//! End-to-end: the registry's load shedding over HTTP. A real `lading serve` on a throwaway
//! database, reached over TLS; the writer is held at a known point by a transaction of the
//! test that locks `ledger_head` (through `psql`, as an operator would).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

/// A `psql` session holding `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` in an open transaction.
struct HeldLock {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl HeldLock {
    fn take(db: &TestDb, table: &str) -> Result<Self> {
        let cluster = lading_pgcluster::shared_test_cluster()?;
        let psql = [cluster.bin_dir().join("psql"), "/usr/bin/psql".into()]
            .into_iter()
            .find(|p| p.exists())
            .context("no psql")?;
        let mut child = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-t",
                "-A",
                "-d",
                &db.url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut stdin = child.stdin.take().context("psql stdin")?;
        writeln!(
            stdin,
            "BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';"
        )?;
        stdin.flush()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("psql stdout")?).read_line(&mut line)?;
        if line.trim() != "locked" {
            bail!("psql did not take the lock: {line:?}");
        }
        Ok(Self {
            child,
            stdin: Some(stdin),
        })
    }

    fn release(mut self) -> Result<()> {
        if let Some(mut stdin) = self.stdin.take() {
            writeln!(stdin, "COMMIT;")?;
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn writer_waits(db: &TestDb) -> Result<()> {
    for _ in 0..3000 {
        let waiting = db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'lading-writer' AND wait_event_type = 'Lock'",
        )?;
        if waiting.trim() == "1" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the writer never waited for the lock")
}

/// A registry that holds one submission at a time sheds the next with `503 server_busy`,
/// `Retry-After` and problem+json — single and batch alike, nothing of them kept — and takes it
/// once the first is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_holding_as_many_submissions_as_it_takes_answers_busy() -> Result<()> {
    let (db, tls, server) = tokio::task::spawn_blocking(|| -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let options = ServerOptions {
            env: vec![("LADING_MAX_QUEUE".into(), "1".into())],
            ..ServerOptions::default()
        };
        let server = Server::start(&db, &tls, options)?;
        Ok((db, tls, server))
    })
    .await??;
    let client = tls.client()?;
    let samples = Samples::load()?;
    let issues: Vec<String> = samples
        .chains
        .iter()
        .take(3)
        .map(|c| c.transitions[0].clone())
        .collect();
    let post = |path: &str, content_type: &str, body: String| {
        client
            .post(server.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };

    let held = {
        let db = &db;
        tokio::task::block_in_place(|| HeldLock::take(db, "ledger_head"))?
    };
    let first = tokio::spawn(post(
        "/v1/transitions",
        "application/jose",
        issues[0].clone(),
    ));
    writer_waits(&db).await?;

    let busy = post("/v1/transitions", "application/jose", issues[1].clone()).await?;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        busy.headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(
        busy.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = busy.json().await?;
    assert_eq!(problem["code"], "server_busy", "{problem}");
    assert_eq!(problem["status"], 503, "{problem}");

    let batch = post(
        "/v1/transitions/batch",
        "application/json",
        serde_json::to_string(&issues[1..])?,
    )
    .await?;
    assert_eq!(batch.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(batch.headers().contains_key(RETRY_AFTER));
    let problem: Value = batch.json().await?;
    assert_eq!(problem["code"], "server_busy", "{problem}");

    tokio::task::block_in_place(|| held.release())?;
    let first = first.await??;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = post("/v1/transitions", "application/jose", issues[1].clone()).await?;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "{}",
        again.text().await?
    );
    let size: Value = client
        .get(server.url("/readyz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        size["size"], 2,
        "nothing of the refused requests was kept: {size}"
    );
    Ok(())
}
