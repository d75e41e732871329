//! Driving a node's web portal in tests, as a browser would but without one: a registry and a
//! party's `lading replica` with `[portal] listen` (real processes, PostgreSQL, TLS from a
//! consortium CA made by `lading ca`), users made with `lading user add`, and an HTTPS client
//! that keeps cookies, follows no redirect by itself and sends `Origin` with its forms.
//!
//! The real-browser tests (WebDriver) can start their nodes the same way ([`PortalNode`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lading_domain::transition::{Action, SignedTransition, TransitionDraft, TransitionPayload};
use lading_domain::{Digest, Timestamp, TransportDocument};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::gen::{fixtures_dir, FixtureParties};
use crate::harness::{free_port, run_lading, ReplicaProcess, Server, TestDb};

use crate::consortium::path as path_str;
pub use crate::consortium::Pki;

/// A party's node following `registry`, with its portal on a port of its own and no other
/// face.
#[derive(Debug)]
pub struct PortalNode {
    /// Declared before its database: dropped (killed) first.
    pub process: ReplicaProcess,
    pub party: String,
    pub db: TestDb,
    pub port: u16,
    env: Vec<(String, String)>,
    ca_pem: PathBuf,
    passwords: tempfile::TempDir,
}

/// `party`'s TEST key copied into `dir` with mode 0600, and the settings that make its node's
/// portal sign with it (`LADING_PORTAL_SIGNING_KEY`, `LADING_PORTAL_ALLOW_TEST_KEYS`).
pub fn signing_settings(dir: &Path, party: &str) -> Result<Vec<(String, String)>> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("{party}.jwk"));
    std::fs::copy(fixtures_dir().join(format!("keys/{party}.jwk")), &path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(vec![
        (
            "LADING_PORTAL_SIGNING_KEY".into(),
            path.to_str().context("utf-8 paths")?.into(),
        ),
        ("LADING_PORTAL_ALLOW_TEST_KEYS".into(), "true".into()),
    ])
}

impl PortalNode {
    /// [`Self::start`] with the party's TEST signing key (a copy in `keys`).
    pub fn start_signing(pki: &Pki, party: &str, registry: &Server, keys: &Path) -> Result<Self> {
        let settings = signing_settings(keys, party)?;
        let extra: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self::start(pki, party, registry, &extra)
    }

