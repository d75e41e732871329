//! `lading-load`: measures how fast a registry ingests signed transitions, and checks that
//! everything it acknowledged is durable.
//!
//! Each run starts a fresh PostgreSQL cluster with durable settings (`fsync=on`,
//! `synchronous_commit=on`) and a `lading serve` on it, sends pre-signed transitions, then kills
//! the registry (SIGKILL) and PostgreSQL (immediate shutdown, no checkpoint), restarts
//! PostgreSQL (WAL replay) and counts the ledger: it must hold exactly the acknowledged entries.
//!
//! Modes:
//! - `batch`: `POST /v1/transitions/batch`, `--batch` transitions per request, a few connections
//!   (default 4), 200,000 transitions by default;
//! - `single`: `POST /v1/transitions`, one transition per request, `--concurrency` connections
//!   (default 64), 50,000 transitions by default.
//!
//! Throughput is acknowledged transitions divided by the wall time of the whole run (first
//! request sent to last answer read). See `lading_e2e::load` for how streams are sharded and
//! percentiles computed.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-load cargo build --release -p lading --bin lading
//! CARGO_TARGET_DIR=/work/target-load cargo run --release -p lading-e2e --bin lading-load -- \
//!     --release-binary --mode both --runs 3
//! ```
//!
//! With `--soak N` it runs a crash soak instead (`lading_e2e::soak`): N cycles of load, `kill -9`
//! of the registry mid-load (and of PostgreSQL every `--soak-postgres-every` cycles), restart,
//! and a check of every acknowledged entry and signed checkpoint so far; it fails when anything
//! acknowledged was lost or a checkpoint does not verify.

// A benchmark tool: printing its table is its job.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use lading_e2e::gen::fixtures_dir;
use lading_e2e::harness::Tls;
use lading_e2e::load::{
    generate_shards_naming, logged_request_times, machine_busy, median, own_cpu, split_evenly,
    tree_cpu, DurableCluster, LatencySummary, RegistryProcess, RegistrySettings,
};
use lading_e2e::receiver::Receiver;
use lading_e2e::soak::{self, SoakConfig};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Batch,
    Single,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Http {
    /// HTTP/1.1 with keep-alive: one TCP connection per concurrent sender.
    H1,
    /// HTTP/2 (ALPN h2): concurrent senders share `--h2-connections` connections.
    H2,
    /// Both, one after the other.
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "lading-load",
    about = "Ingest benchmark of a Lading registry on durable PostgreSQL"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Transitions per run [default: 200000 for batch, 50000 for single].
    #[arg(long)]
    total: Option<usize>,
    /// Transitions per batch request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent senders [default: 4 for batch, 64 for single].
    #[arg(long)]
    concurrency: Option<usize>,
    #[arg(long, value_enum, default_value_t = Http::H1)]
    http: Http,
    /// TCP connections shared by the senders under HTTP/2 (batch mode uses one per sender).
    #[arg(long, default_value_t = 2)]
    h2_connections: usize,
    /// Runs per mode and protocol, each on a fresh cluster; the summary gives their medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Use `<target>/release/lading` as built (`cargo build --release -p lading`).
    #[arg(long)]
    release_binary: bool,
    /// Use this `lading` binary.
    #[arg(long, conflicts_with = "release_binary")]
    lading_bin: Option<PathBuf>,
    /// HTTP worker threads of the registry.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, default_value_t = 500)]
    checkpoint_interval_ms: u64,
    /// Transitions after each document's ISSUE in the generated ledger.
    #[arg(long, default_value_t = 4)]
    transfers: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// RUST_LOG of the registry. `warn,lading::http=info` logs each write's server-side time
    /// (`lading::http=debug` every request's), which the summary then reports (at some cost in
    /// throughput).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Where the registry logs go.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Before each run, wait up to this many seconds for the machine to be quiet (under 10% of
    /// one core busy over 2 s), so that other work does not skew the run.
    #[arg(long, default_value_t = 0)]
    wait_quiet: u64,
    /// Repeat a run (up to this many times) when other processes took more than
    /// `--noisy-share` of the machine's CPU during it; repeated runs are listed, not counted.
    #[arg(long, default_value_t = 0)]
    retry_noisy: usize,
    /// Share of the machine's CPU capacity (cores × wall time) that other processes may take
    /// before a run counts as noisy.
    #[arg(long, default_value_t = 0.05)]
    noisy_share: f64,
    /// After each run, print PostgreSQL's N most expensive statements (pg_stat_statements:
    /// total execution time, calls, rows), to see where the database's share goes.
    #[arg(long, default_value_t = 0)]
    statements: usize,
    /// After each batch run, start `lading replica` for this party on a database of its own,
    /// from nothing, and time its catch-up to the registry (the registry then uses a
    /// consortium CA made for the run, for its certificate and the replica's).
    #[arg(long)]
    replica: Option<String>,
    /// With --replica: once it has caught up, alter or delete this many scattered rows of its
    /// database and time the registry's reconciliation (and that of two agreeing copies).
    #[arg(long, default_value_t = 0)]
    reconcile: usize,
    /// With --replica: once it has caught up, serve its portal and time this many requests of
    /// each kind through it, signed in as a viewer: the bills list (a search, a filter, a page
    /// of 50) and a bill's page (its badge checks the entry's inclusion proof).
    #[arg(long, default_value_t = 0)]
    portal_bench: usize,
    /// With --replica of a customs authority: once it has caught up, time `lading export` of
    /// everything on the node (its own database, its TEST signing key) and `lading
    /// verify-bundle` of the bundle, each a whole process, with its peak resident memory.
    #[arg(long)]
    export_bench: bool,
    /// After each batch run, time this many `GET /v1/documents` pages of 50 (issue 13's
    /// finding bills) as `--search-party`, sent open-loop at `--search-rate` a second: a page
    /// with no filter, one by role, one by a word of `q`, and the page after a cursor, in turn.
    /// Latency counts from when each request was due, so a slow answer delays none of the
    /// measurements after it. Two seconds of the same pages, not timed, warm the connections
    /// first.
    #[arg(long, default_value_t = 0)]
    search_bench: usize,
    /// With --search-bench: requests a second.
    #[arg(long, default_value_t = 500)]
    search_rate: u32,
    /// With --search-bench: the party whose documents are listed (its fixture token).
    #[arg(long, default_value = "shipper-acme")]
    search_party: String,
    /// Name `bank-harbour` as a notify party on one generated document in N, so that it is
    /// entitled to that share of the ledger (1,000,000 documents and 10: 100,000 of them,
    /// issue 13's search target); it holds nothing else when --transfers is 0. 0: never.
    #[arg(long, default_value_t = 0)]
    notify_party_every: u64,
    /// Each batch run twice, first without and then with this many webhook subscriptions
    /// (issue 13's notifications): one per fixture party in turn, no filter, to a receiver on
    /// loopback over HTTPS that this harness runs (the registry allows private targets and
    /// trusts its certificate). Reports the ingest rate of both, and per delivery the lag
    /// from the entry's `received_at` (the registry's clock when it sequenced it, just before
    /// the commit) to its arrival at the receiver, once every subscription has caught up.
    #[arg(long, default_value_t = 0)]
    notify_bench: usize,
    /// With --notify-bench: the subscriptions are batched (`batch: {maxEvents: N}`, CloudEvents
    /// batched mode), at most N events a request; 0 (the default) one event a request.
    #[arg(long, default_value_t = 0)]
    notify_batch: usize,
    /// Instead of the benchmark, a crash soak of this many cycles: concurrent load (batches
    /// and single requests), `kill -9` of the registry at a random moment mid-load, restart on
    /// the same database, and a check of every acknowledged entry and signed checkpoint so far
    /// (see `lading_e2e::soak`). Uses --concurrency (default 16), --seed, --transfers,
    /// --workers and --checkpoint-interval-ms.
    #[arg(long)]
    soak: Option<usize>,
    /// With --soak: the kill comes after a random number of acknowledgements in
    /// `LOAD/2..=LOAD` in each cycle.
    #[arg(long, default_value_t = 5000)]
    soak_load: usize,
    /// With --soak: PostgreSQL is shut down immediately too (just before the kill) in every
    /// N-th cycle; 0 never.
    #[arg(long, default_value_t = 5)]
    soak_postgres_every: usize,
    /// Give the registry's PostgreSQL a synchronous standby on this machine (pg_basebackup, a
    /// replication slot, `synchronous_standby_names = '*'`): every commit waits until the
    /// standby has flushed it (issue 14's ingest with a synchronous standby).
    #[arg(long)]
    sync_standby: bool,
}

impl Args {
    fn modes(&self) -> Vec<Mode> {
        match self.mode {
            Mode::Both => vec![Mode::Batch, Mode::Single],
            m => vec![m],
        }
    }

    fn protocols(&self) -> Vec<Http> {
        match self.http {
            Http::Both => vec![Http::H1, Http::H2],
            p => vec![p],
        }
    }

    fn total(&self, mode: Mode) -> usize {
        self.total
            .unwrap_or(if mode == Mode::Batch { 200_000 } else { 50_000 })
    }

