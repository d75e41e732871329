//! The README's example client (`docs/examples/forwarder_client.py`) run as a forwarder's team
//! would run it, against a live registry over TLS: it subscribes a webhook, signs and submits an
//! ISSUE, finds the bill by search, and receives the webhook verified with the Standard Webhooks
//! library — in the project's Python virtual environment (`deploy/ensure-deps.sh --dev`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use anyhow::Result;
use lading_e2e::consortium::Pki;
use lading_e2e::harness::{py_venv, repo_root, token, Server, ServerOptions, TestDb, Tls};
use serde_json::Value;

#[test]
fn the_example_client_signs_submits_searches_and_receives_a_verified_webhook() -> Result<()> {
    // The registry with its consortium certificate (a CA the client trusts, as in production).
    let pki = Pki::new(&[])?;
    let tls = Tls::from_pem(
        &std::fs::read_to_string(pki.cert("registry"))?,
        &std::fs::read_to_string(pki.key("registry"))?,
    )?;
    let db = TestDb::new()?;
    let receiver = Tls::new()?;
    let server = Server::start(
        &db,
        &tls,
        ServerOptions {
            client_ca: Some(pki.ca_pem()),
            env: vec![
                (
                    "LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS".into(),
                    "true".into(),
                ),
                (
                    "LADING_NOTIFICATIONS_CA".into(),
                    receiver.cert_path().display().to_string(),
                ),
                ("LADING_NOTIFICATIONS_POLL_INTERVAL_MS".into(), "50".into()),
            ],
            ..ServerOptions::default()
        },
    )?;
    let root = repo_root();
    let reference = "FWDEXAMPLE0001";
    let out = Command::new(py_venv(&["python"])?.join("bin/python"))
        .arg(root.join("docs/examples/forwarder_client.py"))
        .args(["--registry", &server.base])
        .arg("--ca")
        .arg(pki.ca_pem())
        .args(["--token", &token("carrier-oceanic")?])
        .arg("--key")
        .arg(root.join("fixtures/keys/carrier-oceanic.jwk"))
        .arg("--template")
        .arg(root.join("fixtures/payloads/issue.json"))
        .args(["--reference", reference])
        .arg("--receiver-cert")
        .arg(receiver.cert_path())
        .arg("--receiver-key")
        .arg(receiver.key_path())
        .args(["--timeout", "60"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_str(stdout.trim())?;
    assert_eq!(said["reference"], reference);
    assert_eq!(said["found"], 1);
    assert_eq!(said["webhook"]["verified"], true);
    assert_eq!(said["webhook"]["type"], "dev.lading.transition");

    // The bill it issued is on the ledger, as the registry reads it to its carrier.
    let client = pki.client(None)?;
    let read: Value = tokio::runtime::Runtime::new()?.block_on(async {
        let answer = client
            .get(server.url(&format!("/v1/documents/{reference}")))
            .bearer_auth(token("carrier-oceanic")?)
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "{}", answer.status());
        Ok::<_, anyhow::Error>(answer.json().await?)
    })?;
    assert_eq!(read["reference"], reference);
    assert_eq!(read["headIndex"], said["index"]);
    Ok(())
}
