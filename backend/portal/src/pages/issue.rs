//! Issuing a bill of lading: `GET/POST /bills/new` (a clerk or signer fills the form; it is
//! checked with the domain's own parsers and kept as a draft), `GET /drafts` and `GET
//! /drafts/{id}` (review), `POST /drafts/{id}/sign` (a signer signs the ISSUE with the
//! node's key and hands it to the outbox; see [`crate::custody`]).
//!
//! A field the domain refuses is shown next to the field, with everything typed kept; the
//! whole document is then parsed by [`TransportDocument::from_json`], whose error names the
//! member (a JSON Pointer) and so the field.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lading_domain::transition::TransitionPayload;
use lading_domain::{PartyId, Timestamp, TransportDocument};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::auth::Permission;
use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed, CsrfForm};
use crate::view::{self, Layout, Names};

/// One input of the form.
#[derive(Debug)]
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `date`, `party`, `party-optional`, `type`, `unit`, `check`, `number`.
    pub kind: &'static str,
    pub value: String,
    pub error: Option<String>,
    pub hint: &'static str,
}

/// A party to choose.
#[derive(Debug)]
pub struct PartyOption {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "issue.html")]
struct IssuePage {
    layout: Layout,
    csrf: String,
    fields: Vec<FieldView>,
    parties: Vec<PartyOption>,
    general: Option<String>,
    has_key: bool,
}

/// The form's fields: name, label, kind, hint.
const FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "reference",
        "Document reference",
        "text",
        "e.g. OCNL2026000123",
    ),
    ("type_code", "Type", "type", ""),
    ("to_order", "To order (negotiable)", "check", ""),
    ("carrier_code", "Carrier code (SCAC)", "text", "e.g. OCNL"),
    ("shipper", "Shipper", "party", ""),
    ("consignee", "Consignee", "party-optional", ""),
    ("notify", "Notify party", "party-optional", ""),
    (
        "issue_to",
        "Issue to (first holder)",
        "party",
        "usually the shipper",
    ),
    ("vessel", "Vessel", "text", ""),
    ("voyage", "Voyage", "text", "carrier's export voyage number"),
    (
        "port_of_loading",
        "Port of loading",
        "text",
        "UN/LOCODE, e.g. NLRTM",
    ),
    (
        "port_of_discharge",
        "Port of discharge",
        "text",
        "UN/LOCODE, e.g. SGSIN",
    ),
    (
        "place_of_receipt",
        "Place of receipt",
        "text",
        "UN/LOCODE (optional)",
    ),
    (
        "place_of_delivery",
        "Place of delivery",
        "text",
        "UN/LOCODE (optional)",
    ),
    ("issue_date", "Issue date", "date", ""),
    ("shipped_on_board", "Shipped on board", "date", "optional"),
    ("goods", "Description of goods", "text", ""),
    ("hs_code", "HS code", "text", "6 to 10 digits"),
    (
        "container",
        "Container number",
        "text",
        "ISO 6346, e.g. CSQU3054383",
    ),
    ("iso_code", "ISO equipment code", "text", "e.g. 22G1"),
    ("seal", "Seal number", "text", "optional"),
    ("packages", "Number of packages", "number", ""),
    (
        "package_code",
        "Package code",
        "text",
        "UN/ECE Rec. 21, e.g. BX (optional)",
    ),
    ("package_description", "Packages", "text", "e.g. Boxes"),
    ("weight", "Gross weight", "text", "e.g. 2400.5"),
    ("weight_unit", "Weight unit", "unit", ""),
];

/// Which form field a member of the document (JSON Pointer) comes from.
fn field_of(path: &str) -> &'static str {
    const TOP: &[(&str, &str)] = &[
        ("/transportDocumentReference", "reference"),
        ("/transportDocumentTypeCode", "type_code"),
        ("/isToOrder", "to_order"),
        ("/carrierCode", "carrier_code"),
        ("/carrier", "form"),
        ("/shipper", "shipper"),
        ("/consignee", "consignee"),
        ("/notifyParties", "notify"),
        ("/vesselName", "vessel"),
        ("/carrierExportVoyageNumber", "voyage"),
        ("/portOfLoading", "port_of_loading"),
        ("/portOfDischarge", "port_of_discharge"),
        ("/placeOfReceipt", "place_of_receipt"),
        ("/placeOfDelivery", "place_of_delivery"),
        ("/issueDate", "issue_date"),
        ("/shippedOnBoardDate", "shipped_on_board"),
    ];
    const INNER: &[(&str, &str)] = &[
        ("equipmentReference", "container"),
        ("ISOEquipmentCode", "iso_code"),
        ("seals", "seal"),
        ("descriptionOfGoods", "goods"),
        ("HSCodes", "hs_code"),
        ("numberOfPackages", "packages"),
        ("packageCode", "package_code"),
        ("outerPackaging/description", "package_description"),
        ("cargoGrossWeight", "weight"),
    ];
    if let Some((_, f)) = TOP
        .iter()
        .find(|(p, _)| path == *p || path.starts_with(&format!("{p}/")))
    {
        return f;
    }
    INNER
        .iter()
        .find(|(p, _)| path.contains(p))
        .map_or("form", |(_, f)| f)
}

