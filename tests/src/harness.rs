//! Running real `lading` processes for tests and benchmarks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The repository's root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `lading` binary of the same profile as this test: `LADING_BIN` when set (the test
/// command sets it to the binary `cargo test --workspace` built, with the workspace's
/// features), otherwise built (or brought up to date) once per process with the cargo that
/// runs the tests.
pub fn lading_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build_lading().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_lading() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("LADING_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("LADING_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    // target/<profile>/deps/<test binary> -> target/<profile>
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot locate the target directory")?
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "lading", "--bin", "lading"])
        .current_dir(repo_root());
    if release {
        build.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        build.env("CARGO_TARGET_DIR", target);
    }
    let status = build.status().context("cannot run cargo to build lading")?;
    if !status.success() {
        bail!("building the lading binary failed");
    }
    let bin = profile_dir.join("lading");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

/// The application's role in the test cluster: `lading` connects as it (`LADING_DATABASE_URL`)
/// and migrates as the superuser (`LADING_DATABASE_OWNER_URL`), as a deployment of two roles
/// does.
pub const WRITER_ROLE: &str = "lading_writer";

/// A throwaway database in the process's test cluster.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    /// As the superuser, who owns the tables once `lading` migrated them.
    pub url: String,
    /// As [`WRITER_ROLE`].
    pub writer_url: String,
}

impl TestDb {
    pub fn new() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let cluster = lading_pgcluster::shared_test_cluster()?;
        let name = format!(
            "e2e_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let url = cluster.create_database(&name)?;
        static WRITER: std::sync::OnceLock<Result<lading_pgcluster::LoginRole, String>> =
            std::sync::OnceLock::new();
        let writer = WRITER
            .get_or_init(|| {
                cluster
                    .ensure_login_role(WRITER_ROLE)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| anyhow::anyhow!("the test cluster's {WRITER_ROLE}: {e}"))?;
        let writer_url = cluster.url_as(&writer, &name);
        Ok(Self {
            name,
            url,
            writer_url,
        })
    }

    /// `lading`'s settings for this database: the application as [`WRITER_ROLE`], migrations
    /// as the superuser.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LADING_DATABASE_URL".into(), self.writer_url.clone()),
            ("LADING_DATABASE_OWNER_URL".into(), self.url.clone()),
        ]
    }

    /// Runs SQL as the superuser (to look behind the registry's back).
    pub fn psql(&self, sql: &str) -> Result<String> {
        Ok(lading_pgcluster::shared_test_cluster()?.psql(&self.name, sql)?)
    }
}

/// A folder for PostgreSQL clusters a test runs itself (a primary and its standby, a
/// restore), which the `postgres` account can traverse: it runs the servers when we are root.
pub fn cluster_dir(prefix: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()?)
}

/// `lading`'s settings for a database in clusters a test runs itself: the application as
/// `writer`, migrations as the superuser, each through `hosts` in order (the first that
/// takes writes: `lading_pgcluster::failover_url`).
pub fn database_env(
    hosts: &[&lading_pgcluster::Cluster],
    writer: &lading_pgcluster::LoginRole,
    database: &str,
) -> Vec<(String, String)> {
    vec![
        (
            "LADING_DATABASE_URL".into(),
            lading_pgcluster::failover_url(hosts, Some(writer), database),
        ),
        (
            "LADING_DATABASE_OWNER_URL".into(),
            lading_pgcluster::failover_url(hosts, None, database),
        ),
    ]
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(cluster) = lading_pgcluster::shared_test_cluster() {
            let _ = cluster.psql(
                "postgres",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

/// TLS material for one test registry: a self-signed certificate for 127.0.0.1.
#[derive(Debug)]
pub struct Tls {
    pub dir: tempfile::TempDir,
    pub cert_pem: String,
}

impl Tls {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lading-e2e-tls-")
            .tempdir()?;
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem)?;
        std::fs::write(
            dir.path().join("key.pem"),
            certified.signing_key.serialize_pem(),
        )?;
        Ok(Self { dir, cert_pem })
    }

    /// TLS material made elsewhere, e.g. a server certificate from the consortium CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lading-e2e-tls-")
            .tempdir()?;
        std::fs::write(dir.path().join("cert.pem"), cert_pem)?;
        std::fs::write(dir.path().join("key.pem"), key_pem)?;
        Ok(Self {
            dir,
            cert_pem: cert_pem.to_owned(),
        })
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// An HTTPS client that trusts this certificate and nothing else.
    pub fn client(&self) -> Result<reqwest::Client> {
        let cert = reqwest::Certificate::from_pem(self.cert_pem.as_bytes())?;
        Ok(reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?)
    }
}

/// A `lading serve` child process on a test database, with the fixture parties imported.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
}

