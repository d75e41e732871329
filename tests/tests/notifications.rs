//! Webhooks (`/v1/subscriptions`): a real registry delivers to a receiver this test runs over
//! HTTPS, on loopback (which the registry's configuration allows for the test).
//!
//! What must hold:
//! - a party's subscription receives exactly the entries (transitions and shipment events)
//!   the party may read, made after it subscribed, in ledger order, each a CloudEvent whose
//!   Standard Webhooks signature verifies with the `standardwebhooks` library and the secret
//!   shown once;
//! - a receiver that fails is retried (the delivery log shows each attempt and its answer)
//!   until it takes the delivery; nothing is skipped;
//! - nothing is lost when the registry is killed (SIGKILL) while its receiver is down;
//! - redelivery from an index sends those deliveries again, with the same `webhook-id`;
//! - another party's subscription answers exactly as a missing one; a deleted one is gone;
//! - a registry that does not allow private targets refuses callbacks to loopback and private
//!   addresses (and non-HTTPS ones) and makes no subscription.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use lading_e2e::harness::{token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::{submit_all, submit_events};
use lading_e2e::receiver::{Received, Receiver};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SHIPPER: &str = "shipper-acme";
const CARRIER: &str = "carrier-oceanic";

/// The receiver's path for this file's one subscription at a time.
const HOOK: &str = "webhooks";

/// The bodies the receiver took, as JSON, in the order they came.
fn taken_bodies(receiver: &Receiver) -> Vec<Value> {
    receiver.taken(HOOK).iter().map(Received::json).collect()
}

/// A registry whose deliveries retry fast and may call the receiver on loopback.
fn registry(db: &TestDb, tls: &Tls, receiver: &Receiver) -> Result<Server> {
    Server::start(
        db,
        tls,
        ServerOptions {
            env: vec![
                (
                    "LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS".into(),
                    "true".into(),
                ),
                (
                    "LADING_NOTIFICATIONS_CA".into(),
                    receiver.tls.cert_path().display().to_string(),
                ),
                ("LADING_NOTIFICATIONS_POLL_INTERVAL_MS".into(), "50".into()),
                ("LADING_NOTIFICATIONS_FIRST_RETRY_MS".into(), "100".into()),
                ("LADING_NOTIFICATIONS_MAX_RETRY_MS".into(), "300".into()),
                // One request at a time: these tests look at the whole order and at each
                // attempt of one entry (notifications_concurrency.rs tests several at once).
                ("LADING_NOTIFICATIONS_IN_FLIGHT".into(), "1".into()),
            ],
            ..ServerOptions::default()
        },
    )
}

