//! End-to-end: finding bills (issue 13). A real `lading serve` on a throwaway PostgreSQL
//! database, reached over TLS: `GET /v1/documents` and `GET /v1/events` with every filter,
//! entitlement (another party's documents never appear, and filters tell nothing about them),
//! keyset pages walked while transitions land between the pages, the refusals, and `ETag` /
//! `If-None-Match` / `Cache-Control` on document reads.
//!
//! What a walk through the pages guarantees, and what the walk test asserts exactly: pages are
//! ordered by each document's last change (its head's ledger index, then reference), and each
//! page starts strictly below the cursor. So no document is listed twice in one walk; every
//! document that does not change during the walk is listed exactly once; a document that
//! changes moves to the front — listed once if it was reached before it changed, not at all if
//! it changed before the walk reached it (the next walk from the start finds it first); a
//! document issued during the walk is not listed by it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, ensure, Context, Result};
use lading_domain::event::SignedEvent;
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{Timestamp, TransportDocument};
use lading_e2e::gen::sample_document;
use lading_e2e::harness::{token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::{encode, submit_all, submit_events, Signer};
use lading_e2e::samples::Samples;
use lading_e2e::schemas::validator;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::Value;

const ACME: &str = "shipper-acme";

async fn start() -> Result<(TestDb, Tls, Server)> {
    tokio::task::spawn_blocking(|| -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, ServerOptions::default())?;
        Ok((db, tls, server))
    })
    .await?
}

/// A time `minutes_ago` minutes before now, as statements carry it.
fn minutes_ago(minutes: i64) -> Timestamp {
    Timestamp::from_datetime_truncated(chrono::Utc::now() - chrono::Duration::minutes(minutes))
}

/// What the test knows of a document from the statements it submitted.
#[derive(Debug, Clone)]
struct Known {
    doc: TransportDocument,
    /// Everyone named in the document or its chain.
    parties: BTreeSet<String>,
    last_action: Action,
}

impl Known {
    fn status(&self) -> &'static str {
        match self.last_action {
            Action::Void => "VOID",
            Action::Sacc => "SURRENDERED_FOR_DELIVERY",
            _ => "ACTIVE",
        }
    }

    fn search_text(&self) -> String {
        let d = &self.doc;
        let mut words = vec![
            d.reference().to_string(),
            d.vessel_name().to_owned(),
            d.voyage_number().to_owned(),
        ];
        words.extend(d.container_numbers().iter().map(|c| c.as_str().to_owned()));
        words.extend(d.named_parties().iter().map(ToString::to_string));
        words.join(" ").to_lowercase()
    }
}

/// The documents of `transitions` (in the order they were accepted).
fn known(transitions: &[String]) -> Result<BTreeMap<String, Known>> {
    let mut docs: BTreeMap<String, Known> = BTreeMap::new();
    for jws in transitions {
        let t = SignedTransition::parse(jws)?;
        let p = t.payload();
        let reference = p.document_reference().to_string();
        if let Some(doc) = p.transport_document() {
            docs.insert(
                reference.clone(),
                Known {
                    doc: doc.clone(),
                    parties: doc
                        .named_parties()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    last_action: p.action(),
                },
            );
        }
        let known = docs
            .get_mut(&reference)
            .context("a transition before its ISSUE")?;
        known.parties.insert(p.actor().to_string());
        known.parties.extend(p.recipient().map(ToString::to_string));
        known.last_action = p.action();
    }
    Ok(docs)
}

