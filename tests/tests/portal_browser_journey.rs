//! A bill of lading passed from one party's portal to another's, in real headless Chromium
//! windows, on real processes: a registry (with its operator view), and the nodes of the
//! shipper and of its bank, each portal signing with its party's key.
//!
//! What must hold, as a person sees it:
//! - the shipper's signer finds the bill the carrier issued under "Just received";
//! - the registry stops: the shipper's dashboard says the registry is not answering and since
//!   when, the bill still opens, and the TRANSFER to the bank is signed in the browser all the
//!   same — kept on the node, its submission page saying why it waits;
//! - the registry comes back: the submission is sequenced on its own, and the bill arrives in
//!   the bank's portal (its dashboard, its page with the verification badge, the transfer in
//!   the history, the actions now the bank's);
//! - the bank surrenders it for delivery; the carrier's portal offers to accept or reject it
//!   (and lists it on the dashboard), the carrier accepts, and the bill is closed at the bank;
//! - a session left idle past its time leads to the sign-in page, which says so, and back to
//!   the page asked for; the bank's user is refused at the shipper's portal as a wrong
//!   password is;
//! - the submissions, audit, drafts and users pages, and the operator view's three pages,
//!   pass axe-core; every page is photographed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lading_domain::Timestamp;
use lading_e2e::browser::Browser;
use lading_e2e::gen::sample_document;
use lading_e2e::harness::free_port;
use lading_e2e::portal::{
    add_user, registry_env, signing_settings, submit_all, Pki, PortalNode, Signer,
};

