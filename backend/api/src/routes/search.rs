//! Finding bills: `GET /v1/documents` and `GET /v1/events`, the documents and shipment events
//! the caller is entitled to, and `GET /v1/submissions`, the entries the caller handed in
//! itself; newest first, a page at a time.
//!
//! Pages are keyset pages ([`lading_store::search`] says what a walk guarantees while the
//! ledger moves). `next` is an opaque cursor: hand it back as `cursor` for the next page; a
//! page without `next` is the last. Nothing tells how many rows there are, and a row the caller
//! may not see shapes neither a page nor a cursor. Refusals: `bad_filter` (a filter that cannot
//! match anything by its form: an unknown state or role, a malformed port, container, party,
//! time or limit), `bad_cursor` (a cursor this endpoint did not hand out), `bad_query` (an
//! unknown parameter).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use lading_domain::transition::Action;
use lading_domain::{ContainerNumber, Digest, DocumentReference, PartyId, Status, UnLocode};
use lading_store::search::{
    self, DocumentQuery, EventQuery, Role, SubmissionKind, SubmissionQuery,
};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page.
pub const MAX_LIMIT: u32 = 200;
/// At most this many words in `q`, each at most [`MAX_WORD`] characters.
const MAX_WORDS: usize = 8;
const MAX_WORD: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocumentParams {
    /// The document's status: ACTIVE, SURRENDER_FOR_DELIVERY_REQUESTED,
    /// SURRENDER_FOR_AMENDMENT_REQUESTED, SURRENDERED_FOR_DELIVERY, SURRENDERED_FOR_AMENDMENT or
    /// VOID.
    state: Option<String>,
    /// The caller's role on the document: carrier, shipper, consignee, notify, endorsee,
    /// possessor or customs.
    role: Option<String>,
    /// Vessel name, exactly.
    vessel: Option<String>,
    /// Voyage number, exactly.
    voyage: Option<String>,
    /// Port of loading (UN/LOCODE).
    pol: Option<String>,
    /// Port of discharge (UN/LOCODE).
    pod: Option<String>,
    /// A container on the document (ISO 6346).
    container: Option<String>,
    /// A party named on the document.
    party: Option<String>,
    /// Changed at or after this instant (RFC 3339).
    updated_since: Option<String>,
    /// Words that must all be found in the reference, parties, vessel, ports or goods.
    q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventParams {
    /// ARRI, DEPA, GTIN, GTOT, LOAD, DISC, DECLARED, HOLD or RELEASE.
    event_code: Option<String>,
    /// The document it is about.
    document: Option<String>,
    /// The container it is about (ISO 6346).
    container: Option<String>,
    /// Where it happened (UN/LOCODE).
    location: Option<String>,
    /// The party that signed it.
    actor: Option<String>,
    /// Sequenced at or after this instant (RFC 3339).
    since: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmissionParams {
    /// transition or event.
    kind: Option<String>,
    /// A transition's action: ISSUE, TRANSFER, ENDORSE, ENDORSE_TO_ORDER, BLANK_ENDORSE, SIGN,
    /// SURRENDER_FOR_DELIVERY, SURRENDER_FOR_AMENDMENT, SACC, SREJ or VOID.
    action: Option<String>,
    /// An event's code: ARRI, DEPA, GTIN, GTOT, LOAD, DISC, DECLARED, HOLD or RELEASE.
    event_code: Option<String>,
    /// The document it is about.
    document: Option<String>,
    /// The party that signed it.
    signer: Option<String>,
    /// Sequenced at or after this instant (RFC 3339).
    since: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// One document of a page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentSummary {
    reference: String,
    status: String,
    possessor: String,
    carrier: String,
    shipper: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    consignee: Option<String>,
    notify_parties: Vec<String>,
    vessel_name: String,
    voyage_number: String,
    port_of_loading: String,
    port_of_discharge: String,
    containers: Vec<String>,
    head_index: i64,
    head_checksum: String,
    issued_index: i64,
    updated_at: String,
}

/// One shipment event of a page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    index: i64,
    leaf_hash: String,
    actor: String,
    event_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equipment_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    received_at: String,
    /// The compact JWS as signed.
    signed: String,
}

/// One entry the caller submitted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionSummary {
    index: i64,
    received_at: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equipment_reference: Option<String>,
    signer: String,
    submitted_by: String,
    leaf_hash: String,
}

#[derive(Debug, Serialize)]
struct Page<T> {
    #[serde(flatten)]
    items: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn bad_filter(detail: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "bad_filter",
        detail: detail.into(),
    }
}

fn bad_cursor() -> ApiError {
    ApiError::BadRequest {
        code: "bad_cursor",
        detail: "cursor is not one this endpoint handed out as next".into(),
    }
}

/// `value` parsed as `T`, or `bad_filter` naming `name`.
fn parsed<T: std::str::FromStr>(name: &str, value: Option<String>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| bad_filter(format!("{name}: {e}")))
        })
        .transpose()
}

fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(bad_filter(format!(
            "limit {n} is not within 1..={MAX_LIMIT}"
        ))),
    }
}

fn time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad_filter(format!("{name}: not an RFC 3339 time: {e}")))
        })
        .transpose()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn hex(bytes: &[u8]) -> String {
    Digest::from_slice(bytes)
        .map(|d| d.to_hex())
        .unwrap_or_default()
}

/// A cursor: `<kind>:<fields>` in hex, so clients treat it as the opaque token it is.
fn encode_cursor(text: &str) -> String {
    hex::encode(text)
}

/// The fields of a cursor of `kind`, or `bad_cursor`.
fn decode_cursor(kind: &str, cursor: &str) -> Result<String, ApiError> {
    let bytes = hex::decode(cursor).map_err(|_| bad_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad_cursor)
}

/// `eventCode` checked against the event codes, or `bad_filter`.
fn event_code(value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|code| {
            serde_json::from_value::<lading_domain::event::EventCode>(serde_json::Value::String(
                code.clone(),
            ))
            .map(|_| code.clone())
            .map_err(|_| bad_filter(format!("eventCode {code:?} is no event code")))
        })
        .transpose()
}

/// The first ledger index sequenced at or after `at`.
fn first_index_at(
    conn: &mut lading_store::PgConnection,
    at: DateTime<Utc>,
) -> Result<u64, lading_store::StoreError> {
    let size = lading_store::ledger::ledger_size(conn)?;
    lading_store::ledger_time::first_at_or_after(conn, at, size)
}

fn strings(values: Vec<Option<String>>) -> Vec<String> {
    values.into_iter().flatten().collect()
}

