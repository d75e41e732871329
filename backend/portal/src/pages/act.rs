//! Acting on a bill from its page: the actions the state machine allows the node's party now
//! ([`offered`]), and `POST /bills/{reference}/act`, which a signer uses to sign one and hand
//! it to the outbox (see [`crate::custody`]).
//!
//! What is offered is found by asking the state machine itself: every action, with every
//! party of the consortium as the recipient where the action names one, is tried on the
//! document's current state ([`DocumentState::apply`]); what it accepts is offered, with the
//! recipients it accepts. The same check runs again on submit (the state may have moved), and
//! the node checks once more before keeping the signed transition: the state machine has the
//! last word, and a refusal is shown in words.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::transition::{Action, ReasonCode, TransitionPayload};
use lading_domain::{Digest, DocumentState, Timestamp};
use serde::Deserialize;

use crate::auth::Permission;
use crate::error::PortalError;
use crate::session::{portal_of, CsrfForm};
use crate::view::Names;
use crate::Portal;

/// An action the party may take now, with the recipients the state machine accepts.
#[derive(Debug)]
pub struct Offer {
    /// The action's code, or `SWITCH_TO_PAPER` (a surrender for amendment with reason SWTP).
    pub code: &'static str,
    pub label: &'static str,
    /// `(id, name)`; empty for an action without a recipient.
    pub recipients: Vec<(String, String)>,
}

/// What the form of the bill page can ask for.
const CHOICES: &[(&str, Action, bool)] = &[
    ("TRANSFER", Action::Transfer, false),
    ("ENDORSE", Action::Endorse, false),
    ("ENDORSE_TO_ORDER", Action::EndorseToOrder, false),
    ("BLANK_ENDORSE", Action::BlankEndorse, false),
    (
        "SURRENDER_FOR_DELIVERY",
        Action::SurrenderForDelivery,
        false,
    ),
    (
        "SURRENDER_FOR_AMENDMENT",
        Action::SurrenderForAmendment,
        false,
    ),
    ("SWITCH_TO_PAPER", Action::SurrenderForAmendment, true),
    ("SACC", Action::Sacc, false),
    ("SREJ", Action::Srej, false),
    ("VOID", Action::Void, false),
];

fn label(code: &str) -> &'static str {
    match code {
        "TRANSFER" => "Transfer",
        "ENDORSE" => "Endorse",
        "ENDORSE_TO_ORDER" => "Endorse to order",
        "BLANK_ENDORSE" => "Endorse in blank",
        "SURRENDER_FOR_DELIVERY" => "Surrender for delivery",
        "SURRENDER_FOR_AMENDMENT" => "Surrender for amendment",
        "SWITCH_TO_PAPER" => "Switch to paper",
        "SACC" => "Accept the surrender (SACC)",
        "SREJ" => "Reject the surrender (SREJ)",
        "VOID" => "Void",
        _ => "Act",
    }
}

/// The payload of `action` by `actor`, or why the rules refuse it.
fn payload(
    state: &DocumentState,
    actor: &PartyId,
    action: Action,
    to_paper: bool,
    recipient: Option<PartyId>,
    time: Timestamp,
) -> Result<TransitionPayload, String> {
    let mut draft = state.draft(action, actor.clone(), recipient, time);
    if to_paper {
        draft.reason_code = Some(ReasonCode::SWTP);
    }
    let payload = TransitionPayload::new(draft).map_err(|e| e.to_string())?;
    state
        .apply(&payload, Digest::of(b"a transition not yet signed"))
        .map_err(|e| e.to_string())?;
    Ok(payload)
}

/// A time for a new transition: now, and never before the document's last one.
fn now_after(state: &DocumentState) -> Timestamp {
    let now = Timestamp::from_datetime_truncated(chrono::Utc::now());
    match state.head_time {
        Some(head) if head > now => head,
        _ => now,
    }
}

/// The actions the node's party may take on `state` now.
pub fn offered(portal: &Portal, state: &DocumentState, names: &Names) -> Vec<Offer> {
    let me = portal.node().party().clone();
    let members: Vec<PartyId> = portal
        .node()
        .follower()
        .membership()
        .members()
        .into_iter()
        .filter(|m| m.removed_at.is_none())
        .map(|m| m.party.id.clone())
        .collect();
    let time = now_after(state);
    let mut out = Vec::new();
    for &(code, action, to_paper) in CHOICES {
        let recipients: Vec<(String, String)> = if action.has_recipient() {
            members
                .iter()
                .filter(|p| payload(state, &me, action, to_paper, Some((*p).clone()), time).is_ok())
                .map(|p| (p.to_string(), names.name(p.as_str()).to_owned()))
                .collect()
        } else if payload(state, &me, action, to_paper, None, time).is_ok() {
            Vec::new()
        } else {
            continue;
        };
        if action.has_recipient() && recipients.is_empty() {
            continue;
        }
        out.push(Offer {
            code,
            label: label(code),
            recipients,
        });
    }
    out
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    pub action: String,
    #[serde(default)]
    pub recipient: String,
}

