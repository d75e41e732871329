//! The node's documents as the portal lists them (`lading_store::node_documents`): one row per
//! document whose chain the node verified whole, made from what it verified — the ISSUE's
//! transport document and the state after the last transition — and from nothing else.
//!
//! It is kept two ways that give the same row:
//! - as the node follows: [`Projector`] turns each page the follower accepted (and each entry
//!   back-filled) into row changes, written in the transaction that keeps the entries
//!   ([`crate::node::PgKeeper`]);
//! - when the node restores itself: rows whose chain length or head differ from the verified
//!   state, or that are missing, are made again from the document's rows (checked whole
//!   against what was verified), and rows of documents no longer verified are taken out
//!   ([`crate::node::Node::restore`]).

use chrono::{DateTime, Utc};
use lading_domain::event::SignedEvent;
use lading_domain::ids::{PartyId, UnLocode};
use lading_domain::transition::SignedTransition;
use lading_domain::DocumentState;
use lading_store::node_documents::NodeDocumentRow;

/// What the node's party can be on a document (`party_roles`), as the list filters it.
pub const ROLES: [&str; 8] = [
    "carrier",
    "shipper",
    "consignee",
    "notify",
    "endorsee",
    "holder",
    "customs",
    "participant",
];

/// Makes and changes rows for one party's node.
#[derive(Debug, Clone)]
pub struct Projector {
    party: PartyId,
    /// The ports of the party's jurisdiction, when it is a customs authority.
    customs_ports: Vec<UnLocode>,
}

impl Projector {
    pub fn new(party: PartyId, customs_ports: Vec<UnLocode>) -> Self {
        Self {
            party,
            customs_ports,
        }
    }

    /// The projector of `party` as the membership `follower` holds describes it.
    pub fn of(party: &PartyId, follower: &lading_domain::follow::Follower) -> Self {
        let ports = follower
            .membership()
            .member(party)
            .filter(|m| m.party.role == lading_domain::Role::CustomsAuthority)
            .map(|m| m.party.ports.clone())
            .unwrap_or_default();
        Self::new(party.clone(), ports)
    }

    pub fn party(&self) -> &PartyId {
        &self.party
    }

    /// The row of a document just issued: `issue` (at `index`) and the state after it. `None`
    /// when `issue` carries no transport document (not an ISSUE).
    pub fn issued(
        &self,
        index: u64,
        issue: &SignedTransition,
        state: &DocumentState,
    ) -> Option<NodeDocumentRow> {
        let payload = issue.payload();
        let doc = payload.transport_document()?;
        let time = payload.time().as_datetime();
        let text = |s: &str| Some(s.to_owned());
        let containers: Vec<Option<String>> = doc
            .container_numbers()
            .into_iter()
            .map(|c| text(c.as_str()))
            .collect();
        let notify: Vec<Option<String>> = doc
            .notify_parties()
            .iter()
            .map(|p| text(p.as_str()))
            .collect();
        let mut search = vec![
            doc.reference().as_str(),
            doc.carrier().as_str(),
            doc.shipper().as_str(),
            doc.vessel_name(),
            doc.voyage_number(),
            doc.port_of_loading().as_str(),
            doc.port_of_discharge().as_str(),
        ];
        search.extend(doc.consignee().map(PartyId::as_str));
        search.extend(doc.endorsee().map(PartyId::as_str));
        search.extend(doc.notify_parties().iter().map(PartyId::as_str));
        search.extend(doc.container_numbers().into_iter().map(|c| c.as_str()));
        let mut row = NodeDocumentRow {
            reference: doc.reference().to_string(),
            state: state.status.as_str().to_owned(),
            type_code: match doc.type_code() {
                lading_domain::document::DocumentTypeCode::BillOfLading => "BOL",
                lading_domain::document::DocumentTypeCode::SeaWaybill => "SWB",
            }
            .to_owned(),
            is_to_order: doc.is_to_order(),
            carrier: doc.carrier().to_string(),
            shipper: doc.shipper().to_string(),
            consignee: doc.consignee().map(ToString::to_string),
            notify_parties: notify,
            possessor: state.possessor.to_string(),
            endorsee: state.endorsee.as_ref().map(ToString::to_string),
            vessel: doc.vessel_name().to_owned(),
            voyage: doc.voyage_number().to_owned(),
            port_of_loading: doc.port_of_loading().to_string(),
            port_of_discharge: doc.port_of_discharge().to_string(),
            containers,
            party_roles: Vec::new(),
            issue_date: doc.issue_date().as_naive(),
            issued_at: time,
            updated_at: time,
            issued_index: index as i64,
            last_index: index as i64,
            last_action: payload.action().as_str().to_owned(),
            last_actor: payload.actor().to_string(),
            length: state.length as i64,
            head: state.head.0.to_vec(),
            search: search.join(" ").to_lowercase(),
        };
        row.party_roles = self.roles(&row);
        Some(row)
    }

