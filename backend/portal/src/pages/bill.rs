//! `GET /bills/{reference}`: one bill of lading, laid out as the document it is (parties,
//! vessel, ports, goods, containers, weights; printable on one A4 page), the timeline of
//! every transition and shipment event (who, what, when, signed with which key), the chain of
//! possession, and a verification badge the page earns.
//!
//! Everything comes from [`lading_replica::node::Node::document_entries`]: the document's
//! rows, checked whole against the chain the node verified. A document that does not exist
//! and one the party is not entitled to (the node never held it) are the same 404; rows that
//! do not make the verified chain are the "chain damaged" page, never a wrong chain.
//!
//! The badge: the latest entry's inclusion proof against the latest checkpoint the node
//! verified, checked on this request — the checkpoint's signature with the registry's key, its
//! size against the proof's, and the proof from the entry's own bytes to the checkpoint's
//! root (`lading_domain::merkle::verify_inclusion`). It says which checkpoint, and shows the
//! failure when anything does not hold. An entry newer than that checkpoint waits for the
//! next one ("pending").

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lading_domain::event::SignedEvent;
use lading_domain::ids::DocumentReference;
use lading_domain::merkle::{leaf_hash, verify_inclusion};
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{DocumentState, TransportDocument};
use lading_replica::node::HeldEntry;

use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed};
use crate::view::{self, Layout, Names};
use crate::Portal;

/// A party on the document: its role there, name and id.
struct PartyLine {
    role: &'static str,
    name: String,
    id: String,
}

struct CargoLine {
    container: String,
    packages: String,
    weight: String,
}

struct GoodsLine {
    description: Vec<String>,
    hs_codes: String,
    cargo: Vec<CargoLine>,
}

struct ContainerLine {
    number: String,
    iso_code: String,
    shipper_owned: bool,
    seals: String,
}

/// One transition or event of the timeline.
struct Step {
    index: u64,
    when: String,
    what: String,
    kind: &'static str,
    actor: String,
    recipient: Option<String>,
    detail: Option<String>,
    key: String,
    leaf: String,
}

/// Who held the document from when.
struct Holder {
    name: String,
    since: String,
    how: &'static str,
    index: u64,
}

/// What the page's check of the latest entry came to.
enum Badge {
    Verified {
        index: u64,
        leaf: String,
        size: u64,
        root: String,
        signed_at: String,
        kid: String,
    },
    Pending {
        index: u64,
        size: Option<u64>,
    },
    Failed {
        index: u64,
        reason: String,
    },
}

#[derive(Template)]
#[template(path = "bill.html")]
struct BillPage {
    layout: Layout,
    reference: String,
    type_label: &'static str,
    state: &'static str,
    state_class: &'static str,
    to_order: bool,
    parties: Vec<PartyLine>,
    possessor: String,
    vessel: String,
    voyage: String,
    port_of_loading: String,
    port_of_discharge: String,
    place_of_receipt: Option<String>,
    place_of_delivery: Option<String>,
    issue_date: String,
    shipped_on_board: Option<String>,
    carrier_code: String,
    goods: Vec<GoodsLine>,
    containers: Vec<ContainerLine>,
    total_weight: String,
    total_packages: u64,
    document_checksum: String,
    timeline: Vec<Step>,
    holders: Vec<Holder>,
    badge: Badge,
    /// What the node's party may do now (see [`super::act`]), and whether this user may sign.
    offers: Vec<super::act::Offer>,
    may_sign: bool,
    /// For a carrier's clerk or signer, once the bill was surrendered for amendment: the form
    /// of the amended bill, filled in from this one.
    amend: Option<String>,
    has_key: bool,
    csrf: String,
    /// The node's party is the document's carrier: it records the shipment's milestones.
    is_carrier: bool,
    milestones: &'static [(&'static str, &'static str)],
    container_numbers: Vec<String>,
}

/// The latest entry checked against the latest checkpoint the node verified.
fn earn_badge(portal: &Portal, latest: &HeldEntry) -> Badge {
    let index = latest.index;
    let follower = portal.node().follower();
    let Some(checkpoint) = follower.latest_verified_checkpoint().cloned() else {
        return Badge::Pending { index, size: None };
    };
    let size = checkpoint.unverified().size;
    if index >= size {
        return Badge::Pending {
            index,
            size: Some(size),
        };
    }
    let Some((_, proof)) = follower.prove(index) else {
        return Badge::Failed {
            index,
            reason: format!("the node could not build a proof of entry {index}"),
        };
    };
    drop(follower);
    let verified = match checkpoint.verify(portal.registry_key()) {
        Ok(c) => c,
        Err(e) => {
            return Badge::Failed {
                index,
                reason: format!(
                    "the checkpoint's signature does not verify with the registry's key: {e}"
                ),
            }
        }
    };
    if proof.size != verified.size || proof.block_size != verified.block_size {
        return Badge::Failed {
            index,
            reason: format!(
                "the proof is for a ledger of {} entries, the checkpoint of {}",
                proof.size, verified.size
            ),
        };
    }
    let leaf = leaf_hash(latest.signed.as_bytes());
    match verify_inclusion(&proof, leaf, verified.root) {
        Ok(()) => Badge::Verified {
            index,
            leaf: leaf.to_hex(),
            size: verified.size,
            root: verified.root.to_hex(),
            signed_at: verified.time.to_string(),
            kid: checkpoint.kid().to_string(),
        },
        Err(e) => Badge::Failed {
            index,
            reason: format!("the inclusion proof does not verify: {e}"),
        },
    }
}

