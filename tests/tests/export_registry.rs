//! `GET /v1/exports` — a customs authority's export made by the registry, for an authority that
//! runs no node — against a real registry and a real customs node on PostgreSQL over TLS.
//!
//! What must hold:
//! - the registry's export for customs-nl (its bearer token) is a zip that `lading
//!   verify-bundle` passes, signed by the registry's key, and its content tables (entries,
//!   transitions, events, documents) are equal to those of `lading export` on the authority's
//!   own node for the same range; the registry's temporary file is gone once it is answered;
//! - a party that is no customs authority gets 403 problem+json `not_a_customs_authority`, a
//!   bad range 400 with its own code, no token 401 — and none of them writes anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};
use lading_e2e::harness::{lading_bin, run_lading, token, ServerOptions};
use lading_e2e::portal::{submit_all, submit_events, Pki, PortalNode};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

const CUSTOMS: &str = "customs-nl";
const SHIPPER: &str = "shipper-acme";

/// The content tables: what the signed entries say, whoever exported them.
const TABLES: [&str; 4] = [
    "entries.jsonl",
    "transitions.csv",
    "events.csv",
    "documents.csv",
];

/// `lading verify-bundle <bundle>`: its exit success and stdout.
fn verify(bundle: &Path) -> Result<(bool, String)> {
    let out = Command::new(lading_bin()?)
        .args(["verify-bundle", bundle.to_str().unwrap()])
        .env("LADING_CONFIG", "/dev/null")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// The text of `name` in the bundle at `bundle`.
fn member(bundle: &Path, name: &str) -> Result<String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle)?)?;
    let mut text = String::new();
    archive.by_name(name)?.read_to_string(&mut text)?;
    Ok(text)
}

/// What is left in the registry's temporary folder.
fn leftovers(tmp: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(tmp)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?)
}