/// The registry's API as a party calls it (its bearer token), answers as (status, JSON).
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(client: &reqwest::Client, server: &Server) -> Self {
        Self {
            client: client.clone(),
            base: server.url(""),
        }
    }

    async fn get(&self, path: &str, party: &str) -> Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, party, None).await
    }

    async fn post(
        &self,
        path: &str,
        party: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, party, body).await
    }

    async fn delete(&self, path: &str, party: &str) -> Result<(StatusCode, Value)> {
        self.call(reqwest::Method::DELETE, path, party, None).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        party: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        call(
            &self.client,
            method,
            format!("{}{path}", self.base),
            party,
            body,
        )
        .await
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    party: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value)> {
    let mut request = client.request(method, url).bearer_auth(token(party)?);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The indexes from `from` on that `party` may read in full and that are transitions or
/// events: what its subscription (with no filter) must be sent.
async fn entitled(api: &Api, party: &str, from: u64) -> Result<Vec<u64>> {
    let (_, latest) = api.get("/readyz", party).await?;
    let size = latest["size"].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    for i in from..size {
        let (status, entry) = api.get(&format!("/v1/entries/{i}"), party).await?;
        assert_eq!(status, StatusCode::OK, "{entry}");
        if entry["signed"].is_string()
            && matches!(entry["kind"].as_str(), Some("transition" | "event"))
        {
            out.push(i);
        }
    }
    Ok(out)
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() > deadline {
            bail!("waited a minute for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn indexes(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["data"]["index"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_gets_what_its_party_may_read_signed_in_order_retried_and_never_lost(
) -> Result<()> {
    let receiver = Receiver::start()?;
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let mut server = tokio::task::block_in_place(|| registry(&db, &tls, &receiver))?;
    let client = tls.client()?;
    let api = Api::new(&client, &server);
    let samples = Samples::load()?;

    // Something on the ledger before: not delivered.
    submit_all(&client, &server, &samples.chains[0].transitions).await?;

    let (status, made) = api
        .post(
            "/v1/subscriptions",
            SHIPPER,
            Some(json!({ "url": receiver.url(HOOK), "filter": {} })),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let from = made["nextIndex"].as_u64().unwrap();
    assert!(secret.starts_with("whsec_"));
    // Shown once: never again.
    let (status, shown) = api.get(&format!("/v1/subscriptions/{id}"), SHIPPER).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.get("secret").is_none(), "{shown}");
    // Another party's view of it is a missing one's.
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/subscriptions/{id}")),
        (reqwest::Method::DELETE, format!("/v1/subscriptions/{id}")),
        (
            reqwest::Method::GET,
            format!("/v1/subscriptions/{id}/deliveries"),
        ),
        (
            reqwest::Method::GET,
            "/v1/subscriptions/00000000-0000-4000-8000-000000000000".to_owned(),
        ),
    ] {
        let (status, problem) = api.call(method, &path, CARRIER, None).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {problem}");
        assert_eq!(problem["code"], "not_found");
    }

    // Everything else, transitions and events: the shipper's share arrives, in order.
    for chain in &samples.chains[1..] {
        submit_all(&client, &server, &chain.transitions).await?;
    }
    submit_events(&client, &server, &samples.events).await?;
    let want = entitled(&api, SHIPPER, from).await?;
    assert!(!want.is_empty());
    wait_until("the shipper's deliveries", || {
        taken_bodies(&receiver).len() >= want.len()
    })
    .await?;
    let taken = taken_bodies(&receiver);
    assert_eq!(
        indexes(&taken),
        want,
        "exactly what it may read, in ledger order"
    );
    let webhook = standardwebhooks::Webhook::new(&secret)?;
    let mut ids = BTreeSet::new();
    for r in receiver.received() {
        let (Some(body), Some(headers)) = (&r.body, &r.headers) else {
            bail!("the receiver keeps every request whole");
        };
        webhook
            .verify(body, headers)
            .map_err(|e| anyhow::anyhow!("signature: {e:?}"))?;
        ids.insert(r.id.clone());
        let event: Value = serde_json::from_slice(body)?;
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["source"], "urn:lading:registry");
        assert!(
            event["id"].is_string()
                && event["type"].is_string()
                && event["data"]["signed"].is_string()
        );
        assert_eq!(
            headers["content-type"].to_str()?,
            "application/cloudevents+json; charset=utf-8"
        );
    }
    assert_eq!(ids.len(), want.len(), "one webhook-id per entry");

    // A receiver that fails twice: retried until it takes it, each attempt logged.
    receiver.state.fail.store(2, Ordering::SeqCst);
    let before = taken_bodies(&receiver).len();
    // Redelivered from where it began: the same deliveries again, through two failures.
    let (status, _) = api
        .post(
            &format!("/v1/subscriptions/{id}/redeliver?from={from}"),
            SHIPPER,
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until("the redelivery", || {
        taken_bodies(&receiver).len() >= before + want.len()
    })
    .await?;
    let again = &taken_bodies(&receiver)[before..];
    assert_eq!(
        indexes(again),
        want,
        "redelivered in order, nothing skipped"
    );
    let failed: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| !r.taken)
        .collect();
    assert_eq!(failed.len(), 2);
    let first_id = failed[0].id.clone();
    assert!(ids.contains(&first_id), "a redelivery keeps the webhook-id");
    let (_, log) = api
        .get(
            &format!("/v1/subscriptions/{id}/deliveries?limit=1000"),
            SHIPPER,
        )
        .await?;
    let attempts: Vec<(u64, u64, Option<u64>)> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["entryIndex"].as_u64().unwrap(),
                d["attempt"].as_u64().unwrap(),
                d["statusCode"].as_u64(),
            )
        })
        .collect();
    let first = want[0];
    let tries: Vec<(u64, Option<u64>)> = attempts
        .iter()
        .rev()
        .filter(|(i, ..)| *i == first)
        .map(|(_, a, s)| (*a, *s))
        .collect();
    assert_eq!(
        tries,
        [
            (1, Some(204)),
            (1, Some(503)),
            (2, Some(503)),
            (3, Some(204))
        ],
        "the first entry: delivered, then redelivered through two failures"
    );

    // The receiver is down when the registry is killed: nothing is lost. A backlog (every
    // delivery again, from where it began) waits on a receiver that fails them all.
    receiver.state.fail.store(usize::MAX, Ordering::SeqCst);
    let taken_before = taken_bodies(&receiver).len();
    let failed_before = receiver.received().iter().filter(|r| !r.taken).count();
    let (status, _) = api
        .post(
            &format!("/v1/subscriptions/{id}/redeliver?from={from}"),
            SHIPPER,
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until("a failed attempt", || {
        receiver.received().iter().filter(|r| !r.taken).count() > failed_before
    })
    .await?;
    tokio::task::block_in_place(|| server.kill_9())?;
    receiver.state.fail.store(0, Ordering::SeqCst);
    tokio::task::block_in_place(|| server.spawn())?;
    wait_until("deliveries after the restart", || {
        taken_bodies(&receiver).len() >= taken_before + want.len()
    })
    .await?;
    assert_eq!(
        indexes(&taken_bodies(&receiver)[taken_before..]),
        want,
        "the backlog survived the kill, in order, nothing skipped"
    );

    // Deleted: gone for its owner too.
    let (status, _) = api
        .delete(&format!("/v1/subscriptions/{id}"), SHIPPER)
        .await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(&format!("/v1/subscriptions/{id}"), SHIPPER).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_private_addresses_or_without_https_are_refused_and_nothing_is_made(
) -> Result<()> {
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let server =
        tokio::task::block_in_place(|| Server::start(&db, &tls, ServerOptions::default()))?;
    let client = tls.client()?;
    let api = Api::new(&client, &server);
    for (url, code) in [
        ("https://127.0.0.1:9/hook", "callback_address_refused"),
        ("https://10.0.0.1/hook", "callback_address_refused"),
        (
            "https://169.254.169.254/latest/meta-data",
            "callback_address_refused",
        ),
        ("https://[::1]/hook", "callback_address_refused"),
        ("http://93.184.215.14/hook", "callback_url_invalid"),
        (
            "https://user:secret@93.184.215.14/hook",
            "callback_url_invalid",
        ),
    ] {
        let (status, problem) = api
            .post("/v1/subscriptions", SHIPPER, Some(json!({ "url": url })))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert_eq!(problem["code"], code, "{url}");
    }
    let (status, problem) = api
        .post(
            "/v1/subscriptions",
            SHIPPER,
            Some(json!({ "url": "https://93.184.215.14/hook", "filter": { "colours": ["red"] } })),
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "subscription_invalid");
    let (status, listed) = api.get("/v1/subscriptions", SHIPPER).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["subscriptions"], json!([]));
    // A credential without the `subscribe` scope may not subscribe (nor poll).
    let (status, issued) = api_post_token(
        &client,
        &server,
        json!({ "scopes": ["read"], "label": "read only" }),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let read_only = issued["secret"].as_str().unwrap().to_owned();
    for path in ["/v1/subscriptions", "/v1/notifications?wait=0"] {
        let response = client
            .get(server.url(path))
            .bearer_auth(&read_only)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let problem: Value = response.json().await?;
        assert_eq!(problem["code"], "insufficient_scope", "{path}");
    }
    // Without a credential, nothing at all.
    let response = client.get(server.url("/v1/subscriptions")).send().await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

/// A credential of the shipper's, issued by its admin credential over the API.
async fn api_post_token(
    client: &reqwest::Client,
    server: &Server,
    body: Value,
) -> Result<(StatusCode, Value)> {
    call(
        client,
        reqwest::Method::POST,
        server.url("/v1/tokens"),
        SHIPPER,
        Some(body),
    )
    .await
}

/// Reads server-sent events from `response` until one with id `last` arrives; their ids.
async fn stream_until(mut response: reqwest::Response, last: u64) -> Result<Vec<u64>> {
    let mut text = String::new();
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.last() != Some(&last) {
        if Instant::now() > deadline {
            bail!("the stream gave {ids:?}, not up to {last}, in a minute");
        }
        let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), response.chunk()).await??
        else {
            bail!("the stream ended after {ids:?}");
        };
        text.push_str(std::str::from_utf8(&chunk)?);
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(id) = event.lines().find_map(|l| l.strip_prefix("id: ")) {
                let data: Value = serde_json::from_str(
                    event
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap_or("null"),
                )?;
                assert_eq!(data["data"]["index"].as_u64(), Some(id.parse()?));
                ids.push(id.parse()?);
            }
        }
    }
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_callbacks_long_poll_or_stream_and_resume_where_they_were() -> Result<()> {
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let server =
        tokio::task::block_in_place(|| Server::start(&db, &tls, ServerOptions::default()))?;
    let client = tls.client()?;
    let api = Api::new(&client, &server);
    let samples = Samples::load()?;
    submit_all(&client, &server, &samples.chains[0].transitions).await?;

    // No place given: from now on; nothing yet.
    let (status, now) = api.get("/v1/notifications?wait=0", SHIPPER).await?;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["notifications"], json!([]));
    let start = now["after"].as_u64().unwrap();

    // A long-poll waiting when the entries come; then polls until caught up.
    let waiting = {
        let client = client.clone();
        let url = server.url(&format!("/v1/notifications?after={start}&wait=30"));
        tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token(SHIPPER)?).send().await?;
            anyhow::Ok(response.json::<Value>().await?)
        })
    };
    for chain in &samples.chains[1..] {
        submit_all(&client, &server, &chain.transitions).await?;
    }
    submit_events(&client, &server, &samples.events).await?;
    let want = entitled(&api, SHIPPER, start + 1).await?;
    let first = waiting.await??;
    let mut got = indexes(first["notifications"].as_array().unwrap());
    assert!(
        !got.is_empty(),
        "the waiting poll answered with what came: {first}"
    );
    let mut after = first["after"].as_u64().unwrap();
    while got.last() != want.last() {
        let (_, page) = api
            .get(&format!("/v1/notifications?after={after}&wait=5"), SHIPPER)
            .await?;
        got.extend(indexes(page["notifications"].as_array().unwrap()));
        after = page["after"].as_u64().unwrap();
    }
    assert_eq!(got, want, "exactly what the shipper may read, in order");

    // The stream, resumed after the third of them (Last-Event-ID), gives the rest in order.
    let resume = want[2];
    let response = client
        .get(server.url("/v1/notifications/stream"))
        .bearer_auth(token(SHIPPER)?)
        .header("Last-Event-ID", resume.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str()?,
        "text/event-stream"
    );
    let streamed = stream_until(response, *want.last().unwrap()).await?;
    assert_eq!(streamed, want[3..].to_vec());

    // Another party's poll from the same place sees only its own share.
    let carrier_want = entitled(&api, CARRIER, start + 1).await?;
    assert_ne!(carrier_want, want);
    let (_, page) = api
        .get(&format!("/v1/notifications?after={start}&wait=0"), CARRIER)
        .await?;
    let carrier_got = indexes(page["notifications"].as_array().unwrap());
    assert!(carrier_got.iter().all(|i| carrier_want.contains(i)));
    Ok(())
}
