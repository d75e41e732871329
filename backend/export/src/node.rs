//! Exports from the authority's own node: it already holds, verified, exactly what the
//! authority is entitled to (the feed delivers the rest as leaf hashes), so the export reads the
//! node's database and proves against the latest checkpoint the node verified — no load on the
//! registry, and it works while the registry is away.
//!
//! It reads the database as it is, a page at a time, and needs no restored node: the tree of
//! the checkpoint is rebuilt from the rows' leaves (a window of blocks at a time) and must give
//! the verified checkpoint's root, so rows changed since the node checked them are refused
//! rather than exported; the membership is the genesis folded with the party statements held.

use std::ops::Range;
use std::path::Path;

use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::jws::CompactJws;
use lading_domain::membership::{Membership, SignedPartyStatement, PARTY_STATEMENT_TYP};
use lading_domain::merkle::{merkle_root, CheckpointTree};
use lading_domain::transition::SignedTransition;
use lading_domain::{Digest, Jwk, Role, SigningKey};
use lading_replica::node::Node;
use lading_store::{export_series, replica, Store};

use crate::format::PreviousExport;
use crate::paged::Paged;
use crate::write::{write_bundle_with_progress, Checkpointed, ExportRequest, Source, Summary};
use crate::ExportError;

/// Rows read from the database at once.
const PAGE: i64 = 2_000;

/// Which entries to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The first index (default: where the last export ended with `since_last`, else 0).
    pub from: Option<u64>,
    /// One past the last index (default: the latest verified checkpoint's size).
    pub to: Option<u64>,
    /// Start where the node's last export for the authority ended, and chain to it.
    pub since_last: bool,
}

/// Why a request for an export is refused before anything is written.
fn refuse(why: String) -> ExportError {
    ExportError::Refused(why)
}

/// A node's database, as the exporter reads it.
#[derive(Debug)]
pub struct NodeDatabase<'a> {
    pub store: &'a Store,
    /// The node's party.
    pub party: PartyId,
    /// The membership as of the checkpoint ([`fold_membership`], or the running node's).
    pub membership: Membership,
    /// The registry's public key, which signed the checkpoints.
    pub registry_key: Jwk,
    pub block_size: u64,
}

/// Blocks whose leaves are read at once when rebuilding the checkpoint's tree.
const BLOCKS_AT_ONCE: u64 = 64;

/// The genesis membership folded with the party statements the node holds below `below`.
pub fn fold_membership(
    store: &Store,
    genesis: &Membership,
    below: u64,
) -> Result<Membership, ExportError> {
    let mut membership = genesis.clone();
    let mut conn = store.conn().map_err(self::store)?;
    for row in replica::undocumented_entries(&mut conn, below).map_err(self::store)? {
        let Some(signed) = row.signed.and_then(|s| String::from_utf8(s).ok()) else {
            continue;
        };
        if let Ok(statement) = SignedPartyStatement::parse(&signed) {
            membership
                .apply(row.idx as u64, statement.kid(), statement.statement())
                .map_err(|e| {
                    ExportError::Source(format!("the party statement at {}: {e}", row.idx))
                })?;
        }
    }
    Ok(membership)
}

