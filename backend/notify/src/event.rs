//! A ledger entry as a CloudEvent 1.0 (structured JSON mode).

use lading_domain::event::SignedEvent;
use lading_domain::transition::SignedTransition;
use lading_domain::Digest;
use serde_json::{json, Value};

use crate::filter::Seen;

/// What a notification tells of one entry, and what the filter looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub index: u64,
    /// The document it is about (a container-only event has none).
    pub document: Option<String>,
    /// The transition's action, or the shipment event's code.
    pub what: String,
    pub is_transition: bool,
    /// The CloudEvent.
    pub event: Value,
}

impl Notice {
    pub fn seen(&self) -> Seen<'_> {
        if self.is_transition {
            Seen::Transition {
                document: self.document.as_deref().unwrap_or_default(),
                action: &self.what,
            }
        } else {
            Seen::Event {
                document: self.document.as_deref(),
                code: &self.what,
            }
        }
    }
}

/// The notice of entry `index` (its leaf hash and signed bytes); `None` for an entry that is
/// neither a transition nor a shipment event (party statements are not notified).
pub fn cloud_event(index: u64, leaf_hash: &Digest, signed: &str) -> Option<Notice> {
    if let Ok(t) = SignedTransition::parse(signed) {
        let p = t.payload();
        let document = p.document_reference().to_string();
        let action = p.action().as_str().to_owned();
        let event = json!({
            "specversion": "1.0",
            "id": format!("lading-entry-{index}"),
            "source": "urn:lading:registry",
            "type": "dev.lading.transition",
            "subject": document,
            "time": p.time().to_string(),
            "datacontenttype": "application/json",
            "data": {
                "index": index,
                "leafHash": leaf_hash.to_hex(),
                "document": document,
                "action": action,
                "actor": p.actor().to_string(),
                "recipient": p.recipient().map(ToString::to_string),
                "signed": signed,
            },
        });
        return Some(Notice {
            index,
            document: Some(document),
            what: action,
            is_transition: true,
            event,
        });
    }
    let e = SignedEvent::parse(signed).ok()?;
    let p = e.event();
    let document = p.document_reference().map(ToString::to_string);
    let code = p.event_code().as_str().to_owned();
    let event = json!({
        "specversion": "1.0",
        "id": format!("lading-entry-{index}"),
        "source": "urn:lading:registry",
        "type": "dev.lading.shipment-event",
        "subject": document.clone().or_else(|| p.equipment_reference().map(|c| c.as_str().to_owned())),
        "time": p.time().to_string(),
        "datacontenttype": "application/json",
        "data": {
            "index": index,
            "leafHash": leaf_hash.to_hex(),
            "document": document,
            "eventCode": code,
            "equipmentReference": p.equipment_reference().map(|c| c.as_str().to_owned()),
            "location": p.location().to_string(),
            "actor": p.actor().to_string(),
            "signed": signed,
        },
    });
    Some(Notice {
        index,
        document,
        what: code,
        is_transition: false,
        event,
    })
}
