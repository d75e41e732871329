//! The signed transition: one action on one transport document, signed by the party taking it.
//!
//! A transition is a compact JWS (see [`crate::jws`]) with header `typ`
//! `"lading-transition+jws"` whose payload is RFC 8785 canonical JSON of this object
//! (unknown members and `null` values are refused):
//!
//! | member | type | rule |
//! |---|---|---|
//! | `documentReference` | string | a [`DocumentReference`] |
//! | `documentChecksum` | string | 64 lowercase hex: SHA-256 of the document's canonical JSON |
//! | `previousTransitionChecksum` | string | 64 lowercase hex: SHA-256 of the previous transition's compact JWS; absent on `ISSUE`, required otherwise |
//! | `action` | string | one of the [`Action`] codes |
//! | `actor` | string | the [`PartyId`] taking the action (the signer's party) |
//! | `recipient` | string | a [`PartyId`]; required for every action except `BLANK_ENDORSE`, `SIGN` and `VOID`, which have no counterpart and must omit it. For `SACC` and `SREJ` it is the party that requested the surrender |
//! | `time` | string | `YYYY-MM-DDTHH:MM:SS.mmmZ` |
//! | `reasonCode` | string | optional, `^[A-Z0-9_]{2,10}$`; `SWTP` on a `SURRENDER_FOR_AMENDMENT` means switch to paper |
//! | `transportDocument` | object | present on `ISSUE` only: the document (see [`crate::document`]); its checksum must equal `documentChecksum` and its reference `documentReference` |
//!
//! [`SignedTransition::parse`] checks the envelope and the payload but not the signature: the
//! caller looks the key up by `kid` (unknown → `unknown_key`), then calls
//! [`SignedTransition::verify`]. Whether the transition is allowed is the state machine's
//! business ([`crate::state`]).
//!
//! Error codes: `malformed_jws`, `unsupported_algorithm`, `bad_signature`, `unknown_key`,
//! `wrong_type`, `non_canonical_payload`, `invalid_payload`, `invalid_document_field`,
//! `document_checksum_mismatch`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::canonical::canonical_bytes_of;
use crate::digest::Digest;
use crate::document::{
    from_serde_error, normal_form_difference, DocumentError, DocumentFields, TransportDocument,
};
use crate::ids::{DocumentReference, KeyId, PartyId, Timestamp};
use crate::jws::{open_envelope, CompactJws, EnvelopeError, JwsError, SigningKey, VerifyingKey};

/// The JWS `typ` of a transition.
pub const TRANSITION_TYP: &str = "lading-transition+jws";

/// The action codes of DCSA PINT v3, plus Lading's `VOID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// The carrier issues the document to its first possessor.
    Issue,
    /// The possessor hands possession to the recipient.
    Transfer,
    /// The holder names the recipient endorsee; the recipient may not endorse further.
    Endorse,
    /// The holder names the recipient endorsee, who may endorse further.
    EndorseToOrder,
    /// The holder endorses in blank: whoever possesses the document holds it.
    BlankEndorse,
    /// The possessor confirms possession; changes nothing else.
    Sign,
    SurrenderForDelivery,
    SurrenderForAmendment,
    /// The carrier accepts the pending surrender.
    Sacc,
    /// The carrier rejects the pending surrender; possession returns to the requester.
    Srej,
    /// The carrier voids a document whose amendment surrender it accepted.
    Void,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Issue,
        Action::Transfer,
        Action::Endorse,
        Action::EndorseToOrder,
        Action::BlankEndorse,
        Action::Sign,
        Action::SurrenderForDelivery,
        Action::SurrenderForAmendment,
        Action::Sacc,
        Action::Srej,
        Action::Void,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Issue => "ISSUE",
            Action::Transfer => "TRANSFER",
            Action::Endorse => "ENDORSE",
            Action::EndorseToOrder => "ENDORSE_TO_ORDER",
            Action::BlankEndorse => "BLANK_ENDORSE",
            Action::Sign => "SIGN",
            Action::SurrenderForDelivery => "SURRENDER_FOR_DELIVERY",
            Action::SurrenderForAmendment => "SURRENDER_FOR_AMENDMENT",
            Action::Sacc => "SACC",
            Action::Srej => "SREJ",
            Action::Void => "VOID",
        }
    }

    /// Whether the payload must name a recipient (else it must not).
    pub fn has_recipient(self) -> bool {
        !matches!(self, Action::BlankEndorse | Action::Sign | Action::Void)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = TransitionError;
    fn from_str(s: &str) -> Result<Self, TransitionError> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| TransitionError::invalid("/action", format!("unknown action {s:?}")))
    }
}

