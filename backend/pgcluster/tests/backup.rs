//! Backups: WAL archiving, a base backup, and restores into fresh roots — to the end of the
//! archive (every row committed before the last archived segment), to a target LSN and time
//! (only the rows committed before it), and of the base backup alone (only the rows it held).
// Helpers outside #[test] functions fail loudly too: this whole file is tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use lading_pgcluster::{Cluster, ClusterOptions, RecoveryTarget};

/// A base directory the `postgres` account can traverse when we are root.
fn base_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lading-pgcluster-backup-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap()
}

fn insert(cluster: &Cluster, from: u32, to: u32) {
    // One commit a row, as the ledger commits its entries.
    for n in from..to {
        cluster
            .psql("postgres", &format!("INSERT INTO rows VALUES ({n})"))
            .unwrap();
    }
}

fn rows(cluster: &Cluster) -> (String, String) {
    let out = cluster
        .psql(
            "postgres",
            "SELECT count(*), coalesce(max(n), -1) FROM rows",
        )
        .unwrap();
    let (count, max) = out.trim().split_once('|').unwrap();
    (count.to_owned(), max.to_owned())
}

#[test]
fn a_restore_replays_the_archive_up_to_its_end_or_a_target() {
    let base = base_dir();
    let archive = base.path().join("archive");
    let options = ClusterOptions::new(base.path().join("primary"))
        .archive_wal_to(&archive)
        .unwrap();
    let primary = Cluster::start(options).unwrap();
    primary
        .psql("postgres", "CREATE TABLE rows (n int PRIMARY KEY)")
        .unwrap();
    insert(&primary, 0, 100);

    let backup = primary.base_backup(base.path().join("backup")).unwrap();
    assert!(backup.dir.join("pgdata/backup_manifest").is_file());
    assert!(backup.dir.join("superuser.password").is_file());
    assert_eq!(backup.start_wal_file.len(), 24, "{backup:?}");
    // A backup goes into a new folder, never over one.
    let again = primary.base_backup(&backup.dir).unwrap_err();
    assert_eq!(again.code(), "invalid_cluster_option");

    // After the backup: only in the archive.
    insert(&primary, 100, 200);
    let lsn = primary
        .psql("postgres", "SELECT pg_current_wal_lsn()")
        .unwrap()
        .trim()
        .to_owned();
    let time = primary
        .psql("postgres", "SELECT clock_timestamp()")
        .unwrap()
        .trim()
        .to_owned();
    std::thread::sleep(Duration::from_millis(20));
    insert(&primary, 200, 300);
    let last = primary
        .archive_current_wal(Duration::from_secs(30))
        .unwrap();
    assert!(archive.join(&last).is_file(), "{last} not in the archive");
    assert!(
        std::fs::read_dir(&archive).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "a partial copy left in the archive"
    );
    primary.stop().unwrap();

    let restored = Cluster::restore(
        &backup.dir,
        Some(&archive),
        ClusterOptions::new(base.path().join("restored")),
        None,
    )
    .unwrap();
    assert!(!restored.is_standby().unwrap());
    assert_eq!(rows(&restored), ("300".into(), "299".into()));
    // It takes writes, and its recovery settings are gone from its configuration.
    insert(&restored, 300, 301);
    assert_eq!(
        restored
            .psql("postgres", "SHOW restore_command")
            .unwrap()
            .trim(),
        ""
    );
    restored.stop().unwrap();

    let to_lsn = Cluster::restore(
        &backup.dir,
        Some(&archive),
        ClusterOptions::new(base.path().join("to-lsn")),
        Some(RecoveryTarget::Lsn(lsn)),
    )
    .unwrap();
    assert_eq!(rows(&to_lsn), ("200".into(), "199".into()));
    to_lsn.stop().unwrap();

    let to_time = Cluster::restore(
        &backup.dir,
        Some(&archive),
        ClusterOptions::new(base.path().join("to-time")),
        Some(RecoveryTarget::Time(time)),
    )
    .unwrap();
    assert_eq!(rows(&to_time), ("200".into(), "199".into()));
    to_time.stop().unwrap();

    // Without the archive, a restore ends with the backup itself.
    let alone = Cluster::restore(
        &backup.dir,
        None,
        ClusterOptions::new(base.path().join("alone")),
        None,
    )
    .unwrap();
    assert_eq!(rows(&alone), ("100".into(), "99".into()));
    alone.stop().unwrap();

    // A restore goes into a fresh folder, never over a cluster.
    let err = Cluster::restore(
        &backup.dir,
        Some(&archive),
        ClusterOptions::new(base.path().join("restored")),
        None,
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_cluster_option", "{err}");
}
