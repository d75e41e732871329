//! One throwaway cluster per test process.
//!
//! TEST ONLY: it runs with `fsync=off`, `synchronous_commit=off` and
//! `full_page_writes=off`, which make a power loss or OS crash corrupt it.
//! That is fine for data that lives as long as a test run, never for a
//! ledger.
//!
//! Clean-up, as far as a process can promise it:
//! - normal exit (the test harness returns or calls `exit`): an `atexit` hook
//!   stops the server and removes the directory;
//! - killed: the server dies by its parent-death signal, and the directory
//!   (named `lading-test-pg-*` under `/tmp`) is removed by a later
//!   [`shared_test_cluster`] call once it is older than an hour, its lock is
//!   free and no server runs in it.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use crate::cluster::{Cluster, ClusterOptions, LOCK_FILE, PGDATA_DIR};
use crate::error::{ClusterError, IoContext};
use crate::sys;

/// Name prefix of the throwaway cluster directories under `/tmp`.
pub const TEST_ROOT_PREFIX: &str = "lading-test-pg-";

/// Age after which an abandoned test directory may be removed.
const STALE_AFTER: Duration = Duration::from_secs(3600);

static SHARED: OnceLock<Cluster> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// The test process's cluster, started on first use. Tests share it and
/// isolate themselves with databases of their own
/// ([`Cluster::create_database`]). A failed start is returned to the caller
/// and retried by the next one.
pub fn shared_test_cluster() -> Result<&'static Cluster, ClusterError> {
    if let Some(cluster) = SHARED.get() {
        return Ok(cluster);
    }
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cluster) = SHARED.get() {
        return Ok(cluster);
    }
    let tmp = Path::new("/tmp");
    remove_stale_test_roots(tmp, STALE_AFTER);
    // World-searchable, so the `postgres` account can reach pgdata when we are root.
    let root = tempfile::Builder::new()
        .prefix(TEST_ROOT_PREFIX)
        .permissions(fs::Permissions::from_mode(0o711))
        .tempdir_in(tmp)
        .ctx(|| "creating a test cluster directory in /tmp".into())?
        .keep();
    let opts = ClusterOptions::new(&root)
        .setting("fsync", "off")
        .setting("synchronous_commit", "off")
        .setting("full_page_writes", "off");
    match Cluster::start(opts) {
        Ok(cluster) => {
            let cluster = SHARED.get_or_init(move || cluster);
            if !sys::at_exit(clean_up_at_exit) {
                tracing::warn!("could not register the test cluster's exit clean-up");
            }
            Ok(cluster)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&root);
            Err(e)
        }
    }
}

extern "C" fn clean_up_at_exit() {
    // A panic must not unwind into libc's exit().
    let _ = std::panic::catch_unwind(|| {
        if let Some(cluster) = SHARED.get() {
            cluster.quit_and_wait();
            let _ = fs::remove_dir_all(cluster.root());
        }
    });
}

/// Removes `lading-test-pg-*` directories in `tmp` that are older than
/// `min_age`, whose lock no process holds, and whose postmaster is gone.
pub(crate) fn remove_stale_test_roots(tmp: &Path, min_age: Duration) -> usize {
    let Ok(entries) = fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEST_ROOT_PREFIX) {
            continue;
        }
        let path = entry.path();
        // Not following symlinks: /tmp is shared with everyone.
        let Ok(md) = fs::symlink_metadata(&path) else {
            continue;
        };
        let old_enough = md
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= min_age);
        if !md.is_dir() || !old_enough || is_in_use(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                removed += 1;
                tracing::debug!(path = %path.display(), "removed an abandoned test cluster");
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "could not remove an abandoned test cluster")
            }
        }
    }
    removed
}

fn is_in_use(root: &Path) -> bool {
    if let Ok(file) = OpenOptions::new().read(true).open(root.join(LOCK_FILE)) {
        // Held by a live owner, or we cannot tell: leave it.
        if !sys::try_lock_exclusive(&file).unwrap_or(false) {
            return true;
        }
    }
    let pidfile = root.join(PGDATA_DIR).join("postmaster.pid");
    fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        .is_some_and(sys::process_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn make_root(base: &Path, name: &str) -> std::path::PathBuf {
        let root = base.join(name);
        fs::create_dir_all(root.join(PGDATA_DIR)).unwrap();
        File::create(root.join(LOCK_FILE)).unwrap();
        root
    }

    #[test]
    fn only_old_unlocked_dead_test_roots_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = make_root(tmp.path(), "lading-test-pg-dead");
        let locked = make_root(tmp.path(), "lading-test-pg-locked");
        let live_pid = make_root(tmp.path(), "lading-test-pg-livepid");
        let other = make_root(tmp.path(), "something-else");
        fs::write(
            live_pid.join(PGDATA_DIR).join("postmaster.pid"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let holder = File::open(locked.join(LOCK_FILE)).unwrap();
        assert!(sys::try_lock_exclusive(&holder).unwrap());

        // Too young: nothing goes.
        assert_eq!(
            remove_stale_test_roots(tmp.path(), Duration::from_secs(3600)),
            0
        );
        assert!(dead.exists());

        assert_eq!(remove_stale_test_roots(tmp.path(), Duration::ZERO), 1);
        assert!(!dead.exists());
        assert!(locked.exists());
        assert!(live_pid.exists());
        assert!(other.exists());

        drop(holder);
        assert_eq!(remove_stale_test_roots(tmp.path(), Duration::ZERO), 1);
        assert!(!locked.exists());
    }
}
