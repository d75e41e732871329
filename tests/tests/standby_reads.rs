//! Reads from a hot standby (`database.read_url`): a registry on a PostgreSQL primary with a
//! synchronous standby, and a second registry process on the same database that reads from
//! the standby. Both answer the same; the second shows nothing from the standby beyond the
//! latest checkpoint stored there, even when the standby holds more entries (replay paused
//! between a batch and its checkpoint); what it cannot answer within that bound (a document
//! changed since, a page from the bound on) comes from the primary; and with the standby
//! stopped every read is still answered.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lading_e2e::harness::{
    cluster_dir, database_env, lading_ca, token, Server, ServerOptions, Tls, WRITER_ROLE,
};
use lading_e2e::samples::Samples;
use lading_pgcluster::{failover_url, Cluster, ClusterOptions};
use reqwest::StatusCode;
use serde_json::Value;

/// The registry that sequences signs a checkpoint at most this often: long enough to see the
/// standby replay a batch before the checkpoint over it.
const CHECKPOINT_INTERVAL_MS: u64 = 4_000;
/// Every wait of this test ends by then.
const BUDGET: Duration = Duration::from_secs(240);

/// The URL of `cluster` alone, as the application's role: no `target_session_attrs`, so a
/// standby is taken as it is.
fn direct_url(cluster: &Cluster, role: &lading_pgcluster::LoginRole) -> String {
    let url = failover_url(&[cluster], Some(role), "lading");
    match url.split_once('?') {
        Some((url, _)) => url.to_owned(),
        None => url,
    }
}

/// One number from `sql` on the standby (or the primary).
fn number(cluster: &Cluster, sql: &str) -> Result<u64> {
    let out = cluster.psql("lading", sql)?;
    out.trim()
        .parse()
        .with_context(|| format!("{sql}: {out:?} is not a number"))
}

/// The transactions committed on the standby's database so far (its statistics are flushed
/// about once a second: read after that).
async fn standby_transactions(standby: &Cluster) -> Result<u64> {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    number(
        standby,
        "SELECT xact_commit FROM pg_stat_database WHERE datname = 'lading'",
    )
}

struct Clients {
    /// Trusts the consortium CA; presents no certificate (bearer reads, submissions).
    plain: reqwest::Client,
    /// Presents `carrier-oceanic`'s consortium certificate (the replication feed).
    replica: reqwest::Client,
}

