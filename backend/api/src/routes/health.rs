//! `GET /healthz` (the process answers) and `GET /readyz` (it can reach its database).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::problem::ApiError;
use crate::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.registry.store().clone();
    let size = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::ledger::ledger_size(&mut conn)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(|e| ApiError::NotReady(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "size": size })))
}