    /// `row` after a later transition (at `index`) and the state after it.
    pub fn advanced(
        &self,
        row: &mut NodeDocumentRow,
        index: u64,
        transition: &SignedTransition,
        state: &DocumentState,
    ) {
        let payload = transition.payload();
        row.state = state.status.as_str().to_owned();
        row.possessor = state.possessor.to_string();
        row.endorsee = state.endorsee.as_ref().map(ToString::to_string);
        row.length = state.length as i64;
        row.head = state.head.0.to_vec();
        row.last_action = payload.action().as_str().to_owned();
        row.last_actor = payload.actor().to_string();
        noted(row, index, payload.time().as_datetime());
        row.party_roles = self.roles(row);
    }

    /// What the party is on the document `row` describes (see [`ROLES`]).
    pub fn roles(&self, row: &NodeDocumentRow) -> Vec<Option<String>> {
        let me = self.party.as_str();
        let is = |who: &str| who == me;
        let mut roles: Vec<&str> = Vec::new();
        if is(&row.carrier) {
            roles.push("carrier");
        }
        if is(&row.shipper) {
            roles.push("shipper");
        }
        if row.consignee.as_deref().is_some_and(is) {
            roles.push("consignee");
        }
        if row.notify_parties.iter().flatten().any(|p| is(p)) {
            roles.push("notify");
        }
        if row.endorsee.as_deref().is_some_and(is) {
            roles.push("endorsee");
        }
        if is(&row.possessor) {
            roles.push("holder");
        }
        let port = |code: &str| self.customs_ports.iter().any(|p| p.as_str() == code);
        if port(&row.port_of_loading) || port(&row.port_of_discharge) {
            roles.push("customs");
        }
        if roles.is_empty() {
            roles.push("participant");
        }
        roles.into_iter().map(|r| Some(r.to_owned())).collect()
    }

    /// The row of a document from its entries (compact JWS, index order, the ISSUE first)
    /// and the state verified after its last transition: what following it made, made again.
    pub fn rebuilt(
        &self,
        entries: &[(u64, &str)],
        state: &DocumentState,
    ) -> Option<NodeDocumentRow> {
        let mut row: Option<NodeDocumentRow> = None;
        let mut last_transition: Option<(u64, SignedTransition)> = None;
        let mut latest: Option<(u64, DateTime<Utc>)> = None;
        for (index, signed) in entries {
            if let Ok(transition) = SignedTransition::parse(signed) {
                if row.is_none() {
                    row = self.issued(*index, &transition, state);
                }
                let time = transition.payload().time().as_datetime();
                latest = Some((*index, latest.map_or(time, |(_, t)| t.max(time))));
                last_transition = Some((*index, transition));
            } else if let Ok(event) = SignedEvent::parse(signed) {
                let time = event.event().time().as_datetime();
                latest = Some((*index, latest.map_or(time, |(_, t)| t.max(time))));
            }
        }
        let mut row = row?;
        if let Some((index, transition)) = last_transition {
            if index as i64 != row.issued_index {
                self.advanced(&mut row, index, &transition, state);
            }
        }
        if let Some((index, at)) = latest {
            noted(&mut row, index, at);
        }
        Some(row)
    }
}

/// `row` after a later entry of its document at `index`, dated `at`: the latest index and
/// time.
pub fn noted(row: &mut NodeDocumentRow, index: u64, at: DateTime<Utc>) {
    row.last_index = row.last_index.max(index as i64);
    row.updated_at = row.updated_at.max(at);
}

