//! `Cluster::ensure_login_role`: a role that owns nothing and can bypass nothing, whose
//! password is kept beside the superuser's and reused.
// Helpers outside #[test] functions fail loudly too: this whole file is tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use lading_pgcluster::{shared_test_cluster, Cluster, ROLE_PASSWORD_PREFIX};

fn psql(cluster: &Cluster, url: &str, sql: &str) -> Result<String, String> {
    let beside = cluster.bin_dir().join("psql");
    let bin = if beside.exists() {
        beside
    } else {
        PathBuf::from("/usr/bin/psql")
    };
    let out = Command::new(bin)
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const ATTRIBUTES: &str = "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole, \
                          rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user";

#[test]
fn a_login_role_is_plain_and_keeps_its_password() {
    let cluster = shared_test_cluster().unwrap();
    let role = cluster.ensure_login_role("it_plain").unwrap();
    assert_eq!(role.name(), "it_plain");
    assert!(!format!("{role:?}").contains(role.password()));
    let file = cluster
        .root()
        .join(format!("{ROLE_PASSWORD_PREFIX}it_plain.password"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        role.password()
    );
    for url in [
        cluster.url_as(&role, "postgres"),
        cluster.local_url_as(&role, "postgres"),
    ] {
        assert_eq!(
            psql(cluster, &url, ATTRIBUTES).unwrap(),
            "it_plain|f|f|f|f|f"
        );
    }
    // Again (a restart of the binary): the same password, which still logs in.
    let again = cluster.ensure_login_role("it_plain").unwrap();
    assert_eq!(again.password(), role.password());
    assert!(psql(cluster, &cluster.url_as(&again, "postgres"), "SELECT 1").is_ok());
}

#[test]
fn a_role_made_by_hand_is_brought_back_to_a_plain_one() {
    let cluster = shared_test_cluster().unwrap();
    cluster
        .psql(
            "postgres",
            "CREATE ROLE it_by_hand SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS NOLOGIN",
        )
        .unwrap();
    let role = cluster.ensure_login_role("it_by_hand").unwrap();
    assert_eq!(
        psql(cluster, &cluster.url_as(&role, "postgres"), ATTRIBUTES).unwrap(),
        "it_by_hand|f|f|f|f|f"
    );
}

#[test]
fn names_that_are_not_plain_or_are_the_superuser_are_refused() {
    let cluster = shared_test_cluster().unwrap();
    for bad in [
        "",
        "Writer",
        "a-b",
        "x'; DROP ROLE lading; --",
        cluster.superuser(),
    ] {
        let err = cluster.ensure_login_role(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_cluster_option", "{bad}");
    }
}