/// A short reason code, `^[A-Z0-9_]{2,10}$`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(Cow<'static, str>);

impl ReasonCode {
    /// Switch to paper (with `SURRENDER_FOR_AMENDMENT`).
    pub const SWTP: ReasonCode = ReasonCode(Cow::Borrowed("SWTP"));

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ReasonCode {
    type Err = TransitionError;
    fn from_str(s: &str) -> Result<Self, TransitionError> {
        let ok = (2..=10).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(TransitionError::invalid(
                "/reasonCode",
                "must match ^[A-Z0-9_]{2,10}$",
            ));
        }
        Ok(Self(Cow::Owned(s.to_owned())))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode({})", self.0)
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::ids::deserialize_from_str(deserializer)
    }
}

/// Why a transition was refused before the state machine saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The JWS, its `typ` or its payload's canonical form.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("invalid payload at {path:?}: {message}")]
    InvalidPayload { path: String, message: String },
    #[error("invalid transport document field at {}: {}", .0.path, .0.message)]
    Document(DocumentError),
    #[error("documentChecksum {claimed} does not match the document's checksum {actual}")]
    DocumentChecksumMismatch { claimed: Digest, actual: Digest },
}

impl TransitionError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::InvalidPayload {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// For callers that found no key for `kid`.
    pub fn unknown_key(kid: &KeyId) -> Self {
        Self::Envelope(EnvelopeError::Jws(JwsError::UnknownKey(kid.to_string())))
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.code(),
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::Document(e) => e.code(),
            Self::DocumentChecksumMismatch { .. } => "document_checksum_mismatch",
        }
    }

    /// JSON Pointer into the payload, for errors about one member.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::InvalidPayload { path, .. } => Some(path),
            Self::Document(e) => Some(&e.path),
            Self::DocumentChecksumMismatch { .. } => Some("/documentChecksum"),
            _ => None,
        }
    }
}

/// The members of a transition payload, before the cross-member rules are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionDraft {
    pub document_reference: DocumentReference,
    pub document_checksum: Digest,
    pub previous_transition_checksum: Option<Digest>,
    pub action: Action,
    pub actor: PartyId,
    pub recipient: Option<PartyId>,
    pub time: Timestamp,
    pub reason_code: Option<ReasonCode>,
    pub transport_document: Option<TransportDocument>,
}

/// A transition payload that satisfies every rule of this module.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionPayload {
    document_reference: DocumentReference,
    document_checksum: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_transition_checksum: Option<Digest>,
    action: Action,
    actor: PartyId,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<PartyId>,
    time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport_document: Option<TransportDocument>,
}

/// The members as sent, before the cross-member rules. The transport document stays untyped
/// (`D`): a `Value` on the thorough path, the bytes as sent (`&RawValue`) on the fast path,
/// where they are parsed straight into their type and hashed as they are.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    bound(deserialize = "D: Deserialize<'de>")
)]
struct RawPayload<D> {
    document_reference: DocumentReference,
    document_checksum: Digest,
    #[serde(default)]
    previous_transition_checksum: Option<Digest>,
    action: Action,
    actor: PartyId,
    #[serde(default)]
    recipient: Option<PartyId>,
    time: Timestamp,
    #[serde(default)]
    reason_code: Option<ReasonCode>,
    #[serde(default)]
    transport_document: Option<D>,
}

impl TransitionPayload {
    /// The fast path for signed payloads: a typed parse straight from the bytes, accepted only
    /// when the payload's canonical form is exactly these bytes — one comparison that proves
    /// the bytes canonical and in normal form. `None` means "use [`Self::from_json`] on the
    /// parsed value to learn the precise error"; both paths accept exactly the same payloads.
    fn from_canonical_bytes(bytes: &[u8]) -> Option<Self> {
        Self::from_accepted_bytes(bytes).filter(|payload| payload.canonical_bytes() == bytes)
    }

