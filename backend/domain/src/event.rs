//! Signed shipment events: facts about a shipment that move no title.
//!
//! An event is a compact JWS (see [`crate::jws`]) with `typ` `"lading-event+jws"` whose
//! payload is RFC 8785 canonical JSON of (unknown members and `null` refused):
//!
//! | member | rule |
//! |---|---|
//! | `eventId` | 1 to 64 chars, no leading/trailing whitespace, no control characters; unique per actor (the registry enforces it) |
//! | `eventKind` | `TRANSPORT`, `EQUIPMENT` or `CUSTOMS` |
//! | `eventCode` | `TRANSPORT`: `ARRI`, `DEPA`; `EQUIPMENT`: `GTIN`, `GTOT`, `LOAD`, `DISC` (DCSA Track & Trace 3); `CUSTOMS`: `DECLARED`, `HOLD`, `RELEASE` |
//! | `actor` | the signer's party id |
//! | `time` | `YYYY-MM-DDTHH:MM:SS.mmmZ` |
//! | `location` | UN/LOCODE where it happened |
//! | `documentReference` | optional; required for `DECLARED` |
//! | `equipmentReference` | optional ISO 6346 container number; at least one of the two references is present |
//! | `vesselName`, `voyageNumber` | optional, 1 to 50 chars |
//! | `remarks` | optional, 1 to 5000 chars |
//!
//! Who may sign what ([`ShipmentEvent::check_actor`], code `event_not_allowed`):
//! - `TRANSPORT` and `EQUIPMENT` milestones: a carrier; when the event names a document, that
//!   document's carrier;
//! - `HOLD` and `RELEASE`: a customs authority whose ports include the event's location or,
//!   when it names a document, that document's port of loading or discharge;
//! - `DECLARED`: any party entitled to the document (see [`crate::party`]).
//!
//! When an event names both a document and a container, the container must be one of the
//! document's (`invalid_event`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::canonical::canonical_bytes_of;
use crate::digest::Digest;
use crate::document::{from_serde_error, normal_form_difference, TransportDocument};
use crate::ids::{
    ContainerNumber, DocumentReference, EventId, KeyId, NonEmptyText, PartyId, Timestamp, UnLocode,
};
use crate::jws::{open_envelope, CompactJws, EnvelopeError, SigningKey, VerifyingKey};
use crate::party::{entitled, Party, Role};

/// The JWS `typ` of a shipment event.
pub const EVENT_TYP: &str = "lading-event+jws";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    Transport,
    Equipment,
    Customs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventCode {
    /// Vessel arrival.
    Arri,
    /// Vessel departure.
    Depa,
    /// Gate in.
    Gtin,
    /// Gate out.
    Gtot,
    Load,
    /// Discharge.
    Disc,
    Declared,
    Hold,
    Release,
}

impl EventCode {
    pub fn kind(self) -> EventKind {
        match self {
            EventCode::Arri | EventCode::Depa => EventKind::Transport,
            EventCode::Gtin | EventCode::Gtot | EventCode::Load | EventCode::Disc => {
                EventKind::Equipment
            }
            EventCode::Declared | EventCode::Hold | EventCode::Release => EventKind::Customs,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::Arri => "ARRI",
            EventCode::Depa => "DEPA",
            EventCode::Gtin => "GTIN",
            EventCode::Gtot => "GTOT",
            EventCode::Load => "LOAD",
            EventCode::Disc => "DISC",
            EventCode::Declared => "DECLARED",
            EventCode::Hold => "HOLD",
            EventCode::Release => "RELEASE",
        }
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The JWS, its `typ` or its payload's canonical form.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("invalid event at {path:?}: {message}")]
    Invalid { path: String, message: String },
    #[error("event not allowed: {0}")]
    NotAllowed(String),
}

impl EventError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn not_allowed(message: impl Into<String>) -> Self {
        Self::NotAllowed(message.into())
    }

    /// The JSON Pointer of the offending field, when the error is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.code(),
            Self::Invalid { .. } => "invalid_event",
            Self::NotAllowed(_) => "event_not_allowed",
        }
    }
}

/// The members of an event before the cross-member rules are checked. `eventKind` is derived
/// from the code.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub event_id: EventId,
    pub event_code: EventCode,
    pub actor: PartyId,
    pub time: Timestamp,
    pub location: UnLocode,
    pub document_reference: Option<DocumentReference>,
    pub equipment_reference: Option<ContainerNumber>,
    pub vessel_name: Option<NonEmptyText>,
    pub voyage_number: Option<NonEmptyText>,
    pub remarks: Option<NonEmptyText>,
}

