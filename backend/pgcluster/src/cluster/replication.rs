//! Streaming replication between clusters of this crate, with PostgreSQL's own machinery:
//! a standby made by `pg_basebackup` from a running primary (its WAL streamed through a
//! replication slot, so the primary keeps what the standby has not received), a rule on the
//! primary that a commit waits for a standby (`synchronous_standby_names`), and promotion.
//!
//! The standby's root has the layout of any cluster's (see the crate docs). Its superuser and
//! password are the primary's: `pgdata` is a copy, roles included.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    acquire_lock, check_traversable, client_tool, is_plain_identifier, percent_encode,
    prepare_child_env, prepare_root, service_account, write_private, Cluster, ClusterOptions,
    LoginRole, PASSWORD_FILE, PGDATA_DIR,
};
use crate::error::{ClusterError, IoContext};
use crate::sys;

/// `pg_basebackup` writes here; renamed to `pgdata` only once complete.
const BASEBACKUP_DIR: &str = "pgdata.basebackup";

/// A URL that reaches whichever of `hosts` is the primary now, for a client that must follow a
/// failover: libpq tries the hosts in order and keeps the first that takes writes
/// (`target_session_attrs=read-write`). As `role`, or the superuser with `None`.
pub fn failover_url(hosts: &[&Cluster], role: Option<&LoginRole>, database: &str) -> String {
    let (user, password) = match (role, hosts.first()) {
        (Some(role), _) => (role.name.as_str(), role.password.as_str()),
        (None, Some(first)) => (first.superuser.as_str(), first.password.as_str()),
        (None, None) => ("", ""),
    };
    let hosts = hosts
        .iter()
        .map(|c| format!("127.0.0.1:{}", c.port))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "postgres://{user}:{password}@{hosts}/{}?target_session_attrs=read-write",
        percent_encode(database)
    )
}

impl Cluster {
    /// Starts a streaming hot standby of this running cluster in `opts.data_dir`, making it
    /// first when the folder holds none: `pg_basebackup` with `-R` (the standby's
    /// `primary_conninfo` and `standby.signal`), `-X stream` and a replication slot named
    /// `slot` (made anew). A standby made before is started as it is and catches up.
    pub fn start_standby(&self, opts: ClusterOptions, slot: &str) -> Result<Cluster, ClusterError> {
        if !is_plain_identifier(slot) {
            return Err(ClusterError::InvalidOption(format!(
                "slot name {slot:?} must match [a-z_][a-z0-9_]* and be at most 63 bytes"
            )));
        }
        let run_as = service_account()?;
        let root = prepare_root(&opts.data_dir, run_as.as_ref())?;
        if !root.join(PGDATA_DIR).join("PG_VERSION").is_file() {
            // Held while the copy is made; Cluster::start takes it again.
            let _lock = acquire_lock(&root)?;
            if let Some(acct) = &run_as {
                check_traversable(&root, acct)?;
            }
            self.copy_for_standby(&root, run_as.as_ref(), slot)?;
        }
        Cluster::start(opts)
    }

    fn copy_for_standby(
        &self,
        root: &std::path::Path,
        run_as: Option<&sys::Account>,
        slot: &str,
    ) -> Result<(), ClusterError> {
        let scratch = root.join(BASEBACKUP_DIR);
        if scratch.exists() {
            fs::remove_dir_all(&scratch).ctx(|| format!("removing {}", scratch.display()))?;
        }
        fs::create_dir(&scratch).ctx(|| format!("creating {}", scratch.display()))?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))
            .ctx(|| format!("setting permissions of {}", scratch.display()))?;
        if let Some(acct) = run_as {
            std::os::unix::fs::chown(&scratch, Some(acct.uid), Some(acct.gid))
                .ctx(|| format!("giving {} to the server's account", scratch.display()))?;
        }
        // A slot left by an earlier standby of this name would refuse -C.
        self.psql(
            "postgres",
            &format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = '{slot}'"
            ),
        )?;
        let program = client_tool(&self.bin_dir, "pg_basebackup");
        let mut cmd = Command::new(&program);
        cmd.arg("-D")
            .arg(&scratch)
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.superuser)
            .args(["-X", "stream", "-R", "-C", "-S", slot, "--checkpoint=fast"])
            .current_dir(root)
            .stdin(Stdio::null());
        prepare_child_env(&mut cmd, run_as);
        // After prepare_child_env, which clears libpq's variables.
        cmd.env("PGPASSWORD", &self.password);
        sys::configure_child(&mut cmd, run_as.map(|a| (a.uid, a.gid)), libc::SIGKILL);
        let out = cmd
            .output()
            .ctx(|| format!("running {}", program.display()))?;
        if !out.status.success() {
            return Err(ClusterError::CommandFailed {
                program: program.display().to_string(),
                status: out.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let pw_path = root.join(PASSWORD_FILE);
        let _ = fs::remove_file(&pw_path);
        write_private(&pw_path, &format!("{}\n", self.password), None)?;
        let pgdata = root.join(PGDATA_DIR);
        fs::rename(&scratch, &pgdata)
            .ctx(|| format!("renaming {} to {}", scratch.display(), pgdata.display()))?;
        tracing::info!(pgdata = %pgdata.display(), slot, "made a standby with pg_basebackup");
        Ok(())
    }

    /// From now on a commit on this primary returns only once a standby has flushed it to its
    /// disk (`synchronous_standby_names = '*'`; with `synchronous_commit = on`, the
    /// registry's, that is `remote_flush`). Written with `ALTER SYSTEM`, so it holds across
    /// restarts, and it is not in a standby made before it (a promoted standby does not wait
    /// for a standby it does not have).
    pub fn require_synchronous_standby(&self) -> Result<(), ClusterError> {
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        )?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(())
    }

    /// Waits until a standby streams from this primary as its synchronous standby.
    pub fn wait_for_synchronous_standby(&self, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            let sync = self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication \
                 WHERE state = 'streaming' AND sync_state = 'sync'",
            )?;
            if sync.trim() != "0" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::InvalidOption(format!(
                    "no synchronous standby streams after {} s",
                    within.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether this cluster is a standby (in recovery).
    pub fn is_standby(&self) -> Result<bool, ClusterError> {
        Ok(self.psql("postgres", "SELECT pg_is_in_recovery()")?.trim() == "t")
    }

    /// Promotes this standby to a primary and waits (up to a minute) until it takes writes.
    pub fn promote(&self) -> Result<(), ClusterError> {
        let promoted = self.psql("postgres", "SELECT pg_promote(true, 60)")?;
        if promoted.trim() != "t" {
            return Err(ClusterError::InvalidOption(
                "pg_promote did not finish within 60 s".into(),
            ));
        }
        Ok(())
    }

    /// SIGKILL to the postmaster alone, as a crash of the database server does: its backends
    /// see it gone and end their sessions; nothing is flushed or checkpointed.
    pub fn kill_postmaster(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(super::KILL_TIMEOUT);
        self.reap();
    }
}