    /// The typed parse of [`Self::from_canonical_bytes`] without its proof that the bytes are
    /// canonical: for payloads the ledger took, which were proved canonical then.
    fn from_accepted_bytes(bytes: &[u8]) -> Option<Self> {
        let raw: RawPayload<&serde_json::value::RawValue> = serde_json::from_slice(bytes).ok()?;
        // Once the whole payload is proven canonical, the document's slice of it is the
        // document's canonical form: its checksum is the hash of those bytes, with no second
        // serialisation of the document.
        let (transport_document, document_checksum) = match raw.transport_document {
            Some(doc) => {
                let fields: DocumentFields = serde_json::from_str(doc.get()).ok()?;
                let document = TransportDocument::new(fields).ok()?;
                (Some(document), Some(Digest::of(doc.get().as_bytes())))
            }
            None => (None, None),
        };
        Self::from_raw(raw, transport_document, document_checksum).ok()
    }

    /// The payload of an entry the ledger took, already parsed as a compact JWS: the typed
    /// parse of [`SignedTransition::parse`] without proving the payload canonical again (the
    /// ledger proved it when it took the entry; `verify-bundle` proves it again from a bundle)
    /// and without the transition's checksum (a SHA-256 of the whole entry). An exporter reads
    /// every entry of a range this way. What is not a transition fails as
    /// [`SignedTransition::parse`] says.
    pub fn from_accepted(jws: &CompactJws) -> Result<Self, TransitionError> {
        if jws.typ() == Some(TRANSITION_TYP) && jws.has_canonical_header() {
            if let Some(payload) = Self::from_accepted_bytes(jws.payload_bytes()) {
                return Ok(payload);
            }
        }
        SignedTransition::parse(jws.as_str()).map(|t| t.payload)
    }

    /// The cross-member rules on a parsed payload, shared by both parsing paths.
    fn from_raw<D>(
        raw: RawPayload<D>,
        transport_document: Option<TransportDocument>,
        document_checksum: Option<Digest>,
    ) -> Result<Self, TransitionError> {
        Self::checked(
            TransitionDraft {
                document_reference: raw.document_reference,
                document_checksum: raw.document_checksum,
                previous_transition_checksum: raw.previous_transition_checksum,
                action: raw.action,
                actor: raw.actor,
                recipient: raw.recipient,
                time: raw.time,
                reason_code: raw.reason_code,
                transport_document,
            },
            document_checksum,
        )
    }

    /// Checks the cross-member rules.
    pub fn new(d: TransitionDraft) -> Result<Self, TransitionError> {
        Self::checked(d, None)
    }

    /// [`Self::new`], with the checksum of the draft's transport document when the caller
    /// already knows it (computed here otherwise).
    fn checked(
        d: TransitionDraft,
        document_checksum: Option<Digest>,
    ) -> Result<Self, TransitionError> {
        let is_issue = d.action == Action::Issue;
        match (is_issue, d.previous_transition_checksum.is_some()) {
            (true, true) => {
                return Err(TransitionError::invalid(
                    "/previousTransitionChecksum",
                    "must be absent on ISSUE",
                ))
            }
            (false, false) => {
                return Err(TransitionError::invalid(
                    "/previousTransitionChecksum",
                    format!("required on {}", d.action),
                ))
            }
            _ => {}
        }
        match (d.action.has_recipient(), d.recipient.is_some()) {
            (true, false) => {
                return Err(TransitionError::invalid(
                    "/recipient",
                    format!("required on {}", d.action),
                ))
            }
            (false, true) => {
                return Err(TransitionError::invalid(
                    "/recipient",
                    format!("must be absent on {}", d.action),
                ))
            }
            _ => {}
        }
        match (&d.transport_document, is_issue) {
            (None, true) => {
                return Err(TransitionError::invalid(
                    "/transportDocument",
                    "required on ISSUE",
                ))
            }
            (Some(_), false) => {
                return Err(TransitionError::invalid(
                    "/transportDocument",
                    "only an ISSUE carries the document",
                ))
            }
            (Some(doc), true) => {
                if doc.reference() != &d.document_reference {
                    return Err(TransitionError::invalid(
                        "/documentReference",
                        "differs from the document's transportDocumentReference",
                    ));
                }
                let actual = document_checksum.unwrap_or_else(|| doc.checksum());
                if actual != d.document_checksum {
                    return Err(TransitionError::DocumentChecksumMismatch {
                        claimed: d.document_checksum,
                        actual,
                    });
                }
            }
            (None, false) => {}
        }
        Ok(Self {
            document_reference: d.document_reference,
            document_checksum: d.document_checksum,
            previous_transition_checksum: d.previous_transition_checksum,
            action: d.action,
            actor: d.actor,
            recipient: d.recipient,
            time: d.time,
            reason_code: d.reason_code,
            transport_document: d.transport_document,
        })
    }

