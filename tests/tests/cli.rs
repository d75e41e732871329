//! End-to-end tests of the `lading` command line: the real binary, run as a child process.
//!
//! `keygen` and `sign` are the reference client's tools, `verify-proof` the offline verifier a
//! third party runs on what the registry published, and `serve` must refuse configurations
//! that would weaken the registry (fixture TEST keys, no TLS).
//!

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lading_domain::merkle::leaf_hash;
use lading_domain::{CompactJws, Digest, Jwk, SignedEvent, SignedTransition};
use lading_e2e::gen::{fixtures_dir, kid_for, FixtureParties};
use lading_e2e::harness::{
    free_port, lading_bin, wait_until_listening, Server, ServerOptions, TestDb, Tls,
};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

/// `lading` with no `LADING_*` settings inherited from the caller's environment.
fn lading() -> Result<Command> {
    let mut command = Command::new(lading_bin()?);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LADING_") {
            command.env_remove(name);
        }
    }
    command
        .env("LADING_CONFIG", "/dev/null")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    Ok(command)
}

/// Runs `command` to completion, killing it (and failing) after `limit`.
fn run(mut command: Command, limit: Duration) -> Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start lading")?;
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output()?;
            bail!(
                "{command:?} still ran after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const QUICK: Duration = Duration::from_secs(30);

fn read_jwk(path: &Path) -> Result<(Jwk, Value)> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok((serde_json::from_str(&text)?, serde_json::from_str(&text)?))
}

fn mode(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

fn payload_of(jws: &str) -> Result<Value> {
    let parsed = CompactJws::parse(jws).map_err(|e| anyhow!("{e}"))?;
    Ok(serde_json::from_slice(parsed.payload_bytes())?)
}

// ---------------------------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------------------------

#[test]
fn keygen_writes_an_owner_only_private_jwk_and_its_public_half() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ops.jwk");
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "acme-ops:2026-01", "--out"])
        .arg(&out);
    let output = run(command, QUICK)?;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&out.display().to_string()));

    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    assert_eq!(
        mode(&out)?,
        0o600,
        "the private key must be readable by its owner only"
    );
    let (private, raw_private) = read_jwk(&out)?;
    let (public, raw_public) = read_jwk(&public_path)?;
    assert!(private.is_private());
    assert!(
        !private.is_test_key(),
        "a key is a TEST key only when asked for"
    );
    assert_eq!(private.kid().as_str(), "acme-ops:2026-01");
    assert_eq!(raw_private["kty"], "OKP");
    assert_eq!(raw_private["crv"], "Ed25519");
    assert!(raw_private["d"].is_string());
    assert!(!public.is_private());
    assert!(
        raw_public.get("d").is_none(),
        "the public JWK carries the private part"
    );
    assert_eq!(public.kid(), private.kid());
    assert_eq!(public.public_key_bytes(), private.public_key_bytes());

    // The pair works: what the private key signs, the public key verifies.
    let signer = private.signing_key()?;
    let jws = signer.sign_compact(b"{\"a\":1}", "test+jws");
    let parsed = CompactJws::parse(&jws)?;
    public.verifying_key()?.verify(&parsed)?;

    // Two runs make two different keys; --test marks the key.
    let second = dir.path().join("test.jwk");
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "acme-ops:2026-02", "--test", "--out"])
        .arg(&second);
    let output = run(command, QUICK)?;
    assert!(output.status.success(), "{}", stderr(&output));
    let (test_key, _) = read_jwk(&second)?;
    assert!(test_key.is_test_key());
    assert_ne!(test_key.public_key_bytes(), private.public_key_bytes());

    // A kid outside the alphabet is refused, and nothing is written.
    let refused = dir.path().join("refused.jwk");
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "bad kid!", "--out"])
        .arg(&refused);
    let output = run(command, QUICK)?;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("invalid kid"),
        "{}",
        stderr(&output)
    );
    assert!(!refused.exists());
    Ok(())
}

/// keygen never writes over an existing file (it may be another key, or world-readable).
#[test]
fn keygen_refuses_to_overwrite_an_existing_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ops.jwk");
    std::fs::write(&out, "{}")?;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644))?;
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "acme-ops:2026-01", "--out"])
        .arg(&out);
    let output = run(command, QUICK)?;
    assert!(
        !output.status.success(),
        "keygen overwrote {}",
        out.display()
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("refusing to overwrite"),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&out)?,
        "{}",
        "the existing file was changed"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sign