const CARRIER: &str = "carrier-oceanic";
const SHIPPER: &str = "shipper-acme";
const BANK: &str = "bank-harbour";
const REFERENCE: &str = "OCNL2026JRNY01";
/// The bank's portal ends a session idle this long: long enough that a slow, shared host
/// cannot let it lapse between two steps of the journey.
const BANK_IDLE_MS: u64 = 12_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_signed_while_the_registry_is_away_arrives_in_the_banks_portal() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, SHIPPER, BANK]))?;
    let operator_port = free_port()?;
    let operator_base = format!("https://127.0.0.1:{operator_port}");
    let (registry_db, mut registry, _tls) = pki
        .registry(
            &[],
            0,
            &[(
                "LADING_PORTAL_LISTEN",
                &format!("127.0.0.1:{operator_port}"),
            )],
        )
        .await?;
    tokio::task::block_in_place(|| {
        add_user(
            &registry_env(&registry_db),
            "ops",
            "viewer",
            "operator password 1",
        )
    })?;
    let keys = tempfile::tempdir()?;
    let (carrier, shipper, bank) = tokio::task::block_in_place(|| -> Result<_> {
        let carrier = PortalNode::start_signing(&pki, CARRIER, &registry, keys.path())?;
        carrier.add_user("sam", "signer", "signer password 1")?;
        let shipper = PortalNode::start_signing(&pki, SHIPPER, &registry, keys.path())?;
        let mut bank_settings = signing_settings(keys.path(), BANK)?;
        bank_settings.push((
            "LADING_PORTAL_SESSION_TTL_MS".into(),
            BANK_IDLE_MS.to_string(),
        ));
        let extra: Vec<(&str, &str)> = bank_settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let bank = PortalNode::start(&pki, BANK, &registry, &extra)?;
        shipper.add_user("sue", "signer", "signer password 2")?;
        shipper.add_user("ada", "admin", "admin password 2")?;
        bank.add_user("bea", "viewer", "viewer password 3")?;
        bank.add_user("bob", "signer", "signer password 3")?;
        Ok((carrier, shipper, bank))
    })?;

    // The carrier issues a straight bill to the shipper, consigned to the bank.
    let document = sample_document(REFERENCE, CARRIER, SHIPPER, Some(BANK), false, 7)?;
    let issue = Signer::new()?.issue(
        &document,
        SHIPPER,
        Timestamp::from_datetime_truncated(chrono::Utc::now()),
    )?;
    submit_all(&pki.registry_client()?, &registry, &[issue]).await?;

    let browser = Browser::start("portal_browser_journey", &[&pki.ca_pem()]).await?;
    let shipper_base = shipper.url("");
    browser
        .sign_in(&shipper_base, "sue", "signer password 2")
        .await?;
    let received = browser
        .reload_until(&shipper.url("/"), REFERENCE)
        .await
        .context("the issued bill reaches the shipper's dashboard")?;
    ensure!(
        received.to_lowercase().contains("just received"),
        "{received}"
    );
    ensure!(received.contains("In sync"), "{received}");
    browser.look("shipper-dashboard").await?;

    // The registry stops. The node says so, and keeps serving what it verified.
    tokio::task::block_in_place(|| registry.stop())?;
    let away = browser
        .reload_until(&shipper.url("/"), "Registry not answering")
        .await?;
    ensure!(away.contains("what you sign is kept here"), "{away}");
    browser.look("shipper-dashboard-registry-away").await?;
    let bill = shipper.url(&format!("/bills/{REFERENCE}"));
    browser.goto(&bill).await?;
    browser.wait_for("#actions").await?;
    let recipient = browser.find("#r-TRANSFER").await?;
    recipient
        .select_by_value(BANK)
        .await
        .context("the bank is offered as the transfer's recipient")?;
    browser.look("shipper-bill-transfer").await?;
    browser.click_to_load("Transfer: sign and submit").await?;
    browser.wait_for("#submission").await?;
    let waiting = browser.page_text().await?;
    ensure!(
        waiting.contains("The registry has not answered since"),
        "a pending submission says why it waits: {waiting}"
    );
    ensure!(!waiting.contains("On the ledger as entry"), "{waiting}");
    browser.look("submission-waiting").await?;

    // Back: the node sends what it kept; the page follows without a reload (htmx).
    tokio::task::block_in_place(|| registry.spawn())?;
    let mut sequenced = false;
    for _ in 0..300 {
        if browser
            .page_text()
            .await?
            .contains("On the ledger as entry")
        {
            sequenced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(sequenced, "the submission page never showed the entry");
    ensure!(
        browser.find_all("#registry-away").await?.is_empty(),
        "nothing waits any more"
    );
    browser.look("submission-sequenced").await?;
    browser.reload_until(&shipper.url("/"), "In sync").await?;

    // The bill arrives in the bank's portal, verified, with the transfer in its history.
    let second = browser.open_another().await?;
    let bank_base = bank.url("");
    second
        .sign_in(&bank_base, "bea", "viewer password 3")
        .await?;
    let dashboard = second.reload_until(&bank.url("/"), REFERENCE).await?;
    ensure!(
        dashboard.to_lowercase().contains("just received"),
        "{dashboard}"
    );
    second.look("bank-dashboard").await?;
    let bank_bill = bank.url(&format!("/bills/{REFERENCE}"));
    let page = second
        .reload_until(&bank_bill, "Verified on the ledger")
        .await?;
    ensure!(
        page.contains("Transfer"),
        "the transfer is in the history: {page}"
    );
    ensure!(
        page.contains("Surrender for delivery"),
        "the bank, now holding it, may surrender it for delivery: {page}"
    );
    ensure!(
        page.contains("A signer of your party signs these"),
        "a viewer is shown the actions, not offered them: {page}"
    );
    ensure!(
        second.find_all("#actions form").await?.is_empty(),
        "no form for a viewer"
    );
    second.look("bank-bill").await?;

    // Idle past its time: the next click leads to sign-in, which says so, then back.
    tokio::time::sleep(Duration::from_millis(BANK_IDLE_MS + 1_000)).await;
    second.goto(&bank.url("/bills")).await?;
    second.wait_for("form[action='/login']").await?;
    let login = second.page_text().await?;
    ensure!(login.contains("Your session has ended"), "{login}");
    second.look("bank-session-ended").await?;
    second.fill_label("Username", "bea").await?;
    second.fill_label("Password", "viewer password 3").await?;
    second.click_to_load("Sign in").await?;
    second.wait_for("form[action='/logout']").await?;
    ensure!(
        second.current_url().await?.ends_with("/bills"),
        "back on the page asked for: {}",
        second.current_url().await?
    );
    // The bank's user is no user of the shipper's portal: the same refusal as a wrong password.
    second.goto(&shipper.url("/login")).await?;
    second.wait_for("form[action='/login']").await?;
    second.fill_label("Username", "bea").await?;
    second.fill_label("Password", "viewer password 3").await?;
    second.click_to_load("Sign in").await?;
    second.wait_for("form[action='/login']").await?;
    let refused = second.page_text().await?;
    ensure!(
        second.find_all("form[action='/logout']").await?.is_empty(),
        "not signed in: {refused}"
    );
    second.look("shipper-refuses-bank-user").await?;
    second.goto(&shipper.url("/login")).await?;
    second.wait_for("form[action='/login']").await?;
    second.fill_label("Username", "sue").await?;
    second.fill_label("Password", "not her password").await?;
    second.click_to_load("Sign in").await?;
    second.wait_for("form[action='/login']").await?;
    let wrong = second.page_text().await?;
    ensure!(
        wrong == refused.replace("bea", "sue"),
        "another party's user is refused as a wrong password is:\n{refused}\n---\n{wrong}"
    );

    // The bank, holding it as its consignee, surrenders it for delivery; the carrier accepts.
    second
        .sign_in(&bank_base, "bob", "signer password 3")
        .await?;
    second.goto(&bank_bill).await?;
    second
        .sign_and_submit("Surrender for delivery: sign and submit")
        .await?;
    let third = browser.open_another().await?;
    third
        .sign_in(&carrier.url(""), "sam", "signer password 1")
        .await?;
    let carrier_bill = carrier.url(&format!("/bills/{REFERENCE}"));
    let offered = third
        .reload_until(&carrier_bill, "Accept the surrender (SACC)")
        .await?;
    ensure!(
        offered.contains("Reject the surrender (SREJ)") && !offered.contains("Void"),
        "the carrier is offered to accept or reject, nothing else: {offered}"
    );
    third.look("carrier-surrender-for-delivery").await?;
    let dashboard = third.reload_until(&carrier.url("/"), REFERENCE).await?;
    ensure!(
        dashboard
            .to_lowercase()
            .contains("surrenders to accept or reject"),
        "{dashboard}"
    );
    third.goto(&carrier_bill).await?;
    third
        .sign_and_submit("Accept the surrender (SACC): sign and submit")
        .await?;
    let delivered = second
        .reload_until(&bank_bill, "Surrendered for delivery")
        .await?;
    ensure!(
        second.find_all("#actions form").await?.is_empty() && delivered.contains("Nothing"),
        "a bill surrendered for delivery is closed: nothing more is offered: {delivered}"
    );
    second.look("bank-bill-delivered").await?;
    third.close().await?;
    second.close().await?;

    // The shipper's other pages: its submissions, the audit log, drafts, users (an admin's).
    for (path, name, needle) in [
        ("/submissions", "submissions", "TRANSFER"),
        ("/audit", "audit", "sue"),
        ("/drafts", "drafts", "Drafts"),
    ] {
        browser.goto(&shipper.url(path)).await?;
        let text = browser.page_text().await?;
        ensure!(text.contains(needle), "{path}: {text}");
        browser.look(name).await?;
    }
    browser.sign_out().await?;
    browser
        .sign_in(&shipper_base, "ada", "admin password 2")
        .await?;
    browser.goto(&shipper.url("/users")).await?;
    let users = browser.page_text().await?;
    ensure!(users.contains("sue") && users.contains("signer"), "{users}");
    browser.look("users").await?;

    // The registry's operator view.
    browser
        .sign_in(&operator_base, "ops", "operator password 1")
        .await?;
    for (path, name) in [
        ("/", "operator-replicas"),
        ("/checkpoints", "operator-checkpoints"),
        ("/ingest", "operator-ingest"),
    ] {
        browser.goto(&format!("{operator_base}{path}")).await?;
        browser.wait_for("form[action='/logout']").await?;
        browser.look(name).await?;
    }
    browser.close().await?;
    Ok(())
}