    /// The ISSUE of `document` by `actor` to `recipient`.
    pub fn issue(
        document: TransportDocument,
        actor: PartyId,
        recipient: PartyId,
        time: Timestamp,
    ) -> Result<Self, TransitionError> {
        Self::new(TransitionDraft {
            document_reference: document.reference().clone(),
            document_checksum: document.checksum(),
            previous_transition_checksum: None,
            action: Action::Issue,
            actor,
            recipient: Some(recipient),
            time,
            reason_code: None,
            transport_document: Some(document),
        })
    }

    /// Parses a payload from JSON; member errors carry their JSON Pointer.
    pub fn from_json(v: &Value) -> Result<Self, TransitionError> {
        let raw: RawPayload<Value> = serde_path_to_error::deserialize(v).map_err(|e| {
            let e = from_serde_error(&e);
            TransitionError::InvalidPayload {
                path: e.path,
                message: e.message,
            }
        })?;
        let transport_document = raw
            .transport_document
            .as_ref()
            .map(|doc| {
                TransportDocument::from_json(doc)
                    .map_err(|e| TransitionError::Document(e.with_prefix("/transportDocument")))
            })
            .transpose()?;
        let payload = Self::from_raw(raw, transport_document, None)?;
        if let Some(path) = normal_form_difference(v, &payload.to_json()) {
            return Err(TransitionError::invalid(
                &path,
                "not in normal form (omit optional members instead of null)",
            ));
        }
        Ok(payload)
    }

    pub fn to_json(&self) -> Value {
        // Plain data with string keys always serialises.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The RFC 8785 bytes that get signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes_of(self)
    }

    /// Signs the canonical payload as a compact JWS with `typ` `lading-transition+jws`.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign_compact(&self.canonical_bytes(), TRANSITION_TYP)
    }

    pub fn document_reference(&self) -> &DocumentReference {
        &self.document_reference
    }

    pub fn document_checksum(&self) -> &Digest {
        &self.document_checksum
    }

    pub fn previous_transition_checksum(&self) -> Option<&Digest> {
        self.previous_transition_checksum.as_ref()
    }

    pub fn action(&self) -> Action {
        self.action
    }

    pub fn actor(&self) -> &PartyId {
        &self.actor
    }

    pub fn recipient(&self) -> Option<&PartyId> {
        self.recipient.as_ref()
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    pub fn reason_code(&self) -> Option<&ReasonCode> {
        self.reason_code.as_ref()
    }

    /// True for a switch-to-paper request (amendment surrender with reason `SWTP`).
    pub fn is_switch_to_paper(&self) -> bool {
        self.action == Action::SurrenderForAmendment
            && self.reason_code.as_ref() == Some(&ReasonCode::SWTP)
    }

    pub fn transport_document(&self) -> Option<&TransportDocument> {
        self.transport_document.as_ref()
    }

    /// The parties this transition involves: the actor, then the recipient if any.
    pub fn parties(&self) -> Vec<&PartyId> {
        std::iter::once(&self.actor)
            .chain(self.recipient.as_ref())
            .collect()
    }

    pub fn into_draft(self) -> TransitionDraft {
        TransitionDraft {
            document_reference: self.document_reference,
            document_checksum: self.document_checksum,
            previous_transition_checksum: self.previous_transition_checksum,
            action: self.action,
            actor: self.actor,
            recipient: self.recipient,
            time: self.time,
            reason_code: self.reason_code,
            transport_document: self.transport_document,
        }
    }
}

impl<'de> Deserialize<'de> for TransitionPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A parsed transition whose signature is still to be checked by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedTransition {
    jws: CompactJws,
    payload: TransitionPayload,
    checksum: Digest,
}

