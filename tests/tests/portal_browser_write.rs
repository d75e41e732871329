//! The portal's write side in a real headless Chromium, on real processes: a registry, the
//! carrier's node and the shipper's node, each portal signing with its party's key.
//!
//! The carrier's clerk fills in the issue form: a container number with a wrong check digit is
//! shown next to its field, what was typed is kept; corrected, the bill is saved as a draft,
//! which the clerk is not offered to sign. The carrier's signer signs it; the submission is
//! sequenced, and the bill's page earns its badge. In a second browser the shipper's signer
//! sees the bill arrive, is offered what the state machine allows, and surrenders it for
//! amendment; the carrier's signer is then offered to accept the surrender, and accepts, voids
//! it, and issues the amended bill from the form filled in from it, which reaches the shipper.
//! Every page passes axe-core and is photographed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{ensure, Context, Result};
use lading_e2e::browser::Browser;
use lading_e2e::portal::{Pki, PortalNode};

const CARRIER: &str = "carrier-oceanic";
const SHIPPER: &str = "shipper-acme";
const REFERENCE: &str = "OCNL2026BRWS01";
/// The amended bill that replaces it.
const AMENDED: &str = "OCNL2026BRWS02";

/// Sets a text field or picks an option of a select, by the form's field name.
async fn set(browser: &Browser, name: &str, value: &str) -> Result<()> {
    let css = format!("#f-{name}");
    let element = browser.find(&css).await?;
    if element.attr("type").await?.as_deref() == Some("date") {
        // Typing into a date input follows the browser's locale; set its value as a picker does.
        browser
            .client()
            .execute(
                "arguments[0].value = arguments[1];",
                vec![serde_json::to_value(&element)?, serde_json::json!(value)],
            )
            .await?;
    } else if element.tag_name().await? == "select" {
        element
            .select_by_value(value)
            .await
            .with_context(|| format!("{name}: no option {value}"))?;
    } else {
        browser.fill(&css, value).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_is_issued_signed_surrendered_and_the_surrender_accepted_in_real_browsers(
) -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[CARRIER, SHIPPER]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let keys = tempfile::tempdir()?;
    let (carrier, shipper) = tokio::task::block_in_place(|| -> Result<_> {
        let carrier = PortalNode::start_signing(&pki, CARRIER, &registry, keys.path())?;
        let shipper = PortalNode::start_signing(&pki, SHIPPER, &registry, keys.path())?;
        carrier.add_user("clara", "clerk", "clerk password 1")?;
        carrier.add_user("sam", "signer", "signer password 1")?;
        shipper.add_user("sue", "signer", "signer password 2")?;
        Ok((carrier, shipper))
    })?;
    let carrier_base = carrier.url("");
    let shipper_base = shipper.url("");

    let browser = Browser::start("portal_browser_write", &[&pki.ca_pem()]).await?;

    // The clerk fills in the form; a container number with a wrong check digit.
    browser
        .sign_in(&carrier_base, "clara", "clerk password 1")
        .await?;
    browser.goto(&carrier.url("/bills/new")).await?;
    browser.wait_for("form[action='/bills/new']").await?;
    browser.look("issue-form").await?;
    let fields = [
        ("reference", REFERENCE),
        ("type_code", "BOL"),
        ("carrier_code", "OCNL"),
        ("shipper", SHIPPER),
        ("consignee", "consignee-delta"),
        ("issue_to", SHIPPER),
        ("vessel", "Oceanic Harmony"),
        ("voyage", "2026E"),
        ("port_of_loading", "NLRTM"),
        ("port_of_discharge", "SGSIN"),
        ("issue_date", "2026-12-01"),
        ("goods-0", "Bicycle parts"),
        ("hs_code-0", "871499"),
        ("container-0", "CSQU3054384"),
        ("iso_code-0", "22G1"),
        ("seal-0", "SEAL-77"),
        ("packages-0", "40"),
        ("package_code-0", "BX"),
        ("package_description-0", "Boxes"),
        ("weight-0", "3100.5"),
        ("weight_unit", "KGM"),
    ];
    for (name, value) in fields {
        set(&browser, name, value).await?;
    }
    browser.click_to_load("Save draft").await?;
    let error = browser
        .wait_for("p.error[data-field='container.0']")
        .await?
        .text()
        .await?;
    ensure!(
        !error.is_empty(),
        "the container's error is shown next to it"
    );
    let kept = browser
        .find("#f-container-0")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(kept == "CSQU3054384", "what was typed is kept: {kept}");
    let mut refused = Vec::new();
    for error in browser.find_all("p.error").await? {
        refused.push(error.attr("data-field").await?.unwrap_or_default());
    }
    ensure!(
        refused == ["container.0"],
        "only the container is refused: {refused:?}"
    );
    browser.look("issue-form-refused").await?;

    // Corrected: a draft, which a clerk is not offered to sign.
    set(&browser, "container-0", "CSQU3054383").await?;
    browser.click_to_load("Save draft").await?;
    browser.wait_for(".crumbs").await?;
    ensure!(
        browser.current_url().await?.contains("/drafts/"),
        "saved, the clerk reviews the draft"
    );
    ensure!(
        browser
            .find_all("form[action$='/sign'] button")
            .await?
            .is_empty(),
        "a clerk is not offered to sign"
    );
    let draft = browser.current_url().await?;
    browser.look("draft-clerk").await?;
    browser.sign_out().await?;

    // The signer signs it; the submission is sequenced; the bill earns its badge.
    browser
        .sign_in(&carrier_base, "sam", "signer password 1")
        .await?;
    browser.goto(&draft).await?;
    browser.sign_and_submit("Sign and submit the ISSUE").await?;
    browser.look("submission").await?;
    let bill = carrier.url(&format!("/bills/{REFERENCE}"));
    browser
        .reload_until(&bill, "Verified on the ledger")
        .await?;
    browser.look("bill-issued").await?;

    // The shipper's signer, in a browser of its own, sees it arrive and surrenders it.
    let second = browser.open_another().await?;
    second
        .sign_in(&shipper_base, "sue", "signer password 2")
        .await?;
    let shipper_bill = shipper.url(&format!("/bills/{REFERENCE}"));
    let offered = second
        .reload_until(&shipper_bill, "Surrender for amendment")
        .await?;
    ensure!(
        !offered.contains("Accept the surrender"),
        "the holder is not offered what only the carrier may do"
    );
    second.look("bill-at-shipper").await?;
    second
        .sign_and_submit("Surrender for amendment: sign and submit")
        .await?;

    // The carrier is now offered to accept the surrender, and accepts.
    let offered = browser
        .reload_until(&bill, "Accept the surrender (SACC)")
        .await?;
    ensure!(
        !offered.contains("Surrender for amendment: sign"),
        "the carrier is not offered the holder's surrender"
    );
    browser.look("bill-surrender-requested").await?;
    browser
        .sign_and_submit("Accept the surrender (SACC): sign and submit")
        .await?;
    second
        .reload_until(&shipper_bill, "Surrendered for amendment")
        .await?;
    second.look("bill-surrendered-at-shipper").await?;

    // The carrier voids it and issues the amended bill: the form filled in from this one,
    // for a new reference, to the shipper who surrendered it.
    browser.reload_until(&bill, "Void: sign and submit").await?;
    browser.sign_and_submit("Void: sign and submit").await?;
    browser
        .reload_until(&bill, "Issue the amended bill of lading")
        .await?;
    browser.look("bill-voided").await?;
    browser
        .click_to_load("Issue the amended bill of lading")
        .await?;
    browser.wait_for("#amends").await?;
    let prefilled = |name: &'static str| {
        let browser = &browser;
        async move {
            browser
                .find(&format!("#f-{name}"))
                .await?
                .prop("value")
                .await
                .map(Option::unwrap_or_default)
                .map_err(anyhow::Error::from)
        }
    };
    ensure!(prefilled("reference").await?.is_empty(), "a new reference");
    ensure!(
        prefilled("issue_to").await? == SHIPPER,
        "to who surrendered it"
    );
    ensure!(prefilled("container-0").await? == "CSQU3054383");
    ensure!(prefilled("vessel").await? == "Oceanic Harmony");
    browser.look("issue-amended").await?;
    set(&browser, "reference", AMENDED).await?;
    set(&browser, "vessel", "Oceanic Serenity").await?;
    browser.click_to_load("Save draft").await?;
    browser.wait_for("form[action$='/sign']").await?;
    browser.sign_and_submit("Sign and submit the ISSUE").await?;
    let amended = second
        .reload_until(
            &shipper.url(&format!("/bills/{AMENDED}")),
            "Verified on the ledger",
        )
        .await?;
    ensure!(amended.contains("Oceanic Serenity"), "{amended}");
    second.look("amended-at-shipper").await?;

    second.close().await?;
    browser.close().await?;
    Ok(())
}
