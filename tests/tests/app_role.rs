//! The application's role (README: Database roles): `lading` migrates as the tables' owner
//! (`LADING_DATABASE_OWNER_URL`) and serves as a role that owns nothing
//! (`LADING_DATABASE_URL`), which sequences and serves the ledger but cannot change it; with
//! one role for both it warns at start.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lading_e2e::harness::{
    free_port, get, hand_over, lading_bin, repo_root, signal, wait_until_listening, Server,
    ServerOptions, TestDb, Tls, WRITER_ROLE,
};
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

/// `lading serve` on the embedded default (no database configured): it makes `lading_writer`,
/// migrates as the cluster's superuser, and sequences and serves as the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_sequences_and_serves_as_lading_writer() {
    // Traversable by the `postgres` account when the tests run as root.
    let data = tempfile::Builder::new()
        .prefix("lading-e2e-embedded-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap();
    let tls = Tls::new().unwrap();
    let fixtures = repo_root().join("fixtures");
    let env = [
        ("LADING_CONFIG", "/dev/null".to_owned()),
        ("LADING_DATA_DIR", data.path().display().to_string()),
        ("LADING_TLS_CERT", tls.cert_path().display().to_string()),
        ("LADING_TLS_KEY", tls.key_path().display().to_string()),
        (
            "LADING_SIGNING_KEY",
            fixtures.join("keys/registry.jwk").display().to_string(),
        ),
        ("LADING_ALLOW_TEST_KEYS", "true".to_owned()),
        (
            "LADING_MAX_CLOCK_SKEW_MS",
            lading_e2e::harness::FIXTURE_CLOCK_SKEW_MS.to_string(),
        ),
        ("LADING_WORKERS", "1".to_owned()),
    ];
    let import = Command::new(lading_bin().unwrap())
        .arg("import-parties")
        .arg(fixtures.join("parties.json"))
        .arg("--tokens")
        .arg(fixtures.join("tokens.json"))
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let port = free_port().unwrap();
    let mut command = Command::new(lading_bin().unwrap());
    command
        .arg("serve")
        .envs(env.iter().cloned())
        .env("LADING_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    hand_over(&mut command).unwrap();
    let mut child = command.spawn().unwrap();
    let started = wait_until_listening(&mut child, Duration::from_secs(60));
    if let Err(e) = started {
        let _ = child.kill();
        panic!("lading serve on the embedded default: {e}");
    }

    let client = tls.client().unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let chain = &Samples::load().unwrap().chains[0];
    for jws in &chain.transitions {
        // A write needs a credential: each signer submits its own.
        let payload = jws.split('.').nth(1).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        let signer = lading_e2e::harness::token(payload["actor"].as_str().unwrap()).unwrap();
        let response = client
            .post(format!("{base}/v1/transitions"))
            .bearer_auth(signer)
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
    }
    let (status, ready) = get(&client, &format!("{base}/readyz")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["size"].as_u64(), Some(chain.transitions.len() as u64));

    // Every session on the registry's database is lading_writer's (asked as lading_writer
    // itself, with the password the binary keeps: pg_stat_activity shows everyone's user).
    let users = embedded_psql(
        data.path(),
        "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity \
         WHERE datname = 'lading' AND pid <> pg_backend_pid()",
    );
    assert_eq!(users, WRITER_ROLE);
    let owner = embedded_psql(
        data.path(),
        "SELECT relowner::regrole FROM pg_class WHERE oid = 'ledger_entries'::regclass",
    );
    assert_ne!(owner, WRITER_ROLE);

    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// One query on the embedded cluster's `lading` database, as lading_writer over loopback TCP.
fn embedded_psql(data: &Path, sql: &str) -> String {
    let root = data.join("postgres");
    let read = |name: &str| {
        std::fs::read_to_string(root.join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let url = format!(
        "postgres://{WRITER_ROLE}:{}@127.0.0.1:{}/lading",
        read(&format!("role-{WRITER_ROLE}.password")),
        read("port")
    );
    let psql = lading_pgcluster::find_bin_dir().unwrap().join("psql");
    let psql = if psql.exists() {
        psql
    } else {
        "/usr/bin/psql".into()
    };
    let out = Command::new(psql)
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &url,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
