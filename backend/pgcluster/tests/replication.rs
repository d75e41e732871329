//! A primary and its synchronous standby, made from the machine's server binaries: a commit is
//! acknowledged only once the standby has it, and the promoted standby holds every
//! acknowledged commit after the primary's postmaster is killed.
// Helpers outside #[test] functions fail loudly too: this whole file is tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use lading_pgcluster::{Cluster, ClusterOptions};

/// A base directory the `postgres` account can traverse when we are root.
fn base_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lading-pgcluster-repl-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap()
}

/// psql as the superuser with settings of the session (`PGOPTIONS`); stdout and stderr.
fn psql_with(cluster: &Cluster, options: &str, sql: &str) -> (bool, String, String) {
    let psql = cluster.bin_dir().join("psql");
    let psql = if psql.exists() {
        psql
    } else {
        "/usr/bin/psql".into()
    };
    let out = Command::new(psql)
        .args(["-X", "-q", "-t", "-A", "-d"])
        .arg(cluster.url("postgres"))
        .args(["-c", sql])
        .env("PGOPTIONS", options)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// psql as the superuser, left running.
fn psql_child(cluster: &Cluster, sql: &str) -> std::process::Child {
    let psql = cluster.bin_dir().join("psql");
    let psql = if psql.exists() {
        psql
    } else {
        "/usr/bin/psql".into()
    };
    Command::new(psql)
        .args(["-X", "-q", "-d"])
        .arg(cluster.url("postgres"))
        .args(["-c", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_commit_waits_for_the_synchronous_standby_which_holds_it_after_the_primary_dies() {
    let base = base_dir();
    let mut primary = Cluster::start(ClusterOptions::new(base.path().join("primary"))).unwrap();
    primary
        .psql("postgres", "CREATE TABLE acknowledged (n int PRIMARY KEY)")
        .unwrap();
    let standby = primary
        .start_standby(
            ClusterOptions::new(base.path().join("standby")),
            "standby_a",
        )
        .unwrap();
    assert!(standby.is_standby().unwrap());
    assert!(!primary.is_standby().unwrap());
    primary.require_synchronous_standby().unwrap();
    primary
        .wait_for_synchronous_standby(Duration::from_secs(30))
        .unwrap();
    // The standby's copy has the primary's roles: the same superuser and password.
    assert_eq!(standby.password(), primary.password());

    for n in 0..100 {
        primary
            .psql(
                "postgres",
                &format!("INSERT INTO acknowledged VALUES ({n})"),
            )
            .unwrap();
    }
    // With the standby gone, a commit is not acknowledged: it waits, however long, and is
    // answered once the standby is back and has it.
    let standby_root = standby.root().to_path_buf();
    standby.stop().unwrap();
    let mut waiting = psql_child(&primary, "INSERT INTO acknowledged VALUES (1000)");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "a commit was acknowledged with no standby to hold it"
    );
    let standby = Cluster::start(ClusterOptions::new(&standby_root)).unwrap();
    let answered = waiting.wait().unwrap();
    assert!(answered.success(), "the waiting commit failed");
    primary
        .wait_for_synchronous_standby(Duration::from_secs(30))
        .unwrap();
    for n in 100..200 {
        primary
            .psql(
                "postgres",
                &format!("INSERT INTO acknowledged VALUES ({n})"),
            )
            .unwrap();
    }
    primary.kill_postmaster();
    assert!(!primary.is_running());

    standby.promote().unwrap();
    assert!(!standby.is_standby().unwrap());
    let held = standby
        .psql("postgres", "SELECT count(*) FROM acknowledged")
        .unwrap();
    assert_eq!(held.trim(), "201", "an acknowledged commit is missing");
    // The promoted standby takes writes without waiting for a standby it does not have.
    let (ok, _, stderr) = psql_with(
        &standby,
        "-c statement_timeout=5000",
        "INSERT INTO acknowledged VALUES (2000)",
    );
    assert!(ok && stderr.is_empty(), "{stderr}");
}
