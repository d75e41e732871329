//! The consortium of `deploy/` run for real, as processes: what `docker compose -f
//! deploy/compose.yaml up` would run, where no container image can be pulled (compose's base
//! images need an image registry).
//!
//! Taken from `deploy/` as it is:
//! - the material: `deploy/consortium/issue-certificates.sh` (a copy of `deploy/consortium/`),
//!   run as compose's `pki` service runs it (`sh issue-certificates.sh LADING OUT`, `CA_DIR`
//!   apart), with the built `lading`;
//! - the configurations: `LADING_CONFIG` names the unmodified `deploy/consortium/*.toml`, the
//!   file compose's `LADING_CONFIG` names for each service;
//! - the environment: the variables compose sets for each service (read from compose.yaml), with
//!   `LADING_DATABASE_URL` a throwaway database per node (as the superuser that owns it, like
//!   compose's `lading` user of `postgres:15`);
//! - the steps: the `parties` import (its command line, and only its environment: no
//!   certificates, as compose mounts none there), the registry, the three replicas, `lading
//!   reconcile --registry https://localhost:<port>` as deploy/README.md runs it, and the
//!   healthcheck commands of compose.yaml, run with curl.
//!
//! What has to differ on one host, and only that:
//! - paths: compose mounts the material at `/etc/lading/...`; here each path setting of the
//!   `.toml` files is given by its `LADING_*` variable as the same path under a temporary
//!   directory standing for `/etc/lading` (the files must be where the `.toml` says, relative
//!   to it: a setting naming a file the script does not make fails here);
//! - ports: every node listens on 8443/8444 in its own container; here on a free loopback port
//!   each (`LADING_BIND`, `LADING_REPLICA_LISTEN`), and the URLs the nodes use for each other
//!   (`LADING_REPLICA_REGISTRY`, `LADING_REPLICA_PEERS`, `LADING_RECONCILE_REPLICAS`) are those
//!   of the `.toml` files with the port changed, the host names kept;
//! - host names: compose's network resolves the service names `registry`, `replica-shipper`, …
//!   which the certificates name (the replicas' certificates name nothing else, so a URL with
//!   127.0.0.1 would fail TLS verification, and no setting separates the address from the
//!   name). Each node runs in a mount namespace of its own (`unshare --mount`) with a hosts
//!   file mapping those names to 127.0.0.1 bound on `/etc/hosts`; the test's own requests use
//!   reqwest's `resolve`, and curl its `--resolve` (as compose's healthchecks do). Without
//!   mount namespaces (neither root nor user namespaces) the test says so and stops.
//!
//! The systemd units are checked with `systemd-analyze verify` when it is installed (in a mount
//! namespace with the built binary at `/usr/local/bin/lading`, the path they start).

#![cfg(test)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use lading_e2e::gen::{FixtureParties, GeneratorConfig, LedgerGenerator};
use lading_e2e::harness::{free_port, hand_over, lading_bin, repo_root, token, TestDb};
use reqwest::StatusCode;
use serde_json::Value;

/// The replicas of the consortium: (party, compose service = host name).
const REPLICAS: [(&str, &str); 3] = [
    ("shipper-acme", "replica-shipper"),
    ("carrier-oceanic", "replica-carrier"),
    ("customs-nl", "replica-customs"),
];

/// The whole test's deadline (it takes about 15 s).
const WITHIN: Duration = Duration::from_secs(50);

// ---------------------------------------------------------------------------------------------
// compose.yaml, read as text (the workspace has no YAML parser; the file's layout is regular)
// ---------------------------------------------------------------------------------------------

/// Per service: its `environment:` entries and its healthcheck's `test` command.
#[derive(Debug, Default)]
struct Service {
    environment: BTreeMap<String, String>,
    healthcheck: Option<Vec<String>>,
    command: Option<Vec<String>>,
}

