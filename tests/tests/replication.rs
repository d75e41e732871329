//! The replication feed over mutual TLS, end to end: a consortium CA made with `lading ca`, a
//! real `lading serve` that trusts it for client certificates, and HTTPS clients with and
//! without a certificate.
//!
//! What must hold:
//! - no certificate: the handshake succeeds (bearer-token clients still work), and the feed
//!   answers 401 `client_certificate_required`;
//! - a certificate from another CA: the handshake itself fails;
//! - a certificate naming a party that is not registered: 403 `unregistered_party`;
//! - a registered party's replica receives every index, in order, each with its leaf hash, and
//!   the signed bytes exactly for the documents that party may read through the API (and
//!   nothing of the others).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lading_domain::merkle::leaf_hash;
use lading_e2e::harness::{lading_ca, token, ReplicaProcess, Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use lading_e2e::schemas::validator;
use reqwest::StatusCode;
use serde_json::Value;

/// A consortium CA in `dir` with a certificate for each of `parties` in `dir/issued`.
fn consortium(dir: &Path, name: &str, parties: &[&str]) -> Result<PathBuf> {
    let ca = dir.to_str().context("temp path")?;
    lading_ca(&["init", "--dir", ca, "--name", name])?;
    let out = dir.join("issued");
    for party in parties {
        lading_ca(&[
            "issue",
            "--dir",
            ca,
            "--party",
            party,
            "--out",
            out.to_str().context("temp path")?,
        ])?;
    }
    Ok(out)
}

/// An HTTPS client that trusts the registry and presents `party`'s certificate from `issued`.
fn client_as(tls: &Tls, issued: &Path, party: &str) -> Result<reqwest::Client> {
    let mut pem = std::fs::read(issued.join(format!("{party}.crt.pem")))?;
    pem.extend(std::fs::read(issued.join(format!("{party}.key.pem")))?);
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(tls.cert_pem.as_bytes())?)
        .identity(reqwest::Identity::from_pem(&pem)?)
        .build()?)
}

async fn feed(
    client: &reqwest::Client,
    server: &Server,
    query: &str,
) -> Result<(StatusCode, Value)> {
    let response = client
        .get(server.url(&format!("/v1/replication/entries{query}")))
        .send()
        .await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `POST /v1/transitions` with one compact JWS, which must be accepted.
async fn submit(client: &reqwest::Client, server: &Server, jws: &str) -> Result<()> {
    let response = client
        .post(server.url("/v1/transitions"))
        .header("content-type", "application/jose")
        .body(jws.to_owned())
        .send()
        .await?;
    let status = response.status();
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "{status}: {}",
        response.text().await?
    );
    Ok(())
}

/// A registry whose own certificate, like its replicas', comes from one consortium CA (all a
/// replica trusts), with a client that trusts that CA and presents no certificate.
struct ConsortiumRegistry {
    server: Server,
    db: TestDb,
    client: reqwest::Client,
    ca_pem: PathBuf,
    /// Certificates and keys of the parties asked for.
    issued: PathBuf,
    pki: tempfile::TempDir,
}

async fn consortium_registry(parties: &[&str]) -> Result<ConsortiumRegistry> {
    let pki = tempfile::tempdir()?;
    let ca_dir = pki.path().join("ca");
    let issued = consortium(&ca_dir, "Test consortium CA", parties)?;
    let server_out = pki.path().join("registry");
    lading_ca(&[
        "issue",
        "--dir",
        ca_dir.to_str().context("temp path")?,
        "--registry",
        "--server-name",
        "127.0.0.1",
        "--out",
        server_out.to_str().context("temp path")?,
    ])?;
    let tls = Tls::from_pem(
        &std::fs::read_to_string(server_out.join("registry.crt.pem"))?,
        &std::fs::read_to_string(server_out.join("registry.key.pem"))?,
    )?;
    let ca_pem = ca_dir.join("ca.crt.pem");
    let client_ca = ca_pem.clone();
    let (db, server) = tokio::task::spawn_blocking(move || -> Result<_> {
        let db = TestDb::new()?;
        let server = Server::start(
            &db,
            &tls,
            ServerOptions {
                client_ca: Some(client_ca),
                ..ServerOptions::default()
            },
        )?;
        Ok((db, server))
    })
    .await??;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca_pem)?)?)
        .build()?;
    Ok(ConsortiumRegistry {
        server,
        db,
        client,
        ca_pem,
        issued,
        pki,
    })
}

