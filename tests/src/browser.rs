//! A real headless Chromium for browser tests, driven over WebDriver (`chromedriver`, Debian's
//! `chromium-driver`, installed by `deploy/ensure-deps.sh --browser`).
//!
//! Each [`Browser`] runs its own `chromedriver` (which starts its own Chromium) in a process
//! group of its own, with a temporary HOME: Chromium trusts the certificates the test gives it
//! through the NSS database in that HOME (`certutil -A -t "C,,"`), the way a user's machine
//! trusts a CA, never through `--ignore-certificate-errors`. Dropping the [`Browser`] kills the
//! whole group, so no chromedriver or Chromium outlives the test, even when it panics.
//!
//! Browsers are few and serial: one test at a time holds the browser lock (the machine has two
//! cores); a test that needs a second browser at once (two parties' portals) opens it with
//! [`Browser::open_another`], which shares the lock.
//!
//! Missing tools are an error naming the fix, never a skipped test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::elements::{Element, ElementRef};
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::harness::repo_root;

/// The viewport (width, height in CSS pixels, scale 1) of every browser, so pages lay out and
/// screenshots come out the same on every run.
pub const WINDOW: (u32, u32) = (1280, 900);

/// The vendored axe-core (`tests/assets/axe-core`, from npm, MPL-2.0).
pub const AXE_VERSION: &str = "4.14.1";
const AXE_SOURCE: &str = include_str!("../assets/axe-core/axe.min.js");

/// How long lookups that wait ([`Browser::wait_for`]) and page loads may take.
const WAIT: Duration = Duration::from_secs(20);

/// The W3C WebDriver key of an element reference in a script's result.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A program on PATH, or an error saying how to install it.
pub fn find_tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{name} is not installed (not on PATH): browser tests need Debian's chromium, \
                 chromium-driver and libnss3-tools; run `deploy/ensure-deps.sh --browser` as root"
            )
        })
}

/// The lock that keeps browser tests serial within a test binary (cargo runs binaries one at
/// a time). A tokio mutex: its owned guard may be held across awaits and moved between tasks.
fn browser_lock() -> Arc<tokio::sync::Mutex<()>> {
    static LOCK: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(|| Arc::new(tokio::sync::Mutex::new(())))
        .clone()
}

/// The thread that took the browser lock, so that a test asking for a second browser with
/// [`Browser::start`] (instead of [`Browser::open_another`]) fails at once, not hangs.
fn lock_holder() -> std::sync::MutexGuard<'static, Option<std::thread::ThreadId>> {
    static HOLDER: std::sync::Mutex<Option<std::thread::ThreadId>> = std::sync::Mutex::new(None);
    HOLDER.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test's turn with the browser: released when its last browser is dropped.
#[derive(Debug)]
struct Serial {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Serial {
    async fn take() -> Result<Arc<Self>> {
        if *lock_holder() == Some(std::thread::current().id()) {
            bail!(
                "this test already has a browser open: a second one at once comes from \
                 Browser::open_another (Browser::start would wait for the first to close)"
            );
        }
        let guard = browser_lock().lock_owned().await;
        *lock_holder() = Some(std::thread::current().id());
        Ok(Arc::new(Self { _guard: guard }))
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        *lock_holder() = None;
    }
}

/// Where test output goes: `target/test-output` of the target directory this test was built
/// in (the test binary is `target/<profile>/deps/<name>`).
pub fn test_output_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join("target"));
    Ok(target.join("test-output"))
}

/// The browser refused a server's certificate: Chromium showed its warning page
/// ("Your connection is not private") instead of the page.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the browser does not trust the certificate of {url} ({code})")]
pub struct CertificateRefused {
    pub url: String,
    /// Chromium's error, e.g. `net::ERR_CERT_AUTHORITY_INVALID`.
    pub code: String,
}

/// One violation axe-core reports: a rule and the elements that break it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxeViolation {
    /// The rule, e.g. `image-alt`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    pub help_url: String,
    pub nodes: Vec<AxeNode>,
}

/// An element that breaks an axe rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxeNode {
    /// CSS selectors leading to the element (through frames and shadow roots).
    pub target: Vec<Value>,
    pub html: String,
    pub failure_summary: Option<String>,
}