/// The time rule's skew for registries that take the fixtures: those are statements signed on
/// fixed dates (`fixtures/samples.json`: 2026-11-02), replayed by the tests long after, so
/// their registries accept a century of skew. The rule itself is tested at its default by a
/// test that sets its own value (`options.env` comes last and wins).
pub const FIXTURE_CLOCK_SKEW_MS: u64 = 100 * 365 * 24 * 3_600_000;

/// Settings of a test registry.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub checkpoint_interval_ms: u64,
    pub workers: usize,
    pub port: Option<u16>,
    /// The consortium CA whose client certificates name replicas (`LADING_CLIENT_CA`).
    pub client_ca: Option<PathBuf>,
    /// Further settings (`LADING_*`), e.g. the replicas to reconcile.
    pub env: Vec<(String, String)>,
    /// Where the registry's log (stderr) goes; the test's own stderr when `None`.
    pub log: Option<PathBuf>,
    /// Whether the registry takes writes without a credential
    /// (`LADING_REQUIRE_WRITE_CREDENTIAL=false`): true for the tests written before writes
    /// needed one, which post signed statements with a bare client. `false` leaves the
    /// registry's default (a credential required), as `tests/tests/submitters.rs` does.
    pub anonymous_writes: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval_ms: 100,
            workers: 2,
            port: None,
            client_ca: None,
            env: Vec::new(),
            log: None,
            anonymous_writes: true,
        }
    }
}

impl Server {
    /// Imports the fixture parties into `db` and starts a registry on it.
    pub fn start(db: &TestDb, tls: &Tls, options: ServerOptions) -> Result<Self> {
        Self::start_with_database(db.env(), tls, options)
    }