type Form = BTreeMap<String, String>;

fn get<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

/// What the form makes: the document and who it is issued to, or the errors by field.
fn build(
    form: &Form,
    carrier: &PartyId,
    names: &Names,
) -> Result<(TransportDocument, PartyId), BTreeMap<&'static str, String>> {
    let mut errors = BTreeMap::new();
    // Each field on its own first, with the domain's own types: every refused field is
    // shown at once.
    fn check<T: DeserializeOwned>(
        errors: &mut BTreeMap<&'static str, String>,
        form: &Form,
        name: &'static str,
        optional: bool,
    ) {
        let v = get(form, name);
        if v.is_empty() {
            if !optional {
                errors.insert(name, "required".into());
            }
            return;
        }
        if let Err(e) = serde_json::from_value::<T>(Value::String(v.to_owned())) {
            errors.insert(name, e.to_string());
        }
    }
    use lading_domain::ids::{ContainerNumber, Date, DocumentReference, HsCode, UnLocode};
    check::<DocumentReference>(&mut errors, form, "reference", false);
    check::<ContainerNumber>(&mut errors, form, "container", false);
    check::<UnLocode>(&mut errors, form, "port_of_loading", false);
    check::<UnLocode>(&mut errors, form, "port_of_discharge", false);
    check::<UnLocode>(&mut errors, form, "place_of_receipt", true);
    check::<UnLocode>(&mut errors, form, "place_of_delivery", true);
    check::<Date>(&mut errors, form, "issue_date", false);
    check::<Date>(&mut errors, form, "shipped_on_board", true);
    check::<HsCode>(&mut errors, form, "hs_code", false);
    for name in [
        "carrier_code",
        "vessel",
        "voyage",
        "goods",
        "iso_code",
        "package_description",
    ] {
        if get(form, name).is_empty() {
            errors.insert(name, "required".into());
        }
    }
    for (name, optional) in [
        ("shipper", false),
        ("consignee", true),
        ("notify", true),
        ("issue_to", false),
    ] {
        let v = get(form, name);
        if v.is_empty() {
            if !optional {
                errors.insert(name, "choose a party".into());
            }
        } else if v.parse::<PartyId>().is_err() || names.name(v) == v {
            errors.insert(name, "not a party of the consortium".into());
        }
    }
    let packages = get(form, "packages").parse::<u32>();
    if packages.is_err() {
        errors.insert("packages", "a whole number of packages".into());
    }
    let weight = get(form, "weight").parse::<f64>();
    if !weight.as_ref().is_ok_and(|w| w.is_finite() && *w > 0.0) {
        errors.insert("weight", "a positive number, e.g. 2400.5".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let container = get(form, "container");
    let mut doc = json!({
        "transportDocumentReference": get(form, "reference"),
        "transportDocumentTypeCode": if get(form, "type_code") == "SWB" { "SWB" } else { "BOL" },
        "isToOrder": !get(form, "to_order").is_empty(),
        "carrierCode": get(form, "carrier_code"),
        "carrier": carrier.as_str(),
        "shipper": get(form, "shipper"),
        "vesselName": get(form, "vessel"),
        "carrierExportVoyageNumber": get(form, "voyage"),
        "portOfLoading": get(form, "port_of_loading"),
        "portOfDischarge": get(form, "port_of_discharge"),
        "issueDate": get(form, "issue_date"),
        "consignmentItems": [{
            "descriptionOfGoods": [get(form, "goods")],
            "HSCodes": [get(form, "hs_code")],
            "cargoItems": [{
                "equipmentReference": container,
                "cargoGrossWeight": {
                    "value": weight.unwrap_or_default(),
                    "unit": if get(form, "weight_unit") == "LBR" { "LBR" } else { "KGM" },
                },
                "outerPackaging": {
                    "numberOfPackages": packages.unwrap_or_default(),
                    "description": get(form, "package_description"),
                },
            }],
        }],
        "utilizedTransportEquipments": [{
            "equipment": {"equipmentReference": container, "ISOEquipmentCode": get(form, "iso_code")},
            "isShipperOwned": false,
            "seals": [],
        }],
    });
    let optional = [
        ("consignee", "/consignee"),
        ("place_of_receipt", "/placeOfReceipt"),
        ("place_of_delivery", "/placeOfDelivery"),
        ("shipped_on_board", "/shippedOnBoardDate"),
    ];
    for (name, member) in optional {
        let v = get(form, name);
        if !v.is_empty() {
            doc[&member[1..]] = json!(v);
        }
    }
    if !get(form, "notify").is_empty() {
        doc["notifyParties"] = json!([get(form, "notify")]);
    }
    if !get(form, "package_code").is_empty() {
        doc["consignmentItems"][0]["cargoItems"][0]["outerPackaging"]["packageCode"] =
            json!(get(form, "package_code"));
    }
    if !get(form, "seal").is_empty() {
        doc["utilizedTransportEquipments"][0]["seals"] = json!([{"number": get(form, "seal")}]);
    }
    let document = TransportDocument::from_json(&doc).map_err(|e| {
        let mut errors = BTreeMap::new();
        errors.insert(field_of(&e.path), e.message);
        errors
    })?;
    let issue_to = get(form, "issue_to").parse::<PartyId>().map_err(|e| {
        let mut errors = BTreeMap::new();
        errors.insert("issue_to", e.to_string());
        errors
    })?;
    Ok((document, issue_to))
}

fn parties(names: &Names, portal: &crate::Portal) -> Vec<PartyOption> {
    let follower = portal.node().follower();
    let mut out: Vec<PartyOption> = follower
        .membership()
        .members()
        .into_iter()
        .filter(|m| m.removed_at.is_none())
        .map(|m| PartyOption {
            id: m.party.id.to_string(),
            name: names.name(m.party.id.as_str()).to_owned(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn page(
    portal: &crate::Portal,
    user: &crate::session::SignedIn,
    form: &Form,
    mut errors: BTreeMap<&'static str, String>,
) -> IssuePage {
    let names = Names::of(portal.node());
    let general = errors.remove("form");
    IssuePage {
        layout: Layout::signed_in("Issue a bill of lading", "issue", user, &names),
        csrf: user.csrf.clone(),
        fields: FIELDS
            .iter()
            .map(|&(name, label, kind, hint)| FieldView {
                name,
                label,
                kind,
                value: get(form, name).to_owned(),
                error: errors.remove(name),
                hint,
            })
            .collect(),
        parties: parties(&names, portal),
        general,
        has_key: portal.custody().is_some(),
    }
}

/// Refuses unless the node's party is a carrier (only a carrier issues bills of lading).
fn carriers_only(portal: &crate::Portal) -> Result<(), PortalError> {
    let follower = portal.node().follower();
    let role = follower
        .membership()
        .member(portal.node().party())
        .map(|m| m.party.role);
    if role == Some(lading_domain::party::Role::Carrier) {
        Ok(())
    } else {
        Err(PortalError::Refused(format!(
            "only a carrier issues bills of lading, and {} is not one",
            portal.node().party()
        )))
    }
}

/// `GET /bills/new`.
pub async fn form(
    req: HttpRequest,
    allowed: Allowed<need::Draft>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    carriers_only(&portal)?;
    let mut form = Form::new();
    form.insert(
        "issue_date".into(),
        chrono::Utc::now().date_naive().to_string(),
    );
    let page = web::block(move || page(&portal, &user, &form, BTreeMap::new())).await?;
    super::html(&page)
}

/// `POST /bills/new`: a draft, or the form again with what was refused next to its field.
pub async fn submit(req: HttpRequest, form: CsrfForm<Form>) -> Result<HttpResponse, PortalError> {
    let CsrfForm { user, form } = form;
    user.require(Permission::Draft)?;
    let portal = portal_of(&req)?;
    carriers_only(&portal)?;
    let answer = web::block(move || -> Result<Result<i64, IssuePage>, PortalError> {
        let names = Names::of(portal.node());
        let carrier = portal.node().party().clone();
        match build(&form, &carrier, &names) {
            Ok((document, issue_to)) => {
                let id = lading_store::portal::add_draft(
                    &mut *portal.conn()?,
                    document.reference().as_str(),
                    &document.to_json(),
                    issue_to.as_str(),
                    user.user_id,
                    &user.username,
                )?;
                lading_store::portal::audit(
                    &mut *portal.conn()?,
                    Some(user.user_id),
                    &user.username,
                    "draft ISSUE",
                    Some(document.reference().as_str()),
                    &json!({ "draft": id }),
                )?;
                Ok(Ok(id))
            }
            Err(errors) => Ok(Err(page(&portal, &user, &form, errors))),
        }
    })
    .await??;
    match answer {
        Ok(id) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/drafts/{id}")))
            .finish()),
        Err(page) => Ok(HttpResponse::UnprocessableEntity()
            .content_type("text/html; charset=utf-8")
            .body(page.render()?)),
    }
}

/// A draft as the pages show it.
#[derive(Debug)]
pub struct DraftLine {
    pub id: i64,
    pub reference: String,
    pub recipient: String,
    pub created_by: String,
    pub created_at: String,
    pub state: String,
    pub outbox_seq: Option<i64>,
}

#[derive(Template)]
#[template(path = "drafts.html")]
struct DraftsPage {
    layout: Layout,
    drafts: Vec<DraftLine>,
}

fn line(row: &lading_store::portal::DraftRow, names: &Names) -> DraftLine {
    DraftLine {
        id: row.id,
        reference: row.reference.clone(),
        recipient: names.name(&row.recipient).to_owned(),
        created_by: row.created_by_name.clone(),
        created_at: view::time(&row.created_at),
        state: row.state.clone(),
        outbox_seq: row.outbox_seq,
    }
}

/// `GET /drafts`.
pub async fn list(
    req: HttpRequest,
    allowed: Allowed<need::Draft>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let page = web::block(move || -> Result<_, PortalError> {
        let names = Names::of(portal.node());
        let rows = lading_store::portal::drafts(&mut *portal.conn()?, 200)?;
        Ok(DraftsPage {
            layout: Layout::signed_in("Drafts", "drafts", &user, &names),
            drafts: rows.iter().map(|r| line(r, &names)).collect(),
        })
    })
    .await??;
    super::html(&page)
}

#[derive(Template)]
#[template(path = "draft.html")]
struct DraftPage {
    layout: Layout,
    draft: DraftLine,
    csrf: String,
    facts: Vec<(&'static str, String)>,
    json: String,
    may_sign: bool,
    has_key: bool,
}

/// `GET /drafts/{id}`: the draft to review, and for a signer the button that signs it.
pub async fn show(
    req: HttpRequest,
    allowed: Allowed<need::Draft>,
    path: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let id = path.into_inner();
    let page = web::block(move || -> Result<_, PortalError> {
        let names = Names::of(portal.node());
        let row =
            lading_store::portal::draft(&mut *portal.conn()?, id)?.ok_or(PortalError::NotFound)?;
        let doc = TransportDocument::from_json(&row.document)
            .map_err(|e| PortalError::Internal(format!("draft {id}: {e}")))?;
        let facts = vec![
            ("Reference", doc.reference().to_string()),
            ("Shipper", names.name(doc.shipper().as_str()).to_owned()),
            (
                "Consignee",
                doc.consignee()
                    .map(|c| names.name(c.as_str()).to_owned())
                    .unwrap_or_else(|| "—".into()),
            ),
            ("Issue to", names.name(&row.recipient).to_owned()),
            (
                "Vessel / voyage",
                format!("{} {}", doc.vessel_name(), doc.voyage_number()),
            ),
            (
                "Ports",
                format!("{} → {}", doc.port_of_loading(), doc.port_of_discharge()),
            ),
            (
                "Containers",
                doc.container_numbers()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("Document checksum", doc.checksum().to_hex()),
        ];
        Ok(DraftPage {
            layout: Layout::signed_in(&format!("Draft {}", row.reference), "drafts", &user, &names),
            draft: line(&row, &names),
            csrf: user.csrf.clone(),
            facts,
            json: serde_json::to_string_pretty(&row.document).unwrap_or_default(),
            may_sign: user.role.may(Permission::Sign),
            has_key: portal.custody().is_some(),
        })
    })
    .await??;
    super::html(&page)
}

/// `POST /drafts/{id}/sign`: a signer signs the draft's ISSUE and hands it to the outbox.
pub async fn sign(
    req: HttpRequest,
    form: CsrfForm<BTreeMap<String, String>>,
    path: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let user = form.user;
    user.require(Permission::Sign)?;
    let portal = portal_of(&req)?;
    let id = path.into_inner();
    let seq = web::block(move || -> Result<i64, PortalError> {
        let row =
            lading_store::portal::draft(&mut *portal.conn()?, id)?.ok_or(PortalError::NotFound)?;
        if row.state != "draft" {
            return Err(PortalError::Refused(format!(
                "draft {id} was {} already",
                row.state
            )));
        }
        let doc = TransportDocument::from_json(&row.document)
            .map_err(|e| PortalError::Internal(format!("draft {id}: {e}")))?;
        let recipient: PartyId = row
            .recipient
            .parse()
            .map_err(|e| PortalError::Internal(format!("draft {id}: {e}")))?;
        let payload = TransitionPayload::issue(
            doc,
            portal.node().party().clone(),
            recipient,
            Timestamp::from_datetime_truncated(chrono::Utc::now()),
        )
        .map_err(|e| PortalError::Refused(e.to_string()))?;
        let submitted = crate::custody::sign_and_submit(&portal, &user, &payload)?;
        lading_store::portal::draft_submitted(&mut *portal.conn()?, id, submitted.seq)?;
        Ok(submitted.seq)
    })
    .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/submissions/{seq}")))
        .finish())
}
