//! The replication feed: what a party's replica follows.
//!
//! Only replicas call it, over mutual TLS: the consortium CA's client certificate names the
//! party (see `lading_pki`), and the party must be registered. Each entry comes in full only
//! when the party is entitled to it; every other entry comes as its leaf hash alone, which is
//! enough to recompute every block and checkpoint root without seeing anyone else's cargo.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::Replica;
use crate::problem::ApiError;
use crate::AppState;

/// At most this many entries per page.
pub const MAX_PAGE: u64 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The first index wanted.
    #[serde(default)]
    from: u64,
    /// How many entries at most (1 to 10,000; default 1,000).
    limit: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedPage {
    /// The party the feed was cut for.
    party: String,
    /// The ledger's size when the page was read (entries past the page exist when
    /// `from + entries.len() < size`).
    size: u64,
    entries: Vec<FeedItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedItem {
    index: u64,
    leaf_hash: String,
    /// The compact JWS, for entries the party is entitled to.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed: Option<String>,
}

/// `GET /v1/replication/entries?from=N&limit=M`
#[utoipa::path(get, path = "/v1/replication/entries", tag = "replication", security(("mutualTLS" = [])), params(PageQuery), responses((status = 200, description = "The ledger as this party's replica may hold it: entries it is entitled to in full, others as leaf hashes", body = crate::contract::files::FeedPage)))]
pub async fn entries(
    state: web::Data<AppState>,
    replica: Replica,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest {
            code: "bad_query",
            detail: format!("limit must be 1 to {MAX_PAGE}"),
        });
    }
    let from = query.from;
    page(
        state,
        replica,
        // From a hot standby: the page up to its bound, which it reports as the size. A page
        // from the bound on is the primary's, as without a standby.
        move |store, cap, party| {
            store.on_standby(cap, |conn, bound| {
                if from >= bound {
                    return Ok(None);
                }
                let rows =
                    lading_store::reads::feed_for_party_below(conn, party, from, limit, bound)?;
                Ok(Some((bound, rows)))
            })
        },
        move |conn, party| lading_store::reads::feed_for_party(conn, party, from, limit),
    )
    .await
}

/// `GET /v1/replication/documents/{reference}`: the document's transitions as the feed gives
/// them to this party (full when entitled, else hashes), in one page — what a replica
/// back-fills when its party joined the chain late.
#[utoipa::path(get, path = "/v1/replication/documents/{reference}", tag = "replication", security(("mutualTLS" = [])), params(("reference" = String, Path)), responses((status = 200, description = "The document's transitions as the feed gives them to this party, in one page", body = crate::contract::files::FeedPage)))]
pub async fn document(
    state: web::Data<AppState>,
    replica: Replica,
    reference: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reference = crate::problem::document_reference(&reference)?.to_string();
    let of_standby = reference.clone();
    page(
        state,
        replica,
        // From a hot standby when the document's head, as the primary has it, is below the
        // standby's bound: the transitions up to that head, with the primary's size — the
        // primary's answer, read mostly on the standby.
        move |store, cap, party| {
            let (head, size) = {
                let mut conn = store.conn().ok()?;
                let head = lading_store::reads::document_head(&mut conn, &of_standby).ok()??;
                (head, lading_store::ledger::ledger_size(&mut conn).ok()?)
            };
            store.on_standby(cap, |conn, bound| {
                if head >= lading_store::to_i64(bound) {
                    return Ok(None);
                }
                let rows =
                    lading_store::reads::feed_of_document_upto(conn, party, &of_standby, head)?;
                Ok(Some((size, rows)))
            })
        },
        move |conn, party| lading_store::reads::feed_of_document(conn, party, &reference),
    )
    .await
}

/// The ledger's size as a page saw it, and the page's entries.
type Rows = (u64, Vec<lading_store::reads::FeedEntry>);

/// A feed page for the calling party: the ledger's size and the entries `read` finds — or,
/// with a hot standby, what `bounded` finds there (`None`: ask the primary).
async fn page(
    state: web::Data<AppState>,
    replica: Replica,
    bounded: impl FnOnce(&lading_store::Store, u64, &str) -> Option<Rows> + Send + 'static,
    read: impl FnOnce(
            &mut lading_store::PgConnection,
            &str,
        ) -> Result<Vec<lading_store::reads::FeedEntry>, lading_store::StoreError>
        + Send
        + 'static,
) -> Result<HttpResponse, ApiError> {
    let party = replica.0.id.to_string();
    let store = state.registry.store().clone();
    let who = party.clone();
    let cap = state.published_size();
    let (size, rows) = web::block(move || {
        if store.standby().is_some() {
            if let Some(answer) = bounded(&store, cap, &who) {
                return Ok(answer);
            }
        }
        let mut conn = store.conn()?;
        let size = lading_store::ledger::ledger_size(&mut conn)?;
        let rows = read(&mut conn, &who)?;
        Ok::<_, lading_store::StoreError>((size, rows))
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let entries = rows
        .into_iter()
        .map(|row| {
            Ok(FeedItem {
                index: u64::try_from(row.idx).map_err(ApiError::unexpected)?,
                leaf_hash: hex::encode(&row.leaf_hash),
                signed: row
                    .signed
                    .map(|bytes| String::from_utf8(bytes).map_err(ApiError::unexpected))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(FeedPage {
        party,
        size,
        entries,
    }))
}
