//! The browser-test infrastructure on the real parts: a headless Chromium (Debian's, over
//! chromedriver) opens a real registry's page over TLS it trusts only because the test's
//! consortium CA is in its NSS database, takes screenshots, runs axe-core, and leaves no
//! process behind.

use std::path::Path;

use anyhow::{Context, Result};
use lading_e2e::browser::{
    find_tool, processes_in_group, processes_naming, Browser, CertificateRefused, WINDOW,
};
use lading_e2e::consortium::Pki;
use lading_e2e::harness::{Server, TestDb, Tls};

/// A registry serving with a certificate from a fresh consortium CA (`lading ca`).
async fn registry() -> Result<(Pki, TestDb, Server, Tls)> {
    let pki = Pki::new(&[])?;
    let (db, server, tls) = pki.registry(&[], 0, &[]).await?;
    Ok((pki, db, server, tls))
}

/// The width and height of a PNG (its IHDR chunk), failing when `file` is not a PNG.
fn png_size(file: &Path) -> Result<(u32, u32)> {
    let bytes = std::fs::read(file)?;
    anyhow::ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        file.display()
    );
    let be = |at: usize| -> Result<u32> { Ok(u32::from_be_bytes(bytes[at..at + 4].try_into()?)) };
    Ok((be(16)?, be(20)?))
}

