//! The portal's write side on real processes: a registry, the carrier's node and the
//! shipper's node, each with its portal and its party's signing key (the fixtures' TEST keys,
//! allowed by `LADING_PORTAL_ALLOW_TEST_KEYS`, in files of mode 0600).
//!
//! A clerk issues a bill of lading from the form (a container number with a wrong check digit
//! is shown next to its field, with what was typed kept), keeps it as a draft, and cannot
//! sign it; a forged form changes nothing; a signer signs it, the node forwards it, and it
//! arrives at the shipper's node. There the shipper's signer is offered only what the state
//! machine allows, surrenders it for amendment, and the carrier's signer — now offered SACC
//! and SREJ — accepts; a refused action is explained in words. With the registry stopped,
//! signing still works, and the submission is sequenced once the registry is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use anyhow::Result;
use lading_e2e::harness::{Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::{Pki, PortalNode};
use reqwest::StatusCode;

const CARRIER: &str = "carrier-oceanic";
const SHIPPER: &str = "shipper-acme";
const GOOD_CONTAINER: &str = "CSQU3054383";
/// The same container number with a wrong ISO 6346 check digit.
const BAD_CONTAINER: &str = "CSQU3054384";

fn key_settings(dir: &tempfile::TempDir, party: &str) -> Result<Vec<(String, String)>> {
    lading_e2e::portal::signing_settings(dir.path(), party)
}

fn start_node(
    pki: &Pki,
    party: &str,
    registry: &lading_e2e::harness::Server,
    keys: &tempfile::TempDir,
) -> Result<PortalNode> {
    PortalNode::start_signing(pki, party, registry, keys.path())
}

/// The issue form's fields, filled in for `reference` with `container`.
fn bill_form<'a>(reference: &'a str, container: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("reference", reference),
        ("type_code", "BOL"),
        ("carrier_code", "OCNL"),
        ("shipper", SHIPPER),
        ("consignee", "consignee-delta"),
        ("notify", ""),
        ("issue_to", SHIPPER),
        ("vessel", "Oceanic Harmony"),
        ("voyage", "2026E"),
        ("port_of_loading", "NLRTM"),
        ("port_of_discharge", "SGSIN"),
        ("place_of_receipt", ""),
        ("place_of_delivery", ""),
        ("issue_date", "2026-12-01"),
        ("shipped_on_board", ""),
        ("goods.0", "Bicycle parts"),
        ("hs_code.0", "871499"),
        ("container.0", container),
        ("iso_code.0", "22G1"),
        ("seal.0", "SEAL-77"),
        ("packages.0", "40"),
        ("package_code.0", "BX"),
        ("package_description.0", "Boxes"),
        ("weight.0", "3100.5"),
        ("weight_unit", "KGM"),
    ]
}

/// A count on `node`'s database, off the async workers.
fn count(node: &PortalNode, sql: &str) -> Result<u64> {
    tokio::task::block_in_place(|| node.count(sql))
}

