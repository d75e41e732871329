//! `lading export` on a customs authority's node and `lading verify-bundle`, as processes,
//! against a real registry and a real node on PostgreSQL over mutual TLS.
//!
//! What must hold:
//! - the node's export verifies (exit 0, "VERIFIED"), and holds exactly the documents the
//!   registry lets the authority read;
//! - the next export with `--since-last` starts where the first ended and chains to it;
//!   `verify-bundle --previous` checks the chain;
//! - an export for another authority, or on a node of a party that is no customs authority, is
//!   refused and writes nothing; a bundle changed after signing fails `verify-bundle` with a
//!   non-zero exit naming the file and the rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};
use lading_domain::Timestamp;
use lading_e2e::gen::sample_document;
use lading_e2e::harness::{lading_bin, run_lading, token};
use lading_e2e::portal::{submit_all, submit_events, Pki, PortalNode, Signer};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

const CUSTOMS: &str = "customs-nl";
const SHIPPER: &str = "shipper-acme";

/// `lading <args>` with `env`: its exit success, stdout and stderr.
fn lading(args: &[&str], env: &[(String, String)]) -> Result<(bool, String, String)> {
    let out = Command::new(lading_bin()?)
        .args(args)
        .env("LADING_CONFIG", "/dev/null")
        .envs(env.iter().cloned())
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Waits until the node holds `size` entries and has verified a checkpoint of that size.
fn wait_verified(node: &PortalNode, size: u64) -> Result<()> {
    node.wait_count(
        &format!("SELECT count(*) FROM replica_checkpoints WHERE verified AND size = {size}"),
        1,
    )
}

/// The references of a bundle's documents.csv.
fn documents(bundle: &Path) -> Result<BTreeSet<String>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle)?)?;
    let mut text = String::new();
    archive
        .by_name("documents.csv")?
        .read_to_string(&mut text)?;
    Ok(csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customs_node_exports_what_its_authority_may_read_and_the_bundle_verifies() -> Result<()>
{
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS, SHIPPER]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    for chain in &samples.chains {
        submit_all(&client, &registry, &chain.transitions).await?;
    }
    submit_events(&client, &registry, &samples.events).await?;
    let total = samples
        .chains
        .iter()
        .map(|c| c.transitions.len())
        .sum::<usize>()
        + samples.events.len();

    let keys = tempfile::tempdir()?;
    let (customs, shipper) = tokio::task::block_in_place(|| -> Result<_> {
        let customs = PortalNode::start_signing(&pki, CUSTOMS, &registry, keys.path())?;
        let shipper = PortalNode::start_signing(&pki, SHIPPER, &registry, keys.path())?;
        wait_verified(&customs, total as u64)?;
        Ok((customs, shipper))
    })?;

    // The first export, and its verdict.
    let dir = tempfile::tempdir()?;
    let first = dir.path().join("nl-1.zip");
    let first_s = first.to_str().unwrap();
    let printed = tokio::task::block_in_place(|| {
        run_lading(
            &["export", "--party", CUSTOMS, "--out", first_s],
            customs.env(),
        )
    })?;
    ensure!(
        printed.contains(&format!("of indexes 0..{total}")),
        "{printed}"
    );
    let (ok, verdict, _) = lading(&["verify-bundle", first_s], &[])?;
    ensure!(ok && verdict.contains("VERIFIED"), "{verdict}");

    // Exactly the documents the registry lets the authority read.
    let as_customs = pki.client(None)?;
    let token = token(CUSTOMS)?;
    let mut readable = BTreeSet::new();
    for chain in &samples.chains {
        let status = as_customs
            .get(registry.url(&format!("/v1/documents/{}", chain.reference)))
            .bearer_auth(&token)
            .send()
            .await?
            .status();
        ensure!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{status}"
        );
        if status == StatusCode::OK {
            readable.insert(chain.reference.clone());
        }
    }
    ensure!(!readable.is_empty() && readable.len() < samples.chains.len());
    assert_eq!(documents(&first)?, readable);

    // A new bill through Rotterdam; the next export starts where the first ended.
    let doc = (0..64)
        .map(|seed| {
            sample_document(
                "OCNL2026EXPT01",
                "carrier-oceanic",
                SHIPPER,
                Some("consignee-delta"),
                false,
                seed,
            )
            .unwrap()
        })
        .find(|d| {
            d.port_of_loading().as_str() == "NLRTM" || d.port_of_discharge().as_str() == "NLRTM"
        })
        .expect("a lane through Rotterdam");
    let issue = Signer::new()?.issue(
        &doc,
        SHIPPER,
        Timestamp::from_datetime_truncated(chrono::Utc::now()),
    )?;
    submit_all(&client, &registry, &[issue]).await?;
    tokio::task::block_in_place(|| wait_verified(&customs, total as u64 + 1))?;
    let second = dir.path().join("nl-2.zip");
    let second_s = second.to_str().unwrap();
    let printed = tokio::task::block_in_place(|| {
        run_lading(
            &[
                "export",
                "--party",
                CUSTOMS,
                "--since-last",
                "--out",
                second_s,
            ],
            customs.env(),
        )
    })?;
    ensure!(
        printed.contains(&format!("of indexes {total}..{}", total + 1))
            && printed.contains(&format!("after the export of 0..{total}")),
        "{printed}"
    );
    let (ok, verdict, _) = lading(&["verify-bundle", second_s, "--previous", first_s], &[])?;
    ensure!(ok && verdict.contains("VERIFIED"), "{verdict}");
    assert_eq!(
        documents(&second)?,
        BTreeSet::from(["OCNL2026EXPT01".to_owned()])
    );

    // Refused, and nothing written: another authority's export, a party that is no authority.
    let other = dir.path().join("sg.zip");
    let (ok, _, err) = lading(
        &[
            "export",
            "--party",
            "customs-sg",
            "--out",
            other.to_str().unwrap(),
        ],
        customs.env(),
    )?;
    ensure!(!ok && err.contains("exports for customs-nl only"), "{err}");
    let (ok, _, err) = lading(
        &[
            "export",
            "--party",
            SHIPPER,
            "--out",
            other.to_str().unwrap(),
        ],
        shipper.env(),
    )?;
    ensure!(!ok && err.contains("is not a customs authority"), "{err}");
    ensure!(!other.exists());

    // Changed after signing: verify-bundle fails, naming the file and the rule.
    let tampered = dir.path().join("tampered.zip");
    {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&first)?)?;
        let mut out = zip::ZipWriter::new(std::fs::File::create(&tampered)?);
        for i in 0..archive.len() {
            let mut file = archive.by_index(i)?;
            let name = file.name()?.into_owned();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            if name == "events.csv" {
                bytes = String::from_utf8(bytes)?
                    .replacen("NLRTM", "SGSIN", 1)
                    .into_bytes();
            }
            out.start_file(name.as_str(), zip::write::SimpleFileOptions::default())?;
            out.write_all(&bytes)?;
        }
        out.finish()?;
    }
    let (ok, verdict, _) = lading(&["verify-bundle", tampered.to_str().unwrap()], &[])?;
    ensure!(
        !ok && verdict.contains("FAILED") && verdict.contains("events.csv: [hash_mismatch]"),
        "{verdict}"
    );
    Ok(())
}
