//! API credentials (issue 13, "Credentials"): a real registry on PostgreSQL over TLS with a
//! consortium CA, credentials made with `lading token` and over `/v1/tokens`.
//!
//! What must hold:
//! - a credential's scopes are enforced: reads need `read`, writes `submit`, `/v1/tokens`
//!   `admin`; without the scope, `403 insufficient_scope`;
//! - with `registry.require_write_credential`, a write with neither a bearer credential nor a
//!   consortium client certificate is `401 unauthenticated`, and nothing is written;
//! - expired and revoked credentials are `401 token_expired` / `token_revoked`;
//! - the secret is shown once; lists never show it; another party's credential id answers
//!   exactly as one that does not exist;
//! - the fixtures' imported tokens are credentials with every scope;
//! - `last_used_at` is written on use, but not on every request;
//! - rate limits per credential and per address answer `429 rate_limited` with `Retry-After`,
//!   and never touch requests with a consortium client certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{ensure, Context, Result};
use lading_e2e::consortium::Pki;
use lading_e2e::harness::{answer, run_lading, token, Server, ServerOptions, TestDb};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SHIPPER: &str = "shipper-acme";
const CARRIER: &str = "carrier-oceanic";

/// A registry with the consortium CA and `env` settings; blocks while it starts.
fn registry(pki: &Pki, env: &[(&str, &str)]) -> Result<(TestDb, Server)> {
    pki.registry_with(ServerOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ServerOptions::default()
    })
}

/// `GET path` with `secret` as bearer credential.
async fn get(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    secret: &str,
) -> Result<(StatusCode, String, Value)> {
    answer(
        client
            .get(server.url(path))
            .bearer_auth(secret)
            .send()
            .await?,
    )
    .await
}

/// `POST /v1/transitions` of `jws`, with `secret` as bearer credential when given.
async fn submit(
    client: &reqwest::Client,
    server: &Server,
    jws: &str,
    secret: Option<&str>,
) -> Result<(StatusCode, String, Value)> {
    let mut request = client
        .post(server.url("/v1/transitions"))
        .header(reqwest::header::CONTENT_TYPE, "application/jose")
        .body(jws.to_owned());
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    answer(request.send().await?).await
}

/// `lading token <args>` against the registry's database: its stdout.
fn lading_token(db: &TestDb, args: &[&str]) -> Result<String> {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    tokio::task::block_in_place(|| run_lading(&all, &db.env()))
}

