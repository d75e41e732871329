//! A PostgreSQL cluster in a directory of its own, run as our child process.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::bin_dir::{find_bin_dir, has_server_binaries};
use crate::error::{ClusterError, IoContext};
use crate::sys::{self, Account};

/// The cluster's data directory, inside the root.
pub const PGDATA_DIR: &str = "pgdata";
/// The superuser's password, inside the root (outside `pgdata`, so no
/// server-side file access can read it, and 0600).
pub const PASSWORD_FILE: &str = "superuser.password";
mod backup;
mod replication;

pub use backup::{BaseBackup, RecoveryTarget};
pub use replication::failover_url;

/// The last port used, so a restarted cluster keeps its URL.
pub const PORT_FILE: &str = "port";
/// The postmaster's stdout and stderr, appended across runs.
pub const LOG_FILE: &str = "postgres.log";
/// Held (flock) by the process that runs the cluster.
pub const LOCK_FILE: &str = "lock";
/// The Unix socket directory (0700, only the server's account may use it).
pub const SOCKET_DIR: &str = "socket";
/// A login role's password is kept in `<root>/role-<name>.password` (0600), beside the
/// superuser's and for the same reasons ([`Cluster::ensure_login_role`]).
pub const ROLE_PASSWORD_PREFIX: &str = "role-";

/// initdb writes here first; renamed to `pgdata` only once complete, so a
/// `pgdata` directory is always a whole cluster.
const PGDATA_INIT_DIR: &str = "pgdata.initdb";
/// initdb reads the password from this file; it exists only during initdb.
const INITDB_PWFILE: &str = "initdb.pwfile";
/// The account PostgreSQL runs as when we are root.
const SERVICE_USER: &str = "postgres";
/// Set in the postmaster's environment to our pid, so that a later start
/// can tell our orphan (still shutting down after we died) from a server
/// somebody else runs on the directory.
const OWNER_ENV: &str = "LADING_PGCLUSTER_OWNER";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a postmaster left by a dead owner gets to finish its immediate shutdown.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 3;
const LOG_TAIL_LINES: usize = 40;

/// Settings we pass on the command line and callers may not override,
/// because the URL and the isolation of the cluster depend on them.
const RESERVED_SETTINGS: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_permissions",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
];

/// Durable production defaults; callers' settings come after and win.
///
/// A ledger is written append-only at a high rate: checkpoints far apart (`max_wal_size`,
/// `checkpoint_timeout`) and compressed full-page images (`wal_compression`) cut the WAL a
/// write costs without weakening durability (`fsync`, `synchronous_commit`, `full_page_writes`
/// stay on).
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("shared_buffers", "256MB"),
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    ("wal_compression", "lz4"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "15min"),
    ("max_connections", "200"),
];

/// How to start a cluster. `data_dir` is the cluster's *root* folder, which
/// holds `pgdata/`, `superuser.password`, `port`, `postgres.log`, `lock` and
/// `socket/`.
///
/// Build with [`ClusterOptions::new`] (and struct-update syntax for the rest)
/// so new fields do not break callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Root folder of the cluster; created if absent.
    pub data_dir: PathBuf,
    /// Port on 127.0.0.1. `None`: the port remembered in `<root>/port` if it
    /// is free, else any free port.
    pub port: Option<u16>,
    /// Directory with `initdb` and `postgres`; `None`: [`find_bin_dir`].
    pub bin_dir: Option<PathBuf>,
    /// Name of the superuser created by initdb (only used at creation; it must
    /// stay the same for an existing cluster).
    pub superuser: String,
    /// Extra `-c name=value` server settings, applied after the defaults.
    pub settings: Vec<(String, String)>,
}

impl ClusterOptions {
    /// Defaults: any port (remembered across restarts), binaries found by
    /// [`find_bin_dir`], superuser `lading`, durable settings.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            port: None,
            bin_dir: None,
            superuser: "lading".to_owned(),
            settings: Vec::new(),
        }
    }

    /// Adds one server setting.
    #[must_use]
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }
}

