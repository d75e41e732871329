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
    /// The form's name for it: `reference`, or `container.2` for a cargo line's field.
    pub name: String,
    /// The element's id (`f-reference`, `f-container-2`).
    pub id: String,
    pub label: &'static str,
    /// `text`, `date`, `party`, `party-optional`, `type`, `unit`, `check`, `number`.
    pub kind: &'static str,
    pub value: String,
    pub error: Option<String>,
    pub hint: &'static str,
}

/// A titled group of the document's fields.
#[derive(Debug)]
pub struct GroupView {
    pub title: &'static str,
    pub fields: Vec<FieldView>,
}

/// One cargo line: a consignment item (goods, HS code) in one container.
#[derive(Debug)]
pub struct LineView {
    /// Counted from 1, as the page shows it.
    pub number: usize,
    pub index: usize,
    pub fields: Vec<FieldView>,
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
    groups: Vec<GroupView>,
    unit: FieldView,
    lines: Vec<LineView>,
    line_count: usize,
    may_add: bool,
    /// The draft being edited.
    draft: Option<i64>,
    /// The bill this one amends (and replaces).
    amends: Option<String>,
    parties: Vec<PartyOption>,
    general: Option<String>,
    has_key: bool,
}

/// A field: name, label, kind, hint.
type Field = (&'static str, &'static str, &'static str, &'static str);

/// The document's fields, by group.
const GROUPS: &[(&str, &[Field])] = &[
    (
        "The document",
        &[
            (
                "reference",
                "Document reference",
                "text",
                "e.g. OCNL2026000123",
            ),
            ("type_code", "Type", "type", ""),
            ("to_order", "To order (negotiable)", "check", ""),
            ("carrier_code", "Carrier code (SCAC)", "text", "e.g. OCNL"),
            ("issue_date", "Issue date", "date", ""),
            ("shipped_on_board", "Shipped on board", "date", "optional"),
        ],
    ),
    (
        "Parties",
        &[
            ("shipper", "Shipper", "party", ""),
            ("consignee", "Consignee", "party-optional", ""),
            ("notify", "Notify party", "party-optional", ""),
            (
                "issue_to",
                "Issue to (first holder)",
                "party",
                "usually the shipper",
            ),
        ],
    ),
    (
        "Voyage",
        &[
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
        ],
    ),
];

/// The weight unit, one for the whole document.
const UNIT: Field = ("weight_unit", "Weight unit", "unit", "");

/// The fields of one cargo line (`{name}.{index}` in the form).
const LINE: &[Field] = &[
    (
        "container",
        "Container number",
        "text",
        "ISO 6346, e.g. CSQU3054383",
    ),
    (
        "iso_code",
        "ISO equipment code",
        "text",
        "e.g. 22G1; once per container",
    ),
    ("seal", "Seal number", "text", "once per container"),
    ("goods", "Description of goods", "text", ""),
    ("hs_code", "HS code", "text", "6 to 10 digits"),
    ("packages", "Number of packages", "number", ""),
    (
        "package_code",
        "Package code",
        "text",
        "UN/ECE Rec. 21, e.g. BX (optional)",
    ),
    ("package_description", "Packages", "text", "e.g. Boxes"),
    ("weight", "Gross weight", "text", "e.g. 2400.5"),
];

/// Cargo lines a bill of lading made here holds at most.
pub const MAX_LINES: usize = 40;

type Form = BTreeMap<String, String>;
/// Why fields were refused, by the form's name of the field (`form`: the form as a whole).
type Errors = BTreeMap<String, String>;

fn get<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

fn line_name(name: &str, index: usize) -> String {
    format!("{name}.{index}")
}

/// How many cargo lines the form holds (its `lines` field, 1 to [`MAX_LINES`]).
fn line_count(form: &Form) -> usize {
    get(form, "lines")
        .parse::<usize>()
        .unwrap_or(1)
        .clamp(1, MAX_LINES)
}

