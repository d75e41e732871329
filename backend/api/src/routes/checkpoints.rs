//! Checkpoints and inclusion proofs. Public: they reveal hashes, never cargo.

use actix_web::{web, HttpResponse};
use lading_registry::Refusal;
use serde::Deserialize;

use crate::problem::ApiError;
use crate::AppState;

#[utoipa::path(get, path = "/v1/checkpoint", tag = "checkpoints", responses((status = 200, description = "The latest signed checkpoint (compact JWS, payload Checkpoint) and its members", body = crate::contract::files::PublishedCheckpoint)))]
pub async fn latest(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let checkpoint = state
        .registry
        .latest_checkpoint()
        .ok_or_else(|| ApiError::NotFound {
            what: "checkpoint (none signed yet)".into(),
        })?;
    Ok(HttpResponse::Ok().json(checkpoint))
}

#[utoipa::path(get, path = "/v1/checkpoints/{size}", tag = "checkpoints", params(("size" = u64, Path, description = "The ledger size it was signed at")), responses((status = 200, description = "The checkpoint signed at that size", body = crate::contract::files::PublishedCheckpoint)))]
pub async fn at_size(
    state: web::Data<AppState>,
    size: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let size = size.into_inner();
    let store = state.registry.store().clone();
    let cap = state.published_size();
    let row = web::block(move || {
        // A standby that holds it answers; one that does not (yet) leaves it to the primary.
        let standby = store.on_standby(cap, |conn, bound| {
            if size > bound {
                return Ok(None);
            }
            lading_store::ledger::checkpoint_at(conn, size)
        });
        if let Some(row) = standby {
            return Ok(Some(row));
        }
        let mut conn = store.conn()?;
        lading_store::ledger::checkpoint_at(&mut conn, size)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?
    .ok_or_else(|| ApiError::NotFound {
        what: format!("checkpoint of size {size}"),
    })?;
    let published = lading_registry::checkpoints::published(&row).map_err(ApiError::unexpected)?;
    Ok(HttpResponse::Ok().json(published))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    #[serde(default)]
    pub after: u64,
    #[serde(default = "hundred")]
    pub limit: i64,
}

fn hundred() -> i64 {
    100
}

/// `GET /v1/checkpoints?after&limit`: every signed checkpoint above a size, smallest first
/// (at most 1,000), as compact JWS — so a replica checks each one, not only the latest. A
/// replica answers the same call with the checkpoints it holds.
#[utoipa::path(get, path = "/v1/checkpoints", tag = "checkpoints", params(AfterQuery), responses((status = 200, description = "Every signed checkpoint above a size, smallest first (at most 1,000)", body = crate::contract::files::CheckpointList)))]
pub async fn after(
    state: web::Data<AppState>,
    query: web::Query<AfterQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = (query.after, query.limit.clamp(1, 1000));
    let store = state.registry.store().clone();
    let cap = state.published_size();
    let rows = web::block(move || {
        // The standby answers when its answer is the whole one: a full page, or every
        // checkpoint up to the latest published here.
        let standby = store.on_standby(cap, |conn, bound| {
            let rows = lading_store::ledger::checkpoints_after_upto(conn, after, limit, bound)?;
            let whole = rows.len() as i64 == limit || bound >= cap;
            Ok(whole.then_some(rows))
        });
        if let Some(rows) = standby {
            return Ok(rows);
        }
        let mut conn = store.conn()?;
        lading_store::ledger::checkpoints_after(&mut conn, after, limit)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let signed: Vec<String> = rows.into_iter().map(|row| row.signed).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "checkpoints": signed })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// The size of the checkpoint to prove against (default: the latest).
    pub size: Option<u64>,
    /// Milliseconds to wait for a checkpoint covering the entry (at most 30,000) — also for
    /// an entry not yet on the ledger, which a client may ask for before it submits it.
    #[param(maximum = 30_000)]
    pub wait: Option<u64>,
}

/// Longest `wait` of a proof request: one checkpoint interval is normally well below it.
pub const MAX_WAIT_MS: u64 = 30_000;

/// `GET /v1/entries/{index}/proof?size&wait`: the inclusion proof of an entry against the
/// checkpoint of `size`, or the latest one; with `wait`, first waits (bounded) until a
/// checkpoint covers the entry.
#[utoipa::path(get, path = "/v1/entries/{index}/proof", tag = "checkpoints", params(("index" = u64, Path), ProofQuery), responses((status = 200, description = "The entry's inclusion proof and the signed checkpoint it leads to", body = crate::contract::files::ProofAnswer)))]
pub async fn proof(
    state: web::Data<AppState>,
    index: web::Path<u64>,
    query: web::Query<ProofQuery>,
) -> Result<HttpResponse, ApiError> {
    let index = index.into_inner();
    let size = query.size;
    if let Some(wait) = query.wait {
        if wait > MAX_WAIT_MS {
            return Err(ApiError::BadRequest {
                code: "bad_query",
                detail: format!("wait is at most {MAX_WAIT_MS} ms, got {wait}"),
            });
        }
        // Against a given size there is nothing to wait for: that checkpoint exists or not.
        // An entry past the ledger is waited for too: a client may ask before it submits.
        let covered = size.is_some()
            || state
                .registry
                .wait_until_covered(index, std::time::Duration::from_millis(wait))
                .await;
        if !covered {
            return Err(ApiError::Refused(Refusal::Rule {
                code: "entry_not_yet_provable",
                detail: format!(
                    "no checkpoint covered entry {index} within {wait} ms; checkpoints are \
                     signed every checkpoint interval while the ledger grows"
                ),
            }));
        }
    }
    let registry = state.registry.clone();
    let answer = web::block(move || registry.prove(index, size))
        .await
        .map_err(ApiError::unexpected)?
        .map_err(|r: Refusal| ApiError::Refused(r))?;
    // Everything a verifier needs besides the entry's signed bytes (`proof-answer.json`).
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: u64,
}

/// `GET /v1/checkpoints/consistency?from=M&to=N`: proof that the ledger signed at size `N`
/// extends the one signed at size `M` (see `lading_domain::merkle`, "Consistency proofs").
#[utoipa::path(get, path = "/v1/checkpoints/consistency", tag = "checkpoints", params(ConsistencyQuery), responses((status = 200, description = "Proof that the ledger signed at to extends the one signed at from", body = crate::contract::files::ConsistencyAnswer)))]
pub async fn consistency(
    state: web::Data<AppState>,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let ConsistencyQuery { from, to } = query.into_inner();
    if from > to {
        return Err(ApiError::BadRequest {
            code: "consistency_from_after_to",
            detail: format!("from ({from}) must not be larger than to ({to})"),
        });
    }
    let registry = state.registry.clone();
    let answer = web::block(move || registry.consistency(from, to))
        .await
        .map_err(ApiError::unexpected)?
        .map_err(|r: Refusal| ApiError::Refused(r))?;
    // The two signed checkpoints and the proof (`consistency-answer.json`).
    Ok(HttpResponse::Ok().json(answer))
}
