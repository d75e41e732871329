//! A private PostgreSQL cluster, run from the machine's server binaries.
//!
//! This is Lading's embedded default (no database configured: the binary
//! runs its own cluster in a folder of its own) and the database of every
//! test. It is real PostgreSQL, started as a child of our process.
//!
//! # Layout
//!
//! [`ClusterOptions::data_dir`] is the cluster's *root*:
//!
//! | path | what | mode |
//! |---|---|---|
//! | `pgdata/` | the PostgreSQL data directory | 0700, owned by the server's account |
//! | `superuser.password` | 32 hex chars, the superuser's password | 0600 |
//! | `role-<name>.password` | a login role's password ([`Cluster::ensure_login_role`]) | 0600 |
//! | `port` | last port used | |
//! | `postgres.log` | server stdout/stderr, appended | 0600 |
//! | `lock` | `flock`ed by the owning process; holds its pid | 0600 |
//! | `socket/` | Unix socket directory | 0700, server's account |
//!
//! The password lives beside `pgdata`, not in it: a copy or backup of
//! `pgdata` does not carry it, and when we run as root the server's own
//! account cannot read it (so not even `pg_read_file` can serve it).
//! `pgdata` is created by `initdb` in `pgdata.initdb` and renamed only when
//! complete: a `pgdata` directory is always a whole cluster, and an
//! interrupted initdb is simply redone.
//!
//! # Rules
//!
//! - The server listens on 127.0.0.1 only, with `scram-sha-256` password
//!   authentication for every connection; its Unix socket is reachable only
//!   by its own account.
//! - One owner at a time: the owning process holds an exclusive `flock` on
//!   `lock` for the cluster's life. A second start (same or other process)
//!   fails with `cluster_already_running`. The lock dies with the process,
//!   so a crash never leaves it stuck. A live postmaster in `pgdata` that we
//!   do not own is reported as `data_dir_in_use`.
//! - The port is remembered in `port`: a restarted cluster keeps its URL
//!   while the port is free; otherwise it gets another port (logged).
//! - Durable defaults: `shared_buffers=128MB`, `fsync=on`,
//!   `synchronous_commit=on`, `max_connections=200`; caller settings come
//!   after them and win. Settings that decide where the server listens are
//!   refused.
//!
//! # Why the postmaster is our child, with a parent-death signal
//!
//! We start `postgres` directly (not `pg_ctl`, which detaches it) so that its
//! life is bound to ours. Before exec the child asks the kernel for
//! `PR_SET_PDEATHSIG = SIGQUIT`: if our process dies in any way, `kill -9`
//! included, the postmaster receives SIGQUIT and does an immediate shutdown
//! (no checkpoint; crash recovery replays the WAL at the next start, which
//! with `fsync=on` loses nothing committed). No orphan server keeps the data
//! directory or the port.
//!
//! Linux delivers that signal when the *thread* that forked the child ends,
//! not the process. So the postmaster is spawned by a dedicated
//! `postmaster-keeper` thread that then blocks until the postmaster exits;
//! it records the exit under a lock before the pid is reaped, so no signal is
//! ever sent to a reused pid. The postmaster gets its own process group, so a
//! terminal's Ctrl-C reaches only us and we choose how it stops:
//! [`Cluster::stop`] and `Drop` do a fast shutdown (SIGINT) and escalate to
//! SIGQUIT after 30 s.
//!
//! # Why `postgres` when we are root
//!
//! PostgreSQL refuses to run as root. When our effective uid is 0, `initdb`
//! and `postgres` run as the `postgres` account (its uid and gid, no
//! supplementary groups, its HOME), `pgdata` and `socket/` are given to it,
//! and every directory from `/` down to the root must be searchable by it,
//! which is checked up front (`data_dir_not_traversable`) rather than left to
//! a "permission denied" in the log. The parent-death signal is set after
//! the uid switch, because Linux clears it when credentials change. As a
//! normal user, everything runs as that user.
//!
//! # Backups
//!
//! [`ClusterOptions::archive_wal_to`] archives every WAL segment into a folder,
//! [`Cluster::base_backup`] makes a verified `pg_basebackup` copy, and
//! [`Cluster::restore`] replays a base backup and the archive into a fresh root, up to
//! the archive's end or a [`RecoveryTarget`] (see the `backup` module of `cluster`).
//!
//! # Binaries
//!
//! [`find_bin_dir`]: `$LADING_PG_BIN`, else `pg_config --bindir` if it has
//! the server binaries, else the highest `/usr/lib/postgresql/*/bin`.
//! `deploy/ensure-deps.sh` installs them.

mod bin_dir;
mod cluster;
mod error;
mod sys;
mod test_cluster;

pub use bin_dir::{find_bin_dir, PG_BIN_ENV};
pub use cluster::{
    failover_url, BaseBackup, Cluster, ClusterOptions, LoginRole, RecoveryTarget, LOCK_FILE,
    LOG_FILE, PASSWORD_FILE, PGDATA_DIR, PORT_FILE, ROLE_PASSWORD_PREFIX, SOCKET_DIR,
};
pub use error::ClusterError;
pub use test_cluster::{shared_test_cluster, TEST_ROOT_PREFIX};
