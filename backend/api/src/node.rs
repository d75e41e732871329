//! A replica's HTTP face (`lading replica` with `replica.listen`): what a party's own systems
//! read and submit while the registry is away, what other replicas compare, and what the
//! registry asks when it reconciles. Mutual TLS only: the client certificate says who calls.
//!
//! | route | who |
//! |---|---|
//! | `GET /v1/status` | the party, the registry |
//! | `GET /v1/documents/{reference}`, `.../transitions`, `GET /v1/entries/{i}/proof` | the party |
//!
//! A document is served only as a chain this replica verified whole, from rows that check
//! against it: `503 chain_damaged` (an incident) when the rows do not, `503 chain_unverified`
//! when its earlier entries never came in full — never a short, foreign or unchecked chain.
//! | `GET /v1/entries?from&limit`, `GET /v1/roots/{size}` (a bundle's cross-check) | the party |
//! | `POST /v1/transitions`, `POST /v1/events`, `GET /v1/submissions[/{seq}]` | the party |
//! | `POST /v1/submissions/{seq}/retry` (a parked submission, and those behind it) | the party |
//! | `GET /v1/checkpoints?after&limit` | any member of the consortium |
//! | `POST /v1/reconciliation[/{session}/descend | /repair]` | the registry |

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use lading_domain::reconcile::wire::{OpenRequest, RepairRequest};
use lading_domain::transition::SignedTransition;
use lading_domain::Digest;
use lading_pki::Subject;
use lading_replica::node::{Node, NodeError, SubmissionKind};
use serde::{Deserialize, Serialize};

use crate::auth::PeerCertificate;
use crate::body::{jws_text, read_limited, require_media_type, MAX_ITEM_BYTES};
use crate::problem::ApiError;
use crate::routes::transitions::JOSE;

/// Largest reconciliation request: a repair of thousands of entries.
const MAX_RECONCILIATION_BYTES: usize = 256 << 20;

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Store(e) => ApiError::unexpected(e),
            NodeError::Refused(incident) => ApiError::BadRequest {
                code: incident.code(),
                detail: incident.to_string(),
            },
            e @ NodeError::ChainDamaged { .. } => ApiError::Unavailable {
                code: "chain_damaged",
                detail: e.to_string(),
            },
            e @ NodeError::ChainUnverified { .. } => ApiError::Unavailable {
                code: "chain_unverified",
                detail: e.to_string(),
            },
            e @ NodeError::NotDurable => ApiError::unexpected(e),
            NodeError::Reconcile(detail) => ApiError::BadRequest {
                code: "reconciliation",
                detail,
            },
            e @ NodeError::WrongKind { .. } => ApiError::BadRequest {
                code: "wrong_kind",
                detail: e.to_string(),
            },
        }
    }
}

/// Whom the verified client certificate names.
#[derive(Debug, Clone)]
struct Caller(Subject);

impl Caller {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let cert = req
            .conn_data::<PeerCertificate>()
            .ok_or(ApiError::ClientCertificateRequired)?;
        lading_pki::subject_of(&cert.0)
            .map(Caller)
            .map_err(|e| ApiError::Forbidden {
                code: "certificate_names_no_party",
                detail: e.to_string(),
            })
    }
}

/// The replica's own party (its systems use the party's certificate).
pub(crate) struct OwnParty;
/// The party, or the registry.
struct PartyOrRegistry;
/// The registry's own certificate.
struct RegistryCaller;
/// Any member of the consortium.
struct Member;

fn node_of(req: &HttpRequest) -> Result<Node, ApiError> {
    req.app_data::<web::Data<Node>>()
        .map(|n| n.get_ref().clone())
        .ok_or_else(|| ApiError::unexpected("the node is missing"))
}

fn must(allowed: bool, detail: impl FnOnce() -> String) -> Result<(), ApiError> {
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "not_this_replicas_party",
            detail: detail(),
        })
    }
}

macro_rules! caller_extractor {
    ($name:ident, |$caller:ident, $node:ident| $rule:expr, $detail:expr) => {
        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

            fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
                let result = Caller::of(req).and_then(|Caller($caller)| {
                    let $node = node_of(req)?;
                    must($rule, || $detail($caller, $node))?;
                    Ok($name)
                });
                Box::pin(async move { result })
            }
        }
    };
}

