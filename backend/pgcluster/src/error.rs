//! Errors of this crate, each with a stable machine code.

use std::io;
use std::path::PathBuf;

/// Why a cluster could not be found, started, or stopped.
///
/// Messages name the file or directory involved and, for start-up failures,
/// carry the tail of `postgres.log`, because that is where the real reason is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No directory with `initdb` and `postgres` was found.
    #[error(
        "no PostgreSQL server binaries (initdb, postgres) found ({searched}); \
         install them with deploy/ensure-deps.sh or point LADING_PG_BIN at their directory"
    )]
    BinariesNotFound { searched: String },

    /// A field of `ClusterOptions` is unusable.
    #[error("invalid cluster option: {0}")]
    InvalidOption(String),

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// We are root, PostgreSQL refuses to run as root, and there is no
    /// `postgres` account to run it as.
    #[error(
        "running as root, but there is no '{user}' user to run PostgreSQL as \
         (PostgreSQL refuses to run as root); run deploy/ensure-deps.sh or run as a normal user"
    )]
    NoServiceUser { user: String },

    /// A directory on the way to the data directory cannot be entered by the
    /// account PostgreSQL runs as.
    #[error(
        "PostgreSQL runs as '{user}' but cannot enter {dir} (mode {mode:o}); \
         make it traversable (e.g. chmod o+x) or choose a data directory elsewhere"
    )]
    NotTraversable {
        dir: PathBuf,
        user: String,
        mode: u32,
    },

    /// Another `Cluster` (in this or another process) holds the lock file.
    #[error("the cluster in {root} is already running (lock {lock} is held{holder})")]
    AlreadyRunning {
        root: PathBuf,
        lock: PathBuf,
        holder: String,
    },

    /// A postmaster we do not own is running on the data directory.
    #[error(
        "a PostgreSQL server (pid {pid}) not started by this process is already running on {pgdata}; \
         stop it first"
    )]
    DataDirInUse { pgdata: PathBuf, pid: u32 },

    /// The cluster exists but its password file is gone, so we cannot log in.
    #[error("the cluster exists but its superuser password file {path} is missing or unreadable")]
    PasswordMissing { path: PathBuf },

    /// `initdb` failed.
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed { status: String, output: String },

    /// The requested fixed port is taken.
    #[error("port 127.0.0.1:{port} is already in use")]
    PortInUse { port: u16 },

    /// The postmaster exited before accepting connections.
    #[error("PostgreSQL exited during start-up ({status}); end of {log}:\n{log_tail}")]
    StartFailed {
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    /// The postmaster did not accept connections in time.
    #[error("PostgreSQL did not accept connections within {secs} s; end of {log}:\n{log_tail}")]
    StartTimeout {
        secs: u64,
        log: PathBuf,
        log_tail: String,
    },

    /// The postmaster ignored a fast shutdown and had to be killed.
    #[error("PostgreSQL did not shut down within {secs} s and was killed")]
    StopTimeout { secs: u64 },

    /// A helper program (createdb, psql, ...) failed.
    #[error("{program} failed ({status}):\n{output}")]
    CommandFailed {
        program: String,
        status: String,
        output: String,
    },
}

impl ClusterError {
    /// Stable snake_case code for machines (logs, API error bodies, tests).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BinariesNotFound { .. } => "pg_binaries_not_found",
            Self::InvalidOption(_) => "invalid_cluster_option",
            Self::Io { .. } => "cluster_io",
            Self::NoServiceUser { .. } => "pg_service_user_missing",
            Self::NotTraversable { .. } => "data_dir_not_traversable",
            Self::AlreadyRunning { .. } => "cluster_already_running",
            Self::DataDirInUse { .. } => "data_dir_in_use",
            Self::PasswordMissing { .. } => "superuser_password_missing",
            Self::InitdbFailed { .. } => "initdb_failed",
            Self::PortInUse { .. } => "port_in_use",
            Self::StartFailed { .. } => "postgres_start_failed",
            Self::StartTimeout { .. } => "postgres_start_timeout",
            Self::StopTimeout { .. } => "postgres_stop_timeout",
            Self::CommandFailed { .. } => "pg_command_failed",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches a context string to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ClusterError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ClusterError> {
        self.map_err(|e| ClusterError::io(context(), e))
    }
}