/// The form with its cargo lines changed as its buttons ask: one added at the end
/// (`add_line`), or one taken out (`remove_line` = its index) with those after it moved up.
/// `None` when it asks for neither (the form is to be saved).
fn rearranged(form: &Form) -> Option<Form> {
    let count = line_count(form);
    let mut lines: Vec<BTreeMap<&'static str, String>> = (0..count)
        .map(|i| {
            LINE.iter()
                .map(|&(name, ..)| (name, get(form, &line_name(name, i)).to_owned()))
                .collect()
        })
        .collect();
    if form.contains_key("add_line") {
        if lines.len() < MAX_LINES {
            lines.push(BTreeMap::new());
        }
    } else if let Some(i) = form
        .get("remove_line")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if i < lines.len() && lines.len() > 1 {
            lines.remove(i);
        }
    } else {
        return None;
    }
    let mut out: Form = form
        .iter()
        .filter(|(k, _)| !k.contains('.') && *k != "add_line" && *k != "remove_line")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert("lines".into(), lines.len().to_string());
    for (i, line) in lines.into_iter().enumerate() {
        for (name, value) in line {
            out.insert(line_name(name, i), value);
        }
    }
    Some(out)
}

/// Which form field a member of the document (JSON Pointer) comes from; `equipment_lines`
/// gives, for each transport equipment, the first line of its container.
fn field_of(path: &str, equipment_lines: &[usize]) -> String {
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
        return (*f).to_owned();
    }
    // `/consignmentItems/{line}/…` or `/utilizedTransportEquipments/{equipment}/…`.
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (list, index) = (parts.next(), parts.next().and_then(|i| i.parse().ok()));
    let line = match (list, index) {
        (Some("consignmentItems"), Some(i)) => Some(i),
        (Some("utilizedTransportEquipments"), Some(j)) => equipment_lines.get(j).copied(),
        _ => None,
    };
    match (
        line,
        INNER
            .iter()
            .find(|(p, _)| path.contains(p))
            .map(|(_, f)| *f),
    ) {
        (Some(line), Some(field)) => line_name(field, line),
        (Some(line), None) => line_name("container", line),
        _ => "form".to_owned(),
    }
}