/// A follower of an empty ledger, with the fixtures' party registry and TEST registry key.
fn fresh_follower() -> Result<std::sync::Mutex<lading_domain::follow::Follower>> {
    use lading_e2e::gen::fixtures_dir;
    let registry: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("keys/registry.jwk"),
    )?)?;
    Ok(std::sync::Mutex::new(lading_domain::follow::Follower::new(
        lading_domain::merkle::BLOCK_SIZE,
        registry.verifying_key()?,
        lading_replica::genesis(&std::fs::read_to_string(
            fixtures_dir().join("parties.json"),
        )?)?,
    )?))
}

/// The feed of `server` as `party` (its certificate from `issued`).
fn feed_client(
    server: &Server,
    ca_pem: &Path,
    issued: &Path,
    party: &str,
) -> Result<lading_replica::FeedClient> {
    Ok(lading_replica::FeedClient::new(
        &server.base,
        &std::fs::read(ca_pem)?,
        &std::fs::read(issued.join(format!("{party}.crt.pem")))?,
        &std::fs::read(issued.join(format!("{party}.key.pem")))?,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_needs_a_consortium_certificate_and_gives_each_party_only_its_own_entries(
) -> Result<()> {
    let page_schema = validator("feed-page.json")?;
    let problem_schema = validator("problem.json")?;
    let pki = tempfile::tempdir()?;
    let issued = consortium(
        &pki.path().join("ca"),
        "Test consortium CA",
        &["shipper-acme", "carrier-polaris", "stranger-co"],
    )?;
    let foreign = consortium(
        &pki.path().join("other-ca"),
        "Someone else's CA",
        &["shipper-acme"],
    )?;
    let ca_pem = pki.path().join("ca/ca.crt.pem");

    let (db, tls, server) = tokio::task::spawn_blocking(move || -> Result<_> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(
            &db,
            &tls,
            ServerOptions {
                client_ca: Some(ca_pem),
                ..ServerOptions::default()
            },
        )?;
        Ok((db, tls, server))
    })
    .await??;

    // The sample chains, submitted by a client without a certificate: mutual TLS is optional
    // for everything but the feed.
    let plain = tls.client()?;
    let samples = Samples::load()?;
    let mut ledger = Vec::new();
    for chain in &samples.chains {
        for jws in &chain.transitions {
            submit(&plain, &server, jws).await?;
            ledger.push((chain.reference.clone(), jws.clone()));
        }
    }

    // No certificate: a stable refusal, as problem+json.
    let (status, body) = feed(&plain, &server, "").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "client_certificate_required");
    assert!(problem_schema.is_valid(&body), "{body}");

    // A certificate from another CA does not get through the handshake.
    let outsider = client_as(&tls, &foreign, "shipper-acme")?;
    let refused = outsider
        .get(server.url("/v1/replication/entries"))
        .send()
        .await;
    assert!(refused.is_err(), "a foreign CA's certificate was accepted");

    // A certificate of our CA for a party the registry does not know.
    let stranger = client_as(&tls, &issued, "stranger-co")?;
    let (status, body) = feed(&stranger, &server, "").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "unregistered_party");
    assert!(problem_schema.is_valid(&body), "{body}");

    // Bad paging is refused, not clamped.
    let acme = client_as(&tls, &issued, "shipper-acme")?;
    let (status, body) = feed(&acme, &server, "?limit=0").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_query");

    for party in ["shipper-acme", "carrier-polaris"] {
        let client = client_as(&tls, &issued, party)?;
        // What this party may read through the API decides what the feed gives it in full.
        let mut readable = std::collections::BTreeSet::new();
        for chain in &samples.chains {
            let status = plain
                .get(server.url(&format!("/v1/documents/{}", chain.reference)))
                .bearer_auth(token(party)?)
                .send()
                .await?
                .status();
            if status == StatusCode::OK {
                readable.insert(chain.reference.clone());
            }
        }
        assert!(
            !readable.is_empty() && readable.len() < samples.chains.len(),
            "{party} should read some sample documents and not others: {readable:?}"
        );

        // Paged in twos, to cross page boundaries.
        let mut got = Vec::new();
        loop {
            let (status, body) =
                feed(&client, &server, &format!("?from={}&limit=2", got.len())).await?;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(page_schema.is_valid(&body), "{body}");
            assert_eq!(body["party"], party);
            assert_eq!(body["size"], ledger.len() as u64);
            let page = body["entries"].as_array().context("entries")?.clone();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            got.extend(page);
        }
        assert_eq!(got.len(), ledger.len());
        for (index, (entry, (reference, jws))) in got.iter().zip(&ledger).enumerate() {
            assert_eq!(entry["index"], index as u64);
            assert_eq!(entry["leafHash"], leaf_hash(jws.as_bytes()).to_hex());
            if readable.contains(reference) {
                assert_eq!(entry["signed"], jws.as_str(), "{party} #{index}");
            } else {
                assert!(
                    entry.get("signed").is_none(),
                    "{party} received entry {index} of {reference}, which it may not read"
                );
                // Nothing but the index and the leaf hash.
                assert_eq!(entry.as_object().map(|o| o.len()), Some(2), "{entry}");
            }
        }
    }
    drop(server);
    drop(db);
    Ok(())
}

