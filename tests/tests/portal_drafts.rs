//! The issue form's cargo lines and a draft's life before it is signed, over HTTPS against a
//! real registry and a real carrier node (`lading replica` with its portal), as a browser
//! posts the forms.
//!
//! What must hold:
//! - "Add a cargo line" and "Remove line N" give the form back with the lines changed and
//!   everything typed kept (the lines after a removed one move up); nothing is saved;
//! - a container on two lines is one piece of equipment: another ISO code for it is refused
//!   next to that line's field; saved, the document holds one consignment item per line and
//!   each container once, with its seal;
//! - a draft opens in the form again with every line, and saving it changes that draft (no
//!   second one); the edit is in the audit log;
//! - a viewer may not discard; a clerk discards; a discarded draft can be neither signed nor
//!   edited, and nothing reaches the outbox;
//! - a signer signs a draft of several lines, and the bill's page shows each line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Result;
use lading_e2e::portal::{Browser, Page, Pki, PortalNode};
use reqwest::StatusCode;

const CARRIER: &str = "carrier-oceanic";
const SHIPPER: &str = "shipper-acme";
const REFERENCE: &str = "OCNL2026LINES1";
/// Containers with valid ISO 6346 check digits.
const BOX_A: &str = "CSQU3054383";
const BOX_B: &str = "MSKU9070323";