/// The problem+json of a refused export, after checking its status and media type.
async fn refused(response: reqwest::Response, status: StatusCode) -> Result<String> {
    ensure!(response.status() == status, "{}", response.status());
    let media = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(media.starts_with("application/problem+json"), "{media}");
    let problem: Value = response.json().await?;
    Ok(problem["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_exports_for_a_customs_authority_what_its_node_exports() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS, SHIPPER]))?;
    // The registry's temporary folder is the test's, to see what an export leaves there.
    let tmp = tempfile::tempdir()?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| {
        pki.registry_with(ServerOptions {
            env: vec![("TMPDIR".into(), tmp.path().display().to_string())],
            ..ServerOptions::default()
        })
    })?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    for chain in &samples.chains {
        submit_all(&client, &registry, &chain.transitions).await?;
    }
    submit_events(&client, &registry, &samples.events).await?;
    let total = (samples
        .chains
        .iter()
        .map(|c| c.transitions.len())
        .sum::<usize>()
        + samples.events.len()) as u64;

    // The authority's own node, once it has verified the checkpoint of the whole ledger.
    let keys = tempfile::tempdir()?;
    let customs = tokio::task::block_in_place(|| -> Result<_> {
        let customs = PortalNode::start_signing(&pki, CUSTOMS, &registry, keys.path())?;
        customs.wait_count(
            &format!("SELECT count(*) FROM replica_checkpoints WHERE verified AND size = {total}"),
            1,
        )?;
        Ok(customs)
    })?;

    // The registry's export, with the authority's token.
    let dir = tempfile::tempdir()?;
    let customs_token = token(CUSTOMS)?;
    let response = client
        .get(registry.url(&format!("/v1/exports?from=0&to={total}")))
        .bearer_auth(&customs_token)
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(reqwest::header::CONTENT_TYPE), "application/zip");
    let disposition = header(reqwest::header::CONTENT_DISPOSITION);
    ensure!(
        disposition.starts_with("attachment; filename=")
            && disposition.contains(&format!("{CUSTOMS}-0-{total}.zip")),
        "{disposition}"
    );
    let from_registry = dir.path().join("registry.zip");
    std::fs::write(&from_registry, response.bytes().await?)?;
    let (ok, verdict) = verify(&from_registry)?;
    ensure!(ok && verdict.contains("VERIFIED"), "{verdict}");
    assert_eq!(leftovers(tmp.path())?, Vec::<String>::new());

    // Signed by the registry, for the authority, with the registry's key as registry.jwk.
    let key: Value = client
        .get(registry.url("/v1/registry/key"))
        .send()
        .await?
        .json()
        .await?;
    let manifest: Value = serde_json::from_str(&member(&from_registry, "manifest.json")?)?;
    assert_eq!(manifest["exporter"], key["kid"], "{manifest}");
    assert_eq!(manifest["authority"], CUSTOMS, "{manifest}");
    let jwk: Value = serde_json::from_str(&member(&from_registry, "registry.jwk")?)?;
    assert_eq!(jwk["x"], key["x"]);

    // The node's export of the same range says the same.
    let from_node = dir.path().join("node.zip");
    let printed = tokio::task::block_in_place(|| {
        run_lading(
            &[
                "export",
                "--party",
                CUSTOMS,
                "--from",
                "0",
                "--to",
                &total.to_string(),
                "--out",
                from_node.to_str().unwrap(),
            ],
            customs.env(),
        )
    })?;
    ensure!(
        printed.contains(&format!("of indexes 0..{total}")),
        "{printed}"
    );
    for table in TABLES {
        let registry_says = member(&from_registry, table)?;
        ensure!(
            registry_says.lines().count() > 1,
            "{table} is empty: {registry_says}"
        );
        assert_eq!(registry_says, member(&from_node, table)?, "{table}");
    }

    // With no range, the range is everything up to the latest checkpoint.
    let everything = client
        .get(registry.url("/v1/exports"))
        .bearer_auth(&customs_token)
        .send()
        .await?;
    ensure!(everything.status() == StatusCode::OK);
    let whole = dir.path().join("whole.zip");
    std::fs::write(&whole, everything.bytes().await?)?;
    let (ok, verdict) = verify(&whole)?;
    ensure!(ok, "{verdict}");
    assert_eq!(
        member(&whole, "entries.jsonl")?,
        member(&from_registry, "entries.jsonl")?
    );

    // Refused, and nothing written: a party that is no customs authority, bad ranges, no token.
    let checkpoint = |client: reqwest::Client| {
        let url = registry.url("/v1/checkpoint");
        async move {
            let c: Value = client.get(url).send().await?.json().await?;
            anyhow::Ok(c["size"].clone())
        }
    };
    let before = checkpoint(client.clone()).await?;
    let shipper = client
        .get(registry.url("/v1/exports"))
        .bearer_auth(token(SHIPPER)?)
        .send()
        .await?;
    assert_eq!(
        refused(shipper, StatusCode::FORBIDDEN).await?,
        "not_a_customs_authority"
    );
    let backwards = client
        .get(registry.url("/v1/exports?from=5&to=2"))
        .bearer_auth(&customs_token)
        .send()
        .await?;
    assert_eq!(
        refused(backwards, StatusCode::BAD_REQUEST).await?,
        "export_from_after_to"
    );
    let beyond = client
        .get(registry.url(&format!("/v1/exports?to={}", total + 1_000)))
        .bearer_auth(&customs_token)
        .send()
        .await?;
    assert_eq!(
        refused(beyond, StatusCode::BAD_REQUEST).await?,
        "export_beyond_checkpoint"
    );
    let anonymous = client.get(registry.url("/v1/exports")).send().await?;
    assert_eq!(
        refused(anonymous, StatusCode::UNAUTHORIZED).await?,
        "unauthenticated"
    );
    assert_eq!(leftovers(tmp.path())?, Vec::<String>::new());
    assert_eq!(checkpoint(client.clone()).await?, before);
    Ok(())
}
