//! Webhook deliveries made concurrently: several subscriptions at once, and several requests
//! in flight to one subscription, each about another document.
//!
//! What must hold (a real registry, a receiver this test runs over HTTPS on loopback):
//! - a document whose delivery the receiver holds up holds up no other document of the same
//!   subscription, and none of its own later entries is sent before the held one was answered;
//!   once let go, every subscription has exactly what its party may read, and the entries of
//!   every document came in ledger order;
//! - a receiver that holds every request of one subscription holds back no other subscription,
//!   and once let go it gets everything with no failed attempt.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use lading_domain::transition::SignedTransition;
use lading_e2e::harness::{token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::submit_all;
use lading_e2e::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A registry that may call the receiver on loopback, with a timeout long enough that a held
/// request is never given up on while the test looks.
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
                ("LADING_NOTIFICATIONS_TIMEOUT_MS".into(), "600000".into()),
                ("LADING_NOTIFICATIONS_FIRST_RETRY_MS".into(), "100".into()),
                ("LADING_NOTIFICATIONS_MAX_RETRY_MS".into(), "300".into()),
            ],
            ..ServerOptions::default()
        },
    )
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    party: &str,
) -> Result<(StatusCode, Value)> {
    let response = client
        .request(method, url)
        .bearer_auth(token(party)?)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// A subscription of `party` with no filter to the receiver's path `name`: its id.
async fn subscribe(
    client: &reqwest::Client,
    server: &Server,
    receiver: &Receiver,
    party: &str,
    name: &str,
) -> Result<String> {
    let response = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(token(party)?)
        .json(&json!({ "url": receiver.url(name), "filter": {} }))
        .send()
        .await?;
    let status = response.status();
    let made: Value = response.json().await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    Ok(made["id"].as_str().unwrap().to_owned())
}

/// Every index from `from` on that `party` may read and is told of (the long-poll's rule, the
/// same as a subscription's with no filter), with the document (subject) of each.
async fn entitled(
    client: &reqwest::Client,
    server: &Server,
    party: &str,
    from: u64,
) -> Result<BTreeMap<u64, String>> {
    let (_, ready) = call(client, reqwest::Method::GET, server.url("/readyz"), party).await?;
    let size = ready["size"].as_u64().unwrap();
    let mut out = BTreeMap::new();
    assert!(from > 0, "a long-poll reads after an index");
    let mut after = from - 1;
    while after + 1 < size {
        let (status, page) = call(
            client,
            reqwest::Method::GET,
            server.url(&format!("/v1/notifications?after={after}&wait=0")),
            party,
        )
        .await?;
        assert_eq!(status, StatusCode::OK, "{page}");
        for event in page["notifications"].as_array().unwrap() {
            let index = event["data"]["index"].as_u64().unwrap();
            if index >= from {
                out.insert(index, event["subject"].as_str().unwrap().to_owned());
            }
        }
        after = page["after"].as_u64().unwrap();
    }
    Ok(out)
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        if Instant::now() > deadline {
            bail!("waited two minutes for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The distinct indexes `name` took.
fn taken_indexes(receiver: &Receiver, name: &str) -> BTreeSet<u64> {
    receiver
        .taken(name)
        .iter()
        .filter_map(Received::index)
        .collect()
}

/// Checks that every document's entries first arrived at `name` in ledger order.
fn assert_per_document_order(receiver: &Receiver, name: &str) {
    let mut seen = HashSet::new();
    let mut by_document: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in receiver.received().iter().filter(|r| r.name == name) {
        let index = r.index().unwrap();
        if seen.insert(index) {
            let subject = r.json()["subject"].as_str().unwrap().to_owned();
            by_document.entry(subject).or_default().push(index);
        }
    }
    for (document, indexes) in by_document {
        assert!(
            indexes.windows(2).all(|w| w[0] < w[1]),
            "{name}: {document}'s entries came as {indexes:?}"
        );
    }
}

/// Puts something on the ledger first, so that the entries of a test begin after index 0 (a
/// long-poll names the index it reads after).
async fn something_first(client: &reqwest::Client, server: &Server) -> Result<()> {
    let samples = lading_e2e::samples::Samples::load()?;
    submit_all(client, server, &samples.chains[0].transitions).await
}

/// 60 documents of 5 transitions each; the first document's reference and its issuer.
fn generated() -> Result<(Vec<String>, String, String)> {
    let shards = lading_e2e::load::generate_shards(&[300], 4, 13, 1)?;
    let transitions = shards.into_iter().next().unwrap();
    let first = SignedTransition::parse(&transitions[0])?;
    let document = first.payload().document_reference().to_string();
    let issuer = first.payload().actor().to_string();
    Ok((transitions, document, issuer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_document_held_up_holds_up_no_other_and_every_document_keeps_its_order() -> Result<()> {
    let receiver = Receiver::start()?;
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let server = tokio::task::block_in_place(|| registry(&db, &tls, &receiver))?;
    let client = tls.client()?;
    let (transitions, held, issuer) = generated()?;
    something_first(&client, &server).await?;

    // Everything is on the ledger before the subscriptions begin: they are sent back to where
    // it began, so that their first page holds it all.
    let (_, ready) = call(
        &client,
        reqwest::Method::GET,
        server.url("/readyz"),
        &issuer,
    )
    .await?;
    let start = ready["size"].as_u64().unwrap();
    submit_all(&client, &server, &transitions).await?;
    let other = if issuer == "carrier-oceanic" {
        "carrier-polaris"
    } else {
        "carrier-oceanic"
    };
    let subscriptions = [("a", issuer.as_str()), ("b", issuer.as_str()), ("c", other)];
    let mut wanted = BTreeMap::new();
    for (name, party) in subscriptions {
        wanted.insert(name, entitled(&client, &server, party, start).await?);
    }
    let held_entries: Vec<u64> = wanted["a"]
        .iter()
        .filter(|(_, document)| **document == held)
        .map(|(i, _)| *i)
        .collect();
    assert!(held_entries.len() >= 2, "{held}: {held_entries:?}");

    receiver.hold(&held);
    let mut ids = Vec::new();
    for (name, party) in subscriptions {
        let id = subscribe(&client, &server, &receiver, party, name).await?;
        let (status, _) = call(
            &client,
            reqwest::Method::POST,
            server.url(&format!("/v1/subscriptions/{id}/redeliver?from={start}")),
            party,
        )
        .await?;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(id);
    }

    // Every other document arrives while the held one waits; none of its later entries.
    for (name, _) in subscriptions {
        let others: BTreeSet<u64> = wanted[name]
            .iter()
            .filter(|(_, document)| **document != held)
            .map(|(i, _)| *i)
            .collect();
        wait_until(&format!("{name}'s other documents"), || {
            taken_indexes(&receiver, name).is_superset(&others)
        })
        .await?;
    }
    assert!(receiver.state.waiting.load(Ordering::SeqCst) >= 2);
    let arrived: HashSet<u64> = receiver
        .received()
        .iter()
        .filter_map(Received::index)
        .collect();
    for later in &held_entries[1..] {
        assert!(
            !arrived.contains(later),
            "entry {later} of the held document was sent before the one held"
        );
    }

    // Let go: everything, per document in order, for every subscription.
    receiver.release(&held);
    for (name, _) in subscriptions {
        let want: BTreeSet<u64> = wanted[name].keys().copied().collect();
        wait_until(&format!("{name}'s deliveries"), || {
            taken_indexes(&receiver, name) == want
        })
        .await?;
        assert_per_document_order(&receiver, name);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_holding_up_one_subscription_holds_back_no_other() -> Result<()> {
    let receiver = Receiver::start()?;
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let server = tokio::task::block_in_place(|| registry(&db, &tls, &receiver))?;
    let client = tls.client()?;
    let (transitions, _, issuer) = generated()?;
    something_first(&client, &server).await?;

    receiver.hold("slow");
    let slow = subscribe(&client, &server, &receiver, &issuer, "slow").await?;
    let _fast = subscribe(&client, &server, &receiver, &issuer, "fast").await?;
    let (_, shown) = call(
        &client,
        reqwest::Method::GET,
        server.url(&format!("/v1/subscriptions/{slow}")),
        &issuer,
    )
    .await?;
    let start = shown["nextIndex"].as_u64().unwrap();
    submit_all(&client, &server, &transitions).await?;
    let want: BTreeSet<u64> = entitled(&client, &server, &issuer, start)
        .await?
        .keys()
        .copied()
        .collect();
    assert!(!want.is_empty());

    let waited = wait_until("the fast subscription's deliveries", || {
        taken_indexes(&receiver, "fast") == want
    })
    .await;
    if waited.is_err() {
        let got = taken_indexes(&receiver, "fast");
        bail!(
            "fast took {} of {}; missing {:?}; extra {:?}",
            got.len(),
            want.len(),
            want.difference(&got).take(10).collect::<Vec<_>>(),
            got.difference(&want).take(10).collect::<Vec<_>>()
        );
    }
    assert!(receiver.taken("slow").is_empty());
    assert!(receiver.state.waiting.load(Ordering::SeqCst) >= 1);

    receiver.release("slow");
    wait_until("the slow subscription's deliveries", || {
        taken_indexes(&receiver, "slow") == want
    })
    .await?;
    assert_per_document_order(&receiver, "slow");
    assert_per_document_order(&receiver, "fast");
    // Held, never given up on: not one failed attempt (the log is written after the answers).
    let deadline = Instant::now() + Duration::from_secs(120);
    let attempts = loop {
        let (_, log) = call(
            &client,
            reqwest::Method::GET,
            server.url(&format!("/v1/subscriptions/{slow}/deliveries?limit=1000")),
            &issuer,
        )
        .await?;
        let attempts = log["deliveries"].as_array().unwrap().clone();
        if attempts.len() >= want.len() {
            break attempts;
        }
        if Instant::now() > deadline {
            bail!(
                "the log shows {} attempts of {}: {log}",
                attempts.len(),
                want.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for attempt in &attempts {
        assert_eq!(attempt["statusCode"], 204, "{attempt}");
        assert_eq!(attempt["attempt"], 1, "{attempt}");
    }
    Ok(())
}