fn parties(doc: &TransportDocument, names: &Names) -> Vec<PartyLine> {
    let line = |role, id: &str| PartyLine {
        role,
        name: names.name(id).to_owned(),
        id: id.to_owned(),
    };
    let mut out = vec![
        line("Shipper", doc.shipper().as_str()),
        line("Carrier", doc.carrier().as_str()),
    ];
    match doc.consignee() {
        Some(c) if doc.is_to_order() => out.push(line("Consignee (to the order of)", c.as_str())),
        Some(c) => out.push(line("Consignee", c.as_str())),
        None => {}
    }
    if let Some(e) = doc.endorsee() {
        out.push(line("Endorsee at issue", e.as_str()));
    }
    for n in doc.notify_parties() {
        out.push(line("Notify party", n.as_str()));
    }
    out
}

fn goods(doc: &TransportDocument) -> (Vec<GoodsLine>, String, u64) {
    let mut kg = 0.0f64;
    let mut lb = 0.0f64;
    let mut packages = 0u64;
    let lines = doc
        .fields()
        .consignment_items
        .iter()
        .map(|item| GoodsLine {
            description: item
                .description_of_goods
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            hs_codes: item
                .hs_codes
                .iter()
                .map(|h| h.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
            cargo: item
                .cargo_items
                .iter()
                .map(|c| {
                    let unit = match c.cargo_gross_weight.unit {
                        lading_domain::document::WeightUnit::Kilogram => {
                            kg += c.cargo_gross_weight.value.get();
                            "kg"
                        }
                        lading_domain::document::WeightUnit::Pound => {
                            lb += c.cargo_gross_weight.value.get();
                            "lb"
                        }
                    };
                    let p = &c.outer_packaging;
                    packages += u64::from(p.number_of_packages);
                    CargoLine {
                        container: c.equipment_reference.as_str().to_owned(),
                        packages: format!(
                            "{} {}{}",
                            p.number_of_packages,
                            p.description.as_str(),
                            p.package_code
                                .as_ref()
                                .map(|code| format!(" ({})", code.as_str()))
                                .unwrap_or_default()
                        ),
                        weight: format!("{} {unit}", c.cargo_gross_weight.value),
                    }
                })
                .collect(),
        })
        .collect();
    let mut totals = Vec::new();
    if kg > 0.0 {
        totals.push(format!("{kg:.1} kg"));
    }
    if lb > 0.0 {
        totals.push(format!("{lb:.1} lb"));
    }
    (lines, totals.join(" + "), packages)
}

fn containers(doc: &TransportDocument) -> Vec<ContainerLine> {
    doc.fields()
        .utilized_transport_equipments
        .iter()
        .map(|u| ContainerLine {
            number: u.equipment.equipment_reference.as_str().to_owned(),
            iso_code: u.equipment.iso_equipment_code.as_str().to_owned(),
            shipper_owned: u.is_shipper_owned,
            seals: u
                .seals
                .iter()
                .map(|s| s.number.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// The timeline and the chain of possession, replaying the transitions through the state
/// machine (they were verified; this only reads off who held the document when).
fn history(
    entries: &[HeldEntry],
    names: &Names,
) -> (Option<TransportDocument>, Vec<Step>, Vec<Holder>) {
    let mut document = None;
    let mut steps = Vec::new();
    let mut holders: Vec<Holder> = Vec::new();
    let mut state: Option<DocumentState> = None;
    for entry in entries {
        let leaf = leaf_hash(entry.signed.as_bytes()).to_hex();
        if let Ok(t) = SignedTransition::parse(&entry.signed) {
            let p = t.payload();
            let when = view::time(&p.time().as_datetime());
            let next = match &state {
                None => DocumentState::issue(p, t.checksum()).ok(),
                Some(s) => s.apply(p, t.checksum()).ok(),
            };
            if p.action() == Action::Issue {
                document = p.transport_document().cloned();
            }
            if let Some(next) = next {
                let moved = state.as_ref().is_none_or(|s| s.possessor != next.possessor);
                if moved {
                    holders.push(Holder {
                        name: names.name(next.possessor.as_str()).to_owned(),
                        since: when.clone(),
                        how: view::action_label(p.action().as_str()),
                        index: entry.index,
                    });
                }
                state = Some(next);
            }
            steps.push(Step {
                index: entry.index,
                when,
                what: view::action_label(p.action().as_str()).to_owned(),
                kind: "transition",
                actor: names.name(p.actor().as_str()).to_owned(),
                recipient: p.recipient().map(|r| names.name(r.as_str()).to_owned()),
                detail: p.reason_code().map(|r| {
                    if p.is_switch_to_paper() {
                        "Switch to paper (SWTP)".to_owned()
                    } else {
                        format!("Reason {}", r.as_str())
                    }
                }),
                key: t.kid().to_string(),
                leaf,
            });
        } else if let Ok(e) = SignedEvent::parse(&entry.signed) {
            let event = e.event();
            let mut detail = vec![format!("at {}", event.location())];
            if let Some(c) = event.equipment_reference() {
                detail.push(format!("container {}", c.as_str()));
            }
            if let (Some(v), Some(voyage)) = (event.vessel_name(), event.voyage_number()) {
                detail.push(format!("{v} {voyage}"));
            }
            if let Some(r) = event.remarks() {
                detail.push(r.to_owned());
            }
            steps.push(Step {
                index: entry.index,
                when: view::time(&event.time().as_datetime()),
                what: format!("Event {}", event.event_code().as_str()),
                kind: "event",
                actor: names.name(event.actor().as_str()).to_owned(),
                recipient: None,
                detail: Some(detail.join(", ")),
                key: e.kid().to_string(),
                leaf,
            });
        }
    }
    (document, steps, holders)
}

pub async fn show(
    req: HttpRequest,
    allowed: Allowed<need::Read>,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    // Not a reference at all: the same page as a reference the node does not hold.
    let reference: DocumentReference = path.parse().map_err(|_| PortalError::NotFound)?;
    let (state, entries, badge, names, offers, has_key) =
        web::block(move || -> Result<_, PortalError> {
            let (state, entries) = portal
                .node()
                .document_entries(&reference)?
                .ok_or(PortalError::NotFound)?;
            let badge = match entries.last() {
                Some(latest) => earn_badge(&portal, latest),
                None => return Err(PortalError::NotFound),
            };
            let names = Names::of(portal.node());
            let offers = super::act::offered(&portal, &state, &names);
            Ok((
                state,
                entries,
                badge,
                names,
                offers,
                portal.custody().is_some(),
            ))
        })
        .await??;
    let (document, timeline, holders) = history(&entries, &names);
    let doc = document.ok_or(PortalError::NotFound)?;
    let (goods, total_weight, total_packages) = goods(&doc);
    let page = BillPage {
        layout: Layout::signed_in(doc.reference().as_str(), "bills", &user, &names),
        reference: doc.reference().to_string(),
        type_label: match doc.type_code() {
            lading_domain::document::DocumentTypeCode::BillOfLading => "Bill of lading",
            lading_domain::document::DocumentTypeCode::SeaWaybill => "Sea waybill",
        },
        state: view::state_label(state.status.as_str()),
        state_class: view::state_class(state.status.as_str()),
        to_order: doc.is_to_order(),
        parties: parties(&doc, &names),
        possessor: names.name(state.possessor.as_str()).to_owned(),
        vessel: doc.vessel_name().to_owned(),
        voyage: doc.voyage_number().to_owned(),
        port_of_loading: doc.port_of_loading().to_string(),
        port_of_discharge: doc.port_of_discharge().to_string(),
        place_of_receipt: doc.place_of_receipt().map(ToString::to_string),
        place_of_delivery: doc.place_of_delivery().map(ToString::to_string),
        issue_date: doc.issue_date().as_naive().to_string(),
        shipped_on_board: doc
            .shipped_on_board_date()
            .map(|d| d.as_naive().to_string()),
        carrier_code: doc.carrier_code().to_owned(),
        containers: containers(&doc),
        goods,
        total_weight,
        total_packages,
        document_checksum: state.document_checksum.to_hex(),
        timeline,
        holders,
        badge,
        offers,
        may_sign: user.role.may(crate::auth::Permission::Sign),
        amend: (user.party == state.carrier.as_str()
            && user.role.may(crate::auth::Permission::Draft)
            && super::issue::amendable(&state))
        .then(|| format!("/bills/new?amend={}", doc.reference())),
        has_key,
        csrf: user.csrf.clone(),
        is_carrier: user.party == state.carrier.as_str(),
        milestones: super::act::MILESTONES,
        container_numbers: doc
            .container_numbers()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    };
    super::html(&page)
}