async fn get(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    bearer: Option<&str>,
) -> Result<(StatusCode, Value)> {
    let mut request = client.get(server.url(path));
    if let Some(party) = bearer {
        request = request.bearer_auth(token(party)?);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn post(client: &reqwest::Client, server: &Server, path: &str, jws: &str) -> Result<()> {
    let response = client
        .post(server.url(path))
        .header("content-type", "application/jose")
        .body(jws.to_owned())
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == StatusCode::CREATED,
        "{path}: {status}: {}",
        response.text().await?
    );
    Ok(())
}

/// A feed page as `carrier-oceanic`'s replica gets it.
async fn feed(clients: &Clients, server: &Server, from: u64) -> Result<Value> {
    let (status, body) = get(
        &clients.replica,
        server,
        &format!("/v1/replication/entries?from={from}&limit=10000"),
        None,
    )
    .await?;
    ensure!(status == StatusCode::OK, "feed: {status} {body}");
    Ok(body)
}

fn indexes(page: &Value) -> Vec<u64> {
    page["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["index"].as_u64()).collect())
        .unwrap_or_default()
}

async fn checkpoint_size(clients: &Clients, server: &Server) -> Result<u64> {
    let (_, body) = get(&clients.plain, server, "/v1/checkpoint", None).await?;
    Ok(body["size"].as_u64().unwrap_or(0))
}

/// Until both registries publish a checkpoint of `size` and the standby holds it.
async fn wait_for_checkpoint(
    clients: &Clients,
    servers: [&Server; 2],
    standby: &Cluster,
    size: u64,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = checkpoint_size(clients, servers[0]).await?;
        let b = checkpoint_size(clients, servers[1]).await?;
        let s = number(standby, "SELECT COALESCE(max(size), 0) FROM checkpoints")?;
        if a == size && b == size && s == size {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "no checkpoint of size {size} everywhere: {a}, {b}, standby {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every read of the comparison, as (what, status, body) of one registry.
async fn reads(
    clients: &Clients,
    server: &Server,
    size: u64,
    references: &[String],
) -> Result<Vec<(String, StatusCode, Value)>> {
    let mut out = Vec::new();
    let plain = &clients.plain;
    let mut paths: Vec<(String, Option<&str>)> = vec![
        ("/v1/checkpoints?after=0".into(), None),
        (format!("/v1/checkpoints/{size}"), None),
    ];
    for index in 0..size {
        paths.push((format!("/v1/entries/{index}"), Some("carrier-oceanic")));
        paths.push((format!("/v1/entries/{index}"), Some("carrier-polaris")));
        paths.push((format!("/v1/entries/{index}/proof"), None));
    }
    for reference in references {
        for party in ["carrier-oceanic", "carrier-polaris"] {
            for tail in ["", "/transitions", "/events"] {
                paths.push((format!("/v1/documents/{reference}{tail}"), Some(party)));
            }
        }
    }
    for (path, party) in paths {
        let (status, body) = get(plain, server, &path, party).await?;
        out.push((format!("{path} as {party:?}"), status, body));
    }
    for reference in references {
        let path = format!("/v1/replication/documents/{reference}");
        let (status, body) = get(&clients.replica, server, &path, None).await?;
        out.push((path, status, body));
    }
    out.push((
        "feed from 0".into(),
        StatusCode::OK,
        feed(clients, server, 0).await?,
    ));
    Ok(out)
}

/// The registry with `read_url` answers every read as the one without it.
async fn same_answers(
    clients: &Clients,
    plain: &Server,
    reading: &Server,
    size: u64,
    references: &[String],
) -> Result<()> {
    let want = reads(clients, plain, size, references).await?;
    let got = reads(clients, reading, size, references).await?;
    ensure!(want.len() == got.len());
    for ((what, status, body), (_, got_status, got_body)) in want.iter().zip(&got) {
        ensure!(
            status == got_status && body == got_body,
            "{what}: without read_url {status} {body}\nwith read_url {got_status} {got_body}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_a_hot_standby_show_nothing_beyond_its_checkpoint_and_fall_back_to_the_primary(
) -> Result<()> {
    let deadline = Instant::now() + BUDGET;
    let base = cluster_dir("lading-standby-reads-")?;
    let root = base.path().to_path_buf();
    let options = move |name: &str| {
        ClusterOptions::new(root.join(name))
            .setting("fsync", "off")
            .setting("full_page_writes", "off")
    };

    // The consortium: its CA, carrier-oceanic's replica certificate, the registry's own.
    let pki = base.path().join("pki");
    let ca_dir = pki.join("ca");
    let issued = pki.join("issued");
    let ca = ca_dir.to_str().context("temp path")?;
    lading_ca(&["init", "--dir", ca, "--name", "Standby reads CA"])?;
    let out = issued.to_str().context("temp path")?;
    lading_ca(&[
        "issue",
        "--dir",
        ca,
        "--party",
        "carrier-oceanic",
        "--out",
        out,
    ])?;
    let registry_out = pki.join("registry");
    let registry_dir = registry_out.to_str().context("temp path")?;
    lading_ca(&[
        "issue",
        "--dir",
        ca,
        "--registry",
        "--server-name",
        "127.0.0.1",
        "--out",
        registry_dir,
    ])?;
    let ca_pem = ca_dir.join("ca.crt.pem");
    let clients = clients(&ca_pem, &issued)?;

    let (primary, standby, plain, reading) = {
        let registry_out = registry_out.clone();
        let ca_pem = ca_pem.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let primary = Cluster::start(options("primary"))?;
            let standby = primary.start_standby(options("standby"), "lading_standby")?;
            primary.require_synchronous_standby()?;
            primary.wait_for_synchronous_standby(Duration::from_secs(30))?;
            primary.create_database("lading")?;
            let writer = primary.ensure_login_role(WRITER_ROLE)?;
            let database = database_env(&[&primary], &writer, "lading");
            let tls = Tls::from_pem(
                &std::fs::read_to_string(registry_out.join("registry.crt.pem"))?,
                &std::fs::read_to_string(registry_out.join("registry.key.pem"))?,
            )?;
            // The first process sequences and reads the primary alone; the second, beside
            // it, stands by and reads from the standby.
            let plain = Server::start_with_database(
                database,
                &tls,
                ServerOptions {
                    checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS,
                    client_ca: Some(ca_pem),
                    ..ServerOptions::default()
                },
            )?;
            let reading = plain.beside_with(vec![(
                "LADING_DATABASE_READ_URL".to_owned(),
                direct_url(&standby, &writer),
            )])?;
            Ok((primary, standby, plain, reading))
        })
        .await??
    };
    let servers = [&plain, &reading];

    let samples = Samples::load()?;
    let references: Vec<String> = samples.chains.iter().map(|c| c.reference.clone()).collect();
    // Held back: the last transition of two chains, submitted later.
    let (late_b, late_c) = (
        samples.chains[1]
            .transitions
            .last()
            .context("chain")?
            .clone(),
        samples.chains[0]
            .transitions
            .last()
            .context("chain")?
            .clone(),
    );
    let mut size = 0u64;
    for (i, chain) in samples.chains.iter().enumerate() {
        let keep = if i < 2 {
            chain.transitions.len() - 1
        } else {
            chain.transitions.len()
        };
        for jws in &chain.transitions[..keep] {
            post(&clients.plain, &plain, "/v1/transitions", jws).await?;
            size += 1;
        }
    }
    for jws in &samples.events {
        post(&clients.plain, &plain, "/v1/events", jws).await?;
        size += 1;
    }

    // A checkpoint over the batch, on the standby too. Compared below (a): here the time
    // counts, until the next batch is replayed before the checkpoint interval has passed.
    wait_for_checkpoint(&clients, servers, &standby, size).await?;
    let first = size;

    // The standby holds a batch beyond its latest checkpoint: replay paused after the batch
    // arrived and before the checkpoint over it (the interval has not passed).
    post(&clients.plain, &plain, "/v1/transitions", &late_b).await?;
    size += 1;
    let replayed = Instant::now() + Duration::from_secs(10);
    while number(&standby, "SELECT count(*) FROM ledger_entries")? < size {
        ensure!(
            Instant::now() < replayed,
            "the standby did not replay the batch"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    standby.psql("lading", "SELECT pg_wal_replay_pause()")?;
    let bound = number(&standby, "SELECT COALESCE(max(size), 0) FROM checkpoints")?;
    ensure!(
        bound == first,
        "the checkpoint over the batch came before the pause ({bound}); the interval is too short"
    );
    ensure!(number(&standby, "SELECT count(*) FROM ledger_entries")? == size);

    // A document changed after the pause: only the primary has it.
    post(&clients.plain, &plain, "/v1/transitions", &late_c).await?;
    size += 1;
    // Both publish the checkpoint over everything; the paused standby does not have it.
    let published = Instant::now() + Duration::from_secs(30);
    while checkpoint_size(&clients, &plain).await? < size
        || checkpoint_size(&clients, &reading).await? < size
    {
        ensure!(Instant::now() < published, "no checkpoint of size {size}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(number(&standby, "SELECT COALESCE(max(size), 0) FROM checkpoints")? == first);

    // (b), (c) The feed from the standby ends at its checkpoint, although the standby holds
    // one entry more and the primary two: the standby is used, and bounded.
    let page = feed(&clients, &reading, 0).await?;
    let want: Vec<u64> = (0..first).collect();
    ensure!(
        indexes(&page) == want,
        "feed from the standby: {:?}",
        indexes(&page)
    );
    ensure!(page["size"].as_u64() == Some(first), "{}", page["size"]);
    let full = feed(&clients, &plain, 0).await?;
    ensure!(indexes(&full) == (0..size).collect::<Vec<_>>());
    // From the bound on, the page is the primary's.
    ensure!(feed(&clients, &reading, first).await? == feed(&clients, &plain, first).await?);
    // Everything else is answered as by the registry without read_url: entries past the bound,
    // proofs against the newest checkpoint, the documents changed since (their latest state)
    // and those not changed (from the standby).
    let answers = |server| reads(&clients, server, size, &references);
    let (want, got) = (answers(&plain).await?, answers(&reading).await?);
    for ((what, status, body), (_, got_status, got_body)) in want.iter().zip(&got) {
        if what == "feed from 0" {
            continue;
        }
        ensure!(
            status == got_status && body == got_body,
            "{what} with the standby paused: {status} {body}\nwith read_url {got_status} {got_body}"
        );
    }
    let changed = format!("/v1/documents/{}", samples.chains[0].reference);
    let (status, document) =
        get(&clients.plain, &reading, &changed, Some("carrier-oceanic")).await?;
    ensure!(status == StatusCode::OK, "{status} {document}");
    ensure!(
        document["headIndex"].as_u64() == Some(size - 1),
        "the document changed after the pause: {document}"
    );

    // (a) Resumed, the standby catches up: the registry with read_url answers every read as
    // the one without.
    standby.psql("lading", "SELECT pg_wal_replay_resume()")?;
    wait_for_checkpoint(&clients, servers, &standby, size).await?;
    same_answers(&clients, &plain, &reading, size, &references).await?;

    // (b) The standby does the reading: its own transactions count the reads sent to the
    // registry with read_url (entries below the bound; the chains of documents whose head is
    // below it), none of which the registry without it causes.
    let before = standby_transactions(&standby).await?;
    for _ in 0..4 {
        for reference in &references {
            for party in ["carrier-oceanic", "carrier-polaris"] {
                let path = format!("/v1/documents/{reference}/transitions");
                get(&clients.plain, &plain, &path, Some(party)).await?;
                get(&clients.plain, &reading, &path, Some(party)).await?;
            }
        }
    }
    let documents = standby_transactions(&standby).await? - before;
    ensure!(
        documents >= 20,
        "{documents} transactions on the standby for 20 chains"
    );
    let before = standby_transactions(&standby).await?;
    for index in 0..20 {
        let path = format!("/v1/entries/{index}");
        get(&clients.plain, &plain, &path, Some("carrier-oceanic")).await?;
        get(&clients.plain, &reading, &path, Some("carrier-oceanic")).await?;
    }
    let entries = standby_transactions(&standby).await? - before;
    ensure!(
        entries >= 20,
        "{entries} transactions on the standby for 20 entries"
    );

    // (d) The standby stopped: every read is answered, from the primary. The synchronous
    // standby gone, the primary would wait for it on every commit; nothing is written now.
    tokio::task::spawn_blocking(move || standby.stop()).await??;
    let page = feed(&clients, &reading, 0).await?;
    ensure!(indexes(&page) == (0..size).collect::<Vec<_>>());
    same_answers(&clients, &plain, &reading, size, &references).await?;

    ensure!(Instant::now() < deadline, "over the test's budget");
    drop((plain, reading));
    tokio::task::spawn_blocking(move || primary.stop()).await??;
    Ok(())
}

fn clients(ca_pem: &Path, issued: &Path) -> Result<Clients> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_pem)?)?;
    let plain = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .build()?;
    let party = "carrier-oceanic";
    let mut pem = std::fs::read(issued.join(format!("{party}.crt.pem")))?;
    pem.extend(std::fs::read(issued.join(format!("{party}.key.pem")))?);
    let replica = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(reqwest::Identity::from_pem(&pem)?)
        .build()?;
    Ok(Clients { plain, replica })
}
