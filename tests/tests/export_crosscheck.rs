//! `lading verify-bundle FILE --against-replica URL`: a customs bundle cross-checked against the
//! authority's own replica, with a real registry and a real customs replica (`lading replica`
//! with its face, `replica.listen`) on PostgreSQL over mutual TLS.
//!
//! What must hold:
//! - the registry's export for customs-nl agrees with customs-nl's replica: the checkpoint is
//!   one the replica verified, every entry is there with the same leaf, and the replica holds
//!   nothing in the range the bundle lacks;
//! - a bundle rebuilt without one entry (its line gone from `entries.jsonl`, the manifest
//!   re-signed) is caught by the cross-check as an omission naming that entry's index, and one
//!   whose line claims another leaf than the replica verified there, by that line;
//! - a registry whose reads forget one of the authority's documents writes an export that
//!   verifies offline, and the cross-check names every entry of that document it left out;
//! - the replica's reads for the cross-check answer its own party only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};
use lading_e2e::consortium::{caught_up, replica_url, Pki};
use lading_e2e::export_ledger::{key, resign, rezip, unzip};
use lading_e2e::harness::{free_port, lading_bin, token};
use lading_e2e::portal::{submit_all, submit_events};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

const CUSTOMS: &str = "customs-nl";
const SHIPPER: &str = "shipper-acme";

/// `lading verify-bundle <bundle> --against-replica <url>` with customs-nl's certificate: its
/// exit success and stdout.
fn cross_check(pki: &Pki, bundle: &Path, url: &str) -> Result<(bool, String)> {
    let out = Command::new(lading_bin()?)
        .args([
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--against-replica",
            url,
            "--cert",
            pki.cert(CUSTOMS).to_str().unwrap(),
            "--key",
            pki.key(CUSTOMS).to_str().unwrap(),
            "--ca",
            pki.ca_pem().to_str().unwrap(),
        ])
        .env("LADING_CONFIG", "/dev/null")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_cross_checked_against_the_authoritys_replica_and_an_omission_is_named(
) -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS, SHIPPER]))?;
    let port = free_port()?;
    let (registry_db, registry, _tls) = pki.registry(&[], 0, &[]).await?;
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
    let (_replica_db, _replica) = pki.replica(CUSTOMS, &registry.base, port, &[], &[]).await?;
    let customs = pki.client(Some(CUSTOMS))?;
    caught_up(&customs, port, total).await?;

    // The registry's export of the whole ledger, as the authority fetches it.
    let response = client
        .get(registry.url(&format!("/v1/exports?from=0&to={total}")))
        .bearer_auth(token(CUSTOMS)?)
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.zip");
    std::fs::write(&good, response.bytes().await?)?;
    let url = replica_url(port);

    let (ok, printed) = tokio::task::block_in_place(|| cross_check(&pki, &good, &url))?;
    ensure!(ok, "{printed}");
    ensure!(printed.contains("VERIFIED"), "{printed}");
    ensure!(printed.contains("AGREES"), "{printed}");
    ensure!(printed.contains("one the replica verified"), "{printed}");
    let files = unzip(&good)?;
    let entries = String::from_utf8(files["entries.jsonl"].clone())?;
    let lines: Vec<&str> = entries.lines().collect();
    ensure!(lines.len() > 3, "{entries}");
    ensure!(
        printed.contains(&format!(
            "{} entries of the bundle on the replica with the same leaf, {} transitions and events held there",
            lines.len(),
            lines.len()
        )),
        "{printed}"
    );

    // The same bundle without one entry, its manifest re-signed with the registry's key.
    let dropped: Value = serde_json::from_str(lines[2])?;
    let index = dropped["index"].as_u64().unwrap();
    let mut files = files.clone();
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| *l)
        .collect();
    files.insert(
        "entries.jsonl".into(),
        (kept.join("\n") + "\n").into_bytes(),
    );
    resign(&mut files, &key("registry")?)?;
    let short = dir.path().join("short.zip");
    rezip(&short, &files)?;
    let (ok, printed) = tokio::task::block_in_place(|| cross_check(&pki, &short, &url))?;
    ensure!(!ok, "{printed}");
    ensure!(printed.contains("DISAGREES: 1 finding(s)"), "{printed}");
    ensure!(
        printed.contains(&format!("entries.jsonl: [omitted] entry {index} ")),
        "{printed}"
    );

    // A line whose leaf is not the replica's at its index.
    let mut files = unzip(&good)?;
    let mut altered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut line: Value = serde_json::from_str(&altered[2])?;
    line["leafHash"] = Value::String("00".repeat(32));
    altered[2] = line.to_string();
    files.insert(
        "entries.jsonl".into(),
        (altered.join("\n") + "\n").into_bytes(),
    );
    resign(&mut files, &key("registry")?)?;
    let other = dir.path().join("other.zip");
    rezip(&other, &files)?;
    let (ok, printed) = tokio::task::block_in_place(|| cross_check(&pki, &other, &url))?;
    ensure!(!ok, "{printed}");
    ensure!(printed.contains("DISAGREES: 1 finding(s)"), "{printed}");
    ensure!(
        printed.contains(&format!(
            "entries.jsonl:3: [leaf_differs_from_replica] entry {index}:"
        )),
        "{printed}"
    );

    // A registry whose reads forget one of the authority's documents (its ports changed and
    // its access rows gone, behind its back): its export verifies offline — every entry in it
    // is proved — and only the replica shows what it left out.
    let reference = registry_db.psql(&format!(
        "SELECT document_ref FROM ledger_entries WHERE idx = {index}"
    ))?;
    let reference = reference.trim();
    ensure!(!reference.is_empty());
    registry_db.psql(&format!(
        "UPDATE documents SET port_of_loading = 'USNYC', port_of_discharge = 'USNYC' \
         WHERE reference = '{reference}'; \
         DELETE FROM document_access WHERE party_id = '{CUSTOMS}' AND document_ref = '{reference}'"
    ))?;
    let response = client
        .get(registry.url(&format!("/v1/exports?from=0&to={total}")))
        .bearer_auth(token(CUSTOMS)?)
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let forgetful = dir.path().join("forgetful.zip");
    std::fs::write(&forgetful, response.bytes().await?)?;
    let forgotten: Vec<u64> = registry_db
        .psql(&format!(
            "SELECT idx FROM ledger_entries WHERE document_ref = '{reference}' \
             AND actor <> '{CUSTOMS}' ORDER BY idx"
        ))?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    ensure!(forgotten.contains(&index), "{forgotten:?}");
    let (ok, printed) = tokio::task::block_in_place(|| cross_check(&pki, &forgetful, &url))?;
    ensure!(!ok, "{printed}");
    ensure!(printed.contains("VERIFIED: every rule holds."), "{printed}");
    ensure!(
        printed.contains(&format!("DISAGREES: {} finding(s)", forgotten.len())),
        "{printed}"
    );
    for omitted in &forgotten {
        ensure!(
            printed.contains(&format!("entries.jsonl: [omitted] entry {omitted} ")),
            "{omitted}: {printed}"
        );
    }

    // The replica's reads for the cross-check are its party's alone.
    let shipper = pki.client(Some(SHIPPER))?;
    for path in ["/v1/entries?from=0&limit=10", "/v1/roots/1"] {
        let refused = shipper.get(format!("{url}{path}")).send().await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        let problem: Value = refused.json().await?;
        assert_eq!(problem["code"], "not_this_replicas_party", "{path}");
    }
    Ok(())
}