    /// Starts `party`'s node; `extra` settings (`LADING_PORTAL_*`, ...) come last.
    pub fn start(
        pki: &Pki,
        party: &str,
        registry: &Server,
        extra: &[(&str, &str)],
    ) -> Result<Self> {
        let db = TestDb::new()?;
        let port = free_port()?;
        let mut env: Vec<(String, String)> = vec![
            ("LADING_REPLICA_REGISTRY".into(), registry.base.clone()),
            ("LADING_REPLICA_CA".into(), path_str(&pki.ca_pem())?.into()),
            (
                "LADING_REPLICA_CERT".into(),
                path_str(&pki.cert(party))?.into(),
            ),
            (
                "LADING_REPLICA_KEY".into(),
                path_str(&pki.key(party))?.into(),
            ),
            (
                "LADING_REPLICA_PARTIES".into(),
                path_str(&fixtures_dir().join("parties.json"))?.into(),
            ),
            (
                "LADING_REPLICA_REGISTRY_KEY".into(),
                path_str(&pki.registry_key())?.into(),
            ),
            ("LADING_REPLICA_POLL_INTERVAL_MS".into(), "100".into()),
            ("LADING_REPLICA_PAGE_SIZE".into(), "100".into()),
            ("LADING_PORTAL_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("LADING_WORKERS".into(), "1".into()),
        ];
        // As the application's role, which owns nothing; migrations as the owner.
        env.extend(db.env());
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let process = ReplicaProcess::start(env.clone())?;
        Ok(Self {
            party: party.to_owned(),
            db,
            port,
            process,
            env,
            ca_pem: pki.ca_pem(),
            passwords: tempfile::tempdir()?,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The node's settings (`LADING_*`), for other `lading` commands against it.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `lading user <args>` against this node's database and certificate; its stdout.
    pub fn lading_user(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["user"];
        all.extend_from_slice(args);
        run_lading(&all, &self.env)
    }

    /// Adds a user with `lading user add`, the password from a file.
    pub fn add_user(&self, username: &str, role: &str, password: &str) -> Result<()> {
        let file = self.passwords.path().join(username);
        std::fs::write(&file, format!("{password}\n"))?;
        self.lading_user(&[
            "add",
            "--username",
            username,
            "--role",
            role,
            "--password-file",
            path_str(&file)?,
        ])
        .map(|_| ())
    }

    /// A browser-like client of this portal, signed in as no one.
    pub fn browser(&self) -> Result<Browser> {
        Browser::new(&self.ca_pem, self.url(""))
    }

    /// Waits until the node's list holds `count` documents.
    pub fn wait_for_documents(&self, count: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let held = crate::harness::sql_number(&self.db, "SELECT count(*) FROM node_documents")?;
            if held == count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the node's list holds {held} documents, not {count}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl PortalNode {
    /// What `sql` (a count) answers on this node's database now.
    pub fn count(&self, sql: &str) -> Result<u64> {
        crate::harness::sql_number(&self.db, sql)
    }

    /// Waits until `sql` (a count) answers `want` on this node's database (120 s).
    pub fn wait_count(&self, sql: &str, want: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = self.count(sql)?;
            if n == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{sql}: {n}, not {want}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the node's outbox submission `seq` is sequenced by the registry.
    pub fn wait_sequenced(&self, seq: i64) -> Result<()> {
        self.wait_count(
            &format!(
                "SELECT count(*) FROM replica_outbox WHERE seq = {seq} AND state = 'sequenced'"
            ),
            1,
        )
    }
}

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect leads (an error when the answer is none).
    pub fn location(&self) -> Result<String> {
        Ok(self
            .header("location")
            .with_context(|| format!("no redirect: {} {}", self.status, self.body))?
            .to_owned())
    }

    /// The outbox seq of a redirect to `/submissions/{seq}`.
    pub fn submission_seq(&self) -> Result<i64> {
        let location = self.location()?;
        Ok(location
            .strip_prefix("/submissions/")
            .with_context(|| format!("not a submission: {location}"))?
            .parse()?)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `value` of the first `name="csrf"` input.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        let end = self.body[at..].find('"')? + at;
        Some(self.body[at..end].to_owned())
    }

    /// Every `href` of links with `rel="<rel>"`.
    pub fn link(&self, rel: &str) -> Option<String> {
        let marker = format!("rel=\"{rel}\"");
        let end = self.body.find(&marker)?;
        let start = self.body[..end].rfind("href=\"")? + "href=\"".len();
        let stop = self.body[start..].find('"')? + start;
        Some(unescape(&self.body[start..stop]))
    }
}

/// A client that keeps cookies like a browser, never follows redirects by itself (tests look
/// at them), and sends its own origin with every POST.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` line received, for tests of the cookies' attributes.
    pub set_cookies: Vec<String>,
}

impl Browser {
    pub fn new(ca_pem: &Path, base: String) -> Result<Self> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca_pem)?)?)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base,
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Result<Page> {
        for line in response.headers().get_all("set-cookie") {
            let line = line.to_str()?.to_owned();
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let removed = line.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if removed {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
            self.set_cookies.push(line);
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> Result<Page> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await?;
        self.finish(response).await
    }

    /// GET with further headers.
    pub async fn http_get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Page> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        self.finish(response).await
    }

    /// POSTs a form with this portal's origin (as a browser does).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Page> {
        let origin = self.base.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    /// POSTs a form naming `origin` (none: no `Origin` header at all).
    pub async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Result<Page> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await?;
        self.finish(response).await
    }

    /// POSTs `fields` to `path` with the form token of the page at `form_page`, as a browser
    /// submitting that page's form does.
    pub async fn post_form(
        &mut self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page> {
        let csrf = self
            .get(form_page)
            .await?
            .csrf()
            .context("the page has no form token")?;
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post(path, &all).await
    }

    /// GETs `path` until it answers 200 with `needle` in it (120 s).
    pub async fn wait_page(&mut self, path: &str, needle: &str) -> Result<Page> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let page = self.get(path).await?;
            if page.status == StatusCode::OK && page.body.contains(needle) {
                return Ok(page);
            }
            if Instant::now() > deadline {
                bail!(
                    "{path} never showed {needle:?}: {} {}",
                    page.status,
                    page.body
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Signs in through the sign-in page: the answer to the form.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Result<Page> {
        let form = self.get("/login").await?;
        let csrf = form.csrf().context("the sign-in page has no form token")?;
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
        )
        .await
    }
}

/// Signed transitions made in tests with the fixture parties' TEST keys.
#[derive(Debug)]
pub struct Signer {
    parties: FixtureParties,
}

impl Signer {
    pub fn new() -> Result<Self> {
        Ok(Self {
            parties: FixtureParties::load()?,
        })
    }

    /// The ISSUE of `document` by its carrier to `to`, dated `time`.
    pub fn issue(&self, document: &TransportDocument, to: &str, time: Timestamp) -> Result<String> {
        let carrier = document.carrier().clone();
        let payload =
            TransitionPayload::issue(document.clone(), carrier.clone(), to.parse()?, time)?;
        Ok(payload.sign(self.parties.signer(carrier.as_str())?))
    }

    /// A later transition of the document whose last transition was `previous`.
    pub fn next(
        &self,
        document: &TransportDocument,
        previous: &str,
        action: Action,
        actor: &str,
        recipient: Option<&str>,
        time: Timestamp,
    ) -> Result<String> {
        let previous: Digest = SignedTransition::parse(previous)?.checksum();
        let payload = TransitionPayload::new(TransitionDraft {
            document_reference: document.reference().clone(),
            document_checksum: document.checksum(),
            previous_transition_checksum: Some(previous),
            action,
            actor: actor.parse()?,
            recipient: recipient.map(str::parse).transpose()?,
            time,
            reason_code: None,
            transport_document: None,
        })?;
        Ok(payload.sign(self.parties.signer(actor)?))
    }
}

/// Submits signed transitions to the registry one batch at a time, in order; every one must be
/// accepted.
pub async fn submit_all(
    client: &reqwest::Client,
    registry: &Server,
    batch: &[String],
) -> Result<()> {
    for chunk in batch.chunks(500) {
        let response = client
            .post(registry.url("/v1/transitions/batch"))
            .json(&chunk)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        if status != StatusCode::OK || body["refused"] != 0 {
            bail!("the registry refused a batch: {status} {body}");
        }
    }
    Ok(())
}

/// Submits signed shipment events, one at a time.
pub async fn submit_events(
    client: &reqwest::Client,
    registry: &Server,
    events: &[String],
) -> Result<()> {
    for jws in events {
        let response = client
            .post(registry.url("/v1/events"))
            .header("content-type", "application/jose")
            .body(jws.clone())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("the registry refused an event: {}", response.text().await?);
        }
    }
    Ok(())
}

/// Percent-encodes a query parameter's value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes HTML escaping of an attribute value (askama writes `&` as `&#38;`).
pub fn unescape(text: &str) -> String {
    text.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// `lading user add` with `env` (a registry's settings, [`registry_env`], or a node's), the
/// password in a file; what it printed.
pub fn add_user(
    env: &[(String, String)],
    username: &str,
    role: &str,
    password: &str,
) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{password}\n"))?;
    run_lading(
        &[
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--password-file",
            path_str(&file)?,
        ],
        env,
    )
}

/// A registry's settings for `lading user`: its database and its signing key.
pub fn registry_env(db: &TestDb) -> Vec<(String, String)> {
    let mut env = db.env();
    env.push((
        "LADING_SIGNING_KEY".into(),
        fixtures_dir()
            .join("keys/registry.jwk")
            .display()
            .to_string(),
    ));
    env
}