/// The latest checkpoint the node verified, with the tree of its block roots rebuilt from the
/// rows — which must give the checkpoint's root.
fn verified_checkpoint(
    db: &NodeDatabase<'_>,
) -> Result<(SignedCheckpoint, CheckpointTree), ExportError> {
    let mut conn = db.store.conn().map_err(store)?;
    let row = replica::latest_verified_checkpoint(&mut conn)
        .map_err(store)?
        .ok_or_else(|| {
            refuse("the node has verified no checkpoint yet: nothing can be proved".into())
        })?;
    let signed = SignedCheckpoint::parse(&row.signed).map_err(|e| {
        ExportError::Source(format!("the node's checkpoint of size {}: {e}", row.size))
    })?;
    let key = db
        .registry_key
        .verifying_key()
        .map_err(|e| ExportError::Source(format!("the registry's key: {e}")))?;
    let checkpoint = signed.verify(&key).map_err(|e| {
        ExportError::Source(format!("the node's checkpoint of size {}: {e}", row.size))
    })?;
    let (size, block_size) = (checkpoint.size, db.block_size);
    if u64::from(checkpoint.block_size) != block_size {
        return Err(ExportError::Source(format!(
            "the checkpoint's block size is {}, the node's {block_size}",
            checkpoint.block_size
        )));
    }
    let blocks = size.div_ceil(block_size);
    let mut roots = Vec::with_capacity(usize::try_from(blocks).unwrap_or(0));
    let mut block = 0;
    while block < blocks {
        let ranges: Vec<(u64, u64)> = (block..blocks.min(block + BLOCKS_AT_ONCE))
            .map(|b| (b * block_size, size.min((b + 1) * block_size)))
            .collect();
        for leaves in replica::held_leaves_ranges(&mut conn, &ranges).map_err(store)? {
            let leaves: Vec<Digest> = leaves.into_iter().map(Digest).collect();
            roots.push(merkle_root(&leaves));
        }
        block += BLOCKS_AT_ONCE;
    }
    let tree = CheckpointTree::from_block_roots(block_size, size, &roots)
        .map_err(|e| ExportError::Source(e.to_string()))?;
    if tree.root() != checkpoint.root {
        return Err(ExportError::Source(format!(
            "the node's rows do not make the checkpoint of size {size} it verified: rows were changed since (start the node, which judges its rows again)"
        )));
    }
    Ok((signed, tree))
}

/// Writes the export of `authority`'s entries from the node's database to `out`, signed with
/// `signer` (the authority's key), and records it in the node's series.
pub fn export_from_database(
    db: &NodeDatabase<'_>,
    signer: &SigningKey,
    authority: &PartyId,
    wanted: &Wanted,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, ExportError> {
    if *authority != db.party {
        return Err(refuse(format!(
            "this node is {}'s: it exports for {} only, not for {authority}",
            db.party, db.party
        )));
    }
    match db.membership.member(authority) {
        Some(m) if m.party.role == Role::CustomsAuthority => {}
        _ => {
            return Err(refuse(format!(
                "{authority} is not a customs authority of the consortium: exports are for customs authorities"
            )))
        }
    }
    let (signed, tree) = verified_checkpoint(db)?;
    let size = signed.unverified().size;
    let mut conn = db.store.conn().map_err(store)?;
    let (range, previous) = plan_within(&mut conn, authority, wanted, size)?;
    let Range {
        start: from,
        end: to,
    } = range;
    let checkpointed = Checkpointed {
        signed: signed.as_str().to_owned(),
        size,
        root: signed.unverified().root,
        tree,
        registry_key: db.registry_key.to_public(),
    };
    let request = ExportRequest {
        authority: authority.clone(),
        range: from..to,
        signer,
        previous,
        created_at: chrono::Utc::now(),
        membership: &db.membership,
    };
    let entries = entries(db.store, from..to);
    let mut source = NodeSource { store: db.store };
    progress(Progress {
        range: from..to,
        reached: from,
        entries: 0,
    });
    let summary = write_bundle_with_progress(
        out,
        &request,
        &checkpointed,
        entries,
        &mut source,
        &mut |entries, reached| {
            progress(Progress {
                range: from..to,
                reached,
                entries,
            })
        },
    )?;
    export_series::record(
        &mut conn,
        authority.as_str(),
        from..to,
        &summary.manifest_sha256,
        summary.manifest.counts.entries,
        &out.display().to_string(),
    )
    .map_err(store)?;
    Ok(summary)
}

/// [`export_from_database`] of a running node (its membership as it follows).
pub fn export_from_node(
    node: &Node,
    registry_key: &Jwk,
    signer: &SigningKey,
    authority: &PartyId,
    wanted: &Wanted,
    out: &Path,
) -> Result<Summary, ExportError> {
    // One look at the follower (its lock is not reentrant), released before the export.
    let (membership, block_size) = {
        let follower = node.follower();
        (follower.membership().clone(), follower.block_size())
    };
    let db = NodeDatabase {
        store: node.store(),
        party: node.party().clone(),
        membership,
        registry_key: registry_key.clone(),
        block_size,
    };
    export_from_database(&db, signer, authority, wanted, out, &mut |_| {})
}

/// How far an export is: the range, the index the pass has reached in it, the entries written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub range: Range<u64>,
    pub reached: u64,
    pub entries: u64,
}

