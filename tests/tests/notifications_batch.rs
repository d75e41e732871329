//! Batched webhooks (`POST /v1/subscriptions` with `batch: {maxEvents}`): a real registry
//! delivers CloudEvents batches to a receiver this test runs over HTTPS on loopback.
//!
//! What must hold:
//! - a batched subscription is sent `application/cloudevents-batch+json` POSTs, each a JSON
//!   array (`schemas/cloud-event-batch.json`) of at most `maxEvents` of the very CloudEvents
//!   structured mode sends, in ledger order, exactly the entries its party may read and its
//!   filter takes; each request's Standard Webhooks signature covers the whole body and
//!   verifies with the specification's Python library (the project's venv) and the Rust one;
//!   its `webhook-id` names the batch's first and last entry;
//! - a receiver that fails gets the same batch again (the same `webhook-id` and body) until it
//!   takes it; each attempt is one row of the delivery log with the batch's first and last
//!   index and its count; redelivery from an index works; nothing is lost when the registry is
//!   killed (SIGKILL) while its receiver fails;
//! - a bad `batch` is refused with `subscription_batch_invalid`, and nothing is made.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use lading_e2e::harness::{py_venv, token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::{submit_all, submit_events};
use lading_e2e::receiver::{Received, Receiver};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SHIPPER: &str = "shipper-acme";
const CARRIER: &str = "carrier-oceanic";

/// The shipper's batched subscription's path on the receiver.
const BATCHED: &str = "batched";
/// The carrier's two subscriptions with one filter: one event a request, and batched.
const CARRIER_ONE: &str = "carrier-one";
const CARRIER_BATCHED: &str = "carrier-batched";

/// The batch size asked: small, so that the samples make several batches.
const MAX_EVENTS: usize = 3;

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
            ],
            ..ServerOptions::default()
        },
    )
}