/// The event's time, when `signed` is a shipment event.
pub fn event_time(signed: &str) -> Option<DateTime<Utc>> {
    SignedEvent::parse(signed)
        .ok()
        .map(|e| e.event().time().as_datetime())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lading_domain::document::sample_json;
    use lading_domain::jws::Jwk;
    use lading_domain::transition::{Action, TransitionDraft, TransitionPayload};
    use lading_domain::{DocumentState, Timestamp, TransportDocument};

    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_790_000_000_000 + millis).unwrap()
    }

    /// The sample document's ISSUE (carrier-oceanic to shipper-acme) and a TRANSFER on to its
    /// consignee, with the states after each.
    fn chain() -> (Vec<String>, Vec<DocumentState>) {
        let key = Jwk::generate("carrier-oceanic:k".parse().unwrap(), true)
            .signing_key()
            .unwrap();
        let doc = TransportDocument::from_json(&sample_json()).unwrap();
        let issue = TransitionPayload::issue(
            doc.clone(),
            "carrier-oceanic".parse().unwrap(),
            "shipper-acme".parse().unwrap(),
            at(0),
        )
        .unwrap()
        .sign(&key);
        let first = SignedTransition::parse(&issue).unwrap();
        let issued = DocumentState::issue(first.payload(), first.checksum()).unwrap();
        let transfer = TransitionPayload::new(TransitionDraft {
            document_reference: doc.reference().clone(),
            document_checksum: doc.checksum(),
            previous_transition_checksum: Some(first.checksum()),
            action: Action::Transfer,
            actor: "shipper-acme".parse().unwrap(),
            recipient: Some("consignee-globex".parse().unwrap()),
            time: at(60_000),
            reason_code: None,
            transport_document: None,
        })
        .unwrap()
        .sign(&key);
        let second = SignedTransition::parse(&transfer).unwrap();
        let moved = issued.apply(second.payload(), second.checksum()).unwrap();
        (vec![issue, transfer], vec![issued, moved])
    }

    fn roles(row: &NodeDocumentRow) -> Vec<&str> {
        row.party_roles
            .iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn following_and_remaking_give_the_same_row() {
        let (signed, states) = chain();
        let projector = Projector::new("shipper-acme".parse().unwrap(), Vec::new());
        let issue = SignedTransition::parse(&signed[0]).unwrap();
        let mut followed = projector.issued(3, &issue, &states[0]).unwrap();
        assert_eq!(followed.state, "ACTIVE");
        assert_eq!(roles(&followed), ["shipper", "holder"]);
        assert!(followed.search.contains("csqu3054383") && followed.search.contains("nlrtm"));
        let transfer = SignedTransition::parse(&signed[1]).unwrap();
        projector.advanced(&mut followed, 7, &transfer, &states[1]);
        assert_eq!(followed.possessor, "consignee-globex");
        assert_eq!(roles(&followed), ["shipper"]);
        assert_eq!((followed.last_index, followed.length), (7, 2));
        assert_eq!(followed.last_action, "TRANSFER");
        assert_eq!(followed.updated_at, at(60_000).as_datetime());
        assert_eq!(followed.issued_at, at(0).as_datetime());

        let entries = [(3, signed[0].as_str()), (7, signed[1].as_str())];
        assert_eq!(projector.rebuilt(&entries, &states[1]), Some(followed));
    }

    #[test]
    fn the_party_is_what_the_document_and_its_state_make_it() {
        let (signed, states) = chain();
        let issue = SignedTransition::parse(&signed[0]).unwrap();
        let row = |party: &str, ports: &[&str]| {
            let ports = ports.iter().map(|p| p.parse().unwrap()).collect();
            let projector = Projector::new(party.parse().unwrap(), ports);
            let row = projector.issued(0, &issue, &states[0]).unwrap();
            roles(&row).join(",")
        };
        assert_eq!(row("carrier-oceanic", &[]), "carrier");
        assert_eq!(row("consignee-globex", &[]), "consignee");
        assert_eq!(row("bank-north", &[]), "notify");
        assert_eq!(row("customs-nl", &["NLRTM"]), "customs");
        assert_eq!(row("forwarder-swift", &[]), "participant");
    }
}
