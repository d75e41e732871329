//! Checks that need no ledger state, run in parallel before the sequencer sees a submission:
//! the JWS parses, its payload is canonical and valid, its kid is registered to the payload's
//! actor, and the signature verifies. Signatures are checked in batches (about half the cost
//! of one-by-one checks, see `lading_domain::ed25519`); a batch that fails is checked again
//! one signature at a time, so exactly the bad items are refused. Kids that memory does not
//! hold are looked for in the database once per request, all together (see [`PartyBook`]).

use lading_domain::event::SignedEvent;
use lading_domain::jws::{verify_batch, CompactJws, VerifyingKey};
use lading_domain::membership::SignedPartyStatement;
use lading_domain::merkle::leaf_hash;
use lading_domain::transition::SignedTransition;
use lading_domain::Digest;

use rayon::prelude::*;

use crate::parties::{InMemory, PartyBook};
use crate::refusal::Refusal;

/// A submission whose signature and form are good; the sequencer still checks it against the
/// ledger.
#[derive(Debug, Clone)]
pub struct Verified {
    pub signed: String,
    pub leaf: Digest,
    pub kid: String,
    pub body: VerifiedBody,
    /// The membership's generation the key was checked under: the sequencer checks the key
    /// again when a party statement has moved it since.
    pub generation: u64,
    /// The key was revoked (or its party removed) before now: refused, unless these very bytes
    /// are on the ledger already (then the answer is the duplicate's).
    pub stale_key: Option<Refusal>,
}

#[derive(Debug, Clone)]
pub enum VerifiedBody {
    Transition(Box<SignedTransition>),
    Event(Box<SignedEvent>),
    Party(Box<SignedPartyStatement>),
}

impl VerifiedBody {
    /// Who signed: a party id, or `operator`.
    pub fn signer(&self) -> &str {
        match self {
            Self::Transition(t) => t.payload().actor().as_str(),
            Self::Event(e) => e.event().actor().as_str(),
            Self::Party(p) => p.statement().actor.as_str(),
        }
    }
}

/// What kind of entry the caller expects: `/v1/transitions` takes transitions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Transition,
    Event,
    Party,
}

/// Signatures checked together; a failed batch is re-checked one by one. Larger batches cost
/// less per signature (`cargo bench -p lading-domain --bench signatures`: 11.8 µs at 512,
/// 10.7 µs at 1,024), so a request of 1,000 is one batch: concurrent requests keep both
/// threads busy, and parsing is still spread over them.
const SIGNATURE_BATCH: usize = 1024;

/// Verifies every item; one outcome per item, in order. Runs on the caller's rayon pool.
pub fn verify_all(
    book: &PartyBook,
    items: Vec<String>,
    expect: Expect,
) -> Vec<Result<Verified, Refusal>> {
    let mut checked: Vec<Result<(Verified, VerifyingKey), Miss>> = items
        .into_par_iter()
        .with_min_len(16)
        .map(|signed| check_form(book, signed, expect))
        .collect();
    look_up_kids(book, &mut checked, expect);
    checked.par_chunks_mut(SIGNATURE_BATCH).for_each(|chunk| {
        let pairs: Vec<(&lading_domain::jws::VerifyingKey, &CompactJws)> = chunk
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .map(|(verified, key)| (key, verified.jws()))
            .collect();
        if pairs.is_empty() || verify_batch(&pairs) {
            return;
        }
        for item in chunk.iter_mut() {
            let bad = match item {
                Ok((verified, key)) => key.verify(verified.jws()).is_err(),
                Err(_) => false,
            };
            if bad {
                let kid = item
                    .as_ref()
                    .map(|(v, _)| v.kid.clone())
                    .unwrap_or_default();
                *item = Err(Miss::Refused(Refusal::BadSignature { kid }));
            }
        }
    });
    checked
        .into_iter()
        .map(|item| item.map(|(verified, _)| verified).map_err(Miss::refusal))
        .collect()
}

/// The items whose kid memory does not hold, checked again after one look-up of all their kids
/// in the database. Costs nothing when every kid is in memory.
fn look_up_kids(
    book: &PartyBook,
    checked: &mut [Result<(Verified, VerifyingKey), Miss>],
    expect: Expect,
) {
    let kids: Vec<&str> = checked
        .iter()
        .filter_map(|item| match item {
            Err(Miss::Kid { kid, .. }) => Some(kid.as_str()),
            _ => None,
        })
        .collect();
    if kids.is_empty() {
        return;
    }
    let found = book.look_up_kids(&kids);
    for item in checked.iter_mut() {
        if !matches!(item, Err(Miss::Kid { .. })) {
            continue;
        }
        let Err(Miss::Kid { signed, kid }) = std::mem::replace(item, Err(Miss::Looked)) else {
            continue;
        };
        *item = match &found {
            Ok(true) => check_form(book, signed, expect),
            Ok(false) => Err(Miss::Refused(Refusal::UnknownKey { kid })),
            Err(e) => Err(Miss::Refused(Refusal::unavailable(e))),
        };
    }
}