/// Waits, off the async workers, until `node`'s submission `seq` is sequenced.
fn wait_sequenced(node: &PortalNode, seq: i64) -> Result<()> {
    tokio::task::block_in_place(|| node.wait_sequenced(seq))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_draft_sign_and_act_across_two_nodes() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let (_pki, _registry_db, _registry, carrier, shipper) =
        tokio::task::block_in_place(|| -> Result<_> {
            let pki = Pki::new(&[CARRIER, SHIPPER])?;
            let (registry_db, registry) = pki.plain_registry()?;
            let carrier = start_node(&pki, CARRIER, &registry, &keys)?;
            let shipper = start_node(&pki, SHIPPER, &registry, &keys)?;
            carrier.add_user("clara", "clerk", "clerk password 1")?;
            carrier.add_user("sam", "signer", "signer password 1")?;
            shipper.add_user("sue", "signer", "signer password 2")?;
            Ok((pki, registry_db, registry, carrier, shipper))
        })?;
    let reference = "OCNL2026770001";

    // A clerk fills the form with a container number whose check digit is wrong: the form
    // comes back with the error next to that field and everything typed kept; no draft.
    let mut clerk = carrier.browser()?;
    clerk.sign_in("clara", "clerk password 1").await?;
    let form = clerk.get("/bills/new").await?;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Shipper"), "{}", form.body);
    let refused = clerk
        .post_form(
            "/bills/new",
            "/bills/new",
            &bill_form(reference, BAD_CONTAINER),
        )
        .await?;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("data-field=\"container.0\""),
        "the container's error is shown next to it: {}",
        refused.body
    );
    assert!(!refused.body.contains("data-field=\"vessel\""));
    assert!(refused.body.contains(&format!("value=\"{BAD_CONTAINER}\"")));
    assert!(refused.body.contains("value=\"Oceanic Harmony\""));
    assert_eq!(count(&carrier, "SELECT count(*) FROM portal_drafts")?, 0);

    // Corrected, it is kept as a draft.
    let saved = clerk
        .post_form(
            "/bills/new",
            "/bills/new",
            &bill_form(reference, GOOD_CONTAINER),
        )
        .await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let draft = saved.location()?;
    assert!(draft.starts_with("/drafts/"), "{draft}");
    let review = clerk.get(&draft).await?;
    assert_eq!(review.status, StatusCode::OK);
    assert!(review.body.contains(reference) && review.body.contains(GOOD_CONTAINER));
    assert!(
        !review.body.contains("Sign and submit"),
        "a clerk is offered no signature"
    );

    // A clerk cannot sign: 403, and nothing changes.
    let sign = format!("{draft}/sign");
    let forbidden = clerk.post_form(&draft, &sign, &[]).await?;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    assert_eq!(count(&carrier, "SELECT count(*) FROM replica_outbox")?, 0);
    assert_eq!(
        count(
            &carrier,
            "SELECT count(*) FROM portal_drafts WHERE state = 'draft'"
        )?,
        1
    );

    // A signer with a forged CSRF token: refused, nothing changes.
    let mut signer = carrier.browser()?;
    signer.sign_in("sam", "signer password 1").await?;
    let forged = signer.post(&sign, &[("csrf", "forged-token")]).await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(count(&carrier, "SELECT count(*) FROM replica_outbox")?, 0);

    // The signer signs: the ISSUE goes through the node's outbox to the registry.
    let review = signer.get(&draft).await?;
    assert!(review.body.contains("Sign and submit"), "{}", review.body);
    let signed = signer.post_form(&draft, &sign, &[]).await?;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let issue_seq = signed.submission_seq()?;
    wait_sequenced(&carrier, issue_seq)?;
    let shown = signer.get(&format!("/submissions/{issue_seq}")).await?;
    assert!(
        shown.body.contains("sequenced") && shown.body.contains("sam"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("carrier-oceanic:test-2026"));
    assert_eq!(
        count(
            &carrier,
            "SELECT count(*) FROM portal_drafts WHERE state = 'submitted'"
        )?,
        1
    );
    // The audit log says who asked for the signature, with the key and the submission.
    assert_eq!(
        count(
            &carrier,
            &format!(
                "SELECT count(*) FROM portal_audit WHERE username = 'sam' AND action = 'sign ISSUE' \
                 AND document_ref = '{reference}' AND detail->>'kid' = 'carrier-oceanic:test-2026' \
                 AND (detail->>'outboxSeq')::bigint = {issue_seq}"
            )
        )?,
        1
    );
    let audit = signer.get("/audit").await?;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body.contains("sign ISSUE"));
    assert_eq!(clerk.get("/audit").await?.status, StatusCode::FORBIDDEN);

    // It arrives at the shipper's node, which holds it now.
    tokio::task::block_in_place(|| shipper.wait_for_documents(1))?;
    let bill = format!("/bills/{reference}");
    let mut sue = shipper.browser()?;
    sue.sign_in("sue", "signer password 2").await?;
    let page = sue.get(&bill).await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // A shipper's node issues nothing.
    let not_carrier = sue.get("/bills/new").await?;
    assert_eq!(not_carrier.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        not_carrier.body.contains("only a carrier issues"),
        "{}",
        not_carrier.body
    );
    // What the state machine allows the shipper (possessor of a straight bill) now.
    assert!(
        page.body.contains("data-action=\"TRANSFER\""),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("data-action=\"SURRENDER_FOR_AMENDMENT\""));
    assert!(page.body.contains("data-action=\"SWITCH_TO_PAPER\""));
    assert!(
        !page.body.contains("data-action=\"SURRENDER_FOR_DELIVERY\""),
        "only the consignee surrenders a straight bill for delivery"
    );
    assert!(
        !page.body.contains("data-action=\"ENDORSE\""),
        "a straight bill is not endorsed"
    );
    assert!(!page.body.contains("data-action=\"SACC\""));
    // The carrier, no longer in possession, may do nothing now.
    tokio::task::block_in_place(|| carrier.wait_for_documents(1))?;
    let page = signer.get(&bill).await?;
    assert!(page.body.contains("id=\"no-actions\""), "{}", page.body);

    // The carrier records a milestone of the container; the shipper's node sees it too.
    assert!(page.body.contains("id=\"milestones\""), "{}", page.body);
    assert!(
        !sue.get(&bill).await?.body.contains("id=\"milestones\""),
        "only the carrier records milestones"
    );
    let loaded = signer
        .post_form(
            &bill,
            &format!("{bill}/event"),
            &[
                ("code", "LOAD"),
                ("location", "NLRTM"),
                ("container", GOOD_CONTAINER),
                ("remarks", ""),
            ],
        )
        .await?;
    assert_eq!(loaded.status, StatusCode::SEE_OTHER, "{}", loaded.body);
    wait_sequenced(&carrier, loaded.submission_seq()?)?;
    sue.wait_page(&bill, "Event LOAD").await?;
    let bad = signer
        .post_form(
            &bill,
            &format!("{bill}/event"),
            &[
                ("code", "LOAD"),
                ("location", "Rotterdam"),
                ("container", ""),
                ("remarks", ""),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);

    // The shipper surrenders it for amendment to the carrier.
    let act = format!("{bill}/act");
    let surrendered = sue
        .post_form(
            &bill,
            &act,
            &[
                ("action", "SURRENDER_FOR_AMENDMENT"),
                ("recipient", CARRIER),
            ],
        )
        .await?;
    assert_eq!(
        surrendered.status,
        StatusCode::SEE_OTHER,
        "{}",
        surrendered.body
    );
    wait_sequenced(&shipper, surrendered.submission_seq()?)?;

    // The carrier is now offered SACC and SREJ, and nothing else but those.
    let page = signer.wait_page(&bill, "data-action=\"SACC\"").await?;
    assert!(page.body.contains("data-action=\"SREJ\""));
    assert!(!page.body.contains("data-action=\"TRANSFER\""));
    assert!(!page.body.contains("data-action=\"VOID\""));
    // An action the state machine refuses now is refused in words, and nothing is signed.
    let before = count(&carrier, "SELECT count(*) FROM replica_outbox")?;
    let refused = signer
        .post_form(
            &bill,
            &act,
            &[("action", "TRANSFER"), ("recipient", "consignee-delta")],
        )
        .await?;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Not accepted"), "{}", refused.body);
    assert_eq!(
        count(&carrier, "SELECT count(*) FROM replica_outbox")?,
        before
    );

    // The carrier accepts the surrender; voiding is offered next.
    let accepted = signer
        .post_form(&bill, &act, &[("action", "SACC"), ("recipient", SHIPPER)])
        .await?;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    wait_sequenced(&carrier, accepted.submission_seq()?)?;
    let page = signer.wait_page(&bill, "data-action=\"VOID\"").await?;
    assert!(!page.body.contains("data-action=\"SACC\""));
    let list = signer.get("/submissions").await?;
    assert!(
        list.body.contains("SACC") && list.body.contains("ISSUE"),
        "{}",
        list.body
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_works_while_the_registry_is_away() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let (_pki, _tls, _registry_db, mut registry, carrier) =
        tokio::task::block_in_place(|| -> Result<_> {
            let pki = Pki::new(&[CARRIER, SHIPPER])?;
            // The registry's certificate files are kept for its restart.
            let tls = Tls::from_pem(
                &std::fs::read_to_string(pki.cert("registry"))?,
                &std::fs::read_to_string(pki.key("registry"))?,
            )?;
            let registry_db = TestDb::new()?;
            let options = ServerOptions {
                client_ca: Some(pki.ca_pem()),
                ..ServerOptions::default()
            };
            let registry = Server::start(&registry_db, &tls, options)?;
            // Key custody: a node does not start with another party's key, nor with a key
            // file others may read.
            let foreign = key_settings(&keys, SHIPPER)?;
            let foreign: Vec<(&str, &str)> = foreign
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let refused = PortalNode::start(&pki, CARRIER, &registry, &foreign).unwrap_err();
            assert!(format!("{refused:#}").contains("exited"), "{refused:#}");
            let open = key_settings(&keys, CARRIER)?;
            std::fs::set_permissions(&open[0].1, std::fs::Permissions::from_mode(0o644))?;
            let open: Vec<(&str, &str)> =
                open.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert!(PortalNode::start(&pki, CARRIER, &registry, &open).is_err());
            let carrier = start_node(&pki, CARRIER, &registry, &keys)?;
            carrier.add_user("sam", "signer", "signer password 1")?;
            Ok((pki, tls, registry_db, registry, carrier))
        })?;
    let mut signer = carrier.browser()?;
    signer.sign_in("sam", "signer password 1").await?;
    tokio::task::block_in_place(|| registry.stop())?;

    let saved = signer
        .post_form(
            "/bills/new",
            "/bills/new",
            &bill_form("OCNL2026770002", GOOD_CONTAINER),
        )
        .await?;
    let draft = saved.location()?;
    let signed = signer
        .post_form(&draft, &format!("{draft}/sign"), &[])
        .await?;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let seq = signed.submission_seq()?;
    let pending = signer.get(&format!("/submissions/{seq}")).await?;
    assert!(
        pending.body.contains("id=\"submission-state\">pending<"),
        "{}",
        pending.body
    );
    assert_eq!(
        count(
            &carrier,
            "SELECT count(*) FROM replica_outbox WHERE state = 'pending'"
        )?,
        1
    );

    tokio::task::block_in_place(|| registry.spawn())?;
    wait_sequenced(&carrier, seq)?;
    let done = signer.get(&format!("/submissions/{seq}")).await?;
    assert!(
        done.body.contains("id=\"submission-state\">sequenced<"),
        "{}",
        done.body
    );
    assert!(
        done.body.contains("On the ledger as entry"),
        "{}",
        done.body
    );
    Ok(())
}