impl SignedTransition {
    pub fn parse(compact: &str) -> Result<Self, TransitionError> {
        if let Ok(jws) = CompactJws::parse(compact) {
            if jws.typ() == Some(TRANSITION_TYP) && jws.has_canonical_header() {
                if let Some(payload) = TransitionPayload::from_canonical_bytes(jws.payload_bytes())
                {
                    let checksum = jws.checksum();
                    return Ok(Self {
                        jws,
                        payload,
                        checksum,
                    });
                }
            }
        }
        // Something is wrong: the thorough path names it.
        let (jws, value) = open_envelope(compact, TRANSITION_TYP)?;
        let payload = TransitionPayload::from_json(&value)?;
        let checksum = jws.checksum();
        Ok(Self {
            jws,
            payload,
            checksum,
        })
    }

    /// Checks the signature with the key the caller found for [`Self::kid`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), TransitionError> {
        key.verify(&self.jws)
            .map_err(|e| TransitionError::Envelope(e.into()))
    }

    pub fn jws(&self) -> &CompactJws {
        &self.jws
    }

    pub fn kid(&self) -> &KeyId {
        self.jws.kid()
    }

    pub fn payload(&self) -> &TransitionPayload {
        &self.payload
    }

    /// The transition checksum: SHA-256 of the compact JWS bytes.
    pub fn checksum(&self) -> Digest {
        self.checksum
    }

    pub fn as_str(&self) -> &str {
        self.jws.as_str()
    }
}

/// The transport document of a signed ISSUE: the one reading of it, for everyone who takes an
/// ISSUE back from the ledger or from a replica's rows. [`Self::document`] is the document,
/// parsed and checked with the whole transition; [`Self::as_signed`] is the payload's
/// `transportDocument` member exactly as the carrier signed it (the payload is canonical, so
/// these are the bytes the document checksum is over — a weight signed as `2400` stays `2400`,
/// where the parsed document would write `2400.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedDocument {
    document: TransportDocument,
    jws: CompactJws,
}

impl IssuedDocument {
    /// Reads a signed ISSUE's compact JWS, as the ledger keeps it. Refused: bytes that are not
    /// a valid transition, and a transition that carries no transport document (anything but
    /// an ISSUE). The signature is not checked: the ledger's entries were checked when taken.
    pub fn parse(signed: &[u8]) -> Result<Self, TransitionError> {
        let text = std::str::from_utf8(signed).map_err(|_| {
            TransitionError::Envelope(JwsError::Malformed("the JWS is not UTF-8".into()).into())
        })?;
        Self::of(&SignedTransition::parse(text)?)
    }

    /// The document a parsed ISSUE carries.
    pub fn of(issue: &SignedTransition) -> Result<Self, TransitionError> {
        let document = issue
            .payload()
            .transport_document()
            .cloned()
            .ok_or_else(|| {
                TransitionError::invalid(
                    "/transportDocument",
                    format!(
                        "a {} carries no transport document; only an ISSUE does",
                        issue.payload().action()
                    ),
                )
            })?;
        Ok(Self {
            document,
            jws: issue.jws().clone(),
        })
    }

    pub fn document(&self) -> &TransportDocument {
        &self.document
    }

    pub fn into_document(self) -> TransportDocument {
        self.document
    }