/// A shipment event that satisfies the rules of this module.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentEvent {
    event_id: EventId,
    event_kind: EventKind,
    event_code: EventCode,
    actor: PartyId,
    time: Timestamp,
    location: UnLocode,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_reference: Option<DocumentReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equipment_reference: Option<ContainerNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vessel_name: Option<NonEmptyText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voyage_number: Option<NonEmptyText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<NonEmptyText>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEvent {
    event_id: EventId,
    event_kind: EventKind,
    event_code: EventCode,
    actor: PartyId,
    time: Timestamp,
    location: UnLocode,
    #[serde(default)]
    document_reference: Option<DocumentReference>,
    #[serde(default)]
    equipment_reference: Option<ContainerNumber>,
    #[serde(default)]
    vessel_name: Option<NonEmptyText>,
    #[serde(default)]
    voyage_number: Option<NonEmptyText>,
    #[serde(default)]
    remarks: Option<NonEmptyText>,
}

/// The document an event names, with the parties of its chain (for entitlement).
#[derive(Debug, Clone, Copy)]
pub struct DocumentView<'a> {
    pub document: &'a TransportDocument,
    pub chain_parties: &'a [PartyId],
}

impl ShipmentEvent {
    pub fn new(d: EventDraft) -> Result<Self, EventError> {
        for (path, text) in [
            ("/vesselName", &d.vessel_name),
            ("/voyageNumber", &d.voyage_number),
        ] {
            if text.as_ref().is_some_and(|t| t.char_len() > 50) {
                return Err(EventError::invalid(path, "must be at most 50 characters"));
            }
        }
        if d.document_reference.is_none() && d.equipment_reference.is_none() {
            return Err(EventError::invalid(
                "/documentReference",
                "an event names a document, a container, or both",
            ));
        }
        if d.event_code == EventCode::Declared && d.document_reference.is_none() {
            return Err(EventError::invalid(
                "/documentReference",
                "required for DECLARED",
            ));
        }
        Ok(Self {
            event_id: d.event_id,
            event_kind: d.event_code.kind(),
            event_code: d.event_code,
            actor: d.actor,
            time: d.time,
            location: d.location,
            document_reference: d.document_reference,
            equipment_reference: d.equipment_reference,
            vessel_name: d.vessel_name,
            voyage_number: d.voyage_number,
            remarks: d.remarks,
        })
    }

    /// The fast path for signed events (see `TransitionPayload`'s): accepted only when the
    /// event's canonical form is exactly `bytes`.
    fn from_canonical_bytes(bytes: &[u8]) -> Option<Self> {
        let raw: RawEvent = serde_json::from_slice(bytes).ok()?;
        let event = Self::from_raw(raw).ok()?;
        (event.canonical_bytes() == bytes).then_some(event)
    }

    /// The typed rules, shared by both parsing paths.
    fn from_raw(raw: RawEvent) -> Result<Self, EventError> {
        if raw.event_kind != raw.event_code.kind() {
            return Err(EventError::invalid(
                "/eventKind",
                format!(
                    "{} is not a {:?} event code",
                    raw.event_code, raw.event_kind
                ),
            ));
        }
        Self::new(EventDraft {
            event_id: raw.event_id,
            event_code: raw.event_code,
            actor: raw.actor,
            time: raw.time,
            location: raw.location,
            document_reference: raw.document_reference,
            equipment_reference: raw.equipment_reference,
            vessel_name: raw.vessel_name,
            voyage_number: raw.voyage_number,
            remarks: raw.remarks,
        })
    }

    pub fn from_json(v: &Value) -> Result<Self, EventError> {
        let raw: RawEvent = serde_path_to_error::deserialize(v).map_err(|e| {
            let e = from_serde_error(&e);
            EventError::Invalid {
                path: e.path,
                message: e.message,
            }
        })?;
        let event = Self::from_raw(raw)?;
        if let Some(path) = normal_form_difference(v, &event.to_json()) {
            return Err(EventError::invalid(
                &path,
                "not in normal form (omit optional members instead of null)",
            ));
        }
        Ok(event)
    }

    pub fn to_json(&self) -> Value {
        // Plain data with string keys always serialises.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes_of(self)
    }

