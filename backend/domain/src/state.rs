//! The bill-of-lading state machine: which transitions the rules allow. Pure: a state and a
//! payload in, a new state or a [`RuleViolation`] out.
//!
//! Terms. The *possessor* holds the document (exactly one party at any time). On a to-order
//! document the *holder* (entitled to endorse and to surrender) is the possessor when the
//! document is blank endorsed, else the possessor only if it is also the current endorsee. On
//! a straight document (`isToOrder: false`) there is no endorsee.
//!
//! **ISSUE** (the first transition, [`DocumentState::issue`]): actor = the document's
//! `carrier` (`not_carrier`); the recipient becomes the possessor. The initial endorsee is the
//! document's `endorsee`, who may endorse further; a to-order document without one starts
//! blank endorsed. An ISSUE on an existing chain: `already_issued`.
//!
//! **Every later transition**, checked in this order:
//! 1. `documentReference` equals the state's (`wrong_document`);
//! 2. `previousTransitionChecksum` equals the head, the checksum of the last accepted
//!    transition (`wrong_previous_checksum`; [`Chain::append`] reports `double_spend` when it
//!    names an earlier transition of the same chain);
//! 3. `documentChecksum` equals the issued document's (`document_checksum_mismatch`);
//! 4. actor ≠ recipient (`self_transfer`);
//! 5. after `SACC` of a delivery surrender, or after `VOID`, nothing is accepted; after `SACC`
//!    of an amendment surrender only `VOID` is (`document_closed`);
//! 6. the action's own rule:
//!
//! | action | rule | effect |
//! |---|---|---|
//! | TRANSFER | actor is the possessor (`not_possessor`); no surrender pending (`surrender_pending`); straight document: recipient is the consignee or the carrier (`wrong_recipient`); to-order: anyone | possessor := recipient |
//! | ENDORSE | possessor, nothing pending, to-order document (`not_negotiable`), actor is holder (`not_holder`) and, if endorsee, was not named by a plain ENDORSE (`endorsement_restricted`) | endorsee := recipient, who may not endorse further; blank endorsement ends; possession unchanged |
//! | ENDORSE_TO_ORDER | as ENDORSE | endorsee := recipient, who may endorse further |
//! | BLANK_ENDORSE | as ENDORSE (no recipient) | endorsee := none; blank endorsed |
//! | SIGN | possessor, nothing pending | nothing but the head |
//! | SURRENDER_FOR_DELIVERY | possessor, nothing pending; recipient is the carrier (`surrender_not_to_carrier`); to-order: actor is holder, straight: actor is the consignee (`not_holder`) | possessor := carrier; surrender pending, requested by actor |
//! | SURRENDER_FOR_AMENDMENT | as above, except that on a straight document any possessor may request it; with reason `SWTP` it is a switch to paper | as above |
//! | SACC | actor is the carrier (`not_carrier`); a surrender is pending (`no_pending_surrender`); recipient is the requester (`wrong_recipient`) | delivery: closed for good; amendment: awaiting VOID |
//! | SREJ | as SACC | possessor := requester; nothing pending |
//! | VOID | actor is the carrier (`not_carrier`); an amendment surrender was accepted (`void_without_accepted_amendment`) | closed for good |
//!
//! A rejected transition leaves the state unchanged (`apply` returns a new state).
//! Timestamps are not ordered by these rules; the registry records receipt time.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ids::{DocumentReference, PartyId, Timestamp};
use crate::transition::{Action, TransitionDraft, TransitionPayload};

/// Which surrender a party asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SurrenderKind {
    Delivery,
    Amendment,
}

/// Where a document stands. It travels (in JSON, in the database, in answers) as one code:
/// `ACTIVE`, `SURRENDER_FOR_DELIVERY_REQUESTED`, `SURRENDER_FOR_AMENDMENT_REQUESTED`,
/// `SURRENDERED_FOR_DELIVERY`, `SURRENDERED_FOR_AMENDMENT` or `VOID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Status {
    Active,
    SurrenderRequested {
        kind: SurrenderKind,
    },
    /// Terminal: the goods are released to the requester.
    SurrenderedForDelivery,
    /// Awaiting the carrier's VOID (the amended document is issued as a new document).
    SurrenderedForAmendment,
    /// Terminal.
    Void,
}

impl Status {
    /// Whether any further transition can ever be accepted.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Status::SurrenderedForDelivery | Status::Void)
    }

    /// The status code, the same in JSON, in the database and in answers.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::SurrenderRequested {
                kind: SurrenderKind::Delivery,
            } => "SURRENDER_FOR_DELIVERY_REQUESTED",
            Status::SurrenderRequested {
                kind: SurrenderKind::Amendment,
            } => "SURRENDER_FOR_AMENDMENT_REQUESTED",
            Status::SurrenderedForDelivery => "SURRENDERED_FOR_DELIVERY",
            Status::SurrenderedForAmendment => "SURRENDERED_FOR_AMENDMENT",
            Status::Void => "VOID",
        }
    }

    const ALL: [Status; 6] = [
        Status::Active,
        Status::SurrenderRequested {
            kind: SurrenderKind::Delivery,
        },
        Status::SurrenderRequested {
            kind: SurrenderKind::Amendment,
        },
        Status::SurrenderedForDelivery,
        Status::SurrenderedForAmendment,
        Status::Void,
    ];
}

