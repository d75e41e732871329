//! A replica's reads and its trust boundaries, end to end: real `lading serve` and `lading
//! replica` processes on their own PostgreSQL databases, mutual TLS with certificates from a
//! consortium CA made by `lading ca`, rows altered by SQL behind the replica's back.
//!
//! What must hold:
//! - a document is served only as the chain the replica verified, whole: a transition row
//!   deleted (a middle one, or the ISSUE) or moved to another document by hand answers
//!   `503 chain_damaged` — never a short or foreign chain, never a document without its
//!   transport document — and is one incident with the rows as evidence, however often it is
//!   read; a reconciliation that puts the rows back serves the document again, and a row moved
//!   to another document is put back where its signed bytes say when the replica restarts;
//! - a back-fill the registry does not answer in full (the earlier entries of a document the
//!   party joined late) is an incident with what the registry served, and the document answers
//!   `503 chain_unverified` instead of a state it could not check; once the entries come, it is
//!   served;
//! - a server with a party's certificate issued for the registry's host name is not the
//!   registry: the replica's handshake with it fails, and no request — no submission — reaches
//!   it;
//! - a peer serving checkpoints the registry did not sign (forged, or not checkpoints at all)
//!   is one incident about that peer, however many it serves, and never an incident against
//!   the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use lading_domain::merkle::leaf_hash;
use lading_e2e::consortium::{caught_up, post_jose, wait_until, Pki};
use lading_e2e::gen::FixtureParties;
use lading_e2e::harness::{free_port, get, post, sql_number, TestDb};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The index of the row holding `jws` in a replica's database.
fn index_of(db: &TestDb, jws: &str) -> Result<u64> {
    sql_number(
        db,
        &format!(
            "SELECT idx FROM replica_entries WHERE leaf_hash = decode('{}', 'hex')",
            leaf_hash(jws.as_bytes()).to_hex()
        ),
    )
}

