//! Backups with PostgreSQL's own machinery: continuous archiving of the WAL
//! ([`ClusterOptions::archive_wal_to`]), base backups made with `pg_basebackup` and checked
//! with `pg_verifybackup` ([`Cluster::base_backup`]), and point-in-time recovery of a base
//! backup plus the archive into a fresh root ([`Cluster::restore`]).
//!
//! # A backup's layout
//!
//! | path | what |
//! |---|---|
//! | `pgdata/` | `pg_basebackup`'s plain-format copy (with its `backup_label`, `backup_manifest` and the WAL from its start to its end, `-X stream`), owned by the server's account |
//! | `superuser.password` | the superuser's password (0600): a restored cluster has the same roles |
//! | `role-<name>.password` | the login roles' passwords ([`Cluster::ensure_login_role`]) |
//!
//! A backup is made in `<dir>.partial` and renamed to `<dir>` only once `pg_verifybackup`
//! passed: a directory of that name is always a whole, verified backup. It holds the role
//! passwords and every row: keep it as private as the database.
//!
//! # Restoring
//!
//! The copy of `pgdata` starts with `recovery.signal` and a `restore_command` that copies
//! segments back from the archive; PostgreSQL replays the WAL from the backup's start, first
//! its own copy and then every archived segment, up to the end of the archive or a
//! [`RecoveryTarget`], and then promotes itself (a new timeline). Without an archive, the
//! restore stops at the end of the backup itself.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    acquire_lock, check_traversable, client_tool, log_tail, prepare_child_env, prepare_root,
    service_account, write_private, Cluster, ClusterOptions, PASSWORD_FILE, PGDATA_DIR,
    ROLE_PASSWORD_PREFIX, SERVICE_USER,
};
use crate::error::{ClusterError, IoContext};
use crate::sys::{self, Account};

/// A restore copies the backup's `pgdata` here; renamed to `pgdata` only once complete.
const RESTORE_DIR: &str = "pgdata.restore";
/// Appended to the restored `postgresql.auto.conf`; taken out again once recovery ended.
const RECOVERY_SETTINGS: &[&str] = &[
    "restore_command",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target",
    "recovery_target_action",
];
/// How long a restore may replay the WAL before it is given up.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// A base backup made by [`Cluster::base_backup`], as its `backup_label` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    /// The backup's folder (`pgdata/` and the password files).
    pub dir: PathBuf,
    /// Where replay starts (`START WAL LOCATION`), e.g. `0/2000028`.
    pub start_lsn: String,
    /// The first WAL segment a restore needs: archived segments before it are not needed by
    /// this backup (`pg_archivecleanup <archive> <segment>` once no older backup is kept).
    pub start_wal_file: String,
    /// When the backup started (`START TIME`), e.g. `2025-01-31 12:00:00 UTC`.
    pub start_time: String,
}

/// Where a restore stops replaying (PostgreSQL's `recovery_target_*`). It is inclusive: the
/// transaction that commits at the target time or LSN is restored. The target must lie after
/// the end of the base backup, and the archive must reach it, or the restore fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// A timestamp with its time zone, e.g. `2025-01-31 12:00:00.123+00`.
    Time(String),
    /// A WAL location, e.g. `0/3000060` (`pg_current_wal_lsn()`).
    Lsn(String),
    /// The end of the base backup: the earliest consistent state, no archived WAL replayed.
    Immediate,
}

impl ClusterOptions {
    /// Archives every completed WAL segment into `dir` (created if absent, given to the
    /// server's account, 0700): `archive_mode = on`, `wal_level = replica` and an
    /// `archive_command` that copies the segment to `<name>.tmp`, flushes it to disk, renames
    /// it to `<name>` and flushes the directory, so a segment in the archive under its own
    /// name is always whole and on disk. A segment already archived is never overwritten:
    /// the command succeeds when the archived copy is identical (a retry after a crash between
    /// the copy and PostgreSQL's bookkeeping) and fails — PostgreSQL keeps the segment and
    /// retries — when it differs (two clusters sharing one archive, a mistake).
    pub fn archive_wal_to(self, dir: impl AsRef<Path>) -> Result<Self, ClusterError> {
        let run_as = service_account()?;
        let dir = prepare_private_dir(dir.as_ref(), run_as.as_ref())?;
        let quoted = shell_quote(&dir)?;
        let command = format!(
            "if test -f {quoted}/%f; then cmp -s %p {quoted}/%f; \
             else cp %p {quoted}/%f.tmp && sync {quoted}/%f.tmp \
             && mv {quoted}/%f.tmp {quoted}/%f && sync {quoted}; fi"
        );
        Ok(self
            .setting("wal_level", "replica")
            .setting("archive_mode", "on")
            .setting("archive_command", command))
    }
}

