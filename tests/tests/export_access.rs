//! Who may take an export from the registry (`GET /v1/exports`), and how many at once: a real
//! registry on PostgreSQL, TLS with a consortium CA made by `lading ca`.
//!
//! What must hold:
//! - a customs authority's consortium client certificate (mutual TLS, no token) gets its
//!   export, which `lading verify-bundle` passes; another party's certificate is refused with
//!   problem+json (`not_a_customs_authority`; the registry's own certificate, which names no
//!   party, `certificate_names_no_party`), and nothing is written;
//! - past `registry.max_exports` exports at once the registry answers `503 too_many_exports`
//!   problem+json with `Retry-After`, before writing anything (0: every export).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};
use lading_e2e::harness::{lading_bin, token, Server, ServerOptions, TestDb};
use lading_e2e::portal::{submit_all, Pki};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

const CUSTOMS: &str = "customs-nl";
const SHIPPER: &str = "shipper-acme";

/// A registry with the consortium CA, its temporary folder `tmp`, and `env` settings; the
/// samples' chains submitted and checkpointed.
async fn registry(pki: &Pki, tmp: &Path, env: &[(&str, &str)]) -> Result<(TestDb, Server)> {
    let mut settings = vec![("TMPDIR".to_owned(), tmp.display().to_string())];
    settings.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let (db, server) = tokio::task::block_in_place(|| {
        pki.registry_with(ServerOptions {
            env: settings,
            ..ServerOptions::default()
        })
    })?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    let mut total = 0u64;
    for chain in &samples.chains {
        submit_all(&client, &server, &chain.transitions).await?;
        total += chain.transitions.len() as u64;
    }
    // Every entry under a checkpoint.
    let url = server.url(&format!("/v1/entries/{}/proof?wait=30000", total - 1));
    let proof = client.get(url).send().await?;
    ensure!(proof.status() == StatusCode::OK, "{}", proof.status());
    Ok((db, server))
}

/// What is left in the registry's temporary folder.
fn leftovers(tmp: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(tmp)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?)
}

/// The status, the `Retry-After` header and the problem's code of a refused answer, after
/// checking it is problem+json.
async fn refused(response: reqwest::Response) -> Result<(StatusCode, Option<String>, String)> {
    let status = response.status();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let media = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
    ensure!(
        media.starts_with("application/problem+json"),
        "{status} {media}"
    );
    let retry = header(reqwest::header::RETRY_AFTER);
    let problem: Value = response.json().await?;
    Ok((
        status,
        retry,
        problem["code"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customs_authoritys_certificate_gets_its_export_and_another_partys_is_refused(
) -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS, SHIPPER]))?;
    let tmp = tempfile::tempdir()?;
    let (_db, registry) = registry(&pki, tmp.path(), &[]).await?;

    // The authority's certificate, no token.
    let customs = pki.client(Some(CUSTOMS))?;
    let response = customs.get(registry.url("/v1/exports")).send().await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("by-certificate.zip");
    std::fs::write(&bundle, response.bytes().await?)?;
    let out = Command::new(lading_bin()?)
        .args(["verify-bundle", bundle.to_str().unwrap()])
        .env("LADING_CONFIG", "/dev/null")
        .output()?;
    let printed = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "{printed}");
    ensure!(
        printed.contains(&format!("export for {CUSTOMS} of ledger indexes 0..")),
        "{printed}"
    );
    assert_eq!(leftovers(tmp.path())?, Vec::<String>::new());

    // Another party's certificate, and the registry's own: refused, nothing written.
    let shipper = pki.client(Some(SHIPPER))?;
    let (status, _, code) = refused(shipper.get(registry.url("/v1/exports")).send().await?).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_a_customs_authority")
    );
    let operator = pki.client(Some("registry"))?;
    let (status, _, code) =
        refused(operator.get(registry.url("/v1/exports")).send().await?).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "certificate_names_no_party")
    );
    // A token says who asks even over a certificate's connection: the shipper's token over
    // the authority's certificate is the shipper, and refused.
    let (status, _, code) = refused(
        customs
            .get(registry.url("/v1/exports"))
            .bearer_auth(token(SHIPPER)?)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "not_a_customs_authority")
    );
    // Neither certificate nor token.
    let (status, _, code) = refused(
        pki.client(None)?
            .get(registry.url("/v1/exports"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(leftovers(tmp.path())?, Vec::<String>::new());

    // One export at a time is not a limit on exports one after another.
    for _ in 0..3 {
        let again = customs.get(registry.url("/v1/exports")).send().await?;
        ensure!(again.status() == StatusCode::OK, "{}", again.status());
        again.bytes().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limit_of_exports_at_once_the_registry_answers_busy_and_writes_nothing(
) -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CUSTOMS]))?;
    let tmp = tempfile::tempdir()?;
    // Limit 0: every export is past it, whatever else is running.
    let (_db, registry) = registry(&pki, tmp.path(), &[("LADING_MAX_EXPORTS", "0")]).await?;
    let customs = pki.client(Some(CUSTOMS))?;
    for ask in [
        customs.get(registry.url("/v1/exports")),
        customs
            .get(registry.url("/v1/exports?from=0&to=1"))
            .bearer_auth(token(CUSTOMS)?),
    ] {
        let (status, retry, code) = refused(ask.send().await?).await?;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "too_many_exports")
        );
        assert_eq!(retry.as_deref(), Some("10"));
    }
    assert_eq!(leftovers(tmp.path())?, Vec::<String>::new());
    // The rest of the registry serves as ever.
    let checkpoint = customs.get(registry.url("/v1/checkpoint")).send().await?;
    assert_eq!(checkpoint.status(), StatusCode::OK);
    Ok(())
}