/// The ports of each customs authority of the fixtures.
fn customs_ports() -> Result<BTreeMap<String, Vec<String>>> {
    let parties: Value = serde_json::from_str(&std::fs::read_to_string(
        lading_e2e::harness::repo_root().join("fixtures/parties.json"),
    )?)?;
    let list = parties["parties"]
        .as_array()
        .or(parties.as_array())
        .context("parties.json lists no parties")?
        .clone();
    Ok(list
        .iter()
        .filter(|p| p["role"] == "customs_authority")
        .map(|p| {
            let ports = p["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (p["id"].as_str().unwrap_or_default().to_owned(), ports)
        })
        .collect())
}

/// The references `party` may read: named in the document or its chain, or the customs
/// authority of its port of loading or discharge.
fn entitled(
    docs: &BTreeMap<String, Known>,
    customs: &BTreeMap<String, Vec<String>>,
    party: &str,
) -> BTreeSet<String> {
    let ports = customs.get(party).cloned().unwrap_or_default();
    docs.iter()
        .filter(|(_, k)| {
            k.parties.contains(party)
                || ports.iter().any(|p| {
                    p == k.doc.port_of_loading().as_str() || p == k.doc.port_of_discharge().as_str()
                })
        })
        .map(|(r, _)| r.clone())
        .collect()
}

/// A client of the registry for one party.
struct Api<'a> {
    client: &'a reqwest::Client,
    server: &'a Server,
    documents: jsonschema::Validator,
    events: jsonschema::Validator,
    problem: jsonschema::Validator,
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) -> Result<()> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    ensure!(errors.is_empty(), "{what}: {errors:?} in {instance}");
    Ok(())
}

impl<'a> Api<'a> {
    fn new(client: &'a reqwest::Client, server: &'a Server) -> Result<Self> {
        Ok(Self {
            client,
            server,
            documents: validator("document-list.json")?,
            events: validator("event-list.json")?,
            problem: validator("problem.json")?,
        })
    }

