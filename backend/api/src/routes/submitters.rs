//! `POST /v1/submitters`, `GET /v1/submitters`, `DELETE /v1/submitters/{party}`: a party's
//! admin (a credential with the `admin` scope) says which other parties may hand the registry
//! statements the party signed — a forwarder submitting for its customer. Each party sees and
//! changes only its own authorisations: another party's are not addressable at all.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use lading_store::submitters::SubmitterRow;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::problem::ApiError;
use crate::AppState;

/// One authorisation: `party` lets `submitter` submit statements `party` signed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmitterView {
    pub party: String,
    pub submitter: String,
    pub created_at: DateTime<Utc>,
}

impl From<&SubmitterRow> for SubmitterView {
    fn from(row: &SubmitterRow) -> Self {
        Self {
            party: row.party_id.clone(),
            submitter: row.submitter_id.clone(),
            created_at: row.created_at,
        }
    }
}

/// What `POST /v1/submitters` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthoriseRequest {
    /// The party id that may submit for the caller's party.
    pub submitter: String,
}

/// Where authorisation `submitter` of the caller's party is.
fn location(submitter: &str) -> String {
    format!("/v1/submitters/{submitter}")
}

/// Lets another registered party submit statements the caller's party signed: `201` (`200`
/// when it already may).
#[utoipa::path(post, path = "/v1/submitters", tag = "credentials", security(("bearer" = ["admin"])), request_body(content = AuthoriseRequest, content_type = "application/json"), responses((status = 201, description = "Authorised", body = SubmitterView, headers(("Location" = String))), (status = 200, description = "Already authorised (unchanged)", body = SubmitterView)))]
pub async fn authorise(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<AuthoriseRequest>,
) -> Result<HttpResponse, ApiError> {
    let party = admin.0.party.id.to_string();
    let submitter = body.into_inner().submitter;
    if submitter == party {
        return Err(ApiError::BadRequest {
            code: "bad_json",
            detail: "a party submits its own statements without authorising itself".into(),
        });
    }
    let store = state.registry.store().clone();
    let wanted = submitter.clone();
    let stored = web::block(move || {
        let mut conn = store.conn()?;
        // Only a current member can be authorised (the membership is public to members).
        let member = lading_store::parties::party(&mut conn, &wanted)?
            .is_some_and(|row| row.removed_idx.is_none());
        if !member {
            return Ok(None);
        }
        lading_store::submitters::authorise(&mut conn, &party, &wanted, Utc::now()).map(Some)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    let Some((row, added)) = stored else {
        return Err(ApiError::BadRequest {
            code: "bad_json",
            detail: format!("{submitter} is not a registered party"),
        });
    };
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .insert_header((
            actix_web::http::header::LOCATION,
            location(&row.submitter_id),
        ))
        .json(SubmitterView::from(&row)))
}

/// The parties the caller's party lets submit for it, oldest authorisation first.
#[utoipa::path(get, path = "/v1/submitters", tag = "credentials", security(("bearer" = ["admin"])), responses((status = 200, description = "The caller's party's authorised submitters", body = Vec<SubmitterView>)))]
pub async fn list(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let store = state.registry.store().clone();
    let party = admin.0.party.id.to_string();
    let rows = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::submitters::list(&mut conn, &party)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    Ok(HttpResponse::Ok().json(rows.iter().map(SubmitterView::from).collect::<Vec<_>>()))
}

/// Withdraws a party's authorisation to submit for the caller's party: `204`; `404` when it
/// had none. Submissions it already made stay on the ledger with their `submittedBy`.
#[utoipa::path(delete, path = "/v1/submitters/{party}", tag = "credentials", security(("bearer" = ["admin"])), params(("party" = String, Path, description = "The authorised submitter's party id")), responses((status = 204, description = "Withdrawn")))]
pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    submitter: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let submitter = submitter.into_inner();
    let store = state.registry.store().clone();
    let party = admin.0.party.id.to_string();
    let wanted = submitter.clone();
    let removed = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::submitters::remove(&mut conn, &party, &wanted)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    if !removed {
        return Err(ApiError::NotFound {
            what: format!("submitter {submitter}"),
        });
    }
    Ok(HttpResponse::NoContent().finish())
}