/// Calls the registry as `party` (its bearer token): (status, content type, JSON).
async fn call(
    client: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    party: &str,
    body: Option<Value>,
) -> Result<(StatusCode, String, Value)> {
    let mut request = client
        .request(method, server.url(path))
        .bearer_auth(token(party)?);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    Ok((
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}

async fn get(client: &reqwest::Client, server: &Server, path: &str, party: &str) -> Result<Value> {
    let (status, _, body) = call(client, server, reqwest::Method::GET, path, party, None).await?;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    Ok(body)
}

/// Makes a subscription; its answer.
async fn subscribe(
    client: &reqwest::Client,
    server: &Server,
    party: &str,
    body: Value,
) -> Result<Value> {
    let (status, _, made) = call(
        client,
        server,
        reqwest::Method::POST,
        "/v1/subscriptions",
        party,
        Some(body),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    Ok(made)
}

/// The indexes from `from` on that `party` may read in full and that are transitions or
/// events: what its subscription (with no filter) must be sent.
async fn entitled(
    client: &reqwest::Client,
    server: &Server,
    party: &str,
    from: u64,
) -> Result<Vec<u64>> {
    let size = get(client, server, "/readyz", party).await?["size"]
        .as_u64()
        .unwrap_or(0);
    let mut out = Vec::new();
    for i in from..size {
        let entry = get(client, server, &format!("/v1/entries/{i}"), party).await?;
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

/// Waits (bounded) until subscription `id` of `party` has delivered (or passed over)
/// everything on the ledger: its attempts are logged then too.
async fn caught_up(client: &reqwest::Client, server: &Server, party: &str, id: &str) -> Result<()> {
    let size = get(client, server, "/readyz", party).await?["size"]
        .as_u64()
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = get(client, server, &format!("/v1/subscriptions/{id}"), party).await?;
        if shown["nextIndex"].as_u64().unwrap_or(0) >= size {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("subscription {id} not caught up with {size} entries in a minute: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events of the requests to `name` the receiver took, in the order they came, flattened
/// out of their batches.
fn taken_events(receiver: &Receiver, name: &str) -> Vec<Value> {
    receiver
        .taken(name)
        .iter()
        .flat_map(|r| match r.json() {
            Value::Array(events) => events,
            other => vec![other],
        })
        .collect()
}

fn indexes(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["data"]["index"].as_u64().unwrap())
        .collect()
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Verifies every request's signature with the Standard Webhooks Python library (the
/// specification's own, in the project's venv) and `secret`: how many verified.
fn verify_in_python(secret: &str, requests: &[Received]) -> Result<usize> {
    let items: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({
                "headers": {
                    "webhook-id": header(r, "webhook-id"),
                    "webhook-timestamp": header(r, "webhook-timestamp"),
                    "webhook-signature": header(r, "webhook-signature"),
                },
                "body": String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()),
            })
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("requests.json");
    std::fs::write(&file, serde_json::to_vec(&items)?)?;
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        hook = Webhook(sys.argv[1])\n\
        items = json.load(open(sys.argv[2]))\n\
        for item in items:\n    hook.verify(item['body'].encode(), item['headers'])\n\
        print(len(items))\n";
    let out = Command::new(py_venv(&["python"])?.join("bin/python"))
        .args(["-c", script, secret])
        .arg(&file)
        .output()?;
    if !out.status.success() {
        bail!(
            "the Python library refused a signature: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// Checks every request to `name`: a batch of at most [`MAX_EVENTS`] as the batch schema
/// says, named by its first and last entry, signed over its whole body (both libraries).
fn check_batches(receiver: &Receiver, name: &str, id: &str, secret: &str) -> Result<()> {
    let schema = lading_e2e::schemas::validator("cloud-event-batch.json")?;
    let webhook = standardwebhooks::Webhook::new(secret)?;
    let requests: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| r.name == name)
        .collect();
    assert!(!requests.is_empty());
    for r in &requests {
        let (Some(body), Some(headers)) = (&r.body, &r.headers) else {
            bail!("the receiver keeps every request whole");
        };
        assert_eq!(
            header(r, "content-type"),
            "application/cloudevents-batch+json; charset=utf-8"
        );
        webhook
            .verify(body, headers)
            .map_err(|e| anyhow::anyhow!("signature: {e:?}"))?;
        let batch = r.json();
        let refused: Vec<String> = schema.iter_errors(&batch).map(|e| e.to_string()).collect();
        assert!(refused.is_empty(), "{refused:?}: {batch}");
        let events = batch.as_array().unwrap();
        assert!(
            (1..=MAX_EVENTS).contains(&events.len()),
            "{} events",
            events.len()
        );
        let at = indexes(events);
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "in ledger order: {at:?}"
        );
        assert_eq!(
            r.id,
            format!("{id}_{}-{}", at[0], at[at.len() - 1]),
            "webhook-id names the batch's first and last entry"
        );
        assert_eq!(r.batch.as_deref(), Some(&at[..]), "the receiver's note");
    }
    assert_eq!(verify_in_python(secret, &requests)?, requests.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_subscriptions_get_signed_batches_in_order_retried_as_they_were_and_never_lost(
) -> Result<()> {
    let receiver = Receiver::start()?;
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let mut server = tokio::task::block_in_place(|| registry(&db, &tls, &receiver))?;
    let client = tls.client()?;
    let samples = Samples::load()?;
    submit_all(&client, &server, &samples.chains[0].transitions).await?;

    // A bad batch is refused with its own code, and nothing is made.
    for batch in [
        json!({ "maxEvents": 0 }),
        json!({ "maxEvents": 1001 }),
        json!({ "maxEvents": -5 }),
        json!({ "maxEvents": 2.5 }),
        json!({ "maxEvents": "10" }),
        json!({}),
        json!({ "maxEvents": 10, "linger": 5 }),
        json!(10),
        json!([]),
    ] {
        let (status, content_type, problem) = call(
            &client,
            &server,
            reqwest::Method::POST,
            "/v1/subscriptions",
            SHIPPER,
            Some(json!({ "url": receiver.url(BATCHED), "batch": batch })),
        )
        .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{batch}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{batch}");
        assert_eq!(problem["code"], "subscription_batch_invalid", "{batch}");
    }
    let listed = get(&client, &server, "/v1/subscriptions", SHIPPER).await?;
    assert_eq!(listed["subscriptions"], json!([]));

    // The shipper's, batched, no filter; the carrier's two with one filter, one event a
    // request and batched.
    let made = subscribe(
        &client,
        &server,
        SHIPPER,
        json!({ "url": receiver.url(BATCHED), "batch": { "maxEvents": MAX_EVENTS } }),
    )
    .await?;
    let id = made["id"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let from = made["nextIndex"].as_u64().unwrap();
    assert_eq!(made["batch"], json!({ "maxEvents": MAX_EVENTS }));
    let shown = get(
        &client,
        &server,
        &format!("/v1/subscriptions/{id}"),
        SHIPPER,
    )
    .await?;
    assert_eq!(shown["batch"], json!({ "maxEvents": MAX_EVENTS }));
    let filter = json!({ "actions": ["ISSUE", "TRANSFER"] });
    let one = subscribe(
        &client,
        &server,
        CARRIER,
        json!({ "url": receiver.url(CARRIER_ONE), "filter": filter }),
    )
    .await?;
    assert!(one.get("batch").is_none(), "{one}");
    let carrier = subscribe(
        &client,
        &server,
        CARRIER,
        json!({ "url": receiver.url(CARRIER_BATCHED), "filter": filter, "batch": { "maxEvents": MAX_EVENTS } }),
    )
    .await?;

    for chain in &samples.chains[1..] {
        submit_all(&client, &server, &chain.transitions).await?;
    }
    submit_events(&client, &server, &samples.events).await?;

    // Exactly what the shipper may read, in ledger order, in batches of at most MAX_EVENTS.
    let want = entitled(&client, &server, SHIPPER, from).await?;
    assert!(want.len() > 2 * MAX_EVENTS, "several batches: {want:?}");
    wait_until("the shipper's batches", || {
        taken_events(&receiver, BATCHED).len() >= want.len()
    })
    .await?;
    assert_eq!(indexes(&taken_events(&receiver, BATCHED)), want);
    assert!(receiver.taken(BATCHED).len() >= want.len().div_ceil(MAX_EVENTS));
    check_batches(&receiver, BATCHED, &id, &secret)?;

    // The filter per event, as structured mode: the carrier's batches hold the very events
    // its other subscription was sent one by one, and not all it may read.
    let carrier_may = entitled(&client, &server, CARRIER, from).await?;
    for made in [&one, &carrier] {
        caught_up(&client, &server, CARRIER, made["id"].as_str().unwrap()).await?;
    }
    // One event a request goes several at once (each about another document): in index order.
    let mut one_by_one = taken_events(&receiver, CARRIER_ONE);
    one_by_one.sort_by_key(|e| e["data"]["index"].as_u64());
    let batched = taken_events(&receiver, CARRIER_BATCHED);
    assert!(!one_by_one.is_empty());
    assert_eq!(batched, one_by_one, "the same events, batched");
    assert!(indexes(&batched).iter().all(|i| carrier_may.contains(i)));
    assert!(batched.len() < carrier_may.len(), "the filter took some");
    assert!(batched.iter().all(|e| e["type"] == "dev.lading.transition"
        && matches!(e["data"]["action"].as_str(), Some("ISSUE" | "TRANSFER"))));
    check_batches(
        &receiver,
        CARRIER_BATCHED,
        carrier["id"].as_str().unwrap(),
        carrier["secret"].as_str().unwrap(),
    )?;

    // A receiver that fails twice gets the same batch again (the same id and body), until it
    // takes it; the redelivery loses and skips nothing.
    receiver.state.fail.store(2, Ordering::SeqCst);
    let before = receiver.received().len();
    let taken_before = taken_events(&receiver, BATCHED).len();
    let (status, _, _) = call(
        &client,
        &server,
        reqwest::Method::POST,
        &format!("/v1/subscriptions/{id}/redeliver?from={from}"),
        SHIPPER,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until("the redelivery", || {
        taken_events(&receiver, BATCHED).len() >= taken_before + want.len()
    })
    .await?;
    assert_eq!(
        indexes(&taken_events(&receiver, BATCHED)[taken_before..]),
        want
    );
    caught_up(&client, &server, SHIPPER, &id).await?;
    let again: Vec<Received> = receiver.received()[before..]
        .iter()
        .filter(|r| r.name == BATCHED)
        .cloned()
        .collect();
    assert!(!again[0].taken && !again[1].taken && again[2].taken);
    assert_eq!(again[0].id, again[1].id, "the same batch again");
    assert_eq!(again[1].id, again[2].id);
    assert_eq!(again[0].body, again[2].body);
    assert_eq!(
        again[0].id,
        format!("{id}_{}-{}", want[0], want[MAX_EVENTS - 1])
    );
    check_batches(&receiver, BATCHED, &id, &secret)?;

    // The log: one row per attempt of a batch, its first and last entry and its count.
    let log = get(
        &client,
        &server,
        &format!("/v1/subscriptions/{id}/deliveries?limit=1000"),
        SHIPPER,
    )
    .await?;
    let rows: Vec<&Value> = log["deliveries"].as_array().unwrap().iter().rev().collect();
    assert_eq!(
        rows.len(),
        receiver
            .received()
            .iter()
            .filter(|r| r.name == BATCHED)
            .count()
    );
    let first_batch: Vec<(u64, Option<u64>)> = rows
        .iter()
        .filter(|d| d["entryIndex"].as_u64() == Some(want[0]))
        .map(|d| {
            assert_eq!(
                d["lastEntryIndex"].as_u64(),
                Some(want[MAX_EVENTS - 1]),
                "{d}"
            );
            assert_eq!(d["events"].as_u64(), Some(MAX_EVENTS as u64), "{d}");
            (d["attempt"].as_u64().unwrap(), d["statusCode"].as_u64())
        })
        .collect();
    assert_eq!(
        first_batch,
        [
            (1, Some(204)),
            (1, Some(503)),
            (2, Some(503)),
            (3, Some(204))
        ],
        "the first batch: delivered, then redelivered through two failures"
    );
    let counted: u64 = rows
        .iter()
        .filter(|d| d["statusCode"].as_u64() == Some(204))
        .map(|d| d["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted as usize,
        2 * want.len(),
        "every event counted once a delivery"
    );

    // Killed while its receiver fails: after the restart the same batch comes again, and
    // everything after it, in order.
    receiver.state.fail.store(usize::MAX, Ordering::SeqCst);
    let taken_before = taken_events(&receiver, BATCHED).len();
    let failed_before = receiver.received().iter().filter(|r| !r.taken).count();
    let (status, _, _) = call(
        &client,
        &server,
        reqwest::Method::POST,
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
    let failed_id = receiver
        .received()
        .iter()
        .rev()
        .find(|r| !r.taken)
        .map(|r| r.id.clone())
        .unwrap();
    let before_restart = receiver.received().len();
    tokio::task::block_in_place(|| server.spawn())?;
    wait_until("deliveries after the restart", || {
        taken_events(&receiver, BATCHED).len() >= taken_before + want.len()
    })
    .await?;
    assert_eq!(
        indexes(&taken_events(&receiver, BATCHED)[taken_before..]),
        want,
        "the backlog survived the kill, in order, nothing skipped"
    );
    let resumed = receiver.received()[before_restart..]
        .iter()
        .find(|r| r.name == BATCHED)
        .map(|r| r.id.clone());
    assert_eq!(
        resumed,
        Some(failed_id),
        "the failed batch again, as it was"
    );
    Ok(())
}
