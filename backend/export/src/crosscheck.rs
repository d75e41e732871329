//! `lading verify-bundle FILE --against-replica URL`: a bundle cross-checked against the
//! authority's own replica — the one thing the bundle cannot prove alone is that nothing was
//! left out, and the authority's node holds, verified, exactly what the authority is entitled
//! to. For the bundle's range `[from, to)`:
//!
//! - its checkpoint must be one the replica verified, or give the root the replica's verified
//!   leaves give at that size (so the replica's own checkpoint extends it);
//! - every entry of the bundle must be on the replica with the same leaf hash;
//! - every transition and event the replica holds in full in the range must be in the bundle:
//!   one that is not is an omission, named with its index — the evidence the completeness
//!   argument asks for.
//!
//! The bundle is read here on its own (the manifest's range and checkpoint, `entries.jsonl`),
//! not through the offline verifier: run that too (`verify-bundle` does both). The replica is
//! read through [`ReplicaReads`], whose wire answers ([`ReplicaEntriesPage`], [`ReplicaRoot`])
//! the replica's face serves.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use lading_domain::merkle::leaf_hash;
use lading_domain::Digest;
use serde::{Deserialize, Serialize};

use crate::format::EntryLine;

/// Entries asked of the replica at once (its face serves at most this many a page).
pub const REPLICA_PAGE: u64 = 10_000;

/// What the replica holds in full at an index (hash-only entries carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeldKind {
    Transition,
    Event,
    /// A party statement: every member holds them, and no export holds them.
    Party,
}

/// One index of `GET /v1/entries` at a replica: the leaf it verified there, and what it holds
/// in full when it is entitled to the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaEntry {
    pub index: u64,
    pub leaf_hash: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<HeldKind>,
}

/// `GET /v1/entries?from=I&limit=N` at a replica (its own party only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaEntriesPage {
    /// Leaves the replica holds (entries `0..size`).
    pub size: u64,
    /// The size of the latest checkpoint it verified: the leaves below it are checked against
    /// a root the registry signed.
    pub verified_size: u64,
    pub entries: Vec<ReplicaEntry>,
}

/// `GET /v1/roots/{size}` at a replica: the root its verified leaves give at `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRoot {
    pub size: u64,
    /// None when `size` is beyond the latest checkpoint the replica verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Digest>,
    pub verified_size: u64,
    /// Whether the replica keeps a checkpoint of exactly this size, verified.
    pub checkpoint_held: bool,
}

/// How a bundle is read off a replica (HTTP with the authority's certificate, in the binary).
pub trait ReplicaReads {
    fn root(&mut self, size: u64) -> Result<ReplicaRoot, String>;
    fn entries(&mut self, from: u64, limit: u64) -> Result<ReplicaEntriesPage, String>;
}

/// A rule the cross-check found broken, named and printed as `verify-bundle`'s findings are.
pub type CrossFinding = crate::Finding;

/// What the cross-check found.
#[derive(Debug, Clone, Default)]
pub struct CrossCheck {
    /// The bundle's range, as its manifest states it.
    pub from: u64,
    pub to: u64,
    pub checkpoint_size: u64,
    /// The replica keeps the bundle's very checkpoint (else its root was recomputed there).
    pub checkpoint_held: bool,
    /// Bundle entries found on the replica with the same leaf.
    pub entries_matched: u64,
    /// Transitions and events the replica holds in full in the range.
    pub replica_held: u64,
    pub findings: Vec<CrossFinding>,
}

impl CrossCheck {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, file: &str, line: Option<u64>, rule: &'static str, message: String) {
        self.findings.push(CrossFinding {
            file: file.to_owned(),
            line,
            rule,
            message,
        });
    }
}

const MANIFEST: &str = "manifest.json";
const ENTRIES: &str = "entries.jsonl";
const REPLICA: &str = "replica";