fn compose_services(text: &str) -> Result<BTreeMap<String, Service>> {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut in_services = false;
    let mut current: Option<String> = None;
    let mut in_environment = false;
    let mut pending: Option<(String, String)> = None; // (key, the list so far)
    for line in text.lines() {
        if let Some((key, mut list)) = pending.take() {
            list.push_str(line.trim());
            if line.trim_end().ends_with(']') {
                let parsed: Vec<String> = serde_json::from_str(&list)
                    .with_context(|| format!("compose.yaml: {key}: {list}"))?;
                let service = services.entry(current.clone().context("a list outside a service")?);
                let service = service.or_default();
                match key.as_str() {
                    "test" => service.healthcheck = Some(parsed),
                    _ => service.command = Some(parsed),
                }
            } else {
                pending = Some((key, list));
            }
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_services = trimmed == "services:";
            current = None;
            continue;
        }
        if !in_services {
            continue;
        }
        if indent == 2 {
            current = Some(trimmed.trim_end_matches(':').to_owned());
            in_environment = false;
            continue;
        }
        let Some(name) = &current else { continue };
        if indent == 4 {
            in_environment = trimmed == "environment:";
        }
        if in_environment && indent == 6 {
            let (key, value) = trimmed.split_once(':').context("an environment entry")?;
            services
                .entry(name.clone())
                .or_default()
                .environment
                .insert(
                    key.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                );
        }
        for key in ["test", "command"] {
            if let Some(rest) = trimmed.strip_prefix(&format!("{key}: [")) {
                pending = Some((key.to_owned(), format!("[{rest}")));
                // A one-line list ends here.
                if rest.ends_with(']') {
                    let (key, list) = pending.take().context("just set")?;
                    let parsed: Vec<String> = serde_json::from_str(&list)
                        .with_context(|| format!("compose.yaml: {key}: {list}"))?;
                    let service = services.entry(name.clone()).or_default();
                    match key.as_str() {
                        "test" => service.healthcheck = Some(parsed),
                        _ => service.command = Some(parsed),
                    }
                }
            }
        }
    }
    Ok(services)
}

// ---------------------------------------------------------------------------------------------
// Running nodes
// ---------------------------------------------------------------------------------------------

/// How a process is given the consortium's host names: a private mount namespace with our hosts
/// file on `/etc/hosts`.
#[derive(Debug, Clone)]
struct Namespace {
    hosts: PathBuf,
    /// `unshare` options: `--mount`, and `--map-root-user` when not root.
    unshare: Vec<&'static str>,
}

impl Namespace {
    /// A hosts file naming every node 127.0.0.1, if some way of bind-mounting it works here.
    fn new(dir: &Path, names: &[&str]) -> Result<Option<Self>> {
        let hosts = dir.join("hosts");
        std::fs::write(
            &hosts,
            format!(
                "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {}\n",
                names.join(" ")
            ),
        )?;
        for unshare in [vec!["--mount"], vec!["--mount", "--map-root-user"]] {
            let ns = Self {
                hosts: hosts.clone(),
                unshare,
            };
            let probe = ns
                .command(Path::new("getent"))
                .args(["hosts", names[0]])
                .stderr(Stdio::null())
                .output();
            if probe.is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("127.0.0.1")
            }) {
                return Ok(Some(ns));
            }
        }
        Ok(None)
    }

    /// `program` in a mount namespace of its own that sees our hosts file as `/etc/hosts`
    /// (`unshare` and `sh` exec, so the child's pid is the program's).
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(&self.unshare)
            .args([
                "--",
                "sh",
                "-c",
                r#"mount --bind "$0" /etc/hosts && exec "$@""#,
            ])
            .arg(&self.hosts)
            .arg(program);
        cmd
    }
}

