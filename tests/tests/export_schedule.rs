//! Scheduled customs exports on a customs authority's node (`[export] dir`, `interval_ms`,
//! `retention`), on real processes: a registry, the node over mutual TLS, PostgreSQL.
//!
//! What must hold:
//! - the node writes an export of what is new every interval, named by its range; each one
//!   verifies and chains to the one before, with no gap and no overlap;
//! - only the `retention` newest bundles stay in the folder; the series in the database keeps
//!   every one;
//! - the node's status says where and what was last written; an export that cannot be
//!   written is retried and its failure shows in the status;
//! - a node whose party is no customs authority refuses to start with `export.dir` set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use lading_e2e::consortium::{caught_up, replica_url, wait_until, Pki};
use lading_e2e::harness::{free_port, get, lading_bin, run_lading, sql_number, TestDb};
use lading_e2e::portal::{signing_settings, submit_all};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

const CUSTOMS: &str = "customs-nl";

fn bundles(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "zip"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customs_node_exports_on_schedule_keeps_its_retention_and_reports_failures() -> Result<()>
{
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS, "customs-sg", "shipper-acme"]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    let keys = tempfile::tempdir()?;
    let out = tempfile::tempdir()?;
    let dir = out.path().join("exports");
    let mut settings = signing_settings(keys.path(), CUSTOMS)?;
    settings.extend([
        ("LADING_EXPORT_DIR".to_owned(), dir.display().to_string()),
        ("LADING_EXPORT_INTERVAL_MS".to_owned(), "700".to_owned()),
        ("LADING_EXPORT_RETENTION".to_owned(), "2".to_owned()),
    ]);
    let extra: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let port = free_port()?;
    let (db, _node) = pki
        .replica(CUSTOMS, &registry.base, port, &[], &extra)
        .await?;
    let as_node = pki.client(Some("registry"))?;

    // Three rounds of new entries; after each, a new bundle of what is new.
    let mut total = 0u64;
    let mut seen_ranges: Vec<[u64; 2]> = Vec::new();
    for round in samples.chains.chunks(samples.chains.len().div_ceil(3)) {
        for chain in round {
            submit_all(&client, &registry, &chain.transitions).await?;
            total += chain.transitions.len() as u64;
        }
        caught_up(&as_node, port, total).await?;
        let status = wait_until("an export up to the ledger's size", || async {
            let (code, status) = get(&as_node, &format!("{}/v1/status", replica_url(port))).await?;
            Ok(
                (code == StatusCode::OK && status["exports"]["lastRange"][1] == total)
                    .then_some(status),
            )
        })
        .await?;
        let range: [u64; 2] = serde_json::from_value(status["exports"]["lastRange"].clone())?;
        seen_ranges.push(range);
        ensure!(status["exports"]["failures"] == 0, "{status}");
    }
    // Every export of the series, in the database; consecutive, no gap, no overlap.
    let rows = tokio::task::block_in_place(|| {
        db.psql("SELECT range_from || '-' || range_to FROM export_series ORDER BY seq")
    })?;
    let ranges: Vec<(u64, u64)> = rows
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (a, b) = l.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    ensure!(ranges.len() >= 3, "{ranges:?}");
    ensure!(
        ranges[0].0 == 0 && ranges.last().unwrap().1 == total,
        "{ranges:?}"
    );
    for pair in ranges.windows(2) {
        ensure!(pair[0].1 == pair[1].0, "no gap, no overlap: {ranges:?}");
    }
    // Only the two newest bundles stay; they verify and chain.
    let kept = bundles(&dir);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let (older, newer) = (kept[0].to_str().unwrap(), kept[1].to_str().unwrap());
    ensure!(newer.ends_with(&format!(
        "{CUSTOMS}-{:012}-{total:012}.zip",
        ranges.last().unwrap().0
    )));
    let verdict = run_lading(&["verify-bundle", newer, "--previous", older], &[])?;
    ensure!(verdict.contains("VERIFIED"), "{verdict}");
    assert_eq!(
        tokio::task::block_in_place(|| sql_number(&db, "SELECT count(*) FROM export_series"))?,
        ranges.len() as u64
    );
    let _ = seen_ranges;

    // A node that cannot write its exports retries, and says so in its status.
    let blocked = out.path().join("a-file");
    std::fs::write(&blocked, b"not a folder")?;
    let mut settings = signing_settings(keys.path(), "customs-sg")?;
    settings.extend([
        (
            "LADING_EXPORT_DIR".to_owned(),
            blocked.join("exports").display().to_string(),
        ),
        ("LADING_EXPORT_INTERVAL_MS".to_owned(), "500".to_owned()),
    ]);
    let extra: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let sg_port = free_port()?;
    let (_sg_db, _sg) = pki
        .replica("customs-sg", &registry.base, sg_port, &[], &extra)
        .await?;
    let status = wait_until("the failed export in the status", || async {
        let (code, status) = get(&as_node, &format!("{}/v1/status", replica_url(sg_port))).await?;
        Ok(
            (code == StatusCode::OK && status["exports"]["failures"].as_u64() >= Some(1))
                .then_some(status),
        )
    })
    .await?;
    ensure!(
        status["exports"]["lastError"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    ensure!(status["exports"]["nextAt"].is_string(), "{status}");

    // A party that is no customs authority: the node refuses to start.
    let mut settings = signing_settings(keys.path(), "shipper-acme")?;
    settings.push(("LADING_EXPORT_DIR".to_owned(), dir.display().to_string()));
    let extra: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut env = pki.replica_env("shipper-acme", &registry.base, free_port()?, &[], &extra)?;
    let shipper_db = tokio::task::block_in_place(TestDb::new)?;
    env.extend(shipper_db.env());
    let refused = tokio::task::block_in_place(|| {
        std::process::Command::new(lading_bin()?)
            .arg("replica")
            .env("LADING_CONFIG", "/dev/null")
            .envs(env)
            .output()
            .map_err(anyhow::Error::from)
    })?;
    let why = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && why.contains("is not a customs authority"),
        "{why}"
    );
    Ok(())
}