/// Open incidents with `code` about `document`, at a replica.
fn open_about(db: &TestDb, code: &str, document: &str) -> Result<u64> {
    sql_number(
        db,
        &format!(
            "SELECT count(*) FROM incidents WHERE code = '{code}' AND closed_at IS NULL \
             AND evidence->>'document' = '{document}'"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Reads that cannot lie

/// Rows deleted or moved to another document by hand: the reads answer 503 and the damage is
/// an incident; a reconciliation puts deleted rows back and the document is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_served_as_its_verified_chain_whole_or_not_at_all() -> Result<()> {
    let pki = Pki::new(&["shipper-acme"])?;
    let port = free_port()?;
    let (_registry_db, server, _tls) = pki.registry(&[("shipper-acme", port)], 0, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    let mut total = 0u64;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let (status, body) = post_jose(&plain, &server.url("/v1/transitions"), jws).await?;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            total += 1;
        }
    }
    for jws in &samples.events {
        let (status, body) = post_jose(&plain, &server.url("/v1/events"), jws).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        total += 1;
    }
    let (db, mut replica) = pki
        .replica("shipper-acme", &server.base, port, &[], &[])
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, total).await?;
    let node = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let operator = pki.client(Some("registry"))?;
    let reconcile = || async {
        let (status, report) = post(
            &operator,
            &server.url("/v1/replicas/shipper-acme/reconcile"),
        )
        .await?;
        anyhow::ensure!(status == StatusCode::OK, "{report}");
        Ok::<_, anyhow::Error>(report)
    };

    // Whole: every transition of the chain, the ISSUE first, with the transport document.
    let bill = samples.chain("OCNL2026000101")?;
    let whole = |document: Value, chain: Value| {
        assert_eq!(document["length"], bill.transitions.len(), "{document}");
        assert_eq!(
            document["transportDocument"]["transportDocumentReference"], "OCNL2026000101",
            "{document}"
        );
        let signed: Vec<&str> = chain
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["signed"].as_str().unwrap())
            .collect();
        assert_eq!(signed, bill.transitions, "{chain}");
    };
    let read = |reference: &'static str| {
        let shipper = &shipper;
        async move {
            let document = get(shipper, &node(&format!("/v1/documents/{reference}"))).await?;
            let chain = get(
                shipper,
                &node(&format!("/v1/documents/{reference}/transitions")),
            )
            .await?;
            Ok::<_, anyhow::Error>((document, chain))
        }
    };
    let damaged = |answer: &(StatusCode, Value)| {
        assert_eq!(answer.0, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.1);
        assert_eq!(answer.1["code"], "chain_damaged", "{}", answer.1);
        assert_eq!(answer.1["status"], 503);
    };
    let ((status, document), (_, chain)) = read("OCNL2026000101").await?;
    assert_eq!(status, StatusCode::OK, "{document}");
    whole(document, chain);

    // A transition in the middle of the chain deleted: no shorter chain is served.
    let transfer = index_of(&db, &bill.transitions[1])?;
    db.psql(&format!(
        "DELETE FROM replica_entries WHERE idx = {transfer}"
    ))?;
    let (document, chain) = read("OCNL2026000101").await?;
    damaged(&document);
    damaged(&chain);
    // Read again: still one incident, with the rows as they are.
    read("OCNL2026000101").await?;
    assert_eq!(open_about(&db, "chain_damaged", "OCNL2026000101")?, 1);
    let evidence: Value = serde_json::from_str(db.psql(
        "SELECT evidence::text FROM incidents WHERE code = 'chain_damaged' AND closed_at IS NULL",
    )?.trim())?;
    assert_eq!(
        evidence["verified"]["length"],
        bill.transitions.len(),
        "{evidence}"
    );
    assert!(
        evidence["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["index"] != transfer),
        "{evidence}"
    );
    let (_, status) = get(&shipper, &node("/v1/status")).await?;
    assert!(
        status["openIncidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "chain_damaged"),
        "{status}"
    );
    // Reconciliation puts the row back; the document is whole again, the incident closed.
    let report = reconcile().await?;
    assert_eq!(report["lost"], json!([transfer]), "{report}");
    let ((status, document), (_, chain)) = read("OCNL2026000101").await?;
    assert_eq!(status, StatusCode::OK, "{document}");
    whole(document, chain);
    assert_eq!(open_about(&db, "chain_damaged", "OCNL2026000101")?, 0);

    // The ISSUE deleted: never a document without its transport document.
    let issue = index_of(&db, &bill.transitions[0])?;
    db.psql(&format!("DELETE FROM replica_entries WHERE idx = {issue}"))?;
    let (document, chain) = read("OCNL2026000101").await?;
    damaged(&document);
    damaged(&chain);
    assert_eq!(open_about(&db, "chain_damaged", "OCNL2026000101")?, 1);
    reconcile().await?;
    let ((status, document), (_, chain)) = read("OCNL2026000101").await?;
    assert_eq!(status, StatusCode::OK, "{document}");
    whole(document, chain);

    // A transition retagged to another document by hand: it drops out of one chain and
    // appears in the other. Neither is served.
    let amended = samples.chain("PLRS2026000201")?;
    let moved = index_of(&db, &amended.transitions[1])?;
    db.psql(&format!(
        "UPDATE replica_entries SET document_ref = 'OCNL2026000103' WHERE idx = {moved}"
    ))?;
    for reference in ["PLRS2026000201", "OCNL2026000103"] {
        let (document, chain) = read(reference).await?;
        damaged(&document);
        damaged(&chain);
        assert_eq!(
            open_about(&db, "chain_damaged", reference)?,
            1,
            "{reference}"
        );
    }
    let (_, problem) = read("OCNL2026000103").await?.0;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("is a transition of PLRS2026000201"),
        "{problem}"
    );
    // Documents left alone are served as ever.
    let (status, document) = get(&shipper, &node("/v1/documents/OCNL2026000101")).await?;
    assert_eq!(status, StatusCode::OK, "{document}");
    // Reconciliation compares leaves, which are intact. The replica puts the row back where
    // its signed bytes say when it judges its own rows again, on start.
    replica.kill_9()?;
    replica.spawn()?;
    for reference in ["PLRS2026000201", "OCNL2026000103"] {
        let ((status, document), _) = read(reference).await?;
        assert_eq!(status, StatusCode::OK, "{document}");
        assert_eq!(
            open_about(&db, "chain_damaged", reference)?,
            0,
            "{reference}"
        );
    }
    let evidence: Value = serde_json::from_str(
        db.psql("SELECT evidence::text FROM incidents WHERE code = 'document_refs_repaired'")?
            .trim(),
    )?;
    assert_eq!(
        evidence["rows"],
        json!([{ "index": moved, "documentRef": "OCNL2026000103", "signedFor": "PLRS2026000201" }]),
        "{evidence}"
    );
    Ok(())
}

