//! The messages of a reconciliation as they cross the wire (JSON, camelCase), shared by the
//! registry, which asks (`lading_registry::reconcile`), and a replica, which answers
//! (`lading_replica::answer`). The descent's rounds are raw bytes: a bit mask out, 32-byte
//! hashes back ([`super::Descent::mask`], [`super::Answerer::answer`]).

use serde::{Deserialize, Serialize};

use crate::Digest;

/// `POST /v1/reconciliation`: the registry's size and its root over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenRequest {
    pub registry_size: u64,
    #[serde(default)]
    pub registry_root: Option<Digest>,
}

/// The first answer: what the replica holds, and its root over what both hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub session: u64,
    pub party: String,
    /// Entries held (rows, up to the last one).
    pub size: u64,
    /// Entries this replica verified from the registry's feed (its follower's size, read after
    /// its rows). Rows below it are never "unsigned", even beyond the registry's size: the
    /// registry signed them after it read its own size, and the replica followed it meanwhile.
    /// 0 from a replica that does not say.
    #[serde(default)]
    pub verified: u64,
    /// Entries compared: the first `min(size, registry size)`.
    pub compared: u64,
    /// The root over the first `compared` rows as they are now.
    pub root: Digest,
    /// The largest signed checkpoint held.
    pub checkpoint: Option<CheckpointHeld>,
    /// Rows at or beyond both the registry's size and `verified`: entries the registry never
    /// signed (the first few; `unsigned_count` counts them all).
    pub unsigned: Vec<UnsignedRow>,
    pub unsigned_count: u64,
    /// Milliseconds spent reading the rows' leaves, and building the trees over them.
    #[serde(default)]
    pub scan_millis: u64,
    #[serde(default)]
    pub tree_millis: u64,
}

impl Summary {
    /// Where the rows the registry never signed begin: beyond its size, and beyond what this
    /// replica verified.
    pub fn unsigned_from(&self, registry_size: u64) -> u64 {
        registry_size.max(self.verified)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointHeld {
    pub size: u64,
    pub root: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsignedRow {
    pub index: u64,
    pub leaf_hash: Digest,
}

/// The registry's originals for the rows that differ, and where rows it never signed begin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairRequest {
    pub entries: Vec<RepairEntry>,
    #[serde(default)]
    pub discard_from: Option<u64>,
    /// What the registry found, for the replica's own record.
    #[serde(default)]
    pub lost: Vec<u64>,
    #[serde(default)]
    pub altered: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepairEntry {
    pub index: u64,
    pub leaf_hash: Digest,
    #[serde(default)]
    pub signed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepairAnswer {
    pub repaired: u64,
    pub discarded: u64,
    /// The root over the compared entries after the repair, read back from the rows.
    pub root: Digest,
}