/// A running `lading serve` or `lading replica`, killed when dropped.
struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lading <command>` with `env` (over a cleared `LADING_*` environment) in `ns`, once it
/// printed a line starting with `ready`.
fn start_node(
    ns: &Namespace,
    command: &str,
    env: &BTreeMap<String, String>,
    ready: &'static str,
) -> Result<Node> {
    let mut cmd = ns.command(&lading_bin()?);
    cmd.arg(command);
    for (key, _) in std::env::vars() {
        if key.starts_with("LADING_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env)
        .env(
            "RUST_LOG",
            std::env::var("LADING_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    hand_over(&mut cmd)?;
    let mut child = cmd.spawn().context("unshare")?;
    if let Err(e) = lading_e2e::harness::wait_for_line(&mut child, ready, Duration::from_secs(30)) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.context(format!("lading {command}")));
    }
    Ok(Node { child })
}

/// `lading <args>` with exactly `env` for its `LADING_*` settings; its stdout, or an error.
fn run(args: &[&str], env: &BTreeMap<String, String>) -> Result<String> {
    let mut cmd = Command::new(lading_bin()?);
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LADING_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.envs(env).output()?;
    ensure!(
        out.status.success(),
        "lading {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------------------------
// The configuration files
// ---------------------------------------------------------------------------------------------

/// A `.toml` of `deploy/consortium/`.
fn toml_file(path: &Path) -> Result<toml::Value> {
    Ok(toml::from_str(&std::fs::read_to_string(path)?)?)
}

fn setting<'a>(config: &'a toml::Value, dotted: &str) -> Result<&'a toml::Value> {
    dotted
        .split('.')
        .try_fold(config, |v, key| v.get(key))
        .with_context(|| format!("{dotted} is not set"))
}

fn setting_str<'a>(config: &'a toml::Value, dotted: &str) -> Result<&'a str> {
    setting(config, dotted)?
        .as_str()
        .with_context(|| format!("{dotted} is not a string"))
}

/// `/etc/lading/<rest>` as the same path under `etc` (the directory standing for `/etc/lading`),
/// which must exist.
fn under(etc: &Path, path: &str) -> Result<String> {
    let rest = path
        .strip_prefix("/etc/lading/")
        .with_context(|| format!("{path} is not under /etc/lading"))?;
    let here = etc.join(rest);
    ensure!(
        here.is_file(),
        "{path} (the configuration's) is not a file the set-up made: {}",
        here.display()
    );
    Ok(here.display().to_string())
}

/// `https://host:port` → (host, port).
fn host_port(url: &str) -> Result<(String, u16)> {
    let rest = url.strip_prefix("https://").context("an https URL")?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .context("a URL with a port")?;
    Ok((host.to_owned(), port.parse()?))
}

