//! Replicas as nodes of the consortium, end to end: real `lading serve` and `lading replica`
//! processes, each on its own PostgreSQL database, mutual TLS with certificates from a
//! consortium CA made by `lading ca`.
//!
//! What must hold:
//! - reconciliation finds exactly the rows changed by hand (a payload altered, a leaf altered,
//!   a row deleted, a row the registry never signed), repairs them from the signed originals,
//!   and raises incidents on both sides; two copies that agree cost one round trip, < 1 KB;
//! - a replica serves its party's reads and proofs while the registry is down, keeps the
//!   party's submissions, forwards them in order when the registry is back; of two
//!   conflicting transfers the first is sequenced and the second refused, visibly;
//! - two registries sharing a key and fed different entries are caught by their replicas
//!   comparing checkpoints, with both signed checkpoints kept as evidence;
//! - the replica's face refuses a missing certificate, one from another CA, and a party that
//!   is not its own (or, for reconciliation, anyone but the registry).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use anyhow::Result;
use lading_domain::transition::{Action, SignedTransition, TransitionDraft, TransitionPayload};
use lading_e2e::consortium::{caught_up, post_jose, replica_url, wait_until, Pki};
use lading_e2e::gen::{fixtures_dir, FixtureParties};
use lading_e2e::harness::{free_port, get, post, run_lading as lading, sql_number, TestDb};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// `POST` of a compact JWS as a party's node forwards it: with when the node took it.
async fn post_jose_received(
    client: &reqwest::Client,
    url: &str,
    jws: &str,
    received_at: &str,
) -> Result<(StatusCode, Value)> {
    let response = client
        .post(url)
        .header("content-type", "application/jose")
        .header("lading-received-at", received_at)
        .body(jws.to_owned())
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_finds_exactly_the_rows_changed_and_repairs_them() -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    let port = free_port()?;
    let (registry_db, server, _tls) = pki.registry(&[("shipper-acme", port)], 0, &[]).await?;
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
    let (replica_db, _replica) = pki
        .replica("shipper-acme", &server.base, port, &[], &[])
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, total).await?;

    // A document's own entries, for back-fill: in full where the party may read it; a
    // document it may not read is answered exactly as one that does not exist.
    let document_page = |reference: &str| {
        let url = server.url(&format!("/v1/replication/documents/{reference}"));
        let shipper = &shipper;
        async move { get(shipper, &url).await }
    };
    let (status, page) = document_page("OCNL2026000101").await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    let chain = samples.chain("OCNL2026000101")?;
    assert_eq!(entries.len(), chain.transitions.len());
    for (entry, jws) in entries.iter().zip(&chain.transitions) {
        assert_eq!(entry["signed"].as_str(), Some(jws.as_str()));
    }
    let hidden = document_page("OCNL2026000102").await?;
    let missing = document_page("OCNL2099999999").await?;
    assert_eq!(
        hidden, missing,
        "a hidden document answers as a missing one"
    );
    assert_eq!(hidden.1["entries"], serde_json::json!([]));
    let (status, _) = get(
        &plain,
        &server.url("/v1/replication/documents/OCNL2026000101"),
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let operator = pki.client(Some("registry"))?;
    let reconcile = server.url("/v1/replicas/shipper-acme/reconcile");
    // In agreement: one round trip, well under a kilobyte.
    let (status, report) = post(&operator, &reconcile).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "agree", "{report}");
    assert_eq!(report["roundTrips"], 1);
    assert!(
        report["exchangedBytes"].as_u64().unwrap() < 1024,
        "{report}"
    );

    // Change rows by hand: a payload, the leaf of a hash-only row, and delete another.
    let full = sql_number(
        &replica_db,
        "SELECT min(idx) FROM replica_entries WHERE signed IS NOT NULL AND idx > 0",
    )?;
    let hashed = sql_number(
        &replica_db,
        "SELECT min(idx) FROM replica_entries WHERE signed IS NULL",
    )?;
    let deleted = sql_number(
        &replica_db,
        "SELECT max(idx) FROM replica_entries WHERE signed IS NULL",
    )?;
    assert!(
        hashed != deleted,
        "the samples give the shipper two hidden entries at least"
    );
    replica_db.psql(&format!(
        "UPDATE replica_entries SET signed = overlay(signed placing 'X'::bytea from 20 for 1) WHERE idx = {full}"
    ))?;
    replica_db.psql(&format!(
        "UPDATE replica_entries SET leaf_hash = decode(repeat('ab', 32), 'hex') WHERE idx = {hashed}"
    ))?;
    replica_db.psql(&format!(
        "DELETE FROM replica_entries WHERE idx = {deleted}"
    ))?;

    let (status, report) = post(&operator, &reconcile).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "repaired", "{report}");
    let mut altered = vec![full, hashed];
    altered.sort_unstable();
    assert_eq!(report["altered"], serde_json::json!(altered), "{report}");
    assert_eq!(report["lost"], serde_json::json!([deleted]), "{report}");
    // A descent, not a copy: a few hundred bytes of hashes per difference.
    assert!(report["hashBytes"].as_u64().unwrap() < 3 * 1024, "{report}");

    // The rows are the registry's again, byte for byte.
    for idx in [full, hashed, deleted] {
        let registry_row = registry_db.psql(&format!(
            "SELECT encode(leaf_hash, 'hex') FROM ledger_entries WHERE idx = {idx}"
        ))?;
        let replica_row = replica_db.psql(&format!(
            "SELECT encode(leaf_hash, 'hex') || encode(held_leaf, 'hex') FROM replica_entries WHERE idx = {idx}"
        ))?;
        assert_eq!(
            replica_row.trim(),
            registry_row.trim().repeat(2),
            "entry {idx}"
        );
    }
    let payload = |db: &TestDb, table: &str| {
        db.psql(&format!(
            "SELECT encode(sha256(signed), 'hex') FROM {table} WHERE idx = {full}"
        ))
    };
    assert_eq!(
        payload(&replica_db, "replica_entries")?,
        payload(&registry_db, "ledger_entries")?
    );

    // The findings, on both sides.
    let (_, replicas) = get(&operator, &server.url("/v1/replicas")).await?;
    let codes: Vec<&str> = replicas["replicas"][0]["openIncidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["replica_lost_entries", "replica_altered_entries"],
        "{replicas}"
    );
    assert_eq!(
        replicas["replicas"][0]["lastReconciliation"]["outcome"],
        "repaired"
    );
    let (_, status) = get(&shipper, &format!("https://127.0.0.1:{port}/v1/status")).await?;
    assert_eq!(
        status["openIncidents"][0]["code"], "entries_repaired",
        "{status}"
    );
    assert_eq!(status["lastReconciliation"]["outcome"], "repaired");
    let (_, again) = post(&operator, &reconcile).await?;
    assert_eq!(again["outcome"], "agree", "{again}");

    // A row the registry never signed is found and set aside.
    replica_db.psql(&format!(
        "INSERT INTO replica_entries (idx, leaf_hash) VALUES ({total}, decode(repeat('cd', 32), 'hex'))"
    ))?;
    let (_, report) = post(&operator, &reconcile).await?;
    assert_eq!(report["unsigned"], 1, "{report}");
    assert_eq!(report["outcome"], "repaired", "{report}");
    assert_eq!(
        sql_number(&replica_db, "SELECT count(*) FROM replica_entries")?,
        total
    );
    assert_eq!(
        sql_number(
            &registry_db,
            "SELECT count(*) FROM incidents WHERE party = 'shipper-acme' AND code = 'replica_unsigned_entries'"
        )?,
        1
    );

    // `lading reconcile` is the same call, as the registry's operator.
    let out = lading(
        &["reconcile", "--registry", &server.base],
        &[
            (
                "LADING_RECONCILE_CERT".into(),
                path(&pki.cert("registry")).into(),
            ),
            (
                "LADING_RECONCILE_KEY".into(),
                path(&pki.key("registry")).into(),
            ),
            ("LADING_RECONCILE_CA".into(), path(&pki.ca_pem()).into()),
        ],
    )?;
    assert!(out.starts_with("shipper-acme: agree"), "{out}");

    // A party sees its own replica only, and reconciles nothing else.
    let carrier = pki.client(Some("carrier-oceanic"))?;
    let (_, seen) = get(&carrier, &server.url("/v1/replicas")).await?;
    assert_eq!(seen["replicas"], serde_json::json!([]));
    let (status, problem) = post(&carrier, &reconcile).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, problem) = get(&plain, &server.url("/v1/replicas")).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["code"], "client_certificate_required");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_reconciles_on_its_schedule_without_being_asked() -> Result<()> {
    let pki = Pki::new(&["carrier-oceanic"])?;
    let port = free_port()?;
    let (registry_db, server, _tls) = pki.registry(&[("carrier-oceanic", port)], 300, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    let chain = samples.chain("OCNL2026000101")?;
    for jws in &chain.transitions {
        let (status, _) = post_jose(&plain, &server.url("/v1/transitions"), jws).await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let total = chain.transitions.len() as u64;
    let (replica_db, _replica) = pki
        .replica("carrier-oceanic", &server.base, port, &[], &[])
        .await?;
    let carrier = pki.client(Some("carrier-oceanic"))?;
    caught_up(&carrier, port, total).await?;
    replica_db.psql("DELETE FROM replica_entries WHERE idx = 1")?;
    // Nobody asks: the schedule finds the row missing and puts it back.
    wait_until(
        "the scheduled reconciliation to repair the replica",
        || async {
            Ok(
                (sql_number(&replica_db, "SELECT count(*) FROM replica_entries")? == total)
                    .then_some(()),
            )
        },
    )
    .await?;
    assert_eq!(
        sql_number(
            &registry_db,
            "SELECT count(*) FROM reconciliations WHERE party = 'carrier-oceanic' AND outcome = 'repaired'"
        )?,
        1
    );
    let (_, status) = get(&carrier, &format!("https://127.0.0.1:{port}/v1/status")).await?;
    assert_eq!(
        status["openIncidents"][0]["code"], "entries_repaired",
        "{status}"
    );
    assert_eq!(
        status["openIncidents"][0]["evidence"]["lost"],
        serde_json::json!([1])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_the_registry_keeps_refusing_as_unavailable_is_parked_and_the_queue_moves_on(
) -> Result<()> {
    let pki = Pki::new(&["shipper-acme"])?;
    let port = free_port()?;
    let (registry_db, server, _tls) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    let (first, other) = (
        samples.chain("OCNL2026000101")?,
        samples.chain("OCNL2026000103")?,
    );
    let plain = pki.client(None)?;
    for issue in [&first.transitions[0], &other.transitions[0]] {
        let (status, body) = post_jose(&plain, &server.url("/v1/transitions"), issue).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_replica_db, _replica) = pki
        .replica(
            "shipper-acme",
            &server.base,
            port,
            &[],
            &[("LADING_REPLICA_PARK_AFTER_MS", "1500")],
        )
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, 2).await?;
    let node = |p: &str| format!("https://127.0.0.1:{port}{p}");

    // The registry's database refuses every transition of the first bill: the registry
    // answers them 503, as it would for a fault of its own.
    registry_db.psql(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.document_ref = 'OCNL2026000101' THEN \
             RAISE EXCEPTION 'poisoned row of OCNL2026000101'; END IF; \
           RETURN NEW; END $$; \
         CREATE TRIGGER poison BEFORE INSERT ON transitions \
           FOR EACH ROW EXECUTE FUNCTION poison();",
    )?;
    let stuck = &first.transitions[1];
    let behind = conflicting_transfer(&first.transitions[0])?;
    let mut seqs = Vec::new();
    for jws in [
        stuck.as_str(),
        behind.as_str(),
        other.transitions[1].as_str(),
    ] {
        let (status, body) = post_jose(&shipper, &node("/v1/transitions"), jws).await?;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        seqs.push(body["seq"].as_i64().unwrap());
    }

    // The other bill's transfer goes through once the stuck one is parked.
    let list = wait_until("the queue to move past the parked submission", || async {
        let (_, list) = get(&shipper, &node("/v1/submissions")).await?;
        Ok((list[2]["state"] == "sequenced").then_some(list))
    })
    .await?;
    assert_eq!(list[0]["state"], "parked", "{list}");
    assert_eq!(list[0]["answer"]["code"], "parked");
    assert_eq!(list[0]["answer"]["status"], 503);
    assert!(list[0]["attempts"].as_i64().unwrap() >= 2, "{list}");
    let registry_said = &list[0]["answer"]["registryAnswer"];
    assert_eq!(registry_said["code"], "ledger_unavailable", "{list}");
    assert!(
        !registry_said.to_string().contains("poisoned"),
        "no answer carries an internal error's text: {registry_said}"
    );
    // The same bill's next submission waits behind it, parked too, never overtaking it.
    assert_eq!(list[1]["state"], "parked", "{list}");
    assert_eq!(list[1]["answer"]["code"], "parked_behind");
    assert_eq!(list[1]["answer"]["behind"], seqs[0]);
    let (_, status) = get(&shipper, &node("/v1/status")).await?;
    assert_eq!(status["submissions"]["parked"], 2, "{status}");
    assert_eq!(status["submissions"]["sequenced"], 1, "{status}");

    // Only a parked submission can be retried.
    let (status, problem) = post(
        &shipper,
        &node(&format!("/v1/submissions/{}/retry", seqs[2])),
    )
    .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "not_parked");
    // Fixed, retried: the stuck one is sequenced first, then the one behind it is judged
    // (a second transfer of the same bill: a double spend).
    registry_db.psql("DROP TRIGGER poison ON transitions;")?;
    let (status, again) = post(
        &shipper,
        &node(&format!("/v1/submissions/{}/retry", seqs[0])),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["state"], "pending");
    let list = wait_until("the retried submissions to be answered", || async {
        let (_, list) = get(&shipper, &node("/v1/submissions")).await?;
        Ok((list[0]["state"] != "pending" && list[1]["state"] != "pending").then_some(list))
    })
    .await?;
    assert_eq!(list[0]["state"], "sequenced", "{list}");
    assert_eq!(list[1]["state"], "refused", "{list}");
    assert_eq!(list[1]["answer"]["code"], "double_spend", "{list}");
    assert!(
        list[0]["answer"]["index"].as_u64() > list[2]["answer"]["index"].as_u64(),
        "the other bill went first: {list}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statements_time_is_judged_against_the_clock_or_when_its_partys_node_took_it(
) -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic", "consignee-delta"])?;
    // The default rule: five minutes of skew, a week offline.
    let (_db, server, _tls) = pki
        .registry(
            &[],
            0,
            &[
                ("LADING_MAX_CLOCK_SKEW_MS", "300000"),
                ("LADING_MAX_OFFLINE_MS", "604800000"),
            ],
        )
        .await?;
    let parties = FixtureParties::load()?;
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        lading_domain::Timestamp::from_datetime_truncated(now + chrono::Duration::minutes(minutes))
            .to_string()
    };
    let sign = |who: &str, payload: &Value| -> Result<String> {
        Ok(parties.signer(who)?.sign_compact(
            &lading_domain::canonicalize(payload),
            lading_domain::TRANSITION_TYP,
        ))
    };
    let url = server.url("/v1/transitions");
    let plain = pki.client(None)?;
    let (carrier, shipper, consignee) = (
        pki.client(Some("carrier-oceanic"))?,
        pki.client(Some("shipper-acme"))?,
        pki.client(Some("consignee-delta"))?,
    );

    // An ISSUE the carrier signed two hours ago: stale for anyone, fine from the carrier's
    // own node, which took it then.
    let mut issue: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("payloads/issue.json"),
    )?)?;
    issue["time"] = json!(at(-120));
    let issue = sign("carrier-oceanic", &issue)?;
    let (status, problem) = post_jose(&plain, &url, &issue).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "time_skew");
    let (status, entry) = post_jose_received(&carrier, &url, &issue, &at(-120)).await?;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    // Once on the ledger, the same bytes are a duplicate, however late they come again.
    let (status, again) = post_jose(&plain, &url, &issue).await?;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);

    let issued = SignedTransition::parse(&issue)?;
    let next = |actor: &str, action: &str, recipient: &str, previous: &str, time: String| {
        json!({
            "action": action,
            "actor": actor,
            "recipient": recipient,
            "documentChecksum": issued.payload().document_checksum().to_hex(),
            "documentReference": issued.payload().document_reference().as_str(),
            "previousTransitionChecksum": lading_domain::Digest::of(previous.as_bytes()).to_hex(),
            "time": time,
        })
    };
    let transfer = sign(
        "shipper-acme",
        &next(
            "shipper-acme",
            "TRANSFER",
            "consignee-delta",
            &issue,
            at(-60),
        ),
    )?;
    // The receipt time counts only from the signer's own node ...
    let (status, problem) = post_jose_received(&plain, &url, &transfer, &at(-60)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "time_skew");
    // (another party's node may not hand in the shipper's statements at all: the shipper has
    // not authorised it to submit for it)
    let (status, problem) = post_jose_received(&carrier, &url, &transfer, &at(-60)).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "submitter_not_authorised");
    // ... and only for a week: an old signature is not brought in as "taken offline".
    let (status, problem) =
        post_jose_received(&shipper, &url, &transfer, &at(-8 * 24 * 60)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "time_skew");
    // A receipt time must be a timestamp.
    let (status, problem) = post_jose_received(&shipper, &url, &transfer, "yesterday").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "bad_header");
    let (status, entry) = post_jose_received(&shipper, &url, &transfer, &at(-60)).await?;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["state"]["headTime"], json!(at(-60)));

    // The chain rule: never dated before the transition it follows, wherever it comes from.
    let surrender_at = |time: String| {
        sign(
            "consignee-delta",
            &next(
                "consignee-delta",
                "SURRENDER_FOR_DELIVERY",
                "carrier-oceanic",
                &transfer,
                time,
            ),
        )
    };
    let surrender = surrender_at(at(-90))?;
    let (status, problem) = post_jose_received(&consignee, &url, &surrender, &at(-90)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "time_before_previous");
    // A statement from the future is as stale as one from the past.
    let (status, problem) = post_jose(&plain, &url, &surrender_at(at(10))?).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "time_skew");
    let surrender = surrender_at(at(0))?;
    let (status, entry) = post_jose(&plain, &url, &surrender).await?;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    Ok(())
}