/// A replica that was not running while the registry took the sample chains catches up from
/// nothing: every entry judged (the party's in full, the rest as hashes), the chains it may
/// read replayed through the state machine to the registry's states, and the registry's latest
/// checkpoint checked against the leaves it now holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_catches_up_from_nothing_and_checks_every_entry_and_the_checkpoint() -> Result<()>
{
    let ConsortiumRegistry {
        server,
        db,
        client: plain,
        ca_pem,
        issued,
        pki: _pki,
    } = consortium_registry(&["shipper-acme"]).await?;
    let samples = Samples::load()?;
    let mut total = 0u64;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            submit(&plain, &server, jws).await?;
            total += 1;
        }
    }
    // Wait for a checkpoint over everything, so the catch-up ends on a checked root.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body: Value = plain
            .get(server.url("/v1/checkpoint"))
            .send()
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        if body["size"].as_u64() == Some(total) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of size {total}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let client = feed_client(&server, &ca_pem, &issued, "shipper-acme")?;
    let held = fresh_follower()?;
    // Pages of 3 entries: page boundaries fall inside chains.
    let done = lading_replica::catch_up(&client, &held, &mut lading_replica::InMemory, 3).await?;
    assert_eq!(done.registry_size, Some(total));
    let document = |reference: &lading_domain::ids::DocumentReference| {
        held.lock().unwrap().document(reference).cloned()
    };
    assert_eq!(held.lock().unwrap().size(), total);
    assert_eq!(done.full + done.hash_only, total);
    assert!(done.full > 0 && done.hash_only > 0, "{done:?}");
    assert_eq!(done.checkpoint, Some(total));

    // Every chain the party may read was replayed to the state the registry holds.
    let mut replayed = 0;
    for chain in &samples.chains {
        let response = plain
            .get(server.url(&format!("/v1/documents/{}", chain.reference)))
            .bearer_auth(token("shipper-acme")?)
            .send()
            .await?;
        let reference = chain.reference.parse()?;
        if response.status() != StatusCode::OK {
            assert!(document(&reference).is_none(), "{}", chain.reference);
            continue;
        }
        let registry_view: Value = response.json().await?;
        let state = document(&reference)
            .with_context(|| format!("{} was not replayed", chain.reference))?;
        assert_eq!(
            serde_json::to_value(&state)?,
            registry_view["state"],
            "{}",
            chain.reference
        );
        replayed += 1;
    }
    assert!(replayed > 0);

    // Caught up, it stays caught up: a second pass fetches nothing new and checks again.
    let again = lading_replica::catch_up(&client, &held, &mut lading_replica::InMemory, 3).await?;
    assert_eq!(again.full + again.hash_only, 0);
    assert_eq!(held.lock().unwrap().size(), total);
    drop(server);
    drop(db);
    Ok(())
}