#[utoipa::path(get, path = "/v1/documents", tag = "documents", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(DocumentParams), responses((status = 200, description = "A page of the documents the caller may read, newest change first", body = crate::contract::files::DocumentList)))]
pub async fn documents(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<DocumentParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = limit(p.limit)?;
    let status = p
        .state
        .map(|s| Status::try_from(s).map(|s| s.as_str().to_owned()))
        .transpose()
        .map_err(|e| bad_filter(format!("state: {e}")))?;
    let role = p
        .role
        .map(|r| {
            Role::parse(&r).ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                bad_filter(format!("role {r:?} is not one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let pol = parsed::<UnLocode>("pol", p.pol)?;
    let pod = parsed::<UnLocode>("pod", p.pod)?;
    let container = parsed::<ContainerNumber>("container", p.container)?;
    let party = parsed::<PartyId>("party", p.party)?;
    let updated_since = time("updatedSince", p.updated_since)?;
    let words: Vec<String> =
        p.q.as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    if words.len() > MAX_WORDS || words.iter().any(|w| w.chars().count() > MAX_WORD) {
        return Err(bad_filter(format!(
            "q: at most {MAX_WORDS} words of at most {MAX_WORD} characters"
        )));
    }
    let after = p
        .cursor
        .map(|c| {
            let fields = decode_cursor("d1", &c)?;
            let (idx, reference) = fields.split_once(':').ok_or_else(bad_cursor)?;
            let idx: i64 = idx.parse().map_err(|_| bad_cursor())?;
            let reference: DocumentReference = reference.parse().map_err(|_| bad_cursor())?;
            Ok::<_, ApiError>((idx, reference.to_string()))
        })
        .transpose()?;
    let mut query = DocumentQuery {
        status,
        role,
        vessel: p.vessel,
        voyage: p.voyage,
        port_of_loading: pol.map(|p| p.to_string()),
        port_of_discharge: pod.map(|p| p.to_string()),
        container: container.map(|c| c.as_str().to_owned()),
        party: party.map(|p| p.to_string()),
        changed_from: None,
        words,
        after,
        // One more than the page: whether there is a next page.
        limit: limit + 1,
    };
    let state = state.into_inner();
    let reader = caller.0.id.to_string();
    let mut hits = web::block(move || {
        let mut conn = state.registry.store().conn()?;
        if let Some(at) = updated_since {
            query.changed_from = Some(first_index_at(&mut conn, at)?);
        }
        search::documents(&mut conn, &state.walks, &reader, &query)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let next = (hits.len() > limit as usize).then(|| {
        hits.truncate(limit as usize);
        let last = &hits[hits.len() - 1];
        encode_cursor(&format!("d1:{}:{}", last.head_idx, last.reference))
    });
    let documents: Vec<DocumentSummary> = hits
        .into_iter()
        .map(|h| DocumentSummary {
            head_checksum: hex(&h.head_checksum),
            reference: h.reference,
            status: h.status,
            possessor: h.possessor,
            carrier: h.carrier,
            shipper: h.shipper,
            consignee: h.consignee,
            notify_parties: strings(h.notify_parties),
            vessel_name: h.vessel,
            voyage_number: h.voyage,
            port_of_loading: h.port_of_loading,
            port_of_discharge: h.port_of_discharge,
            containers: strings(h.containers),
            head_index: h.head_idx,
            issued_index: h.issued_idx,
            updated_at: rfc3339(h.updated_at),
        })
        .collect();
    Ok(crate::cache::entitled_ok().json(Page {
        items: serde_json::json!({ "documents": documents }),
        next,
    }))
}

#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(EventParams), responses((status = 200, description = "A page of the shipment events the caller is entitled to, newest first", body = crate::contract::files::EventList)))]
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = limit(p.limit)?;
    let event_code = event_code(p.event_code)?;
    let document = parsed::<DocumentReference>("document", p.document)?;
    let container = parsed::<ContainerNumber>("container", p.container)?;
    let location = parsed::<UnLocode>("location", p.location)?;
    let actor = parsed::<PartyId>("actor", p.actor)?;
    let since = time("since", p.since)?;
    let before = p
        .cursor
        .map(|c| {
            decode_cursor("e1", &c)?
                .parse::<i64>()
                .map_err(|_| bad_cursor())
        })
        .transpose()?;
    let mut query = EventQuery {
        event_code,
        document: document.map(|d| d.to_string()),
        container: container.map(|c| c.as_str().to_owned()),
        location: location.map(|l| l.to_string()),
        actor: actor.map(|a| a.to_string()),
        from: None,
        before,
        limit: limit + 1,
    };
    let store = state.registry.store().clone();
    let reader = caller.0.id.to_string();
    let mut hits = web::block(move || {
        let mut conn = store.conn()?;
        if let Some(at) = since {
            query.from = Some(first_index_at(&mut conn, at)?);
        }
        search::events(&mut conn, &reader, &query)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let next = (hits.len() > limit as usize).then(|| {
        hits.truncate(limit as usize);
        encode_cursor(&format!("e1:{}", hits[hits.len() - 1].idx))
    });
    let events: Vec<EventSummary> = hits
        .into_iter()
        .map(|h| EventSummary {
            index: h.idx,
            leaf_hash: hex(&h.leaf_hash),
            actor: h.actor,
            event_code: h.event_code,
            document_reference: h.document_ref,
            equipment_reference: h.equipment_ref,
            location: h.location,
            received_at: rfc3339(h.received_at),
            signed: String::from_utf8_lossy(&h.signed).into_owned(),
        })
        .collect();
    Ok(crate::cache::entitled_ok().json(Page {
        items: serde_json::json!({ "events": events }),
        next,
    }))
}

#[utoipa::path(get, path = "/v1/submissions", tag = "ledger", security(("bearer" = ["read"]), ("mutualTLS" = [])), params(SubmissionParams), responses((status = 200, description = "A page of the transitions and events the caller's own credential handed in (whoever signed them), newest first", body = crate::contract::files::SubmissionPage)))]
pub async fn submissions(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<SubmissionParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = limit(p.limit)?;
    let kind = p
        .kind
        .map(|k| {
            SubmissionKind::parse(&k)
                .ok_or_else(|| bad_filter(format!("kind {k:?} is not transition or event")))
        })
        .transpose()?;
    let action = parsed::<Action>("action", p.action)?;
    let event_code = event_code(p.event_code)?;
    let document = parsed::<DocumentReference>("document", p.document)?;
    let signer = parsed::<PartyId>("signer", p.signer)?;
    let since = time("since", p.since)?;
    let before = p
        .cursor
        .map(|c| {
            decode_cursor("s1", &c)?
                .parse::<i64>()
                .map_err(|_| bad_cursor())
        })
        .transpose()?;
    let mut query = SubmissionQuery {
        kind,
        action: action.map(|a| a.as_str().to_owned()),
        event_code,
        document: document.map(|d| d.to_string()),
        signer: signer.map(|s| s.to_string()),
        from: None,
        before,
        limit: limit + 1,
    };
    let store = state.registry.store().clone();
    let submitter = caller.0.id.to_string();
    let mut hits = web::block(move || {
        let mut conn = store.conn()?;
        if let Some(at) = since {
            query.from = Some(first_index_at(&mut conn, at)?);
        }
        search::submissions(&mut conn, &submitter, &query)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let next = (hits.len() > limit as usize).then(|| {
        hits.truncate(limit as usize);
        encode_cursor(&format!("s1:{}", hits[hits.len() - 1].idx))
    });
    let submissions: Vec<SubmissionSummary> = hits
        .into_iter()
        .map(|h| SubmissionSummary {
            index: h.idx,
            received_at: rfc3339(h.received_at),
            kind: h.kind,
            action: h.action,
            event_code: h.event_code,
            document_reference: h.document_ref,
            equipment_reference: h.equipment_ref,
            signer: h.actor,
            submitted_by: h.submitted_by,
            leaf_hash: hex(&h.leaf_hash),
        })
        .collect();
    Ok(crate::cache::entitled_ok().json(Page {
        items: serde_json::json!({ "submissions": submissions }),
        next,
    }))
}