/// The shipper's second TRANSFER of `issue`'s bill, to the carrier instead of the consignee.
fn conflicting_transfer(issue: &str) -> Result<String> {
    conflicting_transfer_at(issue, "2026-11-02T11:40:00.000Z")
}

/// [`conflicting_transfer`] signed at `time`: another signed statement of the same kind.
fn conflicting_transfer_at(issue: &str, time: &str) -> Result<String> {
    let issue = SignedTransition::parse(issue)?;
    let parties = FixtureParties::load()?;
    let payload = TransitionPayload::new(TransitionDraft {
        previous_transition_checksum: Some(issue.checksum()),
        action: Action::Transfer,
        actor: "shipper-acme".parse()?,
        recipient: Some("carrier-oceanic".parse()?),
        transport_document: None,
        time: time.parse()?,
        ..issue.payload().clone().into_draft()
    })?;
    Ok(payload.sign(parties.signer("shipper-acme")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_its_party_and_keeps_its_submissions_while_the_registry_is_away(
) -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    let port = free_port()?;
    let (_registry_db, mut server, _tls) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    let chain = samples.chain("OCNL2026000101")?;
    let (issue, transfer) = (&chain.transitions[0], &chain.transitions[1]);
    let plain = pki.client(None)?;
    let (status, _) = post_jose(&plain, &server.url("/v1/transitions"), issue).await?;
    assert_eq!(status, StatusCode::CREATED);
    let (_replica_db, _replica) = pki
        .replica("shipper-acme", &server.base, port, &[], &[])
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;
    caught_up(&shipper, port, 1).await?;

    // The registry goes away.
    server.kill_9()?;
    let node = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let (status, document) = get(&shipper, &node("/v1/documents/OCNL2026000101")).await?;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["possessor"], "shipper-acme");
    assert_eq!(
        document["transportDocument"]["transportDocumentReference"],
        "OCNL2026000101"
    );
    let (_, chain_read) = get(&shipper, &node("/v1/documents/OCNL2026000101/transitions")).await?;
    assert_eq!(chain_read[0]["signed"], issue.as_str());
    let (status, proof) = get(&shipper, &node("/v1/entries/0/proof")).await?;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let checked: lading_domain::merkle::InclusionProof =
        serde_json::from_value(proof["proof"].clone())?;
    lading_domain::verify_inclusion(
        &checked,
        lading_domain::merkle::leaf_hash(issue.as_bytes()),
        proof["checkpoint"]["root"].as_str().unwrap().parse()?,
    )?;

    // Two transfers of the one bill, both signed by its holder: both kept, in order.
    let conflicting = conflicting_transfer(issue)?;
    let (status, first) = post_jose(&shipper, &node("/v1/transitions"), transfer).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["state"], "pending");
    let (status, second) = post_jose(&shipper, &node("/v1/transitions"), &conflicting).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert!(second["seq"].as_i64() > first["seq"].as_i64());
    // Someone else's signature is not the shipper's to submit.
    let (status, problem) =
        post_jose(&shipper, &node("/v1/transitions"), &chain.transitions[2]).await?;
    // The same code has the same status at a replica as at the registry.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "key_not_actor");
    // A transition sent to the events endpoint is refused before anything is kept.
    let third = conflicting_transfer_at(issue, "2026-11-02T11:41:00.000Z")?;
    let (status, problem) = post_jose(&shipper, &node("/v1/events"), &third).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "wrong_kind");
    let (_, kept) = get(&shipper, &node("/v1/submissions")).await?;
    assert_eq!(
        kept.as_array().map(Vec::len),
        Some(2),
        "a refused submission is never kept: {kept}"
    );

    // Back: the first is sequenced, the second refused, and the replica says so.
    server.spawn()?;
    let submissions = wait_until("both submissions answered", || async {
        let (_, list) = get(&shipper, &node("/v1/submissions")).await?;
        let done = list
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|s| s["state"] != "pending"));
        Ok(done.then_some(list))
    })
    .await?;
    assert_eq!(submissions[0]["state"], "sequenced", "{submissions}");
    assert_eq!(submissions[0]["answer"]["index"], 1);
    assert_eq!(submissions[1]["state"], "refused", "{submissions}");
    // The second child of one parent: the registry's double-spend refusal, kept as it said it.
    let code = submissions[1]["answer"]["code"].as_str().unwrap();
    assert_eq!(code, "double_spend", "{submissions}");
    assert_eq!(submissions[1]["answer"]["status"], 409);
    let seq = submissions[1]["seq"].as_i64().unwrap();
    let (_, one) = get(&shipper, &node(&format!("/v1/submissions/{seq}"))).await?;
    assert_eq!(one["answer"]["code"], code);
    // And the ledger the replica follows has the first transfer.
    let document = wait_until("the transfer to reach the replica", || async {
        let (_, d) = get(&shipper, &node("/v1/documents/OCNL2026000101")).await?;
        Ok((d["possessor"] == "consignee-delta").then_some(d))
    })
    .await?;
    assert_eq!(document["length"], 2);
    let (_, status) = get(&shipper, &node("/v1/status")).await?;
    assert_eq!(status["submissions"]["refused"], 1);
    assert_eq!(status["submissions"]["sequenced"], 1);

    // Who may call what.
    let carrier = pki.client(Some("carrier-oceanic"))?;
    let (status, problem) = get(&carrier, &node("/v1/status")).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "not_this_replicas_party");
    let (status, _) = get(&carrier, &node("/v1/documents/OCNL2026000101")).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, held) = get(&carrier, &node("/v1/checkpoints")).await?;
    assert_eq!(status, StatusCode::OK, "a member compares checkpoints");
    assert!(!held["checkpoints"].as_array().unwrap().is_empty());
    let (status, problem) = post(&shipper, &node("/v1/reconciliation")).await?;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the registry reconciles: {problem}"
    );
    for path in ["/v1/status", "/v1/checkpoints", "/v1/submissions"] {
        let (status, problem) = get(&plain, &node(path)).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(problem["code"], "client_certificate_required");
    }
    let (status, _) = post(&plain, &node("/v1/reconciliation")).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A certificate from another CA does not get through the handshake, anywhere.
    let foreign = Pki::new(&["shipper-acme"])?;
    let outsider = foreign.client(Some("shipper-acme"))?;
    let trusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            pki.ca_pem(),
        )?)?)
        .identity(reqwest::Identity::from_pem(
            &[
                std::fs::read(foreign.cert("shipper-acme"))?,
                std::fs::read(foreign.key("shipper-acme"))?,
            ]
            .concat(),
        )?)
        .build()?;
    for url in [
        node("/v1/status"),
        node("/v1/checkpoints"),
        node("/v1/reconciliation"),
        server.url("/v1/replication/entries"),
        server.url("/v1/replication/documents/OCNL2026000101"),
        server.url("/v1/replicas"),
    ] {
        assert!(outsider.get(&url).send().await.is_err(), "{url}");
        assert!(trusting.get(&url).send().await.is_err(), "{url}");
    }
    Ok(())
}

