//! Who submits, as against who signed (issue 13, "Credentials"): a real registry on
//! PostgreSQL over TLS with a consortium CA, at its default settings.
//!
//! What must hold:
//! - a write needs a credential by default: a plain POST is `401 unauthenticated`
//!   (problem+json) and writes nothing;
//! - a forwarder's credential (bearer or client certificate) hands in its customer's signed
//!   statements only while the customer has authorised it (`/v1/submitters`, `lading
//!   submitter`): before, and after the authorisation is withdrawn, `403
//!   submitter_not_authorised`, the same answer whether or not the document is on the ledger,
//!   duplicates included, and the ledger unchanged;
//! - the entry records both: `submittedBy` the forwarder, the signature the customer's;
//! - a party's admin sees and changes only its own authorisations;
//! - in a batch each item is judged on its own signer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, Result};
use base64::Engine;
use lading_e2e::consortium::Pki;
use lading_e2e::harness::{answer, run_lading, token, Server, ServerOptions, TestDb};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CARRIER: &str = "carrier-oceanic";
const FORWARDER: &str = "forwarder-swift";
const SHIPPER: &str = "shipper-acme";

/// A registry with the consortium CA at the registry's defaults (a write needs a credential);
/// blocks while it starts.
fn registry(pki: &Pki) -> Result<(TestDb, Server)> {
    pki.registry_with(ServerOptions {
        anonymous_writes: false,
        ..ServerOptions::default()
    })
}

/// `POST path` of one compact JWS, with `secret` as bearer credential when given.
async fn post_jws(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    jws: &str,
    secret: Option<&str>,
) -> Result<(StatusCode, String, Value)> {
    let mut request = client
        .post(server.url(path))
        .header(reqwest::header::CONTENT_TYPE, "application/jose")
        .body(jws.to_owned());
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    answer(request.send().await?).await
}

/// `POST /v1/transitions` of `jws` with `secret`.
async fn submit(
    client: &reqwest::Client,
    server: &Server,
    jws: &str,
    secret: Option<&str>,
) -> Result<(StatusCode, String, Value)> {
    post_jws(client, server, "/v1/transitions", jws, secret).await
}

/// A JSON request (`method path`, `body` when given) with `secret` as bearer credential.
async fn call(
    client: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    secret: &str,
) -> Result<(StatusCode, String, Value)> {
    let mut request = client.request(method, server.url(path)).bearer_auth(secret);
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await?).await
}

/// `lading submitter <args>` against the registry's database: its stdout.
fn lading_submitter(db: &TestDb, args: &[&str]) -> Result<String> {
    let mut all = vec!["submitter"];
    all.extend_from_slice(args);
    tokio::task::block_in_place(|| run_lading(&all, &db.env()))
}

/// The `actor` of a compact JWS's payload: who signed it.
fn signer(jws: &str) -> Result<String> {
    let payload = jws.split('.').nth(1).context("a compact JWS")?;
    let payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    Ok(payload["actor"].as_str().context("an actor")?.to_owned())
}

