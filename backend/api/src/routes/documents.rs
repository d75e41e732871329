//! `GET /v1/documents/{reference}` and its chain and events, for entitled parties only.
//! A document the caller may not see is answered exactly like one that does not exist.
//! Every answer is `Cache-Control: private, no-store`; the document and its chain carry an
//! `ETag` and answer `If-None-Match` with 304 ([`crate::cache`]).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use lading_domain::{Digest, IssuedDocument};
use serde::Serialize;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentAnswer {
    pub reference: String,
    pub document_checksum: String,
    pub status: String,
    pub possessor: String,
    pub head_checksum: String,
    pub head_index: i64,
    pub issued_index: i64,
    pub state: Box<serde_json::value::RawValue>,
    pub transport_document: serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainEntry {
    pub index: i64,
    pub leaf_hash: String,
    pub checksum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_checksum: Option<String>,
    pub action: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub received_at: String,
    /// The compact JWS as signed.
    pub signed: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    pub index: i64,
    pub leaf_hash: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equipment_reference: Option<String>,
    pub received_at: String,
    pub signed: String,
}

fn hex(bytes: &[u8]) -> String {
    Digest::from_slice(bytes)
        .map(|d| d.to_hex())
        .unwrap_or_default()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn not_found(reference: &str) -> ApiError {
    ApiError::NotFound {
        what: format!("document {reference}"),
    }
}

/// What a read of a document needs from the ledger beyond the document's row: up to which
/// index (`None`: nothing), as the primary has it now, and how to read it there or on a hot
/// standby.
type Upto = fn(
    &mut lading_store::PgConnection,
    &lading_store::models::DocumentRow,
) -> Result<Option<i64>, lading_store::StoreError>;

/// Runs `read` on a blocking thread after checking that `caller` may see `reference`.
///
/// With a hot standby, the document's row (entitlement, state, head) is still read on the
/// primary, and so is `upto` — the latest index the rest of the answer needs, one index probe;
/// when that is below the standby's bound, `bounded` reads the rest (the signed entries) there,
/// up to that index: the answer is the primary's, entry for entry.
async fn entitled<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    reference: String,
    upto: Upto,
    bounded: impl FnOnce(
            &mut lading_store::PgConnection,
            &lading_store::models::DocumentRow,
            i64,
        ) -> Result<T, lading_store::StoreError>
        + Send
        + 'static,
    read: impl FnOnce(
            &mut lading_store::PgConnection,
            lading_store::models::DocumentRow,
        ) -> Result<T, lading_store::StoreError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let reference = crate::problem::document_reference(&reference)?.to_string();
    let store = state.registry.store().clone();
    let party = caller.0.id.to_string();
    let missing = not_found(&reference);
    let cap = state.published_size();
    web::block(move || {
        let mut conn = store.conn()?;
        let Some(doc) = lading_store::reads::document_for_party(&mut conn, &reference, &party)?
        else {
            return Ok(None);
        };
        if store.standby().is_some() {
            if let Some(upto) = upto(&mut conn, &doc)? {
                // The primary's connection is not held while the standby reads.
                drop(conn);
                let standby = store.on_standby(cap, |conn, bound| {
                    if upto >= lading_store::to_i64(bound) {
                        return Ok(None);
                    }
                    bounded(conn, &doc, upto).map(Some)
                });
                if let Some(answer) = standby {
                    return Ok(Some(answer));
                }
                conn = store.conn()?;
            }
        }
        read(&mut conn, doc).map(Some)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?
    .ok_or(missing)
}

#[utoipa::path(get, path = "/v1/documents/{reference}", tag = "documents", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(("reference" = String, Path, description = "The transport document reference"), ("If-None-Match" = Option<String>, Header)), responses((status = 200, description = "The document, its state and the transport document as issued", body = crate::contract::files::DocumentAnswer, headers(("ETag" = String))), (status = 304, description = "Not modified: the If-None-Match ETag is still the document's")))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    reference: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (doc, issue) = entitled(
        &state,
        &caller,
        reference.into_inner(),
        |_, doc| Ok(Some(doc.issued_idx)),
        |conn, doc, _| {
            let issue = lading_store::ledger::entry(conn, doc.issued_idx as u64)?;
            Ok((doc.clone(), issue))
        },
        |conn, doc| {
            let issue = lading_store::ledger::entry(conn, doc.issued_idx as u64)?;
            Ok((doc, issue))
        },
    )
    .await?;
    // The answer is a function of the chain's head: the document never changes, its state
    // only with a transition.
    let etag = crate::cache::etag(&hex(&doc.head_checksum));
    if crate::cache::not_modified(&req, &etag) {
        return Ok(crate::cache::entitled_json(&req, etag, &()));
    }
    let issue = issue.ok_or_else(|| {
        ApiError::unexpected(format!("the ISSUE of {} is missing", doc.reference))
    })?;
    // As the carrier signed it: the `transportDocument` member of the ISSUE's payload.
    let transport_document = IssuedDocument::parse(&issue.signed)
        .map_err(ApiError::unexpected)?
        .as_signed();
    Ok(crate::cache::entitled_json(
        &req,
        etag,
        &DocumentAnswer {
            document_checksum: hex(&doc.checksum),
            head_checksum: hex(&doc.head_checksum),
            reference: doc.reference,
            status: doc.status,
            possessor: doc.possessor,
            head_index: doc.head_idx,
            issued_index: doc.issued_idx,
            state: doc.state.into_raw(),
            transport_document,
        },
    ))
}

#[utoipa::path(get, path = "/v1/documents/{reference}/transitions", tag = "documents", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(("reference" = String, Path), ("If-None-Match" = Option<String>, Header)), responses((status = 200, description = "The document's signed transitions, oldest first", body = crate::contract::files::ChainAnswer, headers(("ETag" = String))), (status = 304, description = "Not modified: the If-None-Match ETag is still the document's")))]
pub async fn transitions(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    reference: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reference = reference.into_inner();
    let (head, chain) = entitled(
        &state,
        &caller,
        reference.clone(),
        |_, doc| Ok(Some(doc.head_idx)),
        |conn, doc, head| {
            Ok((
                doc.head_checksum.clone(),
                lading_store::reads::chain_upto(conn, &doc.reference, head)?,
            ))
        },
        |conn, doc| {
            Ok((
                doc.head_checksum,
                lading_store::reads::chain(conn, &doc.reference)?,
            ))
        },
    )
    .await?;
    // Another resource than the document: its own tag, from the same head.
    let etag = crate::cache::etag(&format!("chain-{}", hex(&head)));
    let transitions: Vec<ChainEntry> = chain
        .into_iter()
        .map(|(entry, t)| ChainEntry {
            index: entry.idx,
            leaf_hash: hex(&entry.leaf_hash),
            checksum: hex(&t.checksum),
            previous_checksum: t.previous_checksum.as_deref().map(hex),
            action: t.action,
            actor: t.actor,
            recipient: t.recipient,
            received_at: time(entry.received_at),
            signed: String::from_utf8_lossy(&entry.signed).into_owned(),
        })
        .collect();
    Ok(crate::cache::entitled_json(
        &req,
        etag,
        &serde_json::json!({
            "reference": reference,
            "transitions": transitions,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/documents/{reference}/events", tag = "documents", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(("reference" = String, Path)), responses((status = 200, description = "The signed shipment events about the document, oldest first", body = crate::contract::files::EventsAnswer)))]
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    reference: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reference = reference.into_inner();
    let rows = entitled(
        &state,
        &caller,
        reference.clone(),
        |conn, doc| lading_store::reads::latest_event_index(conn, &doc.reference),
        |conn, doc, latest| lading_store::reads::document_events_upto(conn, &doc.reference, latest),
        |conn, doc| lading_store::reads::document_events(conn, &doc.reference),
    )
    .await?;
    let events: Vec<EventEntry> = rows
        .into_iter()
        .map(|entry| EventEntry {
            index: entry.idx,
            leaf_hash: hex(&entry.leaf_hash),
            actor: entry.actor,
            equipment_reference: entry.equipment_ref,
            received_at: time(entry.received_at),
            signed: String::from_utf8_lossy(&entry.signed).into_owned(),
        })
        .collect();
    Ok(crate::cache::entitled_ok().json(serde_json::json!({
        "reference": reference,
        "events": events,
    })))
}