/// What the form makes: the document and who it is issued to, or the errors by field.
fn build(
    form: &Form,
    carrier: &PartyId,
    names: &Names,
) -> Result<(TransportDocument, PartyId), Errors> {
    use lading_domain::ids::{ContainerNumber, Date, DocumentReference, HsCode, UnLocode};
    let mut errors = Errors::new();
    // Each field on its own first, with the domain's own types: every refused field is
    // shown at once.
    fn check<T: DeserializeOwned>(errors: &mut Errors, form: &Form, name: &str, optional: bool) {
        let v = get(form, name);
        if v.is_empty() {
            if !optional {
                errors.insert(name.to_owned(), "required".into());
            }
            return;
        }
        if let Err(e) = serde_json::from_value::<T>(Value::String(v.to_owned())) {
            errors.insert(name.to_owned(), e.to_string());
        }
    }
    check::<DocumentReference>(&mut errors, form, "reference", false);
    check::<UnLocode>(&mut errors, form, "port_of_loading", false);
    check::<UnLocode>(&mut errors, form, "port_of_discharge", false);
    check::<UnLocode>(&mut errors, form, "place_of_receipt", true);
    check::<UnLocode>(&mut errors, form, "place_of_delivery", true);
    check::<Date>(&mut errors, form, "issue_date", false);
    check::<Date>(&mut errors, form, "shipped_on_board", true);
    for name in ["carrier_code", "vessel", "voyage"] {
        if get(form, name).is_empty() {
            errors.insert(name.to_owned(), "required".into());
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
                errors.insert(name.to_owned(), "choose a party".into());
            }
        } else if v.parse::<PartyId>().is_err() || names.name(v) == v {
            errors.insert(name.to_owned(), "not a party of the consortium".into());
        }
    }

    let unit = if get(form, "weight_unit") == "LBR" {
        "LBR"
    } else {
        "KGM"
    };
    let mut items = Vec::new();
    // Each container once, as first given: its ISO code, its seal, its first line.
    let mut equipment: Vec<(String, String, String, usize)> = Vec::new();
    for i in 0..line_count(form) {
        let at = |name: &str| line_name(name, i);
        check::<ContainerNumber>(&mut errors, form, &at("container"), false);
        check::<HsCode>(&mut errors, form, &at("hs_code"), false);
        for name in ["goods", "package_description"] {
            if get(form, &at(name)).is_empty() {
                errors.insert(at(name), "required".into());
            }
        }
        let packages = get(form, &at("packages")).parse::<u32>();
        if packages.is_err() {
            errors.insert(at("packages"), "a whole number of packages".into());
        }
        let weight = get(form, &at("weight")).parse::<f64>();
        if !weight.as_ref().is_ok_and(|w| w.is_finite() && *w > 0.0) {
            errors.insert(at("weight"), "a positive number, e.g. 2400.5".into());
        }
        let container = get(form, &at("container")).to_owned();
        let iso = get(form, &at("iso_code")).to_owned();
        let seal = get(form, &at("seal")).to_owned();
        match equipment.iter().find(|(c, ..)| *c == container) {
            Some((_, first_iso, first_seal, first)) => {
                if !iso.is_empty() && iso != *first_iso {
                    errors.insert(
                        at("iso_code"),
                        format!(
                            "container {container} is a {first_iso} on line {}",
                            first + 1
                        ),
                    );
                }
                if !seal.is_empty() && seal != *first_seal {
                    errors.insert(
                        at("seal"),
                        format!(
                            "container {container} has seal {} on line {}",
                            if first_seal.is_empty() {
                                "none"
                            } else {
                                first_seal
                            },
                            first + 1
                        ),
                    );
                }
            }
            None => {
                // A container's first line says what it is.
                if iso.is_empty() {
                    errors.insert(at("iso_code"), "required".into());
                }
                if seal.is_empty() {
                    errors.insert(at("seal"), "required: the container's seal".into());
                }
                equipment.push((container.clone(), iso, seal, i));
            }
        }
        let mut packaging = json!({
            "numberOfPackages": packages.unwrap_or_default(),
            "description": get(form, &at("package_description")),
        });
        if !get(form, &at("package_code")).is_empty() {
            packaging["packageCode"] = json!(get(form, &at("package_code")));
        }
        items.push(json!({
            "descriptionOfGoods": [get(form, &at("goods"))],
            "HSCodes": [get(form, &at("hs_code"))],
            "cargoItems": [{
                "equipmentReference": container,
                "cargoGrossWeight": { "value": weight.unwrap_or_default(), "unit": unit },
                "outerPackaging": packaging,
            }],
        }));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let equipments: Vec<Value> = equipment
        .iter()
        .map(|(container, iso, seal, _)| {
            json!({
                "equipment": {"equipmentReference": container, "ISOEquipmentCode": iso},
                "isShipperOwned": false,
                "seals": [{"number": seal}],
            })
        })
        .collect();
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
        "consignmentItems": items,
        "utilizedTransportEquipments": equipments,
    });
    let optional = [
        ("consignee", "consignee"),
        ("place_of_receipt", "placeOfReceipt"),
        ("place_of_delivery", "placeOfDelivery"),
        ("shipped_on_board", "shippedOnBoardDate"),
    ];
    for (name, member) in optional {
        let v = get(form, name);
        if !v.is_empty() {
            doc[member] = json!(v);
        }
    }
    if !get(form, "notify").is_empty() {
        doc["notifyParties"] = json!([get(form, "notify")]);
    }
    let equipment_lines: Vec<usize> = equipment.iter().map(|(.., line)| *line).collect();
    let document = TransportDocument::from_json(&doc).map_err(|e| {
        let mut errors = Errors::new();
        errors.insert(field_of(&e.path, &equipment_lines), e.message);
        errors
    })?;
    let issue_to = get(form, "issue_to").parse::<PartyId>().map_err(|e| {
        let mut errors = Errors::new();
        errors.insert("issue_to".into(), e.to_string());
        errors
    })?;
    Ok((document, issue_to))
}