fn entries(db: &TestDb) -> Result<String> {
    Ok(db
        .psql("SELECT count(*) FROM ledger_entries")?
        .trim()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_credential_by_default() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER]))?;
    let (db, server) = tokio::task::block_in_place(|| registry(&pki))?;
    let client = pki.client(None)?;
    let samples = Samples::load()?;
    let issue = &samples.chains[0].transitions[0];

    for (path, media, body) in [
        ("/v1/transitions", "application/jose", issue.clone()),
        ("/v1/events", "application/jose", issue.clone()),
        ("/v1/party-statements", "application/jose", issue.clone()),
        (
            "/v1/transitions/batch",
            "application/json",
            json!([issue]).to_string(),
        ),
    ] {
        let response = client
            .post(server.url(path))
            .header(reqwest::header::CONTENT_TYPE, media)
            .body(body)
            .send()
            .await?;
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (status, code, _) = answer(response).await?;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{path}"
        );
        assert!(media.starts_with("application/problem+json"), "{path}");
    }
    assert_eq!(entries(&db)?, "0", "a refused write writes nothing");

    // With the signer's own credential the same bytes are taken, recorded as its submission.
    let (status, _, body) = submit(&client, &server, issue, Some(&token(CARRIER)?)).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["submittedBy"], CARRIER);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_submits_for_its_customer_only_while_authorised() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, FORWARDER, SHIPPER]))?;
    let (db, server) = tokio::task::block_in_place(|| registry(&pki))?;
    let client = pki.client(None)?;
    let samples = Samples::load()?;
    let (carrier, forwarder, shipper) = (token(CARRIER)?, token(FORWARDER)?, token(SHIPPER)?);
    // Three bills the carrier issues, signed by the carrier.
    let first = &samples.chains[0].transitions[0];
    let second = &samples.chains[1].transitions[0];
    let third = &samples.chains[4].transitions[0];
    for jws in [first, second, third] {
        assert_eq!(signer(jws)?, CARRIER);
    }

    // The carrier submits its own: recorded as its own submission.
    let (status, _, body) = submit(&client, &server, first, Some(&carrier)).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["submittedBy"], CARRIER);
    let before = entries(&db)?;

    // Unauthorised, the forwarder is refused: for a new bill and for the exact bytes already
    // on the ledger alike (a duplicate's 200 would tell it the entry exists), by bearer
    // credential and by client certificate.
    let (status, code, unknown) = submit(&client, &server, second, Some(&forwarder)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "submitter_not_authorised"),
        "{unknown}"
    );
    let (status, code, known) = submit(&client, &server, first, Some(&forwarder)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "submitter_not_authorised")
    );
    assert_eq!(known, unknown, "the answer says nothing about the document");
    let node = pki.client(Some(FORWARDER))?;
    let (status, code, by_certificate) = submit(&node, &server, second, None).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "submitter_not_authorised")
    );
    assert_eq!(by_certificate, unknown);
    assert_eq!(entries(&db)?, before, "a refused submission writes nothing");

    // The carrier's admin authorises the forwarder; asking again changes nothing.
    let submitters = "/v1/submitters";
    let (status, _, body) = call(
        &client,
        &server,
        reqwest::Method::POST,
        submitters,
        Some(json!({ "submitter": FORWARDER })),
        &carrier,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["party"], &body["submitter"]),
        (&json!(CARRIER), &json!(FORWARDER))
    );
    let (status, _, _) = call(
        &client,
        &server,
        reqwest::Method::POST,
        submitters,
        Some(json!({ "submitter": FORWARDER })),
        &carrier,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    // Neither itself nor a party that does not exist can be authorised.
    for submitter in [CARRIER, "nobody-at-all"] {
        let (status, _, _) = call(
            &client,
            &server,
            reqwest::Method::POST,
            submitters,
            Some(json!({ "submitter": submitter })),
            &carrier,
        )
        .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{submitter}");
    }

    // Now the forwarder's submission is taken: signed by the carrier, submitted by the
    // forwarder, and both are on the entry.
    let (status, _, body) = submit(&client, &server, second, Some(&forwarder)).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["submittedBy"], FORWARDER);
    let index = body["index"].as_u64().context("an index")?;
    let (status, _, entry) = call(
        &client,
        &server,
        reqwest::Method::GET,
        &format!("/v1/entries/{index}"),
        None,
        &carrier,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["submittedBy"], FORWARDER);
    assert_eq!(
        signer(entry["signed"].as_str().context("signed")?)?,
        CARRIER
    );
    // A party not entitled to the entry (not named in the bill) learns neither.
    let (_, _, hidden) = call(
        &client,
        &server,
        reqwest::Method::GET,
        &format!("/v1/entries/{index}"),
        None,
        &shipper,
    )
    .await?;
    assert!(hidden.get("submittedBy").is_none(), "{hidden}");
    // A duplicate answers who submitted the entry the first time.
    let (status, _, body) = submit(&client, &server, first, Some(&forwarder)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["duplicate"], &body["submittedBy"]),
        (&json!(true), &json!(CARRIER))
    );

    // Another party's admin neither sees nor withdraws the carrier's authorisations.
    let (status, _, list) = call(
        &client,
        &server,
        reqwest::Method::GET,
        submitters,
        None,
        &shipper,
    )
    .await?;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, code, _) = call(
        &client,
        &server,
        reqwest::Method::DELETE,
        &format!("{submitters}/{FORWARDER}"),
        None,
        &shipper,
    )
    .await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _, list) = call(
        &client,
        &server,
        reqwest::Method::GET,
        submitters,
        None,
        &carrier,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = list
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|a| a["submitter"].as_str())
        .collect();
    assert_eq!(listed, [FORWARDER]);
    let cli = lading_submitter(&db, &["list", "--party", CARRIER])?;
    assert!(cli.lines().any(|l| l.starts_with(FORWARDER)), "{cli}");

    // Withdrawn: refused again, and nothing written.
    let (status, _, _) = call(
        &client,
        &server,
        reqwest::Method::DELETE,
        &format!("{submitters}/{FORWARDER}"),
        None,
        &carrier,
    )
    .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = entries(&db)?;
    let (status, code, _) = submit(&client, &server, third, Some(&forwarder)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "submitter_not_authorised")
    );
    assert_eq!(entries(&db)?, before);

    // Authorised from the command line; in a batch each item is judged by its own signer.
    lading_submitter(&db, &["add", "--party", CARRIER, "--submitter", FORWARDER])?;
    let not_authorising = &samples.chains[1].transitions[1];
    assert_ne!(signer(not_authorising)?, CARRIER);
    let response = client
        .post(server.url("/v1/transitions/batch"))
        .bearer_auth(&forwarder)
        .json(&json!([third, not_authorising, "not-a-jws"]))
        .send()
        .await?;
    let (status, _, batch) = answer(response).await?;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(
        (&batch["accepted"], &batch["refused"]),
        (&json!(1), &json!(2))
    );
    let results = batch["results"].as_array().context("results")?;
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[0]["entry"]["submittedBy"], FORWARDER);
    assert_eq!(results[1]["status"], 403);
    assert_eq!(results[1]["problem"]["code"], "submitter_not_authorised");
    assert_eq!(results[2]["status"], 400);

    // Removed from the command line: refused from the next submission on.
    lading_submitter(
        &db,
        &["remove", "--party", CARRIER, "--submitter", FORWARDER],
    )?;
    let (status, code, _) = submit(&client, &server, third, Some(&forwarder)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "submitter_not_authorised")
    );
    assert!(lading_submitter(
        &db,
        &["remove", "--party", CARRIER, "--submitter", FORWARDER]
    )
    .is_err());
    Ok(())
}
