//! Exports from the registry, for an authority that runs no node (`GET /v1/exports`): the
//! counterpart of [`crate::node`]. The registry holds every entry, so what the authority gets
//! is decided by the registry's own entitlement query (the rule of its document reads and its
//! replication feed), proved against its latest checkpoint and signed with its own key.
//!
//! Memory stays bounded: entries are read a page at a time, each page in its own short query,
//! and only the block being proved is held in full.

use std::ops::Range;
use std::path::Path;

use lading_domain::checkpoint::PublishedCheckpoint;
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::membership::{KeyRecord, Member, Membership};
use lading_domain::merkle::{BlockTree, CheckpointTree};
use lading_domain::transition::SignedTransition;
use lading_domain::{Digest, Jwk, Role, SigningKey};
use lading_store::{ledger, reads, Store};

use crate::paged::Paged;
use crate::write::{write_bundle, Checkpointed, ExportRequest, Source, Summary};
use crate::ExportError;

/// Rows read from the database at once.
const PAGE: u64 = 2_000;

/// What the registry exports with: its store, its latest checkpoint, its keys and membership.
#[derive(Debug)]
pub struct RegistryExporter<'a> {
    pub store: &'a Store,
    /// The latest checkpoint the registry signed; every proof leads to it.
    pub checkpoint: &'a PublishedCheckpoint,
    /// The registry's key: it signs the manifest (the verifier takes `registry.jwk` as exporter).
    pub signer: &'a SigningKey,
    /// The registry's public key, written as `registry.jwk`.
    pub registry_key: &'a Jwk,
    /// The membership with every key's history; `parties.json` is written from it as of the
    /// checkpoint.
    pub membership: &'a Membership,
}

/// Writes the export of `authority`'s entries `range` to `out` (a file that must not exist
/// yet), refusing a party that is no customs authority and a range beyond the checkpoint
/// before anything is written.
pub fn export_from_registry(
    exporter: &RegistryExporter<'_>,
    authority: &PartyId,
    range: Range<u64>,
    out: &Path,
) -> Result<Summary, ExportError> {
    match exporter.membership.member(authority) {
        Some(m) if m.party.role == Role::CustomsAuthority && m.removed_at.is_none() => {}
        _ => {
            return Err(ExportError::Refused(format!(
                "{authority} is not a customs authority of the consortium: exports are for customs authorities"
            )))
        }
    }
    let size = exporter.checkpoint.checkpoint.size;
    if range.start > range.end || range.end > size {
        return Err(ExportError::Range {
            from: range.start,
            to: range.end,
            size,
        });
    }
    let membership = as_of(exporter.membership, size)?;
    let tree = checkpoint_tree(exporter.store, exporter.checkpoint)?;
    let checkpointed = Checkpointed {
        signed: exporter.checkpoint.signed.clone(),
        size,
        root: exporter.checkpoint.checkpoint.root,
        tree,
        registry_key: exporter.registry_key.to_public(),
    };
    let request = ExportRequest {
        authority: authority.clone(),
        range: range.clone(),
        signer: exporter.signer,
        previous: None,
        created_at: chrono::Utc::now(),
        membership: &membership,
    };
    let entries = entries(exporter.store, authority.as_str(), range.clone());
    let mut source = StoreSource {
        store: exporter.store,
    };
    write_bundle(out, &request, &checkpointed, entries, &mut source)
}

/// The membership as it stood at the checkpoint of `size`: what statements at indexes from
/// `size` on did (the registry may have sequenced some since) is undone, so `parties.json` says
/// what the checkpoint covers, as a node's export does.
fn as_of(membership: &Membership, size: u64) -> Result<Membership, ExportError> {
    let before = |at: Option<u64>| at.filter(|i| *i < size);
    let members = membership
        .members()
        .into_iter()
        .filter(|m| m.added_at.is_none_or(|a| a < size))
        .map(|m| Member {
            removed_at: before(m.removed_at),
            ..m.clone()
        })
        .collect();
    let keys = membership
        .keys()
        .into_iter()
        .filter(|k| k.added_at.is_none_or(|a| a < size))
        .map(|k| KeyRecord {
            revoked_at: before(k.revoked_at),
            ..k.clone()
        })
        .collect();
    Membership::from_records(members, keys).map_err(|e| ExportError::Source(e.to_string()))
}

fn store(e: lading_store::StoreError) -> ExportError {
    ExportError::Source(e.to_string())
}