/// The form that makes `document` again (a draft to edit): the inverse of [`build`] on what
/// [`build`] makes.
fn form_of(document: &Value, issue_to: &str) -> Form {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut form = Form::new();
    for (name, member) in [
        ("reference", "transportDocumentReference"),
        ("type_code", "transportDocumentTypeCode"),
        ("carrier_code", "carrierCode"),
        ("shipper", "shipper"),
        ("consignee", "consignee"),
        ("vessel", "vesselName"),
        ("voyage", "carrierExportVoyageNumber"),
        ("port_of_loading", "portOfLoading"),
        ("port_of_discharge", "portOfDischarge"),
        ("place_of_receipt", "placeOfReceipt"),
        ("place_of_delivery", "placeOfDelivery"),
        ("issue_date", "issueDate"),
        ("shipped_on_board", "shippedOnBoardDate"),
    ] {
        form.insert(name.into(), text(&document[member]));
    }
    if document["isToOrder"] == json!(true) {
        form.insert("to_order".into(), "on".into());
    }
    form.insert("notify".into(), text(&document["notifyParties"][0]));
    form.insert("issue_to".into(), issue_to.to_owned());
    let equipment = document["utilizedTransportEquipments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut line = 0;
    for item in document["consignmentItems"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for cargo in item["cargoItems"].as_array().into_iter().flatten() {
            let container = text(&cargo["equipmentReference"]);
            let held = equipment
                .iter()
                .find(|e| text(&e["equipment"]["equipmentReference"]) == container);
            let fields = [
                ("container", container.clone()),
                (
                    "iso_code",
                    held.map(|e| text(&e["equipment"]["ISOEquipmentCode"]))
                        .unwrap_or_default(),
                ),
                (
                    "seal",
                    held.map(|e| text(&e["seals"][0]["number"]))
                        .unwrap_or_default(),
                ),
                ("goods", text(&item["descriptionOfGoods"][0])),
                ("hs_code", text(&item["HSCodes"][0])),
                (
                    "packages",
                    text(&cargo["outerPackaging"]["numberOfPackages"]),
                ),
                (
                    "package_code",
                    text(&cargo["outerPackaging"]["packageCode"]),
                ),
                (
                    "package_description",
                    text(&cargo["outerPackaging"]["description"]),
                ),
                ("weight", text(&cargo["cargoGrossWeight"]["value"])),
            ];
            for (name, value) in fields {
                form.insert(line_name(name, line), value);
            }
            form.insert(
                "weight_unit".into(),
                text(&cargo["cargoGrossWeight"]["unit"]),
            );
            line += 1;
        }
    }
    form.insert("lines".into(), line.clamp(1, MAX_LINES).to_string());
    form
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

fn field_view(form: &Form, errors: &mut Errors, field: Field, line: Option<usize>) -> FieldView {
    let (name, label, kind, hint) = field;
    let (name, id) = match line {
        Some(i) => (line_name(name, i), format!("f-{name}-{i}")),
        None => (name.to_owned(), format!("f-{name}")),
    };
    FieldView {
        value: get(form, &name).to_owned(),
        error: errors.remove(&name),
        name,
        id,
        label,
        kind,
        hint,
    }
}

fn page(
    portal: &crate::Portal,
    user: &crate::session::SignedIn,
    form: &Form,
    mut errors: Errors,
) -> IssuePage {
    let names = Names::of(portal.node());
    let general = errors.remove("form");
    let count = line_count(form);
    let groups = GROUPS
        .iter()
        .map(|(title, fields)| GroupView {
            title,
            fields: fields
                .iter()
                .map(|&f| field_view(form, &mut errors, f, None))
                .collect(),
        })
        .collect();
    let unit = field_view(form, &mut errors, UNIT, None);
    let lines = (0..count)
        .map(|i| LineView {
            number: i + 1,
            index: i,
            fields: LINE
                .iter()
                .map(|&f| field_view(form, &mut errors, f, Some(i)))
                .collect(),
        })
        .collect();
    IssuePage {
        layout: Layout::signed_in("Issue a bill of lading", "issue", user, &names),
        csrf: user.csrf.clone(),
        groups,
        unit,
        lines,
        line_count: count,
        may_add: count < MAX_LINES,
        draft: get(form, "draft").parse().ok(),
        amends: Some(get(form, "amends").to_owned()).filter(|a| !a.is_empty()),
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

#[derive(Debug, Default, serde::Deserialize)]
pub struct NewQuery {
    /// A draft to edit.
    draft: Option<i64>,
    /// A bill surrendered for amendment, whose amended bill is to be issued.
    amend: Option<String>,
}

/// Whether a bill in `state` waits for its amended replacement: its amendment surrender was
/// accepted (then the carrier voids it) or it was voided.
pub fn amendable(state: &lading_domain::DocumentState) -> bool {
    matches!(
        state.status,
        lading_domain::Status::SurrenderedForAmendment | lading_domain::Status::Void
    )
}

/// The form of the amended bill that replaces `reference`: its document as issued, a new
/// reference to give, issued to the party that surrendered it for amendment.
fn amendment_form(portal: &crate::Portal, reference: &str) -> Result<Form, PortalError> {
    use lading_domain::transition::{Action, SignedTransition};
    let reference: lading_domain::ids::DocumentReference =
        reference.parse().map_err(|_| PortalError::NotFound)?;
    let (state, entries) = portal
        .node()
        .document_entries(&reference)?
        .ok_or(PortalError::NotFound)?;
    if state.carrier != *portal.node().party() {
        return Err(PortalError::Refused(format!(
            "only the carrier of {reference} issues its amended bill of lading"
        )));
    }
    if !amendable(&state) {
        return Err(PortalError::Refused(format!(
            "{reference} has no accepted amendment surrender: there is nothing to amend yet"
        )));
    }
    let transitions: Vec<SignedTransition> = entries
        .iter()
        .filter_map(|e| SignedTransition::parse(&e.signed).ok())
        .collect();
    let document = transitions
        .iter()
        .find_map(|t| t.payload().transport_document().cloned())
        .ok_or(PortalError::NotFound)?;
    let requester = transitions
        .iter()
        .rev()
        .find(|t| t.payload().action() == Action::SurrenderForAmendment)
        .map(|t| t.payload().actor().to_string())
        .unwrap_or_default();
    let mut form = form_of(&document.to_json(), &requester);
    form.insert("reference".into(), String::new());
    form.insert("amends".into(), reference.to_string());
    form.insert(
        "issue_date".into(),
        chrono::Utc::now().date_naive().to_string(),
    );
    Ok(form)
}

/// A draft that can still be changed (not signed, not discarded), or why not.
fn open_draft(
    conn: &mut lading_store::PgConnection,
    id: i64,
) -> Result<lading_store::portal::DraftRow, PortalError> {
    let row = lading_store::portal::draft(conn, id)?.ok_or(PortalError::NotFound)?;
    if row.state != "draft" {
        return Err(PortalError::Refused(format!(
            "draft {id} was {} already: it can no longer be changed",
            row.state
        )));
    }
    Ok(row)
}

/// `GET /bills/new`, or `GET /bills/new?draft=ID` to edit a draft.
pub async fn form(
    req: HttpRequest,
    allowed: Allowed<need::Draft>,
    query: web::Query<NewQuery>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    carriers_only(&portal)?;
    let NewQuery { draft, amend } = query.into_inner();
    let page = web::block(move || -> Result<_, PortalError> {
        let form = match (draft, amend) {
            (None, Some(reference)) => amendment_form(&portal, &reference)?,
            (Some(id), _) => {
                let row = open_draft(&mut *portal.conn()?, id)?;
                let mut form = form_of(&row.document, &row.recipient);
                form.insert("draft".into(), id.to_string());
                form
            }
            (None, None) => {
                let mut form = Form::new();
                form.insert(
                    "issue_date".into(),
                    chrono::Utc::now().date_naive().to_string(),
                );
                form
            }
        };
        Ok(page(&portal, &user, &form, Errors::new()))
    })
    .await??;
    super::html(&page)
}

/// `POST /bills/new`: a draft (or the draft edited), or the form again: with a cargo line
/// added or taken out, or with what was refused next to its field.
pub async fn submit(req: HttpRequest, form: CsrfForm<Form>) -> Result<HttpResponse, PortalError> {
    let CsrfForm { user, form } = form;
    user.require(Permission::Draft)?;
    let portal = portal_of(&req)?;
    carriers_only(&portal)?;
    let answer = web::block(
        move || -> Result<Result<i64, (bool, IssuePage)>, PortalError> {
            if let Some(form) = rearranged(&form) {
                return Ok(Err((false, page(&portal, &user, &form, Errors::new()))));
            }
            let names = Names::of(portal.node());
            let carrier = portal.node().party().clone();
            match build(&form, &carrier, &names) {
                Ok((document, issue_to)) => {
                    let mut conn = portal.conn()?;
                    let editing = get(&form, "draft").parse::<i64>().ok();
                    let id = match editing {
                        Some(id) => {
                            open_draft(&mut conn, id)?;
                            if !lading_store::portal::update_draft(
                                &mut conn,
                                id,
                                document.reference().as_str(),
                                &document.to_json(),
                                issue_to.as_str(),
                            )? {
                                return Err(PortalError::Refused(format!(
                                    "draft {id} was signed or discarded meanwhile"
                                )));
                            }
                            id
                        }
                        None => lading_store::portal::add_draft(
                            &mut conn,
                            document.reference().as_str(),
                            &document.to_json(),
                            issue_to.as_str(),
                            user.user_id,
                            &user.username,
                        )?,
                    };
                    lading_store::portal::audit(
                        &mut conn,
                        Some(user.user_id),
                        &user.username,
                        if editing.is_some() {
                            "edit draft ISSUE"
                        } else {
                            "draft ISSUE"
                        },
                        Some(document.reference().as_str()),
                        &json!({ "draft": id }),
                    )?;
                    Ok(Ok(id))
                }
                Err(errors) => Ok(Err((true, page(&portal, &user, &form, errors)))),
            }
        },
    )
    .await??;
    match answer {
        Ok(id) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/drafts/{id}")))
            .finish()),
        Err((refused, page)) => {
            let mut answer = if refused {
                HttpResponse::UnprocessableEntity()
            } else {
                HttpResponse::Ok()
            };
            Ok(answer
                .content_type("text/html; charset=utf-8")
                .body(page.render()?))
        }
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
    may_edit: bool,
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
            may_edit: user.role.may(Permission::Draft),
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

/// `POST /drafts/{id}/discard`: the draft is kept, marked discarded; it can no longer be
/// signed or changed.
pub async fn discard(
    req: HttpRequest,
    form: CsrfForm<BTreeMap<String, String>>,
    path: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let user = form.user;
    user.require(Permission::Draft)?;
    let portal = portal_of(&req)?;
    let id = path.into_inner();
    web::block(move || -> Result<(), PortalError> {
        let mut conn = portal.conn()?;
        let row = open_draft(&mut conn, id)?;
        if !lading_store::portal::discard_draft(&mut conn, id)? {
            return Err(PortalError::Refused(format!(
                "draft {id} was signed or discarded meanwhile"
            )));
        }
        lading_store::portal::audit(
            &mut conn,
            Some(user.user_id),
            &user.username,
            "discard draft ISSUE",
            Some(&row.reference),
            &json!({ "draft": id }),
        )?;
        Ok(())
    })
    .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/drafts/{id}")))
        .finish())
}