caller_extractor!(
    OwnParty,
    |caller, node| caller == Subject::Party(node.party().clone()),
    |caller: Subject, node: Node| format!(
        "this replica serves {} only; the certificate names {caller}",
        node.party()
    )
);
caller_extractor!(
    PartyOrRegistry,
    |caller, node| caller == Subject::Party(node.party().clone()) || caller == Subject::Registry,
    |caller: Subject, node: Node| format!(
        "this replica serves {} and the registry only; the certificate names {caller}",
        node.party()
    )
);
caller_extractor!(
    RegistryCaller,
    |caller, _node| caller == Subject::Registry,
    |caller: Subject, _node: Node| format!(
        "only the registry reconciles; the certificate names {caller}"
    )
);
caller_extractor!(
    Member,
    |_caller, _node| true,
    |_caller: Subject, _node: Node| String::new()
);

/// Runs blocking node work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(ApiError::unexpected)?
        .map_err(ApiError::from)
}

#[utoipa::path(get, path = "/v1/status", tag = "node", security(("mutualTLS" = [])), responses((status = 200, description = "What the replica holds and verified, its lag behind the registry, incidents, its outbox, scheduled exports", body = lading_replica::node::Status)))]
async fn status(node: web::Data<Node>, _: PartyOrRegistry) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    Ok(HttpResponse::Ok().json(blocking(move || node.status()).await?))
}

/// A document as this replica verified it (the registry's answer, with the chain's length).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReplicaDocumentAnswer)]
#[serde(rename_all = "camelCase")]
struct DocumentAnswer {
    reference: String,
    document_checksum: String,
    #[schema(value_type = String)]
    status: lading_domain::Status,
    possessor: String,
    head_checksum: String,
    length: u64,
    head_index: u64,
    issued_index: u64,
    /// As in `entry-answer.json`'s documentState.
    #[schema(value_type = Object)]
    state: lading_domain::DocumentState,
    /// The transport document as issued; null when the first entry held is not the ISSUE.
    #[schema(value_type = Option<Object>)]
    transport_document: serde_json::Value,
}

/// The document at `path` as this replica holds it: its verified state and signed entries.
async fn held(
    node: &web::Data<Node>,
    path: &str,
) -> Result<
    (
        lading_domain::DocumentState,
        Vec<lading_replica::node::HeldEntry>,
    ),
    ApiError,
> {
    let reference = crate::problem::document_reference(path)?;
    let node = node.get_ref().clone();
    let wanted = reference.clone();
    blocking(move || node.document_entries(&wanted))
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: format!("document {reference}"),
        })
}

