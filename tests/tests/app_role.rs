//! The application's role (README: Database roles): `lading` migrates as the tables' owner
//! (`LADING_DATABASE_OWNER_URL`) and serves as a role that owns nothing
//! (`LADING_DATABASE_URL`), which sequences and serves the ledger but cannot change it; with
//! one role for both it warns at start.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::process::Command;

use lading_e2e::harness::{get, lading_bin, Server, ServerOptions, TestDb, Tls, WRITER_ROLE};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

/// The registry of the harness (as every e2e registry runs now) takes and sequences the
/// sample chains with its connections all as the writer, which may not touch what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_sequences_and_serves_as_the_writer_which_cannot_change_the_ledger() {
    let (db, tls, server) = tokio::task::spawn_blocking(|| {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, ServerOptions::default())?;
        anyhow::Ok((db, tls, server))
    })
    .await
    .unwrap()
    .unwrap();
    let client = tls.client().unwrap();
    let samples = Samples::load().unwrap();
    let mut taken = 0u64;
    for chain in &samples.chains {
        for jws in &chain.transitions {
            let response = client
                .post(server.url("/v1/transitions"))
                .header(reqwest::header::CONTENT_TYPE, "application/jose")
                .body(jws.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{}",
                chain.reference
            );
            taken += 1;
        }
    }
    let (status, ready) = get(&client, &server.url("/readyz")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["size"].as_u64(), Some(taken));

    // Every session the registry holds on its database is the writer's.
    let users = db
        .psql(&format!(
            "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ))
        .unwrap();
    assert_eq!(users.trim(), WRITER_ROLE);
    let owner = db
        .psql("SELECT relowner::regrole FROM pg_class WHERE oid = 'ledger_entries'::regclass")
        .unwrap();
    assert_ne!(owner.trim(), WRITER_ROLE);

    // What the registry wrote, the writer cannot change, remove or unprotect.
    let psql = lading_pgcluster::shared_test_cluster()
        .unwrap()
        .bin_dir()
        .join("psql");
    for table in ["ledger_entries", "transitions", "blocks", "checkpoints"] {
        for sql in [
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table}"),
            format!("ALTER TABLE {table} DISABLE TRIGGER ALL"),
        ] {
            let out = Command::new(&psql)
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    &db.writer_url,
                    "-c",
                ])
                .arg(&sql)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{sql} was allowed");
            assert!(
                stderr.contains("permission denied") || stderr.contains("must be owner"),
                "{sql}: {stderr}"
            );
        }
    }
    let size: u64 = db
        .psql("SELECT count(*) FROM ledger_entries")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(size, taken);
    drop(server);
}

/// `lading migrate` with `env` and no configuration file: its exit and its log (stderr).
fn migrate(env: &[(String, String)]) -> (bool, String) {
    let out = Command::new(lading_bin().unwrap())
        .arg("migrate")
        .env("LADING_CONFIG", "/dev/null")
        .env("RUST_LOG", "info")
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const WARNING: &str = "append-only guarantee rests on triggers this role could disable";

#[test]
fn one_role_for_both_warns_and_a_writer_alone_cannot_migrate() {
    // The writer alone: it may create nothing, and the error says what to set.
    let db = TestDb::new().unwrap();
    let (ok, log) = migrate(&[("LADING_DATABASE_URL".into(), db.writer_url.clone())]);
    assert!(!ok, "{log}");
    assert!(log.contains("database.owner_url"), "{log}");

    // Two roles: no warning.
    let (ok, log) = migrate(&db.env());
    assert!(ok, "{log}");
    assert!(!log.contains(WARNING), "{log}");

    // One role for both, as deployments from before the two roles: it works, with a warning.
    let (ok, log) = migrate(&[("LADING_DATABASE_URL".into(), db.url.clone())]);
    assert!(ok, "{log}");
    assert!(log.contains("WARN") && log.contains(WARNING), "{log}");
}