/// The registry withholds a document's ISSUE from the party that joined its chain late: the
/// back-fill gives up, as an incident with what was served, and the document is not served as
/// verified. Once the ISSUE comes, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_back_fill_gives_up_is_an_incident_and_is_not_served_as_verified(
) -> Result<()> {
    let pki = Pki::new(&["forwarder-swift"])?;
    let (registry_db, server, _tls) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    // Issued to shipper-borealis, blank endorsed, then transferred to forwarder-swift, whom
    // the document does not name: the forwarder joins the chain at its fifth transition.
    let bill = samples.chain("PLRS2026000202")?;
    let plain = pki.client(None)?;
    for jws in &bill.transitions[..4] {
        let (status, body) = post_jose(&plain, &server.url("/v1/transitions"), jws).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let port = free_port()?;
    let (db, mut replica) = pki
        .replica("forwarder-swift", &server.base, port, &[], &[])
        .await?;
    let forwarder = pki.client(Some("forwarder-swift"))?;
    caught_up(&forwarder, port, 4).await?;
    let document = format!("https://127.0.0.1:{port}/v1/documents/PLRS2026000202");
    let (status, _) = get(&forwarder, &document).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "held as hashes only");

    // The registry's database loses the ISSUE's place in the document (kept aside here), so
    // its back-fill page lists the later transitions alone.
    registry_db.psql(
        "CREATE TABLE withheld AS SELECT * FROM transitions WHERE idx = 0; \
         SET session_replication_role = replica; \
         DELETE FROM transitions WHERE idx = 0",
    )?;
    let (status, body) =
        post_jose(&plain, &server.url("/v1/transitions"), &bill.transitions[4]).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    caught_up(&forwarder, port, 5).await?;
    let evidence = wait_until("the back-fill to give up", || async {
        let found = db.psql(
            "SELECT evidence::text FROM incidents WHERE code = 'chain_unverified' \
             AND closed_at IS NULL",
        )?;
        Ok((!found.trim().is_empty()).then(|| found.trim().to_owned()))
    })
    .await?;
    let evidence: Value = serde_json::from_str(&evidence)?;
    assert_eq!(evidence["document"], "PLRS2026000202", "{evidence}");
    assert_eq!(evidence["lateIndex"], 4, "{evidence}");
    assert_eq!(
        evidence["served"],
        json!([1, 2, 3, 4]
            .iter()
            .map(|i| json!({ "index": i, "full": true }))
            .collect::<Vec<_>>()),
        "{evidence}"
    );
    // Its transfer was taken without the state machine: the replica says it cannot vouch.
    for url in [document.clone(), format!("{document}/transitions")] {
        let (status, problem) = get(&forwarder, &url).await?;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert_eq!(problem["code"], "chain_unverified", "{problem}");
    }
    let (_, status) = get(&forwarder, &format!("https://127.0.0.1:{port}/v1/status")).await?;
    assert!(
        status["openIncidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "chain_unverified"),
        "{status}"
    );

    // Restarted, the replica tries again and gives up again: still one incident.
    replica.kill_9()?;
    replica.spawn()?;
    wait_until("the replica to give up again after its restart", || async {
        let (status, problem) = get(&forwarder, &document).await?;
        Ok((status == StatusCode::SERVICE_UNAVAILABLE
            && problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("did not come in full")))
        .then_some(()))
    })
    .await?;
    assert_eq!(open_about(&db, "chain_unverified", "PLRS2026000202")?, 1);

    // The registry serves the ISSUE again: the next back-fill completes the chain.
    registry_db.psql("INSERT INTO transitions SELECT * FROM withheld")?;
    replica.kill_9()?;
    replica.spawn()?;
    let verified = wait_until("the chain to be verified", || async {
        let (status, document) = get(&forwarder, &document).await?;
        Ok((status == StatusCode::OK).then_some(document))
    })
    .await?;
    assert_eq!(verified["length"], 5, "{verified}");
    assert_eq!(verified["possessor"], "forwarder-swift", "{verified}");
    // ...and the incident that said it was not verified is closed.
    wait_until("the chain_unverified incident to close", || async {
        Ok((open_about(&db, "chain_unverified", "PLRS2026000202")? == 0).then_some(()))
    })
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Trust boundaries: a fake server, real TLS

/// What a [`FakeServer`] saw.
#[derive(Debug, Default)]
struct Seen {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// Requests read whole, as `METHOD path` and body.
    requests: Mutex<Vec<(String, String)>>,
}

/// An HTTPS server on 127.0.0.1 with a consortium certificate of our choosing, answering every
/// request with `answer(n, request line)`, the n-th request counted from 0.
struct FakeServer {
    base: String,
    seen: Arc<Seen>,
}

type Answer = dyn Fn(usize, &str) -> (u16, String) + Send + Sync;

impl FakeServer {
    fn start(pki: &Pki, who: &str, answer: Box<Answer>) -> Result<Self> {
        let certs = lading_pki::parse_certs(std::fs::read(pki.cert(who))?)?;
        let key = lading_pki::parse_key(std::fs::read(pki.key(who))?)?;
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(lading_pki::client_verifier(std::fs::read(pki.ca_pem())?)?)
            .with_single_cert(certs, key)?,
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = format!("https://{}", listener.local_addr()?);
        let seen = Arc::new(Seen::default());
        let answer: Arc<Answer> = Arc::from(answer);
        let shared = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (config, seen, answer) = (config.clone(), shared.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = serve(tcp, config, &seen, &*answer);
                });
            }
        });
        Ok(Self { base, seen })
    }

    fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.seen.requests.lock().unwrap().clone()
    }
}

