//! Prometheus metrics (`[metrics]`, crate lading-metrics), end to end: a real `lading serve`
//! and a real `lading replica` of a consortium, each with its metrics listener, scraped over
//! TLS (their consortium certificates) with the bearer token, as Prometheus does.
//!
//! What must hold:
//! - the metrics answer only the token's bearer: no token or a wrong one is `401`
//!   problem+json, and the public API does not serve `/metrics` at all (`404`);
//! - the registry's counters move by exactly what was done: one submission accepted, one
//!   duplicate, one refused (under its problem code), one batch of one entry made durable;
//! - the state sampled at scrape is there and true: the queue (empty), the checkpoint's age
//!   and size, the ledger's size, the pool; after a reconciliation, the replica's lag and
//!   open incidents;
//! - a replica's metrics are its own: its size equal to the registry's, no lag, an empty
//!   outbox, and none of the sequencer's metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use lading_e2e::consortium::{caught_up, post_jose, wait_until, Pki};
use lading_e2e::harness::{free_port, get, post};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

const TOKEN: &str = "metrics-test-token-0123456789";

/// One scrape, as series (name with labels, as written) to value.
type Scrape = HashMap<String, f64>;

fn parse(text: &str) -> Result<Scrape> {
    if !text.ends_with("# EOF\n") {
        bail!("not OpenMetrics text (no # EOF):\n{text}");
    }
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').context("a sample line")?;
            Ok((series.to_owned(), value.parse::<f64>()?))
        })
        .collect()
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<Scrape> {
    let response = client.get(url).bearer_auth(TOKEN).send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await?;
    if status != StatusCode::OK {
        bail!("{status}: {text}");
    }
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&text)
}

fn value(scrape: &Scrape, series: &str) -> f64 {
    scrape.get(series).copied().unwrap_or(0.0)
}

fn present(scrape: &Scrape, series: &str) -> f64 {
    *scrape
        .get(series)
        .unwrap_or_else(|| panic!("{series} is missing from {scrape:#?}"))
}