/// The document's own fields, filled in.
fn header(lines: usize) -> Vec<(String, String)> {
    [
        ("reference", REFERENCE),
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
        ("issue_date", "2026-12-01"),
        ("weight_unit", "KGM"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([("lines".to_owned(), lines.to_string())])
    .collect()
}

/// One cargo line's fields, for line `index`.
fn line(
    index: usize,
    container: &str,
    iso: &str,
    seal: &str,
    goods: &str,
) -> Vec<(String, String)> {
    [
        ("container", container),
        ("iso_code", iso),
        ("seal", seal),
        ("goods", goods),
        ("hs_code", "871499"),
        ("packages", "40"),
        ("package_code", "BX"),
        ("package_description", "Boxes"),
        ("weight", "3100.5"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{k}.{index}"), v.to_owned()))
    .collect()
}

async fn post(
    browser: &mut Browser,
    form_page: &str,
    path: &str,
    fields: &[(String, String)],
) -> Result<Page> {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post_form(form_page, path, &fields).await
}

/// The value of the input named `name` on `page`.
fn value_of(page: &Page, name: &str) -> Option<String> {
    let at = page.body.find(&format!("name=\"{name}\""))?;
    let rest = &page.body[at..];
    let value = rest[..rest.find('>')?].split("value=\"").nth(1)?;
    Some(value[..value.find('"')?].to_owned())
}

fn count(node: &PortalNode, sql: &str) -> Result<u64> {
    tokio::task::block_in_place(|| node.count(sql))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_lines_and_a_drafts_life_before_it_is_signed() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let (_pki, _registry_db, _registry, carrier) = tokio::task::block_in_place(|| -> Result<_> {
        let pki = Pki::new(&[CARRIER])?;
        let (registry_db, registry) = pki.plain_registry()?;
        let carrier = PortalNode::start_signing(&pki, CARRIER, &registry, keys.path())?;
        carrier.add_user("clara", "clerk", "clerk password 1")?;
        carrier.add_user("sam", "signer", "signer password 1")?;
        carrier.add_user("vic", "viewer", "viewer password 1")?;
        Ok((pki, registry_db, registry, carrier))
    })?;
    let mut clerk = carrier.browser()?;
    clerk.sign_in("clara", "clerk password 1").await?;

    // A second line added: the first kept, the second empty, nothing saved.
    let mut fields = header(1);
    fields.extend(line(0, BOX_A, "22G1", "SEAL-1", "Bicycle parts"));
    fields.push(("add_line".into(), "1".into()));
    let added = post(&mut clerk, "/bills/new", "/bills/new", &fields).await?;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(value_of(&added, "lines").as_deref(), Some("2"));
    assert_eq!(value_of(&added, "container.0").as_deref(), Some(BOX_A));
    assert_eq!(value_of(&added, "container.1").as_deref(), Some(""));
    assert_eq!(
        value_of(&added, "vessel").as_deref(),
        Some("Oceanic Harmony")
    );
    assert!(added.body.contains("Remove line 2"));
    assert!(!added.body.contains("p class=\"error\""), "no errors yet");
    assert_eq!(count(&carrier, "SELECT count(*) FROM portal_drafts")?, 0);

    // Three lines; the middle one taken out: the third moves up.
    let mut fields = header(3);
    fields.extend(line(0, BOX_A, "22G1", "SEAL-1", "Bicycle parts"));
    fields.extend(line(1, BOX_B, "45G1", "SEAL-2", "Spare tyres"));
    fields.extend(line(2, BOX_A, "", "", "Bicycle helmets"));
    let mut removing = fields.clone();
    removing.push(("remove_line".into(), "1".into()));
    let removed = post(&mut clerk, "/bills/new", "/bills/new", &removing).await?;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(value_of(&removed, "lines").as_deref(), Some("2"));
    assert_eq!(
        value_of(&removed, "goods.0").as_deref(),
        Some("Bicycle parts")
    );
    assert_eq!(
        value_of(&removed, "goods.1").as_deref(),
        Some("Bicycle helmets")
    );
    assert_eq!(value_of(&removed, "goods.2"), None);

    // The same container with another ISO code: refused next to that line's field.
    let mut clash = fields.clone();
    clash.retain(|(k, _)| k != "iso_code.2");
    clash.push(("iso_code.2".into(), "45G1".into()));
    let refused = post(&mut clerk, "/bills/new", "/bills/new", &clash).await?;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("data-field=\"iso_code.2\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("is a 22G1 on line 1"),
        "{}",
        refused.body
    );
    assert_eq!(count(&carrier, "SELECT count(*) FROM portal_drafts")?, 0);

    // Saved: three items, two containers, the seal on its container.
    let saved = post(&mut clerk, "/bills/new", "/bills/new", &fields).await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let draft = saved.location()?;
    let id: i64 = draft.trim_start_matches("/drafts/").parse()?;
    let document = |path: &str| {
        tokio::task::block_in_place(|| {
            carrier.db.psql(&format!(
                "SELECT document #>> '{path}' FROM portal_drafts WHERE id = {id}"
            ))
        })
        .map(|s| s.trim().to_owned())
    };
    assert_eq!(
        document("{consignmentItems,2,descriptionOfGoods,0}")?,
        "Bicycle helmets"
    );
    assert_eq!(
        document("{utilizedTransportEquipments,1,equipment,equipmentReference}")?,
        BOX_B
    );
    assert_eq!(document("{utilizedTransportEquipments,2}")?, "");
    assert_eq!(
        document("{utilizedTransportEquipments,0,seals,0,number}")?,
        "SEAL-1"
    );

    // Opened again in the form, with every line; edited: the same draft changes.
    let edit = format!("/bills/new?draft={id}");
    let form = clerk.get(&edit).await?;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(&format!("Edit draft #{id}")));
    assert_eq!(value_of(&form, "lines").as_deref(), Some("3"));
    assert_eq!(value_of(&form, "goods.1").as_deref(), Some("Spare tyres"));
    assert_eq!(value_of(&form, "iso_code.1").as_deref(), Some("45G1"));
    assert_eq!(value_of(&form, "seal.0").as_deref(), Some("SEAL-1"));
    assert_eq!(value_of(&form, "weight.2").as_deref(), Some("3100.5"));
    assert_eq!(
        value_of(&form, "draft").as_deref(),
        Some(id.to_string().as_str())
    );
    let mut edited = fields.clone();
    edited.retain(|(k, _)| k != "vessel");
    edited.push(("vessel".into(), "Oceanic Serenity".into()));
    edited.push(("draft".into(), id.to_string()));
    let saved_again = post(&mut clerk, &edit, "/bills/new", &edited).await?;
    assert_eq!(
        saved_again.status,
        StatusCode::SEE_OTHER,
        "{}",
        saved_again.body
    );
    assert_eq!(saved_again.location()?, draft);
    assert_eq!(count(&carrier, "SELECT count(*) FROM portal_drafts")?, 1);
    assert_eq!(document("{vesselName}")?, "Oceanic Serenity");
    assert_eq!(
        count(
            &carrier,
            "SELECT count(*) FROM portal_audit WHERE action = 'edit draft ISSUE' AND username = 'clara'"
        )?,
        1
    );

    // A viewer may not discard; the clerk does; then it can be neither signed nor edited.
    let discard = format!("{draft}/discard");
    let mut viewer = carrier.browser()?;
    viewer.sign_in("vic", "viewer password 1").await?;
    let forbidden = viewer.post_form("/", &discard, &[]).await?;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    let discarded = clerk.post_form(&draft, &discard, &[]).await?;
    assert_eq!(
        discarded.status,
        StatusCode::SEE_OTHER,
        "{}",
        discarded.body
    );
    assert_eq!(
        count(
            &carrier,
            &format!("SELECT count(*) FROM portal_drafts WHERE id = {id} AND state = 'discarded'")
        )?,
        1
    );
    let page = clerk.get(&draft).await?;
    assert!(!page.body.contains("Discard the draft") && !page.body.contains("Edit the draft"));
    let mut signer = carrier.browser()?;
    signer.sign_in("sam", "signer password 1").await?;
    let sign = signer.post_form("/", &format!("{draft}/sign"), &[]).await?;
    assert_eq!(
        sign.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        sign.body
    );
    assert!(sign.body.contains("discarded"), "{}", sign.body);
    let reopen = clerk.get(&edit).await?;
    assert_eq!(
        reopen.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reopen.body
    );
    let resave = post(&mut clerk, "/bills/new", "/bills/new", &edited).await?;
    assert_eq!(
        resave.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        resave.body
    );
    assert_eq!(count(&carrier, "SELECT count(*) FROM replica_outbox")?, 0);

    // A new draft of the three lines, signed: the bill's page shows each line.
    let saved = post(&mut clerk, "/bills/new", "/bills/new", &fields).await?;
    let draft = saved.location()?;
    let signed = signer
        .post_form(&draft, &format!("{draft}/sign"), &[])
        .await?;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    tokio::task::block_in_place(|| carrier.wait_sequenced(signed.submission_seq()?))?;
    let bill = signer
        .wait_page(&format!("/bills/{REFERENCE}"), "Verified on the ledger")
        .await?;
    for goods in [
        "Bicycle parts",
        "Spare tyres",
        "Bicycle helmets",
        BOX_A,
        BOX_B,
    ] {
        assert!(bill.body.contains(goods), "{goods}: {}", bill.body);
    }
    Ok(())
}
