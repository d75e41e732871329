//! Checks that need no ledger state, run in parallel before the sequencer sees a submission:
//! the JWS parses, its payload is canonical and valid, its kid is registered to the payload's
//! actor, and the signature verifies.

use std::sync::Arc;

use lading_domain::event::SignedEvent;
use lading_domain::merkle::leaf_hash;
use lading_domain::transition::SignedTransition;
use lading_domain::Digest;

use crate::parties::{PartyBook, RegisteredKey};
use crate::refusal::Refusal;

/// A submission whose signature and form are good; the sequencer still checks it against the
/// ledger.
#[derive(Debug, Clone)]
pub struct Verified {
    pub signed: String,
    pub leaf: Digest,
    pub kid: String,
    pub body: VerifiedBody,
}

#[derive(Debug, Clone)]
pub enum VerifiedBody {
    Transition(Box<SignedTransition>),
    Event(Box<SignedEvent>),
}

/// What kind of entry the caller expects: `/v1/transitions` takes transitions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Transition,
    Event,
}

pub fn verify(book: &PartyBook, signed: String, expect: Expect) -> Result<Verified, Refusal> {
    let (kid, body) = match expect {
        Expect::Transition => {
            let t = SignedTransition::parse(&signed).map_err(refusal_from_transition)?;
            let kid = t.jws().kid().to_string();
            check_key(book, &kid, t.payload().actor().as_str(), |key| {
                key.key.verify(t.jws()).is_ok()
            })?;
            (kid, VerifiedBody::Transition(Box::new(t)))
        }
        Expect::Event => {
            let e = SignedEvent::parse(&signed).map_err(refusal_from_event)?;
            let kid = e.jws().kid().to_string();
            check_key(book, &kid, e.event().actor().as_str(), |key| {
                key.key.verify(e.jws()).is_ok()
            })?;
            (kid, VerifiedBody::Event(Box::new(e)))
        }
    };
    Ok(Verified {
        leaf: leaf_hash(signed.as_bytes()),
        signed,
        kid,
        body,
    })
}

fn check_key(
    book: &PartyBook,
    kid: &str,
    actor: &str,
    verifies: impl FnOnce(&RegisteredKey) -> bool,
) -> Result<(), Refusal> {
    let key: Arc<RegisteredKey> =
        book.key(kid)
            .map_err(Refusal::unavailable)?
            .ok_or_else(|| Refusal::UnknownKey {
                kid: kid.to_owned(),
            })?;
    if key.revoked {
        return Err(Refusal::RevokedKey {
            kid: kid.to_owned(),
        });
    }
    if key.party.as_str() != actor {
        return Err(Refusal::KeyNotActor {
            kid: kid.to_owned(),
            owner: key.party.to_string(),
            actor: actor.to_owned(),
        });
    }
    if !verifies(&key) {
        return Err(Refusal::BadSignature {
            kid: kid.to_owned(),
        });
    }
    Ok(())
}

fn refusal_from_transition(e: lading_domain::transition::TransitionError) -> Refusal {
    match e.path() {
        Some(pointer) => Refusal::InvalidField {
            code: e.code(),
            pointer: pointer.to_owned(),
            detail: e.to_string(),
        },
        None => Refusal::Malformed {
            code: e.code(),
            detail: e.to_string(),
        },
    }
}

fn refusal_from_event(e: lading_domain::event::EventError) -> Refusal {
    match e.path() {
        Some(pointer) => Refusal::InvalidField {
            code: e.code(),
            pointer: pointer.to_owned(),
            detail: e.to_string(),
        },
        None => Refusal::Malformed {
            code: e.code(),
            detail: e.to_string(),
        },
    }
}
