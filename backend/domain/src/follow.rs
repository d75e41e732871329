//! What a replica checks before it stores anything the registry sends it.
//!
//! A replica receives the ledger in index order: the signed bytes of the entries its party is
//! entitled to, the leaf hash alone of every other. [`Follower`] holds what it needs to judge
//! each next entry — the Merkle accumulator, the party registry's keys, the registry's own key
//! and the state of each document whose chain it holds — and refuses anything that does not
//! fit, *without changing itself*: a refused entry is an incident to record with its evidence,
//! never a row to store.
//!
//! Checks, for every entry:
//! - it is the next index;
//! - with signed bytes: their leaf hash is the one announced, they parse (the same rules as the
//!   registry's), the `kid` is a key of the party registry owned by the signer, the signature
//!   verifies, and a transition fits its document's chain (ISSUE first, then the state machine
//!   with the right previous checksum);
//! - checkpoints: signed by the registry's key, and their root is the root this replica
//!   computes over the same number of leaves; two different checkpoints of one size are kept as
//!   evidence of a registry showing two histories.
//!
//! A transition of a document whose earlier entries reached this replica as hashes only (its
//! party joined the chain later) is accepted as far as it can be checked and reported as
//! [`Judged::ChainUnknown`]: the caller fetches the earlier entries (now entitled) and hands
//! them to [`Follower::backfill`], which checks them against the leaves already accepted.

use std::collections::{BTreeMap, HashMap};

use crate::checkpoint::SignedCheckpoint;
use crate::event::SignedEvent;
use crate::ids::{DocumentReference, PartyId};
use crate::jws::VerifyingKey;
use crate::membership::{Membership, MembershipViolation, Principal, SignedPartyStatement};
use crate::merkle::{leaf_hash, LedgerTree, MerkleError};
use crate::state::{DocumentState, RuleViolation};
use crate::transition::{Action, SignedTransition};
use crate::Digest;

/// One entry as the registry's feed delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub index: u64,
    pub leaf_hash: Digest,
    /// The compact JWS, when the party is entitled to it.
    pub signed: Option<String>,
}

/// How an accepted entry was judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// Someone else's entry: only its place in the tree was checked.
    HashOnly,
    /// A transition whose chain this replica holds: the document's state after it.
    Transition(Box<DocumentState>),
    /// A transition whose earlier entries this replica has only as hashes: signature and leaf
    /// checked, the chain not (yet).
    ChainUnknown(DocumentReference),
    /// A shipment event: signature and leaf checked.
    Event,
    /// A party statement: signature, leaf and the membership's rules checked, and applied.
    Party,
}

/// Why an entry or a checkpoint was refused. Each names the evidence to keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incident {
    #[error("entry {got} arrived where entry {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
    #[error(
        "entry {index}: its signed bytes hash to {computed}, not to the announced leaf {announced}"
    )]
    LeafMismatch {
        index: u64,
        announced: Digest,
        computed: Digest,
    },
    #[error("entry {index}: {detail}")]
    Malformed { index: u64, detail: String },
    #[error("entry {index}: key {kid} is not in the party registry")]
    UnknownKey { index: u64, kid: String },
    /// A signature by a key revoked, or a party removed, before the entry's index.
    #[error("entry {index}: {violation}")]
    NotValidThen {
        index: u64,
        violation: MembershipViolation,
    },
    /// A party statement the membership's rules refuse.
    #[error("entry {index}: party statement refused: {violation}")]
    BadPartyStatement {
        index: u64,
        violation: MembershipViolation,
    },
    #[error("entry {index}: key {kid} belongs to {owner}, but {actor} signed")]
    KeyNotActor {
        index: u64,
        kid: String,
        owner: String,
        actor: String,
    },
    #[error("entry {index}: the signature does not verify")]
    BadSignature { index: u64 },
    #[error("entry {index}: {detail}")]
    BrokenChain { index: u64, detail: String },
    /// A checkpoint signed with the registry's key that the registry, asked, does not admit
    /// to having signed: it shows others a history it does not show this replica.
    #[error("the registry signed a checkpoint of size {size} that it does not acknowledge")]
    UnacknowledgedCheckpoint { size: u64, signed: String },
    /// The registry's proof that its checkpoint of size `to` extends the one this replica
    /// verified (`from`) does not hold.
    #[error("the registry's checkpoint of size {to_size} does not extend the verified one of size {from_size}: {detail}")]
    InconsistentCheckpoints {
        from_size: u64,
        to_size: u64,
        from: String,
        to: String,
        detail: String,
    },
    /// A party's own submission that breaks a rule this replica can already judge for sure
    /// (not an incident of the ledger: nothing was kept).
    #[error("{violation}")]
    Submission { violation: RuleViolation },
    #[error("checkpoint: {detail}")]
    BadCheckpoint { detail: String },
    #[error(
        "the checkpoint of size {size} has root {signed}, but these {size} leaves give {computed}"
    )]
    CheckpointRoot {
        size: u64,
        signed: Digest,
        computed: Digest,
    },
    #[error("the registry signed two checkpoints of size {size} with different roots")]
    ConflictingCheckpoints {
        size: u64,
        first: String,
        second: String,
    },
    /// A document whose earlier entries a whole back-fill pass could not get in full (the
    /// registry's `served`: each index of the document it listed, and whether in full): its
    /// transitions up to `late` were taken without their chain, and so are its later ones
    /// until a back-fill completes. Nothing is refused — what was taken was checked as far as
    /// it could be — but the chain is not verified, and the replica does not serve it as if it
    /// were.
    #[error("document {reference}: its entries before {late} did not come in full; its chain is not verified")]
    ChainUnverified {
        reference: DocumentReference,
        late: u64,
        served: Vec<(u64, bool)>,
    },
}

impl Incident {
    /// A stable name for the kind of incident.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfOrder { .. } => "out_of_order",
            Self::LeafMismatch { .. } => "leaf_mismatch",
            Self::Malformed { .. } => "malformed_entry",
            Self::UnknownKey { .. } => "unknown_key",
            Self::NotValidThen { violation, .. } => violation.code(),
            Self::BadPartyStatement { .. } => "bad_party_statement",
            Self::KeyNotActor { .. } => "key_not_actor",
            Self::BadSignature { .. } => "bad_signature",
            Self::BrokenChain { .. } => "broken_chain",
            Self::Submission { violation } => violation.code(),
            Self::UnacknowledgedCheckpoint { .. } => "unacknowledged_checkpoint",
            Self::InconsistentCheckpoints { .. } => "inconsistent_checkpoints",
            Self::BadCheckpoint { .. } => "bad_checkpoint",
            Self::CheckpointRoot { .. } => "checkpoint_root_mismatch",
            Self::ConflictingCheckpoints { .. } => "conflicting_checkpoints",
            Self::ChainUnverified { .. } => "chain_unverified",
        }
    }
}

/// What a checkpoint told the follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointStatus {
    /// Its root is the root of the leaves this replica holds.
    Verified,
    /// Signed correctly, but beyond the leaves held: checked when they arrive.
    Pending,
    /// The very checkpoint verified before.
    Known,
    /// Signed correctly and beyond the leaves held, but [`MAX_PENDING`] checkpoints already
    /// wait: not taken (a later one covers the same entries).
    Deferred,
}

impl CheckpointStatus {
    /// Whether the checkpoint's root was checked against the leaves held.
    pub fn checked(self) -> bool {
        matches!(self, Self::Verified | Self::Known)
    }
}

/// Checkpoints ahead of the leaves a follower holds at most: a replica takes the registry's
/// latest and about one per page of a catch-up, so more only come from a flood.
pub const MAX_PENDING: usize = 1024;

/// Disputed checkpoints (correctly signed, another history's root) a follower keeps to pair
/// with this history's checkpoint of the same size.
pub const MAX_DISPUTED: usize = 64;

/// What a follower knows of one document's chain ([`Follower::chain`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Chain<'a> {
    /// Every transition checked, from its ISSUE: the state after the last.
    Verified(&'a DocumentState),
    /// Transitions were taken whose earlier entries came as hashes only: being back-filled,
    /// or (`given_up`) a whole back-fill pass could not get them in full.
    Unverified { given_up: bool },
    /// No transition of it was taken.
    Unknown,
}

