//! `POST /v1/events`: a signed shipment event, under the same rules as a transition.

use actix_web::{web, HttpRequest, HttpResponse};
use lading_registry::Expect;

use crate::problem::ApiError;
use crate::routes::transitions::submit_one;
use crate::AppState;

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    // Who may write (a credential, where `registry.require_write_credential` asks for one).
    _writer: crate::auth::Writer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit_one(state, req, payload, Expect::Event).await
}