    fn concurrency(&self, mode: Mode) -> usize {
        self.concurrency
            .unwrap_or(if mode == Mode::Batch { 4 } else { 64 })
            .max(1)
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Batch => "batch",
        Mode::Single => "single",
        Mode::Both => "both",
    }
}

fn http_name(h: Http) -> &'static str {
    match h {
        Http::H1 => "HTTP/1.1",
        Http::H2 => "HTTP/2",
        Http::Both => "both",
    }
}

/// Pre-built request bodies of one sender, leaked: they live as long as the process, and
/// reqwest sends `&'static` bodies without copying them.
#[derive(Debug, Clone)]
struct Shard {
    /// (body, transitions in it)
    requests: Vec<(&'static [u8], usize)>,
}

fn prepare(args: &Args, mode: Mode) -> Result<Vec<Shard>> {
    let total = args.total(mode);
    let senders = args.concurrency(mode);
    let started = Instant::now();
    let notify = (args.notify_party_every > 0)
        .then(|| "bank-harbour".parse().map(|p| (p, args.notify_party_every)))
        .transpose()?;
    let shards = generate_shards_naming(
        &split_evenly(total, senders),
        args.transfers,
        args.seed,
        2,
        notify,
    )?;
    let bytes: usize = shards.iter().flatten().map(String::len).sum();
    let prepared = shards
        .into_iter()
        .map(|shard| -> Result<Shard> {
            let requests = match mode {
                Mode::Batch => shard
                    .chunks(args.batch.max(1))
                    .map(|chunk| -> Result<(&'static [u8], usize)> {
                        let body: &'static [u8] = serde_json::to_vec(chunk)?.leak();
                        Ok((body, chunk.len()))
                    })
                    .collect::<Result<_>>()?,
                _ => shard
                    .into_iter()
                    .map(|t| {
                        let body: &'static [u8] = t.into_bytes().leak();
                        (body, 1)
                    })
                    .collect(),
            };
            Ok(Shard { requests })
        })
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "lading-load: signed {total} transitions ({:.1} MB, mean {} bytes) for {} senders in {:.1} s",
        bytes as f64 / 1e6,
        bytes / total.max(1),
        senders,
        started.elapsed().as_secs_f64()
    );
    Ok(prepared)
}

/// Where `lading` is: given, the release build, or built now in this binary's profile.
fn lading_binary(args: &Args) -> Result<PathBuf> {
    if let Some(bin) = &args.lading_bin {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe()?;
    // <target>/<profile>/lading-load
    let profile_dir = exe
        .parent()
        .context("cannot locate this binary's directory")?
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => profile_dir
            .parent()
            .context("cannot locate the target directory")?
            .to_path_buf(),
    };
    if args.release_binary {
        let bin = target.join("release").join("lading");
        if !bin.exists() {
            bail!(
                "{} does not exist; build it with `cargo build --release -p lading --bin lading`",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "lading", "--bin", "lading"])
        .current_dir(lading_e2e::harness::repo_root())
        .env("CARGO_TARGET_DIR", &target);
    if release {
        build.arg("--release");
    }
    if !build.status().context("running cargo")?.success() {
        bail!("building lading failed");
    }
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("lading"))
}

fn client(root_pem: &str, http: Http, idle: usize) -> Result<reqwest::Client> {
    let cert = reqwest::Certificate::from_pem(root_pem.as_bytes())?;
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(idle);
    let builder = match http {
        Http::H2 => builder.http2_prior_knowledge(),
        _ => builder.http1_only(),
    };
    Ok(builder.build()?)
}

#[derive(Debug, Deserialize)]
struct BatchReply {
    accepted: usize,
    refused: usize,
    results: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    status: u16,
    #[serde(default)]
    problem: Option<serde_json::Value>,
}

/// What one sender saw.
#[derive(Debug, Default)]
struct SenderReport {
    latencies: Vec<Duration>,
    acked: usize,
    refused: usize,
    error: Option<String>,
    version: Option<reqwest::Version>,
}

async fn send_shard(
    client: reqwest::Client,
    url: String,
    mode: Mode,
    shard: Shard,
) -> SenderReport {
    let mut report = SenderReport {
        latencies: Vec::with_capacity(shard.requests.len()),
        ..SenderReport::default()
    };
    let media = if mode == Mode::Batch {
        "application/json"
    } else {
        "application/jose"
    };
    for (body, count) in shard.requests {
        let start = Instant::now();
        let answer = async {
            let response = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, media)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let version = response.version();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, version, bytes))
        }
        .await;
        let elapsed = start.elapsed();
        let (status, version, bytes) = match answer {
            Ok(a) => a,
            Err(e) => {
                report.error = Some(format!("request failed: {e}"));
                break;
            }
        };
        report.version.get_or_insert(version);
        report.latencies.push(elapsed);
        match mode {
            Mode::Batch => {
                let reply: BatchReply = match serde_json::from_slice(&bytes) {
                    Ok(r) if status.as_u16() == 200 => r,
                    _ => {
                        report.error = Some(format!(
                            "batch answered {status}: {}",
                            String::from_utf8_lossy(&bytes)
                        ));
                        break;
                    }
                };
                report.acked += reply.results.iter().filter(|r| r.status == 201).count();
                report.refused += reply.refused;
                if reply.accepted != count {
                    let problem = reply.results.iter().find_map(|r| r.problem.clone());
                    report.error = Some(format!(
                        "batch of {count}: {} accepted, {} refused; first problem: {}",
                        reply.accepted,
                        reply.refused,
                        problem.map(|p| p.to_string()).unwrap_or_default()
                    ));
                    break;
                }
            }
            _ => {
                if status.as_u16() == 201 {
                    report.acked += 1;
                } else {
                    report.refused += 1;
                    report.error = Some(format!(
                        "answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ));
                    break;
                }
            }
        }
    }
    report
}

#[derive(Debug)]
struct RunResult {
    mode: Mode,
    http: Http,
    run: usize,
    acked: usize,
    wall: Duration,
    latency: LatencySummary,
    server_latency: Option<LatencySummary>,
    lading_cpu: Duration,
    postgres_cpu: Duration,
    load_cpu: Duration,
    /// Busy time of the whole machine: minus the three above, what other processes took.
    machine_cpu: Duration,
    /// Write transactions committed during the run (sequencer batches and checkpoints).
    transactions: u64,
    wal_bytes: u64,
    versions: Vec<String>,
    errors: Vec<String>,
    durable: usize,
    /// Repeated because other processes disturbed it: listed, left out of the medians.
    discarded: bool,
    /// Webhook subscriptions during the run (`--notify-bench`), and what they were sent.
    subscriptions: usize,
    notify: Option<NotifySummary>,
}

/// What the receiver of `--notify-bench` was sent.
#[derive(Debug, Clone)]
struct NotifySummary {
    deliveries: usize,
    /// Of them, those that arrived before the last batch was answered.
    during_ingest: usize,
    /// From the entry's `received_at` to its arrival.
    lag: LatencySummary,
    /// From the ingest's start until every subscription had caught up.
    drained: Duration,
}

impl RunResult {
    fn per_second(&self) -> f64 {
        self.acked as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Whether other processes took more than `share` of the machine during the run.
    fn noisy(&self, share: f64) -> bool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        self.other_cpu().as_secs_f64() > share * cores * self.wall.as_secs_f64()
    }