impl Cluster {
    /// A base backup of this running cluster into `dir`, which must not exist (its parent
    /// must): `pg_basebackup` in plain format with the WAL the copy needs (`-X stream`, so the
    /// backup restores by itself, to the moment it ended) and a fast checkpoint, checked with
    /// `pg_verifybackup` against its manifest, plus the role passwords. See the module docs
    /// for the layout.
    pub fn base_backup(&self, dir: impl AsRef<Path>) -> Result<BaseBackup, ClusterError> {
        let dir = dir.as_ref();
        let run_as = service_account()?;
        let name = dir.file_name().ok_or_else(|| {
            ClusterError::InvalidOption(format!("backup folder {} has no name", dir.display()))
        })?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent = parent
            .canonicalize()
            .ctx(|| format!("resolving {}", parent.display()))?;
        let dir = parent.join(name);
        if dir.exists() {
            return Err(ClusterError::InvalidOption(format!(
                "backup folder {} exists; a backup goes into a new folder",
                dir.display()
            )));
        }
        let mut partial_name = name.to_os_string();
        partial_name.push(".partial");
        let scratch = parent.join(partial_name);
        if scratch.exists() {
            // Left by an interrupted backup; never a whole one.
            fs::remove_dir_all(&scratch).ctx(|| format!("removing {}", scratch.display()))?;
        }
        fs::create_dir(&scratch).ctx(|| format!("creating {}", scratch.display()))?;
        let mode = if run_as.is_some() { 0o711 } else { 0o700 };
        fs::set_permissions(&scratch, fs::Permissions::from_mode(mode))
            .ctx(|| format!("setting permissions of {}", scratch.display()))?;
        if let Some(acct) = &run_as {
            check_traversable(&scratch, acct)?;
        }
        let pgdata = scratch.join(PGDATA_DIR);
        fs::create_dir(&pgdata).ctx(|| format!("creating {}", pgdata.display()))?;
        fs::set_permissions(&pgdata, fs::Permissions::from_mode(0o700))
            .ctx(|| format!("setting permissions of {}", pgdata.display()))?;
        if let Some(acct) = &run_as {
            chown(&pgdata, acct)?;
        }

        let mut basebackup = self.client_command("pg_basebackup", run_as.as_ref());
        basebackup
            .arg("-D")
            .arg(&pgdata)
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.superuser)
            .args(["-F", "plain", "-X", "stream", "--checkpoint=fast"])
            .args(["--label", "lading-pgcluster base backup"])
            .current_dir(&scratch);
        run(basebackup, &client_tool(&self.bin_dir, "pg_basebackup"))?;
        let mut verify = self.client_command("pg_verifybackup", run_as.as_ref());
        verify.arg(&pgdata).current_dir(&scratch);
        run(verify, &client_tool(&self.bin_dir, "pg_verifybackup"))?;