/// The postmaster's exit, recorded by the keeper thread under the lock so
/// that nobody signals a pid after it has been reaped (and maybe reused).
#[derive(Debug, Default)]
struct Shared {
    exit: Mutex<Option<String>>,
    exited: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running PostgreSQL cluster owned by this process.
///
/// Dropping it (or [`Cluster::stop`]) shuts the server down cleanly; if this
/// process dies instead, the server does an immediate shutdown by itself
/// (parent-death signal), so it never outlives us.
pub struct Cluster {
    root: PathBuf,
    pgdata: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    /// The Unix socket's directory, when the path fits the kernel's limit.
    socket_dir: Option<PathBuf>,
    superuser: String,
    password: String,
    pid: u32,
    shared: Arc<Shared>,
    keeper: Option<JoinHandle<()>>,
    /// Held for the cluster's lifetime; released (closed) after the server is down.
    _lock: File,
}

/// A login role of the cluster other than its superuser ([`Cluster::ensure_login_role`]).
#[derive(Clone)]
pub struct LoginRole {
    name: String,
    password: String,
}

impl LoginRole {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for LoginRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRole")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("superuser", &self.superuser)
            .field("password", &"<redacted>")
            .field("pid", &self.pid)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Cluster {
    /// Creates the cluster if needed, starts the server and waits (up to
    /// 30 s) until it accepts connections. Blocking.
    pub fn start(opts: ClusterOptions) -> Result<Cluster, ClusterError> {
        validate_superuser(&opts.superuser)?;
        let settings = validated_settings(&opts.settings)?;
        let bin_dir = match opts.bin_dir {
            Some(dir) if has_server_binaries(&dir) => dir,
            Some(dir) => {
                return Err(ClusterError::BinariesNotFound {
                    searched: format!("bin_dir {} has no initdb and postgres", dir.display()),
                })
            }
            None => find_bin_dir()?,
        };
        let run_as = service_account()?;
        let root = prepare_root(&opts.data_dir, run_as.as_ref())?;
        let lock = acquire_lock(&root)?;
        if let Some(acct) = &run_as {
            check_traversable(&root, acct)?;
        }

        let pgdata = root.join(PGDATA_DIR);
        let password = if pgdata.join("PG_VERSION").is_file() {
            read_password(&root)?
        } else if pgdata.exists() {
            return Err(ClusterError::InvalidOption(format!(
                "{} exists but is not a PostgreSQL data directory (no PG_VERSION)",
                pgdata.display()
            )));
        } else {
            // A cluster that runs without fsync gains nothing from a synced initdb.
            let no_sync = settings
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case("fsync"))
                .is_some_and(|(_, v)| {
                    matches!(
                        v.to_ascii_lowercase().as_str(),
                        "off" | "false" | "0" | "no"
                    )
                });
            init_cluster(&root, &bin_dir, &opts.superuser, run_as.as_ref(), no_sync)?
        };
        check_pidfile(&pgdata)?;
        let socket_dir = prepare_socket_dir(&root, run_as.as_ref())?;

        let mut port = choose_port(&root, opts.port)?;
        let mut attempt = 1;
        loop {
            let launch = Launch {
                bin_dir: &bin_dir,
                root: &root,
                pgdata: &pgdata,
                socket_dir: socket_dir.as_deref(),
                port,
                settings: &settings,
                run_as: run_as.as_ref(),
            };
            let (pid, keeper, shared, log_offset) = launch.spawn()?;
            let mut cluster = Cluster {
                root: root.clone(),
                pgdata: pgdata.clone(),
                bin_dir: bin_dir.clone(),
                port,
                socket_dir: socket_dir.clone(),
                superuser: opts.superuser.clone(),
                password: password.clone(),
                pid,
                shared,
                keeper: Some(keeper),
                _lock: lock
                    .try_clone()
                    .ctx(|| "duplicating the lock file handle".into())?,
            };
            match cluster.wait_ready(log_offset) {
                Ok(()) => {
                    remember_port(&root, port);
                    tracing::info!(root = %root.display(), port, pid, "PostgreSQL cluster started");
                    return Ok(cluster);
                }
                Err(ClusterError::StartFailed { log_tail, .. })
                    if opts.port.is_none()
                        && attempt < PORT_ATTEMPTS
                        && log_tail.contains("could not bind") =>
                {
                    // Someone took the port between our check and postgres' bind.
                    tracing::warn!(port, "port was taken during start-up; retrying on another");
                    cluster.reap();
                    port = free_port()?;
                    attempt += 1;
                }
                Err(e) => {
                    cluster.reap();
                    return Err(e);
                }
            }
        }
    }

    /// `postgres://<superuser>:<password>@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        self.tcp_url(&self.superuser, &self.password, database)
    }

    /// The URL for this process, the cluster's owner: through the Unix socket when there is
    /// one (`postgres://<superuser>:<password>@<socket dir, percent-encoded>:<port>/<database>`),
    /// which spares every query a trip through the TCP stack on both sides; otherwise
    /// [`Cluster::url`]. The socket is reachable only by the server's account (and root).
    pub fn local_url(&self, database: &str) -> String {
        self.socket_url(&self.superuser, &self.password, database)
    }

    /// [`Cluster::url`], connecting as `role` instead of the superuser.
    pub fn url_as(&self, role: &LoginRole, database: &str) -> String {
        self.tcp_url(&role.name, &role.password, database)
    }

    /// [`Cluster::local_url`], connecting as `role` instead of the superuser.
    pub fn local_url_as(&self, role: &LoginRole, database: &str) -> String {
        self.socket_url(&role.name, &role.password, database)
    }