/// Polls `sql` (one number) on `db` until it reads `want` (20 s deadline).
async fn wait_for(db: &TestDb, sql: &'static str, want: u64) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = db.psql(sql)?.trim().parse::<u64>().unwrap_or(u64::MAX);
        if got == want {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("{sql} gave {got}, waited for {want}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The replica process: started late, it catches up; killed and started again, it judges its
/// own database again and goes on without losing or repeating an entry; and its database
/// holds no byte of the documents its party may not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_process_follows_survives_a_kill_and_holds_nothing_of_others() -> Result<()> {
    use lading_e2e::gen::fixtures_dir;

    let ConsortiumRegistry {
        server,
        db: registry_db,
        client: plain,
        ca_pem,
        issued,
        pki,
    } = consortium_registry(&["shipper-acme"]).await?;
    let replica_db = tokio::task::spawn_blocking(TestDb::new).await??;
    let samples = Samples::load()?;
    let all: Vec<String> = samples
        .chains
        .iter()
        .flat_map(|c| c.transitions.iter().cloned())
        .collect();
    let half = all.len() / 2;
    for jws in &all[..half] {
        submit(&plain, &server, jws).await?;
    }

    // The registry's public key, as a replica is given it.
    let registry_jwk: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("keys/registry.jwk"),
    )?)?;
    let public = pki.path().join("registry.jwk.pub");
    std::fs::write(&public, serde_json::to_vec(&registry_jwk.to_public())?)?;
    let env = vec![
        (
            "LADING_DATABASE_URL".to_owned(),
            replica_db.writer_url.clone(),
        ),
        (
            "LADING_DATABASE_OWNER_URL".to_owned(),
            replica_db.url.clone(),
        ),
        ("LADING_REPLICA_REGISTRY".to_owned(), server.base.clone()),
        ("LADING_REPLICA_CA".to_owned(), ca_pem.display().to_string()),
        (
            "LADING_REPLICA_CERT".to_owned(),
            issued.join("shipper-acme.crt.pem").display().to_string(),
        ),
        (
            "LADING_REPLICA_KEY".to_owned(),
            issued.join("shipper-acme.key.pem").display().to_string(),
        ),
        (
            "LADING_REPLICA_PARTIES".to_owned(),
            fixtures_dir().join("parties.json").display().to_string(),
        ),
        (
            "LADING_REPLICA_REGISTRY_KEY".to_owned(),
            public.display().to_string(),
        ),
        (
            "LADING_REPLICA_POLL_INTERVAL_MS".to_owned(),
            "100".to_owned(),
        ),
        ("LADING_REPLICA_PAGE_SIZE".to_owned(), "4".to_owned()),
    ];
    let mut replica = tokio::task::spawn_blocking(move || ReplicaProcess::start(env)).await??;
    const COUNT: &str = "SELECT count(*) FROM replica_entries";
    wait_for(&replica_db, COUNT, half as u64).await?;

    // Killed while the registry takes the rest; started again, it catches up.
    replica.kill_9()?;
    for jws in &all[half..] {
        submit(&plain, &server, jws).await?;
    }
    let replica = tokio::task::spawn_blocking(move || -> Result<_> {
        replica.spawn()?;
        Ok(replica)
    })
    .await??;
    wait_for(&replica_db, COUNT, all.len() as u64).await?;
    // Gapless, each index once, each leaf the registry's, no incident, and a verified
    // checkpoint over everything.
    let check = replica_db
        .psql("SELECT count(DISTINCT idx) || '|' || coalesce(max(idx), -1) FROM replica_entries")?;
    assert_eq!(check.trim(), format!("{}|{}", all.len(), all.len() - 1));
    for (index, jws) in all.iter().enumerate() {
        let leaf = replica_db.psql(&format!(
            "SELECT encode(leaf_hash, 'hex') FROM replica_entries WHERE idx = {index}"
        ))?;
        assert_eq!(
            leaf.trim(),
            leaf_hash(jws.as_bytes()).to_hex(),
            "entry {index}"
        );
    }
    wait_for(&replica_db, "SELECT count(*) FROM incidents", 0).await?;
    wait_for(
        &replica_db,
        "SELECT count(*) FROM replica_checkpoints WHERE verified AND size = (SELECT count(*) FROM replica_entries)",
        1,
    )
    .await?;

    // Confidentiality: for every document shipper-acme may not read, not one of its signed
    // payloads, and not its reference, is anywhere in the replica's entries.
    let mut hidden = 0;
    for chain in &samples.chains {
        let status = plain
            .get(server.url(&format!("/v1/documents/{}", chain.reference)))
            .bearer_auth(token("shipper-acme")?)
            .send()
            .await?
            .status();
        if status == StatusCode::OK {
            continue;
        }
        hidden += 1;
        for jws in &chain.transitions {
            let payload = jws.split('.').nth(1).context("a compact JWS")?;
            let found = replica_db.psql(&format!(
                "SELECT count(*) FROM replica_entries \
                 WHERE position(convert_to('{payload}', 'UTF8') in coalesce(signed, '')) > 0 \
                    OR document_ref = '{}'",
                chain.reference
            ))?;
            assert_eq!(
                found.trim(),
                "0",
                "{} leaked into the replica",
                chain.reference
            );
        }
    }
    assert!(
        hidden > 0,
        "shipper-acme should not read every sample document"
    );
    drop(replica);
    drop(server);
    drop(registry_db);
    Ok(())
}