// ---------------------------------------------------------------------------------------------

fn sign_file(key: &Path, kind: &str, payload: &Path) -> Result<Output> {
    let mut command = lading()?;
    command
        .args(["sign", "--key"])
        .arg(key)
        .args(["--kind", kind])
        .arg(payload);
    run(command, QUICK)
}

#[test]
fn sign_produces_jws_that_the_domain_parses_and_verifies() -> Result<()> {
    let parties = FixtureParties::load()?;
    let fixtures = fixtures_dir();
    let key_of = |party: &str| fixtures.join("keys").join(format!("{party}.jwk"));
    let mut signed = Vec::new();
    for (file, signer, kind) in [
        ("issue.json", "carrier-oceanic", "transition"),
        ("transfer.json", "shipper-acme", "transition"),
        ("event.json", "carrier-oceanic", "event"),
    ] {
        let path = fixtures.join("payloads").join(file);
        let output = sign_file(&key_of(signer), kind, &path)?;
        assert!(output.status.success(), "{file}: {}", stderr(&output));
        let out = stdout(&output);
        let jws = out.trim();
        assert_eq!(out.lines().count(), 1, "one compact JWS on stdout: {out:?}");
        let key = parties.verifying_key(signer)?;
        let header_kid = if kind == "event" {
            let event = SignedEvent::parse(jws).map_err(|e| anyhow!("{file}: {e}"))?;
            event.verify(&key).map_err(|e| anyhow!("{file}: {e}"))?;
            event.kid().to_string()
        } else {
            let transition = SignedTransition::parse(jws).map_err(|e| anyhow!("{file}: {e}"))?;
            transition
                .verify(&key)
                .map_err(|e| anyhow!("{file}: {e}"))?;
            transition.kid().to_string()
        };
        assert_eq!(header_kid, kid_for(signer));
        let file_json: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        assert_eq!(
            payload_of(jws)?,
            file_json,
            "{file}: the signed payload is the file's"
        );
        // Ed25519 is deterministic: the same input signs to the same bytes, from stdin too.
        let mut command = lading()?;
        command
            .args(["sign", "--key"])
            .arg(key_of(signer))
            .args(["--kind", kind, "-"])
            .stdin(std::fs::File::open(&path)?);
        let again = run(command, QUICK)?;
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(stdout(&again).trim(), jws);
        signed.push(jws.to_owned());
    }
    // The committed transfer names the ISSUE signed the same way: the CLI signs exactly as the
    // fixtures' builder (the domain) does.
    let transfer = payload_of(&signed[1])?;
    assert_eq!(
        transfer["previousTransitionChecksum"],
        Digest::of(signed[0].as_bytes()).to_hex()
    );

    // Refusals: a public key cannot sign; an event is not a transition; a broken payload.
    let dir = tempfile::tempdir()?;
    let public = dir.path().join("public.jwk");
    std::fs::write(
        &public,
        serde_json::to_string(&parties.jwk("carrier-oceanic")?.to_public())?,
    )?;
    let output = sign_file(&public, "transition", &fixtures.join("payloads/issue.json"))?;
    assert!(!output.status.success(), "a public JWK signed");
    let output = sign_file(
        &key_of("shipper-acme"),
        "event",
        &fixtures.join("payloads/transfer.json"),
    )?;
    assert!(
        !output.status.success(),
        "a transition was signed as an event"
    );
    assert!(
        stderr(&output).contains("not a valid shipment event"),
        "{}",
        stderr(&output)
    );
    let mut broken: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures.join("payloads/transfer.json"),
    )?)?;
    broken["action"] = json!("STEAL");
    let broken_path = dir.path().join("broken.json");
    std::fs::write(&broken_path, serde_json::to_string(&broken)?)?;
    let output = sign_file(&key_of("shipper-acme"), "transition", &broken_path)?;
    assert!(!output.status.success(), "an invalid payload was signed");
    assert!(output.stdout.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// verify-proof
// ---------------------------------------------------------------------------------------------

async fn json_of(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// A registry on a new database with its own TLS certificate (fields drop server first).
async fn fresh_registry() -> Result<(Server, Tls, TestDb)> {
    tokio::task::spawn_blocking(|| -> Result<(Server, Tls, TestDb)> {
        let db = TestDb::new()?;
        let tls = Tls::new()?;
        let server = Server::start(&db, &tls, ServerOptions::default())?;
        Ok((server, tls, db))
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_proof_accepts_a_published_proof_and_rejects_tampering() -> Result<()> {
    let (server, tls, _db) = fresh_registry().await?;
    let client = tls.client()?;
    let samples: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("samples.json"),
    )?)?;
    let chain: Vec<String> = serde_json::from_value(samples["chains"][0]["transitions"].clone())?;
    assert!(chain.len() >= 4);
    for jws in &chain {
        let response = client
            .post(server.url("/v1/transitions"))
            .header(CONTENT_TYPE, "application/jose")
            .body(jws.clone())
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 201);
    }
    let size = chain.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while json_of(client.get(server.url("/v1/checkpoint")).send().await?)
        .await
        .ok()
        .and_then(|c| c["size"].as_u64())
        != Some(size)
    {
        if Instant::now() > deadline {
            bail!("no checkpoint of size {size} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let index = 1;
    let proof = json_of(
        client
            .get(server.url(&format!("/v1/entries/{index}/proof?size={size}")))
            .send()
            .await?,
    )
    .await?;
    let key = json_of(client.get(server.url("/v1/registry/key")).send().await?).await?;
    assert!(
        proof["proof"]["leafPath"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{proof}"
    );

    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let proof_path = write("proof.json", &serde_json::to_string_pretty(&proof)?)?;
    let key_path = write("registry.jwk", &serde_json::to_string(&key)?)?;
    let entry_path = write("entry.jws", &format!("{}\n", chain[index]))?;
    let verify =
        |proof: &Path, key: &Path, entry: Option<&Path>, leaf: Option<String>| -> Result<Output> {
            let mut command = lading()?;
            command
                .arg("verify-proof")
                .arg("--proof")
                .arg(proof)
                .arg("--registry-key")
                .arg(key);
            if let Some(entry) = entry {
                command.arg("--entry").arg(entry);
            }
            if let Some(leaf) = leaf {
                command.arg("--leaf-hash").arg(leaf);
            }
            run(command, QUICK)
        };

    let ok =
        tokio::task::block_in_place(|| verify(&proof_path, &key_path, Some(&entry_path), None))?;
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with(&format!("OK: entry {index} ")),
        "{}",
        stdout(&ok)
    );
    let leaf = leaf_hash(chain[index].as_bytes()).to_hex();
    let ok =
        tokio::task::block_in_place(|| verify(&proof_path, &key_path, None, Some(leaf.clone())))?;
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Another entry does not verify with this proof.
    let other_entry = write("other.jws", &chain[index + 1])?;
    let out =
        tokio::task::block_in_place(|| verify(&proof_path, &key_path, Some(&other_entry), None))?;
    assert!(!out.status.success(), "the proof verified another entry");

    // One hex digit of one lemma changed.
    let mut tampered = proof.clone();
    let lemma = tampered["proof"]["leafPath"][0]
        .as_str()
        .context("no lemma")?
        .to_owned();
    let flipped = if lemma.starts_with('0') { "1" } else { "0" };
    tampered["proof"]["leafPath"][0] = json!(format!("{flipped}{}", &lemma[1..]));
    let tampered_path = write("tampered.json", &serde_json::to_string(&tampered)?)?;
    let out =
        tokio::task::block_in_place(|| verify(&tampered_path, &key_path, Some(&entry_path), None))?;
    assert!(!out.status.success(), "a tampered lemma verified");
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));

    // A proof answer whose checkpoint fields were rewritten is judged by the signed JWS only.
    let mut rewritten = proof.clone();
    rewritten["checkpoint"]["root"] = json!(Digest::of(b"forged").to_hex());
    let rewritten_path = write("rewritten.json", &serde_json::to_string(&rewritten)?)?;
    let out = tokio::task::block_in_place(|| {
        verify(&rewritten_path, &key_path, Some(&entry_path), None)
    })?;
    assert!(out.status.success(), "{}", stderr(&out));

    // The same proof with another registry's key.
    let other_key = dir.path().join("other.jwk");
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "registry:test-2026", "--out"])
        .arg(&other_key);
    let made = tokio::task::block_in_place(|| run(command, QUICK))?;
    assert!(made.status.success(), "{}", stderr(&made));
    let other_public = PathBuf::from(format!("{}.pub", other_key.display()));
    let out = tokio::task::block_in_place(|| {
        verify(&proof_path, &other_public, Some(&entry_path), None)
    })?;
    assert!(
        !out.status.success(),
        "a proof verified with another registry's key"
    );
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
    drop(server);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// verify-consistency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_consistency_fetches_keeps_and_rejects_tampering() -> Result<()> {
    let (server, tls, _db) = fresh_registry().await?;
    let client = tls.client()?;
    let samples: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures_dir().join("samples.json"),
    )?)?;
    let chain: Vec<String> = serde_json::from_value(samples["chains"][0]["transitions"].clone())?;
    let checkpoint_of = |size: u64| {
        let client = client.clone();
        let url = server.url("/v1/checkpoint");
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let latest = json_of(client.get(&url).send().await?).await.ok();
                if let Some(latest) = latest.filter(|c| c["size"].as_u64() == Some(size)) {
                    return Ok::<Value, anyhow::Error>(latest);
                }
                if Instant::now() > deadline {
                    bail!("no checkpoint of size {size} within 10 s");
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    };
    let mut kept = None;
    for (i, jws) in chain.iter().enumerate() {
        let response = client
            .post(server.url("/v1/transitions"))
            .header(CONTENT_TYPE, "application/jose")
            .body(jws.clone())
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 201);
        if i == 1 {
            kept = Some(checkpoint_of(2).await?);
        }
    }
    let size = chain.len() as u64;
    checkpoint_of(size).await?;
    let kept = kept.context("no kept checkpoint")?;
    let key = json_of(client.get(server.url("/v1/registry/key")).send().await?).await?;

    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let key_path = write("registry.jwk", &serde_json::to_string(&key)?)?;
    let kept_path = write("kept.json", &serde_json::to_string(&kept)?)?;
    let answer_path = dir.path().join("answer.json");
    let verify = |args: &[&std::ffi::OsStr]| -> Result<Output> {
        let mut command = lading()?;
        command
            .arg("verify-consistency")
            .arg("--registry-key")
            .arg(&key_path)
            .args(args);
        run(command, QUICK)
    };

    // Fetched from the registry: from the kept checkpoint to the latest, saved for later.
    let ok = tokio::task::block_in_place(|| {
        verify(&[
            "--registry".as_ref(),
            server.url("").as_ref(),
            "--cacert".as_ref(),
            tls.cert_path().as_os_str(),
            "--old".as_ref(),
            kept_path.as_os_str(),
            "--save".as_ref(),
            answer_path.as_os_str(),
        ])
    })?;
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with(&format!("OK: the ledger of {size} entries ")),
        "{}",
        stdout(&ok)
    );
    // Offline, from the saved answer.
    let ok =
        tokio::task::block_in_place(|| verify(&["--answer".as_ref(), answer_path.as_os_str()]))?;
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Without the CA the registry's certificate is not trusted.
    let out = tokio::task::block_in_place(|| {
        verify(&[
            "--registry".as_ref(),
            server.url("").as_ref(),
            "--from".as_ref(),
            "2".as_ref(),
        ])
    })?;
    assert!(!out.status.success(), "an untrusted registry was believed");

    // One leaf of the proof changed, or the old checkpoint swapped for another signed one.
    let answer: Value = serde_json::from_str(&std::fs::read_to_string(&answer_path)?)?;
    let leaf = answer["proof"]["leaves"][0]
        .as_str()
        .context("the proof carries no leaves")?
        .to_owned();
    let mut tampered = answer.clone();
    let flipped = if leaf.starts_with('0') { "1" } else { "0" };
    tampered["proof"]["leaves"][0] = json!(format!("{flipped}{}", &leaf[1..]));
    let tampered_path = write("tampered.json", &serde_json::to_string(&tampered)?)?;
    let out =
        tokio::task::block_in_place(|| verify(&["--answer".as_ref(), tampered_path.as_os_str()]))?;
    assert!(!out.status.success(), "a tampered proof verified");
    assert!(stderr(&out).contains("INCONSISTENT"), "{}", stderr(&out));
    let mut swapped = answer.clone();
    swapped["from"] = answer["to"].clone();
    let swapped_path = write("swapped.json", &serde_json::to_string(&swapped)?)?;
    let out = tokio::task::block_in_place(|| {
        verify(&[
            "--answer".as_ref(),
            swapped_path.as_os_str(),
            "--old".as_ref(),
            kept_path.as_os_str(),
        ])
    })?;
    assert!(
        !out.status.success(),
        "an answer from another checkpoint passed"
    );
    assert!(stderr(&out).contains("kept one"), "{}", stderr(&out));
    drop(server);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// serve: refused configurations