    /// Signs the canonical payload with `typ` `lading-event+jws`.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign_compact(&self.canonical_bytes(), EVENT_TYP)
    }

    /// Whether `actor` (the signer's party record) may sign this event about `doc`.
    ///
    /// `doc` must be the document named by `documentReference` when there is one (else
    /// `invalid_event`); it is ignored for events that name no document.
    pub fn check_actor(
        &self,
        actor: &Party,
        doc: Option<&DocumentView<'_>>,
    ) -> Result<(), EventError> {
        if actor.id != self.actor {
            return Err(EventError::not_allowed(
                "the event's actor is not the signing party",
            ));
        }
        let doc = match &self.document_reference {
            None => None,
            Some(reference) => match doc {
                Some(view) if view.document.reference() == reference => Some(view),
                _ => {
                    return Err(EventError::invalid(
                        "/documentReference",
                        "unknown document",
                    ))
                }
            },
        };
        // A document its actor may not read is, to that actor, a document that does not exist.
        if doc.is_some_and(|view| !entitled(actor, view.document, view.chain_parties)) {
            return Err(EventError::invalid(
                "/documentReference",
                "unknown document",
            ));
        }
        if let (Some(view), Some(container)) = (doc, &self.equipment_reference) {
            if !view.document.container_numbers().contains(&container) {
                return Err(EventError::invalid(
                    "/equipmentReference",
                    "the container is not on the named document",
                ));
            }
        }
        match self.event_code {
            EventCode::Arri
            | EventCode::Depa
            | EventCode::Gtin
            | EventCode::Gtot
            | EventCode::Load
            | EventCode::Disc => {
                if actor.role != Role::Carrier {
                    return Err(EventError::not_allowed("only a carrier reports milestones"));
                }
                if doc.is_some_and(|view| view.document.carrier() != &actor.id) {
                    return Err(EventError::not_allowed(
                        "only the document's carrier reports its milestones",
                    ));
                }
            }
            EventCode::Hold | EventCode::Release => {
                let in_jurisdiction = actor.is_customs_for(&self.location)
                    || doc.is_some_and(|view| {
                        actor.is_customs_for(view.document.port_of_loading())
                            || actor.is_customs_for(view.document.port_of_discharge())
                    });
                if !in_jurisdiction {
                    return Err(EventError::not_allowed(
                        "only a customs authority of the location or the document's ports",
                    ));
                }
            }
            EventCode::Declared => {
                let Some(view) = doc else {
                    return Err(EventError::invalid(
                        "/documentReference",
                        "required for DECLARED",
                    ));
                };
                if !entitled(actor, view.document, view.chain_parties) {
                    return Err(EventError::not_allowed(
                        "only a party entitled to the document declares it",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn event_id(&self) -> &str {
        self.event_id.as_str()
    }

    pub fn event_kind(&self) -> EventKind {
        self.event_kind
    }

    pub fn event_code(&self) -> EventCode {
        self.event_code
    }

    pub fn actor(&self) -> &PartyId {
        &self.actor
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    pub fn location(&self) -> &UnLocode {
        &self.location
    }

    pub fn document_reference(&self) -> Option<&DocumentReference> {
        self.document_reference.as_ref()
    }

    pub fn equipment_reference(&self) -> Option<&ContainerNumber> {
        self.equipment_reference.as_ref()
    }

    pub fn vessel_name(&self) -> Option<&str> {
        self.vessel_name.as_ref().map(NonEmptyText::as_str)
    }

    pub fn voyage_number(&self) -> Option<&str> {
        self.voyage_number.as_ref().map(NonEmptyText::as_str)
    }

    pub fn remarks(&self) -> Option<&str> {
        self.remarks.as_ref().map(NonEmptyText::as_str)
    }
}

impl<'de> Deserialize<'de> for ShipmentEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A parsed event whose signature the caller still has to check.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedEvent {
    jws: CompactJws,
    event: ShipmentEvent,
}

impl SignedEvent {
    pub fn parse(compact: &str) -> Result<Self, EventError> {
        if let Ok(jws) = CompactJws::parse(compact) {
            if jws.typ() == Some(EVENT_TYP) && jws.has_canonical_header() {
                if let Some(event) = ShipmentEvent::from_canonical_bytes(jws.payload_bytes()) {
                    return Ok(Self { jws, event });
                }
            }
        }
        // Something is wrong: the thorough path names it.
        let (jws, value) = open_envelope(compact, EVENT_TYP)?;
        let event = ShipmentEvent::from_json(&value)?;
        Ok(Self { jws, event })
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), EventError> {
        key.verify(&self.jws)
            .map_err(|e| EventError::Envelope(e.into()))
    }

    pub fn event(&self) -> &ShipmentEvent {
        &self.event
    }

    pub fn jws(&self) -> &CompactJws {
        &self.jws
    }

    pub fn kid(&self) -> &KeyId {
        self.jws.kid()
    }

    /// SHA-256 of the compact JWS bytes.
    pub fn checksum(&self) -> Digest {
        self.jws.checksum()
    }

    pub fn as_str(&self) -> &str {
        self.jws.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;
    use crate::document::sample_json;
    use crate::jws::Jwk;
    use serde_json::json;

    fn doc() -> TransportDocument {
        TransportDocument::from_json(&sample_json()).unwrap()
    }

    fn party(id: &str, role: Role, ports: &[&str]) -> Party {
        Party {
            id: id.parse().unwrap(),
            name: "P".parse().unwrap(),
            role,
            ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn event(code: EventCode, actor: &str, location: &str, with_doc: bool) -> ShipmentEvent {
        ShipmentEvent::new(EventDraft {
            event_id: "ev-1".parse().unwrap(),
            event_code: code,
            actor: actor.parse().unwrap(),
            time: "2026-11-23T12:00:00.000Z".parse().unwrap(),
            location: location.parse().unwrap(),
            document_reference: with_doc.then(|| "OCNL2026000001".parse().unwrap()),
            equipment_reference: Some("CSQU3054383".parse().unwrap()),
            vessel_name: None,
            voyage_number: None,
            remarks: None,
        })
        .unwrap()
    }

    fn json_event() -> Value {
        json!({
            "eventId": "ev-1",
            "eventKind": "EQUIPMENT",
            "eventCode": "LOAD",
            "actor": "carrier-oceanic",
            "time": "2026-11-23T12:00:00.000Z",
            "location": "NLRTM",
            "equipmentReference": "CSQU3054383",
            "vesselName": "Oceanic Star"
        })
    }

    #[test]
    fn sign_parse_round_trip() {
        let key = Jwk::generate("carrier-oceanic:1".parse().unwrap(), true)
            .signing_key()
            .unwrap();
        let e = ShipmentEvent::from_json(&json_event()).unwrap();
        let compact = e.sign(&key);
        let signed = SignedEvent::parse(&compact).unwrap();
        assert_eq!(signed.event(), &e);
        // Written straight to canonical bytes, not through the fallback.
        assert_eq!(
            crate::canonical::to_canonical_vec(&e).unwrap(),
            canonicalize(&e.to_json())
        );
        signed.verify(&key.verifying_key()).unwrap();
        assert_eq!(signed.checksum(), Digest::of(compact.as_bytes()));
        assert_eq!(e.event_kind(), EventKind::Equipment);
        assert_eq!(e.vessel_name(), Some("Oceanic Star"));
        // Wrong typ: a transition type is refused.
        let other = key.sign_compact(&e.canonical_bytes(), "lading-transition+jws");
        assert_eq!(SignedEvent::parse(&other).unwrap_err().code(), "wrong_type");
        let pretty = key.sign_compact(
            &serde_json::to_vec_pretty(&json_event()).unwrap(),
            EVENT_TYP,
        );
        assert_eq!(
            SignedEvent::parse(&pretty).unwrap_err().code(),
            "non_canonical_payload"
        );
    }

    fn invalid_path(v: Value) -> String {
        match ShipmentEvent::from_json(&v).unwrap_err() {
            EventError::Invalid { path, .. } => path,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn payload_rules() {
        let mut v = json_event();
        v["eventKind"] = json!("TRANSPORT");
        assert_eq!(invalid_path(v), "/eventKind");
        let mut v = json_event();
        v["eventCode"] = json!("STUF");
        assert_eq!(invalid_path(v), "/eventCode");
        let mut v = json_event();
        v.as_object_mut().unwrap().remove("equipmentReference");
        assert_eq!(invalid_path(v), "/documentReference");
        let mut v = json_event();
        v["eventKind"] = json!("CUSTOMS");
        v["eventCode"] = json!("DECLARED");
        assert_eq!(invalid_path(v), "/documentReference");
        let mut v = json_event();
        v["eventId"] = json!("x".repeat(65));
        assert_eq!(invalid_path(v), "/eventId");
        let mut v = json_event();
        v["equipmentReference"] = json!("CSQU3054384");
        assert_eq!(invalid_path(v), "/equipmentReference");
        let mut v = json_event();
        v["remarks"] = Value::Null;
        assert_eq!(invalid_path(v), "/remarks");
        let mut v = json_event();
        v["colour"] = json!("red");
        assert_eq!(invalid_path(v), "/colour");
    }

    #[test]
    fn milestones_only_by_the_documents_carrier() {
        let d = doc();
        let view = DocumentView {
            document: &d,
            chain_parties: &[],
        };
        let carrier = party("carrier-oceanic", Role::Carrier, &[]);
        let other_carrier = party("carrier-other", Role::Carrier, &[]);
        let shipper = party("shipper-acme", Role::Shipper, &[]);
        assert!(event(EventCode::Load, "carrier-oceanic", "NLRTM", true)
            .check_actor(&carrier, Some(&view))
            .is_ok());
        // Another carrier may not read the document: to it, the document does not exist.
        let e = event(EventCode::Load, "carrier-other", "NLRTM", true);
        let refused = e.check_actor(&other_carrier, Some(&view)).unwrap_err();
        assert_eq!(refused.code(), "invalid_event");
        assert_eq!(refused.path(), Some("/documentReference"));
        // Without a document any carrier may report on its container.
        assert!(event(EventCode::Gtin, "carrier-other", "NLRTM", false)
            .check_actor(&other_carrier, None)
            .is_ok());
        let e = event(EventCode::Depa, "shipper-acme", "NLRTM", false);
        assert_eq!(
            e.check_actor(&shipper, None).unwrap_err().code(),
            "event_not_allowed"
        );
        // The signer must be the event's actor.
        let e = event(EventCode::Load, "carrier-oceanic", "NLRTM", true);
        assert_eq!(
            e.check_actor(&other_carrier, Some(&view))
                .unwrap_err()
                .code(),
            "event_not_allowed"
        );
    }

    #[test]
    fn holds_only_by_customs_of_the_place() {
        let d = doc();
        let view = DocumentView {
            document: &d,
            chain_parties: &[],
        };
        let nl = party("customs-nl", Role::CustomsAuthority, &["NLRTM"]);
        let de = party("customs-de", Role::CustomsAuthority, &["DEHAM"]);
        // By the document's port of loading, even when the event happens elsewhere.
        assert!(event(EventCode::Hold, "customs-nl", "BEANR", true)
            .check_actor(&nl, Some(&view))
            .is_ok());
        // By the event's location, without a document.
        assert!(event(EventCode::Release, "customs-de", "DEHAM", false)
            .check_actor(&de, None)
            .is_ok());
        // A customs authority of neither port may not read the document, so it cannot name
        // it, wherever the event happens.
        let e = event(EventCode::Hold, "customs-de", "DEHAM", true);
        let refused = e.check_actor(&de, Some(&view)).unwrap_err();
        assert_eq!(refused.code(), "invalid_event");
        assert_eq!(refused.path(), Some("/documentReference"));
        let carrier = party("carrier-oceanic", Role::Carrier, &["NLRTM"]);
        let e = event(EventCode::Hold, "carrier-oceanic", "NLRTM", true);
        assert_eq!(
            e.check_actor(&carrier, Some(&view)).unwrap_err().code(),
            "event_not_allowed"
        );
    }

    #[test]
    fn declarations_by_entitled_parties() {
        let d = doc();
        let chain = ["bank-south".parse().unwrap()];
        let view = DocumentView {
            document: &d,
            chain_parties: &chain,
        };
        let shipper = party("shipper-acme", Role::Shipper, &[]);
        let in_chain = party("bank-south", Role::Bank, &[]);
        let stranger = party("forwarder-x", Role::FreightForwarder, &[]);
        assert!(event(EventCode::Declared, "shipper-acme", "NLRTM", true)
            .check_actor(&shipper, Some(&view))
            .is_ok());
        assert!(event(EventCode::Declared, "bank-south", "NLRTM", true)
            .check_actor(&in_chain, Some(&view))
            .is_ok());
        let e = event(EventCode::Declared, "forwarder-x", "NLRTM", true);
        let refused = e.check_actor(&stranger, Some(&view)).unwrap_err();
        assert_eq!(refused.code(), "invalid_event");
        assert_eq!(refused.path(), Some("/documentReference"));
    }

    #[test]
    fn document_must_match_and_hold_the_container() {
        let d = doc();
        let view = DocumentView {
            document: &d,
            chain_parties: &[],
        };
        let carrier = party("carrier-oceanic", Role::Carrier, &[]);
        let e = event(EventCode::Load, "carrier-oceanic", "NLRTM", true);
        assert_eq!(
            e.check_actor(&carrier, None).unwrap_err().code(),
            "invalid_event"
        );
        let mut draft_event = e.to_json();
        draft_event["equipmentReference"] = json!("MSKU9070323");
        let e = ShipmentEvent::from_json(&draft_event).unwrap();
        assert_eq!(
            e.check_actor(&carrier, Some(&view)).unwrap_err().code(),
            "invalid_event"
        );
    }
}
