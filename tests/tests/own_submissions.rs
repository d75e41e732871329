//! A party's own submissions (issue 13, "Finding bills"): `GET /v1/submissions` on a real
//! registry over TLS with a consortium CA, on a throwaway PostgreSQL database.
//!
//! What must hold:
//! - each party's pages list exactly the transitions and events its own credential handed in
//!   (`submittedBy`), whoever signed them, newest first: a forwarder sees what it sent for its
//!   customers, the customer what it sent itself, a party that sent nothing an empty page;
//!   entries handed in without a party's credential are on nobody's list;
//! - every filter (`kind`, `action`, `eventCode`, `document`, `signer`, `since`) keeps exactly
//!   the matching entries of the caller's own, and naming a document the caller did not submit
//!   answers the same as naming one that does not exist;
//! - a walk with `limit=2` while the same party keeps submitting lists no entry twice and
//!   skips none that was there when it began;
//! - a bad filter or cursor is `400` problem+json with a stable code; no credential is `401`;
//!   a consortium client certificate reads what its party submitted, as its bearer credential.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use base64::Engine;
use lading_domain::transition::Action;
use lading_domain::{Timestamp, TransportDocument};
use lading_e2e::consortium::Pki;
use lading_e2e::gen::sample_document;
use lading_e2e::harness::{answer, token, Server, ServerOptions, TestDb};
use lading_e2e::portal::{encode, submit_all, Signer};
use lading_e2e::samples::Samples;
use lading_e2e::schemas::validator;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CARRIER: &str = "carrier-oceanic";
const FORWARDER: &str = "forwarder-swift";
const SHIPPER: &str = "shipper-acme";
const CONSIGNEE: &str = "consignee-delta";
/// A member that submits nothing.
const BANK: &str = "bank-harbour";

/// A registry with the consortium CA that also takes anonymous writes (recorded without a
/// submitter), so the fixtures' chains can be put on the ledger as nobody's submissions.
fn registry(pki: &Pki) -> Result<(TestDb, Server)> {
    pki.registry_with(ServerOptions {
        anonymous_writes: true,
        ..ServerOptions::default()
    })
}

/// What the test expects of one submission, from what it sent and what the registry answered.
#[derive(Debug, Clone)]
struct Sent {
    index: u64,
    leaf_hash: String,
    kind: &'static str,
    action: Option<String>,
    event_code: Option<String>,
    document: Option<String>,
    equipment: Option<String>,
    signer: String,
    submitter: String,
}

impl Sent {
    /// The item `GET /v1/submissions` lists for it, less `receivedAt`.
    fn item(&self) -> Value {
        let mut item = json!({
            "index": self.index,
            "kind": self.kind,
            "signer": self.signer,
            "submittedBy": self.submitter,
            "leafHash": self.leaf_hash,
        });
        for (name, value) in [
            ("action", &self.action),
            ("eventCode", &self.event_code),
            ("documentReference", &self.document),
            ("equipmentReference", &self.equipment),
        ] {
            if let Some(value) = value {
                item[name] = json!(value);
            }
        }
        item
    }
}

/// The payload of a compact JWS.
fn payload(jws: &str) -> Result<Value> {
    let payload = jws.split('.').nth(1).context("a compact JWS")?;
    Ok(serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?,
    )?)
}

/// `POST path` of one compact JWS with `submitter`'s bearer credential; what was sent.
async fn submit(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    jws: &str,
    submitter: &str,
) -> Result<Sent> {
    let response = client
        .post(server.url(path))
        .header(reqwest::header::CONTENT_TYPE, "application/jose")
        .bearer_auth(token(submitter)?)
        .body(jws.to_owned())
        .send()
        .await?;
    let (status, _, body) = answer(response).await?;
    ensure!(
        status == StatusCode::CREATED,
        "{path} by {submitter}: {status} {body}"
    );
    ensure!(body["submittedBy"] == submitter, "{body}");
    let p = payload(jws)?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let event = path == "/v1/events";
    Ok(Sent {
        index: body["index"].as_u64().context("an index")?,
        leaf_hash: text(&body["leafHash"]).context("a leaf hash")?,
        kind: if event { "event" } else { "transition" },
        action: if event { None } else { text(&p["action"]) },
        event_code: if event { text(&p["eventCode"]) } else { None },
        document: text(&p["documentReference"]),
        equipment: if event {
            text(&p["equipmentReference"])
        } else {
            None
        },
        signer: text(&p["actor"]).context("an actor")?,
        submitter: submitter.to_owned(),
    })
}