    /// The `transportDocument` member of the payload, as signed.
    pub fn as_signed(&self) -> Value {
        #[derive(Deserialize)]
        struct Member {
            #[serde(rename = "transportDocument")]
            transport_document: Value,
        }
        serde_json::from_slice::<Member>(self.jws.payload_bytes())
            .map(|member| member.transport_document)
            // Parsed once already: the member is there.
            .unwrap_or_else(|_| self.document.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;
    use crate::document::sample_json;
    use crate::jws::Jwk;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    fn party(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    fn time() -> Timestamp {
        "2026-11-23T12:00:00.000Z".parse().unwrap()
    }

    fn doc() -> TransportDocument {
        TransportDocument::from_json(&sample_json()).unwrap()
    }

    fn key() -> SigningKey {
        Jwk::generate("carrier-oceanic:1".parse().unwrap(), true)
            .signing_key()
            .unwrap()
    }

    fn issue() -> TransitionPayload {
        TransitionPayload::issue(
            doc(),
            party("carrier-oceanic"),
            party("shipper-acme"),
            time(),
        )
        .unwrap()
    }

    fn transfer_json() -> Value {
        json!({
            "documentReference": "OCNL2026000001",
            "documentChecksum": doc().checksum().to_hex(),
            "previousTransitionChecksum": Digest::of(b"prev").to_hex(),
            "action": "TRANSFER",
            "actor": "shipper-acme",
            "recipient": "consignee-globex",
            "time": "2026-11-23T12:00:00.000Z"
        })
    }

    fn sign_raw(payload: &[u8], typ: &str) -> String {
        key().sign_compact(payload, typ)
    }

    #[test]
    fn the_issued_document_is_read_as_signed() {
        let mut v = sample_json();
        v["consignmentItems"][0]["cargoItems"][0]["cargoGrossWeight"]["value"] = json!(2400);
        let document = TransportDocument::from_json(&v).unwrap();
        let signed = TransitionPayload::issue(
            document.clone(),
            party("carrier-oceanic"),
            party("shipper-acme"),
            time(),
        )
        .unwrap()
        .sign(&key());
        let issued = IssuedDocument::parse(signed.as_bytes()).unwrap();
        assert_eq!(issued.document(), &document);
        assert_eq!(issued.as_signed(), v, "the member as signed");
        assert_ne!(document.to_json(), v, "the parsed weight is written 2400.0");

        let transfer = sign_raw(&canonicalize(&transfer_json()), TRANSITION_TYP);
        let refused = IssuedDocument::parse(transfer.as_bytes()).unwrap_err();
        assert_eq!(refused.path(), Some("/transportDocument"), "{refused}");
        assert_eq!(
            IssuedDocument::parse(b"\xff.\xff.\xff").unwrap_err().code(),
            "malformed_jws"
        );
    }

    #[test]
    fn action_codes_serialise_as_pint_codes() {
        let names: Vec<String> = Action::ALL
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "ISSUE",
                "TRANSFER",
                "ENDORSE",
                "ENDORSE_TO_ORDER",
                "BLANK_ENDORSE",
                "SIGN",
                "SURRENDER_FOR_DELIVERY",
                "SURRENDER_FOR_AMENDMENT",
                "SACC",
                "SREJ",
                "VOID"
            ]
        );
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }

    #[test]
    fn reason_codes() {
        assert_eq!("SWTP".parse::<ReasonCode>().unwrap(), ReasonCode::SWTP);
        assert!("AB_12".parse::<ReasonCode>().is_ok());
        assert!("A".parse::<ReasonCode>().is_err());
        assert!("swtp".parse::<ReasonCode>().is_err());
        assert!("ABCDEFGHIJK".parse::<ReasonCode>().is_err());
    }

    #[test]
    fn signed_issue_round_trip() {
        let key = key();
        let payload = issue();
        let compact = payload.sign(&key);
        let t = SignedTransition::parse(&compact).unwrap();
        assert_eq!(t.payload(), &payload);
        assert_eq!(t.checksum(), Digest::of(compact.as_bytes()));
        assert_eq!(t.kid(), &key.kid);
        t.verify(&key.verifying_key()).unwrap();
        assert_eq!(
            t.payload().transport_document().unwrap().checksum(),
            doc().checksum()
        );
        assert_eq!(t.payload().parties().len(), 2);
        let other = Jwk::generate(key.kid.clone(), true).signing_key().unwrap();
        assert_eq!(
            t.verify(&other.verifying_key()).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn payload_is_camel_case_without_absent_members() {
        let v = issue().to_json();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "documentReference",
                "documentChecksum",
                "action",
                "actor",
                "recipient",
                "time",
                "transportDocument"
            ]
        );
    }

    #[test]
    fn parse_refuses_wrong_type_and_non_canonical_payloads() {
        let canonical = canonicalize(&transfer_json());
        assert!(SignedTransition::parse(&sign_raw(&canonical, TRANSITION_TYP)).is_ok());
        let e = SignedTransition::parse(&sign_raw(&canonical, "lading-event+jws")).unwrap_err();
        assert_eq!(e.code(), "wrong_type");
        let pretty = serde_json::to_vec_pretty(&transfer_json()).unwrap();
        let e = SignedTransition::parse(&sign_raw(&pretty, TRANSITION_TYP)).unwrap_err();
        assert_eq!(e.code(), "non_canonical_payload");
        let e = SignedTransition::parse("a.b").unwrap_err();
        assert_eq!(e.code(), "malformed_jws");
    }

    #[test]
    fn an_accepted_entry_is_read_without_proving_it_canonical_again() {
        let canonical = canonicalize(&transfer_json());
        let signed = sign_raw(&canonical, TRANSITION_TYP);
        let expected = SignedTransition::parse(&signed).unwrap().payload().clone();
        let jws = CompactJws::parse(&signed).unwrap();
        assert_eq!(TransitionPayload::from_accepted(&jws).unwrap(), expected);
        // A payload the ledger would never have taken (not canonical) is read by its members
        // here; `parse` (the verifier's) refuses it.
        let pretty = serde_json::to_vec_pretty(&transfer_json()).unwrap();
        let jws = CompactJws::parse(&sign_raw(&pretty, TRANSITION_TYP)).unwrap();
        assert_eq!(TransitionPayload::from_accepted(&jws).unwrap(), expected);
        let jws = CompactJws::parse(&sign_raw(&canonical, "lading-event+jws")).unwrap();
        let e = TransitionPayload::from_accepted(&jws).unwrap_err();
        assert_eq!(e.code(), "wrong_type");
        let mut v = transfer_json();
        v["actor"] = json!("Not A Party");
        let jws = CompactJws::parse(&sign_raw(&canonicalize(&v), TRANSITION_TYP)).unwrap();
        let e = TransitionPayload::from_accepted(&jws).unwrap_err();
        assert_eq!((e.code(), e.path()), ("invalid_payload", Some("/actor")));
    }

    fn payload_err(v: Value) -> TransitionError {
        let bytes = canonicalize(&v);
        SignedTransition::parse(&sign_raw(&bytes, TRANSITION_TYP)).unwrap_err()
    }

    #[test]
    fn member_errors_carry_their_pointer() {
        let mut v = transfer_json();
        v["actor"] = json!("Not A Party");
        let e = payload_err(v);
        assert_eq!((e.code(), e.path()), ("invalid_payload", Some("/actor")));

        let mut v = transfer_json();
        v["action"] = json!("STEAL");
        assert_eq!(payload_err(v).path(), Some("/action"));

        let mut v = transfer_json();
        v["time"] = json!("2026-11-23T12:00:00Z");
        assert_eq!(payload_err(v).path(), Some("/time"));

        let mut v = transfer_json();
        v["documentChecksum"] = json!("ABC");
        assert_eq!(payload_err(v).path(), Some("/documentChecksum"));

        let mut v = transfer_json();
        v["extra"] = json!(1);
        assert_eq!(payload_err(v).path(), Some("/extra"));

        let mut v = transfer_json();
        v["reasonCode"] = Value::Null;
        assert_eq!(payload_err(v).path(), Some("/reasonCode"));
    }

    #[test]
    fn recipient_and_previous_rules() {
        let mut v = transfer_json();
        v.as_object_mut().unwrap().remove("recipient");
        assert_eq!(payload_err(v).path(), Some("/recipient"));

        let mut v = transfer_json();
        v["action"] = json!("SIGN");
        assert_eq!(payload_err(v).path(), Some("/recipient"));

        let mut v = transfer_json();
        v["action"] = json!("BLANK_ENDORSE");
        v.as_object_mut().unwrap().remove("recipient");
        assert!(SignedTransition::parse(&sign_raw(&canonicalize(&v), TRANSITION_TYP)).is_ok());

        let mut v = transfer_json();
        v.as_object_mut()
            .unwrap()
            .remove("previousTransitionChecksum");
        assert_eq!(payload_err(v).path(), Some("/previousTransitionChecksum"));

        let mut v = issue().to_json();
        v["previousTransitionChecksum"] = json!(Digest::of(b"x").to_hex());
        assert_eq!(payload_err(v).path(), Some("/previousTransitionChecksum"));
    }

    #[test]
    fn document_rules_on_issue() {
        let mut v = transfer_json();
        v["transportDocument"] = sample_json();
        assert_eq!(payload_err(v).path(), Some("/transportDocument"));

        let mut v = issue().to_json();
        v.as_object_mut().unwrap().remove("transportDocument");
        assert_eq!(payload_err(v).path(), Some("/transportDocument"));

        let mut v = issue().to_json();
        v["transportDocument"]["utilizedTransportEquipments"][0]["equipment"]
            ["equipmentReference"] = json!("CSQU3054384");
        let e = payload_err(v);
        assert_eq!(e.code(), "invalid_document_field");
        assert_eq!(
            e.path(),
            Some("/transportDocument/utilizedTransportEquipments/0/equipment/equipmentReference")
        );

        let mut v = issue().to_json();
        v["documentChecksum"] = json!(Digest::of(b"other").to_hex());
        assert_eq!(payload_err(v).code(), "document_checksum_mismatch");

        let mut v = issue().to_json();
        v["transportDocument"]["vesselName"] = json!("Changed After Hashing");
        assert_eq!(payload_err(v).code(), "document_checksum_mismatch");

        let mut v = issue().to_json();
        v["documentReference"] = json!("OTHER1");
        assert_eq!(payload_err(v).path(), Some("/documentReference"));
    }

    #[test]
    fn switch_to_paper_is_an_amendment_surrender_with_swtp() {
        let mut d = issue().into_draft();
        d.action = Action::SurrenderForAmendment;
        d.transport_document = None;
        d.previous_transition_checksum = Some(Digest::of(b"p"));
        d.reason_code = Some(ReasonCode::SWTP);
        let p = TransitionPayload::new(d).unwrap();
        assert!(p.is_switch_to_paper());
        assert_eq!(p.to_json()["reasonCode"], "SWTP");
    }

    #[test]
    fn the_signed_payload_bytes_are_the_canonical_bytes() {
        let compact = issue().sign(&key());
        let middle = compact.split('.').nth(1).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(middle).unwrap(),
            issue().canonical_bytes()
        );
    }

