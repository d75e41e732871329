//! `GET /v1/entries/{index}`: one ledger entry by its index, for any authenticated party.
//!
//! A party entitled to the entry's document (by the rule of the replication feed: it signed the
//! entry, is named in the document, or is the customs authority of one of its ports) gets the
//! signed bytes, kind and time. Every other party gets the index and leaf hash alone — exactly
//! what the public checkpoints already commit to — so the answer tells nothing of the document,
//! the kind of statement or when it came.

use actix_web::{web, HttpResponse};
use chrono::SecondsFormat;
use lading_domain::Digest;
use serde::Serialize;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

/// Where the entry of `index` is read: the `Location` of a `201`.
pub fn location(index: u64) -> String {
    format!("/v1/entries/{index}")
}

/// An entry as one caller may see it. For a caller not entitled to it, only `index` and
/// `leafHash` are present.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRead {
    pub index: u64,
    pub leaf_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// The compact JWS as signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<String>,
    /// The party whose credential handed the entry in, when it was a party's (the signer is
    /// the JWS's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
}

#[utoipa::path(get, path = "/v1/entries/{index}", tag = "ledger", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(("index" = u64, Path)), responses((status = 200, description = "The entry's leaf hash; to a caller entitled to it, the entry as signed", body = crate::contract::files::EntryRead)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    index: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let index = index.into_inner();
    let store = state.registry.store().clone();
    let party = caller.0.id.to_string();
    let cap = state.published_size();
    let row = web::block(move || {
        // Below the standby's bound the entry was acknowledged: the standby answers.
        let standby = store.on_standby(cap, |conn, bound| {
            if index >= bound {
                return Ok(None);
            }
            lading_store::reads::entry_for_party(conn, &party, index).map(Some)
        });
        if let Some(row) = standby {
            return Ok(row);
        }
        let mut conn = store.conn()?;
        lading_store::reads::entry_for_party(&mut conn, &party, index)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?
    .ok_or_else(|| ApiError::NotFound {
        what: format!("entry {index}"),
    })?;
    let leaf_hash = Digest::from_slice(&row.leaf_hash).map_err(ApiError::unexpected)?;
    // All three are present together or not at all (the query decides entitlement once).
    let submitted_by = row.submitted_by;
    let (signed, kind, received_at) = match (row.signed, row.kind, row.received_at) {
        (Some(signed), Some(kind), Some(received_at)) => (
            Some(String::from_utf8(signed).map_err(ApiError::unexpected)?),
            Some(kind),
            Some(received_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ),
        _ => (None, None, None),
    };
    Ok(HttpResponse::Ok().json(EntryRead {
        index,
        leaf_hash: leaf_hash.to_hex(),
        kind,
        received_at,
        signed,
        submitted_by,
    }))
}
