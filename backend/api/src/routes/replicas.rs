//! `GET /v1/replicas` and `POST /v1/replicas/{party}/reconcile`: the replicas the registry
//! reconciles, what the last reconciliation of each found, and a reconciliation on demand.
//!
//! Mutual TLS: the registry's own certificate (its operators, `lading reconcile`) sees and
//! reconciles every replica; a party's certificate, its own replica only.

use actix_web::{web, HttpRequest, HttpResponse};
use lading_pki::Subject;
use lading_registry::reconcile::ReplicaTarget;
use lading_replica::node::IncidentView;
use serde::Serialize;

use crate::auth::PeerCertificate;
use crate::problem::ApiError;
use crate::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaView {
    party: String,
    url: String,
    /// As the last reconciliation found it.
    size: Option<u64>,
    root: Option<String>,
    lag: Option<u64>,
    last_reconciliation: Option<LastRun>,
    open_incidents: Vec<IncidentView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    at: String,
    outcome: String,
    registry_size: u64,
    differences: u64,
    hash_bytes: u64,
    round_trips: i32,
}

/// `GET /v1/replicas`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplicaList {
    pub replicas: Vec<ReplicaView>,
}

/// The replicas the caller may see: all for the registry's certificate, else its own.
fn visible(state: &AppState, req: &HttpRequest) -> Result<Vec<ReplicaTarget>, ApiError> {
    let cert = req
        .conn_data::<PeerCertificate>()
        .ok_or(ApiError::ClientCertificateRequired)?;
    let subject = lading_pki::subject_of(&cert.0).map_err(|e| ApiError::Forbidden {
        code: "certificate_names_no_party",
        detail: e.to_string(),
    })?;
    let targets = state
        .replicas
        .as_ref()
        .map(|r| r.targets.clone())
        .unwrap_or_default();
    Ok(match subject {
        Subject::Registry => targets,
        Subject::Party(party) => targets.into_iter().filter(|t| t.party == party).collect(),
    })
}

#[utoipa::path(get, path = "/v1/replicas", tag = "replication", security(("mutualTLS" = [])), responses((status = 200, description = "The replicas the caller may see and what their last reconciliation found", body = ReplicaList)))]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let targets = visible(&state, &req)?;
    let store = state.registry.store().clone();
    let views = web::block(move || {
        let mut conn = store.conn()?;
        targets
            .into_iter()
            .map(|target| {
                let party = target.party.to_string();
                let last = lading_store::reconciliations::last(&mut conn, &party)?;
                let open = lading_store::incidents::open_incidents(&mut conn, Some(&party))?;
                Ok(ReplicaView {
                    size: last.as_ref().and_then(|r| r.replica_size).map(|s| s as u64),
                    root: last
                        .as_ref()
                        .and_then(|r| r.replica_root.as_deref())
                        .map(hex::encode),
                    lag: last
                        .as_ref()
                        .and_then(|r| r.replica_size.map(|s| (r.registry_size - s).max(0) as u64)),
                    last_reconciliation: last.map(|r| LastRun {
                        at: r.finished_at.to_rfc3339(),
                        outcome: r.outcome,
                        registry_size: r.registry_size as u64,
                        differences: r.differences as u64,
                        hash_bytes: r.hash_bytes as u64,
                        round_trips: r.round_trips,
                    }),
                    open_incidents: open.into_iter().map(IncidentView::from).collect(),
                    party,
                    url: target.url,
                })
            })
            .collect::<Result<Vec<_>, lading_store::StoreError>>()
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    Ok(HttpResponse::Ok().json(ReplicaList { replicas: views }))
}

#[utoipa::path(post, path = "/v1/replicas/{party}/reconcile", tag = "replication", security(("mutualTLS" = [])), params(("party" = String, Path)), responses((status = 200, description = "What the reconciliation found", body = lading_registry::reconcile::Report)))]
pub async fn reconcile(
    state: web::Data<AppState>,
    party: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let target = visible(&state, &req)?
        .into_iter()
        .find(|t| t.party.as_str() == party.as_str())
        .ok_or_else(|| ApiError::NotFound {
            what: format!("replica of {party}"),
        })?;
    let replicas = state
        .replicas
        .as_ref()
        .ok_or_else(|| ApiError::NotReady("this registry reconciles no replicas".into()))?;
    Ok(HttpResponse::Ok().json(replicas.reconciler.reconcile(&target).await))
}