    #[test]
    fn the_fast_path_accepts_exactly_what_the_thorough_path_accepts() {
        let doc = TransportDocument::from_json(&crate::document::sample_json()).unwrap();
        let payload = TransitionPayload::issue(
            doc,
            "carrier-oceanic".parse().unwrap(),
            "shipper-acme".parse().unwrap(),
            "2026-11-02T08:00:00.000Z".parse().unwrap(),
        )
        .unwrap();
        let bytes = payload.canonical_bytes();
        // Written straight to canonical bytes, not through the fallback.
        assert_eq!(
            crate::canonical::to_canonical_vec(&payload).unwrap(),
            canonicalize(&payload.to_json())
        );
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            TransitionPayload::from_canonical_bytes(&bytes),
            Some(TransitionPayload::from_json(&value).unwrap())
        );
        // Same value, other bytes: whitespace, reordered members, an explicit null.
        let spaced = String::from_utf8(bytes.clone())
            .unwrap()
            .replacen(':', ": ", 1);
        assert_eq!(
            TransitionPayload::from_canonical_bytes(spaced.as_bytes()),
            None
        );
        let mut with_null = value.clone();
        with_null["reasonCode"] = Value::Null;
        let with_null = crate::canonical::canonicalize(&with_null);
        assert_eq!(TransitionPayload::from_canonical_bytes(&with_null), None);
        assert!(
            TransitionPayload::from_json(&serde_json::from_slice(&with_null).unwrap()).is_err()
        );
        // The document is hashed as sent on the fast path: bytes that are not its canonical
        // form (a space inside it) are refused, not hashed.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let spaced_document =
            text.replacen("\"transportDocument\":{", "\"transportDocument\":{ ", 1);
        assert_ne!(spaced_document, text);
        assert_eq!(
            TransitionPayload::from_canonical_bytes(spaced_document.as_bytes()),
            None
        );
        // A document checksum that is not the document's: refused on both paths.
        let mut wrong = value.clone();
        wrong["documentChecksum"] = Value::String(Digest::of(b"another document").to_hex());
        let wrong_bytes = crate::canonical::canonicalize(&wrong);
        assert_eq!(TransitionPayload::from_canonical_bytes(&wrong_bytes), None);
        assert!(matches!(
            TransitionPayload::from_json(&wrong),
            Err(TransitionError::DocumentChecksumMismatch { .. })
        ));
    }
}