/// One connection: the handshake, then requests until the client closes.
fn serve(
    tcp: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: &Seen,
    answer: &Answer,
) -> Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config)?, tcp);
    let mut reader = BufReader::new(tls);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request = line.trim_end().to_owned();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let n = {
            let mut requests = seen.requests.lock().unwrap();
            requests.push((request.clone(), String::from_utf8_lossy(&body).into_owned()));
            requests.len() - 1
        };
        let (status, text) = answer(n, &request);
        let out = reader.get_mut();
        write!(
            out,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        )?;
        out.flush()?;
    }
}

/// A party's certificate issued for the registry's host name is not the registry's: the
/// replica refuses it in the handshake, and its party's submission never reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_certificate_for_the_registrys_host_cannot_pose_as_the_registry() -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    // The shipper's own certificate, issued for 127.0.0.1 like any replica's face.
    let impostor = FakeServer::start(
        &pki,
        "shipper-acme",
        Box::new(|_, _| (503, r#"{"code":"not_ready"}"#.to_owned())),
    )?;
    let port = free_port()?;
    let (_db, _replica) = pki
        .replica("carrier-oceanic", &impostor.base, port, &[], &[])
        .await?;
    let carrier = pki.client(Some("carrier-oceanic"))?;
    let samples = Samples::load()?;
    let issue = &samples.chain("OCNL2026000101")?.transitions[0];
    let (status, taken) = post_jose(
        &carrier,
        &format!("https://127.0.0.1:{port}/v1/transitions"),
        issue,
    )
    .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{taken}");
    // The replica keeps trying (following, forwarding): several connections after the
    // submission was taken, each refused in the handshake — or, were it taken for the
    // registry, requests on one of them.
    let after = impostor.connections();
    wait_until("the replica to try the impostor again", || async {
        let tried = impostor.connections() >= after + 5
            || impostor
                .requests()
                .iter()
                .any(|(line, _)| line.starts_with("POST /v1/transitions"));
        Ok(tried.then_some(()))
    })
    .await?;
    assert_eq!(
        impostor.requests(),
        Vec::<(String, String)>::new(),
        "nothing may reach a server that is not the registry"
    );
    let (_, kept) = get(
        &carrier,
        &format!("https://127.0.0.1:{port}/v1/submissions"),
    )
    .await?;
    assert_eq!(kept[0]["state"], "pending", "{kept}");
    Ok(())
}

/// A checkpoint signed with another key than the registry's, for this ledger's block size.
fn forged_checkpoint(size: u64) -> Result<String> {
    let parties = FixtureParties::load()?;
    Ok(lading_domain::Checkpoint {
        size,
        root: lading_domain::Digest::of(&size.to_be_bytes()),
        time: lading_domain::Timestamp::now(),
        block_size: lading_domain::merkle::BLOCK_SIZE as u32,
    }
    .sign(parties.signer("carrier-oceanic")?))
}

/// A peer that serves checkpoints the registry did not sign — a new forgery every time, ahead
/// of the replica and behind it, and garbage — is one incident about that peer, and none
/// against the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_bad_checkpoints_are_one_incident_about_the_peer_and_none_about_the_registry(
) -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    let (_registry_db, server, _tls) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    let bill = samples.chain("OCNL2026000101")?;
    for jws in &bill.transitions[..2] {
        let (status, body) = post_jose(&plain, &server.url("/v1/transitions"), jws).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let forgeries: Vec<String> = (0..64u64)
        .map(|n| forged_checkpoint(if n % 2 == 0 { 1 } else { 1_000 + n }))
        .collect::<Result<_>>()?;
    let peer = FakeServer::start(
        &pki,
        "carrier-oceanic",
        Box::new(move |n, _| {
            let served = match n % 3 {
                0 => json!([forgeries[n % forgeries.len()]]),
                1 => json!(["not a checkpoint", forgeries[(n + 1) % forgeries.len()]]),
                _ => json!([forgeries[(n + 3) % forgeries.len()], "x.y.z"]),
            };
            (200, json!({ "checkpoints": served }).to_string())
        }),
    )?;
    let port = free_port()?;
    let (db, _replica) = pki
        .replica(
            "shipper-acme",
            &server.base,
            port,
            std::slice::from_ref(&peer.base),
            &[],
        )
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, 2).await?;
    // Many rounds, each with something new and bad.
    let asked = peer.requests().len();
    wait_until("the peer to be asked many times", || async {
        Ok((peer.requests().len() >= asked + 12).then_some(()))
    })
    .await?;
    assert!(peer
        .requests()
        .iter()
        .all(|(line, _)| line.starts_with("GET /v1/checkpoints?")));
    let incidents =
        db.psql("SELECT code || ' ' || coalesce(party, '-') FROM incidents ORDER BY id")?;
    assert_eq!(
        incidents.trim(),
        "peer_bad_checkpoint carrier-oceanic",
        "one incident, about the peer"
    );
    let evidence: Value =
        serde_json::from_str(db.psql("SELECT evidence::text FROM incidents")?.trim())?;
    assert_eq!(evidence["peer"], peer.base.as_str(), "{evidence}");
    assert_eq!(evidence["party"], "carrier-oceanic", "{evidence}");
    let (_, status) = get(&shipper, &format!("https://127.0.0.1:{port}/v1/status")).await?;
    let open = status["openIncidents"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{status}");
    assert_eq!(open[0]["code"], "peer_bad_checkpoint");
    assert_eq!(open[0]["party"], "carrier-oceanic");
    // The replica still follows the registry, and trusts it as before.
    let (status, body) =
        post_jose(&plain, &server.url("/v1/transitions"), &bill.transitions[2]).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    caught_up(&shipper, port, 3).await?;
    Ok(())
}