    /// [`Server::start`] on the database that `database` (`LADING_DATABASE_URL`,
    /// `LADING_DATABASE_OWNER_URL`) names: one a test runs itself (a primary and its standby).
    pub fn start_with_database(
        database: Vec<(String, String)>,
        tls: &Tls,
        options: ServerOptions,
    ) -> Result<Self> {
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let fixtures = repo_root().join("fixtures");
        let mut env: Vec<(String, String)> = database;
        env.extend([
            ("LADING_BIND".into(), format!("127.0.0.1:{port}")),
            (
                "LADING_TLS_CERT".into(),
                tls.cert_path().display().to_string(),
            ),
            (
                "LADING_TLS_KEY".into(),
                tls.key_path().display().to_string(),
            ),
            (
                "LADING_SIGNING_KEY".into(),
                fixtures.join("keys/registry.jwk").display().to_string(),
            ),
            // A test deployment: the fixtures' TEST keys are allowed here and only here.
            ("LADING_ALLOW_TEST_KEYS".into(), "true".into()),
            (
                "LADING_CHECKPOINT_INTERVAL_MS".into(),
                options.checkpoint_interval_ms.to_string(),
            ),
            ("LADING_WORKERS".into(), options.workers.to_string()),
            (
                "LADING_MAX_CLOCK_SKEW_MS".into(),
                FIXTURE_CLOCK_SKEW_MS.to_string(),
            ),
        ]);
        if let Some(ca) = &options.client_ca {
            env.push(("LADING_CLIENT_CA".into(), ca.display().to_string()));
        }
        if options.anonymous_writes {
            env.push(("LADING_REQUIRE_WRITE_CREDENTIAL".into(), "false".into()));
        }
        env.extend(options.env.iter().cloned());
        let bin = lading_bin()?;
        let import = Command::new(&bin)
            .arg("import-parties")
            .arg(fixtures.join("parties.json"))
            .arg("--tokens")
            .arg(fixtures.join("tokens.json"))
            .envs(env.iter().cloned())
            .env("LADING_CONFIG", "/dev/null")
            .output()?;
        if !import.status.success() {
            bail!(
                "import-parties failed: {}",
                String::from_utf8_lossy(&import.stderr)
            );
        }
        let mut server = Self {
            child: None,
            base: format!("https://127.0.0.1:{port}"),
            port,
            env,
            log: options.log.clone(),
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts the process (again) and waits until it listens.
    pub fn spawn(&mut self) -> Result<()> {
        self.child = Some(spawn_lading(
            "serve",
            &self.env,
            "listening on ",
            self.log.as_deref(),
        )?);
        Ok(())
    }

    /// A second registry process on the same database and settings, on a port of its own
    /// (two registries: one sequences, the other stands by; see `lading_registry::lease`).
    pub fn beside(&self) -> Result<Self> {
        self.beside_with(Vec::new())
    }

    /// [`Server::beside`], with further settings (`LADING_*`) that win over this one's.
    pub fn beside_with(&self, settings: Vec<(String, String)>) -> Result<Self> {
        let port = free_port()?;
        let mut env = self.env.clone();
        env.retain(|(name, _)| name != "LADING_BIND");
        env.push(("LADING_BIND".into(), format!("127.0.0.1:{port}")));
        env.extend(settings);
        let mut server = Self {
            child: None,
            base: format!("https://127.0.0.1:{port}"),
            port,
            env,
            log: self.log.clone(),
        };
        server.spawn()?;
        Ok(server)
    }

    /// The process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the process dies between any two instructions, as in a crash.
    pub fn kill_9(&mut self) -> Result<()> {
        kill_9(&mut self.child)
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        signal(&child, "TERM");
        Ok(child.wait()?)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = kill_9(&mut self.child);
    }
}

/// Starts `lading <command>` with `env` and no configuration file, and waits until it prints
/// a line starting with `ready` on stdout; kills it if it does not.
fn spawn_lading(
    command: &str,
    env: &[(String, String)],
    ready: &'static str,
    log: Option<&Path>,
) -> Result<Child> {
    let stderr = match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => Stdio::inherit(),
    };
    let mut cmd = Command::new(lading_bin()?);
    cmd.arg(command)
        .env("LADING_CONFIG", "/dev/null")
        // Every answer checked against the OpenAPI documents (unless a test says otherwise).
        .env("LADING_CONTRACT_CHECK", "1")
        .env(
            "RUST_LOG",
            std::env::var("LADING_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        // After the defaults, so that a test may set its own (a log level, say).
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    hand_over(&mut cmd)?;
    let mut child = cmd.spawn()?;
    if let Err(e) = wait_for_line(&mut child, ready, Duration::from_secs(60)) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.context(format!("lading {command}")));
    }
    Ok(child)
}

/// SIGKILL the child in `slot`, if any, and reap it.
fn kill_9(slot: &mut Option<Child>) -> Result<()> {
    if let Some(mut child) = slot.take() {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}

/// Sends a signal (`TERM`, `INT`, ...) to a child process with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

/// A loopback port that was free a moment ago.
/// Waits until `child` (a `lading serve` or `lading demo` whose stdout is piped) prints its
/// `listening on …` line. Fails if it exits first or `within` passes; the child is left as
/// it is either way.
pub fn wait_until_listening(child: &mut Child, within: Duration) -> Result<()> {
    wait_for_line(child, "listening on ", within)
}

/// Waits until the child prints a line starting with `prefix` on stdout (`lading replica`
/// prints `following <registry>`).
pub fn wait_for_line(child: &mut Child, prefix: &'static str, within: Duration) -> Result<()> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(prefix) {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + within;
    loop {
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("exited before printing {prefix:?}: {status}");
        }
        if Instant::now() > deadline {
            bail!("did not print {prefix:?} within {} s", within.as_secs());
        }
    }
}

pub fn free_port() -> Result<u16> {
    // Bound, not listening: until the process that serves on it starts, a client is refused
    // at once, as by a port nobody holds.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let port = socket
        .local_addr()?
        .as_socket()
        .context("an IPv4 socket")?
        .port();
    reserved().insert(port, socket.into());
    Ok(port)
}

/// Ports [`free_port`] gave out, each still bound here until a `lading` process that listens on
/// it is started ([`hand_over`]): nobody else (another test, PostgreSQL picking a port) can
/// take it in between.
fn reserved(
) -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u16, std::net::TcpListener>> {
    static RESERVED: std::sync::Mutex<std::collections::BTreeMap<u16, std::net::TcpListener>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    RESERVED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `command` the sockets reserved for the addresses it is told to listen on
/// (`LADING_BIND`, `LADING_REPLICA_LISTEN`, `LADING_PORTAL_LISTEN`, `LADING_METRICS_LISTEN`), as systemd's socket activation does (`LISTEN_FDS`,
/// descriptors from 3): it serves on them without binding. A port whose socket was handed over
/// before (a restarted process) is bound by the process itself.
pub fn hand_over(command: &mut Command) -> Result<()> {
    use command_fds::{CommandFdExt, FdMapping};
    let ports: Vec<u16> = command
        .get_envs()
        .filter(|(key, _)| {
            *key == "LADING_BIND"
                || *key == "LADING_REPLICA_LISTEN"
                || *key == "LADING_PORTAL_LISTEN"
                || *key == "LADING_METRICS_LISTEN"
        })
        .filter_map(|(_, value)| value?.to_str()?.rsplit_once(':')?.1.parse().ok())
        .collect();
    let mut reserved = reserved();
    let listeners: Vec<std::net::TcpListener> =
        ports.iter().filter_map(|p| reserved.remove(p)).collect();
    if listeners.is_empty() {
        return Ok(());
    }
    let count = listeners.len();
    let mappings = listeners
        .into_iter()
        .zip(3..)
        .map(|(listener, child_fd)| FdMapping {
            parent_fd: std::os::fd::OwnedFd::from(listener),
            child_fd,
        })
        .collect();
    command
        .fd_mappings(mappings)
        .map_err(|_| anyhow::anyhow!("colliding descriptors"))?;
    command
        .env("LISTEN_FDS", count.to_string())
        .env_remove("LISTEN_PID");
    Ok(())
}

/// The fixture bearer token of `party`.
pub fn token(party: &str) -> Result<String> {
    let tokens: std::collections::BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("fixtures/tokens.json"))?,
    )?;
    tokens
        .get(party)
        .cloned()
        .with_context(|| format!("no token for {party}"))
}

