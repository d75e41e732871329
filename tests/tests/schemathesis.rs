//! The API fuzzed against its own published contract: schemathesis (PyPI, in the project's
//! Python virtual environment, `deploy/ensure-deps.sh --dev`) reads `GET /v1/openapi.json` of a
//! live registry and of a live replica and sends what it derives from it — valid and invalid
//! parameters and bodies, missing credentials, other methods — checking every answer against
//! the document: no 5xx, every status, media type, header and body as documented, invalid
//! input refused. And nothing it sent changed the ledger: every submission it can make is
//! refused (it cannot sign), so the ledger's size and root are the same after as before.
//!
//! Left out, and why: the long-poll and Server-Sent Events notifications (they wait by
//! design; tests/tests/notifications.rs covers them) and schemathesis's
//! `positive_data_acceptance` check (a JWS that fits the schema is still refused for its
//! signature, which no schema can say). And, in `tests/schemathesis/schemathesis.toml`, the
//! `ignored_auth` check of `GET /v1/subscriptions`: it takes the node's client certificate,
//! which the fuzzer presents on every connection, as its credential.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use anyhow::{bail, Context, Result};
use lading_e2e::consortium::{caught_up, path, post_jose, Pki};
use lading_e2e::harness::{free_port, get, py_venv, repo_root, token};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

/// Runs schemathesis against the document at `base`/v1/openapi.json; fails with its report.
fn fuzz(base: &str, pki: &Pki, who: &str, extra: &[&str]) -> Result<()> {
    // Its cache and reports go to a directory of their own, not into the repository.
    let workdir = tempfile::tempdir()?;
    let mut command = Command::new(py_venv(&["schemathesis"])?.join("bin/schemathesis"));
    command
        .current_dir(workdir.path())
        .args([
            "--config-file",
            path(&repo_root().join("tests/schemathesis/schemathesis.toml"))?,
        ])
        .arg("run")
        .arg(format!("{base}/v1/openapi.json"))
        .args(["--url", base])
        .args(["--tls-verify", path(&pki.ca_pem())?])
        .args(["--request-cert", path(&pki.cert(who))?])
        .args(["--request-cert-key", path(&pki.key(who))?])
        // Every check is on by default; naming them here (`--checks all`) would override the
        // per-operation settings of the configuration file.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--exclude-path-regex", "^/v1/notifications"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .arg("--generation-deterministic")
        .args(extra)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "lading_hooks")
        .env("PYTHONPATH", path(&repo_root().join("tests/schemathesis"))?)
        .env("LADING_ST_REFERENCE", "OCNL2026000101")
        .env("SCHEMATHESIS_TELEMETRY", "false");
    let mut out = command.output().context("running schemathesis")?;
    // The tool's own crash (a Python exception inside hypothesis or schemathesis, reported as
    // "Runtime Error" with no failure of ours) says nothing of the server: run it once more.
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && report.contains("Runtime Error") && !report.contains("FAILURES") {
        eprintln!("schemathesis crashed on its own (not an answer of ours); running it again");
        out = command.output().context("running schemathesis")?;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "schemathesis found answers that contradict the document at {base} ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // It ran the operations, not nothing.
    assert!(stdout.contains("passed"), "{stdout}");
    Ok(())
}

/// The registry's ledger as its readiness answer and latest checkpoint say it.
async fn ledger(client: &reqwest::Client, base: &str) -> Result<(u64, Value)> {
    let (status, ready) = get(client, &format!("{base}/readyz")).await?;
    anyhow::ensure!(status == StatusCode::OK, "{ready}");
    let (_, checkpoint) = get(client, &format!("{base}/v1/checkpoint")).await?;
    Ok((ready["size"].as_u64().context("size")?, checkpoint))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_registry_and_a_replica() -> Result<()> {
    let pki = Pki::new(&["shipper-acme"])?;
    let port = free_port()?;
    let (_registry_db, server, _tls) = pki.registry(&[("shipper-acme", port)], 0, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    let mut total = 0u64;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let (status, body) = post_jose(&plain, &server.url("/v1/transitions"), jws).await?;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            total += 1;
        }
    }
    let (_replica_db, _replica) = pki
        .replica("shipper-acme", &server.base, port, &[], &[])
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, total).await?;
    let before = ledger(&plain, &server.base).await?;
    assert_eq!(before.0, total);

    let bearer = format!("Authorization: Bearer {}", token("shipper-acme")?);
    fuzz(&server.base, &pki, "shipper-acme", &["-H", &bearer])?;
    let node = format!("https://127.0.0.1:{port}");
    fuzz(&node, &pki, "shipper-acme", &[])?;

    // Nothing it sent was written: the same size, and no checkpoint beyond it.
    let after = ledger(&plain, &server.base).await?;
    assert_eq!(after.0, before.0, "the ledger grew under the fuzzer");
    assert_eq!(after.1["size"], before.1["size"]);
    // The replica took nothing into its outbox either.
    let (status, node_status) = get(&shipper, &format!("{node}/v1/status")).await?;
    assert_eq!(status, StatusCode::OK, "{node_status}");
    let submissions = &node_status["submissions"];
    for state in ["pending", "sequenced", "refused", "parked"] {
        assert_eq!(submissions[state], 0, "{node_status}");
    }
    Ok(())
}