/// The one line of `lading token list` whose id is `id`, split at tabs.
fn listed(list: &str, id: &str) -> Option<Vec<String>> {
    list.lines()
        .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols[0] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_have_scopes_expire_and_are_revoked() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[SHIPPER, CARRIER]))?;
    let (db, server) = tokio::task::block_in_place(|| {
        registry(&pki, &[("LADING_REQUIRE_WRITE_CREDENTIAL", "true")])
    })?;
    let client = pki.client(None)?;
    let samples = Samples::load()?;
    let chain = &samples.chains[0].transitions;
    let entries = || {
        db.psql("SELECT count(*) FROM ledger_entries")
            .map(|s| s.trim().to_owned())
    };

    // The command line refuses what cannot be a credential, and stores nothing.
    for args in [
        &["issue", "--party", "nobody", "--scope", "read"][..],
        &["issue", "--party", SHIPPER, "--scope", "write"],
        &[
            "issue",
            "--party",
            SHIPPER,
            "--scope",
            "read",
            "--expires",
            "soon",
        ],
        &["revoke", "tok_0000000000000000"],
    ] {
        assert!(lading_token(&db, args).is_err(), "{args:?}");
    }
    assert_eq!(
        db.psql("SELECT count(*) FROM api_credentials")?.trim(),
        "10",
        "the ten imported tokens, nothing more"
    );

    // The fixtures' imported token is a credential with every scope.
    let imported = token(SHIPPER)?;
    let list = lading_token(&db, &["list", "--party", SHIPPER])?;
    let row = listed(&list, "imported-shipper-acme").context("the imported token is listed")?;
    assert_eq!(row[1], SHIPPER);
    assert_eq!(row[2], "read,submit,subscribe,admin");
    assert!(!list.contains(&imported), "a list never shows a secret");
    let (status, _, _) = get(&client, &server, "/v1/parties", &imported).await?;
    assert_eq!(status, StatusCode::OK);

    // A read-only credential from the command line: its secret on stdout, once.
    let read = lading_token(
        &db,
        &[
            "issue",
            "--party",
            SHIPPER,
            "--scope",
            "read",
            "--expires",
            "90d",
            "--label",
            "TMS prod",
        ],
    )?
    .trim()
    .to_owned();
    assert!(read.starts_with("lading_"), "{read}");
    let (status, _, _) = get(&client, &server, "/v1/parties", &read).await?;
    assert_eq!(status, StatusCode::OK);
    let before = entries()?;
    let (status, code, _) = submit(&client, &server, &chain[0], Some(&read)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // Writes need a credential here: none at all is refused, and nothing is written.
    let (status, code, _) = submit(&client, &server, &chain[0], None).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(entries()?, before, "a refused write writes nothing");

    // A submit-only credential writes, and may not read.
    let writer = lading_token(&db, &["issue", "--party", CARRIER, "--scope", "submit"])?
        .trim()
        .to_owned();
    let (status, _, _) = submit(&client, &server, &chain[0], Some(&writer)).await?;
    assert_eq!(status, StatusCode::CREATED);
    let (status, code, _) = get(&client, &server, "/v1/parties", &writer).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // A consortium client certificate is a credential too (a party's node forwarding).
    let node = pki.client(Some(SHIPPER))?;
    let (status, _, _) = submit(&node, &server, &chain[1], None).await?;
    assert_eq!(status, StatusCode::CREATED);

    // The list: id, party, scopes, label, created, expires, last use, revoked.
    let list = lading_token(&db, &["list"])?;
    assert!(list.starts_with("id\tparty\tscopes\tlabel\tcreated\texpires\tlast_used\trevoked"));
    let read_id = list
        .lines()
        .find(|l| l.contains("TMS prod"))
        .and_then(|l| l.split('\t').next())
        .context("the read credential is listed")?
        .to_owned();
    let row = listed(&list, &read_id).unwrap();
    assert_eq!((row[1].as_str(), row[2].as_str()), (SHIPPER, "read"));
    assert_ne!(row[5], "-", "it expires");
    assert!(!list.contains(&read) && !list.contains(&writer));

    // Its use was recorded (off the request's path: wait for it)...
    let last_used = format!(
        "SELECT count(*) FROM api_credentials WHERE id = '{read_id}' AND last_used_at IS NOT NULL"
    );
    let mut recorded = false;
    for _ in 0..100 {
        if db.psql(&last_used)?.trim() == "1" {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recorded, "last_used_at is written on use");
    // ... and is not written again on every request (once a minute at most).
    db.psql(&format!(
        "UPDATE api_credentials SET last_used_at = '2000-01-01Z' WHERE id = '{read_id}'"
    ))?;
    for _ in 0..3 {
        let (status, _, _) = get(&client, &server, "/v1/parties", &read).await?;
        assert_eq!(status, StatusCode::OK);
    }
    let still = db.psql(&format!(
        "SELECT count(*) FROM api_credentials WHERE id = '{read_id}' AND last_used_at = '2000-01-01Z'"
    ))?;
    assert_eq!(
        still.trim(),
        "1",
        "a request within the minute writes nothing"
    );

    // Expired: refused as such.
    db.psql(&format!("UPDATE api_credentials SET expires_at = now() - interval '1 minute' WHERE id = '{read_id}'"))?;
    let response = client
        .get(server.url("/v1/parties"))
        .bearer_auth(&read)
        .send()
        .await?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .cloned();
    let (status, code, _) = answer(response).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
    assert!(challenge.is_some_and(|c| c.to_str().unwrap().contains("invalid_token")));

    // Revoked from the command line: refused from the next request on.
    let carrier_list = lading_token(&db, &["list", "--party", CARRIER])?;
    let writer_id = carrier_list
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols[2] == "submit")
        .map(|cols| cols[0].to_owned())
        .context("the carrier's submit credential")?;
    let revoked = lading_token(&db, &["revoke", &writer_id])?;
    assert!(revoked.contains(&writer_id));
    let (status, code, _) = submit(&client, &server, &chain[2], Some(&writer)).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );

    // `lading party` sends a credential with --token: without one, a party statement is
    // refused here like any other write.
    let operator = lading_e2e::harness::repo_root().join("fixtures/keys/operator.jwk");
    let ca = pki.ca_pem();
    let remove = |token: Option<&str>| {
        let mut args = vec![
            "party",
            "remove",
            "--id",
            "consignee-delta",
            "--key",
            operator.to_str().unwrap(),
            "--registry",
            &server.base,
            "--cacert",
            ca.to_str().unwrap(),
        ];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        tokio::task::block_in_place(|| run_lading(&args, &[]))
    };
    let refused = remove(None).unwrap_err().to_string();
    assert!(refused.contains("unauthenticated"), "{refused}");
    let removed = remove(Some(&imported))?;
    assert!(removed.contains("\"kind\":\"party\""), "{removed}");

    // An unknown secret is unauthenticated.
    let (status, code, _) = get(&client, &server, "/v1/parties", "lading_nothing").await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_admin_manages_its_own_credentials_over_the_api() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[SHIPPER]))?;
    let (db, server) = tokio::task::block_in_place(|| registry(&pki, &[]))?;
    let client = pki.client(None)?;
    let admin = token(SHIPPER)?;
    let tokens = server.url("/v1/tokens");

    // Issue: 201, the secret this once.
    let response = client
        .post(&tokens)
        .bearer_auth(&admin)
        .json(&json!({"scopes": ["read", "submit"], "label": "TMS prod", "expires": "90d"}))
        .send()
        .await?;
    let (status, _, issued) = answer(response).await?;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["party"], SHIPPER);
    assert_eq!(issued["scopes"], json!(["read", "submit"]));
    assert_eq!(issued["label"], "TMS prod");
    assert!(issued["expiresAt"].is_string());
    let secret = issued["secret"].as_str().context("the secret")?.to_owned();
    let id = issued["id"].as_str().context("the id")?.to_owned();
    let (status, _, _) = get(&client, &server, "/v1/parties", &secret).await?;
    assert_eq!(status, StatusCode::OK);

    // Refusals: an unknown scope, a credential without admin.
    let response = client
        .post(&tokens)
        .bearer_auth(&admin)
        .json(&json!({"scopes": ["write"]}))
        .send()
        .await?;
    let (status, code, _) = answer(response).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_json")
    );
    let (status, code, _) = get(&client, &server, "/v1/tokens", &secret).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let (status, code, _) = answer(client.get(&tokens).send().await?).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    // The list: the party's own, never a secret.
    let (status, _, list) = get(&client, &server, "/v1/tokens", &admin).await?;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().context("a list")?.clone();
    assert!(list
        .iter()
        .all(|t| t["party"] == SHIPPER && t.get("secret").is_none()));
    let ids: Vec<&str> = list.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["imported-shipper-acme", id.as_str()]);

    // Another party's credential answers exactly as one that does not exist.
    let delete = |id: String| {
        let client = client.clone();
        let url = server.url(&format!("/v1/tokens/{id}"));
        let admin = admin.clone();
        async move { answer(client.delete(url).bearer_auth(admin).send().await?).await }
    };
    let (status, code, theirs) = delete("imported-carrier-oceanic".into()).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (_, _, missing) = delete("imported-carrier-oceaniX".into()).await?;
    assert_eq!(
        theirs.to_string().replace("oceanic", "oceaniX"),
        missing.to_string()
    );
    let carrier_ok = db.psql("SELECT count(*) FROM api_credentials WHERE party_id = 'carrier-oceanic' AND revoked_at IS NULL")?;
    assert_eq!(
        carrier_ok.trim(),
        "1",
        "the carrier's credential is untouched"
    );

    // Revoke: 200 with revokedAt, and the secret is refused from then on.
    let (status, _, revoked) = delete(id.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revokedAt"].is_string());
    let (status, code, _) = get(&client, &server, "/v1/parties", &secret).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_and_spare_the_consortium() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[SHIPPER]))?;
    // One request an hour per credential, three per address: no clock can refill them here.
    let (_db, server) = tokio::task::block_in_place(|| {
        registry(
            &pki,
            &[
                ("LADING_RATE_LIMIT_PER_CREDENTIAL", "1"),
                ("LADING_RATE_LIMIT_PER_ADDRESS", "3"),
                ("LADING_RATE_LIMIT_PERIOD_MS", "3600000"),
            ],
        )
    })?;
    let client = pki.client(None)?;
    let (shipper, carrier) = (token(SHIPPER)?, token(CARRIER)?);

    let (status, _, _) = get(&client, &server, "/v1/parties", &shipper).await?;
    assert_eq!(status, StatusCode::OK);
    let response = client
        .get(server.url("/v1/parties"))
        .bearer_auth(&shipper)
        .send()
        .await?;
    let retry_after: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    let (status, code, problem) = answer(response).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert!(problem["detail"].as_str().unwrap().contains("credential"));

    // Another credential has its own allowance (the address's third request).
    let (status, _, _) = get(&client, &server, "/v1/parties", &carrier).await?;
    assert_eq!(status, StatusCode::OK);
    // The address has used its three.
    let health = client.get(server.url("/healthz")).send().await?;
    ensure!(health.status() == StatusCode::OK, "health is outside /v1");
    let (status, code, problem) =
        answer(client.get(server.url("/v1/registry/key")).send().await?).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(problem["detail"].as_str().unwrap().contains("address"));

    // The consortium's replication traffic (mutual TLS) from the same address is never limited.
    let replica = pki.client(Some(SHIPPER))?;
    for _ in 0..5 {
        let response = replica
            .get(server.url("/v1/replication/entries?from=0&limit=1"))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
    }
    Ok(())
}