#[tokio::test]
async fn a_browser_trusting_the_consortium_ca_opens_the_registry() -> Result<()> {
    let (pki, _db, server, _tls) = registry().await?;
    let browser = Browser::start("trusted_registry", &[&pki.ca_pem()]).await?;
    browser.goto(&server.url("/healthz")).await?;
    assert_eq!(browser.current_url().await?, server.url("/healthz"));
    let text = browser.page_text().await?;
    assert!(
        text.contains(r#"{"status":"ok"}"#),
        "the page shows {text:?}"
    );

    let shot = browser.screenshot("healthz").await?;
    assert!(
        shot.ends_with("screenshots/trusted_registry/healthz.png"),
        "{}",
        shot.display()
    );
    assert_eq!(
        png_size(&shot)?,
        WINDOW,
        "the screenshot is the whole window"
    );
    browser.close().await
}

#[tokio::test]
async fn a_browser_that_does_not_trust_the_ca_gets_a_certificate_error() -> Result<()> {
    let (_pki, _db, server, _tls) = registry().await?;
    // Another consortium's CA: trusting some CA is not enough, it has to be the registry's.
    let stranger = Pki::new(&[])?;
    for (test, trust) in [
        ("untrusted_none", vec![]),
        ("untrusted_other_ca", vec![stranger.ca_pem()]),
    ] {
        let trust: Vec<&Path> = trust.iter().map(|p| p.as_path()).collect();
        let browser = Browser::start(test, &trust).await?;
        let err = browser
            .goto(&server.url("/healthz"))
            .await
            .err()
            .with_context(|| format!("{test}: the registry's page opened"))?;
        let refused = err
            .downcast_ref::<CertificateRefused>()
            .with_context(|| format!("{test}: expected a certificate error, got {err:#}"))?;
        assert_eq!(refused.code, "net::ERR_CERT_AUTHORITY_INVALID", "{test}");
        assert_eq!(
            browser.title().await?,
            "Privacy error",
            "{test}: the warning page"
        );
        browser.screenshot("refused").await?;
    }
    Ok(())
}

const PAGE_WITH_VIOLATIONS: &str = r#"<!doctype html>
<html><head><title>Broken</title></head>
<body><img src="stamp.png"><a href="/next"></a>
<p style="color:#ccc;background:#fff">Faint text few can read</p></body></html>"#;

const CLEAN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Container check</title></head>
<body><main>
<h1>Container check</h1>
<img src="stamp.png" alt="Carrier stamp" width="40" height="40">
<form id="check">
  <label for="container">Container number</label>
  <input id="container" name="container">
  <button type="button" id="go">Check</button>
</form>
<p id="out">nothing yet</p>
<script>
  document.getElementById('go').addEventListener('click', () => {
    document.getElementById('out').textContent =
      'checked ' + document.getElementById('container').value;
  });
</script>
</main></body></html>"#;

#[tokio::test]
async fn axe_reports_violations_and_passes_a_clean_page() -> Result<()> {
    let browser = Browser::start("axe", &[]).await?;

    browser.goto_html("broken", PAGE_WITH_VIOLATIONS).await?;
    let violations = browser.axe().await?;
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    for rule in ["image-alt", "link-name", "html-has-lang", "color-contrast"] {
        assert!(ids.contains(&rule), "axe missed {rule}: {ids:?}");
    }
    let err = browser
        .axe_check()
        .await
        .err()
        .context("axe_check passed a page with an image without alt")?;
    let message = format!("{err:#}");
    assert!(
        message.contains("image-alt") && message.contains(r#"<img src="stamp.png">"#),
        "{message}"
    );
    browser.screenshot("broken").await?;

    browser.goto_html("clean", CLEAN_PAGE).await?;
    assert_eq!(browser.title().await?, "Container check");
    let violations = browser.axe().await?;
    assert!(violations.is_empty(), "a clean page: {violations:?}");
    browser.axe_check().await?;

    // The form helpers, by label, by CSS and by a button's text.
    browser
        .fill_label("Container number", "MSCU1234565")
        .await?;
    browser.click_text("Check").await?;
    assert_eq!(browser.text("#out").await?, "checked MSCU1234565");
    browser.fill("#container", "TGHU0000000").await?;
    browser.click("#go").await?;
    assert_eq!(browser.text("#out").await?, "checked TGHU0000000");
    let missing = browser
        .find_by_label("No such field")
        .await
        .err()
        .context("found a field that is not there")?;
    let message = format!("{missing:#}");
    assert!(
        message.contains(r#"no field labelled "No such field" on file://"#)
            && message.contains("clean.html"),
        "the error names the field and the page: {message}"
    );
    browser.screenshot("clean").await?;
    browser.close().await
}

#[tokio::test]
async fn dropping_a_browser_leaves_no_process_behind() -> Result<()> {
    let browser = Browser::start("drop", &[]).await?;
    browser
        .goto_html("page", "<!doctype html><title>x</title>")
        .await?;
    let (group, home) = (browser.process_group(), browser.home().to_path_buf());
    let in_group = processes_in_group(group);
    assert!(
        in_group.iter().any(|(_, comm)| comm == "chromedriver")
            && in_group
                .iter()
                .any(|(_, comm)| comm.starts_with("chrom") && comm != "chromedriver"),
        "chromedriver and chromium in the group: {in_group:?}"
    );
    let naming_home = processes_naming(&home);
    assert!(
        naming_home
            .iter()
            .any(|(_, cmdline)| cmdline.contains("--user-data-dir")),
        "chromium runs with its profile under {}: {naming_home:?}",
        home.display()
    );
    // Dropped without close(), as when a test fails half-way.
    drop(browser);
    let after = processes_in_group(group);
    assert!(after.is_empty(), "left behind in the group: {after:?}");
    // Nor anything that left the group (Debian's Chromium starts crash handlers in sessions of
    // their own).
    let strays = processes_naming(&home);
    assert!(strays.is_empty(), "left behind: {strays:?}");
    assert!(!home.exists(), "the temporary HOME is removed");
    Ok(())
}

#[tokio::test]
async fn a_test_opens_a_second_browser_with_open_another() -> Result<()> {
    let first = Browser::start("two_browsers", &[]).await?;
    let err = Browser::start("two_browsers_again", &[])
        .await
        .err()
        .context("a second Browser::start in the same test did not fail")?;
    assert!(format!("{err:#}").contains("open_another"), "{err:#}");

    let second = first.open_another().await?;
    first
        .goto_html("carrier", "<!doctype html><title>Carrier</title>")
        .await?;
    second
        .goto_html("shipper", "<!doctype html><title>Shipper</title>")
        .await?;
    assert_eq!(first.title().await?, "Carrier");
    assert_eq!(second.title().await?, "Shipper");
    assert_ne!(first.process_group(), second.process_group());
    Ok(())
}

#[test]
fn a_missing_browser_tool_is_an_error_naming_the_fix() {
    let err = find_tool("lading-no-such-browser").err();
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("deploy/ensure-deps.sh --browser"),
        "{message:?}"
    );
}
