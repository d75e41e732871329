//! `GET /healthz` (the process answers) and `GET /readyz` (it can take submissions: every
//! thread of the sequencer's write path runs, and it can reach its database).

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::problem::ApiError;
use crate::AppState;

/// `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
    /// The ledger's size.
    pub size: u64,
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "The database answers; size is the ledger's", body = Ready)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(thread) = state.registry.stopped_thread() {
        tracing::error!(
            thread = thread.name(),
            "readiness: a write-path thread has stopped"
        );
        return Err(ApiError::NotReady(format!(
            "the sequencer's {} thread is not running",
            thread.name()
        )));
    }
    if state.registry.is_standing_by() {
        return Err(ApiError::NotReady(
            "this registry stands by: another process holds the sequencer's lease, or the \
             database cannot take writes now"
                .into(),
        ));
    }
    if !state.registry.is_sequencing() {
        return Err(ApiError::NotReady("the sequencer is not running".into()));
    }
    let store = state.registry.store().clone();
    let size = web::block(move || {
        // A load balancer's probe times out in a second or two: answer within one.
        let mut conn = store.conn_within(std::time::Duration::from_secs(1))?;
        lading_store::ledger::ledger_size(&mut conn)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(|e| {
        tracing::warn!(error = %e, "readiness: database unreachable");
        ApiError::NotReady("the database is unreachable".into())
    })?;
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        size,
    }))
}