    /// CPU the machine spent on anything but the registry, PostgreSQL and this harness.
    fn other_cpu(&self) -> Duration {
        self.machine_cpu
            .saturating_sub(self.lading_cpu + self.postgres_cpu + self.load_cpu)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `(transaction id, WAL position in bytes)`: both advance with every write transaction.
fn pg_counters(cluster: &DurableCluster, db: &str) -> Result<(u64, u64)> {
    let out = cluster.cluster()?.psql(
        db,
        "SELECT txid_current(), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
    )?;
    let mut parts = out.trim().split('|');
    let xid = parts
        .next()
        .and_then(|s| s.parse().ok())
        .context("txid_current")?;
    let lsn = parts
        .next()
        .and_then(|s| s.parse().ok())
        .context("wal lsn")?;
    Ok((xid, lsn))
}

/// The `limit` statements that took PostgreSQL the most time, by pg_stat_statements.
fn print_statements(cluster: &DurableCluster, db: &str, limit: usize) -> Result<()> {
    let out = cluster.cluster()?.psql(
        db,
        &format!(
            "SELECT round(total_exec_time)::bigint, calls, rows, \
                    round((total_exec_time / greatest(calls, 1))::numeric, 3), \
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
             FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT {limit}"
        ),
    )?;
    eprintln!("lading-load: statements by total time (ms | calls | rows | mean ms | query)");
    for line in out.lines().filter(|l| !l.is_empty()) {
        eprintln!("  {line}");
    }
    Ok(())
}

fn acked_total(reports: &[SenderReport]) -> usize {
    reports.iter().map(|r| r.acked).sum()
}

/// A consortium CA made for one run: the registry's server certificate and one party's.
struct Consortium {
    dir: tempfile::TempDir,
    party: String,
    ca_pem: String,
    registry_cert: String,
    registry_key: String,
    /// Where the replica serves (the registry reconciles it there).
    replica_port: u16,
    /// Where its portal serves (with --portal-bench).
    portal_port: u16,
}

impl Consortium {
    fn new(party: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = lading_pki::Ca::create(&dir.path().join("ca"), "lading-load consortium CA")?;
        let names = ["127.0.0.1".to_owned()];
        let registry = ca.issue(&lading_pki::Subject::Registry, &names)?;
        registry.write(&dir.path().join("registry"))?;
        ca.issue_party(&party.parse()?, &names)?
            .write(&dir.path().join("party"))?;
        Ok(Self {
            ca_pem: ca.cert_pem().to_owned(),
            registry_cert: registry.cert_pem.clone(),
            registry_key: registry.key_pem.clone(),
            party: party.to_owned(),
            replica_port: lading_e2e::harness::free_port()?,
            portal_port: lading_e2e::harness::free_port()?,
            dir,
        })
    }

    /// What the registry needs to reconcile the replica.
    fn registry_env(&self) -> Vec<(String, String)> {
        let registry = self.dir.path().join("registry");
        vec![
            (
                "LADING_RECONCILE_CERT".into(),
                registry.join("registry.crt.pem").display().to_string(),
            ),
            (
                "LADING_RECONCILE_KEY".into(),
                registry.join("registry.key.pem").display().to_string(),
            ),
            (
                "LADING_RECONCILE_REPLICAS".into(),
                format!("{}=https://127.0.0.1:{}", self.party, self.replica_port),
            ),
            ("LADING_RECONCILE_INTERVAL_MS".into(), "0".into()),
        ]
    }

    /// An HTTPS client with the registry's own certificate (its operator).
    fn operator(&self) -> Result<reqwest::blocking::Client> {
        Ok(reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?)
            .identity(reqwest::Identity::from_pem(
                format!("{}{}", self.registry_cert, self.registry_key).as_bytes(),
            )?)
            .timeout(Duration::from_secs(600))
            .build()?)
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca").join(lading_pki::CA_CERT_FILE)
    }
}

/// Starts `lading replica` for the consortium's party on a new database of the run's cluster
/// and times it from start until it holds every one of `expected` entries.
/// What to measure on the node once it has caught up (`--reconcile`, `--portal-bench`,
/// `--export-bench`).
#[derive(Debug, Clone, Copy)]
struct AfterCatchUp {
    differences: usize,
    portal_requests: usize,
    export_bench: bool,
}

fn time_catch_up(
    bin: &Path,
    cluster: &DurableCluster,
    consortium: &Consortium,
    registry: &str,
    expected: usize,
    then: AfterCatchUp,
) -> Result<usize> {
    let AfterCatchUp {
        differences,
        portal_requests,
        export_bench,
    } = then;
    const DB: &str = "lading_replica";
    cluster.cluster()?.create_database(DB)?;
    let registry_key: lading_domain::jws::Jwk = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("keys/registry.jwk"),
    )?)?;
    let public = consortium.dir.path().join("registry.pub.jwk");
    std::fs::write(&public, serde_json::to_vec(&registry_key.to_public())?)?;
    let party_dir = consortium.dir.path().join("party");
    let party = &consortium.party;
    let postgres_pid = cluster.cluster()?.pid();
    let pg0 = tree_cpu(postgres_pid);
    let started = Instant::now();
    let mut command = Command::new(bin);
    command
        .arg("replica")
        .env("LADING_CONFIG", "/dev/null")
        .env("LADING_DATABASE_URL", cluster.cluster()?.local_url(DB))
        .env("LADING_REPLICA_REGISTRY", registry)
        .env("LADING_REPLICA_CA", consortium.ca_path())
        .env(
            "LADING_REPLICA_CERT",
            party_dir.join(format!("{party}.crt.pem")),
        )
        .env(
            "LADING_REPLICA_KEY",
            party_dir.join(format!("{party}.key.pem")),
        )
        .env(
            "LADING_REPLICA_PARTIES",
            fixtures_dir().join("parties.json"),
        )
        .env("LADING_REPLICA_REGISTRY_KEY", &public)
        .env("LADING_REPLICA_POLL_INTERVAL_MS", "200")
        .env("LADING_REPLICA_PAGE_SIZE", "10000")
        .env(
            "LADING_REPLICA_LISTEN",
            format!("127.0.0.1:{}", consortium.replica_port),
        )
        .envs((portal_requests > 0).then(|| {
            (
                "LADING_PORTAL_LISTEN",
                format!("127.0.0.1:{}", consortium.portal_port),
            )
        }))
        // `LADING_LOAD_REPLICA_LOG=lading::http=debug` logs each request the replica answers.
        .env(
            "RUST_LOG",
            std::env::var("LADING_LOAD_REPLICA_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    lading_e2e::harness::hand_over(&mut command)?;
    let mut child = command.spawn()?;
    let result = (|| -> Result<(Duration, u64, String, String)> {
        lading_e2e::harness::wait_for_line(&mut child, "following ", Duration::from_secs(60))?;
        let deadline = Instant::now() + Duration::from_secs(1200);
        loop {
            // Entries are gapless from 0, so the highest index says how many there are, from
            // the index alone (a count(*) would scan the table and load the database itself).
            let held: usize = cluster
                .cluster()?
                .psql(DB, "SELECT coalesce(max(idx) + 1, 0) FROM replica_entries")?
                .trim()
                .parse()?;
            if held >= expected {
                break;
            }
            if Instant::now() > deadline {
                bail!("the replica holds {held} of {expected} entries after 20 minutes");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let elapsed = started.elapsed();
        let cpu = tree_cpu(child.id());
        let full = cluster.cluster()?.psql(
            DB,
            "SELECT count(*) FROM replica_entries WHERE signed IS NOT NULL",
        )?;
        let incidents = cluster
            .cluster()?
            .psql(DB, "SELECT count(*) FROM incidents")?;
        Ok((elapsed, cpu.as_millis() as u64, full, incidents))
    })();
    let pg = tree_cpu(postgres_pid).saturating_sub(pg0);
    let reconciled = match &result {
        Ok(_) if differences > 0 => {
            bench_reconcile(cluster, consortium, registry, DB, expected, differences)
        }
        _ => Ok(0),
    };
    let portal = match (&result, &reconciled) {
        (Ok(_), Ok(_)) if portal_requests > 0 => {
            bench_portal(bin, &command, cluster, DB, consortium, portal_requests)
        }
        _ => Ok(()),
    };
    let exported = match (&result, &portal) {
        (Ok(_), Ok(_)) if export_bench => bench_export(bin, &command, consortium),
        _ => Ok(()),
    };
    let _ = child.kill();
    let _ = child.wait();
    let (elapsed, cpu_ms, full, incidents) = result?;
    let ingested = reconciled?;
    portal?;
    exported?;
    eprintln!(
        "lading-load: replica of {party} caught up on {expected} entries ({} in full) in {:.2} s \
         = {:.0}/s from its start; replica CPU {:.1} s, postgres CPU {:.1} s, incidents {}",
        full.trim(),
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64(),
        cpu_ms as f64 / 1000.0,
        pg.as_secs_f64(),
        incidents.trim()
    );
    Ok(ingested)
}

/// Times `lading export` of everything the caught-up customs node holds, from its own
/// database while it runs, then `lading verify-bundle` of the bundle: whole processes under
/// `/usr/bin/time`, for their wall time and peak resident memory.
fn bench_export(bin: &Path, replica: &Command, consortium: &Consortium) -> Result<()> {
    let party = &consortium.party;
    let out = consortium.dir.path().join("export.zip");
    // The node refuses a signing key others can read: a copy of the TEST key, mode 0600.
    let key = consortium.dir.path().join("signing.jwk");
    std::fs::copy(fixtures_dir().join(format!("keys/{party}.jwk")), &key)?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let timed = |args: &[&std::ffi::OsStr]| -> Result<(f64, u64, String)> {
        let mut command = Command::new("/usr/bin/time");
        command
            .args(["-f", "lading-load-time %e %M"])
            .arg(bin)
            .args(args);
        for (key, value) in replica.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        let output = command
            .env("LADING_PORTAL_SIGNING_KEY", &key)
            .env("LADING_PORTAL_ALLOW_TEST_KEYS", "true")
            .env("RUST_LOG", "warn")
            .output()
            .context("running /usr/bin/time (Debian's `time` package)")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!("lading {args:?} failed: {stdout}{stderr}");
        }
        let line = stderr
            .lines()
            .find_map(|l| l.strip_prefix("lading-load-time "))
            .context("no time in /usr/bin/time's output")?;
        let mut parts = line.split_whitespace();
        let seconds: f64 = parts.next().unwrap_or("0").parse()?;
        let kb: u64 = parts.next().unwrap_or("0").parse()?;
        Ok((seconds, kb, stdout))
    };
    let (export_s, export_kb, said) = timed(&[
        "export".as_ref(),
        "--party".as_ref(),
        party.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])?;
    let manifest: serde_json::Value = serde_json::from_reader(
        zip::ZipArchive::new(std::fs::File::open(&out)?)?.by_name("manifest.json")?,
    )?;
    let entries = manifest["counts"]["entries"].as_u64().unwrap_or(0);
    let (verify_s, verify_kb, verdict) = timed(&["verify-bundle".as_ref(), out.as_os_str()])?;
    if !verdict.contains("VERIFIED") {
        bail!("the node's export does not verify: {verdict}");
    }
    let mb = std::fs::metadata(&out)?.len() as f64 / 1e6;
    eprintln!(
        "lading-load: export of {party}'s node: {entries} entries in {export_s:.2} s = {:.0}/s, \
         peak RSS {:.0} MB, bundle {mb:.1} MB ({}); verify-bundle {verify_s:.2} s = {:.0}/s, \
         peak RSS {:.0} MB",
        entries as f64 / export_s,
        export_kb as f64 / 1024.0,
        said.trim(),
        entries as f64 / verify_s,
        verify_kb as f64 / 1024.0,
    );
    Ok(())
}

/// Times the caught-up node's portal, signed in as a viewer added with `lading user add` (the
/// replica's own settings, from `replica`'s environment): `requests` list pages — a search
/// for a reference prefix, a vessel, a port or a container, a state filter, or none; each a page
/// of 50, the next page followed where there is one — then `requests` bill pages of references
/// picked across the node's documents. Times are whole requests as the client sees them over
/// TLS on loopback (so at least the server's time).
/// `requests` pages of `GET /v1/documents` (50 each) as `party`, due `rate` a second
/// (open loop): the latency of each from when it was due, per kind of page and overall.
async fn bench_search(
    client: &reqwest::Client,
    base: &str,
    party: &str,
    requests: usize,
    rate: u32,
) -> Result<()> {
    let token = lading_e2e::harness::token(party)?;
    let get = |query: String| {
        let request = client
            .get(format!("{base}/v1/documents?limit=50{query}"))
            .bearer_auth(&token);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "GET /v1/documents: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };
    // What the party's first page holds: a word to search for, and the cursor of page 2.
    let first = get(String::new()).await?;
    let listed = first["documents"].as_array().map_or(0, Vec::len);
    let cursor = first["next"].as_str().unwrap_or_default().to_owned();
    let word = first["documents"][0]["vesselName"]
        .as_str()
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("a")
        .to_owned();
    // The role filter asks for a role the party has in its newest document, so that it keeps
    // a share of the party's documents (a role it never has would walk the whole ledger).
    let newest = &first["documents"][0];
    let role = if newest["shipper"] == party {
        "shipper"
    } else if newest["carrier"] == party {
        "carrier"
    } else if newest["consignee"] == party {
        "consignee"
    } else if newest["notifyParties"]
        .as_array()
        .is_some_and(|n| n.iter().any(|p| p == party))
    {
        "notify"
    } else {
        "possessor"
    };
    let role_kind: &'static str = match role {
        "shipper" => "role=shipper",
        "carrier" => "role=carrier",
        "consignee" => "role=consignee",
        "notify" => "role=notify",
        _ => "role=possessor",
    };
    let kinds: [(&str, String); 4] = [
        ("first page", String::new()),
        (role_kind, format!("&role={role}")),
        (
            "q=<vessel word>",
            format!("&q={}", lading_e2e::portal::encode(&word)),
        ),
        ("page after a cursor", format!("&cursor={cursor}")),
    ];
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    // Two seconds at the rate, not timed: the client's connections, the registry's database
    // connections and their PostgreSQL backends' caches grow to what the rate needs (the
    // first second's pages otherwise waited up to ~100 ms for new connections), as in a
    // registry that has been serving for a while.
    let warm_up = rate.max(1) as usize * 2;
    let mut warming = Vec::with_capacity(warm_up);
    let warm_start = tokio::time::Instant::now();
    for i in 0..warm_up {
        tokio::time::sleep_until(warm_start + interval * i as u32).await;
        warming.push(tokio::spawn(get(kinds[i % kinds.len()].1.clone())));
    }
    for w in warming {
        w.await??;
    }
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let (kind, query) = &kinds[i % kinds.len()];
        let fut = get(query.clone());
        let kind = *kind;
        tasks.push(tokio::spawn(async move {
            let result = fut.await.map(|_| ());
            (kind, due, due.elapsed(), result)
        }));
    }
    let mut all = Vec::new();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut failures = 0usize;
    let mut first_failure = None;
    // When the slow pages were due (seconds after the first), to set beside what else the
    // machine did then (vmstat, PostgreSQL's log).
    let started_at = chrono::Utc::now() - chrono::Duration::from_std(start.elapsed())?;
    let mut slow_seconds: std::collections::BTreeMap<u64, (usize, Duration)> = Default::default();
    for t in tasks {
        let (kind, due, latency, result) = t.await?;
        if let Err(e) = result {
            failures += 1;
            first_failure.get_or_insert(format!("{e:#}"));
        }
        if latency > Duration::from_millis(20) {
            let second = due.duration_since(start).as_secs();
            let slot = slow_seconds.entry(second).or_default();
            slot.0 += 1;
            slot.1 = slot.1.max(latency);
        }
        all.push(latency);
        by_kind.entry(kind).or_default().push(latency);
    }
    let wall = start.elapsed();
    let overall = LatencySummary::of(&mut all);
    eprintln!(
        "lading-load: search: {requests} pages of 50 as {party} (first page listed {listed}) at \
         {rate}/s due, {:.0}/s done, {failures} failed; latency from due: median {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        requests as f64 / wall.as_secs_f64(),
        ms(overall.median),
        ms(overall.p99),
        ms(overall.max)
    );
    for (kind, mut samples) in by_kind {
        let s = LatencySummary::of(&mut samples);
        eprintln!(
            "lading-load: search:   {kind}: median {:.1} ms, p99 {:.1} ms",
            ms(s.median),
            ms(s.p99)
        );
    }
    if !slow_seconds.is_empty() {
        let list: Vec<String> = slow_seconds
            .iter()
            .map(|(second, (n, worst))| {
                let at = started_at + chrono::Duration::seconds(*second as i64);
                format!("{} {n} (max {:.0} ms)", at.format("%H:%M:%S"), ms(*worst))
            })
            .collect();
        eprintln!(
            "lading-load: search:   pages over 20 ms by the second they were due (UTC): {}",
            list.join(", ")
        );
    }
    anyhow::ensure!(
        failures == 0,
        "{failures} search requests failed, the first: {}",
        first_failure.unwrap_or_default()
    );
    Ok(())
}

fn bench_portal(
    bin: &Path,
    replica: &Command,
    cluster: &DurableCluster,
    db: &str,
    consortium: &Consortium,
    requests: usize,
) -> Result<()> {
    let documents: usize = cluster
        .cluster()?
        .psql(db, "SELECT count(*) FROM node_documents")?
        .trim()
        .parse()?;
    let references: Vec<String> = cluster
        .cluster()?
        .psql(
            db,
            &format!(
                "SELECT reference FROM node_documents ORDER BY md5(reference) LIMIT {requests}"
            ),
        )?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let vessels: Vec<String> = cluster
        .cluster()?
        .psql(db, "SELECT DISTINCT vessel FROM node_documents LIMIT 20")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    // The user, added as an operator of the node would.
    let password = "lading-load portal bench";
    let password_file = consortium.dir.path().join("bench.password");
    std::fs::write(&password_file, format!("{password}\n"))?;
    let mut add = Command::new(bin);
    add.args([
        "user",
        "add",
        "--username",
        "bench",
        "--role",
        "viewer",
        "--password-file",
    ])
    .arg(&password_file);
    for (key, value) in replica.get_envs() {
        if let Some(value) = value {
            add.env(key, value);
        }
    }
    let added = add.env("RUST_LOG", "warn").output()?;
    if !added.status.success() {
        bail!(
            "lading user add: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    // A node that just caught up is still vacuuming (its own settling, autovacuum): measure
    // the node as it runs afterwards, not those minutes.
    let settle_started = Instant::now();
    loop {
        let busy: u64 = cluster
            .cluster()?
            .psql(
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%vacuum%' AND pid <> pg_backend_pid()",
            )?
            .trim()
            .parse()?;
        if busy == 0 || settle_started.elapsed() > Duration::from_secs(300) {
            eprintln!(
                "lading-load: portal: waited {:.1} s for the node's vacuums ({busy} still running)",
                settle_started.elapsed().as_secs_f64()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let base = format!("https://127.0.0.1:{}", consortium.portal_port);
    let ca = consortium.ca_path();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut browser = lading_e2e::portal::Browser::new(&ca, base)?;
        let signed_in = browser.sign_in("bench", password).await?;
        if !signed_in.status.is_redirection() {
            bail!("sign-in answered {}", signed_in.status);
        }
        let states = [
            "ACTIVE",
            "SURRENDER_FOR_DELIVERY_REQUESTED",
            "SURRENDERED_FOR_DELIVERY",
            "VOID",
        ];
        let mut lists = Vec::with_capacity(requests);
        let kinds = [
            "search a reference prefix",
            "search a vessel",
            "filter by state",
            "state + role + search + sort by issue date",
            "no filter, and the next page",
        ];
        let mut by_kind: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
        // Every list request in order, to say when the slowest came.
        let mut timeline: Vec<(Duration, usize, String)> = Vec::new();
        let mut shown = 0usize;
        for i in 0..requests {
            let reference = &references[i % references.len().max(1)];
            let path = match i % 5 {
                0 => format!("/bills?q={}", lading_e2e::portal::encode(&reference[..reference.len().min(8)])),
                1 => format!(
                    "/bills?q={}",
                    lading_e2e::portal::encode(vessels.get(i % vessels.len().max(1)).map_or("", String::as_str))
                ),
                2 => format!("/bills?state={}", states[i % states.len()]),
                3 => format!("/bills?state=ACTIVE&role=carrier&sort=issued&dir=asc&q={}", lading_e2e::portal::encode("NL")),
                _ => "/bills".to_owned(),
            };
            let started = Instant::now();
            let page = browser.get(&path).await?;
            lists.push(started.elapsed());
            by_kind[i % 5].push(started.elapsed());
            timeline.push((started.elapsed(), timeline.len(), path.clone()));
            if page.status != reqwest::StatusCode::OK {
                bail!("{path} answered {}", page.status);
            }
            shown += page.body.matches("class=\"ref\"").count();
            // The next page, where there is one: keyset pagination deep into the list.
            if let Some(next) = page.link("next").filter(|_| i % 5 == 4) {
                let started = Instant::now();
                let page = browser.get(&next).await?;
                lists.push(started.elapsed());
                by_kind[4].push(started.elapsed());
                if page.status != reqwest::StatusCode::OK {
                    bail!("{next} answered {}", page.status);
                }
            }
        }
        let mut bills = Vec::with_capacity(requests);
        let mut verified = 0usize;
        for reference in references.iter().cycle().take(requests) {
            let path = format!("/bills/{reference}");
            let started = Instant::now();
            let page = browser.get(&path).await?;
            bills.push(started.elapsed());
            if page.status != reqwest::StatusCode::OK {
                bail!("{path} answered {}", page.status);
            }
            verified += usize::from(page.body.contains("badge verified"));
        }
        let report = |what: &str, times: &mut Vec<Duration>| {
            let summary = LatencySummary::of(times);
            eprintln!(
                "lading-load: portal {what}: {} requests over {documents} documents on the node, median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                times.len(),
                summary.median.as_secs_f64() * 1000.0,
                summary.p99.as_secs_f64() * 1000.0,
                summary.max.as_secs_f64() * 1000.0,
            );
        };
        report("bills list (search, filters, page of 50)", &mut lists);
        for (kind, times) in kinds.iter().zip(by_kind.iter_mut()) {
            report(&format!("bills list, {kind}"), times);
        }
        report("bill page (proof checked)", &mut bills);
        timeline.sort_by_key(|t| std::cmp::Reverse(t.0));
        for (took, at, path) in timeline.iter().take(5) {
            eprintln!(
                "lading-load: portal: slow list request #{at} of {}: {:.2} ms {path}",
                timeline.len(),
                took.as_secs_f64() * 1000.0
            );
        }
        eprintln!("lading-load: portal: {shown} rows listed; {verified} of {} bill pages carried a verified badge", bills.len());
        Ok(())
    })
}

/// Times the registry's reconciliation of the caught-up replica: three times in agreement,
/// then three times after `differences` scattered rows were changed or deleted by hand, then
/// three times more while the registry ingests; how many transitions it took meanwhile.
fn bench_reconcile(
    cluster: &DurableCluster,
    consortium: &Consortium,
    registry: &str,
    db: &str,
    size: usize,
    differences: usize,
) -> Result<usize> {
    let operator = consortium.operator()?;
    let url = format!("{registry}/v1/replicas/{}/reconcile", consortium.party);
    let reconcile = || -> Result<(serde_json::Value, Duration)> {
        let started = Instant::now();
        let response = operator.post(&url).send()?;
        let elapsed = started.elapsed();
        let status = response.status();
        let report: serde_json::Value = response.json()?;
        if !status.is_success() {
            bail!("reconcile answered {status}: {report}");
        }
        Ok((report, elapsed))
    };
    // The replica's verified checkpoint may lag its rows by a poll: wait for the registry's
    // final checkpoint to be everywhere, then compare.
    std::thread::sleep(Duration::from_secs(2));
    for run in 1..=3 {
        let (report, elapsed) = reconcile()?;
        if report["outcome"] != "agree" {
            bail!("two agreeing copies: {report}");
        }
        eprintln!(
            "lading-load: reconcile agreeing run {run}: {} round trip(s), {} bytes exchanged, {:.1} ms (registry {} ms; replica scan {} ms, trees {} ms)",
            report["roundTrips"],
            report["exchangedBytes"],
            elapsed.as_secs_f64() * 1000.0,
            report["millis"],
            report["replicaScanMillis"],
            report["replicaTreeMillis"]
        );
    }
    let psql = |sql: &str| -> Result<String> { Ok(cluster.cluster()?.psql(db, sql)?) };
    for run in 1..=3u64 {
        // Scattered: one in each of `differences` equal stretches, a different place each run;
        // every other one deleted, the rest altered (the payload of a full row, else the leaf).
        let stretch = size / differences;
        let mut altered = Vec::new();
        let mut deleted = Vec::new();
        for k in 0..differences {
            let idx = k * stretch + ((run as usize * 7919 + k * 104_729) % stretch);
            if k % 2 == 0 {
                deleted.push(idx);
            } else {
                altered.push(idx);
            }
        }
        let list = |v: &[usize]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        psql(&format!(
            "UPDATE replica_entries SET signed = overlay(signed placing 'X'::bytea from 30 for 1) \
             WHERE idx IN ({0}) AND signed IS NOT NULL; \
             UPDATE replica_entries SET leaf_hash = sha256(leaf_hash) \
             WHERE idx IN ({0}) AND signed IS NULL; \
             DELETE FROM replica_entries WHERE idx IN ({1})",
            list(&altered),
            list(&deleted)
        ))?;
        let (report, elapsed) = reconcile()?;
        let found = report["lost"].as_array().map_or(0, Vec::len)
            + report["altered"].as_array().map_or(0, Vec::len);
        if report["outcome"] != "repaired" || found != differences {
            bail!("{differences} differences made, reconciliation said: {report}");
        }
        let hash_bytes = report["hashBytes"].as_u64().unwrap_or(0);
        let exchanged = report["exchangedBytes"].as_u64().unwrap_or(0);
        eprintln!(
            "lading-load: reconcile run {run}: {differences} differences in {size} entries found and repaired in {:.1} ms (registry {} ms; replica scan {} ms, trees {} ms; descent done at {} ms, repair at {} ms); \
             {} round trips, {hash_bytes} bytes of hashes = {:.0} per difference, {exchanged} bytes exchanged besides the {} bytes of repaired entries = {:.0} per difference",
            elapsed.as_secs_f64() * 1000.0,
            report["millis"],
            report["replicaScanMillis"],
            report["replicaTreeMillis"],
            report["descentDoneMillis"],
            report["repairDoneMillis"],
            report["roundTrips"],
            hash_bytes as f64 / differences as f64,
            report["repairBytes"],
            exchanged as f64 / differences as f64,
        );
        let (after, _) = reconcile()?;
        if after["outcome"] != "agree" {
            bail!("after the repair: {after}");
        }
    }
    bench_reconcile_under_ingest(&operator, registry, &psql, &reconcile, size, differences)
}

/// The same repairs while the registry ingests at full speed: four senders post batches of 1,000
/// new transitions (documents of their own, prefix `R`) without pause, and the replica follows;
/// each reconciliation must find exactly the rows changed (the replica being behind or ahead
/// by what the feed brought meanwhile is no finding).
fn bench_reconcile_under_ingest(
    operator: &reqwest::blocking::Client,
    registry: &str,
    psql: &dyn Fn(&str) -> Result<String>,
    reconcile: &dyn Fn() -> Result<(serde_json::Value, Duration)>,
    size: usize,
    differences: usize,
) -> Result<usize> {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    let parties = lading_e2e::gen::FixtureParties::load()?;
    let mut config = lading_e2e::gen::GeneratorConfig::new(200_000, 3, 0x5eed_1a7e);
    config.reference_prefix = "R".into();
    let mut generator = lading_e2e::gen::LedgerGenerator::new(&parties, config)?;
    let stream = generator.next_batch(600_000)?;
    // A document's transitions in order: each sender takes whole documents (by reference).
    let senders = 4usize;
    let mut streams: Vec<Vec<String>> = vec![Vec::new(); senders];
    for jws in stream {
        let reference = lading_domain::transition::SignedTransition::parse(&jws)
            .map(|t| t.payload().document_reference().to_string())
            .unwrap_or_default();
        let shard = reference.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        streams[shard % senders].push(jws);
    }
    let bodies: Vec<Vec<Vec<u8>>> = streams
        .iter()
        .map(|stream| {
            stream
                .chunks(1000)
                .map(serde_json::to_vec)
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let stop = AtomicBool::new(false);
    let taken = AtomicU64::new(0);
    let total_taken = AtomicUsize::new(0);
    let url = format!("{registry}/v1/transitions/batch");
    std::thread::scope(|scope| -> Result<usize> {
        let send = |bodies: &Vec<Vec<u8>>| -> Result<()> {
            for body in bodies {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let response = operator
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()?;
                if !response.status().is_success() {
                    bail!("a batch under ingest answered {}", response.status());
                }
                let count =
                    serde_json::from_slice::<Vec<serde_json::Value>>(body).map_or(0, |v| v.len());
                taken.fetch_add(count as u64, Ordering::Relaxed);
                total_taken.fetch_add(count, Ordering::Relaxed);
            }
            Ok(())
        };
        let sending: Vec<_> = bodies
            .iter()
            .map(|bodies| scope.spawn(move || send(bodies)))
            .collect();
        let measured = (|| -> Result<()> {
            // Let the ingest reach full speed first.
            std::thread::sleep(Duration::from_secs(2));
            for run in 1..=3u64 {
                let stretch = size / differences;
                let picked: Vec<String> = (0..differences)
                    .map(|k| {
                        (k * stretch + ((run as usize * 6007 + k * 7_919) % stretch)).to_string()
                    })
                    .collect();
                let (deleted, altered) = picked.split_at(differences / 2);
                psql(&format!(
                    "UPDATE replica_entries SET signed = overlay(signed placing 'X'::bytea from 30 for 1) \
                     WHERE idx IN ({0}) AND signed IS NOT NULL; \
                     UPDATE replica_entries SET leaf_hash = sha256(leaf_hash) \
                     WHERE idx IN ({0}) AND signed IS NULL; \
                     DELETE FROM replica_entries WHERE idx IN ({1})",
                    altered.join(","),
                    deleted.join(",")
                ))?;
                let before = taken.load(Ordering::Relaxed);
                let (report, elapsed) = reconcile()?;
                let ingested = taken.load(Ordering::Relaxed) - before;
                let found = report["lost"].as_array().map_or(0, Vec::len)
                    + report["altered"].as_array().map_or(0, Vec::len);
                if report["outcome"] != "repaired" || found != differences {
                    bail!("under ingest, {differences} differences made, reconciliation said: {report}");
                }
                eprintln!(
                    "lading-load: reconcile under ingest run {run}: {differences} differences in the first {size} of {} entries found and repaired in {:.1} ms \
                     (registry {} ms; replica scan {} ms, trees {} ms); {} round trips, {} bytes of hashes = {:.0} per difference; \
                     replica ahead {}, lag {}; the registry took {ingested} transitions meanwhile ({:.0}/s)",
                    report["registrySize"],
                    elapsed.as_secs_f64() * 1000.0,
                    report["millis"],
                    report["replicaScanMillis"],
                    report["replicaTreeMillis"],
                    report["roundTrips"],
                    report["hashBytes"],
                    report["hashBytes"].as_u64().unwrap_or(0) as f64 / differences as f64,
                    report["ahead"],
                    report["lag"],
                    ingested as f64 / elapsed.as_secs_f64(),
                );
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        for sender in sending {
            sender
                .join()
                .map_err(|_| anyhow::anyhow!("an ingest sender panicked"))??;
        }
        measured?;
        Ok(total_taken.load(Ordering::Relaxed))
    })
}

/// Waits until the machine has been nearly idle for 2 s, or `max` has passed.
fn wait_quiet(max: Duration) {
    if max.is_zero() {
        return;
    }
    let deadline = Instant::now() + max;
    loop {
        let before = machine_busy();
        std::thread::sleep(Duration::from_secs(2));
        let busy = machine_busy().saturating_sub(before);
        if busy < Duration::from_millis(200) {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "lading-load: the machine is still busy ({busy:?} CPU in 2 s); running anyway"
            );
            return;
        }
    }
}

/// Which run: its mode, protocol, number, and subscriptions (`--notify-bench`).
#[derive(Debug, Clone, Copy)]
struct Which {
    mode: Mode,
    http: Http,
    run: usize,
    notify: usize,
}

fn run_once(
    args: &Args,
    bin: &Path,
    log_dir: &Path,
    which: Which,
    shards: &[Shard],
) -> Result<RunResult> {
    let Which {
        mode,
        http,
        run,
        notify,
    } = which;
    const DB: &str = "lading_load";
    let mut cluster = if args.statements > 0 {
        DurableCluster::start_with(&[
            ("shared_preload_libraries", "pg_stat_statements"),
            ("pg_stat_statements.track", "all"),
        ])?
    } else {
        DurableCluster::start()?
    };
    let _standby = if args.sync_standby {
        Some(lading_e2e::load::SyncStandby::start(cluster.cluster()?)?)
    } else {
        None
    };
    cluster.cluster()?.create_database(DB)?;
    // As in the embedded default: registry and database on one machine, over the Unix socket.
    let database_url = cluster.cluster()?.local_url(DB);
    if args.statements > 0 {
        cluster
            .cluster()?
            .psql(DB, "CREATE EXTENSION pg_stat_statements")?;
    }
    let consortium = match &args.replica {
        Some(party) if mode == Mode::Batch => Some(Consortium::new(party)?),
        _ => None,
    };
    let tls = match &consortium {
        Some(c) => Tls::from_pem(&c.registry_cert, &c.registry_key)?,
        None => Tls::new()?,
    };
    // What clients trust: the consortium CA when there is one, else the self-signed certificate.
    let root_pem = consortium
        .as_ref()
        .map_or_else(|| tls.cert_pem.clone(), |c| c.ca_pem.clone());
    let log_path = log_dir.join(format!(
        "lading-{}-{}-run{run}.log",
        mode_name(mode),
        if http == Http::H2 { "h2" } else { "h1" }
    ));
    let _ = std::fs::remove_file(&log_path);
    // With --notify-bench the registry is set up alike with subscriptions or without.
    let receiver = if args.notify_bench > 0 && mode == Mode::Batch {
        Some(Receiver::start_with(false, 1)?)
    } else {
        None
    };
    let mut env = consortium
        .as_ref()
        .map(Consortium::registry_env)
        .unwrap_or_default();
    if let Some(receiver) = &receiver {
        env.push((
            "LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS".into(),
            "true".into(),
        ));
        env.push((
            "LADING_NOTIFICATIONS_CA".into(),
            receiver.tls.cert_path().display().to_string(),
        ));
    }
    let mut server = RegistryProcess::start(&RegistrySettings {
        bin: bin.to_path_buf(),
        database_url,
        cert: tls.cert_path(),
        key: tls.key_path(),
        workers: args.workers,
        checkpoint_interval_ms: args.checkpoint_interval_ms,
        log_filter: args.server_log.clone(),
        log_path: log_path.clone(),
        client_ca: consortium.as_ref().map(|c| c.ca_path()),
        env,
    })?;
    let lading_pid = server.pid().context("registry not running")?;
    let postgres_pid = cluster.cluster()?.pid();
    let path = if mode == Mode::Batch {
        "/v1/transitions/batch"
    } else {
        "/v1/transitions"
    };
    let url = server.url(path);
    let senders = shards.len();
    let clients: Vec<reqwest::Client> = match (mode, http) {
        (Mode::Batch, Http::H2) => (0..senders)
            .map(|_| client(&root_pem, http, 1))
            .collect::<Result<_>>()?,
        (_, Http::H2) => (0..args.h2_connections.max(1))
            .map(|_| client(&root_pem, http, 1))
            .collect::<Result<_>>()?,
        _ => vec![client(&root_pem, http, senders)?],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Open the connections before the clock starts: TLS handshakes are not ingest.
    runtime.block_on(async {
        let warm = (0..senders).map(|i| {
            let c = clients[i % clients.len()].clone();
            let u = server.url("/healthz");
            async move { c.get(u).send().await.and_then(|r| r.error_for_status()) }
        });
        futures::future::try_join_all(warm).await
    })?;

    let subscriptions = match &receiver {
        Some(receiver) if notify > 0 => runtime.block_on(subscribe(
            &clients[0],
            &server.base,
            receiver,
            notify,
            args.notify_batch,
        ))?,
        _ => Vec::new(),
    };

    let (xid0, wal0) = pg_counters(&cluster, DB)?;
    let cpu0 = (
        tree_cpu(lading_pid),
        tree_cpu(postgres_pid),
        own_cpu(),
        machine_busy(),
    );
    let start = Instant::now();
    let start_clock = std::time::SystemTime::now();
    let reports: Vec<SenderReport> = runtime.block_on(async {
        let tasks: Vec<_> = shards
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, shard)| {
                let c = clients[i % clients.len()].clone();
                tokio::spawn(send_shard(c, url.clone(), mode, shard))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| SenderReport {
                error: Some(format!("sender task failed: {e}")),
                ..SenderReport::default()
            }));
        }
        out
    });
    let wall = start.elapsed();
    let cpu1 = (
        tree_cpu(lading_pid),
        tree_cpu(postgres_pid),
        own_cpu(),
        machine_busy(),
    );
    let (xid1, wal1) = pg_counters(&cluster, DB)?;
    if args.statements > 0 {
        print_statements(&cluster, DB, args.statements)?;
    }

    let acked: usize = reports.iter().map(|r| r.acked).sum();
    let mut latencies: Vec<Duration> = reports
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let latency = LatencySummary::of(&mut latencies);
    let mut versions: Vec<String> = reports
        .iter()
        .filter_map(|r| r.version)
        .map(|v| format!("{v:?}"))
        .collect();
    versions.sort();
    versions.dedup();
    let mut errors: Vec<String> = reports.iter().filter_map(|r| r.error.clone()).collect();

    let notify_summary = match &receiver {
        Some(receiver) if !subscriptions.is_empty() => {
            match runtime.block_on(drain(&clients[0], &server.base, &subscriptions, start)) {
                Ok(drained) => Some(notify_summary(
                    &cluster,
                    DB,
                    receiver,
                    start_clock + wall,
                    drained,
                )?),
                Err(e) => {
                    errors.push(format!("notifications: {e:#}"));
                    None
                }
            }
        }
        _ => None,
    };

    if args.search_bench > 0 && mode == Mode::Batch {
        // A ledger that grew to this size over months has been vacuumed and analysed by
        // autovacuum many times over; one just bulk-loaded has not, and pages planned on the
        // empty tables' statistics (or racing autovacuum's first pass) measure the load, not
        // the search. Bring it to that steady state first. Likewise the checkpoint: the bulk
        // load leaves gigabytes of WAL behind it, and the checkpoint it sets off would still
        // be writing them out while pages are timed; a registry that is only read has nothing
        // to write out. (It did not remove the tail of slow pages; the warm-up below did.)
        cluster.cluster()?.psql(DB, "VACUUM ANALYZE")?;
        cluster.cluster()?.psql(DB, "CHECKPOINT")?;
        runtime.block_on(bench_search(
            &clients[0],
            &server.base,
            &args.search_party,
            args.search_bench,
            args.search_rate,
        ))?;
    }

    // Transitions the registry took while it was reconciled under ingest: acknowledged too.
    let mut acked = acked;
    if let Some(consortium) = &consortium {
        acked += time_catch_up(
            bin,
            &cluster,
            consortium,
            &server.base,
            acked_total(&reports),
            AfterCatchUp {
                differences: args.reconcile,
                portal_requests: args.portal_bench,
                export_bench: args.export_bench,
            },
        )?;
    }

    // The registry's own count, then the hard way: kill both processes, replay the WAL, count.
    let ready: serde_json::Value = runtime.block_on(async {
        clients[0]
            .get(server.url("/readyz"))
            .send()
            .await?
            .json()
            .await
    })?;
    let ready_size = ready["size"].as_u64().unwrap_or(u64::MAX);
    drop(clients);
    drop(runtime);
    server.kill_9()?;
    cluster.crash_and_recover()?;
    let counted = cluster.cluster()?.psql(
        DB,
        "SELECT count(*) || '|' || coalesce(max(idx) + 1, 0) FROM ledger_entries",
    )?;
    let mut parts = counted
        .trim()
        .split('|')
        .map(|s| s.parse::<usize>().unwrap_or(usize::MAX));
    let rows = parts.next().unwrap_or(usize::MAX);
    let next_index = parts.next().unwrap_or(usize::MAX);
    if ready_size != acked as u64 {
        errors.push(format!("readyz size {ready_size} != {acked} acknowledged"));
    }
    if rows != acked || next_index != acked {
        errors.push(format!(
            "after crash recovery: {rows} rows, next index {next_index}, but {acked} acknowledged"
        ));
    }
    cluster.stop()?;

    let server_latency = if args.server_log.contains("lading::http") {
        let mut times = logged_request_times(&log_path, &format!("POST {path} "))?;
        (!times.is_empty()).then(|| LatencySummary::of(&mut times))
    } else {
        None
    };
    Ok(RunResult {
        mode,
        http,
        run,
        acked,
        wall,
        latency,
        server_latency,
        lading_cpu: cpu1.0.saturating_sub(cpu0.0),
        postgres_cpu: cpu1.1.saturating_sub(cpu0.1),
        load_cpu: cpu1.2.saturating_sub(cpu0.2),
        machine_cpu: cpu1.3.saturating_sub(cpu0.3),
        // Minus the transaction that read the counters first.
        transactions: xid1.saturating_sub(xid0).saturating_sub(1),
        wal_bytes: wal1.saturating_sub(wal0),
        versions,
        errors,
        durable: rows,
        discarded: false,
        subscriptions: notify,
        notify: notify_summary,
    })
}

/// `--notify-bench`: `n` subscriptions with no filter, one per fixture party in turn, each to
/// a path of its own on `receiver`, batched by `batch` events when it is not 0: `(party, id)`
/// of each.
async fn subscribe(
    client: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
    n: usize,
    batch: usize,
) -> Result<Vec<(String, String)>> {
    let tokens: std::collections::BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(lading_e2e::harness::repo_root().join("fixtures/tokens.json"))?,
    )?;
    let parties: Vec<&String> = tokens.keys().collect();
    let mut made = Vec::with_capacity(n);
    for i in 0..n {
        let party = parties[i % parties.len()];
        let mut body = serde_json::json!({ "url": receiver.url(&format!("s{i}")), "filter": {} });
        if batch > 0 {
            body["batch"] = serde_json::json!({ "maxEvents": batch });
        }
        let response = client
            .post(format!("{base}/v1/subscriptions"))
            .bearer_auth(&tokens[party])
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "subscribing {party}: {status} {body}");
        made.push((
            party.clone(),
            body["id"].as_str().context("subscription id")?.to_owned(),
        ));
    }
    Ok(made)
}

/// Waits (up to 10 minutes) until every subscription's place is at the ledger's end: the time
/// from `start` until then.
async fn drain(
    client: &reqwest::Client,
    base: &str,
    subscriptions: &[(String, String)],
    start: Instant,
) -> Result<Duration> {
    let size = client
        .get(format!("{base}/readyz"))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["size"]
        .as_u64()
        .context("readyz size")?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pending: Vec<&(String, String)> = subscriptions.iter().collect();
    while !pending.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} subscriptions not caught up with {size} entries in 10 minutes",
            pending.len()
        );
        let mut still = Vec::new();
        for sub in pending {
            let (party, id) = sub;
            let shown: serde_json::Value = client
                .get(format!("{base}/v1/subscriptions/{id}"))
                .bearer_auth(lading_e2e::harness::token(party)?)
                .send()
                .await?
                .json()
                .await?;
            if shown["nextIndex"].as_u64().unwrap_or(0) < size {
                still.push(sub);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(start.elapsed())
}

/// The lag of every delivery `receiver` took: its arrival minus its entry's `received_at`.
fn notify_summary(
    cluster: &DurableCluster,
    db: &str,
    receiver: &Receiver,
    ingest_end: std::time::SystemTime,
    drained: Duration,
) -> Result<NotifySummary> {
    let out = cluster.cluster()?.psql(
        db,
        "SELECT idx, (extract(epoch FROM received_at) * 1000000)::bigint FROM ledger_entries",
    )?;
    let mut received_at = std::collections::HashMap::new();
    for line in out.lines() {
        let mut parts = line.trim().split('|');
        if let (Some(Ok(idx)), Some(Ok(micros))) = (
            parts.next().map(str::parse::<u64>),
            parts.next().map(str::parse::<u64>),
        ) {
            received_at.insert(idx, std::time::UNIX_EPOCH + Duration::from_micros(micros));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut lags = Vec::new();
    let mut during_ingest = 0;
    for r in receiver.received() {
        if !r.taken {
            continue;
        }
        // One entry, or each of a batch's.
        for index in r.indexes() {
            if !seen.insert((r.name.clone(), index)) {
                continue;
            }
            let at = received_at
                .get(&index)
                .with_context(|| format!("entry {index} delivered but not in the ledger"))?;
            lags.push(r.at.duration_since(*at).unwrap_or_default());
            if r.at <= ingest_end {
                during_ingest += 1;
            }
        }
    }
    Ok(NotifySummary {
        deliveries: lags.len(),
        during_ingest,
        lag: LatencySummary::of(&mut lags),
        drained,
    })
}

/// `--notify-bench`: every run with and without subscriptions, then the medians of each.
fn print_notify(results: &[RunResult], batch: usize) {
    println!();
    if batch > 0 {
        println!("Notifications (`--notify-bench`, batched: up to {batch} events a request; deliveries count events):");
    } else {
        println!("Notifications (`--notify-bench`):");
    }
    println!();
    println!("| run | subscriptions | transitions/s | deliveries | of them during ingest | deliveries/s until caught up | lag median ms | p99 ms | max ms | caught up after s | lading CPU s | postgres CPU s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let batch: Vec<&RunResult> = results.iter().filter(|r| r.mode == Mode::Batch).collect();
    for r in &batch {
        let n = r.notify.as_ref();
        let or_dash = |f: &dyn Fn(&NotifySummary) -> String| n.map_or_else(|| "-".into(), f);
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            r.run,
            r.subscriptions,
            r.per_second(),
            or_dash(&|n| n.deliveries.to_string()),
            or_dash(&|n| n.during_ingest.to_string()),
            or_dash(&|n| format!(
                "{:.0}",
                n.deliveries as f64 / n.drained.as_secs_f64().max(1e-9)
            )),
            or_dash(&|n| format!("{:.0}", ms(n.lag.median))),
            or_dash(&|n| format!("{:.0}", ms(n.lag.p99))),
            or_dash(&|n| format!("{:.0}", ms(n.lag.max))),
            or_dash(&|n| format!("{:.2}", n.drained.as_secs_f64())),
            r.lading_cpu.as_secs_f64(),
            r.postgres_cpu.as_secs_f64(),
        );
    }
    let rate = |subs: bool| {
        let rates: Vec<f64> = batch
            .iter()
            .filter(|r| !r.discarded && (r.subscriptions > 0) == subs)
            .map(|r| r.per_second())
            .collect();
        median(&rates).unwrap_or(f64::NAN)
    };
    let with: Vec<&NotifySummary> = batch
        .iter()
        .filter(|r| !r.discarded)
        .filter_map(|r| r.notify.as_ref())
        .collect();
    let pick = |f: &dyn Fn(&NotifySummary) -> f64| {
        median(&with.iter().map(|n| f(n)).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let (without, with_rate) = (rate(false), rate(true));
    println!();
    println!(
        "Medians: ingest {without:.0} /s without subscriptions, {with_rate:.0} /s with them ({:+.1} %); lag median {:.0} ms, p99 {:.0} ms; {:.0} deliveries/s until caught up",
        (with_rate / without - 1.0) * 100.0,
        pick(&|n| ms(n.lag.median)),
        pick(&|n| ms(n.lag.p99)),
        pick(&|n| n.deliveries as f64 / n.drained.as_secs_f64().max(1e-9)),
    );
}

fn print_runs(results: &[RunResult]) {
    println!();
    println!("| mode | http | run | acked | wall s | transitions/s | latency median ms | p99 ms | max ms | server p50/p99 ms | lading CPU s | postgres CPU s | load CPU s | other CPU s | commits | per commit | WAL MB | durable |");
    println!(
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in results {
        let server = r
            .server_latency
            .map(|s| format!("{:.2}/{:.2}", ms(s.median), ms(s.p99)))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.0} | {} |",
            mode_name(r.mode),
            r.versions.join(","),
            r.run,
            r.acked,
            r.wall.as_secs_f64(),
            r.per_second(),
            ms(r.latency.median),
            ms(r.latency.p99),
            ms(r.latency.max),
            server,
            r.lading_cpu.as_secs_f64(),
            r.postgres_cpu.as_secs_f64(),
            r.load_cpu.as_secs_f64(),
            r.other_cpu().as_secs_f64(),
            r.transactions,
            r.acked as f64 / r.transactions.max(1) as f64,
            r.wal_bytes as f64 / 1e6,
            match (r.errors.is_empty() && r.durable == r.acked, r.discarded) {
                (true, false) => "yes",
                (true, true) => "yes (noisy, repeated)",
                (false, _) => "NO",
            },
        );
    }
    for r in results {
        for e in &r.errors {
            println!(
                "error ({} {} run {}): {e}",
                mode_name(r.mode),
                http_name(r.http),
                r.run
            );
        }
    }
}

fn print_medians(results: &[RunResult], args: &Args) {
    println!();
    println!("Medians over runs:");
    println!();
    println!(
        "| mode | http | runs | senders | transitions/s | latency median ms | p99 ms | max ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for mode in args.modes() {
        for http in args.protocols() {
            let rs: Vec<&RunResult> = results
                .iter()
                .filter(|r| {
                    r.mode == mode && r.http == http && !r.discarded && r.subscriptions == 0
                })
                .collect();
            if rs.is_empty() {
                continue;
            }
            let pick = |f: &dyn Fn(&RunResult) -> f64| {
                median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>()).unwrap_or(f64::NAN)
            };
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                mode_name(mode),
                http_name(http),
                rs.len(),
                args.concurrency(mode),
                pick(&|r| r.per_second()),
                pick(&|r| ms(r.latency.median)),
                pick(&|r| ms(r.latency.p99)),
                pick(&|r| ms(r.latency.max)),
            );
        }
    }
}

/// `--soak`: the cycles as a table, the totals, and failure when anything was lost or any
/// checkpoint failed.
fn soak(args: &Args, bin: &Path, log_dir: &Path, cycles: usize) -> Result<()> {
    let config = SoakConfig {
        bin: bin.to_path_buf(),
        cycles,
        load: args.soak_load.max(2),
        submitters: args.concurrency.unwrap_or(16).max(1),
        postgres_crash_every: args.soak_postgres_every,
        workers: args.workers,
        checkpoint_interval_ms: args.checkpoint_interval_ms,
        transfers: args.transfers,
        seed: args.seed,
        log_path: log_dir.join("lading-soak.log"),
        budget: Duration::from_secs(3600),
        postgres_settings: Vec::new(),
    };
    let _ = std::fs::remove_file(&config.log_path);
    eprintln!(
        "lading-load: soak of {cycles} cycles, kill after {}..={} acknowledgements, {} submitters, PostgreSQL crashed every {} cycles",
        config.load / 2,
        config.load,
        config.submitters,
        config.postgres_crash_every
    );
    let report = soak::run(&config)?;
    println!();
    println!("| cycle | PostgreSQL killed | kill after | acknowledged | chained across a restart | unanswered | landed unanswered | accepted on resubmission | lost | checkpoints verified | ledger | restart s | cycle s |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in &report.cycles {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            c.cycle,
            if c.postgres_crashed { "yes" } else { "" },
            c.kill_after,
            c.acknowledged,
            c.chained_across_restart,
            c.unanswered,
            c.landed_unanswered,
            c.accepted_on_resubmission,
            c.lost,
            c.checkpoints_verified,
            c.ledger_size,
            c.restart.as_secs_f64(),
            c.wall.as_secs_f64()
        );
    }
    println!();
    println!("soak: {}", report.line());
    for p in report.problems() {
        println!("problem: {p}");
    }
    if !report.passed() {
        bail!("the soak lost entries or found bad checkpoints (see above)");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = lading_binary(&args)?;
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("lading-load-logs"));
    std::fs::create_dir_all(&log_dir)?;
    if let Some(cycles) = args.soak {
        return soak(&args, &bin, &log_dir, cycles);
    }
    eprintln!(
        "lading-load: registry {} ({} workers), logs in {}, load average {}",
        bin.display(),
        args.workers,
        log_dir.display(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut results = Vec::new();
    for mode in args.modes() {
        let shards = prepare(&args, mode)?;
        for http in args.protocols() {
            for run in 1..=args.runs.max(1) {
                // With --notify-bench: the same run without subscriptions, then with them.
                let notifies = if args.notify_bench > 0 && mode == Mode::Batch {
                    vec![0, args.notify_bench]
                } else {
                    vec![0]
                };
                for notify in notifies {
                    for attempt in 0..=args.retry_noisy {
                        wait_quiet(Duration::from_secs(args.wait_quiet));
                        let mut r = run_once(
                            &args,
                            &bin,
                            &log_dir,
                            Which {
                                mode,
                                http,
                                run,
                                notify,
                            },
                            &shards,
                        )?;
                        let noisy = r.noisy(args.noisy_share);
                        let told = r
                        .notify
                        .as_ref()
                        .map(|n| {
                            format!(
                                ", {notify} subscriptions: {} deliveries ({} during ingest), lag median {:.0} ms, p99 {:.0} ms, max {:.0} ms, caught up after {:.2} s",
                                n.deliveries,
                                n.during_ingest,
                                ms(n.lag.median),
                                ms(n.lag.p99),
                                ms(n.lag.max),
                                n.drained.as_secs_f64()
                            )
                        })
                        .unwrap_or_default();
                        eprintln!(
                        "lading-load: {} {} run {run}: {} acked in {:.2} s = {:.0}/s, latency median {:.2} ms, p99 {:.2} ms, max {:.2} ms, other CPU {:.1} s{told}{}{}",
                        mode_name(mode),
                        http_name(http),
                        r.acked,
                        r.wall.as_secs_f64(),
                        r.per_second(),
                        ms(r.latency.median),
                        ms(r.latency.p99),
                        ms(r.latency.max),
                        r.other_cpu().as_secs_f64(),
                        if noisy { " (noisy)" } else { "" },
                        if r.errors.is_empty() { String::new() } else { format!(" ERRORS: {:?}", r.errors) }
                    );
                        let last = attempt == args.retry_noisy;
                        r.discarded = noisy && !last;
                        let keep = !r.discarded;
                        results.push(r);
                        if keep {
                            break;
                        }
                    }
                }
            }
        }
    }
    print_runs(&results);
    print_medians(&results, &args);
    if args.notify_bench > 0 {
        print_notify(&results, args.notify_batch);
    }
    if results
        .iter()
        .any(|r| !r.errors.is_empty() || r.durable != r.acked)
    {
        bail!("some runs had errors or lost acknowledged entries (see above)");
    }
    Ok(())
}