/// What a replica kept of the checkpoints: each size, and whether it was kept as checked.
#[derive(Default)]
struct CountingKeeper {
    checkpoints: Vec<(u64, bool)>,
    incidents: Vec<String>,
}

impl CountingKeeper {
    /// The distinct sizes kept.
    fn sizes(&self) -> std::collections::BTreeSet<u64> {
        self.checkpoints.iter().map(|(size, _)| *size).collect()
    }
}

impl lading_replica::Keeper for CountingKeeper {
    fn keep_entries(
        &mut self,
        _: &[(
            lading_domain::follow::FeedEntry,
            Option<lading_domain::ids::DocumentReference>,
        )],
    ) -> Result<(), lading_replica::ReplicaError> {
        Ok(())
    }
    fn keep_backfill(
        &mut self,
        _: u64,
        _: &lading_domain::Digest,
        _: &str,
        _: Option<&lading_domain::ids::DocumentReference>,
    ) -> Result<(), lading_replica::ReplicaError> {
        Ok(())
    }
    fn keep_checkpoint(
        &mut self,
        signed: &str,
        verified: bool,
    ) -> Result<(), lading_replica::ReplicaError> {
        let size = lading_domain::SignedCheckpoint::parse(signed)
            .expect("a checkpoint kept parses")
            .unverified()
            .size;
        self.checkpoints.push((size, verified));
        Ok(())
    }
    fn incident(
        &mut self,
        incident: &lading_domain::follow::Incident,
    ) -> Result<(), lading_replica::ReplicaError> {
        self.incidents.push(incident.to_string());
        Ok(())
    }
}

