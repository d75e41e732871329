//! Reads by a party's node certificate (issue 13, "The contract"): the document declares that
//! every read taking a `read` bearer credential also takes the consortium client certificate of
//! a registered party's node. On a real registry over mutual TLS, with the fixtures' chains
//! and events on the ledger:
//! - for each party, every read — the documents list, the events list, each document, its
//!   transitions and events, each entry, the parties — answers the certificate exactly as it
//!   answers the party's bearer credential: same status, same body;
//! - a document the party may not read answers its certificate as a document that does not
//!   exist does;
//! - neither credential is `401 unauthenticated`; a certificate of a party that is not
//!   registered is `403 unregistered_party`; a bearer credential sent over a connection with a
//!   certificate is the credential that counts (an unknown one is `401`, whatever the
//!   certificate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use lading_e2e::consortium::Pki;
use lading_e2e::harness::{answer, token, Server, ServerOptions, TestDb};
use lading_e2e::portal::{submit_all, submit_events};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;

const CARRIER: &str = "carrier-oceanic";
const SHIPPER: &str = "shipper-acme";
const BANK: &str = "bank-harbour";
/// Issued a certificate by the consortium's CA but never registered as a party.
const STRANGER: &str = "stranger-freight";

/// A registry with the consortium CA that also takes anonymous writes, so the fixtures' chains
/// can be put on the ledger without a credential.
fn registry(pki: &Pki) -> Result<(TestDb, Server)> {
    pki.registry_with(ServerOptions {
        anonymous_writes: true,
        ..ServerOptions::default()
    })
}

/// Status, problem code and body of `GET path` by `client`, with `bearer` when given.
async fn get(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    bearer: Option<&str>,
) -> Result<(StatusCode, String, Value)> {
    let mut request = client.get(server.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    answer(
        request
            .send()
            .await
            .with_context(|| format!("GET {path}"))?,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_reads_exactly_what_its_party_credential_reads() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, SHIPPER, BANK, STRANGER]))?;
    let (_db, server) = tokio::task::block_in_place(|| registry(&pki))?;
    let anonymous = pki.client(None)?;
    let samples = Samples::load()?;
    let chains: Vec<String> = samples
        .chains
        .iter()
        .flat_map(|c| c.transitions.iter().cloned())
        .collect();
    submit_all(&anonymous, &server, &chains).await?;
    submit_events(&anonymous, &server, &samples.events).await?;
    let entries = u64::try_from(chains.len() + samples.events.len())?;

    // Every reference on the ledger, and one that is nowhere.
    let (status, _, carrier_page) = get(
        &anonymous,
        &server,
        "/v1/documents?limit=200",
        Some(&token(CARRIER)?),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let mut references: BTreeSet<String> = BTreeSet::new();
    for party in [CARRIER, SHIPPER, BANK] {
        let (_, _, page) = get(
            &anonymous,
            &server,
            "/v1/documents?limit=200",
            Some(&token(party)?),
        )
        .await?;
        for doc in page["documents"].as_array().context("documents")? {
            references.insert(doc["reference"].as_str().context("reference")?.to_owned());
        }
    }
    assert!(
        carrier_page["documents"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "the carrier holds documents: {carrier_page}"
    );
    let nowhere = "NOSUCHBILL0001";

    let mut paths = vec![
        "/v1/documents?limit=200".to_owned(),
        "/v1/events?limit=200".to_owned(),
        "/v1/parties".to_owned(),
    ];
    for reference in references.iter().map(String::as_str).chain([nowhere]) {
        paths.push(format!("/v1/documents/{reference}"));
        paths.push(format!("/v1/documents/{reference}/transitions"));
        paths.push(format!("/v1/documents/{reference}/events"));
    }
    paths.extend((0..entries).map(|i| format!("/v1/entries/{i}")));

    for party in [CARRIER, SHIPPER, BANK] {
        let node = pki.client(Some(party))?;
        let bearer = token(party)?;
        let mut readable = 0;
        for path in &paths {
            let by_bearer = get(&anonymous, &server, path, Some(&bearer)).await?;
            let by_certificate = get(&node, &server, path, None).await?;
            assert_eq!(
                by_certificate, by_bearer,
                "{party}'s certificate and credential answer GET {path} alike"
            );
            if by_bearer.0 == StatusCode::OK && path.starts_with("/v1/documents/") {
                readable += 1;
            }
        }
        // Documents the party may not read answer its certificate as the one that is nowhere.
        let (status, code, unknown) =
            get(&node, &server, &format!("/v1/documents/{nowhere}"), None).await?;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found")
        );
        for reference in &references {
            let (status, code, body) =
                get(&node, &server, &format!("/v1/documents/{reference}"), None).await?;
            if status == StatusCode::NOT_FOUND {
                assert_eq!(code, "not_found");
                assert_eq!(
                    body["detail"]
                        .as_str()
                        .map(|d| d.replace(reference, nowhere)),
                    unknown["detail"].as_str().map(str::to_owned),
                    "{party}: a document it may not read reads as one that does not exist"
                );
            }
        }
        assert!(readable > 0, "{party} reads some documents");
    }

    // Neither credential: 401 on every read.
    for path in [
        "/v1/documents",
        "/v1/events",
        "/v1/parties",
        "/v1/entries/0",
    ] {
        let (status, code, _) = get(&anonymous, &server, path, None).await?;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "GET {path} with no credential"
        );
    }
    // The certificate of a party that is not registered: 403, and nothing read.
    let stranger = pki.client(Some(STRANGER))?;
    let (status, code, _) = get(&stranger, &server, "/v1/documents", None).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "unregistered_party")
    );
    // A bearer credential on a connection with a certificate is the credential that counts.
    let node = pki.client(Some(CARRIER))?;
    let (status, code, _) = get(&node, &server, "/v1/documents", Some("not-a-credential")).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _, shipper_by_carrier_node) = get(
        &node,
        &server,
        "/v1/documents?limit=200",
        Some(&token(SHIPPER)?),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, _, shipper_page) = get(
        &anonymous,
        &server,
        "/v1/documents?limit=200",
        Some(&token(SHIPPER)?),
    )
    .await?;
    assert_eq!(shipper_by_carrier_node, shipper_page);
    Ok(())
}