#[utoipa::path(get, path = "/v1/documents/{reference}", tag = "documents", security(("mutualTLS" = [])), params(("reference" = String, Path)), responses((status = 200, description = "The document as this replica verified it", body = DocumentAnswer)))]
async fn document(
    _: OwnParty,
    node: web::Data<Node>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (state, entries) = held(&node, &path).await?;
    let reference = &state.reference;
    let transitions: Vec<(u64, SignedTransition)> = entries
        .iter()
        .filter_map(|e| {
            SignedTransition::parse(&e.signed)
                .ok()
                .map(|t| (e.index, t))
        })
        .collect();
    let (issued_index, issue) = transitions.first().ok_or_else(|| ApiError::NotFound {
        what: format!("document {reference}"),
    })?;
    let head_index = transitions.last().map_or(*issued_index, |(i, _)| *i);
    // Null where the first entry held is not the ISSUE (a chain this party joined late).
    let transport_document = lading_domain::IssuedDocument::of(issue)
        .map_or(serde_json::Value::Null, |issued| issued.as_signed());
    Ok(HttpResponse::Ok().json(DocumentAnswer {
        reference: state.reference.to_string(),
        document_checksum: state.document_checksum.to_hex(),
        status: state.status,
        possessor: state.possessor.to_string(),
        head_checksum: state.head.to_hex(),
        length: state.length,
        head_index,
        issued_index: *issued_index,
        transport_document,
        state,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ChainEntry {
    index: u64,
    leaf_hash: String,
    checksum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_checksum: Option<String>,
    action: String,
    actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    signed: String,
}

#[utoipa::path(get, path = "/v1/documents/{reference}/transitions", tag = "documents", security(("mutualTLS" = [])), params(("reference" = String, Path)), responses((status = 200, description = "The document's chain as this replica verified it, oldest first", body = Vec<ChainEntry>)))]
async fn transitions(
    _: OwnParty,
    node: web::Data<Node>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, entries) = held(&node, &path).await?;
    let chain: Vec<ChainEntry> = entries
        .into_iter()
        .filter_map(|e| {
            let t = SignedTransition::parse(&e.signed).ok()?;
            let p = t.payload();
            Some(ChainEntry {
                index: e.index,
                leaf_hash: lading_domain::merkle::leaf_hash(e.signed.as_bytes()).to_hex(),
                checksum: t.checksum().to_hex(),
                previous_checksum: p.previous_transition_checksum().map(Digest::to_hex),
                action: p.action().as_str().to_owned(),
                actor: p.actor().to_string(),
                recipient: p.recipient().map(ToString::to_string),
                signed: e.signed,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(chain))
}

#[utoipa::path(get, path = "/v1/entries/{index}/proof", tag = "checkpoints", security(("mutualTLS" = [])), params(("index" = u64, Path)), responses((status = 200, description = "The entry's inclusion proof against a checkpoint this replica verified", body = crate::contract::files::ProofAnswer)))]
async fn proof(
    _: OwnParty,
    node: web::Data<Node>,
    index: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let index = index.into_inner();
    let follower = node.follower();
    let (checkpoint, proof, leaf_hash) = follower
        .prove(index)
        .zip(follower.leaf(index))
        .map(|((c, p), leaf)| (c.clone(), p, leaf))
        .ok_or_else(|| ApiError::NotFound {
            what: format!("a proof of entry {index} against a checkpoint this replica verified"),
        })?;
    drop(follower);
    Ok(HttpResponse::Ok().json(lading_domain::ProofAnswer {
        leaf_hash,
        proof,
        checkpoint: lading_domain::PublishedCheckpoint::of(&checkpoint),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct SubmissionAnswer {
    seq: i64,
    kind: String,
    leaf_hash: String,
    taken_at: String,
    /// `pending` until the registry answered; then `sequenced` or `refused`; `parked` when the
    /// registry kept refusing it as unavailable (see `answer` for why).
    state: String,
    /// The registry's answer: an entry answer, or a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    answer: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_at: Option<String>,
    /// How many times the registry answered "unavailable" to it.
    attempts: i32,
}

impl From<lading_store::outbox::OutboxRow> for SubmissionAnswer {
    fn from(row: lading_store::outbox::OutboxRow) -> Self {
        Self {
            seq: row.seq,
            kind: row.kind,
            leaf_hash: hex::encode(&row.leaf_hash),
            taken_at: row.taken_at.to_rfc3339(),
            state: row.state,
            answer: row.answer,
            answered_at: row.answered_at.map(|t| t.to_rfc3339()),
            attempts: row.attempts,
        }
    }
}

/// A signed transition or event of the party's own: kept durably, answered `202 Accepted`,
/// forwarded to the registry in the order taken. Its fate is at `Location`.
#[utoipa::path(post, path = "/v1/transitions", tag = "submissions", security(("mutualTLS" = [])), request_body(content = String, content_type = "application/jose", description = "A signed transition of the party's own (compact JWS)"), responses((status = 202, description = "Kept durably; forwarded to the registry in the order taken. Its fate is at Location", body = SubmissionAnswer, headers(("Location" = String)))))]
async fn submit(
    _: OwnParty,
    node: web::Data<Node>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, JOSE)?;
    let body = read_limited(&req, payload, MAX_ITEM_BYTES).await?;
    let jws = jws_text(&body)?;
    let expect = if req.path().ends_with("/events") {
        SubmissionKind::Event
    } else {
        SubmissionKind::Transition
    };
    let node = node.get_ref().clone();
    let row = blocking(move || node.take_submission(&jws, expect)).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/submissions/{}", row.seq)))
        .json(SubmissionAnswer::from(row)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    #[serde(default)]
    from: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

#[utoipa::path(get, path = "/v1/submissions", tag = "submissions", security(("mutualTLS" = [])), params(Page), responses((status = 200, description = "The party's submissions from seq from", body = Vec<SubmissionAnswer>)))]
async fn submissions(
    _: OwnParty,
    node: web::Data<Node>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let (from, limit) = (page.from, page.limit.clamp(1, 1000));
    let rows = blocking(move || node.submissions(from, limit)).await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(SubmissionAnswer::from)
            .collect::<Vec<_>>(),
    ))
}

#[utoipa::path(get, path = "/v1/submissions/{seq}", tag = "submissions", security(("mutualTLS" = [])), params(("seq" = i64, Path)), responses((status = 200, description = "The submission and the registry's answer to it", body = SubmissionAnswer)))]
async fn submission(
    _: OwnParty,
    node: web::Data<Node>,
    seq: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let seq = seq.into_inner();
    let row = blocking(move || node.submission(seq))
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: format!("submission {seq}"),
        })?;
    Ok(HttpResponse::Ok().json(SubmissionAnswer::from(row)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct After {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// Signed checkpoints held, for other replicas to compare with theirs.
#[utoipa::path(get, path = "/v1/checkpoints", tag = "checkpoints", security(("mutualTLS" = [])), params(After), responses((status = 200, description = "Signed checkpoints held above a size, smallest first", body = crate::contract::files::CheckpointList)))]
async fn checkpoints(
    _: Member,
    node: web::Data<Node>,
    query: web::Query<After>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let (after, limit) = (query.after, query.limit.clamp(1, 1000) as usize);
    let signed = blocking(move || node.checkpoints_after(after, limit)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "checkpoints": signed })))
}

#[utoipa::path(post, path = "/v1/reconciliation", tag = "reconciliation", security(("mutualTLS" = [])), request_body(content = OpenRequest, content_type = "application/json"), responses((status = 200, description = "What the replica holds, and its root over what both hold", body = lading_domain::reconcile::wire::Summary)))]
async fn open_reconciliation(
    _: RegistryCaller,
    node: web::Data<Node>,
    body: web::Json<OpenRequest>,
) -> Result<HttpResponse, ApiError> {
    let node = node.get_ref().clone();
    let OpenRequest {
        registry_size,
        registry_root,
    } = body.into_inner();
    let summary = blocking(move || node.open_reconciliation(registry_size, registry_root)).await?;
    Ok(HttpResponse::Ok().json(summary))
}

#[utoipa::path(post, path = "/v1/reconciliation/{session}/descend", tag = "reconciliation", security(("mutualTLS" = [])), params(("session" = u64, Path)), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A bit mask: which children of the last round's nodes to descend into"), responses((status = 200, description = "32-byte hashes, one per set bit", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn descend(
    _: RegistryCaller,
    node: web::Data<Node>,
    session: web::Path<u64>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, "application/octet-stream")?;
    let mask = read_limited(&req, payload, MAX_RECONCILIATION_BYTES).await?;
    let node = node.get_ref().clone();
    let session = session.into_inner();
    let hashes = blocking(move || node.descend(session, &mask)).await?;
    let mut body = Vec::with_capacity(hashes.len() * 32);
    for hash in hashes {
        body.extend_from_slice(&hash.0);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(body))
}

#[utoipa::path(post, path = "/v1/reconciliation/{session}/repair", tag = "reconciliation", security(("mutualTLS" = [])), params(("session" = u64, Path)), request_body(content = RepairRequest, content_type = "application/json"), responses((status = 200, description = "What was repaired and the root after it", body = lading_domain::reconcile::wire::RepairAnswer)))]
async fn repair(
    _: RegistryCaller,
    node: web::Data<Node>,
    session: web::Path<u64>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_media_type(&req, "application/json")?;
    let body = read_limited(&req, payload, MAX_RECONCILIATION_BYTES).await?;
    let request: RepairRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            code: "bad_json",
            detail: e.to_string(),
        })?;
    let node = node.get_ref().clone();
    let session = session.into_inner();
    let answer = blocking(move || node.repair(session, &request)).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Puts a parked submission back in the queue, with the submissions of its document parked
/// behind it; `409 not_parked` for any other.
#[utoipa::path(post, path = "/v1/submissions/{seq}/retry", tag = "submissions", security(("mutualTLS" = [])), params(("seq" = i64, Path)), responses((status = 200, description = "Back in the queue, with those of its document parked behind it", body = SubmissionAnswer)))]
async fn retry_submission(
    _: OwnParty,
    node: web::Data<Node>,
    seq: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    use lading_store::outbox::Requeued;
    let node = node.get_ref().clone();
    let seq = seq.into_inner();
    match blocking(move || node.retry_submission(seq)).await? {
        Requeued::Done(row) => Ok(HttpResponse::Ok().json(SubmissionAnswer::from(*row))),
        Requeued::NotParked => Err(ApiError::Conflict {
            code: "not_parked",
            detail: format!("submission {seq} is not parked"),
        }),
        Requeued::Unknown => Err(ApiError::NotFound {
            what: format!("submission {seq}"),
        }),
    }
}

/// `POST /v1/events`: as [`submit`], for a shipment event.
#[utoipa::path(post, path = "/v1/events", tag = "submissions", security(("mutualTLS" = [])), request_body(content = String, content_type = "application/jose", description = "A signed shipment event of the party's own (compact JWS)"), responses((status = 202, description = "Kept durably; forwarded to the registry in the order taken. Its fate is at Location", body = SubmissionAnswer, headers(("Location" = String)))))]
async fn submit_event(
    party: OwnParty,
    node: web::Data<Node>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit(party, node, req, payload).await
}

/// `GET /v1/openapi.json` of a replica.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "contract", responses((status = 200, description = "The OpenAPI 3.1 document of this face", body = Object)))]
async fn openapi_json() -> HttpResponse {
    crate::contract::serve(crate::contract::Face::Node)
}

/// The document as a page to read.
#[utoipa::path(get, path = "/v1/reference", tag = "contract", responses((status = 200, description = "The document rendered as HTML", content_type = "text/html", body = String)))]
async fn reference_page() -> HttpResponse {
    crate::contract::reference::page(crate::contract::Face::Node)
}

/// A replica's face, as its OpenAPI document describes it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Lading replica API",
        description = "A party's own replica (`lading replica` with `replica.listen`): what the party's systems read and submit while the registry is away, what other replicas compare, and what the registry asks when it reconciles. Mutual TLS only: the client certificate says who calls. Every refusal is RFC 7807 application/problem+json with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::routes::health::healthz,
        openapi_json,
        reference_page,
        status,
        document,
        transitions,
        proof,
        crate::node_reads::entries,
        crate::node_reads::root,
        submit,
        submit_event,
        submissions,
        submission,
        retry_submission,
        checkpoints,
        open_reconciliation,
        descend,
        repair,
    ),
    tags(
        (name = "node", description = "The replica itself"),
        (name = "documents", description = "Documents as this replica verified them"),
        (name = "checkpoints", description = "Checkpoints and proofs"),
        (name = "submissions", description = "The party's outbox"),
        (name = "exports", description = "What a customs bundle is cross-checked against"),
        (name = "reconciliation", description = "Asked by the registry only"),
        (name = "health", description = "Liveness"),
        (name = "contract", description = "This document"),
    )
)]
pub(crate) struct NodeApi;

/// Mounts the replica's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    crate::error_handlers(cfg);
    cfg.service(crate::get("/healthz", crate::routes::health::healthz))
        .service(crate::get("/v1/openapi.json", openapi_json))
        .service(crate::get("/v1/reference", reference_page))
        .service(
            web::scope("/v1")
                .service(crate::get("/status", status))
                .service(crate::get("/documents/{reference}", document))
                .service(crate::get(
                    "/documents/{reference}/transitions",
                    transitions,
                ))
                .service(crate::get("/entries/{index}/proof", proof))
                .service(crate::get("/entries", crate::node_reads::entries))
                .service(crate::get("/roots/{size}", crate::node_reads::root))
                .service(crate::post("/transitions", submit))
                .service(crate::post("/events", submit_event))
                .service(crate::get("/submissions", submissions))
                .service(crate::get("/submissions/{seq}", submission))
                .service(crate::post("/submissions/{seq}/retry", retry_submission))
                .service(crate::get("/checkpoints", checkpoints))
                .service(crate::post("/reconciliation", open_reconciliation))
                .service(crate::post("/reconciliation/{session}/descend", descend))
                .service(crate::post("/reconciliation/{session}/repair", repair)),
        )
        .default_service(web::to(crate::unknown_route));
}

/// Binds the replica's HTTPS server; `tls` must ask for client certificates from the
/// consortium CA.
pub fn https_server(
    node: Node,
    bind: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    settings: crate::HttpSettings,
) -> std::io::Result<(Server, SocketAddr)> {
    crate::serve_https(
        web::Data::new(node),
        configure,
        crate::contract::Face::Node,
        bind,
        tls,
        settings,
    )
}
