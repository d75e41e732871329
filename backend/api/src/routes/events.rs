//! `POST /v1/events`: a signed shipment event, under the same rules as a transition.

use actix_web::{web, HttpRequest, HttpResponse};
use lading_registry::Expect;

use crate::problem::ApiError;
use crate::routes::transitions::submit_one;
use crate::AppState;

#[utoipa::path(post, path = "/v1/events", tag = "ledger", security((), ("bearer" = ["submit"]), ("mutualTLS" = [])), params(("lading-received-at" = Option<String>, Header, description = "From a party's own node only: when it took the submission")), request_body(content = String, content_type = "application/jose", description = "One signed shipment event as a compact JWS (typ lading-event+jws; payload ShipmentEvent)"), responses((status = 201, description = "Sequenced", body = crate::contract::files::EntryAnswer, headers(("Location" = String))), (status = 200, description = "Already on the ledger (duplicate: true)", body = crate::contract::files::EntryAnswer)))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    // Who submits: its party is the submitter the registry checks and records.
    writer: crate::auth::Writer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit_one(state, req, writer, payload, Expect::Event).await
}
