//! `GET /v1/entries/{index}/proof?wait=` waits only for what a checkpoint can come to cover: an
//! entry on the ledger. One that is not (past its end) is refused at once as in no checkpoint,
//! not after the whole wait as "not yet provable" (schemathesis found a request held 17 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Result;
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_of_an_entry_past_the_ledger_is_refused_without_waiting() -> Result<()> {
    let (db, tls, server) = tokio::task::spawn_blocking(|| -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, ServerOptions::default())?;
        Ok((db, tls, server))
    })
    .await??;
    let client = tls.client()?;
    let samples = Samples::load()?;
    let first = &samples.chains[0].transitions[0];
    let answer = client
        .post(server.url("/v1/transitions"))
        .header("Content-Type", "application/jose")
        .body(first.clone())
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::CREATED);

    // The entry on the ledger: its proof comes once a checkpoint covers it.
    let on = client
        .get(server.url("/v1/entries/0/proof?wait=30000"))
        .send()
        .await?;
    assert_eq!(on.status(), StatusCode::OK);

    // Past the end: nothing to wait for.
    let past = client
        .get(server.url("/v1/entries/5000000000/proof?wait=30000"))
        .send()
        .await?;
    assert_eq!(past.status(), StatusCode::NOT_FOUND);
    let problem: Value = past.json().await?;
    assert_eq!(problem["code"], "entry_not_in_checkpoint", "{problem}");
    drop(db);
    Ok(())
}