    /// `GET path` as `party`: the status, the headers and the JSON body (`null` for none).
    async fn get(
        &self,
        party: &str,
        path: &str,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value)> {
        let response = self
            .client
            .get(self.server.url(path))
            .bearer_auth(token(party)?)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, headers, body))
    }

    /// One page of `what` (`documents` or `events`), checked against its schema and headers.
    async fn page(
        &self,
        party: &str,
        what: &str,
        query: &str,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let (status, headers, body) = self.get(party, &format!("/v1/{what}?{query}")).await?;
        ensure!(
            status == StatusCode::OK,
            "{what}?{query} as {party}: {status} {body}"
        );
        assert_eq!(
            headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("private, no-store"),
            "an entitled read is kept by no shared cache"
        );
        let schema = if what == "documents" {
            &self.documents
        } else {
            &self.events
        };
        assert_valid(schema, &body, what)?;
        let items = body[what].as_array().context("no list")?.clone();
        Ok((items, body["next"].as_str().map(str::to_owned)))
    }

    /// Every page of `what` for `query`, `limit` at a time: each page newest first, continuing
    /// where the last ended.
    async fn walk(&self, party: &str, what: &str, query: &str, limit: u32) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut q = format!("{query}&limit={limit}");
            if let Some(c) = &cursor {
                q += &format!("&cursor={c}");
            }
            let (items, next) = self.page(party, what, &q).await?;
            ensure!(
                items.len() <= limit as usize,
                "a page longer than its limit"
            );
            ensure!(
                next.is_none() || items.len() == limit as usize,
                "a short page with a next cursor"
            );
            all.extend(items);
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(all),
            }
        }
        bail!("{what}?{query} never ended")
    }

    /// The references of every document `party` finds with `query`, in the order listed
    /// (checked: newest change first, none twice).
    async fn references(&self, party: &str, query: &str) -> Result<Vec<String>> {
        let items = self.walk(party, "documents", query, 4).await?;
        let keys: Vec<(i64, String)> = items
            .iter()
            .map(|d| {
                (
                    d["headIndex"].as_i64().unwrap_or(-1),
                    d["reference"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        ensure!(
            keys.windows(2).all(|w| w[0] > w[1]),
            "not newest change first: {keys:?}"
        );
        Ok(keys.into_iter().map(|(_, r)| r).collect())
    }

    async fn found(&self, party: &str, query: &str) -> Result<BTreeSet<String>> {
        let listed = self.references(party, query).await?;
        let set: BTreeSet<String> = listed.iter().cloned().collect();
        ensure!(set.len() == listed.len(), "listed twice: {listed:?}");
        Ok(set)
    }

    /// `GET path` must be refused with problem+json `code` and `status`.
    async fn refused(&self, party: &str, path: &str, status: StatusCode, code: &str) -> Result<()> {
        let (got, headers, body) = self.get(party, path).await?;
        ensure!(
            got == status,
            "{path}: {got} {body}, expected {status} {code}"
        );
        assert_eq!(
            headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
        assert_valid(&self.problem, &body, path)?;
        ensure!(body["code"] == code, "{path}: {body}, expected {code}");
        Ok(())
    }
}

/// ACME<i>: issued by carrier-oceanic to shipper-acme, consigned to consignee-delta.
fn acme_documents(
    signer: &Signer,
    from: u64,
    count: u64,
) -> Result<Vec<(TransportDocument, String)>> {
    (from..from + count)
        .map(|i| {
            let doc = sample_document(
                &format!("ACME{i:04}"),
                "carrier-oceanic",
                ACME,
                Some("consignee-delta"),
                false,
                i,
            )?;
            let issue = signer.issue(&doc, ACME, minutes_ago(600 - i as i64))?;
            Ok((doc, issue))
        })
        .collect()
}

/// Every filter of `GET /v1/documents` and `GET /v1/events`, for parties with different
/// entitlements, against what the test submitted; the refusals; and that nothing a party may
/// not see shapes what it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_events_are_found_by_every_filter_and_only_by_those_entitled() -> Result<()> {
    let (_db, tls, server) = start().await?;
    let client = tls.client()?;
    let api = Api::new(&client, &server)?;
    let samples = Samples::load()?;
    let signer = Signer::new()?;

    let mut transitions: Vec<String> = samples
        .chains
        .iter()
        .flat_map(|c| c.transitions.iter().cloned())
        .collect();
    transitions.extend(acme_documents(&signer, 0, 12)?.into_iter().map(|(_, i)| i));
    for i in 0..4u64 {
        let doc = sample_document(
            &format!("BORE{i:04}"),
            "carrier-polaris",
            "shipper-borealis",
            Some("consignee-delta"),
            false,
            1000 + i,
        )?;
        transitions.push(signer.issue(&doc, "shipper-borealis", minutes_ago(300))?);
    }
    submit_all(&client, &server, &transitions).await?;
    submit_events(&client, &server, &samples.events).await?;
    let docs = known(&transitions)?;
    let customs = customs_ports()?;

    // Entitlement: each party finds exactly the documents it may read, whatever the page size.
    for party in [
        ACME,
        "shipper-borealis",
        "consignee-delta",
        "forwarder-swift",
        "bank-harbour",
        "carrier-polaris",
        "customs-nl",
        "customs-us",
    ] {
        let expected = entitled(&docs, &customs, party);
        assert!(!expected.is_empty(), "{party} should see something");
        assert_eq!(api.found(party, "").await?, expected, "{party}");
        let (one_page, next) = api.page(party, "documents", "limit=200").await?;
        assert!(next.is_none());
        let one_page: Vec<String> = one_page
            .iter()
            .map(|d| d["reference"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            one_page,
            api.references(party, "").await?,
            "{party}: pages agree"
        );
    }
    let mine = entitled(&docs, &customs, ACME);
    let expect = |f: &dyn Fn(&Known) -> bool| -> BTreeSet<String> {
        mine.iter().filter(|r| f(&docs[*r])).cloned().collect()
    };

    // Each filter, as shipper-acme.
    let sample_doc = &docs["OCNL2026000101"].doc;
    let acme_doc = &docs["ACME0003"].doc;
    let container = acme_doc.container_numbers()[0].as_str().to_owned();
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("state=VOID".into(), expect(&|k| k.status() == "VOID")),
        ("state=ACTIVE".into(), expect(&|k| k.status() == "ACTIVE")),
        (
            "state=SURRENDERED_FOR_DELIVERY".into(),
            expect(&|k| k.status() == "SURRENDERED_FOR_DELIVERY"),
        ),
        (
            "role=shipper".into(),
            expect(&|k| k.doc.shipper().as_str() == ACME),
        ),
        ("role=carrier".into(), BTreeSet::new()),
        (
            format!(
                "vessel={}",
                encode(&sample_doc.vessel_name().to_uppercase())
            ),
            expect(&|k| {
                k.doc
                    .vessel_name()
                    .eq_ignore_ascii_case(sample_doc.vessel_name())
            }),
        ),
        (
            format!("voyage={}", encode(acme_doc.voyage_number())),
            expect(&|k| k.doc.voyage_number() == acme_doc.voyage_number()),
        ),
        (
            "pol=NLRTM".into(),
            expect(&|k| k.doc.port_of_loading().as_str() == "NLRTM"),
        ),
        (
            "pod=USNYC".into(),
            expect(&|k| k.doc.port_of_discharge().as_str() == "USNYC"),
        ),
        (
            "pol=NLRTM&pod=USNYC&role=shipper".into(),
            expect(&|k| {
                k.doc.port_of_loading().as_str() == "NLRTM"
                    && k.doc.port_of_discharge().as_str() == "USNYC"
                    && k.doc.shipper().as_str() == ACME
            }),
        ),
        (
            format!("container={container}"),
            expect(&|k| {
                k.doc
                    .container_numbers()
                    .iter()
                    .any(|c| c.as_str() == container)
            }),
        ),
        (
            "party=forwarder-swift".into(),
            expect(&|k| k.parties.contains("forwarder-swift")),
        ),
        (
            "q=ATLANTIC".into(),
            expect(&|k| k.search_text().contains("atlantic")),
        ),
        (
            "q=acme000%20oceanic".into(),
            expect(&|k| {
                let text = k.search_text();
                text.contains("acme000") && text.contains("oceanic")
            }),
        ),
        ("q=100%25".into(), BTreeSet::new()),
        ("updatedSince=2999-01-01T00:00:00Z".into(), BTreeSet::new()),
        ("updatedSince=2000-01-01T00:00:00Z".into(), mine.clone()),
    ];
    for (query, expected) in &cases {
        assert_eq!(&api.found(ACME, query).await?, expected, "{query}");
    }
    assert!(cases.iter().filter(|(_, e)| !e.is_empty()).count() >= 12);

    // Roles of other parties.
    assert_eq!(
        api.found("consignee-delta", "role=consignee").await?,
        entitled(&docs, &customs, "consignee-delta")
            .into_iter()
            .filter(|r| docs[r]
                .doc
                .consignee()
                .is_some_and(|c| c.as_str() == "consignee-delta"))
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        api.found("forwarder-swift", "role=notify").await?,
        BTreeSet::from(["OCNL2026000101".to_owned()])
    );
    assert_eq!(
        api.found("carrier-polaris", "role=carrier").await?,
        docs.iter()
            .filter(|(_, k)| k.doc.carrier().as_str() == "carrier-polaris")
            .map(|(r, _)| r.clone())
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        api.found("customs-nl", "role=customs").await?,
        entitled(&docs, &customs, "customs-nl")
    );
    let (all_of_swift, _) = api
        .page("forwarder-swift", "documents", "limit=200")
        .await?;
    let possessed: BTreeSet<String> = all_of_swift
        .iter()
        .filter(|d| d["possessor"] == "forwarder-swift")
        .map(|d| d["reference"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(possessed, BTreeSet::from(["PLRS2026000202".to_owned()]));
    assert_eq!(
        api.found("forwarder-swift", "role=possessor").await?,
        possessed
    );

    // Nothing about a document one may not read: its container, reference, vessel or parties
    // find nothing for another party.
    for query in [
        format!("container={container}"),
        "q=acme0003".to_owned(),
        format!("vessel={}", encode(acme_doc.vessel_name())),
        "party=shipper-acme".to_owned(),
    ] {
        let found = api.found("shipper-borealis", &query).await?;
        assert!(
            found.iter().all(|r| !r.starts_with("ACME")),
            "{query} showed shipper-borealis {found:?}"
        );
    }

    // Refusals.
    for (query, code) in [
        ("state=LOST", "bad_filter"),
        ("role=captain", "bad_filter"),
        ("pol=rotterdam", "bad_filter"),
        ("container=ABCD1234567", "bad_filter"),
        ("party=Not%20A%20Party", "bad_filter"),
        ("updatedSince=yesterday", "bad_filter"),
        ("limit=0", "bad_filter"),
        ("limit=201", "bad_filter"),
        ("limit=many", "bad_query"),
        ("q=a%20b%20c%20d%20e%20f%20g%20h%20i", "bad_filter"),
        ("cursor=zz", "bad_cursor"),
        ("cursor=6431", "bad_cursor"),
        ("colour=red", "bad_query"),
    ] {
        api.refused(
            ACME,
            &format!("/v1/documents?{query}"),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await?;
    }
    // A cursor of the events is no cursor of the documents, and the other way round.
    let (_, event_cursor) = api.page(ACME, "events", "limit=1").await?;
    let event_cursor = event_cursor.context("more than one event")?;
    api.refused(
        ACME,
        &format!("/v1/documents?cursor={event_cursor}"),
        StatusCode::BAD_REQUEST,
        "bad_cursor",
    )
    .await?;
    let (_, document_cursor) = api.page(ACME, "documents", "limit=1").await?;
    let document_cursor = document_cursor.context("more than one document")?;
    api.refused(
        ACME,
        &format!("/v1/events?cursor={document_cursor}"),
        StatusCode::BAD_REQUEST,
        "bad_cursor",
    )
    .await?;
    for (query, code) in [
        ("eventCode=SAIL", "bad_filter"),
        ("location=nowhere", "bad_filter"),
        ("since=soon", "bad_filter"),
        ("document=%20", "bad_filter"),
        ("limit=0", "bad_filter"),
        ("colour=red", "bad_query"),
    ] {
        api.refused(
            ACME,
            &format!("/v1/events?{query}"),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await?;
    }
    let anonymous = client.get(server.url("/v1/documents")).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let anonymous = client.get(server.url("/v1/events")).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // /v1/events takes GET (the search) and POST (a submission), nothing else.
    let wrong_method = client.put(server.url("/v1/events")).send().await?;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );

    // Events: a party's own, and those of documents it may read; newest first.
    let events: Vec<SignedEvent> = samples
        .events
        .iter()
        .map(|e| SignedEvent::parse(e))
        .collect::<Result<_, _>>()?;
    let event_of = |jws: &str| events.iter().position(|e| e.as_str() == jws);
    for party in [
        ACME,
        "carrier-oceanic",
        "customs-sg",
        "shipper-borealis",
        "bank-harbour",
    ] {
        let readable = entitled(&docs, &customs, party);
        let expected: Vec<&str> = samples
            .events
            .iter()
            .zip(&events)
            .filter(|(_, e)| {
                let e = e.event();
                e.actor().as_str() == party
                    || e.document_reference()
                        .is_some_and(|d| readable.contains(d.as_str()))
            })
            .map(|(jws, _)| jws.as_str())
            .rev()
            .collect();
        let listed = api.walk(party, "events", "", 3).await?;
        let indexes: Vec<i64> = listed
            .iter()
            .map(|e| e["index"].as_i64().unwrap_or(-1))
            .collect();
        assert!(
            indexes.windows(2).all(|w| w[0] > w[1]),
            "{party}: newest first"
        );
        let listed: Vec<&str> = listed
            .iter()
            .map(|e| e["signed"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(listed, expected, "{party}'s events");
        assert!(listed.iter().all(|e| event_of(e).is_some()));
    }
    // The event tied only to a container is its actor's alone.
    let gtot = "eventCode=GTOT";
    assert_eq!(
        api.walk("carrier-oceanic", "events", gtot, 5).await?.len(),
        1
    );
    assert_eq!(api.walk(ACME, "events", gtot, 5).await?.len(), 0);
    // Each event filter, as carrier-oceanic (entitled to all of its documents' events).
    let oceanic = entitled(&docs, &customs, "carrier-oceanic");
    let oceanic_events: Vec<&SignedEvent> = events
        .iter()
        .filter(|e| {
            let e = e.event();
            e.actor().as_str() == "carrier-oceanic"
                || e.document_reference()
                    .is_some_and(|d| oceanic.contains(d.as_str()))
        })
        .collect();
    type EventFilter<'f> = (&'f str, Box<dyn Fn(&SignedEvent) -> bool>);
    let filters: Vec<EventFilter> = vec![
        (
            "eventCode=LOAD",
            Box::new(|e| e.event().event_code().as_str() == "LOAD"),
        ),
        (
            "document=OCNL2026000102",
            Box::new(|e| {
                e.event()
                    .document_reference()
                    .is_some_and(|d| d.as_str() == "OCNL2026000102")
            }),
        ),
        (
            "container=CSQU3054383",
            Box::new(|e| {
                e.event()
                    .equipment_reference()
                    .is_some_and(|c| c.as_str() == "CSQU3054383")
            }),
        ),
        (
            "location=SGSIN",
            Box::new(|e| e.event().location().as_str() == "SGSIN"),
        ),
        (
            "actor=customs-us",
            Box::new(|e| e.event().actor().as_str() == "customs-us"),
        ),
        (
            "location=NLRTM&eventCode=LOAD",
            Box::new(|e| {
                e.event().location().as_str() == "NLRTM"
                    && e.event().event_code().as_str() == "LOAD"
            }),
        ),
        ("since=2999-01-01T00:00:00Z", Box::new(|_| false)),
        ("since=2000-01-01T00:00:00Z", Box::new(|_| true)),
    ];
    for (query, keep) in &filters {
        let expected: BTreeSet<&str> = oceanic_events
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.as_str())
            .collect();
        let listed = api.walk("carrier-oceanic", "events", query, 2).await?;
        let listed: BTreeSet<&str> = listed
            .iter()
            .map(|e| e["signed"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(listed, expected, "events?{query}");
    }
    Ok(())
}

/// Pages walked while transitions and issues land between them: no document twice, every
/// document that did not change exactly once, a document that changed after the walk passed it
/// once, one that changed before the walk reached it not at all, and the next walk from the
/// start finds the changed ones first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_through_pages_under_concurrent_transitions_lists_no_document_twice_and_skips_none_unchanged(
) -> Result<()> {
    let (_db, tls, server) = start().await?;
    let client = tls.client()?;
    let api = Api::new(&client, &server)?;
    let signer = Signer::new()?;
    let issued = acme_documents(&signer, 0, 30)?;
    let issues: Vec<String> = issued.iter().map(|(_, i)| i.clone()).collect();
    submit_all(&client, &server, &issues).await?;
    let transfer = |i: usize| {
        let (doc, issue) = &issued[i];
        signer.next(
            doc,
            issue,
            Action::Transfer,
            ACME,
            Some("consignee-delta"),
            minutes_ago(0),
        )
    };

    // ACME0029 is the newest: the walk lists ACME0029 down to ACME0000, 4 a page.
    let mut listed: Vec<String> = Vec::new();
    let mut changed_after_seen: Vec<String> = Vec::new();
    let mut changed_before_reached: Vec<String> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    let mut new_ones = 30u64;
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let mut query = "limit=4".to_owned();
        if let Some(c) = &cursor {
            query += &format!("&cursor={c}");
        }
        let (items, next) = api.page(ACME, "documents", &query).await?;
        listed.extend(
            items
                .iter()
                .map(|d| d["reference"].as_str().unwrap_or_default().to_owned()),
        );
        let Some(next) = next else { break };
        cursor = Some(next);
        // Between pages: a document just listed changes, one not reached yet changes, and a new
        // one is issued.
        let seen = &listed[listed.len() - 1];
        let seen_i: usize = seen.trim_start_matches("ACME").parse()?;
        let mut batch = vec![transfer(seen_i)?];
        changed_after_seen.push(seen.clone());
        changes.push(seen.clone());
        if page < 3 {
            // The oldest documents, which the walk reaches last.
            let ahead = page as usize;
            batch.push(transfer(ahead)?);
            changed_before_reached.push(format!("ACME{ahead:04}"));
            changes.push(format!("ACME{ahead:04}"));
        }
        let (_, issue) = acme_documents(&signer, new_ones, 1)?.remove(0);
        batch.push(issue);
        changes.push(format!("ACME{new_ones:04}"));
        new_ones += 1;
        submit_all(&client, &server, &batch).await?;
        ensure!(page < 100, "the walk never ended");
    }

    let set: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        set.len(),
        listed.len(),
        "a document listed twice: {listed:?}"
    );
    let unchanged: BTreeSet<String> = (0..30)
        .map(|i| format!("ACME{i:04}"))
        .filter(|r| !changes.contains(r))
        .collect();
    let expected: BTreeSet<String> = unchanged
        .iter()
        .chain(&changed_after_seen)
        .cloned()
        .collect();
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        listed_set, expected,
        "every unchanged document once, and those changed after the walk passed them"
    );
    for r in &changed_before_reached {
        assert!(!listed_set.contains(r), "{r} changed before it was reached");
    }
    assert!(!unchanged.is_empty() && !changed_before_reached.is_empty());

    // The next walk finds everything once, the documents changed during the first walk first,
    // the last change first.
    let again = api.references(ACME, "").await?;
    assert_eq!(again.len(), new_ones as usize);
    let changes_newest_first: Vec<String> = changes.iter().rev().cloned().collect();
    assert_eq!(again[..changes.len()], changes_newest_first[..]);
    Ok(())
}

/// `GET /v1/documents/{reference}` and its chain carry an ETag and answer a matching
/// `If-None-Match` with 304 — to a party that may read the document; any other gets the same
/// 404 as for no document at all. Every entitled read is `Cache-Control: private, no-store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_reads_carry_an_etag_and_answer_if_none_match_with_304_only_to_those_entitled(
) -> Result<()> {
    let (_db, tls, server) = start().await?;
    let client = tls.client()?;
    let api = Api::new(&client, &server)?;
    let signer = Signer::new()?;
    let (doc, issue) = acme_documents(&signer, 0, 1)?.remove(0);
    submit_all(&client, &server, std::slice::from_ref(&issue)).await?;
    let reference = doc.reference().to_string();
    let get = |party: &'static str, path: String, tag: Option<String>| {
        let client = &client;
        let url = server.url(&path);
        async move {
            let mut request = client.get(url).bearer_auth(token(party)?);
            if let Some(tag) = tag {
                request = request.header(IF_NONE_MATCH, tag);
            }
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, anyhow::Error>((status, headers, body))
        }
    };
    let header = |h: &reqwest::header::HeaderMap, name| {
        h.get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };

    for path in [
        format!("/v1/documents/{reference}"),
        format!("/v1/documents/{reference}/transitions"),
    ] {
        let (status, headers, _) = get(ACME, path.clone(), None).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            header(&headers, CACHE_CONTROL).as_deref(),
            Some("private, no-store")
        );
        let etag = header(&headers, ETAG).context("no ETag")?;
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        for matching in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".into(),
        ] {
            let (status, headers, body) = get(ACME, path.clone(), Some(matching.clone())).await?;
            assert_eq!(
                status,
                StatusCode::NOT_MODIFIED,
                "{path} If-None-Match: {matching}"
            );
            assert!(body.is_empty());
            assert_eq!(header(&headers, ETAG), Some(etag.clone()));
            assert_eq!(
                header(&headers, CACHE_CONTROL).as_deref(),
                Some("private, no-store")
            );
        }
        let (status, _, _) = get(ACME, path.clone(), Some("\"other\"".into())).await?;
        assert_eq!(status, StatusCode::OK);
        // Another party learns nothing, not even that its tag would match.
        let (status, _, body) = get("shipper-borealis", path.clone(), Some(etag.clone())).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&body)?;
        assert_eq!(body["code"], "not_found");
        let (status, _, _) = get("shipper-borealis", path.clone(), Some("*".into())).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, headers, _) = get(ACME, format!("/v1/documents/{reference}"), None).await?;
    let document_tag = header(&headers, ETAG).context("no ETag")?;
    let (_, headers, _) = get(ACME, format!("/v1/documents/{reference}/transitions"), None).await?;
    let chain_tag = header(&headers, ETAG).context("no ETag")?;
    assert_ne!(document_tag, chain_tag, "two resources, two tags");
    // The list names the same head.
    let (list, _) = api.page(ACME, "documents", "").await?;
    assert_eq!(
        format!(
            "\"{}\"",
            list[0]["headChecksum"].as_str().unwrap_or_default()
        ),
        document_tag
    );

    // A transition changes both tags: the old one no longer matches.
    let next = signer.next(
        &doc,
        &issue,
        Action::Transfer,
        ACME,
        Some("consignee-delta"),
        minutes_ago(0),
    )?;
    submit_all(&client, &server, &[next]).await?;
    let (status, headers, body) = get(
        ACME,
        format!("/v1/documents/{reference}"),
        Some(document_tag.clone()),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let new_tag = header(&headers, ETAG).context("no ETag")?;
    assert_ne!(new_tag, document_tag);
    let body: Value = serde_json::from_slice(&body)?;
    assert_eq!(
        format!("\"{}\"", body["headChecksum"].as_str().unwrap_or_default()),
        new_tag
    );
    let (status, _, _) = get(
        ACME,
        format!("/v1/documents/{reference}/transitions"),
        Some(chain_tag),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);

    // The events of a document are an entitled read too.
    let (status, headers, _) = get(ACME, format!("/v1/documents/{reference}/events"), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, CACHE_CONTROL).as_deref(),
        Some("private, no-store")
    );
    Ok(())
}
