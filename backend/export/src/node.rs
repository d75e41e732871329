//! Exports from the authority's own node: it already holds, verified, exactly what the
//! authority is entitled to (the feed delivers the rest as leaf hashes), so the export reads the
//! node's database and proves against the latest checkpoint the node verified — no load on the
//! registry, and it works while the registry is away.

use std::ops::Range;
use std::path::Path;

use lading_domain::event::SignedEvent;
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::transition::SignedTransition;
use lading_domain::{Digest, Jwk, Role, SigningKey};
use lading_replica::node::Node;
use lading_store::{export_series, replica};

use crate::format::PreviousExport;
use crate::write::{write_bundle, Checkpointed, ExportRequest, Source, Summary};
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

/// Writes the export of `authority`'s entries from `node` to `out`, signed with `signer` (the
/// authority's key), and records it in the node's series.
pub fn export_from_node(
    node: &Node,
    registry_key: &Jwk,
    signer: &SigningKey,
    authority: &PartyId,
    wanted: &Wanted,
    out: &Path,
) -> Result<Summary, ExportError> {
    if authority != node.party() {
        return Err(refuse(format!(
            "this node is {}'s: it exports for {} only, not for {authority}",
            node.party(),
            node.party()
        )));
    }
    let (membership, checkpoint) = {
        let follower = node.follower();
        let membership = follower.membership().clone();
        let signed = follower
            .latest_verified_checkpoint()
            .cloned()
            .ok_or_else(|| {
                refuse("the node has verified no checkpoint yet: nothing can be proved".into())
            })?;
        let size = signed.unverified().size;
        let tree = follower.checkpoint_tree(size).ok_or_else(|| {
            ExportError::Source(format!(
                "the node cannot rebuild the tree of its checkpoint of size {size}"
            ))
        })?;
        (membership, (signed, tree))
    };
    match membership.member(authority) {
        Some(m) if m.party.role == Role::CustomsAuthority => {}
        _ => {
            return Err(refuse(format!(
                "{authority} is not a customs authority of the consortium: exports are for customs authorities"
            )))
        }
    }
    let (signed, tree) = checkpoint;
    let size = signed.unverified().size;
    let mut conn = node.store().conn().map_err(store)?;
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
        registry_key: registry_key.to_public(),
    };
    let request = ExportRequest {
        authority: authority.clone(),
        range: from..to,
        signer,
        previous,
        created_at: chrono::Utc::now(),
        membership: &membership,
    };
    let entries = Entries::new(node, from..to)?;
    let mut source = NodeSource { node };
    let summary = write_bundle(out, &request, &checkpointed, entries, &mut source)?;
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
pub fn plan(node: &Node, authority: &PartyId, wanted: &Wanted) -> Result<Range<u64>, ExportError> {
    let size = node
        .follower()
        .latest_verified_checkpoint()
        .map(|c| c.unverified().size)
        .ok_or_else(|| {
            refuse("the node has verified no checkpoint yet: nothing can be proved".into())
        })?;
    let mut conn = node.store().conn().map_err(store)?;
    Ok(plan_within(&mut conn, authority, wanted, size)?.0)
}

fn store(e: lading_store::StoreError) -> ExportError {
    ExportError::Source(e.to_string())
}

/// The node's entries of a range held in full that are transitions or events (party
/// statements are the consortium's, not a document's), read a page at a time.
struct Entries<'a> {
    node: &'a Node,
    next: u64,
    end: u64,
    page: std::vec::IntoIter<(u64, String)>,
}

impl<'a> Entries<'a> {
    fn new(node: &'a Node, range: Range<u64>) -> Result<Self, ExportError> {
        Ok(Self {
            node,
            next: range.start,
            end: range.end,
            page: Vec::new().into_iter(),
        })
    }

    fn fill(&mut self) -> Result<(), ExportError> {
        let mut conn = self.node.store().conn().map_err(store)?;
        let rows = replica::entries(&mut conn, self.next, PAGE).map_err(store)?;
        let mut out = Vec::with_capacity(rows.len());
        self.next = self.end;
        for row in rows {
            let index = row.idx as u64;
            if index >= self.end {
                break;
            }
            self.next = index + 1;
            let Some(signed) = row.signed else {
                continue;
            };
            let signed = String::from_utf8(signed).map_err(|_| ExportError::Unreadable {
                index,
                why: "not UTF-8".into(),
            })?;
            if SignedTransition::parse(&signed).is_ok() || SignedEvent::parse(&signed).is_ok() {
                out.push((index, signed));
            }
        }
        self.page = out.into_iter();
        Ok(())
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(u64, String), ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.page.next() {
                return Some(Ok(entry));
            }
            if self.next >= self.end {
                return None;
            }
            if let Err(e) = self.fill() {
                self.next = self.end;
                return Some(Err(e));
            }
        }
    }
}

/// Block leaves and earlier transitions, from the node's rows.
struct NodeSource<'a> {
    node: &'a Node,
}

impl Source for NodeSource<'_> {
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError> {
        let mut conn = self.node.store().conn().map_err(store)?;
        let want = range.end - range.start;
        let rows = replica::entries(&mut conn, range.start, want as i64).map_err(store)?;
        let leaves: Vec<Digest> = rows
            .iter()
            .take_while(|r| (r.idx as u64) < range.end)
            .filter_map(|r| {
                <[u8; 32]>::try_from(r.leaf_hash.as_slice())
                    .ok()
                    .map(Digest)
            })
            .collect();
        if leaves.len() as u64 != want || rows.first().map(|r| r.idx as u64) != Some(range.start) {
            return Err(ExportError::Source(format!(
                "the node holds {} of the leaves {}..{}",
                leaves.len(),
                range.start,
                range.end
            )));
        }
        Ok(leaves)
    }

    fn earlier_transitions(
        &mut self,
        reference: &DocumentReference,
        before: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError> {
        let mut conn = self.node.store().conn().map_err(store)?;
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