/// `party` lets `submitter` hand in what `party` signs.
async fn authorise(
    client: &reqwest::Client,
    server: &Server,
    party: &str,
    submitter: &str,
) -> Result<()> {
    let response = client
        .post(server.url("/v1/submitters"))
        .bearer_auth(token(party)?)
        .json(&json!({ "submitter": submitter }))
        .send()
        .await?;
    let (status, _, body) = answer(response).await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");
    Ok(())
}

fn minutes_ago(minutes: i64) -> Timestamp {
    Timestamp::from_datetime_truncated(chrono::Utc::now() - chrono::Duration::minutes(minutes))
}

/// ACME<i>: issued by carrier-oceanic to shipper-acme, consigned to consignee-delta; its ISSUE.
fn acme(signer: &Signer, i: u64) -> Result<(TransportDocument, String)> {
    let doc = sample_document(
        &format!("ACME{i:04}"),
        CARRIER,
        SHIPPER,
        Some(CONSIGNEE),
        false,
        i,
    )?;
    let issue = signer.issue(&doc, SHIPPER, minutes_ago(60))?;
    Ok((doc, issue))
}

/// A reader of `GET /v1/submissions`, checking every page against its schema.
struct Reader<'a> {
    client: &'a reqwest::Client,
    server: &'a Server,
    page: jsonschema::Validator,
    problem: jsonschema::Validator,
}

impl<'a> Reader<'a> {
    fn new(client: &'a reqwest::Client, server: &'a Server) -> Result<Self> {
        Ok(Self {
            client,
            server,
            page: validator("submission-page.json")?,
            problem: validator("problem.json")?,
        })
    }

    /// `GET /v1/submissions?query` with `party`'s bearer credential: status, media type, body.
    async fn get(&self, party: &str, query: &str) -> Result<(StatusCode, String, Value)> {
        let response = self
            .client
            .get(self.server.url(&format!("/v1/submissions?{query}")))
            .bearer_auth(token(party)?)
            .send()
            .await?;
        let status = response.status();
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((status, media, response.json().await.unwrap_or(Value::Null)))
    }

    /// One page: its items and its `next`.
    async fn page(&self, party: &str, query: &str) -> Result<(Vec<Value>, Option<String>)> {
        let (status, _, body) = self.get(party, query).await?;
        ensure!(
            status == StatusCode::OK,
            "{query} as {party}: {status} {body}"
        );
        let errors: Vec<String> = self
            .page
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        ensure!(errors.is_empty(), "{errors:?} in {body}");
        let items = body["submissions"].as_array().context("a list")?.clone();
        Ok((items, body["next"].as_str().map(str::to_owned)))
    }

    /// Every page of `query`, `limit` at a time.
    async fn walk(&self, party: &str, query: &str, limit: u32) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..500 {
            let mut q = format!("{query}&limit={limit}");
            if let Some(c) = &cursor {
                q += &format!("&cursor={c}");
            }
            let (items, next) = self.page(party, &q).await?;
            ensure!(items.len() <= limit as usize);
            ensure!(
                next.is_none() || items.len() == limit as usize,
                "a short page with a next"
            );
            all.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
        anyhow::bail!("the walk never ended")
    }

    /// `query` as `party` is refused with `400 code`, as problem+json.
    async fn refused(&self, party: &str, query: &str, code: &str) -> Result<()> {
        let (status, media, body) = self.get(party, query).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && body["code"] == code,
            "{query}: {status} {body}, not {code}"
        );
        ensure!(
            media.starts_with("application/problem+json"),
            "{query}: {media}"
        );
        ensure!(self.problem.is_valid(&body), "{query}: {body}");
        Ok(())
    }
}

/// The items less `receivedAt` (the test does not know the registry's clock), each checked to
/// have one.
fn without_time(items: &[Value]) -> Result<Vec<Value>> {
    items
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let map = i.as_object_mut().context("an object")?;
            map.remove("receivedAt").context("a receivedAt")?;
            Ok(i)
        })
        .collect()
}

/// `sent` that `keep` keeps, newest first, as listed.
fn expected(sent: &[Sent], keep: impl Fn(&Sent) -> bool) -> Vec<Value> {
    let mut kept: Vec<&Sent> = sent.iter().filter(|s| keep(s)).collect();
    kept.sort_by_key(|s| std::cmp::Reverse(s.index));
    kept.into_iter().map(Sent::item).collect()
}

