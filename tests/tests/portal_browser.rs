//! The portal's read side in a real headless Chromium (WebDriver), against a real registry and
//! a real node: sign in through the form, the dashboard, the bills list and its search, a
//! bill's page with the verification badge it earns, the same "not found" for a bill of another
//! party as for none, a forged form refused, sign-out; every page checked with axe-core (no
//! serious or critical violation) and photographed under `target/test-output/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use anyhow::{ensure, Result};
use lading_domain::transition::SignedTransition;
use lading_e2e::browser::Browser;
use lading_e2e::portal::{submit_all, submit_events, Pki, PortalNode};
use lading_e2e::samples::Samples;

const ME: &str = "shipper-acme";

/// The sample chains that name `party` (as a party of the document, actor or recipient), and
/// those that do not.
fn chains_of(samples: &Samples, party: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut mine = BTreeSet::new();
    let mut others = BTreeSet::new();
    for chain in &samples.chains {
        let parsed: Vec<SignedTransition> = chain
            .transitions
            .iter()
            .map(|t| SignedTransition::parse(t).unwrap())
            .collect();
        let doc = parsed[0].payload().transport_document().unwrap();
        let mut involved: BTreeSet<String> = doc
            .named_parties()
            .iter()
            .map(ToString::to_string)
            .collect();
        for t in &parsed {
            involved.insert(t.payload().actor().to_string());
            involved.extend(t.payload().recipient().map(ToString::to_string));
        }
        if involved.contains(party) {
            mine.insert(chain.reference.clone());
        } else {
            others.insert(chain.reference.clone());
        }
    }
    (mine, others)
}

/// The references the list shows now, read in one script (htmx may swap the results between
/// two WebDriver calls, which would leave an element reference stale).
async fn listed_references(browser: &Browser) -> Result<Vec<String>> {
    let value = browser
        .client()
        .execute(
            "return Array.from(document.querySelectorAll('.ref')).map(e => e.textContent.trim());",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(value)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_reads_the_bills_of_the_party_in_a_real_browser() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[ME]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;
    for chain in &samples.chains {
        submit_all(&client, &registry, &chain.transitions).await?;
    }
    submit_events(&client, &registry, &samples.events).await?;
    let (mine, others) = chains_of(&samples, ME);
    ensure!(
        !mine.is_empty() && !others.is_empty(),
        "samples of both kinds"
    );

    let node = tokio::task::block_in_place(|| PortalNode::start(&pki, ME, &registry, &[]))?;
    tokio::task::block_in_place(|| {
        node.add_user("vera", "viewer", "correct horse battery staple")?;
        node.wait_for_documents(mine.len() as u64)
    })?;

    let browser = Browser::start("portal_browser", &[&pki.ca_pem()]).await?;

    // Any page asks for a sign-in first; a wrong password is refused on the page.
    browser.goto(&node.url("/bills")).await?;
    browser.wait_for("form[action='/login']").await?;
    browser.look("sign-in").await?;
    browser.fill_label("Username", "vera").await?;
    browser.fill_label("Password", "not the password").await?;
    browser.click_to_load("Sign in").await?;
    let refused = browser.wait_for("[role='alert']").await?.text().await?;
    ensure!(!refused.is_empty(), "a wrong password says so");
    browser.look("sign-in-refused").await?;
    browser
        .fill_label("Password", "correct horse battery staple")
        .await?;
    browser.click_to_load("Sign in").await?;

    // Back where it was going: the list, with exactly the party's bills.
    browser.wait_for("#results").await?;
    ensure!(
        browser.current_url().await?.contains("/bills"),
        "signed in, the user lands where they were going"
    );
    let listed: BTreeSet<String> = listed_references(&browser).await?.into_iter().collect();
    ensure!(
        listed == mine,
        "listed {listed:?}, the party's bills are {mine:?}"
    );
    browser.look("bills").await?;

    // Search, through the form.
    let wanted = mine.iter().next().unwrap().clone();
    browser.fill("#q", &wanted).await?;
    browser.click("form.filters button[type=submit]").await?;
    let found = async {
        let mut refs: Vec<String> = Vec::new();
        for _ in 0..100 {
            refs = listed_references(&browser).await?;
            if refs.len() == 1 && refs[0] == wanted {
                return Ok(refs);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        browser.screenshot("bills-search-failed").await?;
        anyhow::bail!(
            "the search for {wanted} did not narrow the list to it: {refs:?} at {}",
            browser.current_url().await?
        )
    }
    .await?;
    ensure!(found.len() == 1 && found[0] == wanted);
    browser.look("bills-search").await?;

    // The bill's page, and the badge it earned by checking the proof.
    browser.click_to_load(&wanted).await?;
    let badge = browser.wait_for("#verification").await?;
    let class = badge.attr("class").await?.unwrap_or_default();
    ensure!(class.contains("verified"), "the badge is {class}");
    ensure!(
        browser
            .page_text()
            .await?
            .contains("Verified on the ledger"),
        "the badge says it verified"
    );
    browser.look("bill").await?;

    // The dashboard.
    browser.goto(&node.url("/")).await?;
    browser.wait_for("main").await?;
    browser.look("dashboard").await?;

    // Another party's bill reads exactly as a bill that does not exist.
    let foreign = others.iter().next().unwrap();
    browser
        .goto(&node.url(&format!("/bills/{foreign}")))
        .await?;
    let foreign_text = browser.page_text().await?;
    browser.goto(&node.url("/bills/NOSUCHBILL0001")).await?;
    let missing_text = browser.page_text().await?;
    ensure!(
        foreign_text.replace(foreign.as_str(), "X") == missing_text.replace("NOSUCHBILL0001", "X"),
        "a foreign bill must read as a missing one:\n{foreign_text}\n---\n{missing_text}"
    );
    ensure!(!foreign_text.contains("Verified"), "{foreign_text}");
    browser.look("not-found").await?;

    // A form whose CSRF token was tampered with is refused, and the session is untouched.
    browser.goto(&node.url("/")).await?;
    browser.wait_for("form[action='/logout']").await?;
    browser
        .client()
        .execute(
            "const f = document.querySelector(\"form[action='/logout']\"); \
             f.querySelector(\"input[name='csrf']\").value = 'forged'; f.submit();",
            vec![],
        )
        .await?;
    browser.wait_for("main").await?;
    let forged = browser.page_text().await?;
    ensure!(
        forged.contains("Form refused") && forged.contains("Nothing was changed"),
        "a forged form gets a refusal page: {forged}"
    );
    browser.look("forged-form").await?;
    browser.goto(&node.url("/bills")).await?;
    browser.wait_for("#results").await?;

    // Sign out: the next page asks for a sign-in again.
    browser.click_to_load("Sign out").await?;
    browser.wait_for("form[action='/login']").await?;
    browser.goto(&node.url("/bills")).await?;
    browser.wait_for("form[action='/login']").await?;
    browser.close().await?;
    Ok(())
}
