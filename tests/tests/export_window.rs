//! A time window as an export's range: `GET /v1/exports?since=&until=` at the registry and
//! `lading export --since --until` on the authority's node, against a real registry and a real
//! customs node on PostgreSQL over TLS.
//!
//! What must hold: with the ledger grown in two rounds and a time taken between them, the
//! window from that time holds exactly the second round's indexes and the window up to it the
//! first's, at the registry (its entries' sequencing times) and on the node (the checkpoints it
//! verified); a window given with indexes too is refused — 400 problem+json
//! `export_window_and_range` at the registry, a clear error from `lading export` — as are a
//! time that is no RFC 3339 time and a window that ends before it starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use lading_e2e::harness::{lading_bin, run_lading, token};
use lading_e2e::portal::{submit_all, submit_events, Pki, PortalNode};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

const CUSTOMS: &str = "customs-nl";

/// The range `[from, to)` a bundle's manifest states.
fn range_of(bundle: &Path) -> Result<(u64, u64)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle)?)?;
    let mut text = String::new();
    archive
        .by_name("manifest.json")?
        .read_to_string(&mut text)?;
    let manifest: Value = serde_json::from_str(&text)?;
    Ok((
        manifest["range"]["from"].as_u64().unwrap(),
        manifest["range"]["to"].as_u64().unwrap(),
    ))
}

/// A time strictly after every clock reading so far, and strictly before any later one.
fn a_moment_between() -> chrono::DateTime<chrono::Utc> {
    std::thread::sleep(Duration::from_millis(20));
    let t = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(20));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_window_is_the_range_of_the_entries_sequenced_within_it() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    let keys = tempfile::tempdir()?;
    let customs = tokio::task::block_in_place(|| {
        PortalNode::start_signing(&pki, CUSTOMS, &registry, keys.path())
    })?;

    // The first round: the first chain, verified by the node before the moment is taken.
    let (first, rest) = samples.chains.split_first().unwrap();
    submit_all(&client, &registry, &first.transitions).await?;
    let round_one = first.transitions.len() as u64;
    tokio::task::block_in_place(|| {
        customs.wait_count(
            &format!(
                "SELECT count(*) FROM replica_checkpoints WHERE verified AND size = {round_one}"
            ),
            1,
        )
    })?;
    let moment = tokio::task::block_in_place(a_moment_between);
    let at = moment.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // The second round: every other chain and the events.
    for chain in rest {
        submit_all(&client, &registry, &chain.transitions).await?;
    }
    submit_events(&client, &registry, &samples.events).await?;
    let total = round_one
        + rest.iter().map(|c| c.transitions.len() as u64).sum::<u64>()
        + samples.events.len() as u64;
    tokio::task::block_in_place(|| {
        customs.wait_count(
            &format!("SELECT count(*) FROM replica_checkpoints WHERE verified AND size = {total}"),
            1,
        )
    })?;
    let checkpoint: Value = client
        .get(registry.url("/v1/checkpoint"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(checkpoint["size"] == total, "{checkpoint}");

    // The registry: the window from the moment, and the window up to it.
    let dir = tempfile::tempdir()?;
    let customs_token = token(CUSTOMS)?;
    let export = |query: String| {
        let (client, url, token) = (
            client.clone(),
            registry.url(&format!("/v1/exports?{query}")),
            customs_token.clone(),
        );
        async move { anyhow::Ok(client.get(url).bearer_auth(token).send().await?) }
    };
    let since = export(format!("since={at}")).await?;
    ensure!(since.status() == StatusCode::OK, "{}", since.status());
    let path = dir.path().join("registry-since.zip");
    std::fs::write(&path, since.bytes().await?)?;
    assert_eq!(range_of(&path)?, (round_one, total));
    let until = export(format!("since=2000-01-01T00:00:00Z&until={at}")).await?;
    ensure!(until.status() == StatusCode::OK, "{}", until.status());
    let path = dir.path().join("registry-until.zip");
    std::fs::write(&path, until.bytes().await?)?;
    assert_eq!(range_of(&path)?, (0, round_one));

    // Refused: a window with indexes, a time that is none, a window ending before it starts.
    for (query, code) in [
        (format!("since={at}&from=0"), "export_window_and_range"),
        (format!("until={at}&to={total}"), "export_window_and_range"),
        ("since=yesterday".to_owned(), "bad_query"),
        (
            format!("since={at}&until=2000-01-01T00:00:00Z"),
            "export_from_after_to",
        ),
    ] {
        let refused = export(query.clone()).await?;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{query}");
        let media = refused
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(media.starts_with("application/problem+json"), "{media}");
        let problem: Value = refused.json().await?;
        assert_eq!(problem["code"], code, "{query}: {problem}");
    }

    // The node: the same two windows, mapped with the checkpoints it verified.
    let node_export = |name: &str, window: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["export", "--party", CUSTOMS, "--out", out.to_str().unwrap()];
        args.extend_from_slice(window);
        let printed = tokio::task::block_in_place(|| run_lading(&args, customs.env()))?;
        anyhow::Ok((printed, out))
    };
    let (printed, out) = node_export("node-since.zip", &["--since", &at])?;
    ensure!(
        printed.contains(&format!("of indexes {round_one}..{total}")),
        "{printed}"
    );
    assert_eq!(range_of(&out)?, (round_one, total));
    let (printed, out) = node_export("node-until.zip", &["--until", &at])?;
    ensure!(
        printed.contains(&format!("of indexes 0..{round_one}")),
        "{printed}"
    );
    assert_eq!(range_of(&out)?, (0, round_one));

    // A window with indexes is refused before anything is written.
    let clash = dir.path().join("clash.zip");
    let bin = lading_bin()?;
    let out = tokio::task::block_in_place(|| {
        Command::new(&bin)
            .args([
                "export",
                "--party",
                CUSTOMS,
                "--since",
                &at,
                "--from",
                "0",
                "--out",
                clash.to_str().unwrap(),
            ])
            .env("LADING_CONFIG", "/dev/null")
            .envs(customs.env().iter().cloned())
            .output()
    })?;
    ensure!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(
        said.contains("--since") && said.contains("--from") && said.contains("cannot be used with"),
        "{said}"
    );
    assert!(!clash.exists());
    Ok(())
}