/// The tree of `checkpoint` from the registry's sealed block roots and, when the checkpoint
/// cuts a block, the root of that open block's leaves; checked against the signed root.
fn checkpoint_tree(
    store_: &Store,
    checkpoint: &PublishedCheckpoint,
) -> Result<CheckpointTree, ExportError> {
    let size = checkpoint.checkpoint.size;
    let mut conn = store_.conn().map_err(store)?;
    let block_size = ledger::block_size(&mut conn)
        .map_err(store)?
        .ok_or_else(|| ExportError::Source("the ledger has no block size yet".into()))?;
    let full = size / block_size;
    let mut roots = ledger::block_roots(&mut conn)
        .map_err(store)?
        .into_iter()
        .take(usize::try_from(full).unwrap_or(usize::MAX))
        .map(|row| Digest::from_slice(&row.root).map_err(|e| ExportError::Source(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if roots.len() as u64 != full {
        return Err(ExportError::Source(format!(
            "the checkpoint of size {size} is beyond the {} sealed blocks",
            roots.len()
        )));
    }
    if size % block_size != 0 {
        let leaves = leaves(&mut conn, full * block_size..size)?;
        let open = BlockTree::build(&leaves).map_err(|e| ExportError::Source(e.to_string()))?;
        roots.push(open.root());
    }
    let tree = CheckpointTree::from_block_roots(block_size, size, &roots)
        .map_err(|e| ExportError::Source(e.to_string()))?;
    if tree.root() != checkpoint.checkpoint.root {
        return Err(ExportError::Source(format!(
            "the stored blocks do not make the root of the checkpoint of size {size}"
        )));
    }
    Ok(tree)
}

/// The leaf hashes of entries `range`, all of them, in order.
fn leaves(
    conn: &mut lading_store::PgConnection,
    range: Range<u64>,
) -> Result<Vec<Digest>, ExportError> {
    let leaves = ledger::leaf_hashes(conn, range.start, range.end)
        .map_err(store)?
        .iter()
        .map(|l| Digest::from_slice(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ExportError::Source(e.to_string()))?;
    if leaves.len() as u64 != range.end - range.start {
        return Err(ExportError::Source(format!(
            "the registry holds {} of the leaves {}..{}",
            leaves.len(),
            range.start,
            range.end
        )));
    }
    Ok(leaves)
}

/// The authority's entries of a range, a page at a time, by the registry's entitlement query.
fn entries<'a>(
    store_: &'a Store,
    party: &'a str,
    range: Range<u64>,
) -> impl Iterator<Item = Result<(u64, String), ExportError>> + 'a {
    let end = range.end;
    Paged::new(range, move |from| {
        let mut conn = store_.conn().map_err(store)?;
        let rows = reads::entitled_statements(&mut conn, party, from, end, PAGE).map_err(store)?;
        // A short page is the last one.
        let next = match rows.last() {
            Some(last) if rows.len() as u64 == PAGE => last.idx as u64 + 1,
            _ => end,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let index = row.idx as u64;
            let signed = row.signed.ok_or_else(|| ExportError::Unreadable {
                index,
                why: "withheld".into(),
            })?;
            let signed = String::from_utf8(signed).map_err(|_| ExportError::Unreadable {
                index,
                why: "not UTF-8".into(),
            })?;
            out.push((index, signed));
        }
        Ok((out, next))
    })
}

/// Block leaves and earlier transitions, from the registry's rows.
struct StoreSource<'a> {
    store: &'a Store,
}

impl Source for StoreSource<'_> {
    fn leaves(&mut self, range: Range<u64>) -> Result<Vec<Digest>, ExportError> {
        let mut conn = self.store.conn().map_err(store)?;
        leaves(&mut conn, range)
    }

    fn earlier_transitions(
        &mut self,
        reference: &DocumentReference,
        before: u64,
    ) -> Result<Vec<(u64, SignedTransition)>, ExportError> {
        let mut conn = self.store.conn().map_err(store)?;
        reads::chain_before(&mut conn, reference.as_str(), before)
            .map_err(store)?
            .into_iter()
            .map(|(idx, signed)| {
                let index = idx as u64;
                let signed = String::from_utf8(signed).map_err(|_| ExportError::Unreadable {
                    index,
                    why: "not UTF-8".into(),
                })?;
                let transition =
                    SignedTransition::parse(&signed).map_err(|e| ExportError::Unreadable {
                        index,
                        why: e.to_string(),
                    })?;
                Ok((index, transition))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lading_domain::jws::{SigningKey, VerifyingKey};
    use lading_domain::membership::{KeyRecord, Member, Membership, Principal};
    use lading_domain::party::Party;

    use super::as_of;

    fn member(id: &str, added_at: Option<u64>, removed_at: Option<u64>) -> Member {
        let party: Party = serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "role": "shipper"
        }))
        .unwrap();
        Member {
            party,
            added_at,
            removed_at,
        }
    }

    fn key(kid: &str, owner: &str, added_at: Option<u64>, revoked_at: Option<u64>) -> KeyRecord {
        let signing = SigningKey::new(
            kid.parse().unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        );
        let key: VerifyingKey = signing.verifying_key();
        KeyRecord {
            key,
            owner: Principal::Party(owner.parse().unwrap()),
            added_at,
            revoked_at,
        }
    }

    #[test]
    fn the_membership_at_a_checkpoint_forgets_the_statements_it_does_not_cover() {
        let now = Membership::from_records(
            vec![
                member("shipper-a", None, Some(12)),
                member("shipper-b", Some(10), None),
            ],
            vec![
                key("shipper-a:1", "shipper-a", None, Some(11)),
                key("shipper-b:1", "shipper-b", Some(10), None),
            ],
        )
        .unwrap();
        // Size 10 covers entries 0..9: the statement at 10 and those after are not yet made.
        let at_10 = as_of(&now, 10).unwrap();
        assert!(at_10.member(&"shipper-b".parse().unwrap()).is_none());
        assert_eq!(at_10.keys().len(), 1);
        let a = at_10.member(&"shipper-a".parse().unwrap()).unwrap();
        assert_eq!(a.removed_at, None);
        assert_eq!(at_10.keys()[0].revoked_at, None);
        // Size 12 covers the addition at 10 and the revocation at 11, not the removal at 12.
        let at_12 = as_of(&now, 12).unwrap();
        assert!(at_12.member(&"shipper-b".parse().unwrap()).is_some());
        assert_eq!(at_12.keys().len(), 2);
        assert_eq!(
            at_12
                .key(&"shipper-a:1".parse().unwrap())
                .unwrap()
                .revoked_at,
            Some(11)
        );
        assert_eq!(
            at_12
                .member(&"shipper-a".parse().unwrap())
                .unwrap()
                .removed_at,
            None
        );
        assert_eq!(as_of(&now, 13).unwrap(), now);
    }
}