/// A peer ahead of this replica: the registry is asked for its checkpoint of the peer's size
/// and a consistency proof from what this replica verified. A registry that shows the peer a
/// longer history it will not show this replica is caught before any entry of it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_ahead_is_checked_with_the_registrys_consistency_proof() -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    // Two registries with the one key: B has A's entry and two more.
    let (_db_a, server_a, _tls_a) = pki.registry(&[], 0, &[]).await?;
    let (_db_b, server_b, _tls_b) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    let first = &samples.chain("OCNL2026000101")?.transitions[0];
    for jws in [
        first,
        &samples.chain("OCNL2026000103")?.transitions[0],
        &samples.chain("OCNL2026000102")?.transitions[0],
    ] {
        let (status, body) = post_jose(&plain, &server_b.url("/v1/transitions"), jws).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = post_jose(&plain, &server_a.url("/v1/transitions"), first).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (port_a, port_b) = (free_port()?, free_port()?);
    let (db_a, _a) = pki
        .replica(
            "shipper-acme",
            &server_a.base,
            port_a,
            &[replica_url(port_b)],
            &[],
        )
        .await?;
    let (db_b, _b) = pki
        .replica(
            "carrier-oceanic",
            &server_b.base,
            port_b,
            &[replica_url(port_a)],
            &[],
        )
        .await?;
    let evidence = wait_until("the unacknowledged checkpoint to be recorded", || async {
        let found = db_a.psql(
            "SELECT evidence::text FROM incidents \
             WHERE code = 'unacknowledged_checkpoint' LIMIT 1",
        )?;
        Ok((!found.trim().is_empty()).then(|| found.trim().to_owned()))
    })
    .await?;
    let evidence: Value = serde_json::from_str(&evidence)?;
    // B may have signed a checkpoint at 2 as well as at 3: either is ahead of A's one entry.
    let size = evidence["size"].as_u64().unwrap();
    assert!((2..=3).contains(&size), "{evidence}");
    let key: lading_domain::jws::Jwk =
        serde_json::from_str(&std::fs::read_to_string(pki.registry_key())?)?;
    let signed = lading_domain::SignedCheckpoint::parse(evidence["signed"].as_str().unwrap())?;
    assert_eq!(
        signed.verify(&key.verifying_key()?)?.size,
        size,
        "the registry's own signature"
    );
    // The first entry is the same on both sides: the peer behind has nothing to report.
    let reported = db_b.psql("SELECT count(*) FROM incidents")?;
    assert_eq!(
        reported.trim(),
        "0",
        "the replica ahead found nothing wrong"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_comparing_checkpoints_catch_a_registry_with_two_histories() -> Result<()> {
    let pki = Pki::new(&["shipper-acme", "carrier-oceanic"])?;
    // Two registries with the one key, each fed a different entry.
    let (_db_a, server_a, _tls_a) = pki.registry(&[], 0, &[]).await?;
    let (_db_b, server_b, _tls_b) = pki.registry(&[], 0, &[]).await?;
    let samples = Samples::load()?;
    let plain = pki.client(None)?;
    for (server, reference) in [(&server_a, "OCNL2026000101"), (&server_b, "OCNL2026000103")] {
        let issue = &samples.chain(reference)?.transitions[0];
        let (status, _) = post_jose(&plain, &server.url("/v1/transitions"), issue).await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (port_a, port_b) = (free_port()?, free_port()?);
    let (db_a, _a) = pki
        .replica(
            "shipper-acme",
            &server_a.base,
            port_a,
            &[replica_url(port_b)],
            &[],
        )
        .await?;
    let (db_b, _b) = pki
        .replica(
            "carrier-oceanic",
            &server_b.base,
            port_b,
            &[replica_url(port_a)],
            &[],
        )
        .await?;

    let registry = pki.registry_key();
    let key: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(registry)?)?;
    let key = key.verifying_key()?;
    for db in [&db_a, &db_b] {
        let evidence = wait_until("the conflict to be recorded", || async {
            let found = db.psql(
                "SELECT evidence::text FROM incidents WHERE code = 'conflicting_checkpoints' LIMIT 1",
            )?;
            Ok((!found.trim().is_empty()).then(|| found.trim().to_owned()))
        })
        .await?;
        let evidence: Value = serde_json::from_str(&evidence)?;
        assert_eq!(evidence["size"], 1);
        // Both are the registry key's signatures, over one size and two roots.
        let roots: Vec<_> = ["first", "second"]
            .iter()
            .map(|which| {
                let signed =
                    lading_domain::SignedCheckpoint::parse(evidence[which].as_str().unwrap())
                        .unwrap();
                let checkpoint = signed.verify(&key).unwrap();
                assert_eq!(checkpoint.size, 1);
                checkpoint.root
            })
            .collect();
        assert_ne!(roots[0], roots[1]);
    }
    Ok(())
}

/// An ISSUE by `carrier` (signed with `key`) of a bill `reference` to shipper-acme, dated now.
fn issue_by(
    carrier: &str,
    reference: &str,
    key: &lading_domain::jws::SigningKey,
) -> Result<String> {
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("payloads/issue.json"),
    )?)?;
    let document = &mut payload["transportDocument"];
    document["carrier"] = json!(carrier);
    document["carrierCode"] = json!(&reference[..4]);
    document["transportDocumentReference"] = json!(reference);
    let document = lading_domain::TransportDocument::from_json(document)?;
    Ok(TransitionPayload::issue(
        document,
        carrier.parse()?,
        "shipper-acme".parse()?,
        lading_domain::Timestamp::now(),
    )?
    .sign(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_and_keys_change_on_the_ledger_and_replicas_follow_without_a_restart() -> Result<()>
{
    let pki = Pki::new(&["shipper-acme", "carrier-nova"])?;
    let (_db, mut server, _tls) = pki.registry(&[], 0, &[]).await?;
    let registry = server.url("");
    let registry = registry.trim_end_matches('/');
    let plain = pki.client(None)?;
    // The shipper's replica runs from the start, on the genesis (fixtures/parties.json), which
    // does not know carrier-nova.
    let shipper_port = free_port()?;
    let (_shipper_db, _shipper_node) = pki
        .replica("shipper-acme", registry, shipper_port, &[], &[])
        .await?;
    let shipper = pki.client(Some("shipper-acme"))?;

    let keys = tempfile::tempdir()?;
    let key_file = |n: u8| keys.path().join(format!("nova-{n}.jwk"));
    for n in [1u8, 2] {
        lading(
            &[
                "keygen",
                "--kid",
                &format!("carrier-nova:{n}"),
                "--out",
                path(&key_file(n)),
            ],
            &[],
        )?;
    }
    let signing = |n: u8| -> Result<lading_domain::jws::SigningKey> {
        let jwk: lading_domain::jws::Jwk =
            serde_json::from_str(&std::fs::read_to_string(key_file(n))?)?;
        Ok(jwk.signing_key()?)
    };
    let public = |n: u8| format!("{}.pub", path(&key_file(n)));
    let operator = fixtures_dir().join("keys/operator.jwk");
    let ca = pki.ca_pem();
    let at_registry = ["--registry", registry, "--cacert", path(&ca)];
    let party = |args: &[&str]| -> Result<Value> {
        let mut all = vec!["party"];
        all.extend_from_slice(args);
        all.extend_from_slice(&at_registry);
        Ok(serde_json::from_str(&lading(&all, &[])?)?)
    };

    // Only the operator adds a party: carrier-nova's own key is nobody's yet.
    let refused = lading(
        &[
            "party",
            "add",
            "--key",
            path(&key_file(1)),
            "--actor",
            "carrier-nova",
            "--id",
            "carrier-nova",
            "--name",
            "Nova Lines",
            "--role",
            "carrier",
            "--public-key",
            &public(1),
            "--registry",
            registry,
            "--cacert",
            path(&pki.ca_pem()),
        ],
        &[],
    );
    assert!(refused.is_err(), "a party cannot add itself");
    let added = party(&[
        "add",
        "--key",
        path(&operator),
        "--id",
        "carrier-nova",
        "--name",
        "Nova Lines",
        "--role",
        "carrier",
        "--public-key",
        &public(1),
    ])?;
    assert_eq!(added["kind"], "party", "{added}");
    let added_at = added["index"].as_u64().unwrap();

    // The new carrier's first transition: the registry takes it, and the shipper's running
    // replica, which learned the key from the ledger, checks it in full.
    let first = issue_by("carrier-nova", "NOVA2026000001", &signing(1)?)?;
    let (status, entry) = post_jose(&plain, &format!("{registry}/v1/transitions"), &first).await?;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let size = entry["index"].as_u64().unwrap() + 1;
    let held = caught_up(&shipper, shipper_port, size).await?;
    assert_eq!(held["openIncidents"], json!([]), "{held}");
    let (status, document) = get(
        &shipper,
        &format!("https://127.0.0.1:{shipper_port}/v1/documents/NOVA2026000001"),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{document}");

    // Rotation: the party adds its second key with its first, then revokes the first with it.
    let rotated = party(&[
        "add-key",
        "--key",
        path(&key_file(1)),
        "--party",
        "carrier-nova",
        "--public-key",
        &public(2),
    ])?;
    let revoked = party(&[
        "revoke-key",
        "--key",
        path(&key_file(1)),
        "--party",
        "carrier-nova",
        "--kid",
        "carrier-nova:1",
    ])?;
    let revoked_at = revoked["index"].as_u64().unwrap();
    // The old key signs nothing more; the new one does.
    let (status, problem) = post_jose(
        &plain,
        &format!("{registry}/v1/transitions"),
        &issue_by("carrier-nova", "NOVA2026000002", &signing(1)?)?,
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "revoked_key");
    // What the old key signed in time stays valid: sent again, it is the duplicate it is.
    let (status, again) = post_jose(&plain, &format!("{registry}/v1/transitions"), &first).await?;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    let (status, entry) = post_jose(
        &plain,
        &format!("{registry}/v1/transitions"),
        &issue_by("carrier-nova", "NOVA2026000002", &signing(2)?)?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    let size = entry["index"].as_u64().unwrap() + 1;

    // Every member reads the membership with each key's history.
    let listed = lading(
        &[
            "party",
            "list",
            "--token",
            &lading_e2e::harness::token("shipper-acme")?,
            "--registry",
            registry,
            "--cacert",
            path(&pki.ca_pem()),
        ],
        &[],
    )?;
    let listed: Value = serde_json::from_str(&listed)?;
    let nova = listed["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "carrier-nova")
        .unwrap();
    assert_eq!(nova["addedAt"], added_at);
    assert_eq!(nova["keys"][0]["jwk"]["kid"], "carrier-nova:1");
    assert_eq!(nova["keys"][0]["revokedAt"], revoked_at);
    assert_eq!(nova["keys"][1]["addedAt"], rotated["index"]);
    assert!(listed["operatorKeys"][0]["jwk"]["kid"] == "operator:test-2026");

    // carrier-nova's own node, started only now from the genesis file alone, learns its keys
    // from the ledger: it refuses a submission signed with the revoked key and keeps one
    // signed with the new key.
    let nova_port = free_port()?;
    let (_nova_db, mut nova_node) = pki
        .replica("carrier-nova", registry, nova_port, &[], &[])
        .await?;
    let nova = pki.client(Some("carrier-nova"))?;
    caught_up(&nova, nova_port, size).await?;
    let node = format!("https://127.0.0.1:{nova_port}/v1/transitions");
    let (status, problem) = post_jose(
        &nova,
        &node,
        &issue_by("carrier-nova", "NOVA2026000003", &signing(1)?)?,
    )
    .await?;
    assert!(status.is_client_error(), "{problem}");
    assert_eq!(problem["code"], "revoked_key");
    let (status, kept) = post_jose(
        &nova,
        &node,
        &issue_by("carrier-nova", "NOVA2026000003", &signing(2)?)?,
    )
    .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{kept}");

    // Nothing is forgotten in a crash: the registry reloads the membership from its database,
    // the node replays it from the entries it holds (the node's submission is forwarded too).
    server.kill_9()?;
    server.spawn()?;
    nova_node.kill_9()?;
    nova_node.spawn()?;
    caught_up(&nova, nova_port, size + 1).await?;
    let old_key_again = issue_by("carrier-nova", "NOVA2026000005", &signing(1)?)?;
    let (status, problem) = post_jose(
        &plain,
        &format!("{registry}/v1/transitions"),
        &old_key_again,
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "revoked_key");
    let (status, problem) = post_jose(&nova, &node, &old_key_again).await?;
    assert!(status.is_client_error(), "{problem}");
    assert_eq!(problem["code"], "revoked_key");

    // Removed, the party signs nothing more.
    let removed = party(&["remove", "--key", path(&operator), "--id", "carrier-nova"])?;
    assert_eq!(removed["kind"], "party");
    let (status, problem) = post_jose(
        &plain,
        &format!("{registry}/v1/transitions"),
        &issue_by("carrier-nova", "NOVA2026000004", &signing(2)?)?,
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "not_a_member");
    // Nor does it read: its certificate is nobody's to the registry now.
    let (status, problem) = get(
        &nova,
        &format!("{registry}/v1/replication/entries?from=0&limit=1"),
    )
    .await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "unregistered_party");
    // The shipper's replica followed all of it without an incident.
    let size = removed["index"].as_u64().unwrap() + 1;
    let held = caught_up(&shipper, shipper_port, size).await?;
    assert_eq!(held["openIncidents"], json!([]), "{held}");
    Ok(())
}
