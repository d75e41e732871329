//! The link between a replica and the registry, cut mid-stream: a real `lading replica`
//! follows a real `lading serve` through a TCP proxy this test controls (TLS passes through
//! it untouched), in pages of 5 entries so that catching up takes many requests. While the
//! replica catches up, the proxy
//! - closes a connection after forwarding only part of what the registry sent (twice),
//! - stops forwarding in the middle of a response, then resets every live connection (twice),
//!   and once refuses new connections for a while before accepting again.
//!
//! Then the link heals, the registry takes more entries, and the replica follows. A second
//! test cuts the link in the middle of a back-fill (the earlier entries of documents the party
//! joined late, fetched again in full).
//!
//! What must hold:
//! - each cut really threw away bytes the registry had sent (the test cannot pass without
//!   cuts), and every freeze found the replica still catching up (or back-filling);
//! - the replica ends with exactly the registry's entries: indices 0..size, no gap, none
//!   twice, each leaf hash the registry's, and each entry in full exactly when the feed gives
//!   it to the party in full (a cut loses nothing the replica is entitled to);
//! - it holds a verified checkpoint equal to the registry's latest, and no incident.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use lading_e2e::gen::{fixtures_dir, FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{lading_ca, ReplicaProcess, Server, ServerOptions, TestDb, Tls};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// The party whose replica follows the registry.
const PARTY: &str = "shipper-acme";
/// Entries per feed request, for the replica and for the test's own reading of the feed.
const PAGE: u64 = 5;
/// How long anything may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------------

/// What the proxy does once a number of bytes from the registry have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trap {
    /// Forward only part of the chunk the budget ends in, then close the connection (FIN to
    /// the replica after the partial bytes, a reset to the registry).
    Truncate,
    /// Forward only part of that chunk and forward nothing more on that connection: the
    /// replica waits in the middle of a response until [`Link::cut_all`].
    Freeze,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    /// Connections that were open when [`Link::cut_all`] reset them.
    connections_cut: AtomicU64,
    /// Cuts that threw away bytes the registry had sent and the replica never received.
    mid_stream_cuts: AtomicU64,
    /// Bytes forwarded from the registry to the replica.
    forwarded: AtomicU64,
}

/// What every connection of the proxy shares.
struct Shared {
    upstream: SocketAddr,
    stats: Stats,
    /// The armed trap and the bytes from the registry still to pass before it springs.
    trap: Mutex<Option<(Trap, u64)>>,
    sprung: mpsc::UnboundedSender<Trap>,
    /// Bumped to reset every live connection.
    cut: watch::Sender<u64>,
}

impl Shared {
    /// Accounts for `n` bytes just read from the registry: `Some` when the armed trap springs
    /// in them, with how many of them to forward (always fewer than `n`).
    fn spring(&self, n: usize) -> Option<(Trap, usize)> {
        let mut trap = self.trap.lock().unwrap();
        let (kind, left) = (*trap)?;
        if n as u64 <= left {
            *trap = Some((kind, left - n as u64));
            return None;
        }
        *trap = None;
        Some((kind, left as usize))
    }
}

struct Refusal {
    period: Duration,
    closed: oneshot::Sender<()>,
    reopened: oneshot::Sender<()>,
}