/// `url` with its port changed to the one its host listens on here.
fn moved(url: &str, ports: &BTreeMap<String, u16>) -> Result<String> {
    let (host, _) = host_port(url)?;
    let port = ports
        .get(&host)
        .with_context(|| format!("{url} names no node of the consortium"))?;
    Ok(format!("https://{host}:{port}"))
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// An HTTPS client trusting the consortium CA, presenting `identity` (cert and key files) if
/// given, resolving every node's name to 127.0.0.1.
fn client(ca: &Path, identity: Option<(&Path, &Path)>, names: &[&str]) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .timeout(Duration::from_secs(10));
    for name in names {
        // The port of the URL is used; this one is ignored.
        builder = builder.resolve(name, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert)?;
        pem.extend(std::fs::read(key)?);
        builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
    }
    Ok(builder.build()?)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<(StatusCode, Value)> {
    let response = client.get(url).send().await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Polls `probe` every 100 ms until it gives `Some`, up to the test's deadline.
async fn wait_until<T, F, Fut>(what: &str, deadline: Instant, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let mut last = String::new();
    loop {
        match probe().await {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The registry's replication feed as the party `client` presents: every entry, paged.
async fn feed(client: &reqwest::Client, registry: &str) -> Result<Vec<Value>> {
    let mut got: Vec<Value> = Vec::new();
    loop {
        let (status, body) = get_json(
            client,
            &format!("{registry}/v1/replication/entries?from={}", got.len()),
        )
        .await?;
        ensure!(status == StatusCode::OK, "the feed: {status} {body}");
        let page = body["entries"].as_array().context("entries")?;
        if page.is_empty() {
            return Ok(got);
        }
        got.extend(page.iter().cloned());
    }
}

/// A replica's `GET /v1/entries`: every verified leaf and whether it holds it in full.
async fn replica_entries(client: &reqwest::Client, replica: &str) -> Result<Vec<Value>> {
    let mut got: Vec<Value> = Vec::new();
    loop {
        let (status, body) = get_json(
            client,
            &format!("{replica}/v1/entries?from={}&limit=1000", got.len()),
        )
        .await?;
        ensure!(
            status == StatusCode::OK,
            "the replica's entries: {status} {body}"
        );
        let page = body["entries"].as_array().context("entries")?;
        if page.is_empty() {
            return Ok(got);
        }
        got.extend(page.iter().cloned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_consortium_runs_as_processes_follows_reconciles_and_answers_its_healthchecks(
) -> Result<()> {
    let started = Instant::now();
    let deadline = started + WITHIN;
    let root = repo_root();
    let deploy = root.join("deploy");
    let bin = lading_bin()?;
    let compose = compose_services(&std::fs::read_to_string(deploy.join("compose.yaml"))?)?;

    // What compose sets, and nothing else: the test relies on it.
    let keys = |service: &str| -> Result<Vec<String>> {
        Ok(compose
            .get(service)
            .with_context(|| format!("compose.yaml has no service {service}"))?
            .environment
            .keys()
            .cloned()
            .collect())
    };
    assert_eq!(keys("pki")?, ["CA_DIR"]);
    assert_eq!(
        keys("parties")?,
        [
            "LADING_ALLOW_TEST_KEYS",
            "LADING_CONFIG",
            "LADING_DATABASE_URL"
        ]
    );
    for service in [
        "registry",
        "replica-shipper",
        "replica-carrier",
        "replica-customs",
    ] {
        assert_eq!(
            keys(service)?,
            ["LADING_CONFIG", "LADING_DATABASE_URL"],
            "{service}"
        );
    }

    // --- pki: deploy/consortium/ copied, its script run as compose's `pki` service does ---
    let tmp = tempfile::Builder::new()
        .prefix("lading-deploy-")
        .tempdir()?;
    let consortium = tmp.path().join("consortium");
    std::fs::create_dir(&consortium)?;
    for entry in std::fs::read_dir(deploy.join("consortium"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), consortium.join(entry.file_name()))?;
    }
    // `/etc/lading` of the containers: pki/ (the volume), parties.json and tokens.json (mounted
    // from fixtures/).
    let etc = tmp.path().join("etc-lading");
    std::fs::create_dir(&etc)?;
    let pki_service = &compose["pki"];
    let pki_args = pki_service.command.as_ref().context("pki's command")?;
    assert_eq!(pki_args, &["/usr/local/bin/lading", "/etc/lading/pki"]);
    assert_eq!(pki_service.environment["CA_DIR"], "/var/lib/lading-ca");
    let out = Command::new("sh")
        .arg(consortium.join("issue-certificates.sh"))
        .arg(&bin)
        .arg(etc.join("pki"))
        .env("CA_DIR", tmp.path().join("lading-ca"))
        .output()?;
    ensure!(
        out.status.success(),
        "issue-certificates.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Run again, it keeps everything (compose runs it at every `up`).
    let before = std::fs::read(etc.join("pki/registry/registry.jwk"))?;
    let again = Command::new("sh")
        .arg(consortium.join("issue-certificates.sh"))
        .arg(&bin)
        .arg(etc.join("pki"))
        .env("CA_DIR", tmp.path().join("lading-ca"))
        .output()?;
    ensure!(again.status.success(), "issue-certificates.sh, again");
    assert_eq!(
        std::fs::read(etc.join("pki/registry/registry.jwk"))?,
        before
    );
    for file in ["parties.json", "tokens.json"] {
        std::fs::copy(root.join("fixtures").join(file), etc.join(file))?;
    }

    // --- host names, ports ---
    let names: Vec<&str> = std::iter::once("registry")
        .chain(REPLICAS.iter().map(|(_, host)| *host))
        .collect();
    let Some(ns) = Namespace::new(tmp.path(), &names)? else {
        eprintln!(
            "SKIPPED deploy_consortium: no mount namespace here (`unshare --mount` needs root or \
             user namespaces), so the nodes cannot resolve the host names their certificates \
             carry (registry, replica-shipper, ...)"
        );
        return Ok(());
    };
    let mut ports: BTreeMap<String, u16> = BTreeMap::new();
    for name in &names {
        ports.insert((*name).to_owned(), free_port()?);
    }

    // The configuration files, as compose names them (LADING_CONFIG=/etc/lading/<file>).
    let config_of = |service: &str| -> Result<PathBuf> {
        let in_container = &compose[service].environment["LADING_CONFIG"];
        let file = in_container
            .strip_prefix("/etc/lading/")
            .context("LADING_CONFIG under /etc/lading")?;
        let path = deploy.join("consortium").join(file);
        ensure!(path.is_file(), "{in_container}: no {}", path.display());
        Ok(path)
    };

    // --- parties: the import, with compose's command line and environment only ---
    let registry_db = tokio::task::spawn_blocking(TestDb::new).await??;
    let registry_toml_path = config_of("registry")?;
    let parties_cmd = compose["parties"]
        .command
        .as_ref()
        .context("parties' command")?;
    assert_eq!(
        parties_cmd,
        &[
            "import-parties",
            "/etc/lading/parties.json",
            "--tokens",
            "/etc/lading/tokens.json"
        ]
    );
    assert_eq!(config_of("parties")?, registry_toml_path);
    let import_args: Vec<String> = parties_cmd
        .iter()
        .map(|arg| {
            if arg.starts_with("/etc/lading/") {
                under(&etc, arg)
            } else {
                Ok(arg.clone())
            }
        })
        .collect::<Result<_>>()?;
    let import_args: Vec<&str> = import_args.iter().map(String::as_str).collect();
    let import_env: BTreeMap<String, String> = [
        (
            "LADING_CONFIG".to_owned(),
            registry_toml_path.display().to_string(),
        ),
        ("LADING_DATABASE_URL".to_owned(), registry_db.url.clone()),
        (
            "LADING_ALLOW_TEST_KEYS".to_owned(),
            compose["parties"].environment["LADING_ALLOW_TEST_KEYS"].clone(),
        ),
    ]
    .into();
    run(&import_args, &import_env)?;

    // --- registry ---
    let registry_toml = toml_file(&registry_toml_path)?;
    let registry_port = ports["registry"];
    let (_, bind_port) = setting_str(&registry_toml, "server.bind")?
        .rsplit_once(':')
        .context("server.bind")?;
    assert_eq!(bind_port, "8443");
    let mut registry_env: BTreeMap<String, String> = [
        (
            "LADING_CONFIG".to_owned(),
            registry_toml_path.display().to_string(),
        ),
        ("LADING_DATABASE_URL".to_owned(), registry_db.url.clone()),
        (
            "LADING_BIND".to_owned(),
            format!("127.0.0.1:{registry_port}"),
        ),
    ]
    .into();
    for (dotted, var) in [
        ("server.tls_cert", "LADING_TLS_CERT"),
        ("server.tls_key", "LADING_TLS_KEY"),
        ("server.client_ca", "LADING_CLIENT_CA"),
        ("registry.signing_key", "LADING_SIGNING_KEY"),
        ("reconcile.cert", "LADING_RECONCILE_CERT"),
        ("reconcile.key", "LADING_RECONCILE_KEY"),
        ("reconcile.ca", "LADING_RECONCILE_CA"),
    ] {
        registry_env.insert(
            var.to_owned(),
            under(&etc, setting_str(&registry_toml, dotted)?)?,
        );
    }
    let mut targets = Vec::new();
    let mut reconciled: BTreeMap<String, String> = BTreeMap::new();
    for replica in setting(&registry_toml, "reconcile.replicas")?
        .as_array()
        .context("reconcile.replicas")?
    {
        let party = setting_str(replica, "party")?;
        let url = setting_str(replica, "url")?;
        reconciled.insert(party.to_owned(), host_port(url)?.0);
        targets.push(format!("{party}={}", moved(url, &ports)?));
    }
    assert_eq!(
        reconciled,
        REPLICAS
            .iter()
            .map(|(p, h)| ((*p).to_owned(), (*h).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        "registry.toml reconciles the three replicas at their service names"
    );
    registry_env.insert("LADING_RECONCILE_REPLICAS".into(), targets.join(","));
    let registry = {
        let (ns, env) = (ns.clone(), registry_env.clone());
        tokio::task::spawn_blocking(move || start_node(&ns, "serve", &env, "listening on "))
            .await??
    };
    let registry_url = format!("https://registry:{registry_port}");

    // --- the three replicas ---
    let mut replicas = Vec::new();
    for (party, host) in REPLICAS {
        let path = config_of(host)?;
        let config = toml_file(&path)?;
        let db = tokio::task::spawn_blocking(TestDb::new).await??;
        let (_, listen_port) = setting_str(&config, "replica.listen")?
            .rsplit_once(':')
            .context("replica.listen")?;
        assert_eq!(listen_port, "8444", "{host}");
        let registry_in_file = setting_str(&config, "replica.registry")?;
        assert_eq!(host_port(registry_in_file)?, ("registry".into(), 8443));
        let peers: Vec<String> = setting(&config, "replica.peers")?
            .as_array()
            .context("replica.peers")?
            .iter()
            .map(|p| moved(p.as_str().context("a peer URL")?, &ports))
            .collect::<Result<_>>()?;
        let mut expected_peers: Vec<String> = REPLICAS
            .iter()
            .filter(|(_, h)| *h != host)
            .map(|(_, h)| format!("https://{h}:{}", ports[*h]))
            .collect();
        expected_peers.sort();
        let mut sorted = peers.clone();
        sorted.sort();
        assert_eq!(sorted, expected_peers, "{host}'s peers are the other two");
        let mut env: BTreeMap<String, String> = [
            ("LADING_CONFIG".to_owned(), path.display().to_string()),
            ("LADING_DATABASE_URL".to_owned(), db.url.clone()),
            (
                "LADING_REPLICA_LISTEN".to_owned(),
                format!("127.0.0.1:{}", ports[host]),
            ),
            (
                "LADING_REPLICA_REGISTRY".to_owned(),
                moved(registry_in_file, &ports)?,
            ),
            ("LADING_REPLICA_PEERS".to_owned(), peers.join(",")),
        ]
        .into();
        for (dotted, var) in [
            ("replica.ca", "LADING_REPLICA_CA"),
            ("replica.cert", "LADING_REPLICA_CERT"),
            ("replica.key", "LADING_REPLICA_KEY"),
            ("replica.parties", "LADING_REPLICA_PARTIES"),
            ("replica.registry_key", "LADING_REPLICA_REGISTRY_KEY"),
        ] {
            env.insert(var.to_owned(), under(&etc, setting_str(&config, dotted)?)?);
        }
        // Each party's material is its own directory (what its host is given).
        assert!(
            env["LADING_REPLICA_CERT"].contains(&format!("/pki/{party}/")),
            "{host}: {}",
            env["LADING_REPLICA_CERT"]
        );
        let node = {
            let ns = ns.clone();
            tokio::task::spawn_blocking(move || start_node(&ns, "replica", &env, "serving "))
                .await??
        };
        replicas.push((party, host, db, node));
    }

    // --- clients: the test's own, with the consortium's material ---
    let pki = etc.join("pki");
    let ca = pki.join("registry/ca.crt.pem");
    let plain = client(&ca, None, &names)?;
    let registry_client = client(
        &ca,
        Some((
            &pki.join("registry/registry.crt.pem"),
            &pki.join("registry/registry.key.pem"),
        )),
        &names,
    )?;
    let party_client = |party: &str| {
        client(
            &ca,
            Some((
                &pki.join(format!("{party}/{party}.crt.pem")),
                &pki.join(format!("{party}/{party}.key.pem")),
            )),
            &names,
        )
    };

    // --- signed transitions, of now (the registry's default five minutes of clock skew) ---
    let parties = FixtureParties::load()?;
    let mut config = GeneratorConfig::new(8, 2, 0xDE9_10C5);
    config.reference_prefix = "DEPLOY".into();
    config.in_flight = 4;
    config.start = lading_domain::Timestamp::from_datetime_truncated(chrono::Utc::now());
    config.step_millis = 10;
    let mut generator = LedgerGenerator::new(&parties, config)?;
    let mut submitted = Vec::new();
    while let Some(t) = generator.next_transition()? {
        // Writes need a credential (require_write_credential's default): the actor's token,
        // imported from tokens.json by the `parties` step.
        let response = plain
            .post(format!("{registry_url}/v1/transitions"))
            .header("content-type", "application/jose")
            .bearer_auth(token(t.actor.as_str())?)
            .body(t.compact.clone())
            .send()
            .await?;
        let status = response.status();
        ensure!(
            status == StatusCode::CREATED,
            "{status}: {}",
            response.text().await?
        );
        submitted.push(t);
    }
    // The registry's size: the parties' statements and the transitions.
    let (_, ready) = get_json(&plain, &format!("{registry_url}/readyz")).await?;
    let size = wait_until("a checkpoint over everything", deadline, || async {
        let (_, checkpoint) = get_json(&plain, &format!("{registry_url}/v1/checkpoint")).await?;
        let (_, ready) = get_json(&plain, &format!("{registry_url}/readyz")).await?;
        let size = ready["size"].as_u64().context("readyz size")?;
        Ok(
            (size >= submitted.len() as u64 && checkpoint["size"].as_u64() == Some(size))
                .then_some(size),
        )
    })
    .await?;
    eprintln!(
        "deploy_consortium: {} transitions submitted, ledger size {size} (readyz {ready})",
        submitted.len()
    );

    // --- every replica follows: its face says it holds and verified everything ---
    for (party, host, _, _) in &replicas {
        let client = party_client(party)?;
        let url = format!("https://{host}:{}/v1/status", ports[*host]);
        let status = wait_until(&format!("{host} to follow"), deadline, || async {
            let (code, body) = get_json(&client, &url).await?;
            Ok((code == StatusCode::OK
                && body["size"] == size
                && body["checkpoint"]["size"] == size)
                .then_some(body))
        })
        .await?;
        assert_eq!(status["party"], *party, "{status}");
        assert_eq!(status["lag"], 0, "{status}");
        assert_eq!(
            status["openIncidents"],
            serde_json::json!([]),
            "{host}: {status}"
        );
    }

    // --- peers: what each node asks the others for (the nodes log failures at debug only) ---
    for (party, host, _, _) in &replicas {
        let client = party_client(party)?;
        for (_, peer) in REPLICAS.iter().filter(|(_, h)| h != host) {
            let url = format!("https://{peer}:{}/v1/checkpoints", ports[*peer]);
            let (code, body) = get_json(&client, &url).await?;
            assert_eq!(code, StatusCode::OK, "{party} at {url}: {body}");
        }
    }

    // --- `lading reconcile`, as deploy/README.md runs it inside the registry's container ---
    let out = run(
        &[
            "reconcile",
            "--registry",
            &format!("https://localhost:{registry_port}"),
        ],
        &registry_env,
    )?;
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), REPLICAS.len(), "{out}");
    for (party, _) in REPLICAS {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{party}: agree"))),
            "{party} not reconciled as agreeing: {out}"
        );
    }
    let (code, seen) = get_json(&registry_client, &format!("{registry_url}/v1/replicas")).await?;
    assert_eq!(code, StatusCode::OK, "{seen}");
    let seen = seen["replicas"].as_array().context("replicas")?;
    assert_eq!(seen.len(), REPLICAS.len(), "{seen:?}");
    for replica in seen {
        assert_eq!(
            replica["lastReconciliation"]["outcome"], "agree",
            "{replica}"
        );
    }

    // --- each replica holds what the registry holds, as far as its party may see it ---
    let (_, checkpoint) = get_json(&plain, &format!("{registry_url}/v1/checkpoint")).await?;
    for (party, host, _, _) in &replicas {
        let client = party_client(party)?;
        let base = format!("https://{host}:{}", ports[*host]);
        let from_registry = feed(&client, &registry_url).await?;
        let held = replica_entries(&client, &base).await?;
        assert_eq!(from_registry.len() as u64, size, "{party}'s feed");
        assert_eq!(held.len() as u64, size, "{host}'s entries");
        let mut full = 0;
        for (theirs, ours) in from_registry.iter().zip(&held) {
            assert_eq!(theirs["index"], ours["index"], "{host}");
            assert_eq!(
                theirs["leafHash"], ours["leafHash"],
                "{host} #{}",
                ours["index"]
            );
            let readable = theirs.get("signed").is_some();
            assert_eq!(
                ours.get("kind").is_some(),
                readable,
                "{host} #{}: holds in full exactly what its party may read",
                ours["index"]
            );
            full += u64::from(readable);
        }
        let (_, status) = get_json(&client, &format!("{base}/v1/status")).await?;
        assert_eq!(status["root"], checkpoint["root"], "{host}: {status}");
        // The documents its party may read: the registry's state, as the replica verified it.
        let mut documents = 0;
        let mut hidden = 0;
        let references: std::collections::BTreeSet<String> =
            submitted.iter().map(|t| t.reference.to_string()).collect();
        for reference in &references {
            let response = plain
                .get(format!("{registry_url}/v1/documents/{reference}"))
                .bearer_auth(token(party)?)
                .send()
                .await?;
            let (code, at_replica) =
                get_json(&client, &format!("{base}/v1/documents/{reference}")).await?;
            if response.status() == StatusCode::OK {
                let at_registry: Value = response.json().await?;
                assert_eq!(code, StatusCode::OK, "{host} {reference}: {at_replica}");
                assert_eq!(
                    at_replica["state"], at_registry["state"],
                    "{host} {reference}"
                );
                documents += 1;
            } else {
                assert_ne!(
                    code,
                    StatusCode::OK,
                    "{host} serves {reference}, hidden from {party}"
                );
                hidden += 1;
            }
        }
        eprintln!(
            "deploy_consortium: {host}: {size} leaves, {full} held in full, {documents} documents \
             readable, {hidden} not"
        );
        assert!(documents > 0, "{party} reads none of the documents");
        // The generator's documents are the two carriers', between several holders, on several
        // lanes: no party of the three reads them all.
        assert!(hidden > 0, "{party} reads every document");
    }

    // --- compose's healthchecks, as compose runs them (curl), with this host's paths/ports ---
    let curl = Command::new("curl").arg("--version").output().is_ok();
    for service in [
        "registry",
        "replica-shipper",
        "replica-carrier",
        "replica-customs",
    ] {
        let test = compose[service]
            .healthcheck
            .as_ref()
            .with_context(|| format!("{service} has no healthcheck"))?;
        assert_eq!(test[..2], ["CMD", "curl"], "{service}");
        let container_port = if service == "registry" {
            "8443"
        } else {
            "8444"
        };
        let port = ports[service].to_string();
        let args: Vec<String> = test[2..]
            .iter()
            .map(|arg| {
                if arg.starts_with("/etc/lading/") {
                    under(&etc, arg)
                } else {
                    Ok(arg.replace(&format!(":{container_port}"), &format!(":{port}")))
                }
            })
            .collect::<Result<_>>()?;
        let url = args.last().context("a URL")?;
        // Without a client certificate, as the healthcheck asks.
        let (code, body) = get_json(&plain, url).await?;
        assert_eq!(code, StatusCode::OK, "{service}: {url}: {body}");
        if curl {
            let out = Command::new("curl").args(&args).output()?;
            assert!(
                out.status.success(),
                "{service}'s healthcheck: curl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            eprintln!("deploy_consortium: no curl here; {service}'s healthcheck URL checked with reqwest only");
        }
    }

    // Still running, every one.
    drop(registry);
    for (_, host, _db, mut node) in replicas {
        ensure!(
            node.child.try_wait()?.is_none(),
            "{host} exited during the test"
        );
        drop(node);
    }
    drop(registry_db);
    let took = started.elapsed();
    eprintln!("deploy_consortium: took {:.1} s", took.as_secs_f64());
    assert!(took < WITHIN, "took {took:?}");
    Ok(())
}

/// The systemd units of deploy/, with `systemd-analyze verify` when it is installed.
#[test]
fn the_systemd_units_verify() -> Result<()> {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED the_systemd_units_verify: systemd-analyze is not installed");
        return Ok(());
    };
    ensure!(version.status.success(), "systemd-analyze --version");
    let tmp = tempfile::tempdir()?;
    let deploy = repo_root().join("deploy");
    std::fs::copy(
        deploy.join("lading-registry.service"),
        tmp.path().join("lading-registry.service"),
    )?;
    // The template as the instances README (c) enables.
    let mut units = vec!["lading-registry.service".to_owned()];
    for instance in ["shipper", "carrier", "customs"] {
        let unit = format!("lading-replica@{instance}.service");
        std::fs::copy(
            deploy.join("lading-replica@.service"),
            tmp.path().join(&unit),
        )?;
        units.push(unit);
    }
    // ExecStart= is /usr/local/bin/lading, which verify wants to exist: in a mount namespace, the
    // built binary there on a tmpfs; without one, the units as they are and that one complaint
    // forgiven.
    let script = format!(
        r#"mount -t tmpfs tmpfs /usr/local/bin && cp "$0" /usr/local/bin/lading && cd "$1" && exec systemd-analyze verify {}"#,
        units
            .iter()
            .map(|u| format!("./{u}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let bin = lading_bin()?;
    let mut out = None;
    for unshare in [vec!["--mount"], vec!["--mount", "--map-root-user"]] {
        let tried = Command::new("unshare")
            .args(&unshare)
            .args(["--", "sh", "-c", &script])
            .arg(&bin)
            .arg(tmp.path())
            .output();
        if let Ok(o) = tried {
            if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("mount") {
                out = Some((o, false));
                break;
            }
        }
    }
    let (out, forgiving) = match out {
        Some(found) => found,
        None => (
            Command::new("systemd-analyze")
                .arg("verify")
                .args(units.iter().map(|u| format!("./{u}")))
                .current_dir(tmp.path())
                .output()?,
            true,
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !(forgiving && l.contains("/usr/local/bin/lading is not executable")))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {}",
        complaints.join("\n")
    );
    assert!(
        out.status.success() || forgiving,
        "systemd-analyze verify: {stderr}"
    );
    Ok(())
}
