//! `lading demo` as a person runs it: it comes up with the sample bills of lading, serves them
//! over its self-signed TLS, stops cleanly on Ctrl-C (SIGINT) without leaving PostgreSQL
//! behind, and a second run on the same data directory finds the same ledger.

// Test-only crate: lets the helpers below use the test allowances of `clippy.toml`.
#![cfg(test)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::jws::Jwk;
use lading_e2e::harness::{lading_bin, repo_root, signal, token};
use serde_json::Value;

/// What one run of the demo served.
#[derive(Debug, PartialEq, Eq)]
struct Ledger {
    size: u64,
    root: String,
}

/// Transitions and events in `fixtures/samples.json`: what the demo loads.
fn sample_count() -> (u64, String) {
    let samples: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("fixtures/samples.json")).unwrap(),
    )
    .unwrap();
    let chains = samples["chains"].as_array().unwrap();
    let transitions: usize = chains
        .iter()
        .map(|c| c["transitions"].as_array().unwrap().len())
        .sum();
    let events = samples["events"].as_array().unwrap().len();
    let first = chains[0]["reference"].as_str().unwrap().to_owned();
    ((transitions + events) as u64, first)
}

/// Command lines of the live processes that mention `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

fn is_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie's state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lading demo did not exit within {within:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port whose next `len - 1` ports are free too: the demo serves its replicas, its operator
/// view and its portals on the ports after the registry's.
fn free_port_run(len: u16) -> u16 {
    for _ in 0..100 {
        // Probed, not reserved: the demo binds its ports itself.
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let free = (0..len).all(|i| {
            base.checked_add(i)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no run of {len} free ports");
}

/// A web portal the demo printed: what it is, where, and its users with their passwords.
#[derive(Debug)]
struct DemoPortal {
    title: String,
    url: String,
    users: Vec<(String, String)>,
}

/// Signs in to a portal as a browser does: the sign-in page's form token and cookie, a form
/// posted with the portal's origin, then the session cookie.
struct DemoBrowser {
    client: reqwest::blocking::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl DemoBrowser {
    fn new(ca: &[u8], base: &str) -> Self {
        let client = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            client,
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::blocking::Response) {
        for line in response.headers().get_all("set-cookie") {
            let pair = line.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Posts the sign-in form; the answer's status.
    fn try_sign_in(&mut self, username: &str, password: &str) -> u16 {
        let form = self
            .client
            .get(format!("{}/login", self.base))
            .send()
            .unwrap();
        assert_eq!(form.status().as_u16(), 200);
        self.keep_cookies(&form);
        let body = form.text().unwrap();
        let marker = "name=\"csrf\" value=\"";
        let at = body.find(marker).unwrap() + marker.len();
        let csrf = body[at..at + body[at..].find('"').unwrap()].to_owned();
        let answer = self
            .client
            .post(format!("{}/login", self.base))
            .header("origin", &self.base)
            .header("cookie", self.cookie_header())
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ])
            .send()
            .unwrap();
        self.keep_cookies(&answer);
        answer.status().as_u16()
    }

    /// Signs in and follows to the first page: its HTML.
    fn sign_in(&mut self, username: &str, password: &str) -> String {
        assert_eq!(self.try_sign_in(username, password), 303, "{username}");
        let page = self
            .client
            .get(format!("{}/", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        page.text().unwrap()
    }
}

/// Runs the demo on `dir` until it has served its samples, then stops it with SIGINT.
fn run_demo(dir: &Path) -> Ledger {
    let port = free_port_run(8);
    let mut child = Command::new(lading_bin().unwrap())
        .arg("demo")
        .arg("--data-dir")
        .arg(dir)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .env("LADING_CONFIG", "/dev/null")
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Read stdout to the end on a thread (the demo must never block on a full pipe).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let base = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("Lading demo registry: ") {
                    break url.trim().to_owned();
                }
            }
            Err(_) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("lading demo exited before serving: {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "lading demo did not announce itself in time"
                );
            }
        }
    };
    assert_eq!(base, format!("https://127.0.0.1:{port}"));
    // Then its three replicas, each on the next port.
    let mut replicas = Vec::new();
    while replicas.len() < 3 {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if let Some(rest) = line.strip_prefix("Lading demo replica of ") {
            let (party, url) = rest.split_once(": ").unwrap();
            replicas.push((party.to_owned(), url.trim().to_owned()));
        }
    }
    let parties: Vec<&str> = replicas.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(parties, ["shipper-acme", "carrier-oceanic", "customs-nl"]);
    // Then its web portals, each with its users and their passwords, until the last line.
    let mut portals: Vec<DemoPortal> = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        if let Some(rest) = line.strip_prefix("Lading demo ") {
            let (title, url) = rest.split_once(": ").unwrap();
            portals.push(DemoPortal {
                title: title.to_owned(),
                url: url.trim().to_owned(),
                users: Vec::new(),
            });
        } else if let Some(rest) = line.trim_start().strip_prefix("sign in as ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(words[1], "password", "{line}");
            portals
                .last_mut()
                .unwrap()
                .users
                .push((words[0].to_owned(), words[2].to_owned()));
        }
    }
    let titles: Vec<&str> = portals.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "operator view",
            "portal of shipper-acme",
            "portal of carrier-oceanic",
            "portal of customs-nl"
        ]
    );
    assert_eq!(portals[0].users.len(), 1);
    for portal in &portals[1..] {
        let names: Vec<&str> = portal.users.iter().map(|(u, _)| u.as_str()).collect();
        let party = portal.title.trim_start_matches("portal of ");
        assert_eq!(
            names,
            ["viewer", "clerk", "signer", "admin"].map(|r| format!("{r}@{party}")),
            "one user of each role"
        );
    }

    let cert = std::fs::read(dir.join("consortium/ca/ca.crt.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (samples, first_reference) = sample_count();

    // Every portal answers over HTTPS with the consortium's certificate, and a printed user
    // signs in with the printed password (the operator at the registry's view; at each party's
    // portal, its admin): the page behind the sign-in is then theirs.
    for portal in &portals {
        let (username, password) = portal.users.last().unwrap();
        let mut session = DemoBrowser::new(&cert, &portal.url);
        let home = session.sign_in(username, password);
        assert!(home.contains(username.as_str()), "{}: {home}", portal.title);
        // A wrong password is refused.
        let mut other = DemoBrowser::new(&cert, &portal.url);
        assert_eq!(other.try_sign_in(username, "not the password"), 401);
    }

    // The samples are on the ledger, sealed by a checkpoint the registry's key signed.
    let checkpoint = loop {
        let response = client.get(format!("{base}/v1/checkpoint")).send().unwrap();
        if response.status().as_u16() == 200 {
            let c: Value = response.json().unwrap();
            if c["size"].as_u64() == Some(samples) {
                break c;
            }
            assert!(
                c["size"].as_u64().unwrap() < samples,
                "more than the samples: {c}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of the {samples} samples in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let key: Jwk = client
        .get(format!("{base}/v1/registry/key"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let published: Jwk =
        serde_json::from_str(&std::fs::read_to_string(dir.join("registry.pub.jwk")).unwrap())
            .unwrap();
    assert_eq!(key, published);
    let signed = SignedCheckpoint::parse(checkpoint["signed"].as_str().unwrap()).unwrap();
    let content = signed.verify(&key.verifying_key().unwrap()).unwrap();
    assert_eq!(content.size, samples);
    assert_eq!(content.root.to_hex(), checkpoint["root"].as_str().unwrap());

    // A sample document, read with the carrier's fixture token; without a token it is refused.
    let response = client
        .get(format!("{base}/v1/documents/{first_reference}"))
        .bearer_auth(token("carrier-oceanic").unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = response.json().unwrap();
    assert_eq!(
        document["reference"].as_str(),
        Some(first_reference.as_str())
    );
    assert_eq!(
        document["transportDocument"]["carrier"].as_str(),
        Some("carrier-oceanic"),
        "{document}"
    );
    let anonymous = client
        .get(format!("{base}/v1/documents/{first_reference}"))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // Each replica follows the registry over mutual TLS and verifies the same checkpoint;
    // the registry reconciles them, and they agree.
    let as_party = |who: &str| {
        let mut pem = std::fs::read(dir.join(format!("consortium/{who}.crt.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("consortium/{who}.key.pem"))).unwrap());
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    for (party, url) in &replicas {
        let own = as_party(party);
        loop {
            let status: Value = own
                .get(format!("{url}/v1/status"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            if status["size"] == samples && status["checkpoint"]["size"] == samples {
                assert_eq!(status["party"], party.as_str());
                assert_eq!(status["root"], checkpoint["root"]);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{party}'s replica did not catch up: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let operator = as_party("registry");
    let report: Value = operator
        .post(format!("{base}/v1/replicas/customs-nl/reconcile"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(report["outcome"], "agree", "{report}");
    let listed: Value = operator
        .get(format!("{base}/v1/replicas"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["replicas"].as_array().unwrap().len(), 3, "{listed}");

    // Ctrl-C: a clean exit, and the embedded PostgreSQL goes with it.
    let pgdata = dir.join("postgres/pgdata");
    let postmaster: u32 = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(postmaster));
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(
        status.success(),
        "lading demo exited with {status} after SIGINT"
    );
    let gone = Instant::now() + Duration::from_secs(10);
    while is_alive(postmaster) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !is_alive(postmaster),
        "the demo's postmaster {postmaster} outlived it"
    );
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "processes left on the data dir: {left:?}");
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "PostgreSQL did not shut down cleanly"
    );

    Ledger {
        size: content.size,
        root: content.root.to_hex(),
    }
}

#[test]
fn demo_serves_the_samples_stops_on_sigint_and_restarts_with_the_same_ledger() {
    // Searchable by the `postgres` account, which runs the server when tests run as root.
    let dir = tempfile::Builder::new()
        .prefix("lading-demo-")
        .permissions(std::fs::Permissions::from_mode(0o711))
        .tempdir()
        .unwrap();
    let first = run_demo(dir.path());
    assert!(first.size > 0);
    let second = run_demo(dir.path());
    assert_eq!(second, first, "the second run changed the ledger");
}
