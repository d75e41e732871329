//! What a replica's face serves for a customs bundle's cross-check (`lading verify-bundle
//! --against-replica`), to its own party only:
//!
//! - `GET /v1/entries?from=I&limit=N`: each index's leaf the replica verified, and what it holds
//!   of it in full (a transition, an event, a party statement; nothing for another party's);
//! - `GET /v1/roots/{size}`: the root its verified leaves give at `size` — equal to a
//!   checkpoint's root when that checkpoint is one it verified or one its own extends.
//!
//! Leaves come from what the replica verified (its follower), not from rows that might have
//! been changed since; a row whose signed bytes no longer hash to the verified leaf is not
//! reported as held.

use actix_web::{web, HttpResponse};
use lading_domain::event::SignedEvent;
use lading_domain::merkle::leaf_hash;
use lading_domain::transition::SignedTransition;
use lading_export::crosscheck::{
    HeldKind, ReplicaEntriesPage, ReplicaEntry, ReplicaRoot, REPLICA_PAGE,
};
use lading_replica::node::Node;
use serde::Deserialize;

use crate::node::OwnParty;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntriesQuery {
    #[serde(default)]
    from: u64,
    limit: Option<u64>,
}

fn verified_size(node: &Node) -> u64 {
    node.follower()
        .latest_verified_checkpoint()
        .map_or(0, |c| c.unverified().size)
}

#[utoipa::path(get, path = "/v1/entries", tag = "exports", security(("mutualTLS" = [])), params(EntriesQuery), responses((status = 200, description = "Each index's verified leaf and what the replica holds of it in full", body = lading_export::crosscheck::ReplicaEntriesPage)))]
pub(crate) async fn entries(
    _: OwnParty,
    node: web::Data<Node>,
    query: web::Query<EntriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let from = query.from;
    let limit = query.limit.unwrap_or(1_000).clamp(1, REPLICA_PAGE);
    let page = web::block(move || -> Result<ReplicaEntriesPage, ApiError> {
        let verified_size = verified_size(&node);
        let (size, leaves) = {
            let follower = node.follower();
            let size = follower.size();
            let end = size.min(from.saturating_add(limit));
            let leaves: Vec<(u64, lading_domain::Digest)> = (from..end)
                .filter_map(|i| follower.leaf(i).map(|l| (i, l)))
                .collect();
            (size, leaves)
        };
        let rows = {
            let mut conn = node.store().conn().map_err(ApiError::unexpected)?;
            lading_store::replica::entries(&mut conn, from, i64::try_from(limit).unwrap_or(0))
                .map_err(ApiError::unexpected)?
        };
        let mut rows = rows.into_iter().peekable();
        let entries = leaves
            .into_iter()
            .map(|(index, leaf)| {
                while rows.next_if(|r| (r.idx as u64) < index).is_some() {}
                let signed = rows
                    .next_if(|r| r.idx as u64 == index)
                    .and_then(|r| r.signed)
                    .and_then(|s| String::from_utf8(s).ok())
                    .filter(|s| leaf_hash(s.as_bytes()) == leaf);
                ReplicaEntry {
                    index,
                    leaf_hash: leaf,
                    kind: signed.map(|s| kind(&s)),
                }
            })
            .collect();
        Ok(ReplicaEntriesPage {
            size,
            verified_size,
            entries,
        })
    })
    .await
    .map_err(ApiError::unexpected)??;
    Ok(HttpResponse::Ok().json(page))
}

/// What a verified entry held in full is.
fn kind(signed: &str) -> HeldKind {
    if SignedTransition::parse(signed).is_ok() {
        HeldKind::Transition
    } else if SignedEvent::parse(signed).is_ok() {
        HeldKind::Event
    } else {
        HeldKind::Party
    }
}

#[utoipa::path(get, path = "/v1/roots/{size}", tag = "exports", security(("mutualTLS" = [])), params(("size" = u64, Path)), responses((status = 200, description = "The root the replica's verified leaves give at size", body = lading_export::crosscheck::ReplicaRoot)))]
pub(crate) async fn root(
    _: OwnParty,
    node: web::Data<Node>,
    size: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let size = size.into_inner();
    let answer = web::block(move || -> Result<ReplicaRoot, ApiError> {
        let verified_size = verified_size(&node);
        let root = (size <= verified_size)
            .then(|| node.follower().checkpoint_tree(size).map(|t| t.root()))
            .flatten();
        let checkpoint_held = {
            let mut conn = node.store().conn().map_err(ApiError::unexpected)?;
            lading_store::replica::largest_checkpoint_within(
                &mut conn,
                size.saturating_sub(1),
                size,
            )
            .map_err(ApiError::unexpected)?
            .is_some_and(|row| row.verified && row.size as u64 == size)
        };
        Ok(ReplicaRoot {
            size,
            root,
            verified_size,
            checkpoint_held,
        })
    })
    .await
    .map_err(ApiError::unexpected)??;
    Ok(HttpResponse::Ok().json(answer))
}