/// A TCP proxy in front of the registry: what the replica talks to.
struct Link {
    addr: SocketAddr,
    shared: Arc<Shared>,
    sprung: mpsc::UnboundedReceiver<Trap>,
    refuse: mpsc::UnboundedSender<Refusal>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Link {
    async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = listen("127.0.0.1:0".parse()?)?;
        let addr = listener.local_addr()?;
        let (sprung_tx, sprung) = mpsc::unbounded_channel();
        let (refuse, refusals) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            upstream,
            stats: Stats::default(),
            trap: Mutex::new(None),
            sprung: sprung_tx,
            cut: watch::Sender::new(0),
        });
        let accept_loop = tokio::spawn(accept_loop(addr, listener, shared.clone(), refusals));
        Ok(Self {
            addr,
            shared,
            sprung,
            refuse,
            accept_loop,
        })
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Arms `trap` to spring once `after` more bytes have come from the registry.
    fn arm(&self, trap: Trap, after: u64) {
        *self.shared.trap.lock().unwrap() = Some((trap, after));
    }

    /// Waits until the armed trap has sprung.
    async fn sprung(&mut self, want: Trap) -> Result<()> {
        let got = tokio::time::timeout(PATIENCE, self.sprung.recv())
            .await
            .with_context(|| format!("the {want:?} trap did not spring"))?
            .context("the proxy is gone")?;
        ensure!(got == want, "{got:?} sprang, expected {want:?}");
        Ok(())
    }

    /// Resets every live connection, at once, mid-stream or not.
    fn cut_all(&self) {
        self.shared.cut.send_modify(|generation| *generation += 1);
    }

    /// Waits until `n` connections in all were reset by [`Link::cut_all`].
    async fn reset(&self, n: u64) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while self.stats().connections_cut.load(Ordering::SeqCst) < n {
            ensure!(Instant::now() < deadline, "{n} connections were not reset");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Closes the listening socket (connections are refused, not queued) and opens it again
    /// on the same port after `period`. Returns once it is closed, with a receiver that fires
    /// when it is open again.
    async fn refuse_for(&self, period: Duration) -> Result<oneshot::Receiver<()>> {
        let (closed, closed_rx) = oneshot::channel();
        let (reopened, reopened_rx) = oneshot::channel();
        self.refuse
            .send(Refusal {
                period,
                closed,
                reopened,
            })
            .ok()
            .context("the proxy is gone")?;
        closed_rx.await?;
        Ok(reopened_rx)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut_all();
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

async fn accept_loop(
    addr: SocketAddr,
    mut listener: TcpListener,
    shared: Arc<Shared>,
    mut refusals: mpsc::UnboundedReceiver<Refusal>,
) {
    enum Next {
        Accepted(TcpStream),
        Refuse(Refusal),
        Nothing,
    }
    loop {
        let next = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => Next::Accepted(client),
                Err(_) => Next::Nothing,
            },
            refusal = refusals.recv() => match refusal {
                Some(refusal) => Next::Refuse(refusal),
                None => return,
            },
        };
        match next {
            Next::Accepted(client) => {
                shared.stats.accepted.fetch_add(1, Ordering::SeqCst);
                // Subscribed before the task runs, so that no cut can slip past it.
                let cut = shared.cut.subscribe();
                tokio::spawn(pipe(shared.clone(), client, cut));
            }
            Next::Refuse(refusal) => {
                drop(listener);
                let _ = refusal.closed.send(());
                tokio::time::sleep(refusal.period).await;
                let deadline = Instant::now() + Duration::from_secs(10);
                listener = loop {
                    match listen(addr) {
                        Ok(listener) => break listener,
                        Err(e) if Instant::now() > deadline => {
                            eprintln!("the proxy cannot listen on {addr} again: {e}");
                            return;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
                let _ = refusal.reopened.send(());
            }
            Next::Nothing => {}
        }
    }
}

/// How a proxied connection ended.
enum End {
    Closed,
    Truncated,
    Cut,
}

async fn pipe(shared: Arc<Shared>, mut client: TcpStream, mut cut: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Bytes read from the registry and held back by a freeze.
    let held = AtomicUsize::new(0);
    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let up = async {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            let _ = server_write.shutdown().await;
            // The connection ends when the registry closes its side.
            std::future::pending::<()>().await;
        };
        let down = down(&shared, &mut server_read, &mut client_write, &held);
        tokio::select! {
            () = up => End::Closed,
            end = down => end,
            _ = cut.changed() => End::Cut,
        }
    };
    match end {
        End::Closed => {}
        End::Truncated => {
            let _ = server.set_zero_linger();
        }
        End::Cut => {
            shared.stats.connections_cut.fetch_add(1, Ordering::SeqCst);
            if held.load(Ordering::SeqCst) > 0 {
                shared.stats.mid_stream_cuts.fetch_add(1, Ordering::SeqCst);
            }
            // Dropped with SO_LINGER 0: a reset each way, as when a link dies.
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
    }
}

/// Registry to replica, with the traps.
async fn down(
    shared: &Shared,
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    held: &AtomicUsize,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
        };
        let trap = shared.spring(n);
        let forward = trap.map_or(n, |(_, forward)| forward);
        if to.write_all(&buf[..forward]).await.is_err() {
            return End::Closed;
        }
        shared
            .stats
            .forwarded
            .fetch_add(forward as u64, Ordering::SeqCst);
        match trap {
            None => {}
            Some((Trap::Truncate, _)) => {
                let _ = to.shutdown().await;
                shared.stats.mid_stream_cuts.fetch_add(1, Ordering::SeqCst);
                let _ = shared.sprung.send(Trap::Truncate);
                return End::Truncated;
            }
            Some((Trap::Freeze, forwarded)) => {
                held.store(n - forwarded, Ordering::SeqCst);
                let _ = shared.sprung.send(Trap::Freeze);
                std::future::pending::<()>().await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The registry and the replica
// ---------------------------------------------------------------------------------------------

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("temp path")
}

/// A consortium CA in `pki/ca`, the party's certificate in `pki/issued` and the registry's
/// server certificate (for 127.0.0.1) in `pki/registry`.
fn consortium(pki: &Path) -> Result<()> {
    let ca = pki.join("ca");
    lading_ca(&["init", "--dir", path(&ca)?, "--name", "Test consortium CA"])?;
    lading_ca(&[
        "issue",
        "--dir",
        path(&ca)?,
        "--party",
        PARTY,
        "--out",
        path(&pki.join("issued"))?,
    ])?;
    lading_ca(&[
        "issue",
        "--dir",
        path(&ca)?,
        "--registry",
        "--server-name",
        "127.0.0.1",
        "--out",
        path(&pki.join("registry"))?,
    ])
}

fn number(db: &TestDb, sql: &str) -> Result<u64> {
    let out = db.psql(sql)?;
    out.trim()
        .parse()
        .with_context(|| format!("{sql} gave {out:?}"))
}

/// Polls `sql` (one number) until it reads `want`; the replica must stay up meanwhile.
async fn wait_for(db: &TestDb, replica: &mut ReplicaProcess, sql: &str, want: u64) -> Result<()> {
    wait_for_all(db, replica, &[(sql, want)]).await
}

/// Polls each `(sql, want)` until all of them read what they should; on timeout, names each
/// that does not.
async fn wait_for_all(
    db: &TestDb,
    replica: &mut ReplicaProcess,
    checks: &[(&str, u64)],
) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut unmet = Vec::new();
        for &(sql, want) in checks {
            let got = number(db, sql)?;
            if got != want {
                unmet.push(format!("{sql} gave {got}, not {want}"));
            }
        }
        if unmet.is_empty() {
            return Ok(());
        }
        replica.running()?;
        if Instant::now() > deadline {
            bail!("after {} s: {}", PATIENCE.as_secs(), unmet.join("; and "));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn submit(client: &reqwest::Client, base: &str, path: &str, jws: &str) -> Result<()> {
    let response = client
        .post(format!("{base}{path}"))
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

async fn submit_batch(client: &reqwest::Client, base: &str, items: &[String]) -> Result<()> {
    let response = client
        .post(format!("{base}/v1/transitions/batch"))
        .json(items)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(
        status == StatusCode::OK && body["accepted"] == items.len() as u64,
        "batch: {status}: {body}"
    );
    Ok(())
}

/// The registry's latest checkpoint: its size and compact JWS.
async fn latest_checkpoint(client: &reqwest::Client, base: &str) -> Result<Option<(u64, String)>> {
    let response = client.get(format!("{base}/v1/checkpoint")).send().await?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: Value = response.json().await?;
    Ok(Some((
        body["size"].as_u64().context("checkpoint size")?,
        body["signed"]
            .as_str()
            .context("checkpoint signed")?
            .to_owned(),
    )))
}

/// Waits until the registry has signed a checkpoint over `size` entries; returns it.
async fn checkpoint_of(client: &reqwest::Client, base: &str, size: u64) -> Result<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match latest_checkpoint(client, base).await? {
            Some((got, signed)) if got == size => return Ok(signed),
            Some((got, _)) if got > size => bail!("a checkpoint of {got} > {size} entries"),
            _ => {}
        }
        ensure!(Instant::now() < deadline, "no checkpoint of size {size}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One entry as the feed gives it to the party.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fed {
    index: u64,
    leaf_hash: String,
    signed: Option<String>,
}

/// The whole feed as `client`'s party reads it directly (not through the proxy), in pages
/// of `limit`; also the bytes of the page bodies.
async fn read_feed(client: &reqwest::Client, base: &str, limit: u64) -> Result<(Vec<Fed>, u64)> {
    let mut entries = Vec::new();
    let mut bytes = 0u64;
    loop {
        let response = client
            .get(format!(
                "{base}/v1/replication/entries?from={}&limit={limit}",
                entries.len()
            ))
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        ensure!(
            status == StatusCode::OK,
            "feed: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        bytes += body.len() as u64;
        let page: Value = serde_json::from_slice(&body)?;
        let items = page["entries"].as_array().context("entries")?;
        if items.is_empty() {
            return Ok((entries, bytes));
        }
        for item in items {
            entries.push(Fed {
                index: item["index"].as_u64().context("index")?,
                leaf_hash: item["leafHash"].as_str().context("leafHash")?.to_owned(),
                signed: item["signed"].as_str().map(str::to_owned),
            });
        }
    }
}

/// What the replica's database holds, in index order.
fn replica_entries(db: &TestDb) -> Result<Vec<Fed>> {
    let out = db.psql(
        "SELECT idx, encode(leaf_hash, 'hex'), coalesce(convert_from(signed, 'UTF8'), '-') \
         FROM replica_entries ORDER BY idx",
    )?;
    out.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split('|');
            let mut next = || fields.next().with_context(|| format!("row {line:?}"));
            let index = next()?.parse()?;
            let leaf_hash = next()?.to_owned();
            let signed = next()?;
            Ok(Fed {
                index,
                leaf_hash,
                signed: (signed != "-").then(|| signed.to_owned()),
            })
        })
        .collect()
}

/// A registry that trusts the consortium CA, an empty database for the replica, and clients:
/// one without a certificate (submissions), one with the party's (the feed, read directly).
struct Setup {
    server: Server,
    registry_db: TestDb,
    replica_db: TestDb,
    plain: reqwest::Client,
    as_party: reqwest::Client,
    base: String,
    ca_pem: std::path::PathBuf,
    issued: std::path::PathBuf,
    pki: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Result<Self> {
        let pki = tempfile::tempdir()?;
        let pki_dir = pki.path().to_path_buf();
        let ca_pem = pki_dir.join("ca/ca.crt.pem");
        let issued = pki_dir.join("issued");
        let client_ca = ca_pem.clone();
        let (registry_db, replica_db, server) =
            tokio::task::spawn_blocking(move || -> Result<_> {
                consortium(&pki_dir)?;
                let tls = Tls::from_pem(
                    &std::fs::read_to_string(pki_dir.join("registry/registry.crt.pem"))?,
                    &std::fs::read_to_string(pki_dir.join("registry/registry.key.pem"))?,
                )?;
                let registry_db = TestDb::new()?;
                let replica_db = TestDb::new()?;
                let server = Server::start(
                    &registry_db,
                    &tls,
                    ServerOptions {
                        client_ca: Some(client_ca),
                        ..ServerOptions::default()
                    },
                )?;
                Ok((registry_db, replica_db, server))
            })
            .await??;
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_pem)?)?;
        let plain = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut identity = std::fs::read(issued.join(format!("{PARTY}.crt.pem")))?;
        identity.extend(std::fs::read(issued.join(format!("{PARTY}.key.pem")))?);
        let as_party = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(reqwest::Identity::from_pem(&identity)?)
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = server.base.clone();
        Ok(Self {
            server,
            registry_db,
            replica_db,
            plain,
            as_party,
            base,
            ca_pem,
            issued,
            pki,
        })
    }

    /// The proxy, in front of this registry.
    async fn link(&self) -> Result<Link> {
        Link::start(SocketAddr::from(([127, 0, 0, 1], self.server.port))).await
    }

    /// Starts the party's replica, following `registry` in pages of [`PAGE`].
    async fn replica(&self, registry: String) -> Result<ReplicaProcess> {
        let registry_jwk: lading_domain::jws::Jwk = serde_json::from_str(
            &std::fs::read_to_string(fixtures_dir().join("keys/registry.jwk"))?,
        )?;
        let public = self.pki.path().join("registry.jwk.pub");
        std::fs::write(&public, serde_json::to_vec(&registry_jwk.to_public())?)?;
        let file = |name: &str| self.issued.join(name).display().to_string();
        let env: Vec<(String, String)> = [
            ("LADING_DATABASE_URL", self.replica_db.writer_url.clone()),
            ("LADING_DATABASE_OWNER_URL", self.replica_db.url.clone()),
            ("LADING_REPLICA_REGISTRY", registry),
            ("LADING_REPLICA_CA", self.ca_pem.display().to_string()),
            ("LADING_REPLICA_CERT", file(&format!("{PARTY}.crt.pem"))),
            ("LADING_REPLICA_KEY", file(&format!("{PARTY}.key.pem"))),
            (
                "LADING_REPLICA_PARTIES",
                fixtures_dir().join("parties.json").display().to_string(),
            ),
            ("LADING_REPLICA_REGISTRY_KEY", public.display().to_string()),
            ("LADING_REPLICA_POLL_INTERVAL_MS", "100".to_owned()),
            ("LADING_REPLICA_PAGE_SIZE", PAGE.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        tokio::task::spawn_blocking(move || ReplicaProcess::start(env)).await?
    }

    async fn submit(&self, path: &str, jws: &str) -> Result<()> {
        submit(&self.plain, &self.base, path, jws).await
    }

    async fn submit_batch(&self, items: &[String]) -> Result<()> {
        for batch in items.chunks(50) {
            submit_batch(&self.plain, &self.base, batch).await?;
        }
        Ok(())
    }

    async fn checkpoint_of(&self, size: u64) -> Result<String> {
        checkpoint_of(&self.plain, &self.base, size).await
    }

    /// The whole feed as the party reads it directly, and the bytes of its page bodies.
    async fn feed(&self, limit: u64) -> Result<(Vec<Fed>, u64)> {
        read_feed(&self.as_party, &self.base, limit).await
    }

    /// Waits until the replica holds `size` entries and a verified checkpoint equal to the
    /// registry's latest (which must be over `size` entries), then checks that it holds
    /// exactly what the registry does: each index once, gapless, each leaf the registry's,
    /// each entry in full exactly when the feed gives it to the party, and no incident.
    async fn replica_holds_the_registry(
        &self,
        replica: &mut ReplicaProcess,
        size: u64,
    ) -> Result<()> {
        let signed = self.checkpoint_of(size).await?;
        let db = &self.replica_db;
        wait_for(db, replica, "SELECT count(*) FROM replica_entries", size).await?;
        let (feed, _) = self.feed(1000).await?;
        assert_eq!(feed.len() as u64, size);
        let full = feed.iter().filter(|e| e.signed.is_some()).count() as u64;
        // The latest checkpoint verified, and every entry held in full that the feed gives in
        // full (back-filling runs after the entries are kept: give it its time too).
        wait_for_all(
            db,
            replica,
            &[
                (
                    &format!(
                        "SELECT count(*) FROM replica_checkpoints \
                         WHERE verified AND size = {size} AND signed = '{signed}'"
                    ),
                    1,
                ),
                (
                    "SELECT count(*) FROM replica_entries WHERE signed IS NOT NULL",
                    full,
                ),
            ],
        )
        .await?;

        let shape = db.psql(
            "SELECT count(*) || '|' || count(DISTINCT idx) || '|' || coalesce(min(idx), -1) \
             || '|' || coalesce(max(idx), -1) FROM replica_entries",
        )?;
        assert_eq!(
            shape.trim(),
            format!("{size}|{size}|0|{}", size - 1),
            "count | distinct indices | min | max"
        );
        assert_eq!(
            number(&self.registry_db, "SELECT count(*) FROM ledger_entries")?,
            size
        );
        let leaves = "SELECT idx || ':' || encode(leaf_hash, 'hex')";
        let ours = db.psql(&format!("{leaves} FROM replica_entries ORDER BY idx"))?;
        let theirs = self
            .registry_db
            .psql(&format!("{leaves} FROM ledger_entries ORDER BY idx"))?;
        if let Some((ours, theirs)) = ours.lines().zip(theirs.lines()).find(|(a, b)| a != b) {
            bail!("the replica's leaves are not the registry's: {ours} here, {theirs} there");
        }
        let held = replica_entries(db)?;
        assert_eq!(held.len(), feed.len());
        for (kept, fed) in held.iter().zip(&feed) {
            assert_eq!(
                kept, fed,
                "entry {}: the replica holds something else than the feed gives {PARTY}",
                fed.index
            );
        }
        assert_eq!(number(db, "SELECT count(*) FROM incidents")?, 0);
        replica.running()
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_link_is_cut_mid_stream_loses_nothing_and_stores_nothing_twice(
) -> Result<()> {
    let started = Instant::now();
    let setup = Setup::new().await?;

    // The ledger before the replica starts: the sample chains and events, and a generated
    // ledger in batches. The generator's last transitions wait until after the cuts.
    let samples = Samples::load()?;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            setup.submit("/v1/transitions", jws).await?;
        }
    }
    for jws in &samples.events {
        setup.submit("/v1/events", jws).await?;
    }
    let mut config = GeneratorConfig::new(60, 4, 0x11_4C_1D);
    config.reference_prefix = "LINK".into();
    config.in_flight = 16;
    let mut generator = LedgerGenerator::new(&FixtureParties::load()?, config)?;
    let later = 25;
    let before = generator.next_batch((generator.remaining() - later) as usize)?;
    setup.submit_batch(&before).await?;
    let total = (samples
        .chains
        .iter()
        .map(|c| c.transitions.len())
        .sum::<usize>()
        + samples.events.len()
        + before.len()) as u64;
    setup.checkpoint_of(total).await?;

    // What catching up moves, at the least: the page bodies the party is sent.
    let (feed, feed_bytes) = setup.feed(PAGE).await?;
    assert_eq!(feed.len() as u64, total);
    let full = feed.iter().filter(|e| e.signed.is_some()).count();
    assert!(
        full > 0 && full < feed.len(),
        "{PARTY} should be sent some entries in full and others as hashes ({full} of {total})"
    );
    // Each trap springs after an eighth of that: the four of them spring well before the
    // replica can have been sent every page once.
    let step = feed_bytes / 8;
    eprintln!(
        "{total} entries ({full} in full), {} pages, {feed_bytes} body bytes; a trap every \
         {step} bytes",
        total.div_ceil(PAGE)
    );

    let mut link = setup.link().await?;
    const COUNT: &str = "SELECT count(*) FROM replica_entries";
    // 1. A response cut short: part of it forwarded, then the connection closed.
    link.arm(Trap::Truncate, step);
    let mut replica = setup.replica(link.url()).await?;
    link.sprung(Trap::Truncate).await?;

    // 2. Frozen mid-response; then new connections refused for a while, and every live one
    //    reset.
    link.arm(Trap::Freeze, step);
    link.sprung(Trap::Freeze).await?;
    let held = number(&setup.replica_db, COUNT)?;
    assert!(held < total, "frozen after catching up ({held} of {total})");
    let reopened = link.refuse_for(Duration::from_millis(1500)).await?;
    link.cut_all();
    link.reset(1).await?;
    let refused = TcpStream::connect(link.addr).await;
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the proxy did not refuse a connection: {refused:?}"
    );
    tokio::time::timeout(PATIENCE, reopened)
        .await
        .context("the proxy did not listen again")??;
    let accepted = link.stats().accepted.load(Ordering::SeqCst);

    // 3. Cut short again, on a connection made after the refusal.
    link.arm(Trap::Truncate, step);
    link.sprung(Trap::Truncate).await?;
    assert!(link.stats().accepted.load(Ordering::SeqCst) > accepted);

    // 4. Frozen again, and reset.
    link.arm(Trap::Freeze, step);
    link.sprung(Trap::Freeze).await?;
    let held = number(&setup.replica_db, COUNT)?;
    assert!(held < total, "frozen after catching up ({held} of {total})");
    link.cut_all();
    link.reset(2).await?;
    let cuts_done = Instant::now();

    // The cuts happened, mid-stream. A frozen connection is counted when its task sees the
    // cut, which may come after `reset` counted another connection cut with it (the replica
    // may hold more than one): wait for the count rather than read it at once.
    let deadline = Instant::now() + PATIENCE;
    while link.stats().mid_stream_cuts.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = link.stats();
    let (mid_stream, reset) = (
        stats.mid_stream_cuts.load(Ordering::SeqCst),
        stats.connections_cut.load(Ordering::SeqCst),
    );
    assert!(mid_stream >= 4, "only {mid_stream} mid-stream cuts");
    assert!(reset >= 2, "only {reset} connections reset");

    // The link heals: the replica catches up, then follows what the registry takes next.
    wait_for(&setup.replica_db, &mut replica, COUNT, total).await?;
    let caught_up = Instant::now();
    let rest = generator.next_batch(later as usize)?;
    assert_eq!(rest.len() as u64, later);
    let (single, batch) = rest.split_at(5);
    for jws in single {
        setup.submit("/v1/transitions", jws).await?;
    }
    setup.submit_batch(batch).await?;
    let total = total + later;
    setup
        .replica_holds_the_registry(&mut replica, total)
        .await?;

    let stats = link.stats();
    let accepted = stats.accepted.load(Ordering::SeqCst);
    assert!(
        accepted > 4,
        "the replica reconnected only {accepted} times"
    );
    eprintln!(
        "{mid_stream} mid-stream cuts, {reset} connections reset, {accepted} connections, {} \
         bytes forwarded; cuts done after {:.1} s, caught up {:.1} s later, all checked after \
         {:.1} s",
        stats.forwarded.load(Ordering::SeqCst),
        (cuts_done - started).as_secs_f64(),
        (caught_up - cuts_done).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(replica);
    drop(link);
    Ok(())
}

/// The payload of a compact JWS.
fn payload_of(jws: &str) -> Result<Value> {
    let parsed = lading_domain::CompactJws::parse(jws).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(serde_json::from_slice(parsed.payload_bytes())?)
}

/// A document the party joins after its replica holds the document's first entries as leaf
/// hashes: the replica catches up on the joining entries, then goes back for the earlier ones
/// (the back-fill), and the link is cut in the middle of that. The next catch-up must take up
/// what the cut one still owed: every entry fetched again in full, and the checkpoint its pages
/// verified kept as verified. (The first replica kept both in the catch-up's memory only, and
/// lost them to the cut; the follower now remembers them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_in_the_middle_of_a_back_fill_loses_none_of_the_entries_to_fetch_again() -> Result<()>
{
    let setup = Setup::new().await?;

    // A generated ledger split in two: `first`, which names the party only in documents it
    // holds from their ISSUE on, and `joins`: for each other document that names the party
    // later, the rest of its chain from the transition that names the party.
    let mut config = GeneratorConfig::new(48, 4, 0xBAC4_F111);
    config.reference_prefix = "LATE".into();
    config.in_flight = 12;
    let mut generator = LedgerGenerator::new(&FixtureParties::load()?, config)?;
    let mut first = Vec::new();
    let mut joins = Vec::new();
    let mut joined: std::collections::HashSet<String> = Default::default();
    let mut from_issue: std::collections::HashSet<String> = Default::default();
    // Indices in `first` of each joined document's entries.
    let mut early: std::collections::HashMap<String, Vec<u64>> = Default::default();
    while let Some(t) = generator.next_transition()? {
        let reference = t.reference.to_string();
        let payload = payload_of(&t.compact)?;
        let names_party = payload["actor"] == PARTY || payload["recipient"] == PARTY;
        let is_issue = payload["action"] == "ISSUE";
        if is_issue && names_party {
            from_issue.insert(reference.clone());
        }
        if !from_issue.contains(&reference) && (names_party || joined.contains(&reference)) {
            joined.insert(reference);
            joins.push(t.compact);
        } else {
            early.entry(reference).or_default().push(first.len() as u64);
            first.push(t.compact);
        }
    }
    early.retain(|reference, _| joined.contains(reference));
    setup.submit_batch(&first).await?;
    let size = first.len() as u64;
    setup.checkpoint_of(size).await?;
    let (feed, first_bytes) = setup.feed(PAGE).await?;
    // Until it joins, the party is sent those documents' entries as hashes only.
    let early_indices: Vec<u64> = early.values().flatten().copied().collect();
    for &index in &early_indices {
        assert!(feed[index as usize].signed.is_none(), "entry {index}");
    }
    assert!(
        early.len() >= 3 && early_indices.iter().any(|&i| i > size * 3 / 4),
        "the split gives too few late joins to cut a back-fill: {early:?}"
    );

    let mut link = setup.link().await?;
    let mut replica = setup.replica(link.url()).await?;
    wait_for(
        &setup.replica_db,
        &mut replica,
        "SELECT count(*) FROM replica_entries",
        size,
    )
    .await?;

    // The joining entries come as one batch; the freeze lands a quarter of the way into the
    // back-fill, which reads the ledger from the start again.
    let joins_bytes: u64 = joins.iter().map(|j| j.len() as u64 + 200).sum();
    link.arm(Trap::Freeze, joins_bytes + first_bytes / 4);
    setup.submit_batch(&joins).await?;
    let size = size + joins.len() as u64;
    link.sprung(Trap::Freeze).await?;
    // The joining entries are kept, and the back-fill is under way, not done.
    assert_eq!(
        number(&setup.replica_db, "SELECT count(*) FROM replica_entries")?,
        size,
        "the freeze did not land in the back-fill"
    );
    let list = early_indices
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let pending = number(
        &setup.replica_db,
        &format!("SELECT count(*) FROM replica_entries WHERE signed IS NULL AND idx IN ({list})"),
    )?;
    assert!(pending > 0, "the freeze landed after the back-fill");
    link.cut_all();
    link.reset(1).await?;
    eprintln!(
        "{} late joins, {} entries to fetch again, {pending} of them not yet when the link was cut",
        early.len(),
        early_indices.len()
    );

    setup.replica_holds_the_registry(&mut replica, size).await?;
    assert!(link.stats().mid_stream_cuts.load(Ordering::SeqCst) >= 1);
    drop(replica);
    drop(link);
    Ok(())
}