/// No token and a wrong one are refused alike.
async fn refuses_strangers(client: &reqwest::Client, url: &str) -> Result<()> {
    for token in [None, Some("metrics-test-token-0123456788"), Some("")] {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await?;
        assert_eq!(problem["code"], "unauthenticated", "{problem}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_and_a_replica_serve_their_metrics_to_the_token_only() -> Result<()> {
    let pki = Pki::new(&["shipper-acme"])?;
    let token_file = pki.dir().join("metrics.token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    let token_file = token_file.display().to_string();
    let (metrics_port, replica_port, replica_metrics_port) =
        (free_port()?, free_port()?, free_port()?);
    let listen = format!("127.0.0.1:{metrics_port}");
    let (_registry_db, server, _tls) = pki
        .registry(
            &[("shipper-acme", replica_port)],
            0,
            &[
                ("LADING_METRICS_LISTEN", &listen),
                ("LADING_METRICS_TOKEN_FILE", &token_file),
            ],
        )
        .await?;
    // Prometheus trusts the consortium CA and presents no client certificate.
    let client = pki.client(None)?;
    let metrics = format!("https://{listen}/metrics");

    refuses_strangers(&client, &metrics).await?;
    // Not on the public API, with the token or without.
    for token in [None, Some(TOKEN)] {
        let mut request = client.get(server.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await?.status(), StatusCode::NOT_FOUND);
    }
    // Anything else on the metrics listener: 404.
    let other = client
        .get(format!("https://{listen}/v1/status"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let before = scrape(&client, &metrics).await?;
    // One accepted, the same bytes again (a duplicate), and one refused: a transfer of a
    // document whose issue is not on the ledger.
    let samples = Samples::load()?;
    let url = server.url("/v1/transitions");
    let first = &samples.chains[0].transitions[0];
    let (status, body) = post_jose(&client, &url, first).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post_jose(&client, &url, first).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], true);
    let orphan = samples
        .chains
        .iter()
        .skip(1)
        .find(|c| c.transitions.len() > 1)
        .context("a sample chain of two transitions")?;
    let (status, problem) = post_jose(&client, &url, &orphan.transitions[1]).await?;
    assert!(status.is_client_error(), "{status}: {problem}");
    let code = problem["code"]
        .as_str()
        .context("a problem code")?
        .to_owned();

    let after = scrape(&client, &metrics).await?;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"lading_submissions_total{outcome="accepted",code="none"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"lading_submissions_total{outcome="duplicate",code="none"}"#),
        1.0
    );
    assert_eq!(
        moved(&format!(
            r#"lading_submissions_total{{outcome="refused",code="{code}"}}"#
        )),
        1.0,
        "{after:#?}"
    );
    let submissions: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("lading_submissions_total"))
        .map(|(_, v)| v)
        .sum::<f64>()
        - before
            .iter()
            .filter(|(k, _)| k.starts_with("lading_submissions_total"))
            .map(|(_, v)| v)
            .sum::<f64>();
    assert_eq!(submissions, 3.0, "nothing else was counted");
    // One batch of one entry made durable; its commit timed.
    assert_eq!(moved("lading_sequencer_batch_entries_count"), 1.0);
    assert_eq!(moved("lading_sequencer_batch_entries_sum"), 1.0);
    assert_eq!(moved("lading_sequencer_commit_seconds_count"), 1.0);
    let commit = moved("lading_sequencer_commit_seconds_sum");
    assert!(commit > 0.0 && commit < 30.0, "{commit}");
    // The HTTP faces: the two answered well, and at least the refusal and the 404s.
    assert!(moved(r#"lading_http_requests_total{face="api",class="2xx"}"#) >= 2.0);
    assert!(moved(r#"lading_http_requests_total{face="api",class="4xx"}"#) >= 1.0);

    // The state, sampled at scrape: nothing queued, the pool, and — once the checkpointer has
    // signed it — a checkpoint of the whole ledger, seconds old.
    assert_eq!(present(&after, "lading_sequencer_queue_depth"), 0.0);
    assert_eq!(present(&after, "lading_sequencer_queue_waiting"), 0.0);
    assert_eq!(present(&after, "lading_registry_sequencing"), 1.0);
    assert!(present(&after, "lading_db_pool_connections") >= 1.0);
    assert!(present(&after, "lading_db_pool_idle_connections") >= 0.0);
    assert_eq!(present(&after, "lading_db_pool_max_connections"), 16.0);
    let size = present(&after, "lading_ledger_entries");
    assert!(size >= 1.0, "{size}");
    let sealed = wait_until("a checkpoint of the whole ledger", || async {
        let now = scrape(&client, &metrics).await?;
        Ok((present(&now, "lading_checkpoint_size_entries") == size).then_some(now))
    })
    .await?;
    let age = present(&sealed, "lading_checkpoint_age_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(value(&sealed, "lading_metrics_sample_errors_total"), 0.0);
    assert!(
        !sealed.keys().any(|k| k.starts_with("lading_node_")),
        "a registry has no node metrics"
    );

    // A replica with its own metrics listener.
    let replica_listen = format!("127.0.0.1:{replica_metrics_port}");
    let (_replica_db, _replica) = pki
        .replica(
            "shipper-acme",
            &server.base,
            replica_port,
            &[],
            &[
                ("LADING_METRICS_LISTEN", &replica_listen),
                ("LADING_METRICS_TOKEN_FILE", &token_file),
            ],
        )
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, replica_port, size as u64).await?;
    let replica_metrics = format!("https://{replica_listen}/metrics");
    refuses_strangers(&client, &replica_metrics).await?;
    let node = scrape(&client, &replica_metrics).await?;
    assert_eq!(present(&node, "lading_ledger_entries"), size);
    assert_eq!(present(&node, "lading_node_registry_entries"), size);
    assert_eq!(present(&node, "lading_node_lag_entries"), 0.0);
    let followed = present(&node, "lading_node_last_followed_seconds");
    assert!((0.0..60.0).contains(&followed), "{followed}");
    assert_eq!(present(&node, "lading_node_open_incidents"), 0.0);
    assert_eq!(
        present(&node, r#"lading_node_outbox_depth{state="pending"}"#),
        0.0
    );
    assert_eq!(
        present(&node, r#"lading_node_outbox_depth{state="parked"}"#),
        0.0
    );
    assert_eq!(present(&node, "lading_db_pool_max_connections"), 8.0);
    assert!(
        !node
            .keys()
            .any(|k| k.starts_with("lading_sequencer_") || k.starts_with("lading_submissions")),
        "a replica has no sequencer: {node:#?}"
    );
    // The public face of the replica does not serve them either.
    let (status, _) = get(
        &shipper,
        &format!("https://127.0.0.1:{replica_port}/metrics"),
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The registry's view of its replica, after a reconciliation.
    let operator = pki.client(Some("registry"))?;
    let (status, report) = post(
        &operator,
        &server.url("/v1/replicas/shipper-acme/reconcile"),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "agree", "{report}");
    let reconciled = scrape(&client, &metrics).await?;
    let party = r#"{party="shipper-acme"}"#;
    assert_eq!(
        present(&reconciled, &format!("lading_replica_lag_entries{party}")),
        0.0
    );
    assert_eq!(
        present(
            &reconciled,
            &format!("lading_replica_open_incidents{party}")
        ),
        0.0
    );
    let since = present(
        &reconciled,
        &format!("lading_replica_reconciled_age_seconds{party}"),
    );
    assert!((0.0..60.0).contains(&since), "{since}");
    Ok(())
}