impl From<Status> for &'static str {
    fn from(status: Status) -> Self {
        status.as_str()
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == code)
            .ok_or_else(|| format!("unknown document status {code:?}"))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule the transition breaks; `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("only the document's carrier may take this action")]
    NotCarrier,
    #[error("previousTransitionChecksum does not name the document's last transition")]
    WrongPreviousChecksum {
        expected: Digest,
        found: Option<Digest>,
    },
    #[error("double spend: transition {parent} already has a successor")]
    DoubleSpend { parent: Digest },
    #[error("documentChecksum differs from the issued document's")]
    DocumentChecksumMismatch,
    #[error("time is earlier than the time of the transition it follows")]
    TimeBeforePrevious,
    #[error("the transition is for another document")]
    WrongDocument,
    #[error("only the current possessor may take this action")]
    NotPossessor,
    #[error("only a to-order document can be endorsed")]
    NotNegotiable,
    #[error("the actor does not hold title to the document")]
    NotHolder,
    #[error("the endorsee was named by ENDORSE and may not endorse further")]
    EndorsementRestricted,
    #[error("the recipient is not allowed for this action")]
    WrongRecipient,
    #[error("a surrender must be addressed to the issuing carrier")]
    SurrenderNotToCarrier,
    #[error("no surrender is pending")]
    NoPendingSurrender,
    #[error("a surrender is pending: only SACC or SREJ by the carrier")]
    SurrenderPending,
    #[error("the document is closed")]
    DocumentClosed,
    #[error("VOID needs an accepted amendment surrender")]
    VoidWithoutAcceptedAmendment,
    #[error("actor and recipient are the same party")]
    SelfTransfer,
    #[error("the document is already issued")]
    AlreadyIssued,
    #[error("the first transition of a document must be ISSUE")]
    NotIssue,
    #[error("this transition is already recorded")]
    DuplicateTransition,
}

impl RuleViolation {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotCarrier => "not_carrier",
            Self::WrongPreviousChecksum { .. } => "wrong_previous_checksum",
            Self::DoubleSpend { .. } => "double_spend",
            Self::DocumentChecksumMismatch => "document_checksum_mismatch",
            Self::TimeBeforePrevious => "time_before_previous",
            Self::WrongDocument => "wrong_document",
            Self::NotPossessor => "not_possessor",
            Self::NotNegotiable => "not_negotiable",
            Self::NotHolder => "not_holder",
            Self::EndorsementRestricted => "endorsement_restricted",
            Self::WrongRecipient => "wrong_recipient",
            Self::SurrenderNotToCarrier => "surrender_not_to_carrier",
            Self::NoPendingSurrender => "no_pending_surrender",
            Self::SurrenderPending => "surrender_pending",
            Self::DocumentClosed => "document_closed",
            Self::VoidWithoutAcceptedAmendment => "void_without_accepted_amendment",
            Self::SelfTransfer => "self_transfer",
            Self::AlreadyIssued => "already_issued",
            Self::NotIssue => "not_issue",
            Self::DuplicateTransition => "duplicate_transition",
        }
    }
}

/// The state of one document after its accepted transitions.
///
/// A plain snapshot (public fields, serde) so it can be stored and reloaded; only
/// [`DocumentState::issue`] and [`DocumentState::apply`] make meaningful ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentState {
    pub reference: DocumentReference,
    pub document_checksum: Digest,
    pub carrier: PartyId,
    /// The document's consignee (straight documents may only be transferred to it or the carrier).
    pub consignee: Option<PartyId>,
    pub is_to_order: bool,
    pub status: Status,
    pub possessor: PartyId,
    pub endorsee: Option<PartyId>,
    /// False once the endorsee was named by a plain ENDORSE.
    pub endorsee_may_endorse: bool,
    pub blank_endorsed: bool,
    /// Checksum of the last accepted transition.
    pub head: Digest,
    pub pending_surrender: Option<SurrenderKind>,
    pub surrender_requested_by: Option<PartyId>,
    /// Number of accepted transitions, ISSUE included.
    pub length: u64,
    /// The `time` of the last accepted transition: the next one may not be dated earlier.
    /// (`None` only in states stored before the rule existed; the rule then waits for the
    /// next transition.)
    #[serde(default)]
    pub head_time: Option<Timestamp>,
}

impl DocumentState {
    /// The state created by an ISSUE payload whose signed form has checksum `transition_checksum`.
    pub fn issue(
        payload: &TransitionPayload,
        transition_checksum: Digest,
    ) -> Result<Self, RuleViolation> {
        if payload.action() != Action::Issue {
            return Err(RuleViolation::NotIssue);
        }
        // TransitionPayload guarantees an ISSUE carries its document and a recipient.
        let (Some(doc), Some(recipient)) = (payload.transport_document(), payload.recipient())
        else {
            return Err(RuleViolation::NotIssue);
        };
        if payload.actor() != doc.carrier() {
            return Err(RuleViolation::NotCarrier);
        }
        if recipient == payload.actor() {
            return Err(RuleViolation::SelfTransfer);
        }
        Ok(Self {
            reference: doc.reference().clone(),
            document_checksum: *payload.document_checksum(),
            carrier: doc.carrier().clone(),
            consignee: doc.consignee().cloned(),
            is_to_order: doc.is_to_order(),
            status: Status::Active,
            possessor: recipient.clone(),
            endorsee: doc.endorsee().cloned(),
            endorsee_may_endorse: true,
            blank_endorsed: doc.is_to_order() && doc.endorsee().is_none(),
            head: transition_checksum,
            pending_surrender: None,
            surrender_requested_by: None,
            length: 1,
            head_time: Some(payload.time()),
        })
    }

    /// The state after `payload` (signed form `transition_checksum`), or the rule it breaks.
    pub fn apply(
        &self,
        payload: &TransitionPayload,
        transition_checksum: Digest,
    ) -> Result<Self, RuleViolation> {
        use RuleViolation as V;
        let action = payload.action();
        if action == Action::Issue {
            return Err(V::AlreadyIssued);
        }
        if payload.document_reference() != &self.reference {
            return Err(V::WrongDocument);
        }
        if payload.previous_transition_checksum() != Some(&self.head) {
            return Err(V::WrongPreviousChecksum {
                expected: self.head,
                found: payload.previous_transition_checksum().copied(),
            });
        }
        if payload.document_checksum() != &self.document_checksum {
            return Err(V::DocumentChecksumMismatch);
        }
        if self.head_time.is_some_and(|head| payload.time() < head) {
            return Err(V::TimeBeforePrevious);
        }
        let actor = payload.actor();
        let recipient = payload.recipient();
        if recipient == Some(actor) {
            return Err(V::SelfTransfer);
        }
        match self.status {
            Status::SurrenderedForDelivery | Status::Void => return Err(V::DocumentClosed),
            Status::SurrenderedForAmendment if action != Action::Void => {
                return Err(V::DocumentClosed)
            }
            _ => {}
        }

        let mut next = self.clone();
        next.head = transition_checksum;
        next.length += 1;
        next.head_time = Some(payload.time());

        match action {
            Action::Issue => return Err(V::AlreadyIssued),
            Action::Transfer
            | Action::Endorse
            | Action::EndorseToOrder
            | Action::BlankEndorse
            | Action::Sign
            | Action::SurrenderForDelivery
            | Action::SurrenderForAmendment => {
                if self.pending_surrender.is_some() {
                    return Err(V::SurrenderPending);
                }
                if actor != &self.possessor {
                    return Err(V::NotPossessor);
                }
            }
            Action::Sacc | Action::Srej => {
                if actor != &self.carrier {
                    return Err(V::NotCarrier);
                }
                if self.pending_surrender.is_none() {
                    return Err(V::NoPendingSurrender);
                }
                if recipient != self.surrender_requested_by.as_ref() {
                    return Err(V::WrongRecipient);
                }
            }
            Action::Void => {
                if actor != &self.carrier {
                    return Err(V::NotCarrier);
                }
                if self.status != Status::SurrenderedForAmendment {
                    return Err(V::VoidWithoutAcceptedAmendment);
                }
            }
        }

        match action {
            Action::Transfer => {
                let Some(recipient) = recipient else {
                    return Err(V::WrongRecipient);
                };
                if !self.is_to_order
                    && recipient != &self.carrier
                    && Some(recipient) != self.consignee.as_ref()
                {
                    return Err(V::WrongRecipient);
                }
                next.possessor = recipient.clone();
            }
            Action::Endorse | Action::EndorseToOrder | Action::BlankEndorse => {
                if !self.is_to_order {
                    return Err(V::NotNegotiable);
                }
                if !self.blank_endorsed {
                    if self.endorsee.as_ref() != Some(actor) {
                        return Err(V::NotHolder);
                    }
                    if !self.endorsee_may_endorse {
                        return Err(V::EndorsementRestricted);
                    }
                }
                if action == Action::BlankEndorse {
                    next.endorsee = None;
                    next.blank_endorsed = true;
                    next.endorsee_may_endorse = true;
                } else {
                    let Some(recipient) = recipient else {
                        return Err(V::WrongRecipient);
                    };
                    next.endorsee = Some(recipient.clone());
                    next.blank_endorsed = false;
                    next.endorsee_may_endorse = action == Action::EndorseToOrder;
                }
            }
            Action::Sign => {}
            Action::SurrenderForDelivery | Action::SurrenderForAmendment => {
                if recipient != Some(&self.carrier) {
                    return Err(V::SurrenderNotToCarrier);
                }
                let kind = if action == Action::SurrenderForDelivery {
                    SurrenderKind::Delivery
                } else {
                    SurrenderKind::Amendment
                };
                let holds = if self.is_to_order {
                    self.blank_endorsed || self.endorsee.as_ref() == Some(actor)
                } else {
                    kind == SurrenderKind::Amendment || self.consignee.as_ref() == Some(actor)
                };
                if !holds {
                    return Err(V::NotHolder);
                }
                next.status = Status::SurrenderRequested { kind };
                next.pending_surrender = Some(kind);
                next.surrender_requested_by = Some(actor.clone());
                next.possessor = self.carrier.clone();
            }
            Action::Sacc => {
                next.status = match self.pending_surrender {
                    Some(SurrenderKind::Delivery) => Status::SurrenderedForDelivery,
                    Some(SurrenderKind::Amendment) => Status::SurrenderedForAmendment,
                    None => return Err(V::NoPendingSurrender),
                };
                next.pending_surrender = None;
                next.surrender_requested_by = None;
            }
            Action::Srej => {
                let Some(requester) = &self.surrender_requested_by else {
                    return Err(V::NoPendingSurrender);
                };
                next.possessor = requester.clone();
                next.status = Status::Active;
                next.pending_surrender = None;
                next.surrender_requested_by = None;
            }
            Action::Void => next.status = Status::Void,
            Action::Issue => return Err(V::AlreadyIssued),
        }
        Ok(next)
    }

    /// A draft of the next transition on this state (reference, checksums filled in).
    pub fn draft(
        &self,
        action: Action,
        actor: PartyId,
        recipient: Option<PartyId>,
        time: Timestamp,
    ) -> TransitionDraft {
        TransitionDraft {
            document_reference: self.reference.clone(),
            document_checksum: self.document_checksum,
            previous_transition_checksum: Some(self.head),
            action,
            actor,
            recipient,
            time,
            reason_code: None,
            transport_document: None,
        }
    }

    /// The parties a transition adds to the document's audience: its actor and recipient.
    pub fn parties_seen(payload: &TransitionPayload) -> Vec<&PartyId> {
        payload.parties()
    }
}

/// One document's chain held in memory: the state plus every transition checksum seen, so a
/// second child of an earlier transition is recognised as a double spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    state: DocumentState,
    checksums: HashSet<Digest>,
    parties: BTreeSet<PartyId>,
}

impl Chain {
    /// Starts a chain from its ISSUE.
    pub fn issue(checksum: Digest, payload: &TransitionPayload) -> Result<Self, RuleViolation> {
        let state = DocumentState::issue(payload, checksum)?;
        let mut chain = Self {
            state,
            checksums: HashSet::from([checksum]),
            parties: BTreeSet::new(),
        };
        chain.note_parties(payload);
        Ok(chain)
    }

    /// Appends a transition; on error nothing changes.
    ///
    /// `duplicate_transition` when `checksum` is already in the chain; `double_spend` when the
    /// payload's previous checksum is an earlier (non-head) transition of this chain.
    pub fn append(
        &mut self,
        checksum: Digest,
        payload: &TransitionPayload,
    ) -> Result<(), RuleViolation> {
        if self.checksums.contains(&checksum) {
            return Err(RuleViolation::DuplicateTransition);
        }
        if let Some(previous) = payload.previous_transition_checksum() {
            if previous != &self.state.head && self.checksums.contains(previous) {
                return Err(RuleViolation::DoubleSpend { parent: *previous });
            }
        }
        self.state = self.state.apply(payload, checksum)?;
        self.checksums.insert(checksum);
        self.note_parties(payload);
        Ok(())
    }

    fn note_parties(&mut self, payload: &TransitionPayload) {
        self.parties.extend(payload.parties().into_iter().cloned());
    }

    pub fn state(&self) -> &DocumentState {
        &self.state
    }

    pub fn contains(&self, checksum: &Digest) -> bool {
        self.checksums.contains(checksum)
    }

    /// Number of transitions, ISSUE included.
    pub fn len(&self) -> u64 {
        self.state.length
    }

    /// Never true: a chain starts with its ISSUE.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every actor and recipient of the chain so far, sorted.
    pub fn parties(&self) -> Vec<PartyId> {
        self.parties.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{sample_json, TransportDocument};
    use crate::transition::{ReasonCode, TransitionPayload};
    use proptest::prelude::*;
    use serde_json::json;

    const CARRIER: &str = "carrier-oceanic";
    const SHIPPER: &str = "shipper-acme";
    const CONSIGNEE: &str = "consignee-globex";
    const BANK: &str = "bank-north";
    const BANK2: &str = "bank-south";
    const PARTIES: [&str; 5] = [CARRIER, SHIPPER, CONSIGNEE, BANK, BANK2];

    fn p(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    fn t() -> Timestamp {
        "2026-11-23T12:00:00.000Z".parse().unwrap()
    }

    /// Straight document (consignee-globex), or to-order with an optional initial endorsee.
    fn document(to_order: bool, endorsee: Option<&str>) -> TransportDocument {
        let mut v = sample_json();
        if to_order {
            v["isToOrder"] = json!(true);
            if let Some(e) = endorsee {
                v["endorsee"] = json!(e);
            }
        }
        TransportDocument::from_json(&v).unwrap()
    }

    fn issue_payload(doc: TransportDocument, actor: &str, recipient: &str) -> TransitionPayload {
        TransitionPayload::issue(doc, p(actor), p(recipient), t()).unwrap()
    }

    fn checksum_of(payload: &TransitionPayload) -> Digest {
        Digest::of(&payload.canonical_bytes())
    }

    fn chain(to_order: bool, endorsee: Option<&str>) -> Chain {
        let payload = issue_payload(document(to_order, endorsee), CARRIER, SHIPPER);
        Chain::issue(checksum_of(&payload), &payload).unwrap()
    }

    fn payload(
        state: &DocumentState,
        action: Action,
        actor: &str,
        recipient: Option<&str>,
    ) -> TransitionPayload {
        TransitionPayload::new(state.draft(action, p(actor), recipient.map(p), t())).unwrap()
    }

    /// Applies one step to the chain and returns the error code, if any.
    fn step(
        c: &mut Chain,
        action: Action,
        actor: &str,
        recipient: Option<&str>,
    ) -> Result<(), &'static str> {
        let pl = payload(c.state(), action, actor, recipient);
        c.append(checksum_of(&pl), &pl).map_err(|e| e.code())
    }

    #[test]
    fn issue_by_the_carrier_gives_possession_to_the_recipient() {
        let c = chain(false, None);
        let s = c.state();
        assert_eq!(s.possessor, p(SHIPPER));
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.length, 1);
        assert!(!s.blank_endorsed);
        assert_eq!(c.parties(), vec![p(CARRIER), p(SHIPPER)]);
    }

    #[test]
    fn only_the_documents_carrier_issues() {
        let pl = issue_payload(document(false, None), SHIPPER, CONSIGNEE);
        assert_eq!(
            DocumentState::issue(&pl, checksum_of(&pl)),
            Err(RuleViolation::NotCarrier)
        );
        let pl = issue_payload(document(false, None), CARRIER, CARRIER);
        assert_eq!(
            DocumentState::issue(&pl, checksum_of(&pl)),
            Err(RuleViolation::SelfTransfer)
        );
    }

    #[test]
    fn issue_cannot_follow_and_first_must_be_issue() {
        let c = chain(false, None);
        let again = issue_payload(document(false, None), CARRIER, SHIPPER);
        assert_eq!(
            c.state().apply(&again, checksum_of(&again)),
            Err(RuleViolation::AlreadyIssued)
        );
        let transfer = payload(c.state(), Action::Transfer, SHIPPER, Some(CONSIGNEE));
        assert_eq!(
            DocumentState::issue(&transfer, Digest::of(b"x")),
            Err(RuleViolation::NotIssue)
        );
    }

    #[test]
    fn to_order_without_endorsee_starts_blank_endorsed() {
        let c = chain(true, None);
        assert!(c.state().blank_endorsed);
        let c = chain(true, Some(SHIPPER));
        assert!(!c.state().blank_endorsed);
        assert_eq!(c.state().endorsee, Some(p(SHIPPER)));
    }

    #[test]
    fn previous_checksum_must_be_the_head() {
        let c = chain(false, None);
        let mut d = c.state().draft(Action::Sign, p(SHIPPER), None, t());
        d.previous_transition_checksum = Some(Digest::of(b"elsewhere"));
        let pl = TransitionPayload::new(d).unwrap();
        assert_eq!(
            c.state().apply(&pl, checksum_of(&pl)).unwrap_err().code(),
            "wrong_previous_checksum"
        );
    }

    #[test]
    fn document_checksum_and_reference_must_match() {
        let c = chain(false, None);
        let mut d = c.state().draft(Action::Sign, p(SHIPPER), None, t());
        d.document_checksum = Digest::of(b"other document");
        let pl = TransitionPayload::new(d).unwrap();
        assert_eq!(
            c.state().apply(&pl, checksum_of(&pl)),
            Err(RuleViolation::DocumentChecksumMismatch)
        );
        let mut d = c.state().draft(Action::Sign, p(SHIPPER), None, t());
        d.document_reference = "OTHER".parse().unwrap();
        let pl = TransitionPayload::new(d).unwrap();
        assert_eq!(
            c.state().apply(&pl, checksum_of(&pl)),
            Err(RuleViolation::WrongDocument)
        );
    }

    #[test]
    fn only_the_possessor_acts() {
        let mut c = chain(true, None);
        assert_eq!(
            step(&mut c, Action::Transfer, BANK, Some(CONSIGNEE)),
            Err("not_possessor")
        );
        assert_eq!(
            step(&mut c, Action::Sign, CARRIER, None),
            Err("not_possessor")
        );
        assert_eq!(
            step(&mut c, Action::BlankEndorse, CONSIGNEE, None),
            Err("not_possessor")
        );
        assert_eq!(step(&mut c, Action::Sign, SHIPPER, None), Ok(()));
    }

    #[test]
    fn straight_documents_go_only_to_consignee_or_carrier() {
        let mut c = chain(false, None);
        assert_eq!(
            step(&mut c, Action::Transfer, SHIPPER, Some(BANK)),
            Err("wrong_recipient")
        );
        assert_eq!(
            step(&mut c, Action::Transfer, SHIPPER, Some(CONSIGNEE)),
            Ok(())
        );
        assert_eq!(
            step(&mut c, Action::Transfer, CONSIGNEE, Some(CARRIER)),
            Ok(())
        );
        assert_eq!(c.state().possessor, p(CARRIER));
    }

    #[test]
    fn to_order_documents_go_to_anyone() {
        let mut c = chain(true, None);
        assert_eq!(step(&mut c, Action::Transfer, SHIPPER, Some(BANK)), Ok(()));
        assert_eq!(c.state().possessor, p(BANK));
    }

    #[test]
    fn endorsement_needs_a_negotiable_document() {
        let mut c = chain(false, None);
        assert_eq!(
            step(&mut c, Action::Endorse, SHIPPER, Some(BANK)),
            Err("not_negotiable")
        );
        assert_eq!(
            step(&mut c, Action::BlankEndorse, SHIPPER, None),
            Err("not_negotiable")
        );
    }

    #[test]
    fn endorsement_needs_the_holder() {
        // Shipper possesses a bill made out to order of the bank: cannot endorse it.
        let mut c = chain(true, Some(BANK));
        assert_eq!(
            step(&mut c, Action::EndorseToOrder, SHIPPER, Some(BANK2)),
            Err("not_holder")
        );
        assert_eq!(step(&mut c, Action::Transfer, SHIPPER, Some(BANK)), Ok(()));
        assert_eq!(
            step(&mut c, Action::EndorseToOrder, BANK, Some(BANK2)),
            Ok(())
        );
        assert_eq!(c.state().endorsee, Some(p(BANK2)));
        assert_eq!(
            c.state().possessor,
            p(BANK),
            "endorsement does not move possession"
        );
    }

    #[test]
    fn endorse_is_final_endorse_to_order_is_not() {
        let mut c = chain(true, Some(SHIPPER));
        assert_eq!(
            step(&mut c, Action::EndorseToOrder, SHIPPER, Some(BANK)),
            Ok(())
        );
        assert_eq!(step(&mut c, Action::Transfer, SHIPPER, Some(BANK)), Ok(()));
        assert_eq!(step(&mut c, Action::Endorse, BANK, Some(CONSIGNEE)), Ok(()));
        assert_eq!(
            step(&mut c, Action::Transfer, BANK, Some(CONSIGNEE)),
            Ok(())
        );
        assert_eq!(
            step(&mut c, Action::Endorse, CONSIGNEE, Some(BANK2)),
            Err("endorsement_restricted")
        );
        assert_eq!(
            step(&mut c, Action::BlankEndorse, CONSIGNEE, None),
            Err("endorsement_restricted")
        );
        // The restricted endorsee still holds title and may take delivery.
        assert_eq!(
            step(
                &mut c,
                Action::SurrenderForDelivery,
                CONSIGNEE,
                Some(CARRIER)
            ),
            Ok(())
        );
    }

    #[test]
    fn blank_endorsed_bill_is_held_by_its_possessor() {
        let mut c = chain(true, Some(SHIPPER));
        assert_eq!(step(&mut c, Action::BlankEndorse, SHIPPER, None), Ok(()));
        assert!(c.state().blank_endorsed);
        assert_eq!(step(&mut c, Action::Transfer, SHIPPER, Some(BANK)), Ok(()));
        assert_eq!(step(&mut c, Action::Endorse, BANK, Some(CONSIGNEE)), Ok(()));
        assert!(!c.state().blank_endorsed);
    }

    #[test]
    fn surrender_must_go_to_the_carrier() {
        let mut c = chain(false, None);
        step(&mut c, Action::Transfer, SHIPPER, Some(CONSIGNEE)).unwrap();
        assert_eq!(
            step(&mut c, Action::SurrenderForDelivery, CONSIGNEE, Some(BANK)),
            Err("surrender_not_to_carrier")
        );
    }

    #[test]
    fn delivery_on_a_straight_bill_is_for_the_consignee() {
        let mut c = chain(false, None);
        assert_eq!(
            step(&mut c, Action::SurrenderForDelivery, SHIPPER, Some(CARRIER)),
            Err("not_holder")
        );
        // The shipper may still ask for an amendment before handing the bill on.
        assert_eq!(
            step(
                &mut c,
                Action::SurrenderForAmendment,
                SHIPPER,
                Some(CARRIER)
            ),
            Ok(())
        );
    }

    #[test]
    fn pending_surrender_passes_possession_and_blocks_other_actions() {
        let mut c = chain(false, None);
        step(&mut c, Action::Transfer, SHIPPER, Some(CONSIGNEE)).unwrap();
        step(
            &mut c,
            Action::SurrenderForDelivery,
            CONSIGNEE,
            Some(CARRIER),
        )
        .unwrap();
        let s = c.state().clone();
        assert_eq!(s.possessor, p(CARRIER));
        assert_eq!(
            s.status,
            Status::SurrenderRequested {
                kind: SurrenderKind::Delivery
            }
        );
        assert_eq!(s.surrender_requested_by, Some(p(CONSIGNEE)));
        assert_eq!(
            step(&mut c, Action::Transfer, CARRIER, Some(SHIPPER)),
            Err("surrender_pending")
        );
        assert_eq!(
            step(&mut c, Action::Sacc, CONSIGNEE, Some(CARRIER)),
            Err("not_carrier")
        );
        assert_eq!(
            step(&mut c, Action::Sacc, CARRIER, Some(SHIPPER)),
            Err("wrong_recipient")
        );
        assert_eq!(c.state(), &s);
    }

    #[test]
    fn a_transition_is_not_dated_before_the_one_it_follows() {
        let mut c = chain(false, None);
        let at = |text: &str| -> Timestamp { text.parse().unwrap() };
        let dated = |c: &Chain, time: Timestamp| {
            TransitionPayload::new(c.state().draft(
                Action::Transfer,
                p(SHIPPER),
                Some(p(CONSIGNEE)),
                time,
            ))
            .unwrap()
        };
        // 73 years before the ISSUE: refused, and nothing changes.
        let before = dated(&c, at("1953-11-23T12:00:00.000Z"));
        let s = c.state().clone();
        assert_eq!(
            c.append(checksum_of(&before), &before).unwrap_err().code(),
            "time_before_previous"
        );
        assert_eq!(c.state(), &s);
        // A millisecond before: refused; the same millisecond: accepted.
        let just_before = dated(&c, at("2026-11-23T11:59:59.999Z"));
        assert_eq!(
            c.append(checksum_of(&just_before), &just_before)
                .unwrap_err()
                .code(),
            "time_before_previous"
        );
        let same = dated(&c, t());
        c.append(checksum_of(&same), &same).unwrap();
        assert_eq!(c.state().head_time, Some(t()));
        // States kept before the rule existed have no head time, and the rule waits.
        let mut old: DocumentState = serde_json::from_value({
            let mut v = serde_json::to_value(c.state()).unwrap();
            v.as_object_mut().unwrap().remove("headTime");
            v
        })
        .unwrap();
        assert_eq!(old.head_time, None);
        let pl = TransitionPayload::new(old.draft(
            Action::SurrenderForDelivery,
            p(CONSIGNEE),
            Some(p(CARRIER)),
            at("2000-01-01T00:00:00.000Z"),
        ))
        .unwrap();
        old = old.apply(&pl, checksum_of(&pl)).unwrap();
        assert_eq!(old.head_time, Some(at("2000-01-01T00:00:00.000Z")));
    }

    #[test]
    fn sacc_and_srej_need_a_pending_surrender() {
        let mut c = chain(false, None);
        assert_eq!(
            step(&mut c, Action::Sacc, CARRIER, Some(SHIPPER)),
            Err("no_pending_surrender")
        );
        assert_eq!(
            step(&mut c, Action::Srej, CARRIER, Some(SHIPPER)),
            Err("no_pending_surrender")
        );
    }

    #[test]
    fn srej_returns_possession_to_the_requester() {
        let mut c = chain(false, None);
        step(&mut c, Action::Transfer, SHIPPER, Some(CONSIGNEE)).unwrap();
        step(
            &mut c,
            Action::SurrenderForDelivery,
            CONSIGNEE,
            Some(CARRIER),
        )
        .unwrap();
        assert_eq!(step(&mut c, Action::Srej, CARRIER, Some(CONSIGNEE)), Ok(()));
        assert_eq!(c.state().possessor, p(CONSIGNEE));
        assert_eq!(c.state().status, Status::Active);
        assert_eq!(c.state().pending_surrender, None);
    }

    #[test]
    fn nothing_after_delivery() {
        let mut c = chain(false, None);
        step(&mut c, Action::Transfer, SHIPPER, Some(CONSIGNEE)).unwrap();
        step(
            &mut c,
            Action::SurrenderForDelivery,
            CONSIGNEE,
            Some(CARRIER),
        )
        .unwrap();
        step(&mut c, Action::Sacc, CARRIER, Some(CONSIGNEE)).unwrap();
        assert_eq!(c.state().status, Status::SurrenderedForDelivery);
        assert!(c.state().status.is_terminal());
        assert_eq!(
            step(&mut c, Action::Sign, CARRIER, None),
            Err("document_closed")
        );
        assert_eq!(
            step(&mut c, Action::Void, CARRIER, None),
            Err("document_closed")
        );
        assert_eq!(
            step(&mut c, Action::Transfer, CARRIER, Some(SHIPPER)),
            Err("document_closed")
        );
    }

    #[test]
    fn switch_to_paper_then_void() {
        let mut c = chain(true, None);
        let mut d = c.state().draft(
            Action::SurrenderForAmendment,
            p(SHIPPER),
            Some(p(CARRIER)),
            t(),
        );
        d.reason_code = Some(ReasonCode::SWTP);
        let pl = TransitionPayload::new(d).unwrap();
        assert!(pl.is_switch_to_paper());
        c.append(checksum_of(&pl), &pl).unwrap();
        assert_eq!(
            step(&mut c, Action::Void, CARRIER, None),
            Err("void_without_accepted_amendment")
        );
        step(&mut c, Action::Sacc, CARRIER, Some(SHIPPER)).unwrap();
        assert_eq!(c.state().status, Status::SurrenderedForAmendment);
        assert_eq!(
            step(&mut c, Action::Sign, CARRIER, None),
            Err("document_closed")
        );
        assert_eq!(
            step(&mut c, Action::Void, SHIPPER, None),
            Err("not_carrier")
        );
        assert_eq!(step(&mut c, Action::Void, CARRIER, None), Ok(()));
        assert_eq!(c.state().status, Status::Void);
        assert_eq!(
            step(&mut c, Action::Void, CARRIER, None),
            Err("document_closed")
        );
    }

    #[test]
    fn void_needs_accepted_amendment() {
        let mut c = chain(false, None);
        assert_eq!(
            step(&mut c, Action::Void, CARRIER, None),
            Err("void_without_accepted_amendment")
        );
    }

    #[test]
    fn self_transfer_is_refused() {
        let mut c = chain(true, None);
        assert_eq!(
            step(&mut c, Action::Transfer, SHIPPER, Some(SHIPPER)),
            Err("self_transfer")
        );
    }

    #[test]
    fn double_spend_and_duplicates() {
        let mut c = chain(true, None);
        let first = payload(c.state(), Action::Transfer, SHIPPER, Some(BANK));
        let issue_head = c.state().head;
        c.append(checksum_of(&first), &first).unwrap();
        // Same transition again.
        assert_eq!(
            c.append(checksum_of(&first), &first),
            Err(RuleViolation::DuplicateTransition)
        );
        // A second child of the ISSUE.
        let mut d = first.clone().into_draft();
        d.recipient = Some(p(BANK2));
        let second = TransitionPayload::new(d).unwrap();
        assert_eq!(
            c.append(checksum_of(&second), &second),
            Err(RuleViolation::DoubleSpend { parent: issue_head })
        );
        assert_eq!(c.state().possessor, p(BANK));
    }

    #[test]
    fn state_serialises_for_storage() {
        let c = chain(true, Some(BANK));
        let v = serde_json::to_value(c.state()).unwrap();
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["possessor"], SHIPPER);
        let back: DocumentState = serde_json::from_value(v).unwrap();
        assert_eq!(&back, c.state());
    }

    // ----- model-based property tests -----

    /// An independent, deliberately naive statement of the rules over party indices.
    #[derive(Debug, Clone, PartialEq)]
    struct Model {
        to_order: bool,
        possessor: usize,
        endorsee: Option<usize>,
        may_endorse: bool,
        blank: bool,
        /// 0 active, 1 pending delivery, 2 pending amendment, 3 delivered, 4 amended, 5 void
        phase: u8,
        requester: Option<usize>,
    }

    const C: usize = 0; // carrier
    const CONS: usize = 2; // consignee

    #[derive(Debug, Clone, Copy)]
    struct Move {
        action: Action,
        actor: usize,
        recipient: Option<usize>,
    }

    impl Model {
        fn new(to_order: bool, endorsee: Option<usize>) -> Self {
            Model {
                to_order,
                possessor: 1,
                endorsee,
                may_endorse: true,
                blank: to_order && endorsee.is_none(),
                phase: 0,
                requester: None,
            }
        }

        fn holder(&self, a: usize) -> bool {
            self.possessor == a && (self.blank || self.endorsee == Some(a))
        }

        /// Returns the next model, or None if the move is not allowed.
        fn next(&self, m: Move) -> Option<Model> {
            use Action::*;
            if m.recipient.is_some() != m.action.has_recipient() || m.recipient == Some(m.actor) {
                return None;
            }
            let mut n = self.clone();
            let r = m.recipient;
            let active_possessor = self.phase == 0 && self.possessor == m.actor;
            match m.action {
                Issue => return None,
                Transfer if active_possessor => {
                    let to = r?;
                    if !self.to_order && to != C && to != CONS {
                        return None;
                    }
                    n.possessor = to;
                }
                Endorse | EndorseToOrder | BlankEndorse
                    if active_possessor
                        && self.to_order
                        && (self.blank || (self.endorsee == Some(m.actor) && self.may_endorse)) =>
                {
                    n.blank = m.action == BlankEndorse;
                    n.endorsee = r;
                    n.may_endorse = m.action != Endorse;
                }
                Sign if active_possessor => {}
                SurrenderForDelivery | SurrenderForAmendment
                    if active_possessor && r == Some(C) =>
                {
                    let delivery = m.action == SurrenderForDelivery;
                    let ok = if self.to_order {
                        self.holder(m.actor)
                    } else {
                        !delivery || m.actor == CONS
                    };
                    if !ok {
                        return None;
                    }
                    n.phase = if delivery { 1 } else { 2 };
                    n.requester = Some(m.actor);
                    n.possessor = C;
                }
                Sacc if m.actor == C
                    && (self.phase == 1 || self.phase == 2)
                    && r == self.requester =>
                {
                    n.phase += 2;
                    n.requester = None;
                }
                Srej if m.actor == C
                    && (self.phase == 1 || self.phase == 2)
                    && r == self.requester =>
                {
                    n.phase = 0;
                    n.possessor = self.requester?;
                    n.requester = None;
                }
                Void if m.actor == C && self.phase == 4 => n.phase = 5,
                _ => return None,
            }
            Some(n)
        }

        fn all_moves() -> Vec<Move> {
            let mut out = Vec::new();
            for action in Action::ALL {
                for actor in 0..PARTIES.len() {
                    if action.has_recipient() {
                        for r in 0..PARTIES.len() {
                            out.push(Move {
                                action,
                                actor,
                                recipient: Some(r),
                            });
                        }
                    } else {
                        out.push(Move {
                            action,
                            actor,
                            recipient: None,
                        });
                    }
                }
            }
            out
        }
    }

    fn model_matches(model: &Model, s: &DocumentState) -> bool {
        let idx = |x: &PartyId| PARTIES.iter().position(|q| *q == x.as_str());
        let phase = match s.status {
            Status::Active => 0,
            Status::SurrenderRequested {
                kind: SurrenderKind::Delivery,
            } => 1,
            Status::SurrenderRequested {
                kind: SurrenderKind::Amendment,
            } => 2,
            Status::SurrenderedForDelivery => 3,
            Status::SurrenderedForAmendment => 4,
            Status::Void => 5,
        };
        idx(&s.possessor) == Some(model.possessor)
            && s.endorsee.as_ref().and_then(idx) == model.endorsee
            && s.blank_endorsed == model.blank
            && phase == model.phase
            && s.surrender_requested_by.as_ref().and_then(idx) == model.requester
            && (model.endorsee.is_none() || s.endorsee_may_endorse == model.may_endorse)
    }

    fn to_payload(s: &DocumentState, m: Move) -> Option<TransitionPayload> {
        TransitionPayload::new(s.draft(
            m.action,
            p(PARTIES[m.actor]),
            m.recipient.map(|r| p(PARTIES[r])),
            t(),
        ))
        .ok()
    }

    fn arb_setup() -> impl Strategy<Value = (bool, Option<usize>)> {
        prop_oneof![
            Just((false, None)),
            Just((true, None)),
            Just((true, Some(1usize))),
            Just((true, Some(3usize))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random moves: the implementation accepts exactly what the model allows, a rejected
        /// move changes nothing, and the listed invariants hold after every step.
        #[test]
        fn random_moves_follow_the_model(
            (to_order, endorsee) in arb_setup(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..60),
        ) {
            let moves = Model::all_moves();
            let mut c = chain(to_order, endorsee.map(|e| PARTIES[e]));
            let mut model = Model::new(to_order, endorsee);
            for pick in picks {
                let m = moves[pick.index(moves.len())];
                let before = c.clone();
                let was_terminal = c.state().status.is_terminal();
                let result = match to_payload(c.state(), m) {
                    Some(pl) => c.append(checksum_of(&pl), &pl).map(|_| pl),
                    None => Err(RuleViolation::WrongRecipient), // payload itself refused
                };
                let expected = model.next(m);
                prop_assert_eq!(result.is_ok(), expected.is_some(), "move {:?} on {:?}", m, model);
                match (result, expected) {
                    (Ok(pl), Some(next)) => {
                        model = next;
                        prop_assert!(!was_terminal, "accepted after close");
                        if matches!(m.action, Action::Sacc | Action::Srej | Action::Void) {
                            prop_assert_eq!(pl.actor().as_str(), CARRIER);
                        }
                        if matches!(m.action, Action::SurrenderForDelivery | Action::SurrenderForAmendment) {
                            prop_assert_eq!(pl.recipient().map(PartyId::as_str), Some(CARRIER));
                            prop_assert_eq!(c.state().possessor.as_str(), CARRIER);
                        }
                        prop_assert_eq!(c.len(), before.len() + 1);
                    }
                    _ => prop_assert_eq!(&c, &before),
                }
                prop_assert!(model_matches(&model, c.state()), "{:?} vs {:?}", model, c.state());
                // Exactly one party can act as possessor (SIGN) while active; none otherwise.
                let signers = (0..PARTIES.len())
                    .filter(|&a| {
                        to_payload(c.state(), Move { action: Action::Sign, actor: a, recipient: None })
                            .is_some_and(|pl| c.state().apply(&pl, checksum_of(&pl)).is_ok())
                    })
                    .count();
                let expected_signers = usize::from(c.state().status == Status::Active);
                prop_assert_eq!(signers, expected_signers);
            }
        }

        /// Sequences built only from moves the model allows are always accepted, and any
        /// second child of an earlier transition is then refused as a double spend.
        #[test]
        fn valid_sequences_are_accepted_and_forks_refused(
            (to_order, endorsee) in arb_setup(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..40),
            fork_pick in any::<prop::sample::Index>(),
        ) {
            let moves = Model::all_moves();
            let mut c = chain(to_order, endorsee.map(|e| PARTIES[e]));
            let mut model = Model::new(to_order, endorsee);
            let mut history: Vec<(DocumentState, TransitionPayload)> = Vec::new();
            for pick in picks {
                let valid: Vec<Move> = moves.iter().copied().filter(|m| model.next(*m).is_some()).collect();
                if valid.is_empty() {
                    prop_assert!(c.state().status.is_terminal());
                    break;
                }
                let m = valid[pick.index(valid.len())];
                let pl = to_payload(c.state(), m).unwrap();
                let before = c.state().clone();
                prop_assert_eq!(c.append(checksum_of(&pl), &pl), Ok(()), "valid move {:?} refused", m);
                model = model.next(m).unwrap();
                history.push((before, pl));
            }
            if !history.is_empty() {
                // Fork at any earlier transition: replay one step's move with another time.
                let (state, original) = &history[fork_pick.index(history.len())];
                let mut d = original.clone().into_draft();
                d.time = "2026-11-24T00:00:00.000Z".parse().unwrap();
                let fork = TransitionPayload::new(d).unwrap();
                let head = c.state().clone();
                let err = c.append(checksum_of(&fork), &fork).unwrap_err();
                prop_assert_eq!(err, RuleViolation::DoubleSpend { parent: state.head });
                prop_assert_eq!(c.state(), &head);
            }
        }
    }
}
