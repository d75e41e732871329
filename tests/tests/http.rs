//! End-to-end tests of the registry's HTTP face: a real `lading serve` process on a throwaway
//! PostgreSQL database, reached over real TLS with a client that trusts only the test
//! certificate.
//!
//! Every test starts its own registry, so tests are independent and may run in parallel.
//! Nothing waits for a fixed time: where the registry works in the background (checkpoints),
//! the tests poll with a deadline.
//!

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt as _;
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, ConsistencyProof, InclusionProof,
};
use lading_domain::{canonicalize, CompactJws, Digest, Jwk, SigningKey, EVENT_TYP, TRANSITION_TYP};
use lading_e2e::gen::{fixtures_dir, FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use lading_e2e::schemas::validator;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const JOSE: &str = "application/jose";
const PROBLEM_JSON: &str = "application/problem+json";

// ---------------------------------------------------------------------------------------------
// A registry under test
// ---------------------------------------------------------------------------------------------

/// One running registry with its database and TLS material. Fields drop in order: the
/// process stops before its database is dropped.
struct Registry {
    server: Server,
    tls: Tls,
    _db: TestDb,
    client: Client,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    /// The body as JSON (`Null` when it is not JSON).
    body: Value,
}

impl Answer {
    /// The essence of the Content-Type (no parameters), lowercased.
    fn media_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }
}

impl Registry {
    async fn start() -> Result<Self> {
        Self::start_with(ServerOptions::default()).await
    }

    /// [`Registry::start`] with other settings.
    async fn start_with(options: ServerOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || -> Result<Self> {
            let db = TestDb::new()?;
            let tls = Tls::new()?;
            let server = Server::start(&db, &tls, options)?;
            let client = tls.client()?;
            Ok(Self {
                server,
                tls,
                _db: db,
                client,
            })
        })
        .await?
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    async fn read(response: reqwest::Response) -> Result<Answer> {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            text,
            body,
        })
    }

    /// POSTs `body` with `content_type` (none when `None`).
    async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer> {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        Self::read(request.send().await?).await
    }

    /// `POST /v1/transitions` with one compact JWS.
    async fn submit(&self, jws: &str) -> Result<Answer> {
        self.post("/v1/transitions", Some(JOSE), jws.to_owned())
            .await
    }

    /// `POST /v1/events` with one compact JWS.
    async fn submit_event(&self, jws: &str) -> Result<Answer> {
        self.post("/v1/events", Some(JOSE), jws.to_owned()).await
    }

    /// `POST /v1/transitions/batch` with a JSON array.
    async fn submit_batch(&self, items: &[String]) -> Result<Answer> {
        self.post(
            "/v1/transitions/batch",
            Some("application/json"),
            serde_json::to_vec(items)?,
        )
        .await
    }

    /// GET with the bearer token of `party` (no Authorization header when `None`).
    async fn get_as(&self, path: &str, party: Option<&str>) -> Result<Answer> {
        let mut request = self.client.get(self.url(path));
        if let Some(party) = party {
            request = request.bearer_auth(token(party)?);
        }
        Self::read(request.send().await?).await
    }

    async fn get(&self, path: &str) -> Result<Answer> {
        self.get_as(path, None).await
    }

    /// The ledger size that `/readyz` reports.
    async fn size(&self) -> Result<u64> {
        let a = self.get("/readyz").await?;
        if a.status != StatusCode::OK || a.body["status"] != "ready" {
            bail!("/readyz answered {}: {}", a.status, a.text);
        }
        a.body["size"].as_u64().context("/readyz has no size")
    }

    /// Polls `/v1/checkpoint` until it covers exactly `size` entries (10 s deadline).
    async fn checkpoint_of(&self, size: u64) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let a = self.get("/v1/checkpoint").await?;
            if a.status == StatusCode::OK && a.body["size"].as_u64() == Some(size) {
                return Ok(a.body);
            }
            if Instant::now() > deadline {
                bail!(
                    "no checkpoint of size {size} within 10 s; last answer {}: {}",
                    a.status,
                    a.text
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Submits every transition of every sample chain in order and checks each answer;
    /// returns the compact JWS of each ledger index.
    async fn submit_samples(&self, samples: &Samples) -> Result<Vec<String>> {
        let mut ledger = Vec::new();
        for chain in &samples.chains {
            for (position, jws) in chain.transitions.iter().enumerate() {
                let a = self.submit(jws).await?;
                assert_eq!(
                    a.status,
                    StatusCode::CREATED,
                    "{} #{position}: {}",
                    chain.reference,
                    a.text
                );
                assert_eq!(a.body["index"], json!(ledger.len()), "{}", a.text);
                assert_eq!(a.body["duplicate"], json!(false));
                assert_eq!(a.body["kind"], "transition");
                assert_eq!(a.body["documentReference"], chain.reference.as_str());
                assert_eq!(a.body["leafHash"], leaf_hash(jws.as_bytes()).to_hex());
                assert_eq!(a.body["state"]["head"], Digest::of(jws.as_bytes()).to_hex());
                assert_eq!(a.body["state"]["length"], json!(position + 1));
                assert_eq!(a.body["state"]["reference"], chain.reference.as_str());
                ledger.push(jws.clone());
            }
        }
        Ok(ledger)
    }
}

/// Asserts that `a` is a problem+json refusal with `status` and `code` (and `pointer`, which
/// must be absent when `None`); returns its body.
#[track_caller]
fn assert_problem(a: &Answer, status: u16, code: &str, pointer: Option<&str>) -> Value {
    assert_eq!(
        a.status.as_u16(),
        status,
        "expected {status} {code}, got {}: {}",
        a.status,
        a.text
    );
    assert_eq!(a.media_type(), PROBLEM_JSON, "{code}: {}", a.text);
    assert_eq!(a.body["code"], code, "{}", a.text);
    assert_eq!(
        a.body["type"],
        format!("urn:lading:problem:{code}"),
        "{}",
        a.text
    );
    assert_eq!(a.body["status"], json!(status), "{}", a.text);
    assert!(
        a.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{code}: no detail in {}",
        a.text
    );
    match pointer {
        Some(pointer) => assert_eq!(a.body["pointer"], pointer, "{}", a.text),
        None => assert!(
            a.body.get("pointer").is_none(),
            "{code}: unexpected pointer in {}",
            a.text
        ),
    }
    a.body.clone()
}

// ---------------------------------------------------------------------------------------------
// Fixtures and signing
// ---------------------------------------------------------------------------------------------

/// The JSON payload of a compact JWS.
fn payload_of(jws: &str) -> Result<Value> {
    let parsed = CompactJws::parse(jws).map_err(|e| anyhow!("{e}"))?;
    Ok(serde_json::from_slice(parsed.payload_bytes())?)
}

/// Signs the RFC 8785 form of `payload` under Lading's header with `typ`.
fn sign(key: &SigningKey, payload: &Value, typ: &str) -> String {
    key.sign_compact(&canonicalize(payload), typ)
}

fn fixture_json(relative: &str) -> Result<Value> {
    let path = fixtures_dir().join(relative);
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
    )?)
}

fn hex_of(jws: &str) -> String {
    Digest::of(jws.as_bytes()).to_hex()
}