/// A forwarder authorised by a shipper and a carrier submits some of their statements, each
/// submits others itself, other members theirs: every party's list, every filter, the
/// refusals, the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_party_lists_exactly_its_own_submissions_newest_first_by_every_filter() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, FORWARDER, SHIPPER]))?;
    let (_db, server) = tokio::task::block_in_place(|| registry(&pki))?;
    let client = pki.client(None)?;
    let reader = Reader::new(&client, &server)?;
    let samples = Samples::load()?;
    let signer = Signer::new()?;
    authorise(&client, &server, SHIPPER, FORWARDER).await?;
    authorise(&client, &server, CARRIER, FORWARDER).await?;

    // The fixtures' chains without a party's credential: nobody's submissions.
    let chains: Vec<String> = samples
        .chains
        .iter()
        .flat_map(|c| c.transitions.iter().cloned())
        .collect();
    submit_all(&client, &server, &chains).await?;
    // Their events, each by its signer's own credential, but the shipper's by the forwarder.
    let mut sent: Vec<Sent> = Vec::new();
    for jws in &samples.events {
        let actor = payload(jws)?["actor"]
            .as_str()
            .context("an actor")?
            .to_owned();
        let submitter = if actor == SHIPPER { FORWARDER } else { &actor };
        sent.push(submit(&client, &server, "/v1/events", jws, submitter).await?);
    }
    let before_bills = chrono::Utc::now();

    // Eight bills: six issued by the carrier itself, two by the forwarder for it. Six are then
    // transferred by the shipper to the consignee, every other one by the forwarder.
    let mut bills = Vec::new();
    for i in 0..8u64 {
        let (doc, issue) = acme(&signer, i)?;
        let by = if i < 6 { CARRIER } else { FORWARDER };
        sent.push(submit(&client, &server, "/v1/transitions", &issue, by).await?);
        bills.push((doc, issue));
    }
    for (i, (doc, issue)) in bills.iter().take(6).enumerate() {
        let transfer = signer.next(
            doc,
            issue,
            Action::Transfer,
            SHIPPER,
            Some(CONSIGNEE),
            minutes_ago(30),
        )?;
        let by = if i % 2 == 0 { FORWARDER } else { SHIPPER };
        sent.push(submit(&client, &server, "/v1/transitions", &transfer, by).await?);
    }
    // What the test relies on below.
    let of = |party: &str| sent.iter().filter(|s| s.submitter == party).count();
    assert!(of(FORWARDER) >= 6 && of(SHIPPER) == 3 && of(CONSIGNEE) == 1);
    assert!(sent
        .iter()
        .any(|s| s.submitter == FORWARDER && s.kind == "event" && s.signer == SHIPPER));
    assert!(sent
        .iter()
        .any(|s| s.kind == "event" && s.document.is_none() && s.submitter == CARRIER));

    // Each party's list: exactly its own, newest first, whatever the page size; a member that
    // submitted nothing has an empty list.
    for party in [CARRIER, FORWARDER, SHIPPER, CONSIGNEE, BANK, "customs-nl"] {
        let want = expected(&sent, |s| s.submitter == party);
        for limit in [2, 200] {
            let listed = reader.walk(party, "", limit).await?;
            assert_eq!(without_time(&listed)?, want, "{party}, limit {limit}");
        }
    }
    let (bank, next) = reader.page(BANK, "").await?;
    assert!(bank.is_empty() && next.is_none());

    // Each filter keeps exactly the matching ones of the caller's own.
    type Filter<'f> = (&'f str, String, Box<dyn Fn(&Sent) -> bool + 'f>);
    let since = encode(&before_bills.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let filters: Vec<Filter> = vec![
        (
            FORWARDER,
            "kind=transition".into(),
            Box::new(|s| s.kind == "transition"),
        ),
        (
            FORWARDER,
            "kind=event".into(),
            Box::new(|s| s.kind == "event"),
        ),
        (
            CARRIER,
            "kind=event".into(),
            Box::new(|s| s.kind == "event"),
        ),
        (
            CARRIER,
            "kind=transition".into(),
            Box::new(|s| s.kind == "transition"),
        ),
        (
            FORWARDER,
            "action=ISSUE".into(),
            Box::new(|s| s.action.as_deref() == Some("ISSUE")),
        ),
        (
            FORWARDER,
            "action=TRANSFER".into(),
            Box::new(|s| s.action.as_deref() == Some("TRANSFER")),
        ),
        (SHIPPER, "action=ISSUE".into(), Box::new(|_| false)),
        (
            CARRIER,
            "eventCode=LOAD".into(),
            Box::new(|s| s.event_code.as_deref() == Some("LOAD")),
        ),
        (
            FORWARDER,
            "eventCode=DECLARED".into(),
            Box::new(|s| s.event_code.as_deref() == Some("DECLARED")),
        ),
        (
            FORWARDER,
            "document=ACME0000".into(),
            Box::new(|s| s.document.as_deref() == Some("ACME0000")),
        ),
        (
            CARRIER,
            "document=ACME0000".into(),
            Box::new(|s| s.document.as_deref() == Some("ACME0000")),
        ),
        (
            FORWARDER,
            "signer=shipper-acme".into(),
            Box::new(|s| s.signer == SHIPPER),
        ),
        (
            FORWARDER,
            "signer=carrier-oceanic".into(),
            Box::new(|s| s.signer == CARRIER),
        ),
        (CARRIER, "signer=shipper-acme".into(), Box::new(|_| false)),
        (
            FORWARDER,
            "kind=transition&signer=shipper-acme&document=ACME0002".into(),
            Box::new(|s| s.kind == "transition" && s.document.as_deref() == Some("ACME0002")),
        ),
        (
            FORWARDER,
            "kind=event&action=ISSUE".into(),
            Box::new(|_| false),
        ),
        (
            SHIPPER,
            format!("since={since}"),
            Box::new(|s| s.action.is_some()),
        ),
        (
            FORWARDER,
            format!("since={since}"),
            Box::new(|s| s.kind == "transition"),
        ),
        (
            CARRIER,
            format!("since={since}&kind=event"),
            Box::new(|_| false),
        ),
    ];
    for (party, query, keep) in &filters {
        let want = expected(&sent, |s| s.submitter == *party && keep(s));
        let listed = reader.walk(party, query, 2).await?;
        assert_eq!(without_time(&listed)?, want, "{query} as {party}");
    }

    // A document the caller did not submit (on the ledger, or even named in its own bills)
    // answers exactly as one that does not exist.
    let (_, _, nowhere) = reader.get(FORWARDER, "document=NOPE0001").await?;
    assert_eq!(nowhere, json!({ "submissions": [] }));
    let foreign = &samples
        .chains
        .iter()
        .find(|c| {
            !sent
                .iter()
                .any(|s| s.submitter == FORWARDER && s.document.as_ref() == Some(&c.reference))
        })
        .context("a bill the forwarder sent nothing of")?
        .reference;
    for (party, document) in [
        (FORWARDER, foreign.as_str()),
        (SHIPPER, "ACME0006"),
        (BANK, "ACME0000"),
    ] {
        let (status, _, body) = reader.get(party, &format!("document={document}")).await?;
        assert_eq!(
            (status, &body),
            (StatusCode::OK, &nowhere),
            "{party} {document}"
        );
    }

    // The refusals.
    let events_cursor = hex::encode("e1:5");
    for (query, code) in [
        ("kind=party", "bad_filter"),
        ("kind=TRANSITION", "bad_filter"),
        ("action=FLY", "bad_filter"),
        ("eventCode=SAIL", "bad_filter"),
        ("document=not%20a%20reference", "bad_filter"),
        ("signer=Not%20A%20Party", "bad_filter"),
        ("since=yesterday", "bad_filter"),
        ("limit=0", "bad_filter"),
        ("limit=201", "bad_filter"),
        ("cursor=zz", "bad_cursor"),
        ("cursor=", "bad_cursor"),
        (&format!("cursor={events_cursor}"), "bad_cursor"),
        (&format!("cursor={}", hex::encode("s1:five")), "bad_cursor"),
        ("party=shipper-acme", "bad_query"),
    ] {
        reader.refused(FORWARDER, query, code).await?;
    }
    // A cursor of this list is no cursor of the events.
    let (_, next) = reader.page(FORWARDER, "limit=1").await?;
    let next = next.context("more than one submission")?;
    let response = client
        .get(server.url(&format!("/v1/events?cursor={next}")))
        .bearer_auth(token(FORWARDER)?)
        .send()
        .await?;
    let (status, code, _) = answer(response).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_cursor")
    );

    // Without a credential: 401; with an unknown one: 401.
    let (status, code, _) = answer(client.get(server.url("/v1/submissions")).send().await?).await?;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let response = client
        .get(server.url("/v1/submissions"))
        .bearer_auth("not-a-credential")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The forwarder's node, by its client certificate alone, reads the same list.
    let node = pki.client(Some(FORWARDER))?;
    let (status, _, by_certificate) = answer(
        node.get(server.url("/v1/submissions?limit=200"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _, by_bearer) = reader.get(FORWARDER, "limit=200").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_certificate, by_bearer);
    Ok(())
}