/// A key of the party registry: whose it is.
#[derive(Debug, Clone)]
pub struct PartyKey {
    pub party: PartyId,
    pub key: VerifyingKey,
}

/// An entry judged as far as the party registry allows ([`Follower::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    entry: FeedEntry,
    /// The parsed entry and the key that must have signed it.
    body: Option<(Signed, VerifyingKey)>,
}

/// A party's own submission that [`Follower::check_submission`] found fit to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSubmission {
    /// A transition, else a shipment event.
    pub is_transition: bool,
    /// The document it is about (none for an event about a container only).
    pub document: Option<DocumentReference>,
}

#[derive(Debug, Clone)]
enum Signed {
    Transition(Box<SignedTransition>),
    Event(Box<SignedEvent>),
    Party(Box<SignedPartyStatement>),
}

impl Signed {
    fn jws(&self) -> &crate::jws::CompactJws {
        match self {
            Self::Transition(t) => t.jws(),
            Self::Event(e) => e.jws(),
            Self::Party(p) => p.jws(),
        }
    }

    fn signer(&self) -> Principal {
        match self {
            Self::Transition(t) => Principal::Party(t.payload().actor().clone()),
            Self::Event(e) => Principal::Party(e.event().actor().clone()),
            Self::Party(p) => p.statement().actor.clone(),
        }
    }
}

/// A signed entry of any of the three kinds, by its `typ`.
fn parse_signed(index: u64, signed: &str) -> Result<Signed, Incident> {
    if let Ok(transition) = SignedTransition::parse(signed) {
        return Ok(Signed::Transition(Box::new(transition)));
    }
    if let Ok(statement) = SignedPartyStatement::parse(signed) {
        return Ok(Signed::Party(Box::new(statement)));
    }
    SignedEvent::parse(signed)
        .map(|event| Signed::Event(Box::new(event)))
        .map_err(|e| Incident::Malformed {
            index,
            detail: format!("neither a transition, a party statement nor an event: {e}"),
        })
}

/// One transition against its document's state: the next state, `None` when the chain is not
/// held (its earlier entries came as hashes).
fn chain_step(
    index: u64,
    transition: &SignedTransition,
    current: Option<&DocumentState>,
) -> Result<Option<DocumentState>, Incident> {
    let payload = transition.payload();
    let broken = |detail: String| Incident::BrokenChain { index, detail };
    if payload.action() == Action::Issue {
        if current.is_some() {
            return Err(broken(format!(
                "{} was issued before",
                payload.document_reference()
            )));
        }
        return DocumentState::issue(payload, transition.checksum())
            .map(Some)
            .map_err(|v| broken(v.to_string()));
    }
    match current {
        Some(state) => state
            .apply(payload, transition.checksum())
            .map(Some)
            .map_err(|v| broken(v.to_string())),
        None => Ok(None),
    }
}

/// The replica's judge of the registry's feed; see the module documentation.
#[derive(Debug)]
pub struct Follower {
    tree: LedgerTree,
    /// Who may sign, as of the next index (with the history of every key).
    membership: Membership,
    registry_key: VerifyingKey,
    documents: HashMap<DocumentReference, DocumentState>,
    /// Checkpoints ahead of the leaves held, by size: checked as the leaf of their size lands.
    /// What a page looks at, so its work does not grow with the ledger's age; bounded by
    /// [`MAX_PENDING`].
    pending: BTreeMap<u64, SignedCheckpoint>,
    /// The largest checkpoint whose root was checked against the leaves held: what proofs lead
    /// to. Older verified checkpoints are not kept in memory (the keeper stores them): a
    /// checkpoint of a size already passed is checked against the root recomputed from the
    /// block roots, which needs nothing but the leaves.
    latest_verified: Option<SignedCheckpoint>,
    /// Leaf hashes by index, so back-filled entries can be checked against them.
    leaves: Vec<Digest>,
    /// Checkpoints correctly signed whose root is not the root of the leaves held: the
    /// registry signed another history. Kept so that its checkpoint of the same size for this
    /// history, arriving later, makes the pair of signatures that proves it. The latest
    /// [`MAX_DISPUTED`] are kept (each is already an incident with its evidence).
    disputed: BTreeMap<u64, SignedCheckpoint>,
    /// Documents whose transitions arrived before their earlier entries did (the party joined
    /// the chain late): the latest such index, until the chain is back-filled. Kept here, not
    /// by the caller, so a catch-up cut short leaves nothing to remember.
    unknown_chains: BTreeMap<DocumentReference, u64>,
    /// Chains a whole back-fill could not complete: not asked for again.
    given_up: std::collections::HashSet<DocumentReference>,
    /// Checkpoints verified as their last leaf arrived, not yet handed to the keeper.
    newly_verified: Vec<String>,
}

impl Follower {
    /// A follower of an empty ledger whose membership starts at `genesis`.
    pub fn new(
        block_size: u64,
        registry_key: VerifyingKey,
        genesis: Membership,
    ) -> Result<Self, MerkleError> {
        Ok(Self {
            tree: LedgerTree::new(block_size)?,
            membership: genesis,
            registry_key,
            documents: HashMap::new(),
            pending: BTreeMap::new(),
            latest_verified: None,
            leaves: Vec::new(),
            disputed: BTreeMap::new(),
            unknown_chains: BTreeMap::new(),
            given_up: std::collections::HashSet::new(),
            newly_verified: Vec::new(),
        })
    }

    /// Entries accepted so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root over every accepted leaf.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The consortium as of the entries accepted so far.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The state of a document whose chain this replica holds.
    pub fn document(&self, reference: &DocumentReference) -> Option<&DocumentState> {
        self.documents.get(reference)
    }