/// A `lading replica` child process, configured by `LADING_*` variables (its own database,
/// registry, certificates); started when it printed `following <registry>`.
#[derive(Debug)]
pub struct ReplicaProcess {
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl ReplicaProcess {
    pub fn start(env: Vec<(String, String)>) -> Result<Self> {
        let mut replica = Self { child: None, env };
        replica.spawn()?;
        Ok(replica)
    }

    pub fn spawn(&mut self) -> Result<()> {
        // With a face, ready once it serves (it binds after the node starts following).
        let has = |key: &str| self.env.iter().any(|(k, _)| k == key);
        let ready = if has("LADING_REPLICA_LISTEN") {
            "serving "
        } else if has("LADING_PORTAL_LISTEN") {
            "portal "
        } else {
            "following "
        };
        self.child = Some(spawn_lading("replica", &self.env, ready, None)?);
        Ok(())
    }

    pub fn kill_9(&mut self) -> Result<()> {
        kill_9(&mut self.child)
    }

    /// Fails when the process has exited.
    pub fn running(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("not started")?;
        if let Some(status) = child.try_wait()? {
            bail!("lading replica exited: {status}");
        }
        Ok(())
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.kill_9();
    }
}

/// `lading <args>` with no configuration file and `env`, which must succeed; its stdout.
pub fn run_lading(args: &[&str], env: &[(String, String)]) -> Result<String> {
    let out = Command::new(lading_bin()?)
        .args(args)
        .env("LADING_CONFIG", "/dev/null")
        .envs(env.iter().cloned())
        .output()?;
    if !out.status.success() {
        bail!(
            "lading {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `lading ca <args>`, which must succeed.
pub fn lading_ca(args: &[&str]) -> Result<()> {
    let mut all = vec!["ca"];
    all.extend_from_slice(args);
    run_lading(&all, &[]).map(|_| ())
}

/// `GET url`: the status and the JSON body (`null` when there is none).
pub async fn get(
    client: &reqwest::Client,
    url: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value)> {
    let response = client.get(url).send().await?;
    let status = response.status();
    Ok((
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    ))
}

/// `POST url` with no body: the status and the JSON body (`null` when there is none).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value)> {
    let response = client.post(url).send().await?;
    let status = response.status();
    Ok((
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    ))
}

/// A number one SQL query answers (as the superuser).
pub fn sql_number(db: &TestDb, sql: &str) -> Result<u64> {
    db.psql(sql)?
        .trim()
        .parse()
        .with_context(|| format!("{sql} is not a number"))
}

/// An HTTP answer as (status, the problem's `code` — empty when the answer is no problem —,
/// the JSON body, or null).
pub async fn answer(
    response: reqwest::Response,
) -> Result<(reqwest::StatusCode, String, serde_json::Value)> {
    let status = response.status();
    let media = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    let code = if media.starts_with("application/problem+json") {
        body["code"]
            .as_str()
            .context("a problem without code")?
            .to_owned()
    } else {
        String::new()
    };
    Ok((status, code, body))
}

/// The project's Python virtual environment (`LADING_PY_VENV`, default
/// `~/.cache/lading/venv`), which `deploy/ensure-deps.sh --dev` makes, once it has every one of
/// `tools` in its `bin/`; else an error saying how to make it.
pub fn py_venv(tools: &[&str]) -> Result<PathBuf> {
    let dir = match std::env::var_os("LADING_PY_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/lading/venv"),
    };
    for tool in tools {
        if !dir.join("bin").join(tool).exists() {
            bail!(
                "{} has no bin/{tool}: run `deploy/ensure-deps.sh --dev`, which creates the \
                 project's Python virtual environment (LADING_PY_VENV names another)",
                dir.display()
            );
        }
    }
    Ok(dir)
}