// ---------------------------------------------------------------------------------------------
// 1. Sample chains: accepted in order, duplicates, reads
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_chains_are_sequenced_in_order_and_read_back() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    assert_eq!(reg.size().await?, 0);

    let ledger = reg.submit_samples(&samples).await?;
    let transitions = ledger.len() as u64;
    assert_eq!(reg.size().await?, transitions);

    // Exact resubmission: 200, same index, duplicate: true, nothing appended.
    for (index, jws) in ledger.iter().enumerate() {
        let a = reg.submit(jws).await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["index"], json!(index));
        assert_eq!(a.body["duplicate"], json!(true));
        assert_eq!(a.body["leafHash"], leaf_hash(jws.as_bytes()).to_hex());
        assert_eq!(a.body["kind"], "transition");
        // Surrounding whitespace is not part of the JWS: still the same entry.
        let a = reg.submit(&format!("\n{jws} \r\n")).await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["index"], json!(index));
    }
    assert_eq!(reg.size().await?, transitions);

    // (reference, status, possessor) after each whole chain.
    let finals = [
        (
            "OCNL2026000101",
            "SURRENDERED_FOR_DELIVERY",
            "carrier-oceanic",
        ),
        (
            "OCNL2026000102",
            "SURRENDERED_FOR_DELIVERY",
            "carrier-oceanic",
        ),
        ("PLRS2026000201", "VOID", "carrier-polaris"),
        ("PLRS2026000202", "ACTIVE", "forwarder-swift"),
        ("OCNL2026000103", "ACTIVE", "consignee-delta"),
    ];
    assert_eq!(finals.len(), samples.chains.len());
    let mut first_index = 0usize;
    for chain in &samples.chains {
        let (_, status, possessor) = finals
            .iter()
            .find(|(r, _, _)| *r == chain.reference)
            .with_context(|| format!("no expected final state for {}", chain.reference))?;
        let issue = payload_of(&chain.transitions[0])?;
        let carrier = issue["actor"].as_str().context("no actor")?;
        let last = chain.transitions.last().context("empty chain")?;
        let head_index = first_index + chain.transitions.len() - 1;

        let doc = reg
            .get_as(&format!("/v1/documents/{}", chain.reference), Some(carrier))
            .await?;
        assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
        assert_eq!(doc.body["reference"], chain.reference.as_str());
        assert_eq!(doc.body["state"]["status"], *status, "{}", doc.text);
        assert_eq!(doc.body["state"]["possessor"], *possessor);
        assert_eq!(doc.body["possessor"], *possessor);
        assert_eq!(doc.body["state"]["length"], json!(chain.transitions.len()));
        assert_eq!(doc.body["state"]["head"], hex_of(last));
        assert_eq!(doc.body["headChecksum"], hex_of(last));
        assert_eq!(doc.body["headIndex"], json!(head_index));
        assert_eq!(doc.body["issuedIndex"], json!(first_index));
        assert_eq!(doc.body["documentChecksum"], issue["documentChecksum"]);
        // The document as issued: same canonical form, so the same checksum.
        let read_back = canonicalize(&doc.body["transportDocument"]);
        assert_eq!(
            String::from_utf8_lossy(&read_back),
            String::from_utf8_lossy(&canonicalize(&issue["transportDocument"]))
        );
        assert_eq!(
            Digest::of(&read_back).to_hex(),
            issue["documentChecksum"].as_str().unwrap_or_default()
        );

        let read = reg
            .get_as(
                &format!("/v1/documents/{}/transitions", chain.reference),
                Some(carrier),
            )
            .await?;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        assert_eq!(read.body["reference"], chain.reference.as_str());
        let entries = read.body["transitions"]
            .as_array()
            .context("no transitions")?;
        let signed: Vec<&str> = entries
            .iter()
            .filter_map(|e| e["signed"].as_str())
            .collect();
        assert_eq!(
            signed,
            chain
                .transitions
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        for (position, (entry, jws)) in entries.iter().zip(&chain.transitions).enumerate() {
            let payload = payload_of(jws)?;
            assert_eq!(entry["index"], json!(first_index + position));
            assert_eq!(entry["checksum"], hex_of(jws));
            assert_eq!(entry["leafHash"], leaf_hash(jws.as_bytes()).to_hex());
            assert_eq!(entry["action"], payload["action"]);
            assert_eq!(entry["actor"], payload["actor"]);
            assert_eq!(entry.get("recipient"), payload.get("recipient"));
            assert_eq!(
                entry.get("previousChecksum"),
                payload.get("previousTransitionChecksum")
            );
        }
        first_index += chain.transitions.len();
    }

    // Events: accepted after the chains, read back per document in ledger order.
    let mut by_document: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for (n, jws) in samples.events.iter().enumerate() {
        let a = reg.submit_event(jws).await?;
        assert_eq!(a.status, StatusCode::CREATED, "event {n}: {}", a.text);
        let index = transitions + n as u64;
        assert_eq!(a.body["index"], json!(index));
        assert_eq!(a.body["kind"], "event");
        assert_eq!(a.body["duplicate"], json!(false));
        assert!(
            a.body.get("state").is_none(),
            "an event has no document state: {}",
            a.text
        );
        let payload = payload_of(jws)?;
        assert_eq!(
            a.body.get("documentReference"),
            payload.get("documentReference")
        );
        if let Some(reference) = payload["documentReference"].as_str() {
            by_document
                .entry(reference.to_owned())
                .or_default()
                .push((index, jws.clone()));
        }
        let again = reg.submit_event(jws).await?;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.body["index"], json!(index));
        assert_eq!(again.body["duplicate"], json!(true));
    }
    assert_eq!(reg.size().await?, transitions + samples.events.len() as u64);
    for (reference, expected) in &by_document {
        let carrier = payload_of(&samples.chain(reference)?.transitions[0])?["actor"]
            .as_str()
            .context("no actor")?
            .to_owned();
        let read = reg
            .get_as(&format!("/v1/documents/{reference}/events"), Some(&carrier))
            .await?;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        let events = read.body["events"].as_array().context("no events")?;
        let got: Vec<(u64, String)> = events
            .iter()
            .map(|e| {
                Ok((
                    e["index"].as_u64().context("no index")?,
                    e["signed"].as_str().context("no signed")?.to_owned(),
                ))
            })
            .collect::<Result<_>>()?;
        assert_eq!(&got, expected, "events of {reference}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Refusals: status, media type, code, type, pointer; nothing reaches the ledger
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_problem_json_and_leaves_the_ledger_unchanged() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let samples = Samples::load()?;
    let chain = samples.chain("OCNL2026000101")?;
    // ISSUE to shipper-acme, TRANSFER to consignee-delta: the ledger the refusals run against.
    for jws in &chain.transitions[..2] {
        let a = reg.submit(jws).await?;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let size = reg.size().await?;
    assert_eq!(size, 2);
    let issue = &chain.transitions[0];
    let head = &chain.transitions[1];
    // The next valid transition: consignee-delta surrenders for delivery.
    let next = &chain.transitions[2];
    let next_payload = payload_of(next)?;
    let delta = parties.signer("consignee-delta")?;
    let acme = parties.signer("shipper-acme")?;
    let oceanic = parties.signer("carrier-oceanic")?;

    // --- Body and media type ------------------------------------------------------------
    let a = reg
        .post("/v1/transitions", Some("application/json"), next.clone())
        .await?;
    assert_problem(&a, 415, "unsupported_media_type", None);
    let a = reg.post("/v1/transitions", None, next.clone()).await?;
    assert_problem(&a, 415, "unsupported_media_type", None);
    let a = reg
        .post("/v1/events", Some("text/plain"), samples.events[0].clone())
        .await?;
    assert_problem(&a, 415, "unsupported_media_type", None);
    // (A parameter on the right media type is fine: the 201 at the end of this test.)

    let a = reg
        .post("/v1/transitions", Some(JOSE), vec![b'a'; (1 << 20) + 1])
        .await?;
    assert_problem(&a, 413, "body_too_large", None);

    // --- Unparsable: 400 ----------------------------------------------------------------
    for garbage in [
        "",
        "this is not a JWS",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        &format!("{next}.x"),
    ] {
        let a = reg.submit(garbage).await?;
        assert_problem(&a, 400, "malformed_jws", None);
    }
    let a = reg
        .post("/v1/transitions", Some(JOSE), vec![0xff, 0xfe, 0x2e])
        .await?;
    assert_problem(&a, 400, "malformed_jws", None);

    let header = json!({"alg": "HS256", "kid": "consignee-delta:test-2026", "typ": TRANSITION_TYP});
    let hs256 = delta.sign_with_header(&canonicalize(&header), &canonicalize(&next_payload));
    assert_problem(
        &reg.submit(&hs256).await?,
        400,
        "unsupported_algorithm",
        None,
    );

    // An event sent as a transition, and the other way round.
    assert_problem(
        &reg.submit(&samples.events[0]).await?,
        400,
        "wrong_type",
        None,
    );
    assert_problem(&reg.submit_event(next).await?, 400, "wrong_type", None);
    let untyped = delta.sign_with_header(
        &canonicalize(&json!({"alg": "EdDSA", "kid": "consignee-delta:test-2026"})),
        &canonicalize(&next_payload),
    );
    assert_problem(&reg.submit(&untyped).await?, 400, "wrong_type", None);
    // One signed statement, one byte form: the same header members in another order, or
    // with one more, is another form of the same signature and is refused.
    for header in [
        json!({"typ": TRANSITION_TYP, "kid": "consignee-delta:test-2026", "alg": "EdDSA"}),
        json!({"alg": "EdDSA", "kid": "consignee-delta:test-2026", "typ": TRANSITION_TYP, "x5u": "https://example.invalid"}),
    ] {
        let reordered =
            delta.sign_with_header(&serde_json::to_vec(&header)?, &canonicalize(&next_payload));
        assert_problem(
            &reg.submit(&reordered).await?,
            400,
            "non_canonical_header",
            None,
        );
    }
    let padded = json!({"alg": "EdDSA", "kid": "consignee-delta:test-2026", "typ": TRANSITION_TYP, "pad": "x".repeat(700_000)});
    let huge = delta.sign_with_header(&canonicalize(&padded), &canonicalize(&next_payload));
    assert_problem(&reg.submit(&huge).await?, 400, "header_too_large", None);

    let pretty = serde_json::to_vec_pretty(&next_payload)?;
    let non_canonical = delta.sign_compact(&pretty, TRANSITION_TYP);
    assert_problem(
        &reg.submit(&non_canonical).await?,
        400,
        "non_canonical_payload",
        None,
    );

    let mut bad = next_payload.clone();
    bad["action"] = json!("STEAL");
    assert_problem(
        &reg.submit(&sign(delta, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_payload",
        Some("/action"),
    );
    let mut bad = next_payload.clone();
    bad.as_object_mut().context("payload")?.remove("recipient");
    assert_problem(
        &reg.submit(&sign(delta, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_payload",
        Some("/recipient"),
    );
    let mut bad = next_payload.clone();
    bad["unknownMember"] = json!(1);
    assert_problem(
        &reg.submit(&sign(delta, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_payload",
        Some("/unknownMember"),
    );
    let mut bad = next_payload.clone();
    bad["reasonCode"] = Value::Null;
    assert_problem(
        &reg.submit(&sign(delta, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_payload",
        Some("/reasonCode"),
    );
    let mut bad = next_payload.clone();
    bad["time"] = json!("2026-11-02 10:00");
    assert_problem(
        &reg.submit(&sign(delta, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_payload",
        Some("/time"),
    );

    // ISSUE of a fresh document whose container number has a wrong ISO 6346 check digit.
    let fresh_issue = fixture_json("payloads/issue.json")?;
    let text = serde_json::to_string(&fresh_issue)?;
    assert_eq!(
        text.matches("OCLU4127907").count(),
        2,
        "the fixture's container moved"
    );
    let bad: Value = serde_json::from_str(&text.replace("OCLU4127907", "OCLU4127906"))?;
    assert_problem(
        &reg.submit(&sign(oceanic, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_document_field",
        Some("/transportDocument/consignmentItems/0/cargoItems/0/equipmentReference"),
    );
    let mut bad = fresh_issue.clone();
    bad["transportDocument"]["portOfLoading"] = json!("Rotterdam");
    assert_problem(
        &reg.submit(&sign(oceanic, &bad, TRANSITION_TYP)).await?,
        400,
        "invalid_document_field",
        Some("/transportDocument/portOfLoading"),
    );
    let mut bad = fresh_issue.clone();
    bad["documentChecksum"] = json!(Digest::of(b"another document").to_hex());
    assert_problem(
        &reg.submit(&sign(oceanic, &bad, TRANSITION_TYP)).await?,
        400,
        "document_checksum_mismatch",
        Some("/documentChecksum"),
    );

    // --- Keys and signatures: 422 -----------------------------------------------------------
    // consignee-delta's kid over a signature by another key.
    let impostor = SigningKey::new(
        delta.kid.clone(),
        parties.signer("carrier-polaris")?.key.clone(),
    );
    assert_problem(
        &reg.submit(&sign(&impostor, &next_payload, TRANSITION_TYP))
            .await?,
        422,
        "bad_signature",
        None,
    );
    let ghost = SigningKey::new("ghost-party:test-2026".parse()?, delta.key.clone());
    assert_problem(
        &reg.submit(&sign(&ghost, &next_payload, TRANSITION_TYP))
            .await?,
        422,
        "unknown_key",
        None,
    );
    // A registered key of another party than the payload's actor.
    assert_problem(
        &reg.submit(&sign(acme, &next_payload, TRANSITION_TYP))
            .await?,
        422,
        "key_not_actor",
        None,
    );

    // --- Ledger rules ----------------------------------------------------------------------
    // shipper-acme no longer possesses the document.
    let mut by_acme = next_payload.clone();
    by_acme["actor"] = json!("shipper-acme");
    assert_problem(
        &reg.submit(&sign(acme, &by_acme, TRANSITION_TYP)).await?,
        422,
        "not_possessor",
        None,
    );
    let mut to_self = next_payload.clone();
    to_self["recipient"] = json!("consignee-delta");
    assert_problem(
        &reg.submit(&sign(delta, &to_self, TRANSITION_TYP)).await?,
        422,
        "self_transfer",
        None,
    );
    let void = json!({
        "action": "VOID",
        "actor": "consignee-delta",
        "documentChecksum": next_payload["documentChecksum"],
        "documentReference": "OCNL2026000101",
        "previousTransitionChecksum": hex_of(head),
        "time": "2026-11-03T08:00:00.000Z",
    });
    assert_problem(
        &reg.submit(&sign(delta, &void, TRANSITION_TYP)).await?,
        422,
        "not_carrier",
        None,
    );
    let mut unknown_doc = next_payload.clone();
    unknown_doc["documentReference"] = json!("OCNL2026999999");
    assert_problem(
        &reg.submit(&sign(delta, &unknown_doc, TRANSITION_TYP))
            .await?,
        422,
        "unknown_document",
        None,
    );

    // A second ISSUE of the same reference (different bytes: a later time).
    let mut reissue = payload_of(issue)?;
    reissue["time"] = json!("2026-11-03T08:00:00.000Z");
    assert_problem(
        &reg.submit(&sign(oceanic, &reissue, TRANSITION_TYP)).await?,
        409,
        "document_exists",
        None,
    );
    let mut wrong_previous = next_payload.clone();
    wrong_previous["previousTransitionChecksum"] =
        json!(Digest::of(b"no such transition").to_hex());
    assert_problem(
        &reg.submit(&sign(delta, &wrong_previous, TRANSITION_TYP))
            .await?,
        409,
        "wrong_previous_checksum",
        None,
    );
    // shipper-acme spends the ISSUE a second time: the ISSUE already has a successor.
    let double = json!({
        "action": "SURRENDER_FOR_AMENDMENT",
        "actor": "shipper-acme",
        "documentChecksum": next_payload["documentChecksum"],
        "documentReference": "OCNL2026000101",
        "previousTransitionChecksum": hex_of(issue),
        "recipient": "carrier-oceanic",
        "time": "2026-11-03T08:00:00.000Z",
    });
    assert_problem(
        &reg.submit(&sign(acme, &double, TRANSITION_TYP)).await?,
        409,
        "double_spend",
        None,
    );

    // --- Events -----------------------------------------------------------------------------
    let hold = json!({
        "actor": "customs-us",
        "documentReference": "OCNL2026000101",
        "eventCode": "HOLD",
        "eventId": "customs-us-e2e-0001",
        "eventKind": "CUSTOMS",
        "location": "NLRTM",
        "time": "2026-11-03T08:00:00.000Z",
    });
    // customs-us holds neither of the bill's ports, so it may not read it: to it, the bill
    // does not exist.
    let customs_us = parties.signer("customs-us")?;
    assert_problem(
        &reg.submit_event(&sign(customs_us, &hold, EVENT_TYP))
            .await?,
        422,
        "unknown_document",
        None,
    );
    let gate_in = json!({
        "actor": "carrier-oceanic",
        "documentReference": "OCNL2026000101",
        "equipmentReference": "OCLU4127907",
        "eventCode": "GTIN",
        "eventId": "carrier-oceanic-e2e-0001",
        "eventKind": "EQUIPMENT",
        "location": "NLRTM",
        "time": "2026-11-03T08:00:00.000Z",
    });
    assert_problem(
        &reg.submit_event(&sign(oceanic, &gate_in, EVENT_TYP))
            .await?,
        400,
        "invalid_event",
        Some("/equipmentReference"),
    );
    // Another carrier may not read the bill: to it, the bill does not exist.
    let mut polaris_gate_in = gate_in.clone();
    polaris_gate_in["actor"] = json!("carrier-polaris");
    polaris_gate_in["equipmentReference"] = json!("CSQU3054383");
    assert_problem(
        &reg.submit_event(&sign(
            parties.signer("carrier-polaris")?,
            &polaris_gate_in,
            EVENT_TYP,
        ))
        .await?,
        422,
        "unknown_document",
        None,
    );
    let mut bad_kind = gate_in.clone();
    bad_kind["eventKind"] = json!("CUSTOMS");
    let a = reg
        .submit_event(&sign(oceanic, &bad_kind, EVENT_TYP))
        .await?;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["code"], "invalid_event", "{}", a.text);

    // --- Reads and routes -------------------------------------------------------------------
    assert_problem(&reg.get("/v1/no-such-route").await?, 404, "not_found", None);
    // A known resource with the wrong method: 405 and the method it takes.
    let wrong_method = reg.post("/v1/checkpoint", None, Vec::<u8>::new()).await?;
    assert_problem(&wrong_method, 405, "method_not_allowed", None);
    assert_eq!(
        wrong_method.headers.get("allow").map(|v| v.as_bytes()),
        Some(&b"GET"[..])
    );
    let wrong_method = reg.get("/v1/transitions").await?;
    assert_problem(&wrong_method, 405, "method_not_allowed", None);
    assert_eq!(
        wrong_method.headers.get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    assert_problem(
        &reg.get_as("/v1/documents/OCNL2026999999", Some("carrier-oceanic"))
            .await?,
        404,
        "not_found",
        None,
    );
    assert_problem(
        &reg.get("/v1/checkpoints/ten").await?,
        400,
        "bad_path",
        None,
    );
    assert_problem(
        &reg.get("/v1/entries/0/proof?size=many").await?,
        400,
        "bad_query",
        None,
    );
    assert_problem(
        &reg.get("/v1/entries/0/proof?size=1000").await?,
        404,
        "unknown_checkpoint",
        None,
    );
    reg.checkpoint_of(size).await?;
    assert_problem(
        &reg.get("/v1/entries/2/proof").await?,
        404,
        "entry_not_in_checkpoint",
        None,
    );
    assert_problem(
        &reg.get_as("/v1/documents/OCNL2026000101", None).await?,
        401,
        "unauthenticated",
        None,
    );

    // Nothing refused reached the ledger.
    assert_eq!(reg.size().await?, size);
    let chain_read = reg
        .get_as(
            "/v1/documents/OCNL2026000101/transitions",
            Some("consignee-delta"),
        )
        .await?;
    let signed: Vec<&str> = chain_read.body["transitions"]
        .as_array()
        .context("no transitions")?
        .iter()
        .filter_map(|t| t["signed"].as_str())
        .collect();
    assert_eq!(signed, vec![issue.as_str(), head.as_str()]);
    assert_problem(
        &reg.get_as("/v1/documents/OCNL2026000104", Some("carrier-oceanic"))
            .await?,
        404,
        "not_found",
        None,
    );
    let events = reg
        .get_as(
            "/v1/documents/OCNL2026000101/events",
            Some("carrier-oceanic"),
        )
        .await?;
    assert_eq!(events.body["events"], json!([]), "{}", events.text);

    // The transition refused above for its media type is accepted when sent properly: the
    // refusals left the chain head where it was.
    let a = reg
        .post(
            "/v1/transitions",
            Some("application/jose; charset=utf-8"),
            next.clone(),
        )
        .await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["index"], json!(size));
    assert_eq!(reg.size().await?, size + 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Batches
// ---------------------------------------------------------------------------------------------

/// The same submission about `hidden` and about a reference no document has (of the same
/// length): the two refusals must be one answer, the reference aside.
async fn refusal_about_hidden_and_missing(
    reg: &Registry,
    signer: &SigningKey,
    payload: &Value,
    typ: &str,
    what: &str,
) -> Result<()> {
    let hidden = payload["documentReference"]
        .as_str()
        .context("a payload naming a document")?
        .to_owned();
    let missing = format!("{}{}", &hidden[..hidden.len() - 6], "999999");
    let mut elsewhere = payload.clone();
    elsewhere["documentReference"] = json!(missing);
    let submit = |p: &Value| {
        let jws = sign(signer, p, typ);
        async move {
            if typ == EVENT_TYP {
                reg.submit_event(&jws).await
            } else {
                reg.submit(&jws).await
            }
        }
    };
    let (a, b) = (submit(payload).await?, submit(&elsewhere).await?);
    let about_hidden = assert_problem(&a, 422, "unknown_document", None);
    let about_missing = assert_problem(&b, 422, "unknown_document", None);
    let neutral = |v: &Value, reference: &str| v.to_string().replace(reference, "REF");
    assert_eq!(
        neutral(&about_hidden, &hidden),
        neutral(&about_missing, &missing),
        "{what}: a hidden document must answer as a missing one"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_about_a_document_the_signer_may_not_read_is_the_refusal_for_a_missing_one(
) -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let samples = Samples::load()?;
    // OCNL2026000101 in circulation (NLRTM to SGSIN), PLRS2026000201 closed (voided).
    let open = samples.chain("OCNL2026000101")?;
    let closed = samples.chain("PLRS2026000201")?;
    for jws in open.transitions[..2].iter().chain(&closed.transitions) {
        let a = reg.submit(jws).await?;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let size = reg.size().await?;
    let (issue, head) = (&open.transitions[0], &open.transitions[1]);
    let issued = payload_of(issue)?;
    let transfer = |actor: &str, previous: &str, checksum: &Value| {
        json!({
            "action": "TRANSFER",
            "actor": actor,
            "recipient": "consignee-delta",
            "documentChecksum": checksum,
            "documentReference": "OCNL2026000101",
            "previousTransitionChecksum": previous,
            "time": "2026-11-02T12:00:00.000Z",
        })
    };
    let right_checksum = issued["documentChecksum"].clone();
    let wrong_checksum = json!(Digest::of(b"a guess").to_hex());
    // Parties named nowhere in the bill (forwarder-swift is its notify party), and a customs
    // authority of neither of its ports.
    for outsider in [
        "carrier-polaris",
        "bank-harbour",
        "shipper-borealis",
        "customs-us",
    ] {
        let key = parties.signer(outsider)?;
        let cases = [
            // Each of these used to tell the outsider something: that the head is not this
            // (and which it is), that its guess of the document's checksum is wrong, that it is
            // not the possessor, that the parent already has a child.
            (
                transfer(outsider, &hex_of("x"), &right_checksum),
                "wrong_previous_checksum",
            ),
            (
                transfer(outsider, &hex_of(head), &wrong_checksum),
                "document_checksum_mismatch",
            ),
            (
                transfer(outsider, &hex_of(head), &right_checksum),
                "not_possessor",
            ),
            (
                transfer(outsider, &hex_of(issue), &right_checksum),
                "double_spend",
            ),
        ];
        // And every other rule of the state machine: a carrier's action by another party, an
        // endorsement of a straight bill, a surrender, a dated-back transition.
        let with = |action: &str, recipient: Option<&str>, time: &str| {
            let mut payload = transfer(outsider, &hex_of(head), &right_checksum);
            payload["action"] = json!(action);
            payload["time"] = json!(time);
            match recipient {
                Some(recipient) => payload["recipient"] = json!(recipient),
                None => {
                    payload.as_object_mut().map(|p| p.remove("recipient"));
                }
            }
            payload
        };
        let at = "2026-11-02T12:00:00.000Z";
        let more = [
            (with("VOID", None, at), "not_carrier"),
            (
                with("SACC", Some("consignee-delta"), at),
                "no_pending_surrender",
            ),
            (with("ENDORSE", Some("bank-harbour"), at), "not_negotiable"),
            (with("SIGN", None, at), "not_possessor"),
            (
                with("SURRENDER_FOR_DELIVERY", Some("carrier-oceanic"), at),
                "not_possessor",
            ),
            (
                with("SIGN", None, "2026-11-01T00:00:00.000Z"),
                "time_before_previous",
            ),
        ];
        for (payload, was) in cases.iter().chain(&more) {
            refusal_about_hidden_and_missing(
                &reg,
                key,
                payload,
                TRANSITION_TYP,
                &format!("{outsider}: {was}"),
            )
            .await?;
        }
        // A closed document's state is no one else's business either (carrier-polaris issued
        // PLRS2026000201 and customs-us holds its port of discharge: they may read it).
        if matches!(outsider, "carrier-polaris" | "customs-us") {
            continue;
        }
        let void_head = closed.transitions.last().context("chain")?;
        let mut after_close = transfer(
            outsider,
            &hex_of(void_head),
            &payload_of(void_head)?["documentChecksum"],
        );
        after_close["documentReference"] = json!("PLRS2026000201");
        refusal_about_hidden_and_missing(
            &reg,
            key,
            &after_close,
            TRANSITION_TYP,
            &format!("{outsider}: document_closed"),
        )
        .await?;
    }
    // Events naming the hidden bill: a declaration by a stranger, a carrier's milestone by
    // another carrier, and a hold by a customs authority of the place but not of the bill.
    let event = |actor: &str, code: &str, kind: &str, location: &str| {
        json!({
            "eventId": format!("probe-{actor}-{code}"),
            "eventKind": kind,
            "eventCode": code,
            "actor": actor,
            "time": "2026-11-02T12:00:00.000Z",
            "location": location,
            "documentReference": "OCNL2026000101",
        })
    };
    for (actor, code, kind, location) in [
        ("bank-harbour", "DECLARED", "CUSTOMS", "NLRTM"),
        ("carrier-polaris", "DEPA", "TRANSPORT", "NLRTM"),
        ("customs-us", "HOLD", "CUSTOMS", "USLAX"),
    ] {
        let payload = event(actor, code, kind, location);
        refusal_about_hidden_and_missing(
            &reg,
            parties.signer(actor)?,
            &payload,
            EVENT_TYP,
            &format!("{actor}: {code}"),
        )
        .await?;
    }
    assert_eq!(
        reg.size().await?,
        size,
        "nothing refused reached the ledger"
    );

    // A party that may read the bill is told what is wrong.
    let acme = parties.signer("shipper-acme")?;
    let a = reg
        .submit(&sign(
            acme,
            &transfer("shipper-acme", &hex_of(head), &right_checksum),
            TRANSITION_TYP,
        ))
        .await?;
    assert_problem(&a, 422, "not_possessor", None);
    let a = reg
        .submit(&sign(
            acme,
            &transfer("shipper-acme", &hex_of("x"), &right_checksum),
            TRANSITION_TYP,
        ))
        .await?;
    let problem = assert_problem(&a, 409, "wrong_previous_checksum", None);
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&hex_of(head)),
        "no refusal prints the document's head: {problem}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_per_item_and_refuse_only_bad_items() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let samples = Samples::load()?;
    let t = &samples.chain("OCNL2026000102")?.transitions;
    assert!(t.len() >= 5);
    let forged = sign(
        &SigningKey::new(
            parties.signer("bank-harbour")?.kid.clone(),
            parties.signer("shipper-acme")?.key.clone(),
        ),
        &payload_of(&t[3])?,
        TRANSITION_TYP,
    );
    let batch = vec![
        t[0].clone(),
        "not a jws".to_owned(),
        t[1].clone(),
        forged,
        t[0].clone(),
        t[2].clone(),
        t[3].clone(),
    ];
    let a = reg.submit_batch(&batch).await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.media_type(), "application/json");
    assert_eq!(a.body["accepted"], json!(4), "{}", a.text);
    assert_eq!(a.body["duplicates"], json!(1), "{}", a.text);
    assert_eq!(a.body["refused"], json!(2), "{}", a.text);
    let results = a.body["results"].as_array().context("no results")?;
    let statuses: Vec<u64> = results
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(
        statuses,
        vec![201, 400, 201, 422, 200, 201, 201],
        "{}",
        a.text
    );
    // Accepted and duplicate items carry their entry, refused ones a problem, never both.
    let expected_index = [Some(0), None, Some(1), None, Some(0), Some(2), Some(3)];
    for (n, (result, index)) in results.iter().zip(expected_index).enumerate() {
        match index {
            Some(index) => {
                assert_eq!(result["entry"]["index"], json!(index), "item {n}: {result}");
                assert_eq!(
                    result["entry"]["duplicate"],
                    json!(n == 4),
                    "item {n}: {result}"
                );
                assert!(result.get("problem").is_none(), "item {n}: {result}");
            }
            None => assert!(result.get("entry").is_none(), "item {n}: {result}"),
        }
    }
    for (n, code) in [(1, "malformed_jws"), (3, "bad_signature")] {
        let problem = &results[n]["problem"];
        assert_eq!(problem["code"], code, "item {n}: {problem}");
        assert_eq!(problem["type"], format!("urn:lading:problem:{code}"));
        assert_eq!(problem["status"], results[n]["status"]);
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(reg.size().await?, 4);

    // A second batch: a duplicate from the first, the next transition, and a double spend of
    // an accepted transition whose successor is on the ledger.
    let mut spend = payload_of(&t[4])?;
    spend["recipient"] = json!("forwarder-swift");
    spend["previousTransitionChecksum"] = json!(hex_of(&t[2]));
    let spend = sign(parties.signer("bank-harbour")?, &spend, TRANSITION_TYP);
    let a = reg
        .submit_batch(&[t[3].clone(), t[4].clone(), spend])
        .await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let results = a.body["results"].as_array().context("no results")?;
    let statuses: Vec<u64> = results
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(statuses, vec![200, 201, 409], "{}", a.text);
    assert_eq!(results[0]["entry"]["index"], json!(3));
    assert_eq!(results[1]["entry"]["index"], json!(4));
    assert_eq!(results[2]["problem"]["code"], "double_spend", "{}", a.text);
    for count in ["accepted", "duplicates", "refused"] {
        assert_eq!(a.body[count], json!(1), "{count}: {}", a.text);
    }

    let a = reg.submit_batch(&[]).await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"accepted": 0, "duplicates": 0, "refused": 0, "results": []})
    );

    // Batches that cannot be read refuse as a whole.
    for body in [
        r#"{"items": []}"#,
        r#"["a", 1]"#,
        "not json",
        &format!("\"{}\"", t[5]),
    ] {
        let a = reg
            .post(
                "/v1/transitions/batch",
                Some("application/json"),
                body.to_owned(),
            )
            .await?;
        assert_problem(&a, 400, "malformed_batch", None);
    }
    let a = reg
        .post(
            "/v1/transitions/batch",
            Some(JOSE),
            serde_json::to_vec(&[t[5].clone()])?,
        )
        .await?;
    assert_problem(&a, 415, "unsupported_media_type", None);
    let too_many: Vec<String> = vec!["x".to_owned(); 10_001];
    let a = reg.submit_batch(&too_many).await?;
    assert_problem(&a, 400, "batch_too_large", None);
    // 32 MiB and one byte: a JSON array of one huge string.
    let mut huge = Vec::with_capacity((32 << 20) + 8);
    huge.extend_from_slice(b"[\"");
    huge.resize((32 << 20) - 1, b'a');
    huge.extend_from_slice(b"\"]");
    assert_eq!(huge.len(), (32 << 20) + 1);
    let a = reg
        .post("/v1/transitions/batch", Some("application/json"), huge)
        .await?;
    assert_problem(&a, 413, "body_too_large", None);

    assert_eq!(reg.size().await?, 5);
    let read = reg
        .get_as(
            "/v1/documents/OCNL2026000102/transitions",
            Some("carrier-oceanic"),
        )
        .await?;
    let signed: Vec<&str> = read.body["transitions"]
        .as_array()
        .context("no transitions")?
        .iter()
        .filter_map(|e| e["signed"].as_str())
        .collect();
    assert_eq!(
        signed,
        t[..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Entitlement and authentication
// ---------------------------------------------------------------------------------------------

/// The problem body with `reference` replaced, so two 404s about different references compare.
fn without(body: &str, reference: &str) -> String {
    body.replace(reference, "<reference>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_entitled_parties_read_a_document() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    reg.submit_samples(&samples).await?;
    // The sample events name the documents too; the /events read must find them.
    for jws in &samples.events {
        let a = reg.submit_event(jws).await?;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }

    // (reference, readers, others). Readers: carrier, shipper, consignee, notify parties,
    // endorsees and possessors of the chain, customs of the ports of loading and discharge.
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            // SGSIN -> USLAX, to order of shipper-borealis, endorsed to the bank and then to
            // consignee-delta; both are notify parties too.
            "OCNL2026000102",
            &[
                "carrier-oceanic",
                "shipper-borealis",
                "bank-harbour",
                "consignee-delta",
                "customs-sg",
                "customs-us",
            ],
            &[
                "carrier-polaris",
                "shipper-acme",
                "forwarder-swift",
                "customs-nl",
            ],
        ),
        (
            // KRPUS -> USLAX, blank endorsed and transferred to forwarder-swift, who is named
            // nowhere in the document.
            "PLRS2026000202",
            &[
                "carrier-polaris",
                "shipper-borealis",
                "forwarder-swift",
                "customs-us",
            ],
            &[
                "carrier-oceanic",
                "shipper-acme",
                "bank-harbour",
                "consignee-delta",
                "customs-sg",
                "customs-nl",
            ],
        ),
        (
            // NLRTM -> SGSIN, straight to consignee-delta, notify forwarder-swift.
            "OCNL2026000101",
            &[
                "carrier-oceanic",
                "shipper-acme",
                "consignee-delta",
                "forwarder-swift",
                "customs-nl",
                "customs-sg",
            ],
            &[
                "carrier-polaris",
                "shipper-borealis",
                "bank-harbour",
                "customs-us",
            ],
        ),
    ];
    let missing = "OCNL2026999999";
    for (reference, readers, others) in cases {
        for suffix in ["", "/transitions", "/events"] {
            let path = format!("/v1/documents/{reference}{suffix}");
            for party in readers {
                let a = reg.get_as(&path, Some(party)).await?;
                assert_eq!(a.status, StatusCode::OK, "{party} reads {path}: {}", a.text);
                assert_eq!(a.body["reference"], reference);
            }
            let absent = reg
                .get_as(
                    &format!("/v1/documents/{missing}{suffix}"),
                    Some(readers[0]),
                )
                .await?;
            assert_problem(&absent, 404, "not_found", None);
            for party in others {
                let a = reg.get_as(&path, Some(party)).await?;
                assert_problem(&a, 404, "not_found", None);
                // Indistinguishable from a document that does not exist.
                assert_eq!(
                    without(&a.text, reference),
                    without(&absent.text, missing),
                    "{party} on {path}"
                );
                assert_eq!(a.media_type(), absent.media_type());
            }
        }
    }
    let events = reg
        .get_as("/v1/documents/OCNL2026000101/events", Some("customs-nl"))
        .await?;
    assert!(
        events.body["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{}",
        events.text
    );

    // No token, an unknown token, another scheme: 401 with a Bearer challenge, before any
    // lookup (a missing document answers the same).
    let path = "/v1/documents/OCNL2026000101";
    let good = token("carrier-oceanic")?;
    let attempts: Vec<(String, Option<String>)> = vec![
        (path.into(), None),
        (
            path.into(),
            Some("Bearer lading-test-nobody-00000000000000000000000000000000".into()),
        ),
        (path.into(), Some("Bearer ".into())),
        (path.into(), Some(format!("Basic {good}"))),
        (path.into(), Some(format!("Bearer {}", good.to_uppercase()))),
        (format!("{path}/transitions"), Some("Bearer wrong".into())),
        (format!("{path}/events"), None),
        (format!("/v1/documents/{missing}"), None),
    ];
    for (path, authorization) in attempts {
        let mut request = reg.client.get(reg.url(&path));
        if let Some(value) = &authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let a = Registry::read(request.send().await?).await?;
        assert_problem(&a, 401, "unauthenticated", None);
        let challenge = a
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some("Bearer"), "{path} with {authorization:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Checkpoints and inclusion proofs
// ---------------------------------------------------------------------------------------------

/// The registry's key from `/v1/registry/key`, checked against the fixture's public key.
async fn registry_key(reg: &Registry) -> Result<lading_domain::VerifyingKey> {
    let a = reg.get("/v1/registry/key").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.body.get("d").is_none(),
        "the registry published its private key"
    );
    let jwk: Jwk = serde_json::from_value(a.body.clone())?;
    assert!(!jwk.is_private());
    let fixture = FixtureParties::load()?;
    assert_eq!(
        jwk.public_key_bytes(),
        fixture.registry_jwk().public_key_bytes()
    );
    Ok(jwk.verifying_key()?)
}

/// Verifies a checkpoint answer's JWS and that its fields are the signed ones; returns the root.
fn verified_root(answer: &Value, key: &lading_domain::VerifyingKey) -> Result<Digest> {
    let signed = SignedCheckpoint::parse(answer["signed"].as_str().context("no signed")?)?;
    let checkpoint = signed.verify(key)?;
    assert_eq!(answer["size"], json!(checkpoint.size));
    assert_eq!(answer["root"], checkpoint.root.to_hex());
    assert_eq!(answer["time"], checkpoint.time.to_string());
    assert_eq!(answer["blockSize"], json!(checkpoint.block_size));
    Ok(checkpoint.root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_has_a_proof_that_verifies_against_the_signed_checkpoint() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let key = registry_key(&reg).await?;
    // 1200 entries: a sealed block of 1024 and an open one, so proofs have a block path.
    let mut generator = LedgerGenerator::new(&parties, GeneratorConfig::new(300, 3, 0x1ad1))?;
    let mut ledger: Vec<String> = Vec::new();
    let mut first_checkpoint = None;
    for batch in generator.batches(400) {
        let batch = batch?;
        let a = reg.submit_batch(&batch).await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["accepted"], json!(batch.len()), "{}", a.text);
        ledger.extend(batch);
        if first_checkpoint.is_none() {
            first_checkpoint = Some(reg.checkpoint_of(ledger.len() as u64).await?);
        }
    }
    let size = ledger.len() as u64;
    assert_eq!(size, 1200);
    assert_eq!(reg.size().await?, size);

    let latest = reg.checkpoint_of(size).await?;
    let root = verified_root(&latest, &key)?;
    assert_eq!(latest["blockSize"], json!(1024));
    let at_size = reg.get(&format!("/v1/checkpoints/{size}")).await?;
    assert_eq!(at_size.status, StatusCode::OK, "{}", at_size.text);
    assert_eq!(at_size.body, latest);

    // Every entry, concurrently.
    let checks = futures::stream::iter(ledger.iter().enumerate())
        .map(|(index, jws)| {
            let reg = &reg;
            let latest = &latest;
            async move {
                let a = reg
                    .get(&format!("/v1/entries/{index}/proof?size={size}"))
                    .await?;
                if a.status != StatusCode::OK {
                    bail!("proof of {index}: {} {}", a.status, a.text);
                }
                let leaf = leaf_hash(jws.as_bytes());
                let proof: InclusionProof = serde_json::from_value(a.body["proof"].clone())?;
                if a.body["leafHash"] != leaf.to_hex() {
                    bail!(
                        "entry {index}: leafHash {} is not the hash of what was submitted",
                        a.body["leafHash"]
                    );
                }
                if (proof.index, proof.size, proof.block_size) != (index as u64, size, 1024) {
                    bail!("entry {index}: proof for {proof:?}");
                }
                if a.body["checkpoint"] != *latest {
                    bail!(
                        "entry {index}: proof answered with another checkpoint {}",
                        a.body["checkpoint"]
                    );
                }
                verify_inclusion(&proof, leaf, root).map_err(|e| anyhow!("entry {index}: {e}"))?;
                // The proof is for this leaf only.
                let other = leaf_hash(format!("{jws}x").as_bytes());
                if verify_inclusion(&proof, other, root).is_ok() {
                    bail!("entry {index}: the proof also verifies another leaf");
                }
                // d(n, j) = floor(log2(n + j)) lemmas for position j among n (merkle docs).
                let (block, leaf) = (index as u64 / 1024, index as u64 % 1024);
                let leaves = if block == 0 { 1024 } else { size - 1024 };
                let lengths = (
                    (leaves + leaf).ilog2() as usize,
                    (2 + block).ilog2() as usize,
                );
                if (proof.leaf_path.len(), proof.block_path.len()) != lengths {
                    bail!(
                        "entry {index}: path lengths {} and {}, expected {lengths:?}",
                        proof.leaf_path.len(),
                        proof.block_path.len()
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<Result<()>>>()
        .await;
    let failures: Vec<String> = checks
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} proofs failed, first: {:?}",
        failures.len(),
        failures.first()
    );

    // Without ?size the proof is against the latest checkpoint.
    let a = reg.get("/v1/entries/1100/proof").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["checkpoint"], latest);

    // An older checkpoint still proves its entries against its own root.
    let first = first_checkpoint.context("no first checkpoint")?;
    let first_root = verified_root(&first, &key)?;
    assert_eq!(first["size"], json!(400));
    assert_ne!(first_root, root);
    let a = reg.get("/v1/entries/17/proof?size=400").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["checkpoint"], first);
    let proof: InclusionProof = serde_json::from_value(a.body["proof"].clone())?;
    assert_eq!(proof.size, 400);
    let leaf = leaf_hash(ledger[17].as_bytes());
    assert!(verify_inclusion(&proof, leaf, first_root).is_ok());
    assert!(
        verify_inclusion(&proof, leaf, root).is_err(),
        "a proof for size 400 verified against the root of 1200"
    );

    // Sizes no checkpoint was signed for, and entries beyond a checkpoint.
    for unsigned in [1, 399, size + 1] {
        assert_problem(
            &reg.get(&format!("/v1/entries/0/proof?size={unsigned}"))
                .await?,
            404,
            "unknown_checkpoint",
            None,
        );
        assert_problem(
            &reg.get(&format!("/v1/checkpoints/{unsigned}")).await?,
            404,
            "not_found",
            None,
        );
    }
    assert_problem(
        &reg.get(&format!("/v1/entries/{size}/proof?size={size}"))
            .await?,
        404,
        "entry_not_in_checkpoint",
        None,
    );
    assert_problem(
        &reg.get("/v1/entries/400/proof?size=400").await?,
        404,
        "entry_not_in_checkpoint",
        None,
    );
    assert_problem(
        &reg.get("/v1/entries/99999/proof").await?,
        404,
        "entry_not_in_checkpoint",
        None,
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_proofs_link_real_checkpoints() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let key = registry_key(&reg).await?;
    let schema = validator("consistency-answer.json")?;
    // Checkpoints inside block 0, on the block boundary, and with a sealed and an open block.
    let mut generator = LedgerGenerator::new(&parties, GeneratorConfig::new(320, 3, 0xc0de))?;
    let mut checkpoints: BTreeMap<u64, Value> = BTreeMap::new();
    let mut size = 0u64;
    for count in [400, 624, 200] {
        let batch = generator.next_batch(count)?;
        assert_eq!(batch.len(), count);
        let a = reg.submit_batch(&batch).await?;
        assert_eq!(a.body["accepted"], json!(count), "{}", a.text);
        size += count as u64;
        checkpoints.insert(size, reg.checkpoint_of(size).await?);
    }
    assert_eq!(
        checkpoints.keys().copied().collect::<Vec<_>>(),
        [400, 1024, 1224]
    );
    for (&from, old) in &checkpoints {
        for (&to, new) in checkpoints.range(from..) {
            let a = reg
                .get(&format!("/v1/checkpoints/consistency?from={from}&to={to}"))
                .await?;
            assert_eq!(a.status, StatusCode::OK, "{from}..{to}: {}", a.text);
            assert_valid(&schema, &a.body, "a consistency answer");
            assert_eq!(&a.body["from"], old);
            assert_eq!(&a.body["to"], new);
            let (old_root, new_root) = (verified_root(old, &key)?, verified_root(new, &key)?);
            let proof: ConsistencyProof = serde_json::from_value(a.body["proof"].clone())?;
            assert_eq!(
                verify_consistency(&proof, from, old_root, to, new_root, 1024),
                Ok(()),
                "{from}..{to}"
            );
            // Open block at 400: its leaves travel; block boundary at 1024: block roots only.
            let leaves = match (from, to) {
                (f, t) if f == t => 0,
                (400, 1024) | (400, 1224) => 1024,
                _ => 0,
            };
            assert_eq!(proof.leaves.len(), leaves, "{from}..{to}");
            if from != to {
                // The proof links exactly these two checkpoints.
                let other = verified_root(&checkpoints[&1024], &key)?;
                if other != old_root {
                    assert!(verify_consistency(&proof, from, other, to, new_root, 1024).is_err());
                }
                assert!(verify_consistency(&proof, from, new_root, to, old_root, 1024).is_err());
            }
        }
    }

    assert_problem(
        &reg.get("/v1/checkpoints/consistency?from=1224&to=400")
            .await?,
        400,
        "consistency_from_after_to",
        None,
    );
    for (from, to) in [(399, 1224), (400, 1225), (1, 2)] {
        assert_problem(
            &reg.get(&format!("/v1/checkpoints/consistency?from={from}&to={to}"))
                .await?,
            404,
            "unknown_checkpoint",
            None,
        );
    }
    for query in [
        "",
        "?from=400",
        "?to=400",
        "?from=x&to=400",
        "?from=-1&to=400",
    ] {
        assert_problem(
            &reg.get(&format!("/v1/checkpoints/consistency{query}"))
                .await?,
            400,
            "bad_query",
            None,
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_by_index_show_signed_bytes_to_entitled_parties_only() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let schema = validator("entry-read.json")?;
    // Each 201 names where its entry is read.
    let mut ledger = Vec::new();
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let a = reg.submit(jws).await?;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
            let index = a.body["index"].as_u64().context("no index")?;
            assert_eq!(
                a.headers.get("location").and_then(|v| v.to_str().ok()),
                Some(format!("/v1/entries/{index}").as_str())
            );
            ledger.push((chain.reference.clone(), jws.clone()));
        }
    }
    let event = reg.submit_event(&samples.events[0]).await?;
    assert_eq!(event.status, StatusCode::CREATED, "{}", event.text);
    let event_index = event.body["index"].as_u64().context("no index")?;
    assert_eq!(
        event.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/entries/{event_index}").as_str())
    );
    // A duplicate creates nothing.
    let again = reg.submit(&ledger[0].1).await?;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.headers.get("location").is_none());

    // OCNL2026000102 is readable by carrier-oceanic and hidden from carrier-polaris (see
    // only_entitled_parties_read_a_document).
    let (index, (_, jws)) = ledger
        .iter()
        .enumerate()
        .find(|(_, (reference, _))| reference == "OCNL2026000102")
        .context("no OCNL2026000102")?;
    let full = reg
        .get_as(&format!("/v1/entries/{index}"), Some("carrier-oceanic"))
        .await?;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_valid(&schema, &full.body, "an entitled entry read");
    assert_eq!(full.body["index"], json!(index));
    assert_eq!(full.body["signed"], jws.as_str());
    assert_eq!(full.body["leafHash"], leaf_hash(jws.as_bytes()).to_hex());
    assert_eq!(full.body["kind"], "transition");
    assert!(full.body["receivedAt"].is_string(), "{}", full.text);

    // Any other party: index and leaf hash, in exactly the form of every hidden entry.
    let hidden_form = |index: usize, jws: &str| {
        format!(
            r#"{{"index":{index},"leafHash":"{}"}}"#,
            leaf_hash(jws.as_bytes()).to_hex()
        )
    };
    let hidden = reg
        .get_as(&format!("/v1/entries/{index}"), Some("carrier-polaris"))
        .await?;
    assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.text);
    assert_eq!(hidden.text, hidden_form(index, jws));
    assert_valid(&schema, &hidden.body, "a hidden entry read");
    // The event (carrier-oceanic's, about OCNL2026000101), read by a party it does not concern,
    // looks the same as a hidden transition.
    let event_jws = &samples.events[0];
    let hidden_event = reg
        .get_as(
            &format!("/v1/entries/{event_index}"),
            Some("carrier-polaris"),
        )
        .await?;
    let own_event = reg
        .get_as(
            &format!("/v1/entries/{event_index}"),
            Some(
                payload_of(event_jws)?["actor"]
                    .as_str()
                    .context("no actor")?,
            ),
        )
        .await?;
    assert_eq!(
        own_event.body["signed"],
        event_jws.as_str(),
        "{}",
        own_event.text
    );
    assert_eq!(own_event.body["kind"], "event");
    assert_eq!(
        hidden_event.text,
        hidden_form(event_index as usize, event_jws),
        "{}",
        hidden_event.text
    );

    // The schema tells the two forms apart and refuses a mix.
    let mut mixed = hidden.body.clone();
    mixed["kind"] = json!("transition");
    assert!(!schema.is_valid(&mixed));

    assert_problem(
        &reg.get(&format!("/v1/entries/{index}")).await?,
        401,
        "unauthenticated",
        None,
    );
    let past = event_index + 1;
    assert_problem(
        &reg.get_as(&format!("/v1/entries/{past}"), Some("carrier-oceanic"))
            .await?,
        404,
        "not_found",
        None,
    );
    assert_problem(
        &reg.get_as("/v1/entries/x", Some("carrier-oceanic")).await?,
        400,
        "bad_path",
        None,
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_request_waits_for_the_checkpoint_that_covers_its_entry() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let key = registry_key(&reg).await?;
    let chain = &samples.chains[0].transitions;
    let a = reg.submit(&chain[0]).await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    reg.checkpoint_of(1).await?;

    // Ask for entry 1 before it exists, then submit it: the request answers once a
    // checkpoint covers it.
    let waiting = {
        let request = reg
            .client
            .get(reg.url("/v1/entries/1/proof?wait=20000"))
            .send();
        tokio::spawn(async move { Registry::read(request.await?).await })
    };
    let a = reg.submit(&chain[1]).await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let answer = waiting.await??;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let proof: InclusionProof = serde_json::from_value(answer.body["proof"].clone())?;
    assert!(proof.size >= 2, "{}", answer.text);
    let root = verified_root(&answer.body["checkpoint"], &key)?;
    verify_inclusion(&proof, leaf_hash(chain[1].as_bytes()), root).map_err(|e| anyhow!("{e}"))?;
    assert_valid(
        &validator("proof-answer.json")?,
        &answer.body,
        "a waited proof",
    );

    // A covered entry answers at once; an entry nobody submits answers 404 after the wait.
    let a = reg.get("/v1/entries/0/proof?wait=30000").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    for wait in [0, 50] {
        assert_problem(
            &reg.get(&format!("/v1/entries/99/proof?wait={wait}"))
                .await?,
            404,
            "entry_not_yet_provable",
            None,
        );
    }
    assert_problem(
        &reg.get("/v1/entries/0/proof?wait=30001").await?,
        400,
        "bad_query",
        None,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Answers match the published JSON Schemas
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:?}\n{instance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_the_json_schemas() -> Result<()> {
    let entry = validator("entry-answer.json")?;
    let problem = validator("problem.json")?;
    let proof = validator("proof-answer.json")?;
    let checkpoint_payload = validator("checkpoint.json")?;
    let checkpoint_answer = validator("proof-answer.json#/properties/checkpoint")?;
    let jwk = validator("jwk.json")?;
    let document = validator("document-answer.json")?;
    let chain_answer = validator("chain-answer.json")?;
    let events_answer = validator("events-answer.json")?;
    let batch = validator("batch-answer.json")?;
    let checkpoint_list = validator("checkpoint-list.json")?;

    // The validators are not vacuous.
    let good_problem = json!({"type": "urn:lading:problem:x", "title": "t", "status": 400, "detail": "d", "code": "x"});
    assert!(problem.is_valid(&good_problem));
    let mut bad = good_problem.clone();
    bad["code"] = json!("Not A Code");
    assert!(!problem.is_valid(&bad));
    assert!(!entry.is_valid(
        &json!({"index": 0, "leafHash": "00", "kind": "transition", "duplicate": false})
    ));

    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let mut size = 0u64;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let a = reg.submit(jws).await?;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
            assert_valid(&entry, &a.body, "a transition's entry answer");
            size += 1;
        }
    }
    let a = reg.submit(&samples.chains[0].transitions[0]).await?;
    assert_eq!(a.status, StatusCode::OK);
    assert_valid(&entry, &a.body, "a duplicate's entry answer");
    let a = reg.submit_event(&samples.events[0]).await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_valid(&entry, &a.body, "an event's entry answer");
    size += 1;
    let mut broken = a.body.clone();
    broken.as_object_mut().context("entry")?.remove("leafHash");
    assert!(!entry.is_valid(&broken));

    // Problems of every family, including one with a pointer and batch items.
    let issue = fixture_json("payloads/issue.json")?;
    let text = serde_json::to_string(&issue)?.replace("OCLU4127907", "OCLU4127906");
    let parties = FixtureParties::load()?;
    let bad_container = sign(
        parties.signer("carrier-oceanic")?,
        &serde_json::from_str(&text)?,
        TRANSITION_TYP,
    );
    let refusals = vec![
        reg.submit("garbage").await?,
        reg.submit(&bad_container).await?,
        reg.submit(&samples.events[1]).await?,
        reg.post("/v1/transitions", Some("text/plain"), "x").await?,
        reg.post("/v1/transitions", Some(JOSE), vec![b'a'; (1 << 20) + 1])
            .await?,
        reg.get("/v1/documents/OCNL2026000101").await?,
        reg.get_as("/v1/documents/OCNL2026999999", Some("carrier-oceanic"))
            .await?,
        reg.get("/v1/entries/0/proof?size=100000").await?,
        reg.get("/nowhere").await?,
    ];
    for a in &refusals {
        assert!(a.status.is_client_error(), "{}", a.text);
        assert_eq!(a.media_type(), PROBLEM_JSON);
        assert_valid(&problem, &a.body, "a problem");
    }
    assert!(refusals[1].body.get("pointer").is_some());
    let a = reg
        .submit_batch(&[
            samples.chains[0].transitions[0].clone(),
            "x".into(),
            bad_container,
        ])
        .await?;
    for item in a.body["results"].as_array().context("no results")? {
        if let Some(e) = item.get("entry") {
            assert_valid(&entry, e, "a batch entry");
        }
        if let Some(p) = item.get("problem") {
            assert_valid(&problem, p, "a batch problem");
        }
    }
    assert_valid(&batch, &a.body, "a batch answer");
    let mut lying = a.body.clone();
    lying["results"][1]["status"] = json!(201);
    assert!(
        !batch.is_valid(&lying),
        "a refused item's status is 4xx or 5xx"
    );

    // Reads of a document by a party that may read it.
    for chain in &samples.chains {
        let reference = &chain.reference;
        let carrier = if reference.starts_with("OCNL") {
            "carrier-oceanic"
        } else {
            "carrier-polaris"
        };
        let a = reg
            .get_as(&format!("/v1/documents/{reference}"), Some(carrier))
            .await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_valid(&document, &a.body, "a document read");
        let a = reg
            .get_as(
                &format!("/v1/documents/{reference}/transitions"),
                Some(carrier),
            )
            .await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_valid(&chain_answer, &a.body, "a document's chain");
        let a = reg
            .get_as(&format!("/v1/documents/{reference}/events"), Some(carrier))
            .await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_valid(&events_answer, &a.body, "a document's events");
    }
    let a = reg.get("/v1/checkpoints?after=0").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_valid(&checkpoint_list, &a.body, "a checkpoint list");
    assert!(!checkpoint_list.is_valid(&json!({"checkpoints": ["not a jws"]})));

    let latest = reg.checkpoint_of(size).await?;
    assert_valid(&checkpoint_answer, &latest, "GET /v1/checkpoint");
    let signed = SignedCheckpoint::parse(latest["signed"].as_str().context("no signed")?)?;
    let payload: Value = serde_json::from_slice(signed.jws().payload_bytes())?;
    assert_valid(&checkpoint_payload, &payload, "the checkpoint payload");
    for index in [0, size / 2, size - 1] {
        let a = reg
            .get(&format!("/v1/entries/{index}/proof?size={size}"))
            .await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_valid(&proof, &a.body, "a proof answer");
    }
    let a = reg.get("/v1/registry/key").await?;
    assert_valid(&jwk, &a.body, "the registry key");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. TLS only
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_speaks_tls_only_with_its_own_certificate() -> Result<()> {
    let reg = Registry::start().await?;
    // The trusting client works (the control).
    let a = reg.get("/healthz").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body, json!({"status": "ok"}));

    // Plain HTTP on the same port: no HTTP answer comes back.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let result = plain
        .get(format!("http://127.0.0.1:{}/healthz", reg.server.port))
        .send()
        .await;
    assert!(
        result.is_err(),
        "plain HTTP got an answer: {:?}",
        result.map(|r| r.status())
    );
    let port = reg.server.port;
    let raw = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut out = Vec::new();
        // The server closes (or resets) the connection; what it sent before counts.
        let _ = stream.read_to_end(&mut out);
        Ok(out)
    })
    .await??;
    assert!(
        !raw.starts_with(b"HTTP/"),
        "plaintext answer: {:?}",
        String::from_utf8_lossy(&raw)
    );

    // A client that trusts the system roots, or another self-signed certificate, refuses it.
    let system_roots = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10))
        .build()?;
    let result = system_roots.get(reg.url("/healthz")).send().await;
    assert!(result.is_err(), "an untrusted certificate was accepted");
    let other = Tls::new()?;
    let result = other.client()?.get(reg.url("/healthz")).send().await;
    let error = result
        .err()
        .context("a client trusting another certificate got through")?;
    assert!(error.is_connect(), "{error:?}");
    // Same certificate, the name it was issued for: fine.
    let by_name = reg
        .tls
        .client()?
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await?;
    assert_eq!(by_name.status(), StatusCode::OK);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rules the backend documents
// ---------------------------------------------------------------------------------------------

/// `lading_domain::event` documents `eventId` as "unique per actor (the registry enforces
/// it)": a second, different event with the same actor and eventId is refused; another actor
/// may use the same id.
/// A TLS connection to the registry (rustls, trusting only the test certificate), with the
/// head of a `POST /v1/transitions/batch` that announces a 32 MiB body already sent, and
/// `sent` bytes of that body after it.
fn slow_batch(
    port: u16,
    root_pem: &str,
    sent: usize,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    use std::io::Write;
    let mut stream = tls_stream(port, root_pem)?;
    write!(
        stream,
        "POST /v1/transitions/batch HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        32 << 20
    )?;
    stream.write_all(&vec![b' '; sent])?;
    stream.flush()?;
    Ok(stream)
}

/// A raw TLS connection to the registry on `port` (rustls, trusting only `root_pem`), for
/// requests no HTTP client library would send.
fn tls_stream(
    port: u16,
    root_pem: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in lading_pki::parse_certs(root_pem)? {
        roots.add(cert)?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost")?.to_owned();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(rustls::StreamOwned::new(connection, tcp))
}

/// A body that does not arrive in time is refused `408 body_timeout` (here after 1 s; 30 s by
/// default), and the connection is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_refused() -> Result<()> {
    let reg = Registry::start_with(ServerOptions {
        env: vec![("LADING_BODY_TIMEOUT_MS".into(), "1000".into())],
        ..ServerOptions::default()
    })
    .await?;
    let (port, root) = (reg.server.port, reg.tls.cert_pem.clone());
    let answer = tokio::task::spawn_blocking(move || -> Result<String> {
        use std::io::Read;
        // 32 MiB announced, 10 bytes sent, then nothing.
        let mut stream = slow_batch(port, &root, 10)?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
    .await??;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    Ok(())
}

/// Requests that break HTTP/1 framing never reach a handler: the HTTP layer answers them
/// itself (400 or 431), and — being the client's mistake — they never reach the error log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_http_framing_is_refused_and_not_logged_as_an_error() -> Result<()> {
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("registry.log");
    let mut reg = Registry::start_with(ServerOptions {
        log: Some(log.clone()),
        ..ServerOptions::default()
    })
    .await?;
    let (port, root) = (reg.server.port, reg.tls.cert_pem.clone());
    let long_url = format!("/v1/documents/{}", "A".repeat(100 * 1024));
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let requests = vec![
        "POST /v1/transitions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
         Content-Length: 6\r\n\r\nhello!"
            .to_owned(),
        "POST /v1/transitions HTTP/1.1\r\nHost: localhost\r\nContent-Length: x5\r\n\r\nhello"
            .to_owned(),
        "POST /v1/transitions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            .to_owned(),
        format!("GET {long_url} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\n{many_headers}\r\n"),
    ];
    let answers = tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        use std::io::{Read, Write};
        let mut answers = Vec::new();
        for request in requests {
            let mut stream = tls_stream(port, &root)?;
            stream.write_all(request.as_bytes())?;
            stream.flush()?;
            let mut answer = Vec::new();
            // The server answers and closes; what it sent before counts.
            let _ = stream.read_to_end(&mut answer);
            answers.push(String::from_utf8_lossy(&answer).into_owned());
        }
        Ok(answers)
    })
    .await??;
    for answer in &answers {
        let status_line = answer.lines().next().unwrap_or("");
        assert!(
            status_line.starts_with("HTTP/1.1 400") || status_line.starts_with("HTTP/1.1 431"),
            "framing error answered {status_line:?}"
        );
    }
    // The registry goes on answering, and its log has no ERROR line.
    let health = reg.get("/healthz").await?;
    assert_eq!(health.status, StatusCode::OK);
    reg.server.stop()?;
    let written = std::fs::read_to_string(&log)?;
    let errors: Vec<&str> = written.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged as errors: {errors:#?}"
    );
    Ok(())
}

/// Slow clients announcing large batches: nothing is reserved for what they announce, only a
/// few large bodies are read at once — the next is refused `503 server_busy` with
/// `Retry-After` — and the registry keeps answering everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_large_bodies_cannot_hold_the_registry() -> Result<()> {
    let reg = Registry::start().await?;
    let port = reg.server.port;
    let root = reg.tls.cert_pem.clone();
    let busy = tokio::task::spawn_blocking(move || -> Result<String> {
        use std::io::Read;
        // Sixteen bodies past a megabyte, then stalled: each holds one of the permits.
        let mut held = Vec::new();
        for _ in 0..16 {
            held.push(slow_batch(port, &root, (1 << 20) + 4096)?);
        }
        // The registry reads them as they come; a seventeenth is refused once it has. Tries
        // are bounded: one that got a permit (the others not read yet) times out its read.
        for _ in 0..20 {
            let mut probe = slow_batch(port, &root, (1 << 20) + 4096)?;
            let mut answer = vec![0u8; 4096];
            if let Ok(n) = probe.read(&mut answer) {
                let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
                if answer.starts_with("HTTP/1.1 503") {
                    drop(held);
                    return Ok(answer);
                }
                bail!("unexpected answer to a large body: {answer}");
            }
            held.push(probe);
        }
        bail!("no large body was refused while sixteen were being received")
    })
    .await??;
    let head = busy.to_ascii_lowercase();
    assert!(head.contains("retry-after: 1"), "{busy}");
    assert!(head.contains("application/problem+json"), "{busy}");
    assert!(busy.contains("\"code\":\"server_busy\""), "{busy}");
    // Small requests were never held up.
    let a = reg.get("/healthz").await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_postgresql_cannot_store_are_refused_when_parsed() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let parties = FixtureParties::load()?;
    assert_eq!(
        reg.submit(&samples.chain("OCNL2026000101")?.transitions[0])
            .await?
            .status,
        StatusCode::CREATED
    );
    let size = reg.size().await?;
    // A document reference in a path with U+0000 or a control character is no reference.
    for path in [
        "/v1/documents/OCNL%00",
        "/v1/documents/OCNL2026000101%00/transitions",
        "/v1/documents/%01/events",
    ] {
        let a = reg.get_as(path, Some("carrier-oceanic")).await?;
        assert_problem(&a, 400, "invalid_document_reference", None);
    }
    // An event id or a free text with U+0000 is a field error of the payload, never a 503
    // with a database's words in it.
    let event = payload_of(&samples.events[0])?;
    for (member, value) in [
        ("eventId", "carrier-oceanic-\u{0}-1"),
        ("eventId", "tab\there"),
        ("remarks", "nul \u{0} inside"),
        ("remarks", "bell \u{7}"),
    ] {
        let mut bad = event.clone();
        bad[member] = json!(value);
        let a = reg
            .submit_event(&sign(parties.signer("carrier-oceanic")?, &bad, EVENT_TYP))
            .await?;
        let problem = assert_problem(&a, 400, "invalid_event", Some(&format!("/{member}")));
        assert!(
            !problem.to_string().contains("PostgreSQL") && !problem.to_string().contains("0x00"),
            "{problem}"
        );
    }
    // Line breaks are text, not control: remarks may have them.
    let mut multiline = event.clone();
    multiline["remarks"] = json!("two\nlines");
    let a = reg
        .submit_event(&sign(
            parties.signer("carrier-oceanic")?,
            &multiline,
            EVENT_TYP,
        ))
        .await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(reg.size().await?, size + 1, "only the good event was added");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_is_used_once_per_actor() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let parties = FixtureParties::load()?;
    let issue = &samples.chain("OCNL2026000101")?.transitions[0];
    assert_eq!(reg.submit(issue).await?.status, StatusCode::CREATED);
    let first = payload_of(&samples.events[0])?;
    assert_eq!(first["actor"], "carrier-oceanic");
    assert_eq!(
        reg.submit_event(&samples.events[0]).await?.status,
        StatusCode::CREATED
    );
    let mut second = first.clone();
    second["time"] = json!("2026-11-04T08:00:00.000Z");
    second["eventCode"] = json!("GTOT");
    let second = sign(parties.signer("carrier-oceanic")?, &second, EVENT_TYP);
    assert_problem(
        &reg.submit_event(&second).await?,
        409,
        "duplicate_event_id",
        None,
    );
    // Two different events with one id submitted at once (possibly in one sequencer batch):
    // exactly one is accepted.
    let mut third = first.clone();
    third["eventId"] = json!("carrier-oceanic-e2e-race");
    let mut fourth = third.clone();
    fourth["time"] = json!("2026-11-04T09:00:00.000Z");
    let (third, fourth) = (
        sign(parties.signer("carrier-oceanic")?, &third, EVENT_TYP),
        sign(parties.signer("carrier-oceanic")?, &fourth, EVENT_TYP),
    );
    let (a, b) = tokio::join!(reg.submit_event(&third), reg.submit_event(&fourth));
    let mut statuses = vec![a?.status.as_u16(), b?.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409]);

    // The same id from another actor is another event.
    let hold = json!({
        "actor": "customs-nl",
        "documentReference": "OCNL2026000101",
        "eventCode": "HOLD",
        "eventId": first["eventId"],
        "eventKind": "CUSTOMS",
        "location": "NLRTM",
        "time": "2026-11-04T08:00:00.000Z",
    });
    let a = reg
        .submit_event(&sign(parties.signer("customs-nl")?, &hold, EVENT_TYP))
        .await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(reg.size().await?, 4);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Concurrency and crashes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spends_of_one_head_accept_exactly_one() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let samples = Samples::load()?;
    let t = &samples.chain("OCNL2026000102")?.transitions;
    // After t[2] the bank possesses the to-order document and holds it as endorsee.
    for jws in &t[..3] {
        assert_eq!(reg.submit(jws).await?.status, StatusCode::CREATED);
    }
    let base = payload_of(&t[4])?;
    assert_eq!(base["actor"], "bank-harbour");
    let bank = parties.signer("bank-harbour")?;
    let spends: Vec<String> = [
        "consignee-delta",
        "forwarder-swift",
        "shipper-acme",
        "shipper-borealis",
    ]
    .iter()
    .flat_map(|recipient| {
        let base = &base;
        (0..4).map(move |n| {
            let mut p = base.clone();
            p["recipient"] = json!(recipient);
            p["previousTransitionChecksum"] = json!(hex_of(&t[2]));
            p["time"] = json!(format!("2026-11-05T08:00:0{n}.000Z"));
            p
        })
    })
    .map(|p| sign(bank, &p, TRANSITION_TYP))
    .collect();
    // The same bytes several times as well: duplicates, not spends.
    let mut all = spends.clone();
    all.extend(spends.iter().take(4).cloned());
    let answers = futures::future::join_all(all.iter().map(|jws| reg.submit(jws))).await;
    let mut created = Vec::new();
    let mut conflicts = 0;
    for (jws, answer) in all.iter().zip(answers) {
        let a = answer?;
        match a.status.as_u16() {
            201 => created.push(jws.clone()),
            200 => {}
            409 => {
                assert_problem(&a, 409, "double_spend", None);
                conflicts += 1;
            }
            other => bail!("unexpected {other}: {}", a.text),
        }
    }
    assert_eq!(
        created.len(),
        1,
        "exactly one spend of the head is accepted"
    );
    assert_eq!(reg.size().await?, 4);
    let read = reg
        .get_as(
            "/v1/documents/OCNL2026000102/transitions",
            Some("carrier-oceanic"),
        )
        .await?;
    assert_eq!(read.body["transitions"][3]["signed"], created[0].as_str());
    // Every other distinct spend was refused (repeats of the winner answer 200).
    assert!(conflicts >= spends.len() - 1, "{conflicts} conflicts");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_a_crash() -> Result<()> {
    let mut reg = Registry::start().await?;
    let samples = Samples::load()?;
    let ledger = reg.submit_samples(&samples).await?;
    let size = ledger.len() as u64;
    let before = reg.checkpoint_of(size).await?;
    // SIGKILL right after the acknowledgements, then the same database again.
    let server = &mut reg.server;
    tokio::task::block_in_place(|| -> Result<()> {
        server.kill_9()?;
        server.spawn()
    })?;
    assert_eq!(reg.size().await?, size);
    for (index, jws) in ledger.iter().enumerate() {
        let a = reg.submit(jws).await?;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body["index"], json!(index));
    }
    let after = reg.checkpoint_of(size).await?;
    assert_eq!(after["root"], before["root"]);
    // The chain heads were restored: the next transition of an open chain is accepted.
    let parties = FixtureParties::load()?;
    let open = samples.chain("OCNL2026000103")?;
    let mut next = payload_of(open.transitions.last().context("empty chain")?)?;
    next["action"] = json!("SURRENDER_FOR_DELIVERY");
    next["actor"] = json!("consignee-delta");
    next["recipient"] = json!("carrier-oceanic");
    next["previousTransitionChecksum"] =
        json!(hex_of(open.transitions.last().context("empty chain")?));
    let a = reg
        .submit(&sign(
            parties.signer("consignee-delta")?,
            &next,
            TRANSITION_TYP,
        ))
        .await?;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["index"], json!(size));
    Ok(())
}

/// An ISSUE over the single-item limit (1 MiB), valid in every other way.
fn oversized_issue(parties: &FixtureParties) -> Result<String> {
    let mut payload = fixture_json("payloads/issue.json")?;
    let document = &mut payload["transportDocument"];
    let item = document["consignmentItems"][0].clone();
    let mut items = Vec::new();
    for n in 0..250 {
        let mut item = item.clone();
        item["descriptionOfGoods"] = json!((0..150)
            .map(|line| format!("Item {n:03} line {line:03} {}", "x".repeat(16)))
            .collect::<Vec<_>>());
        items.push(item);
    }
    document["consignmentItems"] = json!(items);
    payload["documentChecksum"] =
        json!(Digest::of(&canonicalize(&payload["transportDocument"])).to_hex());
    let jws = sign(parties.signer("carrier-oceanic")?, &payload, TRANSITION_TYP);
    assert!(jws.len() > 1 << 20, "only {} bytes", jws.len());
    Ok(jws)
}

/// The single-item limit holds for every route: an item a client could not submit alone
/// must not reach the ledger through a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_item_over_the_single_item_limit_is_refused() -> Result<()> {
    let reg = Registry::start().await?;
    let big = oversized_issue(&FixtureParties::load()?)?;
    assert_problem(&reg.submit(&big).await?, 413, "body_too_large", None);
    let a = reg.submit_batch(&[big]).await?;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.body["results"][0]["status"],
        json!(413),
        "{}",
        &a.text[..a.text.len().min(300)]
    );
    assert_eq!(a.body["results"][0]["problem"]["code"], "body_too_large");
    assert_eq!(reg.size().await?, 0);
    Ok(())
}

/// RFC 7235 §2.1 (and RFC 6750): the authentication scheme is case-insensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() -> Result<()> {
    let reg = Registry::start().await?;
    let samples = Samples::load()?;
    let issue = &samples.chain("OCNL2026000101")?.transitions[0];
    assert_eq!(reg.submit(issue).await?.status, StatusCode::CREATED);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let request = reg
            .client
            .get(reg.url("/v1/documents/OCNL2026000101"))
            .header(
                AUTHORIZATION,
                format!("{scheme} {}", token("carrier-oceanic")?),
            );
        let a = Registry::read(request.send().await?).await?;
        assert_eq!(a.status, StatusCode::OK, "{scheme}: {}", a.text);
    }
    Ok(())
}

/// One code, one status: `document_checksum_mismatch` is a 400 field error with a pointer on
/// an ISSUE, so it must be the same on a later transition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_checksum_mismatch_has_one_status() -> Result<()> {
    let reg = Registry::start().await?;
    let parties = FixtureParties::load()?;
    let samples = Samples::load()?;
    let chain = samples.chain("OCNL2026000101")?;
    for jws in &chain.transitions[..2] {
        assert_eq!(reg.submit(jws).await?.status, StatusCode::CREATED);
    }
    let other = json!(Digest::of(b"another document").to_hex());
    let mut issue = fixture_json("payloads/issue.json")?;
    issue["documentChecksum"] = other.clone();
    let on_issue = reg
        .submit(&sign(
            parties.signer("carrier-oceanic")?,
            &issue,
            TRANSITION_TYP,
        ))
        .await?;
    assert_problem(
        &on_issue,
        400,
        "document_checksum_mismatch",
        Some("/documentChecksum"),
    );
    let mut later = payload_of(&chain.transitions[2])?;
    later["documentChecksum"] = other;
    let on_later = reg
        .submit(&sign(
            parties.signer("consignee-delta")?,
            &later,
            TRANSITION_TYP,
        ))
        .await?;
    assert_problem(
        &on_later,
        400,
        "document_checksum_mismatch",
        Some("/documentChecksum"),
    );
    Ok(())
}