/// One line of `entries.jsonl` as read: its line number and what it says.
struct Held {
    line: u64,
    entry: EntryLine,
}

/// The authority the bundle at `bundle` is for, as its manifest says: whose replica it is
/// checked against.
pub fn authority_of(bundle: &Path) -> Result<String, String> {
    let file = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut text = String::new();
    archive
        .by_name(MANIFEST)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    manifest["authority"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the manifest names no authority".to_owned())
}

/// Cross-checks the bundle at `bundle` against `replica`.
pub fn cross_check(bundle: &Path, replica: &mut dyn ReplicaReads) -> CrossCheck {
    let mut out = CrossCheck::default();
    let (manifest, entries) = match read_bundle(bundle, &mut out) {
        Some(read) => read,
        None => return out,
    };
    let (from, to, size, root) = manifest;
    out.from = from;
    out.to = to;
    out.checkpoint_size = size;

    // The checkpoint: the replica's verified leaves must give its root.
    match replica.root(size) {
        Err(e) => {
            out.find(REPLICA, None, "replica_unreachable", e);
            return out;
        }
        Ok(answer) => match answer.root {
            None => out.find(
                MANIFEST,
                None,
                "checkpoint_beyond_replica",
                format!(
                    "the bundle is proved against the checkpoint of size {size}; the replica has verified the ledger up to {} only",
                    answer.verified_size
                ),
            ),
            Some(theirs) if theirs != root => out.find(
                MANIFEST,
                None,
                "checkpoint_not_on_replica",
                format!(
                    "the bundle's checkpoint of size {size} has root {root}; the replica's verified leaves give {theirs}: two histories"
                ),
            ),
            Some(_) => out.checkpoint_held = answer.checkpoint_held,
        },
    }

    // The entries, side by side with the replica's, a page at a time.
    let mut bundle_entries = entries.into_iter().peekable();
    let mut next = from;
    while next < to {
        let page = match replica.entries(next, REPLICA_PAGE.min(to - next)) {
            Ok(page) => page,
            Err(e) => {
                out.find(REPLICA, None, "replica_unreachable", e);
                return out;
            }
        };
        let mut moved = false;
        for theirs in page.entries {
            if theirs.index < next || theirs.index >= to {
                continue;
            }
            // Bundle lines below this index that the replica did not list.
            while let Some(held) = bundle_entries.next_if(|h| h.entry.index < theirs.index) {
                not_on_replica(&mut out, &held, page.size);
            }
            let ours = bundle_entries.next_if(|h| h.entry.index == theirs.index);
            compare(&mut out, ours.as_ref(), &theirs);
            next = theirs.index + 1;
            moved = true;
        }
        if !moved {
            // The replica holds nothing more of the range.
            break;
        }
    }
    for held in bundle_entries {
        not_on_replica(&mut out, &held, next);
    }
    out
}

/// The bundle's entry (if any) at the replica's index, against what the replica holds there.
fn compare(out: &mut CrossCheck, ours: Option<&Held>, theirs: &ReplicaEntry) {
    let wanted = matches!(theirs.kind, Some(HeldKind::Transition | HeldKind::Event));
    if wanted {
        out.replica_held += 1;
    }
    let Some(ours) = ours else {
        if let Some(kind) = theirs.kind.filter(|_| wanted) {
            out.find(
                ENTRIES,
                None,
                "omitted",
                format!(
                    "entry {} (a {}, leaf {}) is held in full by the authority's replica and falls in the bundle's range, but the bundle does not hold it",
                    theirs.index,
                    match kind {
                        HeldKind::Transition => "transition",
                        _ => "shipment event",
                    },
                    theirs.leaf_hash
                ),
            );
        }
        return;
    };
    let leaf = leaf_hash(ours.entry.signed.as_bytes());
    let differs = if leaf != theirs.leaf_hash {
        Some(format!("its signed bytes hash to {leaf}"))
    } else if ours.entry.leaf_hash != theirs.leaf_hash {
        Some(format!(
            "its line says leaf {} (its signed bytes do hash to the replica's)",
            ours.entry.leaf_hash
        ))
    } else {
        None
    };
    match differs {
        Some(why) => out.find(
            ENTRIES,
            Some(ours.line),
            "leaf_differs_from_replica",
            format!(
                "entry {}: {why}; the replica verified {} at that index",
                theirs.index, theirs.leaf_hash
            ),
        ),
        None => out.entries_matched += 1,
    }
}

fn not_on_replica(out: &mut CrossCheck, held: &Held, replica_size: u64) {
    out.find(
        ENTRIES,
        Some(held.line),
        "not_on_replica",
        format!(
            "entry {} is not among the entries the replica holds (it lists {replica_size})",
            held.entry.index
        ),
    );
}

/// The manifest's `(from, to, checkpoint size, checkpoint root)` and the bundle's entries in
/// index order; findings for what cannot be read.
#[allow(clippy::type_complexity)]
fn read_bundle(
    bundle: &Path,
    out: &mut CrossCheck,
) -> Option<((u64, u64, u64, Digest), Vec<Held>)> {
    let file = match std::fs::File::open(bundle) {
        Ok(file) => file,
        Err(e) => {
            out.find(
                &bundle.display().to_string(),
                None,
                "unreadable",
                e.to_string(),
            );
            return None;
        }
    };
    let mut archive = match zip::ZipArchive::new(file) {
        Ok(archive) => archive,
        Err(e) => {
            out.find(
                &bundle.display().to_string(),
                None,
                "not_a_zip",
                e.to_string(),
            );
            return None;
        }
    };
    let manifest = {
        let mut text = String::new();
        let read = archive
            .by_name(MANIFEST)
            .map_err(|e| e.to_string())
            .and_then(|mut f| f.read_to_string(&mut text).map_err(|e| e.to_string()))
            .and_then(|_| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
            })
            .and_then(|m| {
                let number = |v: &serde_json::Value| v.as_u64().ok_or("not a number".to_owned());
                let root = m["checkpoint"]["root"]
                    .as_str()
                    .ok_or("no checkpoint root".to_owned())
                    .and_then(|r| r.parse::<Digest>().map_err(|e| e.to_string()))?;
                Ok((
                    number(&m["range"]["from"])?,
                    number(&m["range"]["to"])?,
                    number(&m["checkpoint"]["size"])?,
                    root,
                ))
            });
        match read {
            Ok(manifest) => manifest,
            Err(e) => {
                out.find(MANIFEST, None, "unreadable", e);
                return None;
            }
        }
    };
    let mut entries: Vec<Held> = Vec::new();
    let file = match archive.by_name(ENTRIES) {
        Ok(file) => file,
        Err(e) => {
            out.find(ENTRIES, None, "unreadable", e.to_string());
            return None;
        }
    };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line_no = n as u64 + 1;
        let text = match line {
            Ok(text) => text,
            Err(e) => {
                out.find(ENTRIES, Some(line_no), "unreadable", e.to_string());
                return None;
            }
        };
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<EntryLine>(&text) {
            Ok(entry) => {
                if entries.last().is_some_and(|h| h.entry.index >= entry.index) {
                    out.find(
                        ENTRIES,
                        Some(line_no),
                        "out_of_order",
                        format!("entry {} is not after the line before", entry.index),
                    );
                    continue;
                }
                let (from, to, _, _) = manifest;
                if entry.index < from || entry.index >= to {
                    out.find(
                        ENTRIES,
                        Some(line_no),
                        "outside_range",
                        format!("entry {} is outside the range {from}..{to}", entry.index),
                    );
                    continue;
                }
                entries.push(Held {
                    line: line_no,
                    entry,
                });
            }
            Err(e) => out.find(ENTRIES, Some(line_no), "unreadable", e.to_string()),
        }
    }
    Some((manifest, entries))
}