impl AxeViolation {
    /// Serious and critical violations fail a page; minor and moderate ones are reported.
    pub fn is_blocking(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "[{}] {}: {} ({})",
            self.impact.as_deref().unwrap_or("?"),
            self.id,
            self.help,
            self.help_url
        )?;
        for node in &self.nodes {
            let target: Vec<String> = node.target.iter().map(Value::to_string).collect();
            writeln!(f, "    at {}: {}", target.join(" > "), node.html)?;
            if let Some(summary) = &node.failure_summary {
                for line in summary.lines() {
                    writeln!(f, "      {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// A headless Chromium driven by its own chromedriver; killed, with chromedriver, on drop.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    /// The temporary HOME: the NSS database, the Chromium profile, pages written by tests.
    home: tempfile::TempDir,
    screenshots: PathBuf,
    trusted: Vec<PathBuf>,
    serial: Arc<Serial>,
}

impl Browser {
    /// A browser for test `test` (screenshots go to `target/test-output/screenshots/<test>/`,
    /// emptied first) that trusts the CA certificates (PEM files) in `trust` and no other
    /// certificate a test makes. Waits while another browser test of this binary runs.
    pub async fn start(test: &str, trust: &[&Path]) -> Result<Self> {
        let serial = Serial::take().await?;
        let screenshots = test_output_dir()?.join("screenshots").join(test);
        if screenshots.exists() {
            std::fs::remove_dir_all(&screenshots)
                .with_context(|| format!("emptying {}", screenshots.display()))?;
        }
        let trust: Vec<PathBuf> = trust.iter().map(|p| p.to_path_buf()).collect();
        Self::launch(screenshots, trust, serial).await
    }

    /// A second browser for the same test, at the same time (another user, another party's
    /// portal), trusting the same CAs; its screenshots go to the same folder.
    pub async fn open_another(&self) -> Result<Self> {
        Self::launch(
            self.screenshots.clone(),
            self.trusted.clone(),
            self.serial.clone(),
        )
        .await
    }

    async fn launch(
        screenshots: PathBuf,
        trusted: Vec<PathBuf>,
        serial: Arc<Serial>,
    ) -> Result<Self> {
        let chromium = find_tool("chromium")?;
        let chromedriver = find_tool("chromedriver")?;
        let home = tempfile::Builder::new()
            .prefix("lading-browser-")
            .tempdir()?;
        trust_in_nss(home.path(), &trusted)?;
        // chromedriver picks its own port for `--port=0`, and now and then one that another
        // process holds ("bind() failed: Address already in use"): it exits, and is started
        // again with another pick.
        let mut attempt = 0;
        let (driver, port) = loop {
            attempt += 1;
            match spawn_chromedriver(&chromedriver, home.path()) {
                Err(e) if attempt < 5 && format!("{e:#}").contains("ADDRESS_IN_USE") => continue,
                other => break other?,
            }
        };
        // From here on a failure kills chromedriver (and the Chromium it may have started).
        let mut guard = DriverGuard(Some(driver), home.path());
        let client = connect(&chromium, home.path(), port)
            .await
            .with_context(|| format!("starting {} through chromedriver", chromium.display()))?;
        let driver = guard.0.take().context("chromedriver is running")?;
        drop(guard);
        Ok(Self {
            client,
            driver,
            home,
            screenshots,
            trusted,
            serial,
        })
    }

    /// The WebDriver client, for anything the helpers here do not do.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The temporary HOME chromedriver and Chromium run with (NSS database, profile, the
    /// pages of [`Browser::goto_html`]); removed on drop.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The process group of chromedriver and the Chromium it started (killed on drop).
    pub fn process_group(&self) -> u32 {
        self.driver.id()
    }

    /// Opens `url` and waits until it has loaded. A server whose certificate the browser
    /// does not trust is a [`CertificateRefused`] error (chromedriver itself would show
    /// Chromium's warning page as if it were the page).
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let interstitial = self
            .client
            .execute(
                "const code = document.getElementById('error-code');\
                 return document.body && document.body.classList.contains('ssl')\
                   && document.getElementById('proceed-link') && code\
                   ? code.textContent.trim() : null;",
                vec![],
            )
            .await?;
        if let Some(code) = interstitial.as_str() {
            return Err(CertificateRefused {
                url: url.to_owned(),
                code: code.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// Writes `html` to a file of this browser's and opens it (for pages a test makes up).
    pub async fn goto_html(&self, name: &str, html: &str) -> Result<()> {
        let file = self.home.path().join("pages").join(format!("{name}.html"));
        std::fs::create_dir_all(file.parent().context("a folder")?)?;
        std::fs::write(&file, html)?;
        self.goto(&format!("file://{}", file.display())).await
    }

    /// The URL the browser is at (after redirects).
    pub async fn current_url(&self) -> Result<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    /// The page's title.
    pub async fn title(&self) -> Result<String> {
        Ok(self.client.title().await?)
    }

    /// The text of the whole page, as a user sees it.
    pub async fn page_text(&self) -> Result<String> {
        self.text("body").await
    }

    /// The visible text of the first element that `css` selects.
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// The first element that `css` selects, now.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let found = self.client.find(Locator::Css(css)).await;
        self.or_say(found, format!("no element {css:?}")).await
    }

    /// Every element that `css` selects, now.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// The first element that `css` selects, waiting for it to appear.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        self.or_say(found, format!("no element {css:?} appeared"))
            .await
    }

    /// Clicks the first element that `css` selects.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Replaces the value of the field `css` selects with `value`, as typed.
    pub async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// The form control a `<label>` whose text is `label` is for.
    pub async fn find_by_label(&self, label: &str) -> Result<Element> {
        let found = self
            .script_element(
                "const want = arguments[0].trim();\
                 const l = [...document.querySelectorAll('label')]\
                   .find(l => l.textContent.replace(/\\s+/g, ' ').trim() === want);\
                 return l ? l.control : null;",
                label,
            )
            .await;
        self.or_say(found, format!("no field labelled {label:?}"))
            .await
    }

    /// Replaces the value of the field labelled `label` with `value`, as typed.
    pub async fn fill_label(&self, label: &str, value: &str) -> Result<()> {
        let field = self.find_by_label(label).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// Clicks the button or link whose text (or a submit input's value) is `text`.
    pub async fn click_text(&self, text: &str) -> Result<()> {
        let found = self
            .script_element(
                "const want = arguments[0].trim();\
                 const all = document.querySelectorAll(\
                   'button, a, [role=button], input[type=submit], input[type=button]');\
                 return [...all].find(e =>\
                   (e.innerText || e.value || '').replace(/\\s+/g, ' ').trim() === want) || null;",
                text,
            )
            .await;
        let button = self
            .or_say(found, format!("no button or link {text:?}"))
            .await?;
        button.click().await?;
        Ok(())
    }

    /// Clicks the button or link whose text is `text` and waits until the page it leads to
    /// has loaded. Waiting for an element after a plain click can find it on the page being
    /// left, and the next read of that page fails as stale; a mark set on the old page's
    /// `window`, which no new page carries, tells the two apart.
    pub async fn click_to_load(&self, text: &str) -> Result<()> {
        self.client
            .execute("window.__ladingLeaving = true;", vec![])
            .await?;
        self.click_text(text).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // While the browser is between pages a script may fail: that is "not yet".
            let loaded = self
                .client
                .execute(
                    "return window.__ladingLeaving !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .ok()
                .and_then(|answer| answer.as_bool())
                .unwrap_or(false);
            if loaded {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "clicking {text:?} on {} never led to a new page",
                    self.here().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the window as `<name>.png` in this test's screenshot folder; its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        std::fs::create_dir_all(&self.screenshots)
            .with_context(|| format!("creating {}", self.screenshots.display()))?;
        let file = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&file, png).with_context(|| format!("writing {}", file.display()))?;
        eprintln!("screenshot: {}", file.display());
        Ok(file)
    }

    /// Runs axe-core on the page (injected by WebDriver, so a page's Content-Security-Policy
    /// does not stop it): every violation, whatever its impact.
    pub async fn axe(&self) -> Result<Vec<AxeViolation>> {
        let loaded = self
            .client
            .execute(
                &format!("{AXE_SOURCE}\n;return window.axe ? window.axe.version : null;"),
                vec![],
            )
            .await
            .context("injecting axe-core")?;
        if loaded.as_str() != Some(AXE_VERSION) {
            bail!("axe-core {AXE_VERSION} did not load (the page has {loaded})");
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 window.axe.run(document, { resultTypes: ['violations'] })\
                   .then(r => done({ ok: r.violations }), e => done({ err: String(e) }));",
                vec![],
            )
            .await
            .context("running axe-core")?;
        if let Some(err) = result.get("err") {
            bail!("axe-core failed on {}: {err}", self.here().await);
        }
        let violations = result.get("ok").cloned().unwrap_or(Value::Null);
        serde_json::from_value(violations).context("reading axe-core's violations")
    }

    /// Fails, listing them, when axe-core finds serious or critical violations on the page;
    /// minor and moderate ones are printed and returned.
    pub async fn axe_check(&self) -> Result<Vec<AxeViolation>> {
        let url = self.current_url().await?;
        let (blocking, lesser): (Vec<_>, Vec<_>) = self
            .axe()
            .await?
            .into_iter()
            .partition(AxeViolation::is_blocking);
        for violation in &lesser {
            eprint!("axe (not blocking) on {url}: {violation}");
        }
        if !blocking.is_empty() {
            let list: Vec<String> = blocking.iter().map(ToString::to_string).collect();
            bail!(
                "{} serious or critical accessibility violation(s) on {url}:\n{}",
                blocking.len(),
                list.join("")
            );
        }
        Ok(lesser)
    }

    /// Photographs the page as `name` and runs axe-core on it (no serious or critical
    /// violation).
    pub async fn look(&self, name: &str) -> Result<()> {
        self.screenshot(name).await?;
        self.axe_check()
            .await
            .with_context(|| format!("axe on the {name} page"))?;
        Ok(())
    }

    /// Signs in through the portal's form at `base` (a node's or the operator view's).
    pub async fn sign_in(&self, base: &str, user: &str, password: &str) -> Result<()> {
        self.goto(&format!("{base}/login")).await?;
        self.wait_for("form[action='/login']").await?;
        self.fill_label("Username", user).await?;
        self.fill_label("Password", password).await?;
        self.click_to_load("Sign in").await?;
        self.wait_for("form[action='/logout']").await?;
        Ok(())
    }

    /// Signs out with the page's button.
    pub async fn sign_out(&self) -> Result<()> {
        self.click_to_load("Sign out").await?;
        self.wait_for("form[action='/login']").await?;
        Ok(())
    }

    /// Opens `url` again and again until `needle` is in its text (60 s); that text.
    pub async fn reload_until(&self, url: &str, needle: &str) -> Result<String> {
        for _ in 0..300 {
            self.goto(url).await?;
            let text = self.page_text().await?;
            if text.contains(needle) {
                return Ok(text);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{url} never showed {needle:?}")
    }

    /// Clicks the portal's "… sign and submit" button `button`, and waits until the submission
    /// it leads to is on the ledger (60 s); the submission page's URL.
    pub async fn sign_and_submit(&self, button: &str) -> Result<String> {
        self.click_to_load(button).await?;
        self.wait_for("#submission").await?;
        let submission = self.current_url().await?;
        self.reload_until(&submission, "On the ledger as entry")
            .await?;
        Ok(submission)
    }

    /// Ends the WebDriver session (Chromium closes) and stops chromedriver.
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }

    /// Runs `script` with `arg`; the element it returns (an error if none).
    async fn script_element(&self, script: &str, arg: &str) -> Result<Element> {
        let found = self.client.execute(script, vec![json!(arg)]).await?;
        let id = found
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .context("not found")?;
        Ok(Element::from_element_id(
            self.client.clone(),
            ElementRef::from(id.to_owned()),
        ))
    }

    /// Where the browser is, for error messages.
    async fn here(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no page: {e})"),
        }
    }

    /// `result`, or its error saying `what` was wrong on which page.
    async fn or_say<T, E>(&self, result: Result<T, E>, what: String) -> Result<T>
    where
        E: Into<anyhow::Error>,
    {
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(e.into().context(format!("{what} on {}", self.here().await))),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_browser(&mut self.driver, self.home.path());
    }
}

/// Kills chromedriver and its Chromium if the browser never got going.
struct DriverGuard<'a>(Option<Child>, &'a Path);

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_browser(child, self.1);
        }
    }
}

/// SIGKILL to chromedriver's whole process group (it and every Chromium process) and to the
/// processes that left the group but work for this browser (Chromium's crash handlers start
/// their own session; they name the crash database under `home`); reaps chromedriver and waits
/// (a few seconds at most) until none of them is alive.
fn kill_browser(child: &mut Child, home: &Path) {
    let group = child.id();
    let kill = |target: String| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &target])
            .stderr(Stdio::null())
            .status();
    };
    kill(format!("-{group}"));
    let _ = child.kill();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let strays = processes_naming(home);
        if (strays.is_empty() && processes_in_group(group).is_empty()) || Instant::now() > deadline
        {
            return;
        }
        for (pid, _) in strays {
            kill(pid.to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live processes (pid, command line) whose command line names `path`, wherever their
/// process group: Chromium's are given their profile and crash database under its HOME.
pub fn processes_naming(path: &Path) -> Vec<(u32, String)> {
    let needle = path.to_string_lossy().into_owned();
    live_processes()
        .into_iter()
        .filter_map(|(pid, _, _)| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some((pid, cmdline))
        })
        .collect()
}

/// Every live process: pid, command name, process group (from /proc). Zombies, which are
/// dead and only wait for their parent to reap them, are left out.
fn live_processes() -> Vec<(u32, String, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp ...
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_owned();
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let pgrp: u32 = fields.nth(1)?.parse().ok()?;
            (state != "Z").then_some((pid, comm, pgrp))
        })
        .collect()
}