// ---------------------------------------------------------------------------------------------

/// `lading serve` with everything a registry needs (database, TLS, the fixture registry key),
/// except that `LADING_ALLOW_TEST_KEYS` is left unset.
fn serve(db: &TestDb, tls: &Tls) -> Result<Command> {
    let mut command = lading()?;
    command
        .arg("serve")
        .envs(db.env())
        .env("LADING_BIND", format!("127.0.0.1:{}", free_port()?))
        .env("LADING_TLS_CERT", tls.cert_path())
        .env("LADING_TLS_KEY", tls.key_path())
        .env(
            "LADING_SIGNING_KEY",
            fixtures_dir().join("keys/registry.jwk"),
        )
        .env("LADING_WORKERS", "1");
    Ok(command)
}

/// Starts `command` and waits for its `listening on` line; kills it either way.
fn starts_listening(mut command: Command) -> Result<()> {
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    lading_e2e::harness::hand_over(&mut command)?;
    let mut child = command.spawn()?;
    let result = wait_until_listening(&mut child, Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[test]
fn serve_refuses_a_test_signing_key_unless_allowed() -> Result<()> {
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    for allow in [None, Some("false")] {
        let mut command = serve(&db, &tls)?;
        if let Some(value) = allow {
            command.env("LADING_ALLOW_TEST_KEYS", value);
        }
        let output = run(command, QUICK)?;
        assert!(
            !output.status.success(),
            "serve started with a TEST key (allow = {allow:?})"
        );
        let message = stderr(&output);
        assert!(message.contains("TEST key"), "unclear refusal: {message}");
        assert!(
            message.contains("registry.jwk"),
            "the refusal should name the key file: {message}"
        );
    }
    // The same configuration with the test switch on starts: the key was the only problem.
    let mut command = serve(&db, &tls)?;
    command.env("LADING_ALLOW_TEST_KEYS", "true");
    starts_listening(command)
}

/// (what is wrong, variables removed, a variable set to a path).
type TlsCase<'a> = (&'a str, Vec<&'a str>, Option<(&'a str, &'a Path)>);

#[test]
fn serve_refuses_to_start_without_tls() -> Result<()> {
    let db = TestDb::new()?;
    let tls = Tls::new()?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("registry.jwk");
    let mut command = lading()?;
    command
        .args(["keygen", "--kid", "registry:prod-2026", "--out"])
        .arg(&key);
    let made = run(command, QUICK)?;
    assert!(made.status.success(), "{}", stderr(&made));

    let missing = dir.path().join("missing.pem");
    let cases: [TlsCase<'_>; 4] = [
        (
            "no TLS settings",
            vec!["LADING_TLS_CERT", "LADING_TLS_KEY"],
            None,
        ),
        ("no TLS key", vec!["LADING_TLS_KEY"], None),
        ("no TLS certificate", vec!["LADING_TLS_CERT"], None),
        (
            "a missing certificate file",
            vec![],
            Some(("LADING_TLS_CERT", missing.as_path())),
        ),
    ];
    for (what, removed, replaced) in cases {
        let mut command = serve(&db, &tls)?;
        command.env("LADING_SIGNING_KEY", &key);
        for name in removed {
            command.env_remove(name);
        }
        if let Some((name, value)) = replaced {
            command.env(name, value);
        }
        let output = run(command, QUICK)?;
        assert!(!output.status.success(), "serve started with {what}");
        let message = stderr(&output);
        let clear = message.contains("tls_cert") || message.contains("certificate");
        assert!(clear, "{what}: unclear refusal: {message}");
    }
    // With TLS and a production key it starts.
    let mut command = serve(&db, &tls)?;
    command.env("LADING_SIGNING_KEY", &key);
    starts_listening(command)
}
