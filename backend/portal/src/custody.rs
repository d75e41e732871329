//! The node's signing key and the one path every signature of the portal takes: the payload
//! is signed with the party's key, handed to the node's outbox exactly as `POST
//! /v1/transitions` on the node's face hands it (checked first, kept durably, forwarded in
//! order, also while the registry is away), and the audit log records who asked for it.
//!
//! The key is loaded by `lading replica` (`[portal] signing_key`: a private OKP JWK, mode
//! 0600, a key of the node's party in the membership the node follows; test keys only where
//! allowed). Without one the portal still drafts, but signs nothing.

use lading_domain::event::ShipmentEvent;
use lading_domain::jws::SigningKey;
use lading_domain::transition::TransitionPayload;
use lading_replica::node::{NodeError, SubmissionKind};
use lading_store::outbox::OutboxRow;

use crate::error::PortalError;
use crate::session::SignedIn;
use crate::Portal;

/// The party's private key; its `Debug` shows the kid only.
#[derive(Clone)]
pub struct Custody(SigningKey);

impl Custody {
    pub fn new(key: SigningKey) -> Self {
        Self(key)
    }

    pub fn kid(&self) -> &lading_domain::KeyId {
        &self.0.kid
    }
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Custody({})", self.0.kid)
    }
}

/// Signs `payload` for `user`, hands it to the outbox and records the signature in the audit
/// log (user, action, document, kid, outbox seq). Blocks. A submission the node refuses is
/// [`PortalError::Refused`], and nothing is kept.
pub fn sign_and_submit(
    portal: &Portal,
    user: &SignedIn,
    payload: &TransitionPayload,
) -> Result<OutboxRow, PortalError> {
    let custody = portal.custody().ok_or(PortalError::NoSigningKey)?;
    hand_over(
        portal,
        user,
        &payload.sign(&custody.0),
        SubmissionKind::Transition,
        payload.action().as_str(),
        Some(payload.document_reference().as_str()),
        payload.recipient().map(|r| r.as_str()),
    )
}

/// The same for a shipment event (audit action `sign EVENT <code>`).
pub fn sign_event_and_submit(
    portal: &Portal,
    user: &SignedIn,
    event: &ShipmentEvent,
) -> Result<OutboxRow, PortalError> {
    let custody = portal.custody().ok_or(PortalError::NoSigningKey)?;
    hand_over(
        portal,
        user,
        &event.sign(&custody.0),
        SubmissionKind::Event,
        &format!("EVENT {}", event.event_code().as_str()),
        event.document_reference().map(|d| d.as_str()),
        None,
    )
}

fn hand_over(
    portal: &Portal,
    user: &SignedIn,
    signed: &str,
    kind: SubmissionKind,
    what: &str,
    reference: Option<&str>,
    recipient: Option<&str>,
) -> Result<OutboxRow, PortalError> {
    let kid = portal
        .custody()
        .map(|c| c.kid().to_string())
        .unwrap_or_default();
    let row = match portal.node().take_submission(signed, kind) {
        Ok(row) => row,
        Err(NodeError::Refused(incident)) => {
            return Err(PortalError::Refused(format!(
                "the node refused the signed {}: {incident}",
                kind.as_str()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    lading_store::portal::audit(
        &mut *portal.conn()?,
        Some(user.user_id),
        &user.username,
        &format!("sign {what}"),
        reference,
        &serde_json::json!({
            "kid": kid,
            "outboxSeq": row.seq,
            "recipient": recipient,
        }),
    )?;
    tracing::info!(user = %user.username, what, ?reference, seq = row.seq, "signed and handed to the outbox");
    Ok(row)
}