/// The live processes (pid, command name) of process group `group`.
pub fn processes_in_group(group: u32) -> Vec<(u32, String)> {
    live_processes()
        .into_iter()
        .filter(|(_, _, pgrp)| *pgrp == group)
        .map(|(pid, comm, _)| (pid, comm))
        .collect()
}

/// An NSS database in `home/.pki/nssdb` (where Chromium on Linux looks) trusting each CA in
/// `trusted` to identify web servers.
fn trust_in_nss(home: &Path, trusted: &[PathBuf]) -> Result<()> {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db)?;
    let certutil = find_tool("certutil")?;
    let db_arg = format!("sql:{}", db.display());
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new(&certutil)
            .args(args)
            .output()
            .context("running certutil")?;
        if !out.status.success() {
            bail!(
                "certutil {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    run(&["-N", "-d", &db_arg, "--empty-password"])?;
    for (i, ca) in trusted.iter().enumerate() {
        let ca = ca
            .to_str()
            .with_context(|| format!("{} is not UTF-8", ca.display()))?;
        let nickname = format!("lading-test-ca-{i}");
        run(&["-A", "-d", &db_arg, "-n", &nickname, "-t", "C,,", "-i", ca])?;
    }
    Ok(())
}

/// Starts chromedriver on a port it picks itself (`--port=0`, so no other process can take it
/// in between) in a new process group, with HOME set to `home`; it and the port it serves on.
fn spawn_chromedriver(chromedriver: &Path, home: &Path) -> Result<(Child, u16)> {
    use std::os::unix::process::CommandExt;
    let log = home.join("chromedriver.log");
    let mut child = Command::new(chromedriver)
        .arg("--port=0")
        .arg(format!("--log-path={}", log.display()))
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("TMPDIR", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", chromedriver.display()))?;
    let mut guard = DriverGuard(None, home);
    let stdout = child.stdout.take().context("chromedriver's stdout")?;
    guard.0 = Some(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // "ChromeDriver was started successfully on port 35555."
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>());
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(port) = rx.recv_timeout(Duration::from_millis(50)) {
            let port = port.context("chromedriver printed no port number")?;
            let child = guard.0.take().context("chromedriver is running")?;
            return Ok((child, port));
        }
        let log = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = guard.0.as_mut().map(Child::try_wait).transpose()?.flatten() {
            bail!(
                "chromedriver exited at start ({status}); its log:\n{}",
                log()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "chromedriver did not start within {} s; its log:\n{}",
                WAIT.as_secs(),
                log()
            );
        }
    }
}

/// A WebDriver session with a headless Chromium of `chromium` on chromedriver's `port`.
async fn connect(chromium: &Path, home: &Path, port: u16) -> Result<Client> {
    let profile = home.join("profile");
    let args = vec![
        "--headless".to_owned(),
        // Chromium refuses to run as root (CI runs as root) with its sandbox; the pages it
        // opens are the tests' own.
        "--no-sandbox".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-gpu".to_owned(),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        "--force-device-scale-factor=1".to_owned(),
        "--hide-scrollbars".to_owned(),
        "--lang=en-US".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-default-apps".to_owned(),
        "--disable-extensions".to_owned(),
        "--disable-sync".to_owned(),
        "--metrics-recording-only".to_owned(),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    // Certificates are checked: a page whose certificate the NSS database does not vouch for
    // is an error (WebDriver's "insecure certificate"), not a page.
    capabilities.insert("acceptInsecureCerts".into(), json!(false));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(WAIT),
            Some(Duration::ZERO),
        ))
        .await?;
    // The window includes Chromium's own frame (even headless): it is grown by the frame's
    // size so that the viewport, what pages lay out in and screenshots show, is WINDOW.
    client.set_window_size(WINDOW.0, WINDOW.1).await?;
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await?;
    let side = |i: usize, want: u32| -> Result<u32> {
        let got = inner
            .get(i)
            .and_then(Value::as_u64)
            .context("the window's inner size")?;
        Ok(want + want.saturating_sub(u32::try_from(got)?))
    };
    client
        .set_window_size(side(0, WINDOW.0)?, side(1, WINDOW.1)?)
        .await?;
    Ok(client)
}