/// `POST /bills/{reference}/act`: a signer signs the action on the document's current state.
pub async fn act(
    req: HttpRequest,
    form: CsrfForm<ActForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let CsrfForm { user, form } = form;
    user.require(Permission::Sign)?;
    let portal = portal_of(&req)?;
    let reference: DocumentReference = path.parse().map_err(|_| PortalError::NotFound)?;
    let seq = web::block(move || -> Result<i64, PortalError> {
        let (state, _) = portal
            .node()
            .document_entries(&reference)?
            .ok_or(PortalError::NotFound)?;
        let &(_, action, to_paper) = CHOICES
            .iter()
            .find(|(code, _, _)| *code == form.action)
            .ok_or_else(|| PortalError::Refused(format!("{:?} is not an action", form.action)))?;
        let recipient = if action.has_recipient() {
            Some(form.recipient.trim().parse::<PartyId>().map_err(|_| {
                PortalError::Refused(format!("{} needs a recipient", label(&form.action)))
            })?)
        } else {
            None
        };
        let me = portal.node().party().clone();
        let payload = payload(&state, &me, action, to_paper, recipient, now_after(&state))
            .map_err(|why| {
                PortalError::Refused(format!(
                    "{} of {reference} by {me}: {why}",
                    label(&form.action)
                ))
            })?;
        Ok(crate::custody::sign_and_submit(&portal, &user, &payload)?.seq)
    })
    .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/submissions/{seq}")))
        .finish())
}

/// The carrier milestones (DCSA Track & Trace) the bill page offers its carrier.
pub const MILESTONES: &[(&str, &str)] = &[
    ("GTIN", "Gate in"),
    ("LOAD", "Loaded"),
    ("DEPA", "Vessel departed"),
    ("ARRI", "Vessel arrived"),
    ("DISC", "Discharged"),
    ("GTOT", "Gate out"),
];

#[derive(Debug, Deserialize)]
pub struct EventForm {
    pub code: String,
    pub location: String,
    #[serde(default)]
    pub container: String,
    #[serde(default)]
    pub remarks: String,
}

/// `POST /bills/{reference}/event`: a signer of the document's carrier records a milestone
/// of the document (or of one of its containers), signed and handed to the outbox.
pub async fn event(
    req: HttpRequest,
    form: CsrfForm<EventForm>,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    use lading_domain::event::{EventDraft, ShipmentEvent};
    let CsrfForm { user, form } = form;
    user.require(Permission::Sign)?;
    let portal = portal_of(&req)?;
    let reference: DocumentReference = path.parse().map_err(|_| PortalError::NotFound)?;
    let seq = web::block(move || -> Result<i64, PortalError> {
        let (state, _) = portal
            .node()
            .document_entries(&reference)?
            .ok_or(PortalError::NotFound)?;
        let me = portal.node().party().clone();
        if state.carrier != me {
            return Err(PortalError::Refused(format!(
                "only the carrier of {reference} records its milestones"
            )));
        }
        if !MILESTONES.iter().any(|(c, _)| *c == form.code) {
            return Err(PortalError::Refused(format!(
                "{:?} is not a carrier milestone",
                form.code
            )));
        }
        let refused = |what: &str, e: String| PortalError::Refused(format!("{what}: {e}"));
        let text = |v: &str| serde_json::Value::String(v.trim().to_owned());
        let optional = |v: &str| (!v.trim().is_empty()).then(|| text(v));
        let now = chrono::Utc::now();
        let draft = EventDraft {
            event_id: serde_json::from_value(text(&format!(
                "portal-{}-{}-{}",
                reference,
                form.code,
                now.timestamp_millis()
            )))
            .map_err(|e| refused("event id", e.to_string()))?,
            event_code: serde_json::from_value(text(&form.code))
                .map_err(|e| refused("event code", e.to_string()))?,
            actor: me,
            time: Timestamp::from_datetime_truncated(now),
            location: serde_json::from_value(text(&form.location))
                .map_err(|e| refused("location (a UN/LOCODE)", e.to_string()))?,
            document_reference: Some(reference.clone()),
            equipment_reference: optional(&form.container)
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| refused("container", e.to_string()))?,
            vessel_name: None,
            voyage_number: None,
            remarks: optional(&form.remarks)
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| refused("remarks", e.to_string()))?,
        };
        let event = ShipmentEvent::new(draft).map_err(|e| refused("the event", e.to_string()))?;
        Ok(crate::custody::sign_event_and_submit(&portal, &user, &event)?.seq)
    })
    .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/submissions/{seq}")))
        .finish())
}