    /// What this follower can vouch for of a document's chain: a state only when every one of
    /// its transitions was checked from the ISSUE on (never the partial state of a back-fill
    /// under way, nor of a chain given up).
    pub fn chain(&self, reference: &DocumentReference) -> Chain<'_> {
        let given_up = self.given_up.contains(reference);
        if given_up || self.unknown_chains.contains_key(reference) {
            return Chain::Unverified { given_up };
        }
        self.documents
            .get(reference)
            .map_or(Chain::Unknown, Chain::Verified)
    }

    /// The state of every document whose chain this follower can vouch for
    /// ([`Chain::Verified`]), in no particular order.
    pub fn verified_documents(&self) -> impl Iterator<Item = &DocumentState> + '_ {
        self.documents.values().filter(|state| {
            !self.unknown_chains.contains_key(&state.reference)
                && !self.given_up.contains(&state.reference)
        })
    }

    /// Checks that `compact` is a checkpoint the registry signed, for this ledger's block size,
    /// without taking it: its size, or the refusal. What another replica relays is judged this
    /// way first — a checkpoint the registry did not sign is the relay's doing, not the
    /// registry's.
    pub fn registry_signed(&self, compact: &str) -> Result<u64, Incident> {
        let bad = |detail: String| Incident::BadCheckpoint { detail };
        let checkpoint = SignedCheckpoint::parse(compact)
            .map_err(|e| bad(e.to_string()))?
            .verify(&self.registry_key)
            .map_err(|e| bad(e.to_string()))?;
        if u64::from(checkpoint.block_size) != self.tree.block_size() {
            return Err(bad(format!(
                "block size {} where this ledger uses {}",
                checkpoint.block_size,
                self.tree.block_size()
            )));
        }
        Ok(checkpoint.size)
    }

    /// Judges the next entry; on `Ok` it is part of the replica's ledger, on `Err` nothing
    /// changed.
    pub fn accept(&mut self, entry: &FeedEntry) -> Result<Judged, Incident> {
        let index = self.size();
        if entry.index != index {
            return Err(Incident::OutOfOrder {
                expected: index,
                got: entry.index,
            });
        }
        let judged = match &entry.signed {
            None => (Judged::HashOnly, None),
            Some(signed) => self.judge(index, entry.leaf_hash, signed, false)?,
        };
        // A pending checkpoint of exactly the new size is checked before the leaf is kept, so
        // a mismatch leaves the follower as it was.
        let pending = self
            .pending
            .get(&(index + 1))
            .map(|signed| signed.unverified().root);
        if let Some(signed_root) = pending {
            let mut tree = self.tree.clone();
            tree.push(entry.leaf_hash);
            let computed = tree.root();
            if computed != signed_root {
                return Err(Incident::CheckpointRoot {
                    size: index + 1,
                    signed: signed_root,
                    computed,
                });
            }
        }
        self.tree.push(entry.leaf_hash);
        self.leaves.push(entry.leaf_hash);
        if let Some(signed) = self.pending.remove(&(index + 1)) {
            self.verified(signed);
        }
        let (judged, state) = judged;
        if let (Judged::Party, Some(signed)) = (&judged, &entry.signed) {
            // Checked by `judge`, so it applies.
            if let Ok(statement) = SignedPartyStatement::parse(signed) {
                let _ = self
                    .membership
                    .apply(index, statement.kid(), statement.statement());
            }
        }
        if let Judged::ChainUnknown(reference) = &judged {
            self.unknown_chains.insert(reference.clone(), index);
        }
        if let Some((reference, state)) = state {
            self.documents.insert(reference, state);
        }
        Ok(judged)
    }

    /// Checks a signed checkpoint: the registry's signature, its root against the leaves held
    /// (or later, when they arrive), and that no other checkpoint of its size was signed.
    pub fn checkpoint(&mut self, compact: &str) -> Result<CheckpointStatus, Incident> {
        let bad = |detail: String| Incident::BadCheckpoint { detail };
        let signed = SignedCheckpoint::parse(compact).map_err(|e| bad(e.to_string()))?;
        let checkpoint = signed
            .verify(&self.registry_key)
            .map_err(|e| bad(e.to_string()))?;
        if u64::from(checkpoint.block_size) != self.tree.block_size() {
            return Err(bad(format!(
                "block size {} where this ledger uses {}",
                checkpoint.block_size,
                self.tree.block_size()
            )));
        }
        let held = self
            .pending
            .get(&checkpoint.size)
            .or(self.latest_verified.as_ref())
            .filter(|seen| seen.unverified().size == checkpoint.size);
        if let Some(seen) = held {
            if seen.unverified().root != checkpoint.root {
                return Err(Incident::ConflictingCheckpoints {
                    size: checkpoint.size,
                    first: seen.as_str().to_owned(),
                    second: compact.to_owned(),
                });
            }
            return Ok(if checkpoint.size > self.size() {
                CheckpointStatus::Pending
            } else {
                CheckpointStatus::Known
            });
        }
        if checkpoint.size > self.size() {
            if self.pending.len() >= MAX_PENDING {
                return Ok(CheckpointStatus::Deferred);
            }
            self.pending.insert(checkpoint.size, signed);
            return Ok(CheckpointStatus::Pending);
        }
        let computed = self
            .root_at(checkpoint.size)
            .ok_or_else(|| bad(format!("no root over the first {} leaves", checkpoint.size)))?;
        if computed != checkpoint.root {
            self.disputed.insert(checkpoint.size, signed);
            while self.disputed.len() > MAX_DISPUTED {
                self.disputed.pop_first();
            }
            return Err(Incident::CheckpointRoot {
                size: checkpoint.size,
                signed: checkpoint.root,
                computed,
            });
        }
        if let Some(other) = self.disputed.get(&checkpoint.size) {
            // This history's checkpoint, after another history's of the same size.
            let first = other.as_str().to_owned();
            self.take_verified(signed);
            return Err(Incident::ConflictingCheckpoints {
                size: checkpoint.size,
                first,
                second: compact.to_owned(),
            });
        }
        self.take_verified(signed);
        Ok(CheckpointStatus::Verified)
    }

    /// A checkpoint checked against the leaves as they arrived: kept as the latest verified
    /// and handed to the keeper.
    fn verified(&mut self, signed: SignedCheckpoint) {
        self.newly_verified.push(signed.as_str().to_owned());
        self.take_verified(signed);
    }

    /// Keeps `signed` (checked) as the latest verified when it is larger than the one held.
    fn take_verified(&mut self, signed: SignedCheckpoint) {
        let larger = self
            .latest_verified
            .as_ref()
            .is_none_or(|held| held.unverified().size < signed.unverified().size);
        if larger {
            self.latest_verified = Some(signed);
        }
    }

    /// An earlier entry, delivered in full now that its party is entitled to it: it must be
    /// the leaf already accepted at `index`, and it passes the same checks as a new entry
    /// (a document's chain is replayed once its ISSUE is back-filled).
    pub fn backfill(&mut self, index: u64, signed: &str) -> Result<Judged, Incident> {
        let announced = *self
            .leaves
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .ok_or(Incident::OutOfOrder {
                expected: self.size(),
                got: index,
            })?;
        let (judged, state) = self.judge(index, announced, signed, true)?;
        if let Some((reference, state)) = state {
            // Replayed as far as the latest entry taken without its chain: known again.
            if self
                .unknown_chains
                .get(&reference)
                .is_some_and(|late| index >= *late)
            {
                self.unknown_chains.remove(&reference);
                // A chain given up earlier is whole now: judged as any other from here on.
                self.given_up.remove(&reference);
            }
            self.documents.insert(reference, state);
        }
        Ok(judged)
    }

    /// The part of judging an entry that needs nothing but the party registry: leaf hash,
    /// parse, and that the key is the signer's. Takes `&self` only, so a caller may prepare a
    /// page on several threads before [`Follower::accept_page`].
    pub fn prepare(&self, entry: &FeedEntry) -> Result<Prepared, Incident> {
        let index = entry.index;
        let Some(signed) = &entry.signed else {
            return Ok(Prepared {
                entry: entry.clone(),
                body: None,
            });
        };
        let computed = leaf_hash(signed.as_bytes());
        if computed != entry.leaf_hash {
            return Err(Incident::LeafMismatch {
                index,
                announced: entry.leaf_hash,
                computed,
            });
        }
        let body = parse_signed(index, signed)?;
        let key = self.signer_key(&self.membership, index, &body)?;
        let body = (body, key);
        Ok(Prepared {
            entry: entry.clone(),
            body: Some(body),
        })
    }

    /// Accepts a page of prepared entries, in order, with their signatures checked in one
    /// batch (about a third of the cost of checking them one by one). All or nothing: on
    /// `Err` the follower is unchanged — [`Follower::accept`] entry by entry then keeps what
    /// precedes the refused entry and names it.
    pub fn accept_page(&mut self, page: &[Prepared]) -> Result<Vec<Judged>, Incident> {
        // Party statements change who may sign the entries after them: from the first one on,
        // keys are looked up again in a membership that takes each statement in turn.
        let mut membership: Option<Membership> = None;
        let mut keys: Vec<Option<VerifyingKey>> = Vec::with_capacity(page.len());
        for prepared in page {
            let Some((body, key)) = &prepared.body else {
                keys.push(None);
                continue;
            };
            let index = prepared.entry.index;
            let key = match &membership {
                Some(m) => self.signer_key(m, index, body)?,
                None => key.clone(),
            };
            if let Signed::Party(statement) = body {
                membership
                    .get_or_insert_with(|| self.membership.clone())
                    .apply(index, statement.kid(), statement.statement())
                    .map_err(|violation| Incident::BadPartyStatement { index, violation })?;
            }
            keys.push(Some(key));
        }
        let signed: Vec<(&VerifyingKey, &crate::jws::CompactJws)> = page
            .iter()
            .zip(&keys)
            .filter_map(|(p, key)| Some((key.as_ref()?, p.body.as_ref()?.0.jws())))
            .collect();
        if !signed.is_empty() && !crate::jws::verify_batch(&signed) {
            let bad = signed
                .iter()
                .zip(page.iter().filter(|p| p.body.is_some()))
                .find(|((key, jws), _)| key.verify(jws).is_err())
                .map_or(0, |(_, p)| p.entry.index);
            return Err(Incident::BadSignature { index: bad });
        }
        // The rest on copies, so that a refusal midway leaves `self` as it was.
        let mut tree = self.tree.clone();
        let mut states: HashMap<DocumentReference, DocumentState> = HashMap::new();
        let mut judged = Vec::with_capacity(page.len());
        let mut outcome = Ok(());
        for (offset, prepared) in page.iter().enumerate() {
            let index = self.size() + offset as u64;
            if prepared.entry.index != index {
                outcome = Err(Incident::OutOfOrder {
                    expected: index,
                    got: prepared.entry.index,
                });
                break;
            }
            let verdict = match &prepared.body {
                None => Ok(Judged::HashOnly),
                Some((Signed::Event(_), _)) => Ok(Judged::Event),
                Some((Signed::Party(_), _)) => Ok(Judged::Party),
                Some((Signed::Transition(t), _)) => {
                    let reference = t.payload().document_reference();
                    let current = states
                        .get(reference)
                        .or_else(|| self.current(reference, false));
                    match chain_step(index, t, current) {
                        Ok(Some(state)) => {
                            states.insert(reference.clone(), state.clone());
                            Ok(Judged::Transition(Box::new(state)))
                        }
                        Ok(None) => Ok(Judged::ChainUnknown(reference.clone())),
                        Err(e) => Err(e),
                    }
                }
            };
            match verdict {
                Ok(v) => judged.push(v),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
            // A checkpoint waiting for exactly this size is checked as the leaf lands.
            tree.push(prepared.entry.leaf_hash);
            if let Some(signed) = self.pending.get(&tree.size()) {
                let signed_root = signed.unverified().root;
                let computed = tree.root();
                if computed != signed_root {
                    outcome = Err(Incident::CheckpointRoot {
                        size: tree.size(),
                        signed: signed_root,
                        computed,
                    });
                    break;
                }
            }
        }
        outcome?;
        for prepared in page {
            self.leaves.push(prepared.entry.leaf_hash);
        }
        let size = tree.size();
        self.tree = tree;
        let ahead = self.pending.split_off(&(size + 1));
        let reached = std::mem::replace(&mut self.pending, ahead);
        for signed in reached.into_values() {
            self.verified(signed);
        }
        self.documents.extend(states);
        if let Some(membership) = membership {
            self.membership = membership;
        }
        for (offset, verdict) in judged.iter().enumerate() {
            if let Judged::ChainUnknown(reference) = verdict {
                self.unknown_chains
                    .insert(reference.clone(), size - page.len() as u64 + offset as u64);
            }
        }
        Ok(judged)
    }

    /// The key that may sign `body` at `index` under `membership`.
    fn signer_key(
        &self,
        membership: &Membership,
        index: u64,
        body: &Signed,
    ) -> Result<VerifyingKey, Incident> {
        let kid = body.jws().kid();
        membership
            .signer_key(kid, &body.signer(), index)
            .cloned()
            .map_err(|violation| match violation {
                MembershipViolation::UnknownKey { kid } => Incident::UnknownKey { index, kid },
                MembershipViolation::KeyNotActor { kid, owner, actor } => Incident::KeyNotActor {
                    index,
                    kid,
                    owner,
                    actor,
                },
                violation => Incident::NotValidThen { index, violation },
            })
    }

    /// Signature, leaf and chain of one signed entry; the new document state, if any, is
    /// returned rather than kept.
    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        index: u64,
        announced: Digest,
        signed: &str,
        replaying: bool,
    ) -> Result<(Judged, Option<(DocumentReference, DocumentState)>), Incident> {
        let prepared = self.prepare(&FeedEntry {
            index,
            leaf_hash: announced,
            signed: Some(signed.to_owned()),
        })?;
        let Some((body, key)) = &prepared.body else {
            return Ok((Judged::HashOnly, None));
        };
        if key.verify(body.jws()).is_err() {
            return Err(Incident::BadSignature { index });
        }
        match body {
            Signed::Event(_) => Ok((Judged::Event, None)),
            // A statement is checked against the membership before it; a replayed one (a
            // back-fill) was applied when it first came.
            Signed::Party(statement) if !replaying => self
                .membership
                .check(index, statement.kid(), statement.statement())
                .map(|_| (Judged::Party, None))
                .map_err(|violation| Incident::BadPartyStatement { index, violation }),
            Signed::Party(_) => Ok((Judged::Party, None)),
            Signed::Transition(t) => {
                let reference = t.payload().document_reference().clone();
                match chain_step(index, t, self.current(&reference, replaying))? {
                    Some(state) => Ok((
                        Judged::Transition(Box::new(state.clone())),
                        Some((reference, state)),
                    )),
                    None => Ok((Judged::ChainUnknown(reference), None)),
                }
            }
        }
    }

    /// The leaf hash accepted at `index`: what a stored row must hash to.
    pub fn leaf(&self, index: u64) -> Option<Digest> {
        self.leaves.get(usize::try_from(index).ok()?).copied()
    }

    /// Entries per block of this ledger's tree.
    pub fn block_size(&self) -> u64 {
        self.tree.block_size()
    }

    /// Documents whose earlier entries this replica holds as hashes only, each with the latest
    /// index of it accepted without its chain: what a back-fill must fetch again in full.
    pub fn unknown_chains(&self) -> Vec<(DocumentReference, u64)> {
        self.unknown_chains
            .iter()
            .map(|(reference, index)| (reference.clone(), *index))
            .collect()
    }

    /// Starts a back-fill pass over [`Self::unknown_chains`]: a pass cut short may have
    /// replayed part of a chain, so each one is replayed from its ISSUE again.
    pub fn begin_backfill(&mut self) -> Vec<(DocumentReference, u64)> {
        for reference in self.unknown_chains.keys() {
            self.documents.remove(reference);
        }
        self.unknown_chains()
    }

    /// Gives up a chain a whole back-fill pass could not complete (its earlier entries did not
    /// come in full): it is not asked for at every catch-up, and its transitions are taken as
    /// far as they can be checked — its next one starts a back-fill again. [`Self::chain`]
    /// says so until a back-fill completes: the caller records it as an incident
    /// ([`Incident::ChainUnverified`]). Whether it was not given up already.
    pub fn give_up_chain(&mut self, reference: &DocumentReference) -> bool {
        self.unknown_chains.remove(reference);
        self.documents.remove(reference);
        self.given_up.insert(reference.clone())
    }

    /// The state a new transition of `reference` is judged against: none while its chain is
    /// being back-filled (or was given up), unless this is the replay itself.
    fn current(&self, reference: &DocumentReference, replaying: bool) -> Option<&DocumentState> {
        if !replaying
            && (self.unknown_chains.contains_key(reference) || self.given_up.contains(reference))
        {
            return None;
        }
        self.documents.get(reference)
    }

    /// The checkpoints verified since the last call, as their last leaf arrived: the keeper
    /// keeps them as checked with the page that checked them.
    pub fn drain_newly_verified(&mut self) -> Vec<String> {
        std::mem::take(&mut self.newly_verified)
    }

    /// The size of the largest checkpoint held, checked or waiting for its leaves.
    pub fn latest_checkpoint_size(&self) -> Option<u64> {
        let pending = self.pending.keys().next_back().copied();
        let verified = self.latest_verified.as_ref().map(|c| c.unverified().size);
        pending.max(verified)
    }

    /// Whether a checkpoint of `size` is held: waiting for its entries, or the latest verified.
    pub fn holds_checkpoint(&self, size: u64) -> bool {
        self.pending.contains_key(&size)
            || self
                .latest_verified
                .as_ref()
                .is_some_and(|c| c.unverified().size == size)
    }

    /// Whether a checkpoint waits for entries in `sizes` (to fetch no other for them).
    pub fn pending_within(&self, sizes: std::ops::RangeInclusive<u64>) -> bool {
        self.pending.range(sizes).next().is_some()
    }

    /// How many checkpoints this follower holds in memory (bounded: the pending ones, the
    /// latest verified, and the latest disputed).
    pub fn checkpoints_held(&self) -> usize {
        self.pending.len() + usize::from(self.latest_verified.is_some()) + self.disputed.len()
    }

    /// The largest checkpoint whose root was checked against the leaves held.
    pub fn latest_verified_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.latest_verified.as_ref()
    }

    /// An inclusion proof of entry `index` against the latest verified checkpoint that covers
    /// it, with that checkpoint: what a replica hands its party while the registry is away.
    pub fn prove(&self, index: u64) -> Option<(&SignedCheckpoint, crate::InclusionProof)> {
        let checkpoint = self.latest_verified_checkpoint()?;
        let size = checkpoint.unverified().size;
        if index >= size {
            return None;
        }
        let tree = self.checkpoint_tree(size)?;
        let block_size = self.tree.block_size();
        let leaves = self.leaves.get(..usize::try_from(size).ok()?)?;
        let chunk = usize::try_from(block_size).ok()?;
        let block = usize::try_from(index / block_size).ok()?;
        let start = block * chunk;
        let end = (start + chunk).min(leaves.len());
        let block_tree = crate::BlockTree::build(leaves.get(start..end)?).ok()?;
        let proof = tree.prove(index, &block_tree).ok()?;
        Some((checkpoint, proof))
    }

    /// The tree over the block roots of the ledger at `size` (at most the size followed): to
    /// prove many entries against the checkpoint of that size. Sealed block roots come from
    /// the accumulator; the last block is rebuilt at `size`.
    pub fn checkpoint_tree(&self, size: u64) -> Option<crate::CheckpointTree> {
        let block_size = self.tree.block_size();
        let leaves = self.leaves.get(..usize::try_from(size).ok()?)?;
        let chunk = usize::try_from(block_size).ok()?;
        let sealed = usize::try_from(size / block_size).ok()?;
        let mut roots: Vec<Digest> = self.tree.sealed_roots().get(..sealed)?.to_vec();
        if size % block_size != 0 {
            roots.push(crate::merkle::merkle_root(leaves.get(sealed * chunk..)?));
        }
        crate::CheckpointTree::from_block_roots(block_size, size, &roots).ok()
    }

    /// Checks a submission this replica's `party` signed, before the replica keeps it to
    /// forward: it parses, its key is the party's own, and the signature verifies. Its place
    /// in its chain is for the registry to judge when it orders it.
    pub fn check_submission(
        &self,
        party: &PartyId,
        signed: &str,
    ) -> Result<CheckedSubmission, Incident> {
        let index = self.size();
        let prepared = self.prepare(&FeedEntry {
            index,
            leaf_hash: leaf_hash(signed.as_bytes()),
            signed: Some(signed.to_owned()),
        })?;
        let Some((body, key)) = &prepared.body else {
            return Err(Incident::Malformed {
                index,
                detail: "no signed entry".into(),
            });
        };
        let key_owner = self.membership.key(body.jws().kid()).map(|k| &k.owner);
        if key_owner.and_then(Principal::party) != Some(party) {
            return Err(Incident::KeyNotActor {
                index,
                kid: body.jws().kid().to_string(),
                owner: key_owner.map(ToString::to_string).unwrap_or_default(),
                actor: party.to_string(),
            });
        }
        if key.verify(body.jws()).is_err() {
            return Err(Incident::BadSignature { index });
        }
        // The time rule of chains, at once: the registry's head of the document is at least as
        // late as the one held here, so a transition dated before it is refused for sure.
        if let Signed::Transition(t) = body {
            let held = self.documents.get(t.payload().document_reference());
            if held
                .and_then(|state| state.head_time)
                .is_some_and(|head| t.payload().time() < head)
            {
                return Err(Incident::Submission {
                    violation: RuleViolation::TimeBeforePrevious,
                });
            }
        }
        Ok(match body {
            Signed::Transition(t) => CheckedSubmission {
                is_transition: true,
                document: Some(t.payload().document_reference().clone()),
            },
            Signed::Event(e) => CheckedSubmission {
                is_transition: false,
                document: e.event().document_reference().cloned(),
            },
            Signed::Party(_) => {
                return Err(Incident::Malformed {
                    index,
                    detail: "a party statement goes to the registry, not through a node".into(),
                })
            }
        })
    }

    /// The root over the first `size` leaves: the sealed block roots below it, and the root of
    /// its last block rebuilt from the leaves when `size` falls inside a sealed block — work in
    /// the number of blocks and the block size, never in the number of leaves.
    fn root_at(&self, size: u64) -> Option<Digest> {
        if let Some(root) = self.tree.root_at(size) {
            return Some(root);
        }
        let block_size = self.tree.block_size();
        let full = usize::try_from(size / block_size).ok()?;
        let mut roots: Vec<Digest> = self.tree.sealed_roots().get(..full)?.to_vec();
        if size % block_size != 0 {
            let start = full * usize::try_from(block_size).ok()?;
            let end = usize::try_from(size).ok()?;
            roots.push(crate::merkle::merkle_root(self.leaves.get(start..end)?));
        }
        Some(crate::merkle::merkle_root(&roots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::document::{sample_json, TransportDocument};
    use crate::jws::{Jwk, SigningKey};
    use crate::transition::{TransitionDraft, TransitionPayload};

    const BLOCK: u64 = 4;

    struct World {
        carrier: SigningKey,
        shipper: SigningKey,
        registry: SigningKey,
        follower: Follower,
    }

    fn key(kid: &str) -> SigningKey {
        Jwk::generate(kid.parse().unwrap(), true)
            .signing_key()
            .unwrap()
    }

    fn world() -> World {
        let carrier = key("carrier-oceanic#1");
        let shipper = key("shipper-acme#1");
        let registry = key("registry#1");
        let follower = follower_of(&carrier, &shipper, &registry);
        World {
            carrier,
            shipper,
            registry,
            follower,
        }
    }

    /// A follower of an empty ledger that knows these keys.
    fn follower_of(carrier: &SigningKey, shipper: &SigningKey, registry: &SigningKey) -> Follower {
        Follower::new(BLOCK, registry.verifying_key(), genesis(carrier, shipper)).unwrap()
    }

    /// The carrier and the shipper, each with one key, and no operator.
    fn genesis(carrier: &SigningKey, shipper: &SigningKey) -> Membership {
        let file = serde_json::json!({"parties": [
            {"id": "carrier-oceanic", "name": "Oceanic", "role": "carrier",
             "keys": [Jwk::from_signing_key(carrier, true).to_public()]},
            {"id": "shipper-acme", "name": "Acme", "role": "shipper",
             "keys": [Jwk::from_signing_key(shipper, true).to_public()]},
        ]});
        Membership::genesis(&crate::party::PartyRegistryFile::parse(&file.to_string()).unwrap())
            .unwrap()
    }

    /// A fresh follower with the keys of `w`.
    fn fresh(w: &World) -> Follower {
        follower_of(&w.carrier, &w.shipper, &w.registry)
    }

    /// `jws` with one character of its signature changed.
    fn forge(jws: &str) -> String {
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        let mut sig = parts[2].clone().into_bytes();
        sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
        parts[2] = String::from_utf8(sig).unwrap();
        parts.join(".")
    }

    /// ISSUE by the carrier to the shipper, then TRANSFER by the shipper to the consignee.
    fn chain(w: &World) -> (String, String) {
        let document = TransportDocument::from_json(&sample_json()).unwrap();
        let issue = TransitionPayload::issue(
            document,
            "carrier-oceanic".parse().unwrap(),
            "shipper-acme".parse().unwrap(),
            "2026-11-02T08:00:00.000Z".parse().unwrap(),
        )
        .unwrap();
        let issue_jws = issue.sign(&w.carrier);
        let transfer = TransitionPayload::new(TransitionDraft {
            previous_transition_checksum: Some(Digest::of(issue_jws.as_bytes())),
            action: Action::Transfer,
            actor: "shipper-acme".parse().unwrap(),
            recipient: Some("consignee-globex".parse().unwrap()),
            transport_document: None,
            time: "2026-11-03T08:00:00.000Z".parse().unwrap(),
            ..issue.into_draft()
        })
        .unwrap()
        .sign(&w.shipper);
        (issue_jws, transfer)
    }

    fn full(index: u64, signed: &str) -> FeedEntry {
        FeedEntry {
            index,
            leaf_hash: leaf_hash(signed.as_bytes()),
            signed: Some(signed.to_owned()),
        }
    }

    fn hidden(index: u64, signed: &str) -> FeedEntry {
        FeedEntry {
            index,
            leaf_hash: leaf_hash(signed.as_bytes()),
            signed: None,
        }
    }

    fn checkpoint(w: &World, size: u64, root: Digest) -> String {
        Checkpoint {
            size,
            root,
            time: "2026-11-03T09:00:00.000Z".parse().unwrap(),
            block_size: BLOCK as u32,
        }
        .sign(&w.registry)
    }

    #[test]
    fn proofs_are_built_against_the_latest_verified_checkpoint() {
        let mut w = world();
        let (issue, transfer) = chain(&w);
        let leaves: Vec<FeedEntry> = (0..9u64)
            .map(|i| match i {
                0 => full(0, &issue),
                1 => full(1, &transfer),
                i => hidden(i, &format!("other-{i}")),
            })
            .collect();
        for entry in &leaves {
            w.follower.accept(entry).unwrap();
        }
        assert!(w.follower.prove(0).is_none(), "no checkpoint yet");
        // A checkpoint at 6 (inside the second block), then more entries after it.
        let mut tree = LedgerTree::new(BLOCK).unwrap();
        for e in &leaves[..6] {
            tree.push(e.leaf_hash);
        }
        let signed = checkpoint(&w, 6, tree.root());
        assert_eq!(
            w.follower.checkpoint(&signed),
            Ok(CheckpointStatus::Verified)
        );
        for index in 0..6 {
            let (checkpoint, proof) = w.follower.prove(index).unwrap();
            assert_eq!(checkpoint.as_str(), signed);
            let leaf = w.follower.leaf(index).unwrap();
            assert_eq!(crate::verify_inclusion(&proof, leaf, tree.root()), Ok(()));
        }
        assert!(w.follower.prove(6).is_none(), "beyond the checkpoint");
    }

    #[test]
    fn submissions_must_be_the_partys_own_and_signed() {
        let w = world();
        let (issue, transfer) = chain(&w);
        let shipper = "shipper-acme".parse().unwrap();
        let checked = w.follower.check_submission(&shipper, &transfer).unwrap();
        assert!(checked.is_transition);
        assert_eq!(
            checked.document,
            Some(
                SignedTransition::parse(&transfer)
                    .unwrap()
                    .payload()
                    .document_reference()
                    .clone()
            )
        );
        assert!(matches!(
            w.follower.check_submission(&shipper, &issue),
            Err(Incident::KeyNotActor { .. })
        ));
        assert!(matches!(
            w.follower.check_submission(&shipper, &forge(&transfer)),
            Err(Incident::BadSignature { .. })
        ));
        assert!(matches!(
            w.follower.check_submission(&shipper, "not a jws"),
            Err(Incident::Malformed { .. })
        ));
    }

    #[test]
    fn a_submission_dated_before_the_held_head_is_refused_at_once() {
        let mut w = world();
        let (issue, _) = chain(&w);
        let shipper: PartyId = "shipper-acme".parse().unwrap();
        let dated = |time: &str| {
            let issued = SignedTransition::parse(&issue).unwrap();
            TransitionPayload::new(TransitionDraft {
                previous_transition_checksum: Some(Digest::of(issue.as_bytes())),
                action: Action::Transfer,
                actor: shipper.clone(),
                recipient: Some("consignee-globex".parse().unwrap()),
                transport_document: None,
                time: time.parse().unwrap(),
                ..issued.payload().clone().into_draft()
            })
            .unwrap()
            .sign(&w.shipper)
        };
        // Before the ISSUE is held, nothing is known of the chain: the registry judges.
        let early = dated("1953-11-02T08:00:00.000Z");
        assert!(w.follower.check_submission(&shipper, &early).is_ok());
        w.follower.accept(&full(0, &issue)).unwrap();
        assert_eq!(
            w.follower
                .check_submission(&shipper, &early)
                .unwrap_err()
                .code(),
            "time_before_previous"
        );
        assert!(w
            .follower
            .check_submission(&shipper, &dated("2026-11-02T08:00:00.000Z"))
            .is_ok());
    }

    #[test]
    fn a_chain_is_followed_and_its_state_kept() {
        let mut w = world();
        let (issue, transfer) = chain(&w);
        assert!(matches!(
            w.follower.accept(&full(0, &issue)),
            Ok(Judged::Transition(_))
        ));
        let Ok(Judged::Transition(state)) = w.follower.accept(&full(1, &transfer)) else {
            panic!("the transfer was not judged as a transition");
        };
        assert_eq!(state.possessor.as_str(), "consignee-globex");
        assert_eq!(state.length, 2);
        assert_eq!(w.follower.size(), 2);
        let reference = "OCNL2026000001".parse().unwrap();
        assert_eq!(w.follower.document(&reference), Some(&*state));
    }

    #[test]
    fn refusals_leave_the_follower_unchanged() {
        let mut w = world();
        let (issue, transfer) = chain(&w);
        let root = w.follower.root();

        // Out of order.
        assert_eq!(
            w.follower.accept(&full(1, &issue)).unwrap_err().code(),
            "out_of_order"
        );
        // Bytes that are not the announced leaf.
        let mut swapped = full(0, &issue);
        swapped.leaf_hash = leaf_hash(transfer.as_bytes());
        assert_eq!(
            w.follower.accept(&swapped).unwrap_err().code(),
            "leaf_mismatch"
        );
        // A transfer before its ISSUE is not a chain break but unknown: the ISSUE came as a
        // hash only (here: not at all), so only the signature is judged...
        // ...while a tampered signature is refused.
        let forged = forge(&issue);
        assert_eq!(
            w.follower.accept(&full(0, &forged)).unwrap_err().code(),
            "bad_signature"
        );
        // Signed by a key the party registry does not hold.
        let stranger = key("carrier-oceanic#9");
        let document = TransportDocument::from_json(&sample_json()).unwrap();
        let unknown = TransitionPayload::issue(
            document,
            "carrier-oceanic".parse().unwrap(),
            "shipper-acme".parse().unwrap(),
            "2026-11-02T08:00:00.000Z".parse().unwrap(),
        )
        .unwrap()
        .sign(&stranger);
        assert_eq!(
            w.follower.accept(&full(0, &unknown)).unwrap_err().code(),
            "unknown_key"
        );
        // Garbage.
        assert_eq!(
            w.follower.accept(&full(0, "not.a.jws")).unwrap_err().code(),
            "malformed_entry"
        );
        assert_eq!(w.follower.size(), 0);
        assert_eq!(w.follower.root(), root);

        // A double spend: the same ISSUE twice breaks the chain.
        w.follower.accept(&full(0, &issue)).unwrap();
        assert_eq!(
            w.follower.accept(&full(1, &issue)).unwrap_err().code(),
            "broken_chain"
        );
        assert_eq!(w.follower.size(), 1);
    }

    #[test]
    fn hash_only_entries_fill_the_tree_and_a_later_chain_is_backfilled() {
        let mut w = world();
        let (issue, transfer) = chain(&w);
        assert_eq!(w.follower.accept(&hidden(0, &issue)), Ok(Judged::HashOnly));
        let reference: DocumentReference = "OCNL2026000001".parse().unwrap();
        assert_eq!(
            w.follower.accept(&full(1, &transfer)),
            Ok(Judged::ChainUnknown(reference.clone()))
        );
        assert_eq!(w.follower.document(&reference), None);
        // The ISSUE, fetched now that the party may see it, must be the leaf already held.
        assert_eq!(
            w.follower.backfill(0, &transfer).unwrap_err().code(),
            "leaf_mismatch"
        );
        assert!(matches!(
            w.follower.backfill(0, &issue),
            Ok(Judged::Transition(_))
        ));
        assert!(matches!(
            w.follower.backfill(1, &transfer),
            Ok(Judged::Transition(_))
        ));
        assert_eq!(
            w.follower
                .document(&reference)
                .map(|s| s.possessor.as_str()),
            Some("consignee-globex")
        );
    }

    /// A chain whose earlier entries never come is given up once, said to be unverified, and
    /// verified again only by a back-fill that completes it (the pass its next transition
    /// starts). A checkpoint relayed by anyone is judged by the registry's signature alone.
    #[test]
    fn a_chain_given_up_stays_unverified_until_a_back_fill_completes_it() {
        let carrier = key("carrier-oceanic#1");
        let shipper = key("shipper-acme#1");
        let consignee = key("consignee-globex#1");
        let registry = key("registry#1");
        let file = serde_json::json!({"parties": [
            {"id": "carrier-oceanic", "name": "Oceanic", "role": "carrier",
             "keys": [Jwk::from_signing_key(&carrier, true).to_public()]},
            {"id": "shipper-acme", "name": "Acme", "role": "shipper",
             "keys": [Jwk::from_signing_key(&shipper, true).to_public()]},
            {"id": "consignee-globex", "name": "Globex", "role": "consignee",
             "keys": [Jwk::from_signing_key(&consignee, true).to_public()]},
        ]});
        let genesis = Membership::genesis(
            &crate::party::PartyRegistryFile::parse(&file.to_string()).unwrap(),
        )
        .unwrap();
        let mut w = World {
            follower: Follower::new(BLOCK, registry.verifying_key(), genesis).unwrap(),
            carrier,
            shipper,
            registry,
        };
        let (issue, transfer) = chain(&w);
        let surrender = TransitionPayload::new(TransitionDraft {
            previous_transition_checksum: Some(Digest::of(transfer.as_bytes())),
            action: Action::SurrenderForDelivery,
            actor: "consignee-globex".parse().unwrap(),
            recipient: Some("carrier-oceanic".parse().unwrap()),
            transport_document: None,
            time: "2026-11-04T08:00:00.000Z".parse().unwrap(),
            ..SignedTransition::parse(&transfer)
                .unwrap()
                .payload()
                .clone()
                .into_draft()
        })
        .unwrap()
        .sign(&consignee);
        let reference: DocumentReference = "OCNL2026000001".parse().unwrap();
        assert_eq!(w.follower.chain(&reference), Chain::Unknown);

        // The consignee's replica: the ISSUE came as a hash, the TRANSFER to it in full.
        w.follower.accept(&hidden(0, &issue)).unwrap();
        w.follower.accept(&full(1, &transfer)).unwrap();
        assert_eq!(
            w.follower.chain(&reference),
            Chain::Unverified { given_up: false }
        );
        assert!(w.follower.give_up_chain(&reference));
        assert!(!w.follower.give_up_chain(&reference), "given up once");
        assert_eq!(
            w.follower.chain(&reference),
            Chain::Unverified { given_up: true }
        );
        assert!(
            w.follower.begin_backfill().is_empty(),
            "not asked for again"
        );

        // Its next transition is taken as far as it can be checked, and asks again.
        assert_eq!(
            w.follower.accept(&full(2, &surrender)),
            Ok(Judged::ChainUnknown(reference.clone()))
        );
        assert_eq!(
            w.follower.chain(&reference),
            Chain::Unverified { given_up: true }
        );
        assert_eq!(w.follower.begin_backfill(), vec![(reference.clone(), 2)]);
        for (index, signed) in [&issue, &transfer, &surrender].into_iter().enumerate() {
            w.follower.backfill(index as u64, signed).unwrap();
        }
        let Chain::Verified(state) = w.follower.chain(&reference) else {
            panic!("a completed back-fill verifies the chain");
        };
        assert_eq!(state.length, 3);
        assert_eq!(state.head, Digest::of(surrender.as_bytes()));

        // Relayed checkpoints: the registry's signature and block size, nothing taken.
        let signed = checkpoint(&w, 3, w.follower.root());
        assert_eq!(w.follower.registry_signed(&signed), Ok(3));
        assert_eq!(w.follower.latest_checkpoint_size(), None);
        let forged = Checkpoint {
            size: 3,
            root: w.follower.root(),
            time: "2026-11-03T09:00:00.000Z".parse().unwrap(),
            block_size: BLOCK as u32,
        }
        .sign(&consignee);
        for bad in [forged.as_str(), "not a checkpoint"] {
            assert_eq!(
                w.follower.registry_signed(bad).unwrap_err().code(),
                "bad_checkpoint"
            );
        }
    }

    /// A party statement by `by` about the shipper's keys.
    fn shipper_statement(by: &SigningKey, statement: crate::membership::Statement) -> String {
        crate::membership::PartyStatement {
            actor: "shipper-acme".parse().unwrap(),
            time: "2026-11-02T09:00:00.000Z".parse().unwrap(),
            statement,
        }
        .sign(by)
    }

    #[test]
    fn a_rotated_key_signs_from_the_next_entry_and_a_revoked_one_never_again() {
        use crate::membership::Statement;
        let w = world();
        let (issue, _) = chain(&w);
        let shipper = || Principal::Party("shipper-acme".parse().unwrap());
        let new_key = key("shipper-acme:2");
        let add = shipper_statement(
            &w.shipper,
            Statement::AddKey {
                subject: shipper(),
                key: Jwk::from_signing_key(&new_key, true).to_public(),
            },
        );
        let revoke = shipper_statement(
            &w.shipper,
            Statement::RevokeKey {
                subject: shipper(),
                kid: w.shipper.kid.clone(),
            },
        );
        // The same transfer signed with the old key and with the new one.
        let transfer = |by: &SigningKey| {
            let issued = SignedTransition::parse(&issue).unwrap();
            TransitionPayload::new(TransitionDraft {
                previous_transition_checksum: Some(Digest::of(issue.as_bytes())),
                action: Action::Transfer,
                actor: "shipper-acme".parse().unwrap(),
                recipient: Some("consignee-globex".parse().unwrap()),
                transport_document: None,
                time: "2026-11-03T08:00:00.000Z".parse().unwrap(),
                ..issued.payload().clone().into_draft()
            })
            .unwrap()
            .sign(by)
        };
        let (old, new) = (transfer(&w.shipper), transfer(&new_key));
        let head = [full(0, &issue), full(1, &add), full(2, &revoke)];

        // Entry by entry: the new key signs after its statement, the old one not after its
        // revocation.
        let mut f = fresh(&w);
        for e in &head {
            f.accept(e).unwrap();
        }
        assert_eq!(f.accept(&full(3, &old)).unwrap_err().code(), "revoked_key");
        assert_eq!(f.size(), 3, "nothing kept");
        assert!(matches!(
            f.accept(&full(3, &new)),
            Ok(Judged::Transition(_))
        ));
        let record = f.membership().key(&w.shipper.kid).unwrap();
        assert_eq!(record.revoked_at, Some(2));
        assert_eq!(f.membership().key(&new_key.kid).unwrap().added_at, Some(1));

        // In one page, the old key still looks valid when the page is prepared: the page is
        // refused at the entry after the revocation, whole.
        let mut paged = fresh(&w);
        let page: Vec<Prepared> = head
            .iter()
            .chain([&full(3, &old)])
            .map(|e| paged.prepare(e).unwrap())
            .collect();
        assert_eq!(paged.accept_page(&page).unwrap_err().code(), "revoked_key");
        assert_eq!(paged.size(), 0);
        assert_eq!(paged.membership().key(&new_key.kid), None);
        let page: Vec<Prepared> = head.iter().map(|e| paged.prepare(e).unwrap()).collect();
        let judged = paged.accept_page(&page).unwrap();
        assert!(matches!(
            judged[..],
            [Judged::Transition(_), Judged::Party, Judged::Party]
        ));
        assert_eq!(paged.membership(), &{
            let mut g = fresh(&w);
            for e in &head {
                g.accept(e).unwrap();
            }
            g.membership().clone()
        });

        // A statement the rules refuse is an incident: a shipper cannot add a party.
        let mut f = fresh(&w);
        let forbidden = shipper_statement(
            &w.shipper,
            Statement::RemoveParty {
                party: "carrier-oceanic".parse().unwrap(),
            },
        );
        assert_eq!(
            f.accept(&full(0, &forbidden)).unwrap_err().code(),
            "bad_party_statement"
        );
    }

    #[test]
    fn a_page_is_accepted_as_entry_by_entry_or_not_at_all() {
        let mut one_by_one = world();
        let (issue, transfer) = chain(&one_by_one);
        let entries = [
            full(0, &issue),
            hidden(1, "someone else's entry"),
            full(2, &transfer),
        ];
        let singly: Vec<Judged> = entries
            .iter()
            .map(|e| one_by_one.follower.accept(e).unwrap())
            .collect();

        let mut paged = fresh(&one_by_one);
        // A pending checkpoint over the page is checked as its last leaf lands.
        let good = checkpoint(&one_by_one, 3, one_by_one.follower.root());
        let bad = checkpoint(&one_by_one, 2, Digest::of(b"not this"));
        paged.checkpoint(&good).unwrap();
        let prepared: Vec<Prepared> = entries.iter().map(|e| paged.prepare(e).unwrap()).collect();
        // With a wrong checkpoint of size 2 pending, the page is refused whole...
        let mut refused = fresh(&one_by_one);
        refused.checkpoint(&bad).unwrap();
        assert_eq!(
            refused.accept_page(&prepared).unwrap_err().code(),
            "checkpoint_root_mismatch"
        );
        assert_eq!(refused.size(), 0);
        // ...and accepted as one-by-one otherwise.
        assert_eq!(paged.accept_page(&prepared).unwrap(), singly);
        assert_eq!(paged.size(), one_by_one.follower.size());
        assert_eq!(paged.root(), one_by_one.follower.root());
        let reference = "OCNL2026000001".parse().unwrap();
        assert_eq!(
            paged.document(&reference),
            one_by_one.follower.document(&reference)
        );
        assert_eq!(paged.checkpoint(&good), Ok(CheckpointStatus::Known));

        // A forged signature anywhere in a page: refused whole, named, nothing kept.
        let mut forged_page = fresh(&one_by_one);
        let forged = forge(&transfer);
        let page: Vec<Prepared> = [full(0, &issue), full(1, &forged)]
            .iter()
            .map(|e| forged_page.prepare(e).unwrap())
            .collect();
        assert_eq!(
            forged_page.accept_page(&page),
            Err(Incident::BadSignature { index: 1 })
        );
        assert_eq!(forged_page.size(), 0);
    }

    #[test]
    fn checkpoints_are_checked_now_or_when_their_leaves_arrive() {
        let mut w = world();
        let (issue, transfer) = chain(&w);
        // A checkpoint ahead of the replica waits; a wrong root is caught on arrival, and the
        // entry that would complete it is not kept.
        let mut reference = LedgerTree::new(BLOCK).unwrap();
        reference.push(leaf_hash(issue.as_bytes()));
        let good_1 = checkpoint(&w, 1, reference.root());
        let bad_2 = checkpoint(&w, 2, reference.root());
        assert_eq!(
            w.follower.checkpoint(&good_1),
            Ok(CheckpointStatus::Pending)
        );
        assert_eq!(w.follower.checkpoint(&bad_2), Ok(CheckpointStatus::Pending));
        w.follower.accept(&full(0, &issue)).unwrap();
        assert_eq!(w.follower.checkpoint(&good_1), Ok(CheckpointStatus::Known));
        assert_eq!(
            w.follower.accept(&full(1, &transfer)).unwrap_err().code(),
            "checkpoint_root_mismatch"
        );
        assert_eq!(w.follower.size(), 1);

        // A checkpoint of a size already passed is checked at once, against the leaves held.
        w.follower = fresh(&w);
        for (i, jws) in [&issue, &transfer].into_iter().enumerate() {
            w.follower.accept(&full(i as u64, jws)).unwrap();
        }
        for i in 2..7u64 {
            // Hash-only entries of other parties, past a block boundary.
            let leaf = Digest::of(&i.to_be_bytes());
            w.follower
                .accept(&FeedEntry {
                    index: i,
                    leaf_hash: leaf,
                    signed: None,
                })
                .unwrap();
        }
        let root_1 = reference.root();
        assert_eq!(
            w.follower.checkpoint(&checkpoint(&w, 1, root_1)),
            Ok(CheckpointStatus::Verified)
        );
        let now = w.follower.root();
        assert_eq!(
            w.follower.checkpoint(&checkpoint(&w, 7, now)),
            Ok(CheckpointStatus::Verified)
        );
        assert_eq!(
            w.follower
                .checkpoint(&checkpoint(&w, 6, now))
                .unwrap_err()
                .code(),
            "checkpoint_root_mismatch"
        );
        // The registry signing a second, different checkpoint of the latest verified size:
        // both are evidence.
        let other = checkpoint(&w, 7, Digest::of(b"another history"));
        let Err(Incident::ConflictingCheckpoints {
            size,
            first,
            second,
        }) = w.follower.checkpoint(&other)
        else {
            panic!("a conflicting checkpoint went unnoticed");
        };
        assert_eq!((size, second.as_str()), (7, other.as_str()));
        assert_eq!(first, checkpoint(&w, 7, now));
        // Of an older size, no longer held in memory: refused against the leaves' own root
        // (the keeper holds the first signature, which the node pairs with it).
        let older = checkpoint(&w, 1, Digest::of(b"another history"));
        assert_eq!(
            w.follower.checkpoint(&older).unwrap_err().code(),
            "checkpoint_root_mismatch"
        );
        // ...and remembered, so this history's checkpoint of that size, sent again, makes the
        // pair of signatures.
        assert_eq!(
            w.follower.checkpoint(&checkpoint(&w, 1, root_1)),
            Err(Incident::ConflictingCheckpoints {
                size: 1,
                first: older,
                second: checkpoint(&w, 1, root_1),
            })
        );
        // Not signed by the registry.
        let forged = Checkpoint {
            size: 7,
            root: now,
            time: "2026-11-03T09:00:00.000Z".parse().unwrap(),
            block_size: BLOCK as u32,
        }
        .sign(&w.carrier);
        assert_eq!(
            w.follower.checkpoint(&forged).unwrap_err().code(),
            "bad_checkpoint"
        );
    }

    /// However many checkpoints a follower verifies, it holds the latest only; those ahead of
    /// its leaves are bounded; and old sizes are still checked, against the leaves.
    #[test]
    fn checkpoints_held_in_memory_are_bounded() {
        let w = world();
        let mut follower = fresh(&w);
        let mut roots = Vec::new();
        for i in 0..600u64 {
            follower
                .accept(&FeedEntry {
                    index: i,
                    leaf_hash: Digest::of(&i.to_be_bytes()),
                    signed: None,
                })
                .unwrap();
            roots.push(follower.root());
            assert_eq!(
                follower.checkpoint(&checkpoint(&w, i + 1, follower.root())),
                Ok(CheckpointStatus::Verified)
            );
        }
        assert_eq!(follower.checkpoints_held(), 1);
        assert_eq!(follower.latest_checkpoint_size(), Some(600));
        // Any earlier size, inside a sealed block or on its edge, checks against the leaves.
        for size in [1u64, 3, 4, 5, 299, 300, 301] {
            let root = roots[size as usize - 1];
            assert_eq!(
                follower.checkpoint(&checkpoint(&w, size, root)),
                Ok(CheckpointStatus::Verified),
                "size {size}"
            );
            assert_eq!(
                follower
                    .checkpoint(&checkpoint(&w, size, Digest::of(b"x")))
                    .unwrap_err()
                    .code(),
                "checkpoint_root_mismatch"
            );
        }
        assert_eq!(follower.latest_checkpoint_size(), Some(600));
        // Ahead of the leaves: at most MAX_PENDING wait; more are not taken.
        for size in 601..=(600 + MAX_PENDING as u64) {
            assert_eq!(
                follower.checkpoint(&checkpoint(&w, size, Digest::of(b"ahead"))),
                Ok(CheckpointStatus::Pending)
            );
        }
        let past = 601 + MAX_PENDING as u64;
        assert_eq!(
            follower.checkpoint(&checkpoint(&w, past, Digest::of(b"ahead"))),
            Ok(CheckpointStatus::Deferred)
        );
        assert!(!follower.holds_checkpoint(past));
        assert!(follower.checkpoints_held() <= 1 + MAX_PENDING + MAX_DISPUTED);
    }

    /// Another history's checkpoint can arrive (from a peer) before this history's one of
    /// the same size: it is refused, remembered, and the pair is the evidence when the second
    /// arrives.
    #[test]
    fn another_historys_checkpoint_first_then_this_ones_is_a_conflict() {
        let mut w = world();
        let (issue, _) = chain(&w);
        w.follower.accept(&full(0, &issue)).unwrap();
        let theirs = checkpoint(&w, 1, Digest::of(b"another history"));
        assert_eq!(
            w.follower.checkpoint(&theirs).unwrap_err().code(),
            "checkpoint_root_mismatch"
        );
        let ours = checkpoint(&w, 1, w.follower.root());
        assert_eq!(
            w.follower.checkpoint(&ours),
            Err(Incident::ConflictingCheckpoints {
                size: 1,
                first: theirs,
                second: ours.clone(),
            })
        );
        // This history's checkpoint is still the one held.
        assert_eq!(w.follower.checkpoint(&ours), Ok(CheckpointStatus::Known));
        assert_eq!(
            w.follower.latest_verified_checkpoint().unwrap().as_str(),
            ours
        );
    }
}
