//! `POST /v1/transitions` and `POST /v1/transitions/batch`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use lading_registry::{Expect, Origin, Refusal};
use serde::Serialize;

use crate::body::{
    jws_text, read_limited, require_media_type, MAX_BATCH_BYTES, MAX_BATCH_ITEMS, MAX_ITEM_BYTES,
};
use crate::problem::{refusal_status, ApiError, Problem};
use crate::routes::EntryAnswer;
use crate::AppState;

/// Media type of one compact JWS (RFC 7515 §9.2.1).
pub const JOSE: &str = "application/jose";

/// The header a party's own node sends with a submission it took while the registry was away:
/// when it took it (a timestamp like a statement's `time`).
pub const RECEIVED_AT: &str = "lading-received-at";

/// Where a submission comes from, for the time rule: a party's node (its client certificate
/// names the party) that says when it took the submission, or anyone else. The header counts
/// only with such a certificate, and only for that party's own statements (the registry
/// checks the latter).
fn origin(req: &HttpRequest) -> Result<Origin, ApiError> {
    let Some(value) = req.headers().get(RECEIVED_AT) else {
        return Ok(Origin::Direct);
    };
    let received_at: lading_domain::Timestamp = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::BadRequest {
            code: "bad_header",
            detail: format!("{RECEIVED_AT} must be a timestamp like 2026-11-02T08:00:00.000Z"),
        })?;
    let party = req
        .conn_data::<crate::auth::PeerCertificate>()
        .and_then(|cert| lading_pki::party_of(&cert.0).ok());
    Ok(match party {
        Some(party) => Origin::Node { party, received_at },
        None => Origin::Direct,
    })
}

/// One signed transition: `201` with `Location: /v1/entries/{index}` when it was added, `200`
/// with the same answer when these exact bytes were already on the ledger.
#[utoipa::path(post, path = "/v1/transitions", tag = "ledger", security((), ("bearer" = ["submit"]), ("mutualTLS" = [])), params(("lading-received-at" = Option<String>, Header, description = "From a party's own node only: when it took the submission")), request_body(content = String, content_type = "application/jose", description = "One signed transition as a compact JWS (typ lading-transition+jws; payload TransitionPayload)"), responses((status = 201, description = "Sequenced", body = crate::contract::files::EntryAnswer, headers(("Location" = String))), (status = 200, description = "Already on the ledger (duplicate: true)", body = crate::contract::files::EntryAnswer)))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    // Who submits: its party is the submitter the registry checks and records.
    writer: crate::auth::Writer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit_one(state, req, writer, payload, Expect::Transition).await
}

pub(crate) async fn submit_one(
    state: web::Data<AppState>,
    req: HttpRequest,
    writer: crate::auth::Writer,
    payload: web::Payload,
    expect: Expect,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, JOSE)?;
    let body = read_limited(&req, payload, MAX_ITEM_BYTES).await?;
    let jws = jws_text(&body)?;
    let origin = origin(&req)?;
    let receipt = state
        .registry
        .submit_one_as(jws, expect, origin, writer.submitter())
        .await;
    count_submission(&receipt);
    let receipt = receipt?;
    if receipt.duplicate {
        return Ok(HttpResponse::build(StatusCode::OK).json(EntryAnswer::from(receipt)));
    }
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((
            actix_web::http::header::LOCATION,
            crate::routes::entries::location(receipt.index),
        ))
        .json(EntryAnswer::from(receipt)))
}

/// One item's outcome in a batch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAnswer {
    pub accepted: usize,
    pub duplicates: usize,
    pub refused: usize,
    pub results: Vec<BatchItem>,
}

/// A JSON array of compact JWS; one result per item, in order. A refused item refuses
/// nothing else, so the answer is `200` whenever the batch itself could be read.
#[utoipa::path(post, path = "/v1/transitions/batch", tag = "ledger", security((), ("bearer" = ["submit"]), ("mutualTLS" = [])), params(("lading-received-at" = Option<String>, Header, description = "From a party's own node only: when it took the submissions")), request_body(content = Vec<String>, content_type = "application/json", description = "A JSON array of up to 10,000 compact JWS transitions"), responses((status = 200, description = "One result per item, in order; a refused item refuses nothing else", body = crate::contract::files::BatchAnswer)))]
pub async fn submit_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    // Who submits: its party is the submitter the registry checks and records.
    writer: crate::auth::Writer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, "application/json")?;
    let body = read_limited(&req, payload, MAX_BATCH_BYTES).await?;
    let items: Vec<String> = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "malformed_batch",
        detail: format!("the body must be a JSON array of compact JWS strings: {e}"),
    })?;
    if items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::BadRequest {
            code: "batch_too_large",
            detail: format!(
                "at most {MAX_BATCH_ITEMS} items per batch, got {}",
                items.len()
            ),
        });
    }
    let origin = origin(&req)?;
    let outcomes = state
        .registry
        .submit_as(items, Expect::Transition, origin, writer.submitter())
        .await;
    outcomes.iter().for_each(count_submission);
    // A request shed for load is refused whole (nothing of it was done): 503 with Retry-After.
    if let Some(Err(busy @ Refusal::Busy { .. })) = outcomes.first() {
        return Err(ApiError::Refused(busy.clone()));
    }
    // About 650 bytes an item (index, hashes, the state): one allocation, not a growing one.
    let mut body = Vec::with_capacity(outcomes.len() * 700 + 64);
    serde_json::to_writer(&mut body, &batch_answer(outcomes)).map_err(ApiError::unexpected)?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

fn batch_answer(outcomes: Vec<Result<lading_registry::Receipt, Refusal>>) -> BatchAnswer {
    let mut answer = BatchAnswer {
        accepted: 0,
        duplicates: 0,
        refused: 0,
        results: Vec::with_capacity(outcomes.len()),
    };
    for outcome in outcomes {
        answer.results.push(match outcome {
            Ok(receipt) => {
                let status = if receipt.duplicate {
                    answer.duplicates += 1;
                    200
                } else {
                    answer.accepted += 1;
                    201
                };
                BatchItem {
                    status,
                    entry: Some(receipt.into()),
                    problem: None,
                }
            }
            Err(refusal) => {
                answer.refused += 1;
                let status = refusal_status(&refusal).as_u16();
                BatchItem {
                    status,
                    entry: None,
                    problem: Some(ApiError::Refused(refusal).problem()),
                }
            }
        });
    }
    answer
}

/// Counts a submission's outcome in `lading_submissions_total` (see `lading_metrics`).
fn count_submission(outcome: &Result<lading_registry::Receipt, Refusal>) {
    lading_metrics::global().submission(match outcome {
        Ok(receipt) => Ok(receipt.duplicate),
        Err(refusal) => Err(refusal.code()),
    });
}