/// [`verify_all`] for one item.
pub fn verify(book: &PartyBook, signed: String, expect: Expect) -> Result<Verified, Refusal> {
    let mut checked = [check_form(book, signed, expect)];
    look_up_kids(book, &mut checked, expect);
    let [checked] = checked;
    let (verified, key) = checked.map_err(Miss::refusal)?;
    key.verify(verified.jws())
        .map_err(|_| Refusal::BadSignature {
            kid: verified.kid.clone(),
        })?;
    Ok(verified)
}

impl Verified {
    fn jws(&self) -> &CompactJws {
        match &self.body {
            VerifiedBody::Transition(t) => t.jws(),
            VerifiedBody::Event(e) => e.jws(),
            VerifiedBody::Party(p) => p.jws(),
        }
    }
}

/// Why an item did not pass [`check_form`].
enum Miss {
    Refused(Refusal),
    /// Its kid is not in memory: the database is to be asked (once for the whole request),
    /// then the item checked again.
    Kid {
        signed: String,
        kid: String,
    },
    /// Only while the item is being checked again.
    Looked,
}

impl Miss {
    fn refusal(self) -> Refusal {
        match self {
            Self::Refused(refusal) => refusal,
            Self::Kid { kid, .. } => Refusal::UnknownKey { kid },
            Self::Looked => Refusal::unavailable("an item was not checked"),
        }
    }
}

impl From<Refusal> for Miss {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// Everything but the signature: the JWS parses, its payload is valid, and its kid is a live
/// key of the payload's actor — as far as memory knows: a kid it does not hold is a
/// [`Miss::Kid`], for the caller to look up.
fn check_form(
    book: &PartyBook,
    signed: String,
    expect: Expect,
) -> Result<(Verified, VerifyingKey), Miss> {
    if signed.len() > crate::MAX_ITEM_BYTES {
        return Err(Refusal::TooLarge {
            limit: crate::MAX_ITEM_BYTES,
        }
        .into());
    }
    let body = match expect {
        Expect::Transition => VerifiedBody::Transition(Box::new(
            SignedTransition::parse(&signed).map_err(refusal_from_transition)?,
        )),
        Expect::Event => VerifiedBody::Event(Box::new(
            SignedEvent::parse(&signed).map_err(refusal_from_event)?,
        )),
        Expect::Party => VerifiedBody::Party(Box::new(
            SignedPartyStatement::parse(&signed).map_err(|e| Refusal::Malformed {
                code: e.code(),
                detail: e.to_string(),
            })?,
        )),
    };
    let generation = book.generation();
    let kid = match &body {
        VerifiedBody::Transition(t) => t.jws().kid(),
        VerifiedBody::Event(e) => e.jws().kid(),
        VerifiedBody::Party(p) => p.kid(),
    }
    .to_string();
    let (key, stale_key) = match book.key_in_memory(&kid, body.signer()) {
        InMemory::Key(key) => (key, None),
        InMemory::Refused(refusal) if matches!(refusal.code(), "revoked_key" | "not_a_member") => {
            match book.historic_key(&kid, body.signer()) {
                Some(key) => (key, Some(refusal)),
                None => return Err(refusal.into()),
            }
        }
        InMemory::Refused(refusal) => return Err(refusal.into()),
        InMemory::NotThere => return Err(Miss::Kid { signed, kid }),
    };
    Ok((
        Verified {
            leaf: leaf_hash(signed.as_bytes()),
            signed,
            kid,
            body,
            generation,
            stale_key,
        },
        key,
    ))
}

fn refusal_from_transition(e: lading_domain::transition::TransitionError) -> Refusal {
    form_refusal(e.code(), e.path(), e.to_string())
}

fn refusal_from_event(e: lading_domain::event::EventError) -> Refusal {
    form_refusal(e.code(), e.path(), e.to_string())
}

/// A refusal of the submission's form: a field error when the error names the field.
fn form_refusal(code: &'static str, pointer: Option<&str>, detail: String) -> Refusal {
    match pointer {
        Some(pointer) => Refusal::InvalidField {
            code,
            pointer: pointer.to_owned(),
            detail,
        },
        None => Refusal::Malformed { code, detail },
    }
}