    fn tcp_url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{}",
            self.port,
            percent_encode(database)
        )
    }

    fn socket_url(&self, user: &str, password: &str, database: &str) -> String {
        match &self.socket_dir {
            Some(dir) => format!(
                "postgres://{user}:{password}@{}:{}/{}",
                percent_encode(&dir.display().to_string()),
                self.port,
                percent_encode(database)
            ),
            None => self.tcp_url(user, password, database),
        }
    }

    /// Makes sure the cluster has the login role `name` besides its superuser, and returns it
    /// with its password. The role owns nothing and can bypass nothing: LOGIN, NOSUPERUSER,
    /// NOCREATEDB, NOCREATEROLE, NOREPLICATION, NOBYPASSRLS (what it may do in a database is
    /// granted there). Its password is random, made on first use and kept in
    /// `<root>/role-<name>.password` (0600, beside the superuser's); later calls, in this run
    /// or after a restart, reuse it. The attributes and the password are set again at every
    /// call, so a role made by hand, by an older version without it, or by a call interrupted
    /// between the file and the role, ends the same.
    pub fn ensure_login_role(&self, name: &str) -> Result<LoginRole, ClusterError> {
        if !is_plain_identifier(name) || name == self.superuser {
            return Err(ClusterError::InvalidOption(format!(
                "login role {name:?} must match [a-z_][a-z0-9_]*, be at most 63 bytes and not be the superuser"
            )));
        }
        // Two callers in this process (tests share one cluster) must not make two passwords.
        static ENSURING: Mutex<()> = Mutex::new(());
        let _guard = ENSURING.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self
            .root
            .join(format!("{ROLE_PASSWORD_PREFIX}{name}.password"));
        let password = match read_secret(&path)? {
            Some(password) => password,
            None => {
                let password = hex::encode(rand::random::<[u8; 16]>());
                let tmp = path.with_extension("password.tmp");
                let _ = fs::remove_file(&tmp);
                write_private(&tmp, &format!("{password}\n"), None)?;
                fs::rename(&tmp, &path).ctx(|| format!("writing {}", path.display()))?;
                File::open(&self.root)
                    .and_then(|d| d.sync_all())
                    .ctx(|| format!("syncing {}", self.root.display()))?;
                password
            }
        };
        // Through psql's standard input, so that the password is on no command line.
        self.psql_stdin(
            "postgres",
            &format!(
                "DO $$ BEGIN\n\
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN\n\
                 CREATE ROLE {name};\n\
                 END IF;\n\
                 END $$;\n\
                 ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                 NOBYPASSRLS PASSWORD '{password}';\n"
            ),
        )?;
        Ok(LoginRole {
            name: name.to_owned(),
            password,
        })
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root folder (`ClusterOptions::data_dir`, made absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The PostgreSQL data directory, `<root>/pgdata`.
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Where the server's output goes, `<root>/postgres.log`.
    pub fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    /// The server binaries in use (client tools such as psql sit beside them
    /// on Debian).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    /// The superuser's password (also inside [`Cluster::url`]).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the postmaster is still running.
    pub fn is_running(&self) -> bool {
        self.shared.lock().is_none()
    }

    /// Creates a database and returns its URL. Names are limited to
    /// `[a-z_][a-z0-9_]*`, at most 63 bytes, so they need no quoting.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        if !is_plain_identifier(name) {
            return Err(ClusterError::InvalidOption(format!(
                "database name {name:?} must match [a-z_][a-z0-9_]* and be at most 63 bytes"
            )));
        }
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    /// Runs SQL through `psql` (unaligned, tuples only, stop on error) and
    /// returns its standard output. Meant for tests and tooling that need to
    /// reach behind the application, e.g. to tamper with rows.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, ClusterError> {
        let psql = client_tool(&self.bin_dir, "psql");
        let out = Command::new(&psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-t", "-A", "-d"])
            .arg(self.url(database))
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .ctx(|| format!("running {}", psql.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(ClusterError::CommandFailed {
                program: psql.display().to_string(),
                status: out.status.to_string(),
                output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(stdout)
    }

    /// [`Cluster::psql`] with the SQL on standard input and the password in the environment,
    /// so that neither is on a command line other accounts can read.
    fn psql_stdin(&self, database: &str, sql: &str) -> Result<String, ClusterError> {
        let psql = client_tool(&self.bin_dir, "psql");
        let mut child = Command::new(&psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-t", "-A", "-d"])
            .arg(format!(
                "postgres://{}@127.0.0.1:{}/{}",
                self.superuser,
                self.port,
                percent_encode(database)
            ))
            .env("PGPASSWORD", &self.password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ctx(|| format!("running {}", psql.display()))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(sql.as_bytes()));
        let out = child
            .wait_with_output()
            .ctx(|| format!("running {}", psql.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !matches!(written, Some(Ok(()))) {
            return Err(ClusterError::CommandFailed {
                program: psql.display().to_string(),
                status: out.status.to_string(),
                output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(stdout)
    }

    /// Fast shutdown (SIGINT: disconnect clients, checkpoint, exit); after
    /// 30 s the server is killed and `StopTimeout` returned.
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.shutdown()
    }

    /// Immediate shutdown (SIGQUIT, no checkpoint; crash recovery runs at the
    /// next start). For cleanup; a real crash is simulated by killing the
    /// owning process instead.
    pub fn kill_immediately(&mut self) {
        self.quit_and_wait();
        self.reap();
    }

    fn shutdown(&mut self) -> Result<(), ClusterError> {
        if self.keeper.is_none() {
            return Ok(());
        }
        self.signal(libc::SIGINT);
        let result = if self.wait_exit(STOP_TIMEOUT) {
            Ok(())
        } else {
            tracing::warn!(
                pid = self.pid,
                "PostgreSQL ignored fast shutdown; sending SIGQUIT"
            );
            self.quit_and_wait();
            Err(ClusterError::StopTimeout {
                secs: STOP_TIMEOUT.as_secs(),
            })
        };
        self.reap();
        if result.is_ok() {
            tracing::info!(root = %self.root.display(), "PostgreSQL cluster stopped");
        }
        result
    }

    /// SIGQUIT, then SIGKILL if the postmaster still lingers.
    pub(crate) fn quit_and_wait(&self) {
        self.signal(libc::SIGQUIT);
        if !self.wait_exit(KILL_TIMEOUT) {
            self.signal(libc::SIGKILL);
            self.wait_exit(KILL_TIMEOUT);
        }
    }

    /// Joins the keeper once the postmaster has exited.
    fn reap(&mut self) {
        if !self.is_running() {
            if let Some(keeper) = self.keeper.take() {
                let _ = keeper.join();
            }
        }
    }

    /// Signals the postmaster unless it has already been reaped.
    fn signal(&self, signal: libc::c_int) {
        let exit = self.shared.lock();
        if exit.is_none() {
            if let Err(e) = sys::send_signal(self.pid, signal) {
                tracing::warn!(pid = self.pid, signal, error = %e, "could not signal PostgreSQL");
            }
        }
    }

    /// Waits until the postmaster has exited; false on timeout.
    fn wait_exit(&self, timeout: Duration) -> bool {
        let guard = self.shared.lock();
        let (guard, _) = self
            .shared
            .exited
            .wait_timeout_while(guard, timeout, |exit| exit.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.is_some()
    }

    fn wait_ready(&self, log_offset: u64) -> Result<(), ClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let pg_isready = self.bin_dir.join("pg_isready");
        loop {
            if let Some(status) = self.shared.lock().clone() {
                return Err(ClusterError::StartFailed {
                    status,
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path(), log_offset),
                });
            }
            // postmaster.pid names the process that owns the data directory
            // and says "ready" once it accepts connections; checking our pid
            // there guards against a stranger answering on our port.
            let ready = pidfile_says_ready(&self.pgdata, self.pid, self.port)
                && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                && (!pg_isready.exists() || self.pg_isready(&pg_isready));
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.quit_and_wait();
                return Err(ClusterError::StartTimeout {
                    secs: START_TIMEOUT.as_secs(),
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path(), log_offset),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pg_isready(&self, program: &Path) -> bool {
        Command::new(program)
            .args(["-q", "-h", "127.0.0.1", "-t", "2", "-d", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.superuser)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "stopping PostgreSQL on drop");
        }
    }
}

/// One start of the postmaster.
struct Launch<'a> {
    bin_dir: &'a Path,
    root: &'a Path,
    pgdata: &'a Path,
    socket_dir: Option<&'a Path>,
    port: u16,
    settings: &'a [(String, String)],
    run_as: Option<&'a Account>,
}

impl Launch<'_> {
    /// Spawns the postmaster from a dedicated keeper thread and returns its
    /// pid, the thread, the exit slot, and where this run's log output starts.
    ///
    /// Linux sends the parent-death signal when the *thread* that forked the
    /// child exits, not the process; the keeper therefore lives exactly as
    /// long as the postmaster: it spawns it, then blocks until it exits.
    fn spawn(&self) -> Result<(u32, JoinHandle<()>, Arc<Shared>, u64), ClusterError> {
        let log_path = self.root.join(LOG_FILE);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .ctx(|| format!("opening {}", log_path.display()))?;
        let log_offset = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        writeln!(
            log,
            "--- lading-pgcluster: starting postgres on 127.0.0.1:{} (owner pid {}, unix time {now})",
            self.port,
            std::process::id()
        )
        .ctx(|| format!("writing {}", log_path.display()))?;
        let stderr = log
            .try_clone()
            .ctx(|| "duplicating the log handle".into())?;

        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(self.pgdata)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-k")
            .arg(self.socket_dir.map_or(Path::new(""), |d| d))
            .arg("-c")
            .arg("unix_socket_permissions=0700");
        for (name, value) in self.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.current_dir(self.root)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Own process group: a terminal's Ctrl-C reaches us, and we decide
            // how the server stops.
            .process_group(0);
        prepare_child_env(&mut cmd, self.run_as);
        cmd.env(OWNER_ENV, std::process::id().to_string());
        sys::configure_child(&mut cmd, self.run_as.map(|a| (a.uid, a.gid)), libc::SIGQUIT);

        let shared = Arc::new(Shared::default());
        let keeper_shared = Arc::clone(&shared);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let program = self.bin_dir.join("postgres");
        let keeper = std::thread::Builder::new()
            .name("postmaster-keeper".into())
            .spawn(move || {
                let spawned = cmd.spawn();
                // Close our copies of the log handles now, not at thread end.
                drop(cmd);
                let mut child = match spawned {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let pid = child.id();
                let _ = tx.send(Ok(pid));
                if let Err(e) = sys::wait_exit_without_reaping(pid) {
                    // E.g. SIGCHLD set to SIG_IGN makes children unwaitable;
                    // fall back to watching the pid.
                    tracing::warn!(pid, error = %e, "cannot wait for PostgreSQL; polling");
                    while sys::process_alive(pid) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                let mut exit = keeper_shared.lock();
                *exit = Some(match child.wait() {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("unknown exit ({e})"),
                });
                keeper_shared.exited.notify_all();
            })
            .ctx(|| "starting the postmaster-keeper thread".into())?;
        let pid = match rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = keeper.join();
                return Err(ClusterError::io(
                    format!("starting {}", program.display()),
                    e,
                ));
            }
            Err(_) => {
                let _ = keeper.join();
                return Err(ClusterError::io(
                    "the postmaster-keeper thread died",
                    std::io::Error::other("keeper thread ended without reporting"),
                ));
            }
        };
        Ok((pid, keeper, shared, log_offset))
    }
}

/// Environment for initdb and postgres: HOME of the account they run as
/// (root's HOME is not readable by `postgres`), and none of the libpq
/// variables that could redirect them.
fn prepare_child_env(cmd: &mut Command, run_as: Option<&Account>) {
    for var in [
        "PGDATA",
        "PGPORT",
        "PGHOST",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    if let Some(acct) = run_as {
        cmd.env("HOME", &acct.home);
    }
}

/// The account to run PostgreSQL as: `postgres` when we are root (PostgreSQL
/// refuses root), none (ourselves) otherwise.
fn service_account() -> Result<Option<Account>, ClusterError> {
    if sys::euid() != 0 {
        return Ok(None);
    }
    match sys::lookup_user(SERVICE_USER) {
        Ok(Some(acct)) if acct.uid != 0 => Ok(Some(acct)),
        Ok(_) => Err(ClusterError::NoServiceUser {
            user: SERVICE_USER.into(),
        }),
        Err(e) => Err(ClusterError::io(
            format!("looking up user {SERVICE_USER}"),
            e,
        )),
    }
}

/// Creates the root if needed (0711 as root so `postgres` can pass through
/// to `pgdata`, 0700 otherwise) and returns it absolute.
fn prepare_root(data_dir: &Path, run_as: Option<&Account>) -> Result<PathBuf, ClusterError> {
    if data_dir.as_os_str().is_empty() {
        return Err(ClusterError::InvalidOption("data_dir is empty".into()));
    }
    if !data_dir.exists() {
        fs::create_dir_all(data_dir).ctx(|| format!("creating {}", data_dir.display()))?;
        let mode = if run_as.is_some() { 0o711 } else { 0o700 };
        fs::set_permissions(data_dir, fs::Permissions::from_mode(mode))
            .ctx(|| format!("setting permissions of {}", data_dir.display()))?;
    }
    let root = data_dir
        .canonicalize()
        .ctx(|| format!("resolving {}", data_dir.display()))?;
    if !root.is_dir() {
        return Err(ClusterError::InvalidOption(format!(
            "data_dir {} is not a directory",
            root.display()
        )));
    }
    Ok(root)
}

/// Locks `<root>/lock` so that only one `Cluster` at a time, in any process,
/// runs this directory. The lock dies with its holder, so a crash never
/// leaves it behind.
fn acquire_lock(root: &Path) -> Result<File, ClusterError> {
    let path = root.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    if !sys::try_lock_exclusive(&file).ctx(|| format!("locking {}", path.display()))? {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(ClusterError::AlreadyRunning {
            root: root.to_path_buf(),
            lock: path,
            holder: if holder.is_empty() {
                String::new()
            } else {
                format!(" by process {holder}")
            },
        });
    }
    file.set_len(0)
        .ctx(|| format!("writing {}", path.display()))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .ctx(|| format!("writing {}", path.display()))?;
    Ok(file)
}

/// Every directory from `/` down to `dir` must let `acct` search it, or
/// postgres fails with a confusing "permission denied" later. Judged from
/// mode bits with the account's primary group only, as the server runs
/// without supplementary groups.
fn check_traversable(dir: &Path, acct: &Account) -> Result<(), ClusterError> {
    for d in dir.ancestors() {
        let md = fs::metadata(d).ctx(|| format!("inspecting {}", d.display()))?;
        let mode = md.mode();
        let bit = if md.uid() == acct.uid {
            0o100
        } else if md.gid() == acct.gid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(ClusterError::NotTraversable {
                dir: d.to_path_buf(),
                user: SERVICE_USER.into(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// Runs initdb into a scratch directory and renames it to `pgdata` once
/// complete; returns the new superuser password, which is stored first.
fn init_cluster(
    root: &Path,
    bin_dir: &Path,
    superuser: &str,
    run_as: Option<&Account>,
    no_sync: bool,
) -> Result<String, ClusterError> {
    let scratch = root.join(PGDATA_INIT_DIR);
    let password = hex::encode(rand::random::<[u8; 16]>());
    let pwfile = root.join(INITDB_PWFILE);
    let _ = fs::remove_file(&pwfile);
    write_private(&pwfile, &format!("{password}\n"), run_as)?;
    let result = (|| {
        let mut outcome = run_initdb(&scratch, bin_dir, &pwfile, superuser, run_as, true, no_sync)?;
        if let Err(ClusterError::InitdbFailed { output, .. }) = &outcome {
            if output.contains("locale") {
                tracing::info!("locale C.UTF-8 unavailable; initialising with --no-locale");
                outcome = run_initdb(
                    &scratch, bin_dir, &pwfile, superuser, run_as, false, no_sync,
                )?;
            }
        }
        outcome
    })();
    let _ = fs::remove_file(&pwfile);
    result?;

    let pw_path = root.join(PASSWORD_FILE);
    let pw_tmp = root.join(format!("{PASSWORD_FILE}.tmp"));
    let _ = fs::remove_file(&pw_tmp);
    write_private(&pw_tmp, &format!("{password}\n"), None)?;
    fs::rename(&pw_tmp, &pw_path).ctx(|| format!("writing {}", pw_path.display()))?;
    let pgdata = root.join(PGDATA_DIR);
    fs::rename(&scratch, &pgdata)
        .ctx(|| format!("renaming {} to {}", scratch.display(), pgdata.display()))?;
    File::open(root)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing {}", root.display()))?;
    tracing::info!(pgdata = %pgdata.display(), "initialised a new PostgreSQL cluster");
    Ok(password)
}

/// One initdb attempt into a fresh `scratch`. The outer error is for
/// failures to run it at all; the inner one for initdb's own failure.
fn run_initdb(
    scratch: &Path,
    bin_dir: &Path,
    pwfile: &Path,
    superuser: &str,
    run_as: Option<&Account>,
    with_locale: bool,
    no_sync: bool,
) -> Result<Result<(), ClusterError>, ClusterError> {
    if scratch.exists() {
        // Left by an interrupted initdb; never a complete cluster.
        fs::remove_dir_all(scratch).ctx(|| format!("removing {}", scratch.display()))?;
    }
    fs::create_dir(scratch).ctx(|| format!("creating {}", scratch.display()))?;
    fs::set_permissions(scratch, fs::Permissions::from_mode(0o700))
        .ctx(|| format!("setting permissions of {}", scratch.display()))?;
    if let Some(acct) = run_as {
        std::os::unix::fs::chown(scratch, Some(acct.uid), Some(acct.gid))
            .ctx(|| format!("giving {} to {SERVICE_USER}", scratch.display()))?;
    }
    let program = bin_dir.join("initdb");
    let mut cmd = Command::new(&program);
    cmd.arg("-D")
        .arg(scratch)
        .arg("-U")
        .arg(superuser)
        .arg("--auth=scram-sha-256")
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8"])
        .arg(if with_locale {
            "--locale=C.UTF-8"
        } else {
            "--no-locale"
        })
        .args(no_sync.then_some("--no-sync"))
        .current_dir(scratch.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null());
    prepare_child_env(&mut cmd, run_as);
    // If we die mid-initdb, it stops too; the scratch dir is redone next time.
    sys::configure_child(&mut cmd, run_as.map(|a| (a.uid, a.gid)), libc::SIGKILL);
    let out = cmd
        .output()
        .ctx(|| format!("running {}", program.display()))?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    Ok(Err(ClusterError::InitdbFailed {
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }))
}

/// Writes a 0600 file, owned by `owner` if given.
fn write_private(path: &Path, content: &str, owner: Option<&Account>) -> Result<(), ClusterError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .ctx(|| format!("writing {}", path.display()))?;
    if let Some(acct) = owner {
        std::os::unix::fs::chown(path, Some(acct.uid), Some(acct.gid))
            .ctx(|| format!("giving {} to {SERVICE_USER}", path.display()))?;
    }
    Ok(())
}

/// A password file's content; `None` when there is no file. One that is empty or not
/// alphanumeric is refused, not replaced: it was not written by us.
fn read_secret(path: &Path) -> Result<Option<String>, ClusterError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let pw = text.trim();
            if pw.is_empty() || !pw.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ClusterError::PasswordMissing {
                    path: path.to_path_buf(),
                });
            }
            Ok(Some(pw.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
    }
}

fn read_password(root: &Path) -> Result<String, ClusterError> {
    let path = root.join(PASSWORD_FILE);
    let text = fs::read_to_string(&path)
        .map_err(|_| ClusterError::PasswordMissing { path: path.clone() })?;
    let pw = text.trim();
    if pw.is_empty() || !pw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClusterError::PasswordMissing { path });
    }
    Ok(pw.to_owned())
}

/// Deals with a `postmaster.pid` left in `pgdata` (we hold the lock, so no
/// live `Cluster` runs it):
/// - its process is a postgres we started (it carries our owner marker in
///   its environment) whose owner died: it is in its immediate shutdown,
///   and gets a grace period to finish;
/// - its process is any other live postgres: somebody else's server, refused;
/// - its process is alive but not postgres (pid reused after a crash):
///   postgres would refuse to start, so the file is removed;
/// - its process is gone: postgres itself takes over the stale file.
fn check_pidfile(pgdata: &Path) -> Result<(), ClusterError> {
    let path = pgdata.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    if !sys::process_alive(pid) {
        return Ok(());
    }
    if !is_postgres_process(pid) {
        tracing::info!(
            pid,
            "removing a stale postmaster.pid whose pid now belongs to another program"
        );
        return fs::remove_file(&path).ctx(|| format!("removing {}", path.display()));
    }
    if has_owner_marker(pid) {
        let deadline = Instant::now() + ORPHAN_GRACE;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if !sys::process_alive(pid) {
                return Ok(());
            }
        }
    }
    Err(ClusterError::DataDirInUse {
        pgdata: pgdata.to_path_buf(),
        pid,
    })
}

/// Whether `pid` was started by this crate (see [`OWNER_ENV`]).
fn has_owner_marker(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|b| *b == 0).any(|var| {
            var.starts_with(OWNER_ENV.as_bytes()) && var.get(OWNER_ENV.len()) == Some(&b'=')
        })
    })
}

fn is_postgres_process(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim_end().starts_with("postgres") || comm.trim_end() == "postmaster",
        // Cannot tell: assume the worst and keep the file.
        Err(_) => true,
    }
}

/// True once `postmaster.pid` names our process and port and says "ready".
fn pidfile_says_ready(pgdata: &Path, pid: u32, port: u16) -> bool {
    let Ok(text) = fs::read_to_string(pgdata.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.first() == Some(&pid.to_string().as_str())
        && lines.get(3) == Some(&port.to_string().as_str())
        && lines.get(7) == Some(&"ready")
}

/// `<root>/socket`, owned by the server's account; `None` (no Unix socket,
/// TCP only) when the path would exceed the kernel's 107-byte limit.
fn prepare_socket_dir(
    root: &Path,
    run_as: Option<&Account>,
) -> Result<Option<PathBuf>, ClusterError> {
    let dir = root.join(SOCKET_DIR);
    // ".s.PGSQL.65535.lock" is the longest name postgres puts there.
    if dir.as_os_str().len() + "/.s.PGSQL.65535.lock".len() > 107 {
        tracing::warn!(root = %root.display(), "root path too long for a Unix socket; TCP only");
        return Ok(None);
    }
    if !dir.exists() {
        fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .ctx(|| format!("setting permissions of {}", dir.display()))?;
    if let Some(acct) = run_as {
        std::os::unix::fs::chown(&dir, Some(acct.uid), Some(acct.gid))
            .ctx(|| format!("giving {} to {SERVICE_USER}", dir.display()))?;
    }
    Ok(Some(dir))
}

fn choose_port(root: &Path, requested: Option<u16>) -> Result<u16, ClusterError> {
    if let Some(port) = requested {
        if port == 0 {
            return Err(ClusterError::InvalidOption(
                "port 0; use None for any free port".into(),
            ));
        }
        return if port_is_free(port) {
            Ok(port)
        } else {
            Err(ClusterError::PortInUse { port })
        };
    }
    let remembered = fs::read_to_string(root.join(PORT_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .filter(|p| *p != 0);
    if let Some(port) = remembered {
        if port_is_free(port) {
            return Ok(port);
        }
        let new = free_port()?;
        tracing::warn!(
            remembered = port,
            port = new,
            "the cluster's previous port is taken; it gets a new port, so its URL changes"
        );
        return Ok(new);
    }
    free_port()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> Result<u16, ClusterError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ctx(|| "finding a free port on 127.0.0.1".into())
}

fn remember_port(root: &Path, port: u16) {
    let path = root.join(PORT_FILE);
    if let Err(e) = fs::write(&path, format!("{port}\n")) {
        tracing::warn!(path = %path.display(), error = %e, "could not remember the port");
    }
}

/// The last lines of the log written since `offset`.
fn log_tail(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn client_tool(bin_dir: &Path, name: &str) -> PathBuf {
    let beside = bin_dir.join(name);
    if beside.exists() {
        beside
    } else {
        Path::new("/usr/bin").join(name)
    }
}

fn is_plain_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 63
}

fn validate_superuser(name: &str) -> Result<(), ClusterError> {
    if is_plain_identifier(name) {
        Ok(())
    } else {
        Err(ClusterError::InvalidOption(format!(
            "superuser {name:?} must match [a-z_][a-z0-9_]* and be at most 63 bytes"
        )))
    }
}

/// Defaults followed by the caller's settings (postgres lets the last `-c`
/// win), after checking names and refusing the ones we manage.
fn validated_settings(extra: &[(String, String)]) -> Result<Vec<(String, String)>, ClusterError> {
    let mut all: Vec<(String, String)> = DEFAULT_SETTINGS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for (name, value) in extra {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !name_ok {
            return Err(ClusterError::InvalidOption(format!(
                "setting name {name:?}"
            )));
        }
        if RESERVED_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ClusterError::InvalidOption(format!(
                "setting {name} is managed by lading-pgcluster"
            )));
        }
        if value.contains(['\0', '\n', '\r']) {
            return Err(ClusterError::InvalidOption(format!(
                "value of setting {name}"
            )));
        }
        all.push((name.clone(), value.clone()));
    }
    Ok(all)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superuser_names_are_plain_identifiers() {
        assert!(validate_superuser("lading").is_ok());
        assert!(validate_superuser("_x9").is_ok());
        for bad in ["", "Lading", "9x", "a-b", "a b", &"a".repeat(64)] {
            let err = validate_superuser(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_cluster_option", "{bad:?}");
        }
    }

    #[test]
    fn caller_settings_follow_defaults_and_reserved_ones_are_refused() {
        let all = validated_settings(&[("fsync".into(), "off".into())]).unwrap();
        assert_eq!(
            all.first(),
            Some(&("shared_buffers".into(), "256MB".into()))
        );
        assert_eq!(all.last(), Some(&("fsync".into(), "off".into())));
        for bad in [
            "port",
            "Listen_Addresses",
            "unix_socket_directories",
            "a=b",
            "",
        ] {
            assert!(
                validated_settings(&[(bad.into(), "1".into())]).is_err(),
                "{bad}"
            );
        }
        assert!(validated_settings(&[("work_mem".into(), "1\n2".into())]).is_err());
    }

    #[test]
    fn database_names_are_percent_encoded_in_urls() {
        assert_eq!(percent_encode("lading_1"), "lading_1");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn pidfile_readiness_needs_our_pid_port_and_ready() {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("postmaster.pid");
        let body = |pid: &str, port: &str, status: &str| {
            format!("{pid}\n/data\n1700000000\n{port}\n/sock\n127.0.0.1\n  1234  5678\n{status}\n")
        };
        assert!(!pidfile_says_ready(dir.path(), 42, 5432));
        fs::write(&pf, body("42", "5432", "starting")).unwrap();
        assert!(!pidfile_says_ready(dir.path(), 42, 5432));
        fs::write(&pf, body("43", "5432", "ready   ")).unwrap();
        assert!(!pidfile_says_ready(dir.path(), 42, 5432));
        fs::write(&pf, body("42", "5433", "ready   ")).unwrap();
        assert!(!pidfile_says_ready(dir.path(), 42, 5432));
        fs::write(&pf, body("42", "5432", "ready   ")).unwrap();
        assert!(pidfile_says_ready(dir.path(), 42, 5432));
    }

    #[test]
    fn log_tail_covers_only_this_run_and_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("postgres.log");
        fs::write(&log, "old run\n").unwrap();
        let offset = fs::metadata(&log).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..100 {
            writeln!(f, "line {i}").unwrap();
        }
        let tail = log_tail(&log, offset);
        assert!(!tail.contains("old run"));
        assert!(tail.ends_with("line 99"));
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
    }

    #[test]
    fn a_taken_fixed_port_is_refused_and_a_remembered_one_reused_when_free() {
        let root = tempfile::tempdir().unwrap();
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let err = choose_port(root.path(), Some(busy_port)).unwrap_err();
        assert_eq!(err.code(), "port_in_use");

        let free = free_port().unwrap();
        remember_port(root.path(), free);
        assert_eq!(choose_port(root.path(), None).unwrap(), free);
        remember_port(root.path(), busy_port);
        assert_ne!(choose_port(root.path(), None).unwrap(), busy_port);
    }

    #[test]
    fn traversal_check_names_the_blocking_directory() {
        let acct = Account {
            uid: 65_000,
            gid: 65_000,
            home: PathBuf::from("/"),
        };
        let base = tempfile::tempdir().unwrap();
        let closed = base.path().join("closed");
        let inner = closed.join("root");
        fs::create_dir_all(&inner).unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o750)).unwrap();
        match check_traversable(&inner, &acct) {
            Err(ClusterError::NotTraversable { dir, .. }) => assert_eq!(dir, closed),
            other => panic!("expected NotTraversable, got {other:?}"),
        }
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o751)).unwrap();
        // /tmp-like ancestors are world-searchable on this machine.
        check_traversable(&inner, &acct).unwrap();
    }
}
