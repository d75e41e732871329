//! The pure domain of Lading: what a bill of lading is, how a transfer of it is signed, which
//! transfers the rules allow, and how the ledger is sealed into Merkle checkpoints.
//!
//! Nothing here performs I/O. The store, the registry and the faces build on these types, and a
//! third-party verifier can be written from the rules documented in these modules and the README.

pub mod canonical;
pub mod checkpoint;
pub mod digest;
pub mod document;
pub mod ed25519;
pub mod event;
pub mod follow;
pub mod ids;
pub mod jws;
pub mod membership;
pub mod merkle;
pub mod party;
pub mod reconcile;
pub mod state;
pub mod transition;

pub use canonical::{canonicalize, is_canonical, to_canonical_vec, CanonicalError};
pub use checkpoint::{
    Checkpoint, CheckpointError, ConsistencyAnswer, ProofAnswer, PublishedCheckpoint,
    SignedCheckpoint, CHECKPOINT_TYP,
};
pub use digest::Digest;
pub use document::{DocumentError, DocumentFields, TransportDocument};
pub use event::{
    DocumentView, EventCode, EventDraft, EventError, EventKind, ShipmentEvent, SignedEvent,
    EVENT_TYP,
};
pub use ids::{
    ContainerNumber, Date, DocumentReference, EventId, HsCode, IdError, KeyId, NonEmptyText,
    PartyId, PositiveDecimal, Timestamp, UnLocode,
};
pub use jws::{CompactJws, EnvelopeError, Jwk, JwkError, JwsError, SigningKey, VerifyingKey};
pub use membership::{
    KeyRecord, Member, Membership, MembershipViolation, PartyStatement, Principal,
    SignedPartyStatement, Statement, StatementError, PARTY_STATEMENT_TYP,
};
pub use merkle::{
    verify_consistency, verify_inclusion, BlockTree, CheckpointTree, ConsistencyError,
    ConsistencyProof, InclusionProof, LedgerTree, MerkleError, ProofError,
};
pub use party::{entitled, Party, Role};
pub use state::{Chain, DocumentState, RuleViolation, Status, SurrenderKind};
pub use transition::{
    Action, IssuedDocument, ReasonCode, SignedTransition, TransitionDraft, TransitionError,
    TransitionPayload, TRANSITION_TYP,
};