/// The registry signs a checkpoint every interval while the ledger grows; a replica does not
/// download (or keep) every one: a caught-up replica takes the latest, and a long catch-up
/// about one per page — and every leaf is still checked against a signed root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_takes_the_latest_checkpoint_not_every_one_the_registry_signed() -> Result<()> {
    let ConsortiumRegistry {
        server,
        db,
        client: plain,
        ca_pem,
        issued,
        pki: _pki,
    } = consortium_registry(&["shipper-acme"]).await?;
    // One checkpoint per entry: each submission waits for the checkpoint over it.
    let latest_size = || async {
        let body: Value = plain
            .get(server.url("/v1/checkpoint"))
            .send()
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        anyhow::Ok(body["size"].as_u64())
    };
    let wait_for_checkpoint = |size: u64| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while latest_size().await? != Some(size) {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "no checkpoint of size {size}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        anyhow::Ok(())
    };
    let samples = Samples::load()?;
    let transitions: Vec<&String> = samples.chains.iter().flat_map(|c| &c.transitions).collect();
    let (first, rest) = transitions.split_at(transitions.len() - 4);
    let mut total = 0u64;
    for jws in first {
        submit(&plain, &server, jws).await?;
        total += 1;
        wait_for_checkpoint(total).await?;
    }
    let signed: u64 = db
        .psql("SELECT count(*) FROM checkpoints WHERE size > 0")?
        .trim()
        .parse()?;
    assert_eq!(
        signed, total,
        "the registry signed one checkpoint per entry (besides the empty ledger's, if any)"
    );

    let client = feed_client(&server, &ca_pem, &issued, "shipper-acme")?;
    let follower = fresh_follower;

    // In one page: the latest checkpoint only, taken ahead of the leaves and checked with them.
    let held = follower()?;
    let mut keeper = CountingKeeper::default();
    let done = lading_replica::catch_up(&client, &held, &mut keeper, 1000).await?;
    assert_eq!(done.checkpoint, Some(total));
    assert_eq!(keeper.checkpoints, vec![(total, false), (total, true)]);
    assert!(keeper.incidents.is_empty(), "{:?}", keeper.incidents);
    assert_eq!(held.lock().unwrap().checkpoints_held(), 1);

    // In pages of 5: about one per page, each checked as its page lands.
    let pages = total.div_ceil(5);
    let paged = follower()?;
    let mut paged_keeper = CountingKeeper::default();
    let done = lading_replica::catch_up(&client, &paged, &mut paged_keeper, 5).await?;
    assert_eq!(done.checkpoint, Some(total));
    let sizes = paged_keeper.sizes();
    assert!(
        sizes.len() as u64 <= pages + 1 && (sizes.len() as u64) < signed,
        "{} checkpoints kept in {pages} pages of {signed} signed",
        sizes.len()
    );
    assert!(sizes.len() >= 2, "a long catch-up checks roots on the way");
    for size in &sizes {
        assert!(
            paged_keeper.checkpoints.contains(&(*size, true)),
            "the checkpoint of size {size} was checked against the leaves"
        );
    }
    assert!(paged.lock().unwrap().checkpoints_held() <= 2);
    assert!(
        paged_keeper.incidents.is_empty(),
        "{:?}",
        paged_keeper.incidents
    );

    // Caught up, while the registry signs one checkpoint per entry: one per poll.
    for jws in rest {
        submit(&plain, &server, jws).await?;
        total += 1;
        wait_for_checkpoint(total).await?;
    }
    let mut keeper = CountingKeeper::default();
    lading_replica::catch_up(&client, &held, &mut keeper, 1000).await?;
    assert_eq!(keeper.sizes().into_iter().collect::<Vec<_>>(), vec![total]);
    assert_eq!(
        held.lock()
            .unwrap()
            .latest_verified_checkpoint()
            .map(|c| c.unverified().size),
        Some(total)
    );
    drop(server);
    drop(db);
    Ok(())
}
