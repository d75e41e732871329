//! The bundle's files and the JSON they hold (see `schemas/export/README.md`).

use lading_domain::membership::Membership;
use lading_domain::{Digest, Jwk};
use serde::{Deserialize, Serialize};

/// The format's name and version, in the manifest.
pub const BUNDLE_FORMAT: &str = "lading-customs-export/1";

/// Every file a bundle holds, in the order they are written (each table as soon as it is
/// whole); nothing else may be in it.
pub const FILES: &[&str] = &[
    "entries.jsonl",
    "transitions.csv",
    "events.csv",
    "proofs.jsonl",
    "documents.csv",
    "checkpoint.jws",
    "registry.jwk",
    "parties.json",
    "index.html",
    "datapackage.json",
    "manifest.json",
    "manifest.jws",
];

/// The files whose SHA-256 the manifest lists (all but the manifest and its signature).
pub fn hashed_files() -> impl Iterator<Item = &'static str> {
    FILES
        .iter()
        .copied()
        .filter(|f| !f.starts_with("manifest."))
}

/// `manifest.json`: what the export is, signed by the exporter in `manifest.jws` (whose payload
/// is exactly these bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The customs authority the export is for (a party id).
    pub authority: String,
    /// Who made and signed it: the kid of `manifest.jws`'s key.
    pub exporter: String,
    pub created_at: String,
    pub range: ManifestRange,
    /// The checkpoint every proof leads to.
    pub checkpoint: ManifestCheckpoint,
    pub counts: ManifestCounts,
    /// SHA-256 (hex) of every other file of the bundle, by name.
    pub files: std::collections::BTreeMap<String, String>,
    /// The export before this one in the authority's series, if any.
    pub previous: Option<PreviousExport>,
    /// The exporter's claim, in words, that the bundle holds every entry of the range the
    /// authority is entitled to.
    pub completeness: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestRange {
    /// The first ledger index of the range.
    pub from: u64,
    /// One past the last ledger index of the range.
    pub to: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestCheckpoint {
    pub size: u64,
    /// The ledger's block size: how the proofs cut the ledger.
    pub block_size: u64,
    pub root: String,
    /// SHA-256 of `checkpoint.jws`'s text.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestCounts {
    pub entries: u64,
    pub transitions: u64,
    pub events: u64,
    pub documents: u64,
    /// Blocks whose proofs `proofs.jsonl` holds (one line each).
    pub blocks: u64,
}

/// The export before: its manifest's SHA-256 and its range, so that a gap or an overlap
/// between two exports of a series is evident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviousExport {
    pub manifest_sha256: String,
    pub range: ManifestRange,
}

/// One line of `proofs.jsonl`: the proof of every entry of one block the bundle holds, in
/// block order. The entries of the block are those of `entries.jsonl` with an index in
/// `first..end`; their leaf hashes and `lemmas` (their multiproof in the block's tree) give the
/// block's `root`, and `path` leads from it to the checkpoint's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofLine {
    pub block: u64,
    /// The block's first index and one past its last, at the checkpoint's size.
    pub first: u64,
    pub end: u64,
    pub root: Digest,
    /// The block root's lemmas in the tree of block roots, block to checkpoint root.
    pub path: Vec<Digest>,
    /// The nodes of the block's tree that its entries in the bundle do not give, in the order
    /// the multiproof walk takes them (none when the bundle holds the whole block).
    pub lemmas: Vec<Digest>,
}

/// One line of `entries.jsonl`: the entry exactly as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryLine {
    pub index: u64,
    pub leaf_hash: Digest,
    pub signed: String,
}

/// `parties.json`: the consortium's parties and every key they held, with the ledger indexes
/// between which each key could sign, as of the export's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartiesFile {
    pub parties: Vec<PartyLine>,
    pub keys: Vec<KeyLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartyLine {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub ports: Vec<String>,
    /// The index of the statement that added it (none: in the genesis).
    pub added_at: Option<u64>,
    pub removed_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyLine {
    /// The party (or `operator`) the key belongs to.
    pub owner: String,
    /// The public key, with its kid.
    pub jwk: Jwk,
    /// It signs entries after this index (none: from the genesis).
    pub added_at: Option<u64>,
    /// It signs no entry after this index.
    pub revoked_at: Option<u64>,
}

impl KeyLine {
    /// Whether the key could sign the entry at `index`.
    pub fn valid_at(&self, index: u64) -> bool {
        self.added_at.is_none_or(|a| index > a) && self.revoked_at.is_none_or(|r| index <= r)
    }
}

impl PartiesFile {
    /// The membership as a verifier needs it.
    pub fn of(membership: &Membership) -> Self {
        let mut parties: Vec<PartyLine> = membership
            .members()
            .into_iter()
            .map(|m| PartyLine {
                id: m.party.id.to_string(),
                name: m.party.name.as_str().to_owned(),
                role: m.party.role.as_str().to_owned(),
                ports: m.party.ports.iter().map(ToString::to_string).collect(),
                added_at: m.added_at,
                removed_at: m.removed_at,
            })
            .collect();
        parties.sort_by(|a, b| a.id.cmp(&b.id));
        let mut keys: Vec<KeyLine> = membership
            .keys()
            .into_iter()
            .map(|k| KeyLine {
                owner: k.owner.as_str().to_owned(),
                jwk: Jwk::from_verifying_key(&k.key, false),
                added_at: k.added_at,
                revoked_at: k.revoked_at,
            })
            .collect();
        keys.sort_by(|a, b| a.jwk.kid().as_str().cmp(b.jwk.kid().as_str()));
        Self { parties, keys }
    }
}

/// SHA-256 of `bytes`, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(bytes))
}
