//! What the registry writes to its log about requests (issue 14, "Logs"), read from a real
//! `lading serve`'s stderr at `RUST_LOG=info` in its JSON format:
//! - reads answered well (the replicas' polling of checkpoints and the feed, document reads)
//!   write nothing at INFO: they are DEBUG;
//! - a write is one INFO line naming the request and its status;
//! - a burst of client errors is cut to the limit of lines a second, and every client error
//!   is still accounted for: the lines written plus the `suppressed` counts they carry add up
//!   to the number of refused requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

/// `lading_weblog::ClientErrors::PER_SECOND`.
const PER_SECOND: usize = 20;

/// The JSON lines of the log whose target is the API's access log.
fn access_lines(log: &std::path::Path) -> Result<Vec<Value>> {
    Ok(std::fs::read_to_string(log)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "lading::http")
        .collect())
}

fn field<'a>(line: &'a Value, name: &str) -> &'a Value {
    &line["fields"][name]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_quiet_writes_are_logged_and_a_burst_of_client_errors_is_cut_but_counted(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("registry.log");
    let options = ServerOptions {
        log: Some(log.clone()),
        env: vec![
            ("RUST_LOG".into(), "info".into()),
            ("LADING_LOG_FORMAT".into(), "json".into()),
        ],
        ..ServerOptions::default()
    };
    let (_db, tls, server) = tokio::task::spawn_blocking(move || -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, options)?;
        Ok((db, tls, server))
    })
    .await??;
    let client = tls.client()?;

    // Reads answered well, as monitoring and replicas poll: not at INFO. (Only reads that
    // cannot be refused: a client error here would be counted with the burst below.)
    for path in ["/healthz", "/readyz", "/v1/openapi.json"] {
        for _ in 0..10 {
            let status = client.get(server.url(path)).send().await?.status();
            assert!(status.is_success(), "{path}: {status}");
        }
    }
    // A write: one INFO line.
    let samples = Samples::load()?;
    let first = &samples.chains[0].transitions[0];
    let answer = client
        .post(server.url("/v1/transitions"))
        .header("Content-Type", "application/jose")
        .body(first.clone())
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::CREATED);

    // A burst of client errors, eight at a time.
    const BURST: usize = 400;
    let started = Instant::now();
    let url = server.url("/v1/documents/NO-SUCH-BILL");
    let mut refused = 0;
    for _ in 0..BURST / 8 {
        let answers = futures::future::join_all((0..8).map(|_| {
            client
                .get(&url)
                .header("Authorization", "Bearer nope")
                .send()
        }))
        .await;
        for answer in answers {
            assert_eq!(answer?.status(), StatusCode::UNAUTHORIZED);
            refused += 1;
        }
    }
    let burst_took = started.elapsed();
    // After the limit's window has passed, one more: its line carries what was held back.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let status = client.get(&url).send().await?.status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    refused += 1;

    // The last line is written before the answer is sent; the file is read until it shows.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let lines = access_lines(&log)?;
        let accounted: u64 = lines
            .iter()
            .filter(|l| field(l, "message") == "client error")
            .map(|l| 1 + field(l, "suppressed").as_u64().unwrap_or(0))
            .sum();
        if accounted >= refused as u64 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let client_errors: Vec<&Value> = lines
        .iter()
        .filter(|l| field(l, "message") == "client error")
        .collect();
    let accounted: u64 = client_errors
        .iter()
        .map(|l| 1 + field(l, "suppressed").as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        accounted, refused as u64,
        "every client error is written or counted"
    );
    // At most the limit in each second the burst spanned, and the one after it.
    let windows = burst_took.as_secs() as usize + 2;
    assert!(
        client_errors.len() <= PER_SECOND * windows,
        "{} lines for {refused} client errors in {burst_took:?}",
        client_errors.len()
    );
    assert!(client_errors.len() < refused, "the burst was cut");
    assert!(client_errors.iter().all(|l| l["level"] == "INFO"
        && field(l, "status") == 401
        && field(l, "request") == "GET /v1/documents/NO-SUCH-BILL"));
    // The line after the window tells how many were held back.
    assert!(
        field(
            client_errors.last().context("no client error line")?,
            "suppressed"
        )
        .as_u64()
        .unwrap_or(0)
            > 0
    );

    // The write, at INFO; no read answered well at INFO.
    assert!(lines.iter().any(|l| l["level"] == "INFO"
        && field(l, "message") == "answered"
        && field(l, "request") == "POST /v1/transitions"
        && field(l, "status") == 201));
    let loud_reads: Vec<&Value> = lines
        .iter()
        .filter(|l| field(l, "message") == "answered")
        .filter(|l| {
            field(l, "request")
                .as_str()
                .is_some_and(|r| r.starts_with("GET "))
        })
        .collect();
    assert!(loud_reads.is_empty(), "{loud_reads:?}");
    if let Ok(keep) = std::env::var("LADING_KEEP_LOG") {
        std::fs::copy(&log, keep)?;
    }
    drop(server);
    Ok(())
}