        for (file, secret) in self.password_files()? {
            write_private(&scratch.join(file), &secret, None)?;
        }
        let label = fs::read_to_string(pgdata.join("backup_label"))
            .ctx(|| format!("reading {}/backup_label", pgdata.display()))?;
        fs::rename(&scratch, &dir)
            .ctx(|| format!("renaming {} to {}", scratch.display(), dir.display()))?;
        sync_dir(&parent)?;
        let backup = parse_label(&dir, &label)?;
        tracing::info!(
            dir = %dir.display(),
            start_lsn = %backup.start_lsn,
            "made a base backup with pg_basebackup"
        );
        Ok(backup)
    }

    /// Ends the current WAL segment (`pg_switch_wal()`) and waits until it and every one
    /// before it are archived: from then on the archive holds every commit made before the
    /// call. Returns the segment's name.
    pub fn archive_current_wal(&self, within: Duration) -> Result<String, ClusterError> {
        let segment = self
            .psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")?
            .trim()
            .to_owned();
        if segment.len() != 24 || !segment.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClusterError::InvalidOption(format!(
                "pg_walfile_name answered {segment:?}"
            )));
        }
        let deadline = Instant::now() + within;
        loop {
            let waiting = self.psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_ls_archive_statusdir() \
                     WHERE name LIKE '%.ready' AND left(name, 24) <= '{segment}'"
                ),
            )?;
            if waiting.trim() == "0" {
                return Ok(segment);
            }
            if Instant::now() >= deadline {
                let archiver = self.psql(
                    "postgres",
                    "SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver",
                )?;
                return Err(ClusterError::InvalidOption(format!(
                    "WAL segment {segment} not archived after {} s (last failure: {})",
                    within.as_secs(),
                    archiver.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restores `backup` (made by [`Cluster::base_backup`]) into `opts.data_dir`, which must
    /// hold no cluster, replays the WAL archived in `archive` (none: the backup's own WAL
    /// only) up to its end or `target`, and returns the cluster once recovery has ended and it
    /// takes writes. Its superuser, roles and their passwords are the backup's. `opts` are the
    /// settings of the restored cluster (archiving is not inherited: a restored cluster that
    /// should archive says so, preferably into a new archive).
    pub fn restore(
        backup: impl AsRef<Path>,
        archive: Option<&Path>,
        opts: ClusterOptions,
        target: Option<RecoveryTarget>,
    ) -> Result<Cluster, ClusterError> {
        let backup = backup.as_ref();
        let source = backup.join(PGDATA_DIR);
        if !source.join("PG_VERSION").is_file() || !source.join("backup_label").is_file() {
            return Err(ClusterError::InvalidOption(format!(
                "{} is not a base backup (no pgdata/PG_VERSION and pgdata/backup_label)",
                backup.display()
            )));
        }
        let restore_command = match archive {
            Some(dir) => {
                let dir = dir
                    .canonicalize()
                    .ctx(|| format!("resolving {}", dir.display()))?;
                let quoted = shell_quote(&dir)?;
                format!("cp {quoted}/%f %p")
            }
            // Nothing to fetch: replay ends with the backup's own WAL.
            None => "false".to_owned(),
        };
        let mut recovery = vec![("restore_command", restore_command)];
        match &target {
            Some(RecoveryTarget::Time(time)) => {
                recovery.push(("recovery_target_time", time.clone()));
            }
            Some(RecoveryTarget::Lsn(lsn)) => recovery.push(("recovery_target_lsn", lsn.clone())),
            Some(RecoveryTarget::Immediate) => {
                recovery.push(("recovery_target", "immediate".to_owned()));
            }
            None => {}
        }
        if target.is_some() {
            recovery.push(("recovery_target_action", "promote".to_owned()));
        }

        let run_as = service_account()?;
        let root = prepare_root(&opts.data_dir, run_as.as_ref())?;
        {
            // Held while the copy is made; Cluster::start takes it again.
            let _lock = acquire_lock(&root)?;
            if let Some(acct) = &run_as {
                check_traversable(&root, acct)?;
            }
            let pgdata = root.join(PGDATA_DIR);
            if pgdata.exists() {
                return Err(ClusterError::InvalidOption(format!(
                    "{} already holds a cluster; restore into a fresh folder",
                    root.display()
                )));
            }
            let scratch = root.join(RESTORE_DIR);
            if scratch.exists() {
                fs::remove_dir_all(&scratch).ctx(|| format!("removing {}", scratch.display()))?;
            }
            copy_tree(&source, &scratch, run_as.as_ref())?;
            fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))
                .ctx(|| format!("setting permissions of {}", scratch.display()))?;
            // A restored cluster neither needs nor checks the manifest.
            let _ = fs::remove_file(scratch.join("backup_manifest"));
            let mut conf =
                String::from("\n# lading-pgcluster: restore (taken out once recovery ended)\n");
            for (name, value) in &recovery {
                if value.contains(['\n', '\r', '\0']) {
                    return Err(ClusterError::InvalidOption(format!("value of {name}")));
                }
                conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
            }
            append(&scratch.join("postgresql.auto.conf"), &conf)?;
            write_private(&scratch.join("recovery.signal"), "", run_as.as_ref())?;
            for entry in fs::read_dir(backup).ctx(|| format!("reading {}", backup.display()))? {
                let entry = entry.ctx(|| format!("reading {}", backup.display()))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name == PASSWORD_FILE
                    || (name.starts_with(ROLE_PASSWORD_PREFIX) && name.ends_with(".password"))
                {
                    let secret = fs::read_to_string(entry.path())
                        .ctx(|| format!("reading {}", entry.path().display()))?;
                    let path = root.join(&*name);
                    let _ = fs::remove_file(&path);
                    write_private(&path, &secret, None)?;
                }
            }
            if !root.join(PASSWORD_FILE).is_file() {
                return Err(ClusterError::PasswordMissing {
                    path: backup.join(PASSWORD_FILE),
                });
            }
            fs::rename(&scratch, &pgdata)
                .ctx(|| format!("renaming {} to {}", scratch.display(), pgdata.display()))?;
            sync_dir(&root)?;
        }
        let log_offset = fs::metadata(root.join(super::LOG_FILE)).map_or(0, |m| m.len());
        let cluster = Cluster::start(opts)?;
        cluster.wait_recovery_end(log_offset)?;
        let reset: Vec<String> = RECOVERY_SETTINGS
            .iter()
            .map(|name| format!("ALTER SYSTEM RESET {name}"))
            .collect();
        for statement in reset {
            cluster.psql("postgres", &statement)?;
        }
        cluster.psql("postgres", "SELECT pg_reload_conf()")?;
        tracing::info!(root = %cluster.root.display(), "restored a base backup");
        Ok(cluster)
    }

    /// Waits until the server has left recovery (promoted itself), or fails with the end of
    /// its log if it exits first (a target the archive does not reach, a missing segment).
    fn wait_recovery_end(&self, log_offset: u64) -> Result<(), ClusterError> {
        let deadline = Instant::now() + RECOVERY_TIMEOUT;
        loop {
            if let Some(status) = self.shared.lock().clone() {
                return Err(ClusterError::StartFailed {
                    status,
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path(), log_offset),
                });
            }
            if let Ok(out) = self.psql("postgres", "SELECT pg_is_in_recovery()") {
                if out.trim() == "f" {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::StartTimeout {
                    secs: RECOVERY_TIMEOUT.as_secs(),
                    log: self.log_path(),
                    log_tail: log_tail(&self.log_path(), log_offset),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The superuser's and the login roles' password files of this cluster's root.
    fn password_files(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let mut files = vec![(PASSWORD_FILE.to_owned(), format!("{}\n", self.password))];
        for entry in fs::read_dir(&self.root).ctx(|| format!("reading {}", self.root.display()))? {
            let entry = entry.ctx(|| format!("reading {}", self.root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(ROLE_PASSWORD_PREFIX) && name.ends_with(".password") {
                let secret = fs::read_to_string(entry.path())
                    .ctx(|| format!("reading {}", entry.path().display()))?;
                files.push((name, secret));
            }
        }
        Ok(files)
    }

    /// A client tool of this cluster's binaries, run as the server's account, with the
    /// superuser's password in its environment (not on its command line).
    fn client_command(&self, tool: &str, run_as: Option<&Account>) -> Command {
        let mut cmd = Command::new(client_tool(&self.bin_dir, tool));
        cmd.stdin(Stdio::null());
        prepare_child_env(&mut cmd, run_as);
        // After prepare_child_env, which clears libpq's variables.
        cmd.env("PGPASSWORD", &self.password);
        sys::configure_child(&mut cmd, run_as.map(|a| (a.uid, a.gid)), libc::SIGKILL);
        cmd
    }
}

/// Runs a prepared command to its end; its output is the error when it fails.
fn run(mut cmd: Command, program: &Path) -> Result<(), ClusterError> {
    let out = cmd
        .output()
        .ctx(|| format!("running {}", program.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(ClusterError::CommandFailed {
        program: program.display().to_string(),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// What `backup_label` says of where and when the backup started.
fn parse_label(dir: &Path, label: &str) -> Result<BaseBackup, ClusterError> {
    let field = |key: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .map(str::to_owned)
    };
    let location = field("START WAL LOCATION:");
    // "0/2000028 (file 000000010000000000000002)"
    let parsed = location.as_deref().and_then(|l| {
        let (lsn, rest) = l.split_once(' ')?;
        let file = rest.strip_prefix("(file ")?.strip_suffix(')')?;
        Some((lsn.to_owned(), file.to_owned()))
    });
    match (parsed, field("START TIME:")) {
        (Some((start_lsn, start_wal_file)), Some(start_time)) => Ok(BaseBackup {
            dir: dir.to_path_buf(),
            start_lsn,
            start_wal_file,
            start_time,
        }),
        _ => Err(ClusterError::InvalidOption(format!(
            "unreadable backup_label in {}:\n{label}",
            dir.display()
        ))),
    }
}

/// Creates `dir` if absent (0700, given to `owner`), checks that `owner` can reach it, and
/// returns it absolute. An existing folder must be `owner`'s already.
fn prepare_private_dir(dir: &Path, owner: Option<&Account>) -> Result<PathBuf, ClusterError> {
    if dir.as_os_str().is_empty() {
        return Err(ClusterError::InvalidOption(
            "archive folder is empty".into(),
        ));
    }
    if !dir.exists() {
        fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .ctx(|| format!("setting permissions of {}", dir.display()))?;
        if let Some(acct) = owner {
            chown(dir, acct)?;
        }
    }
    let dir = dir
        .canonicalize()
        .ctx(|| format!("resolving {}", dir.display()))?;
    if let Some(acct) = owner {
        use std::os::unix::fs::MetadataExt;
        let md = fs::metadata(&dir).ctx(|| format!("inspecting {}", dir.display()))?;
        if md.uid() != acct.uid {
            return Err(ClusterError::InvalidOption(format!(
                "{} must belong to {SERVICE_USER}, which writes the archive",
                dir.display()
            )));
        }
        check_traversable(&dir, acct)?;
    }
    Ok(dir)
}

/// A path as one single-quoted shell word; refused if PostgreSQL would read a `%` escape in
/// it or it has a quote or a line break.
fn shell_quote(path: &Path) -> Result<String, ClusterError> {
    let text = path.to_str().unwrap_or("");
    if text.is_empty() || text.contains(['\'', '%', '\n', '\r', '\0']) {
        return Err(ClusterError::InvalidOption(format!(
            "archive folder {} (no quote, %, or line break allowed)",
            path.display()
        )));
    }
    Ok(format!("'{text}'"))
}

fn chown(path: &Path, acct: &Account) -> Result<(), ClusterError> {
    std::os::unix::fs::lchown(path, Some(acct.uid), Some(acct.gid))
        .ctx(|| format!("giving {} to {SERVICE_USER}", path.display()))
}

/// Copies a backup's `pgdata` (files and folders, with their modes; a symbolic link, i.e. a
/// tablespace, is refused) into the new folder `to`, all given to `owner`. Nothing is flushed
/// here: PostgreSQL flushes the whole data directory before it replays (it starts from a
/// backup label, not a clean shutdown).
fn copy_tree(from: &Path, to: &Path, owner: Option<&Account>) -> Result<(), ClusterError> {
    fs::create_dir(to).ctx(|| format!("creating {}", to.display()))?;
    let md = fs::metadata(from).ctx(|| format!("inspecting {}", from.display()))?;
    fs::set_permissions(
        to,
        fs::Permissions::from_mode(md.permissions().mode() & 0o7777),
    )
    .ctx(|| format!("setting permissions of {}", to.display()))?;
    if let Some(acct) = owner {
        chown(to, acct)?;
    }
    for entry in fs::read_dir(from).ctx(|| format!("reading {}", from.display()))? {
        let entry = entry.ctx(|| format!("reading {}", from.display()))?;
        let kind = entry
            .file_type()
            .ctx(|| format!("inspecting {}", entry.path().display()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, owner)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)
                .ctx(|| format!("copying {} to {}", entry.path().display(), target.display()))?;
            if let Some(acct) = owner {
                chown(&target, acct)?;
            }
        } else {
            return Err(ClusterError::InvalidOption(format!(
                "{} is not a plain file or folder (tablespaces are not supported)",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .ctx(|| format!("writing {}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<(), ClusterError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backup_label_gives_the_start() {
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                     CHECKPOINT LOCATION: 0/2000060\n\
                     BACKUP METHOD: streamed\n\
                     BACKUP FROM: primary\n\
                     START TIME: 2025-01-31 12:00:00 UTC\n\
                     LABEL: x\n\
                     START TIMELINE: 1\n";
        let b = parse_label(Path::new("/b"), label).unwrap();
        assert_eq!(b.start_lsn, "0/2000028");
        assert_eq!(b.start_wal_file, "000000010000000000000002");
        assert_eq!(b.start_time, "2025-01-31 12:00:00 UTC");
        assert!(parse_label(Path::new("/b"), "LABEL: x\n").is_err());
    }

    #[test]
    fn archive_paths_are_quoted_or_refused() {
        assert_eq!(shell_quote(Path::new("/a b/c")).unwrap(), "'/a b/c'");
        for bad in ["/a'b", "/a%fb", "/a\nb", ""] {
            assert!(shell_quote(Path::new(bad)).is_err(), "{bad:?}");
        }
    }
}