/// A walk with `limit=2` while the walking party keeps submitting: between every two pages at
/// least one new submission of its own lands; the walk lists every entry that was there when
/// it began exactly once, in strictly descending order, and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_with_limit_2_while_submissions_land_skips_and_repeats_nothing() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, FORWARDER]))?;
    let (_db, server) = tokio::task::block_in_place(|| registry(&pki))?;
    let client = pki.client(None)?;
    let reader = Reader::new(&client, &server)?;
    let signer = Arc::new(Signer::new()?);
    authorise(&client, &server, CARRIER, FORWARDER).await?;

    // Eleven bills, handed in by the forwarder; the carrier's own in between are not its.
    let mut before: BTreeSet<u64> = BTreeSet::new();
    for i in 0..11u64 {
        let (_, issue) = acme(&signer, i)?;
        before.insert(
            submit(&client, &server, "/v1/transitions", &issue, FORWARDER)
                .await?
                .index,
        );
        let (_, own) = acme(&signer, 500 + i)?;
        submit(&client, &server, "/v1/transitions", &own, CARRIER).await?;
    }

    // Another task keeps submitting for the carrier, by the forwarder's credential, until told
    // to stop; each index it got is published.
    let stop = Arc::new(AtomicBool::new(false));
    let (landed, mut watch) = tokio::sync::watch::channel(Vec::<u64>::new());
    let writer = {
        let (client, stop, signer) = (client.clone(), stop.clone(), signer.clone());
        let url = server.url("/v1/transitions");
        tokio::spawn(async move {
            let mut i = 100u64;
            while !stop.load(Ordering::SeqCst) {
                let (_, issue) = acme(&signer, i)?;
                let response = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/jose")
                    .bearer_auth(token(FORWARDER)?)
                    .body(issue)
                    .send()
                    .await?;
                let (status, _, body) = answer(response).await?;
                ensure!(status == StatusCode::CREATED, "{status} {body}");
                let index = body["index"].as_u64().context("an index")?;
                landed.send_modify(|l| l.push(index));
                i += 1;
            }
            Ok::<_, anyhow::Error>(())
        })
    };

    let mut listed: Vec<u64> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0usize;
    loop {
        let mut query = "limit=2".to_owned();
        if let Some(c) = &cursor {
            query += &format!("&cursor={c}");
        }
        let (items, next) = reader.page(FORWARDER, &query).await?;
        pages += 1;
        for item in &items {
            assert_eq!(item["submittedBy"], FORWARDER);
            listed.push(item["index"].as_u64().context("an index")?);
        }
        let Some(next) = next else { break };
        cursor = Some(next);
        // The next page is asked only once another submission has landed since this one.
        let seen = watch.borrow_and_update().len();
        watch.wait_for(|l| l.len() > seen).await?;
        ensure!(pages < 100, "the walk never ended");
    }
    stop.store(true, Ordering::SeqCst);
    writer.await??;
    let during: BTreeSet<u64> = watch.borrow().iter().copied().collect();
    assert!(
        during.len() >= pages - 1,
        "a submission between every two pages"
    );

    assert!(
        listed.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first, nothing twice: {listed:?}"
    );
    let listed_set: BTreeSet<u64> = listed.iter().copied().collect();
    assert!(
        before.is_subset(&listed_set),
        "every entry there when the walk began: {before:?} in {listed:?}"
    );
    // Nothing skipped below the first row listed: all of the forwarder's entries at or below it.
    let top = listed[0];
    let all: BTreeSet<u64> = before
        .iter()
        .chain(&during)
        .copied()
        .filter(|i| *i <= top)
        .collect();
    assert_eq!(listed_set, all);

    // A new walk finds everything of the forwarder's, newest first.
    let again = reader.walk(FORWARDER, "", 7).await?;
    let again: Vec<u64> = again.iter().filter_map(|i| i["index"].as_u64()).collect();
    let mut everything: Vec<u64> = before.iter().chain(&during).copied().collect();
    everything.sort_unstable_by_key(|i| std::cmp::Reverse(*i));
    assert_eq!(again, everything);
    Ok(())
}
