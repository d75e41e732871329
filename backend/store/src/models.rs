//! Rows as diesel reads and writes them. Digests travel as `Vec<u8>` here; `lading_domain::Digest`
//! wraps them at the edges.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::json::JsonText;
use crate::schema::{
    blocks, checkpoints, document_access, document_search, documents, events, ledger_entries,
    operator_keys, parties, party_keys, transitions,
};

// Joins without a foreign key behind them (the migration explains why the hot tables have
// none); declared here because schema.rs is generated.
diesel::joinable!(transitions -> ledger_entries (idx));
diesel::joinable!(events -> ledger_entries (idx));

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = parties)]
pub struct PartyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub ports: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    /// The index of the ADD_PARTY statement; `None` for a party of the genesis.
    pub added_idx: Option<i64>,
    pub removed_idx: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = party_keys)]
pub struct PartyKeyRow {
    pub kid: String,
    pub party_id: String,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The index of the statement that added the key; `None` for a key of the genesis.
    pub added_idx: Option<i64>,
    pub revoked_idx: Option<i64>,
}

/// A key of the consortium's operator.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = operator_keys)]
pub struct OperatorKeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub added_idx: Option<i64>,
    pub revoked_idx: Option<i64>,
}

/// One change a party statement makes to the registry's projection of the membership.
#[derive(Debug, Clone)]
pub enum MembershipRow {
    NewParty(PartyRow),
    NewKey(PartyKeyRow),
    NewOperatorKey(OperatorKeyRow),
    RemoveParty {
        id: String,
        idx: i64,
    },
    /// A party's or the operator's key.
    RevokeKey {
        kid: String,
        idx: i64,
    },
}

/// The three kinds of ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Transition,
    Event,
    Party,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transition => "transition",
            Self::Event => "event",
            Self::Party => "party",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "transition" => Some(Self::Transition),
            "event" => Some(Self::Event),
            "party" => Some(Self::Party),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries, treat_none_as_default_value = false)]
pub struct EntryRow {
    pub idx: i64,
    pub kind: String,
    pub signed: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub document_ref: Option<String>,
    pub equipment_ref: Option<String>,
    pub actor: String,
    pub kid: String,
    pub received_at: DateTime<Utc>,
    /// The party whose credential handed the entry in, when it was a party's (see the
    /// `submitters` migration); the signer is `actor`.
    pub submitted_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = transitions, treat_none_as_default_value = false)]
pub struct TransitionRow {
    pub idx: i64,
    pub document_ref: String,
    pub checksum: Vec<u8>,
    pub previous_checksum: Option<Vec<u8>>,
    pub action: String,
    pub actor: String,
    pub recipient: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct EventRow {
    pub idx: i64,
    pub actor: String,
    pub event_id: String,
    pub event_code: String,
    pub document_ref: Option<String>,
    pub equipment_ref: Option<String>,
    /// Where the event happened (UN/LOCODE); `None` only if the row predates the column and
    /// its migration could not read it.
    pub location: Option<String>,
}

/// What a search of documents filters on that never changes after ISSUE (see the migration
/// `finding_bills`), written once with the document's row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = document_search, treat_none_as_default_value = false)]
pub struct DocumentSearchRow {
    pub reference: String,
    pub vessel: String,
    pub voyage: String,
    pub shipper: String,
    pub consignee: Option<String>,
    pub notify_parties: Vec<Option<String>>,
    pub containers: Vec<Option<String>>,
    /// Lowercase words of the above (and the carrier and endorsee) for a free-text search.
    pub search: String,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = documents, treat_none_as_default_value = false)]
pub struct DocumentRow {
    pub reference: String,
    pub checksum: Vec<u8>,
    pub carrier: String,
    pub port_of_loading: String,
    pub port_of_discharge: String,
    pub status: String,
    pub possessor: String,
    pub head_checksum: Vec<u8>,
    pub head_idx: i64,
    pub issued_idx: i64,
    pub state: JsonText,
}

/// A document's mutable columns, as the sequencer moves them after a transition.
#[derive(Debug, Clone)]
pub struct DocumentStateUpdate {
    pub reference: String,
    pub status: String,
    pub possessor: String,
    pub head_checksum: Vec<u8>,
    pub head_idx: i64,
    pub state: JsonText,
}

/// What the sequencer needs of a document to check the next transition or event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = documents)]
pub struct DocumentHead {
    pub reference: String,
    pub carrier: String,
    pub port_of_loading: String,
    pub port_of_discharge: String,
    pub head_idx: i64,
    pub state: JsonText,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = document_access, treat_none_as_default_value = false)]
pub struct AccessRow {
    pub document_ref: String,
    pub party_id: String,
    /// The ledger index of the document's head transition, as the batch leaves it: what the
    /// party's documents are ordered by (`document_access_recent`).
    pub head_idx: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = blocks)]
pub struct BlockRow {
    pub block_no: i64,
    pub block_size: i32,
    pub root: Vec<u8>,
    pub sealed_at: DateTime<Utc>,
}

/// A block as it is sealed: its root and its leaf hashes, in order, 32 bytes each.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = blocks)]
pub struct SealedBlockRow {
    pub block_no: i64,
    pub block_size: i32,
    pub root: Vec<u8>,
    pub sealed_at: DateTime<Utc>,
    pub leaves: Vec<u8>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = checkpoints)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub block_size: i32,
    pub signed: String,
    pub created_at: DateTime<Utc>,
}