/// The range `wanted` names when the checkpoint is of `size`, and the export it follows.
fn plan_within(
    conn: &mut lading_store::PgConnection,
    authority: &PartyId,
    wanted: &Wanted,
    size: u64,
) -> Result<(Range<u64>, Option<PreviousExport>), ExportError> {
    let previous = if wanted.since_last {
        export_series::last(conn, authority.as_str())
            .map_err(store)?
            .map(|row| PreviousExport {
                manifest_sha256: row.manifest_sha256,
                range: crate::format::ManifestRange {
                    from: row.range_from as u64,
                    to: row.range_to as u64,
                },
            })
    } else {
        None
    };
    let from = wanted
        .from
        .or(previous.as_ref().map(|p| p.range.to))
        .unwrap_or(0);
    let to = wanted.to.unwrap_or(size);
    if from > to || to > size {
        return Err(ExportError::Range { from, to, size });
    }
    Ok((from..to, previous))
}

/// The range an export `wanted` would cover now (to name its file before writing it).
pub fn plan(
    store_: &Store,
    authority: &PartyId,
    wanted: &Wanted,
) -> Result<Range<u64>, ExportError> {
    let mut conn = store_.conn().map_err(store)?;
    let size = replica::latest_verified_checkpoint(&mut conn)
        .map_err(store)?
        .map(|row| row.size as u64)
        .ok_or_else(|| {
            refuse("the node has verified no checkpoint yet: nothing can be proved".into())
        })?;
    Ok(plan_within(&mut conn, authority, wanted, size)?.0)
}

fn store(e: lading_store::StoreError) -> ExportError {
    ExportError::Source(e.to_string())
}

/// The node's entries of a range held in full that are transitions or events (party
/// statements are the consortium's, not a document's), read a page at a time.
fn entries(
    store_: &Store,
    range: Range<u64>,
) -> impl Iterator<Item = Result<(u64, String), ExportError>> + '_ {
    let end = range.end;
    Paged::new(range, move |from| {
        let mut conn = store_.conn().map_err(store)?;
        let rows = replica::entries(&mut conn, from, PAGE).map_err(store)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut next = end;
        for row in rows {
            let index = row.idx as u64;
            if index >= end {
                break;
            }
            next = index + 1;
            let Some(signed) = row.signed else {
                continue;
            };
            let signed = String::from_utf8(signed).map_err(|_| ExportError::Unreadable {
                index,
                why: "not UTF-8".into(),
            })?;
            // Told apart by the header alone: the writer parses every entry it is given (and
            // refuses one that is neither a transition nor an event), so parsing here as
            // well did that work twice.
            let statement =
                CompactJws::parse(&signed).is_ok_and(|jws| jws.typ() == Some(PARTY_STATEMENT_TYP));
            if !statement {
                out.push((index, signed));
            }
        }
        Ok((out, next))
    })
}

/// Block leaves and earlier transitions, from the node's rows.
struct NodeSource<'a> {
    store: &'a Store,
}

impl Source for NodeSource<'_> {
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError> {
        let mut conn = self.store.conn().map_err(store)?;
        let mut held =
            replica::held_leaves_ranges(&mut conn, &[(range.start, range.end)]).map_err(store)?;
        Ok(held
            .pop()
            .unwrap_or_default()
            .into_iter()
            .map(Digest)
            .collect())
    }

    fn earlier_transitions(
        &mut self,
        reference: &DocumentReference,
        before: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError> {
        let mut conn = self.store.conn().map_err(store)?;
        replica::document_entries(&mut conn, reference.as_str(), before)
            .map_err(store)?
            .into_iter()
            .filter_map(|row| {
                let signed = String::from_utf8(row.signed?).ok()?;
                Some((row.idx as u64, SignedTransition::parse(&signed).ok()?))
            })
            .map(Ok)
            .collect()
    }
}
